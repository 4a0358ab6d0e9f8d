//! The DCGAN family: pytorch/examples `dcgan/main.py` (`radford`), the TensorFlow MNIST tutorial network
//! (`mnist28`) and a wide 128×128 variant (`wide128`). All three are `nn.Sequential`s named `main`, keyed
//! `main.{index}.{weight,bias,running_mean,running_var}` like the pytorch/examples checkpoints
//! (`netG_epoch_N.pth`, `netD_epoch_N.pth`), which import directly.

use crate::io::weights::load_varmap;
pub use crate::nn::init::Prior;
use crate::nn::summary::Summary;
use crate::nn::{seeded_var_builder, LayerSpec, Mode, Sequential};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarMap};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Architecture family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Radford et al. / pytorch/examples: z as a 1×1 map, 4×4 transposed convs, BN, ReLU / LeakyReLU(0.2).
    /// Any power-of-two size from 16 (64 by default).
    Radford64,
    /// 28×28 grayscale: dense 100 -> 7×7×4ngf, BN, 5×5 transposed convs; D with 5×5 stride-2 convs,
    /// LeakyReLU(0.2) and dropout 0.3, then a dense logit.
    Mnist28,
    /// 128×128: dense z -> 8×8×8ngf, four 5×5 up-sampling stages; D mirrors it with a dense logit.
    Wide128,
    /// The Keras 28×28 model of the Simpsons paper: G = Dense(100 -> 7·7·2ngf) -> Reshape -> BatchNorm ->
    /// ConvT(ngf, 5×5, s2) -> BatchNorm -> ConvT(C, 5×5, s2), with biases; D as `mnist28`. At ngf = ndf = 64 and
    /// one channel: G 840,705 parameters (384 non-trainable), D 212,865.
    Keras28,
}

crate::named_values!(Preset { Radford64 => "radford64", Mnist28 => "mnist28", Wide128 => "wide128", Keras28 => "keras28" });

fn default_d_leaky_slope() -> f64 {
    0.2
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DcganConfig {
    pub preset: Preset,
    pub image_size: usize,
    pub channels: usize,
    pub nz: usize,
    pub ngf: usize,
    pub ndf: usize,
    pub kernel: usize,
    /// The latent prior (normal, or uniform on [-1, 1]); `generate`, `sheet`, `interpolate` and attribute
    /// fitting draw from it.
    #[serde(default)]
    pub prior: Prior,
    /// G's activation: ReLU when `None`, else LeakyReLU with this slope (0.01 in the anime DCGAN paper).
    #[serde(default)]
    pub g_leaky_slope: Option<f64>,
    /// D's LeakyReLU slope (0.2 in the DCGAN paper).
    #[serde(default = "default_d_leaky_slope")]
    pub d_leaky_slope: f64,
    /// Resize-convolution in G: each stride-2 transposed conv becomes a nearest 2× up-sampling and a stride-1
    /// conv (the DCGAN-128 variant; no checkerboard). Needs an odd kernel.
    #[serde(default)]
    pub upsample: bool,
}

impl DcganConfig {
    pub fn preset(preset: Preset) -> Self {
        let (image_size, channels, ngf, ndf, kernel) = match preset {
            Preset::Radford64 => (64, 3, 64, 64, 4),
            Preset::Mnist28 => (28, 1, 32, 64, 5),
            Preset::Wide128 => (128, 3, 16, 32, 5),
            Preset::Keras28 => (28, 1, 64, 64, 5),
        };
        Self {
            preset,
            image_size,
            channels,
            nz: 100,
            ngf,
            ndf,
            kernel,
            prior: Prior::Normal,
            g_leaky_slope: None,
            d_leaky_slope: default_d_leaky_slope(),
            upsample: false,
        }
    }

    /// Checks the sizes the layer lists below rely on.
    pub fn validate(&self) -> Result<()> {
        const MAX_WIDTH: usize = 4096;
        const MAX_IMAGE_SIZE: usize = 1024;
        if self.channels != 1 && self.channels != 3 {
            bail!("channels must be 1 or 3, not {}", self.channels);
        }
        if self.nz == 0 || self.ngf == 0 || self.ndf == 0 {
            bail!("nz, ngf and ndf must be positive");
        }
        // Checked before anything is built: a config read from a downloaded file must not make ganime allocate
        // without end (far above any published DCGAN).
        for (name, value) in [("nz", self.nz), ("ngf", self.ngf), ("ndf", self.ndf)] {
            if value > MAX_WIDTH {
                bail!("{name} {value} is larger than ganime builds ({MAX_WIDTH} at most)");
            }
        }
        if self.image_size > MAX_IMAGE_SIZE {
            bail!("image size {} is larger than ganime builds ({MAX_IMAGE_SIZE} at most)", self.image_size);
        }
        if ![3, 4, 5].contains(&self.kernel) {
            bail!("kernel size must be 3, 4 or 5, not {}", self.kernel);
        }
        if self.upsample && self.kernel % 2 == 0 {
            bail!("--upsample needs an odd kernel (3 or 5) for its stride-1 convs, not {}", self.kernel);
        }
        for (name, slope) in [("G's LeakyReLU slope", self.g_leaky_slope.unwrap_or(0.0)), ("D's LeakyReLU slope", self.d_leaky_slope)] {
            if !(0.0..1.0).contains(&slope) {
                bail!("{name} must be in [0, 1), not {slope}");
            }
        }
        let ok = match self.preset {
            Preset::Radford64 => self.image_size >= 16 && self.image_size.is_power_of_two(),
            Preset::Mnist28 | Preset::Keras28 => self.image_size == 28,
            Preset::Wide128 => self.image_size >= 32 && self.image_size.is_power_of_two(),
        };
        if !ok {
            bail!(
                "image size {} does not fit the {} preset (radford64: a power of two >= 16; mnist28, keras28: 28; wide128: a power of two >= 32)",
                self.image_size,
                self.preset
            );
        }
        // The widths double per stage (ngf 4096 at 1024 px is 524,288 channels).
        for (net, layers) in [("generator", self.generator_layers()), ("discriminator", self.discriminator_layers())] {
            crate::nn::sequential::check_parameters(
                &format!("this config's {net}"),
                crate::nn::sequential::parameter_count(&layers).map(u128::from),
            )?;
        }
        Ok(())
    }

    /// Number of stride-2 stages between the start map and the image.
    fn stages(&self) -> usize {
        let start = match self.preset {
            Preset::Radford64 => 4,
            Preset::Mnist28 | Preset::Keras28 => 7,
            Preset::Wide128 => 8,
        };
        (self.image_size / start).trailing_zeros() as usize
    }

    /// Layers that exactly double H and W for kernel 3, 4 or 5: a stride-2 transposed conv, or with `upsample`
    /// a nearest 2× up-sampling and a stride-1 conv.
    fn up(&self, c_in: usize, c_out: usize, bias: bool) -> Vec<LayerSpec> {
        let k = self.kernel;
        let pad = (k - 1) / 2;
        if self.upsample {
            vec![LayerSpec::Upsample(2), LayerSpec::Conv { c_in, c_out, k, stride: 1, pad, bias }]
        } else {
            vec![LayerSpec::ConvTranspose { c_in, c_out, k, stride: 2, pad, out_pad: 2 + 2 * pad - k, bias }]
        }
    }

    /// G's activation after each BatchNorm.
    fn g_activation(&self) -> LayerSpec {
        match self.g_leaky_slope {
            Some(slope) => LayerSpec::LeakyRelu(slope),
            None => LayerSpec::Relu,
        }
    }

    /// A stride-2 conv that exactly halves an even H and W.
    fn down(&self, c_in: usize, c_out: usize, bias: bool) -> LayerSpec {
        LayerSpec::Conv { c_in, c_out, k: self.kernel, stride: 2, pad: (self.kernel - 1) / 2, bias }
    }

    pub fn generator_layers(&self) -> Vec<LayerSpec> {
        let n = self.stages();
        // Channels entering up-sampling stage j (stage n-1 outputs the image).
        let width = |j: usize| match self.preset {
            Preset::Mnist28 | Preset::Keras28 => (2 * self.ngf) >> j,
            _ => self.ngf << (n - 1 - j),
        };
        let act = self.g_activation();
        // The Keras model has biases everywhere; the PyTorch ones none before a BatchNorm.
        let bias = self.preset == Preset::Keras28;
        let mut l = Vec::new();
        match self.preset {
            Preset::Radford64 => {
                l.push(LayerSpec::ConvTranspose { c_in: self.nz, c_out: width(0), k: 4, stride: 1, pad: 0, out_pad: 0, bias: false });
                l.extend([LayerSpec::BatchNorm(width(0)), act.clone()]);
            }
            Preset::Mnist28 => {
                let c = 4 * self.ngf;
                l.push(LayerSpec::Linear { d_in: self.nz, d_out: c * 49, bias: false });
                l.extend([LayerSpec::BatchNorm(c * 49), act.clone(), LayerSpec::Unflatten { c, h: 7, w: 7 }]);
                // The tutorial's stride-1 5×5 stage before the two up-sampling ones.
                l.push(LayerSpec::ConvTranspose { c_in: c, c_out: width(0), k: 5, stride: 1, pad: 2, out_pad: 0, bias: false });
                l.extend([LayerSpec::BatchNorm(width(0)), act.clone()]);
            }
            Preset::Keras28 => {
                let c = width(0);
                l.push(LayerSpec::Linear { d_in: self.nz, d_out: c * 49, bias: true });
                l.extend([LayerSpec::Unflatten { c, h: 7, w: 7 }, LayerSpec::BatchNorm(c), act.clone()]);
            }
            Preset::Wide128 => {
                let c = width(0);
                l.push(LayerSpec::Linear { d_in: self.nz, d_out: c * 64, bias: false });
                l.extend([LayerSpec::BatchNorm(c * 64), act.clone(), LayerSpec::Unflatten { c, h: 8, w: 8 }]);
            }
        }
        for j in 0..n {
            if j + 1 == n {
                l.extend(self.up(width(j), self.channels, bias));
                l.push(LayerSpec::Tanh);
            } else {
                l.extend(self.up(width(j), width(j + 1), bias));
                l.extend([LayerSpec::BatchNorm(width(j + 1)), act.clone()]);
            }
        }
        l
    }

    pub fn discriminator_layers(&self) -> Vec<LayerSpec> {
        let n = self.stages();
        let width = |i: usize| self.ndf << i;
        let act = LayerSpec::LeakyRelu(self.d_leaky_slope);
        let mut l = Vec::new();
        match self.preset {
            Preset::Radford64 | Preset::Wide128 => {
                l.extend([self.down(self.channels, width(0), false), act.clone()]);
                for i in 1..n {
                    l.extend([self.down(width(i - 1), width(i), false), LayerSpec::BatchNorm(width(i)), act.clone()]);
                }
                if self.preset == Preset::Radford64 {
                    l.push(LayerSpec::Conv { c_in: width(n - 1), c_out: 1, k: 4, stride: 1, pad: 0, bias: false });
                } else {
                    l.extend([LayerSpec::Flatten, LayerSpec::Linear { d_in: width(n - 1) * 64, d_out: 1, bias: true }]);
                }
            }
            Preset::Mnist28 | Preset::Keras28 => {
                l.extend([self.down(self.channels, self.ndf, true), act.clone(), LayerSpec::Dropout(0.3)]);
                l.extend([self.down(self.ndf, 2 * self.ndf, true), act, LayerSpec::Dropout(0.3)]);
                l.extend([LayerSpec::Flatten, LayerSpec::Linear { d_in: 2 * self.ndf * 49, d_out: 1, bias: true }]);
            }
        }
        l
    }

    /// Keras-style summaries of G and D (layers, output shapes, parameter counts). D is the one this config
    /// builds by default (BatchNorm, no spectral normalisation).
    pub fn summaries(&self) -> Result<(Summary, Summary)> {
        self.validate()?;
        let z = match self.preset {
            Preset::Radford64 => vec![self.nz, 1, 1],
            _ => vec![self.nz],
        };
        let g = Summary::of("generator", &self.generator_layers(), &z, "main")?;
        let d = Summary::of("discriminator", &self.discriminator_layers(), &[self.channels, self.image_size, self.image_size], "main")?;
        Ok((g, d))
    }

    /// Infers a pytorch/examples generator's config from its `state_dict` shapes (`main.0.weight` is
    /// `[nz, 8·ngf, 4, 4]`, each further `main.{i}.weight` of rank 4 is a transposed conv).
    pub fn infer_from_generator(tensors: &HashMap<String, Tensor>, source: &str) -> Result<Self> {
        let first = tensors.get("main.0.weight").with_context(|| format!("{source}: no `main.0.weight`; not a pytorch/examples DCGAN generator"))?;
        let &[nz, c0, 4, 4] = first.dims() else {
            bail!("{source}: `main.0.weight` has shape {:?}; a DCGAN generator's is [nz, 8*ngf, 4, 4]", first.dims());
        };
        let mut convs: Vec<(usize, &Tensor)> = tensors
            .iter()
            .filter_map(|(k, t)| {
                let i = k.strip_prefix("main.")?.strip_suffix(".weight")?.parse::<usize>().ok()?;
                (t.rank() == 4).then_some((i, t))
            })
            .collect();
        convs.sort_by_key(|(i, _)| *i);
        let stages = convs.len();
        let channels = convs.last().unwrap().1.dim(1)?;
        if stages < 3 {
            bail!("{source}: only {stages} transposed convs; not a DCGAN generator");
        }
        let cfg =
            Self { image_size: 4 << (stages - 1), channels, nz, ngf: c0 >> (stages - 2), ndf: c0 >> (stages - 2), ..Self::preset(Preset::Radford64) };
        cfg.validate().with_context(|| source.to_string())?;
        Ok(cfg)
    }

    /// Infers a pytorch/examples discriminator's config (`main.0.weight` is `[ndf, nc, 4, 4]`).
    pub fn infer_from_discriminator(tensors: &HashMap<String, Tensor>, source: &str) -> Result<Self> {
        let first =
            tensors.get("main.0.weight").with_context(|| format!("{source}: no `main.0.weight`; not a pytorch/examples DCGAN discriminator"))?;
        let &[ndf, channels, 4, 4] = first.dims() else {
            bail!("{source}: `main.0.weight` has shape {:?}; a DCGAN discriminator's is [ndf, nc, 4, 4]", first.dims());
        };
        let convs = tensors.iter().filter(|(k, t)| k.ends_with(".weight") && t.rank() == 4).count();
        let cfg = Self { image_size: 4 << (convs - 1), channels, ngf: ndf, ndf, ..Self::preset(Preset::Radford64) };
        cfg.validate().with_context(|| source.to_string())?;
        Ok(cfg)
    }
}

/// Checkpoint key prefix of a training run's moving average of G (the trainer stores task state under `task.`,
/// the DCGAN task its average under `ema.`).
pub const EMA_KEY_PREFIX: &str = "task.ema.";

/// The checkpoint key prefix of the generator to sample: the run's moving average when it kept one, else `G.`.
pub fn generator_prefix(tensors: &HashMap<String, Tensor>) -> &'static str {
    if tensors.keys().any(|k| k.starts_with(EMA_KEY_PREFIX)) {
        EMA_KEY_PREFIX
    } else {
        "G."
    }
}

/// The DCGAN generator: `z [N, nz]` (or `[N, nz, 1, 1]`) -> images `[N, C, S, S]` in [-1, 1].
pub struct Generator {
    pub config: DcganConfig,
    pub vars: VarMap,
    main: Sequential,
}

impl Generator {
    /// A freshly initialised generator (the papers' init: conv weights N(0, 0.02), BN weights N(1, 0.02)).
    pub fn new(config: &DcganConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        let main = Sequential::new(&config.generator_layers(), Init::Randn { mean: 0.0, stdev: 0.02 }, vb.pp("main"))?;
        Ok(Self { config: config.clone(), vars, main })
    }

    /// Builds the generator and sets its weights from named tensors (`prefix` + `main.…`).
    pub fn from_tensors(config: &DcganConfig, tensors: &HashMap<String, Tensor>, prefix: &str, source: &str, device: &Device) -> Result<Self> {
        let g = Self::new(config, 0, device)?;
        load_varmap(&g.vars, tensors, prefix, source)?;
        Ok(g)
    }

    /// Sets every BatchNorm's running statistics to those of this generator's own activations: reset to the
    /// initial values, then `batches` training-mode forwards of 64 seeded latents (momentum 0.1 leaves 0.9^batches
    /// of the reset values). For a moving average of G's weights, whose activations differ from what any
    /// running statistics saw during training (averaging the statistics too casts a tint over every sample).
    /// A pure function of the weights and `seed`.
    pub fn recompute_batch_norm_statistics(&self, batches: usize, seed: u64) -> candle_core::Result<()> {
        {
            let data = self.vars.data().lock().unwrap();
            for (name, var) in data.iter() {
                if name.ends_with("running_mean") {
                    var.set(&var.as_tensor().zeros_like()?)?;
                } else if name.ends_with("running_var") {
                    var.set(&var.as_tensor().ones_like()?)?;
                }
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let device = self.vars.all_vars()[0].device().clone();
        for i in 0..batches {
            let z = self.config.prior.sample(&mut rng, &[64, self.config.nz], &device)?;
            self.forward(&z, Mode::Train { seed: seed.wrapping_add(i as u64) })?;
        }
        Ok(())
    }

    /// The layer stack (progressive growing enters and leaves it part-way).
    pub fn main(&self) -> &Sequential {
        &self.main
    }

    pub fn forward(&self, z: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        let n = z.dim(0)?;
        let z = match self.config.preset {
            Preset::Radford64 => z.reshape((n, self.config.nz, 1, 1))?,
            _ => z.reshape((n, self.config.nz))?,
        };
        self.main.forward(&z, mode)
    }
}

/// The DCGAN discriminator: images -> one logit per image `[N]` (the reference's final Sigmoid is applied by
/// the loss, in its numerically stable form).
pub struct Discriminator {
    pub config: DcganConfig,
    pub vars: VarMap,
    main: Sequential,
    /// What `main` was built from (BatchNorm, layer-norm critic or spectrally normalised variant).
    pub layers: Vec<LayerSpec>,
}

impl Discriminator {
    pub fn new(config: &DcganConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        let layers = config.discriminator_layers();
        let main = Sequential::new(&layers, Init::Randn { mean: 0.0, stdev: 0.02 }, vb.pp("main"))?;
        Ok(Self { config: config.clone(), vars, main, layers })
    }

    /// The discriminator with layer norm in place of BatchNorm: a WGAN-GP critic, whose penalty needs each
    /// sample's output to depend on that sample alone (Gulrajani et al. §4).
    pub fn new_critic(config: &DcganConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let layers: Vec<LayerSpec> =
            config.discriminator_layers().into_iter().map(|l| if let LayerSpec::BatchNorm(c) = l { LayerSpec::LayerNorm(c) } else { l }).collect();
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        let main = Sequential::new(&layers, Init::Randn { mean: 0.0, stdev: 0.02 }, vb.pp("main"))?;
        Ok(Self { config: config.clone(), vars, main, layers })
    }

    /// The discriminator of SN-GAN (Miyato et al. 2018): every conv spectrally normalised and no BatchNorm, so
    /// D is Lipschitz per layer and each sample's score depends on that sample alone (hinge loss, R1 and
    /// DiffAugment all assume this).
    pub fn new_spectral(config: &DcganConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        if config.preset != Preset::Radford64 {
            bail!("spectral normalisation is built for the radford64 preset's all-conv discriminator, not {:?}", config.preset);
        }
        let layers: Vec<LayerSpec> = config
            .discriminator_layers()
            .into_iter()
            .filter_map(|l| match l {
                LayerSpec::BatchNorm(_) => None,
                LayerSpec::Conv { c_in, c_out, k, stride, pad, bias } => Some(LayerSpec::SnConv { c_in, c_out, k, stride, pad, bias }),
                other => Some(other),
            })
            .collect();
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        // Spectral normalisation rescales every weight, so the init's scale does not matter; 0.02 as above.
        let main = Sequential::new(&layers, Init::Randn { mean: 0.0, stdev: 0.02 }, vb.pp("main"))?;
        Ok(Self { config: config.clone(), vars, main, layers })
    }

    pub fn from_tensors(config: &DcganConfig, tensors: &HashMap<String, Tensor>, prefix: &str, source: &str, device: &Device) -> Result<Self> {
        let d = Self::new(config, 0, device)?;
        load_varmap(&d.vars, tensors, prefix, source)?;
        Ok(d)
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        self.main.forward(x, mode)?.flatten_all()
    }

    /// The layer stack (progressive growing enters and leaves it part-way).
    pub fn main(&self) -> &Sequential {
        &self.main
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::io::weights::read_tensors;
    use crate::models::rel_err;

    /// A config from a crafted file (ngf 1,000,000, a huge image) is refused before anything is allocated.
    #[test]
    fn oversized_configs_are_refused_before_building() {
        let huge = DcganConfig { ngf: 1_000_000, ..DcganConfig::preset(Preset::Radford64) };
        let err = Generator::new(&huge, 1, &Device::Cpu).err().expect("refused").to_string();
        assert!(err.contains("ngf 1000000"), "{err}");
        let big = DcganConfig { image_size: 1 << 20, ..DcganConfig::preset(Preset::Radford64) };
        assert!(Discriminator::new(&big, 1, &Device::Cpu).err().expect("refused").to_string().contains("image size"));
        // Each size within its bound, the product far beyond memory (the first layer alone 4096 x 524288 x 4 x 4).
        let wide = DcganConfig { nz: 4096, ngf: 4096, ndf: 4096, image_size: 1024, ..DcganConfig::preset(Preset::Radford64) };
        let err = Generator::new(&wide, 1, &Device::Cpu).err().expect("refused").to_string();
        assert!(err.contains("generator would hold") && err.contains("parameters"), "{err}");
        assert!(Generator::new(&DcganConfig::preset(Preset::Wide128), 1, &Device::Cpu).is_ok());
    }

    /// The Simpsons paper's Keras summary: G 840,705 parameters (840,321 trainable, 384 non-trainable, the
    /// BatchNorm moving statistics), D 212,865, layer by layer.
    #[test]
    fn keras28_matches_the_papers_parameter_counts() -> Result<()> {
        let cfg = DcganConfig::preset(Preset::Keras28);
        let (g, d) = cfg.summaries()?;
        assert_eq!((g.total(), g.trainable(), g.non_trainable()), (840_705, 840_321, 384));
        assert_eq!(d.total(), 212_865);
        let params = |s: &Summary| -> Vec<(&str, Vec<usize>, u64)> {
            s.rows.iter().filter(|r| r.trainable + r.non_trainable > 0).map(|r| (r.kind, r.output.clone(), r.trainable + r.non_trainable)).collect()
        };
        assert_eq!(
            params(&g),
            [
                ("Linear", vec![6272], 633_472),
                ("BatchNorm", vec![128, 7, 7], 512),
                ("ConvTranspose2d", vec![64, 14, 14], 204_864),
                ("BatchNorm", vec![64, 14, 14], 256),
                ("ConvTranspose2d", vec![1, 28, 28], 1_601),
            ]
        );
        assert_eq!(params(&d), [("Conv2d", vec![64, 14, 14], 1_664), ("Conv2d", vec![128, 7, 7], 204_928), ("Linear", vec![1], 6_273)]);
        assert!(d.rows.iter().any(|r| r.kind == "Flatten" && r.output == [6272]));
        assert_eq!(d.rows.iter().filter(|r| r.kind == "Dropout").count(), 2);
        // The summary is what Candle builds: same variable count, same output shape.
        let dev = Device::Cpu;
        let gen = Generator::new(&cfg, 1, &dev)?;
        let built: u64 = gen.vars.all_vars().iter().map(|v| v.elem_count() as u64).sum();
        assert_eq!(built, g.total());
        let x = gen.forward(&Tensor::zeros((2, 100), DType::F32, &dev)?, Mode::Eval)?;
        assert_eq!(x.dims(), [2, 1, 28, 28]);
        Ok(())
    }

    /// Resize-convolution G, LeakyReLU slopes and the prior are part of the stored config and reach the layers.
    #[test]
    fn architecture_options_reach_the_layers() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = DcganConfig {
            upsample: true,
            g_leaky_slope: Some(0.01),
            d_leaky_slope: 0.1,
            prior: Prior::Uniform,
            ngf: 4,
            ndf: 4,
            image_size: 32,
            ..DcganConfig::preset(Preset::Wide128)
        };
        let g = cfg.generator_layers();
        assert!(!g.iter().any(|l| matches!(l, LayerSpec::ConvTranspose { .. })));
        assert_eq!(g.iter().filter(|l| matches!(l, LayerSpec::Upsample(2))).count(), 2);
        assert!(g.contains(&LayerSpec::LeakyRelu(0.01)) && !g.contains(&LayerSpec::Relu));
        assert!(cfg.discriminator_layers().contains(&LayerSpec::LeakyRelu(0.1)));
        let x = Generator::new(&cfg, 1, &dev)?.forward(&Tensor::zeros((2, 100), DType::F32, &dev)?, Mode::Train { seed: 0 })?;
        assert_eq!(x.dims(), [2, 3, 32, 32]);
        // Stored and read back; an old config without the fields reads as before.
        let back: DcganConfig = serde_json::from_str(&serde_json::to_string(&cfg)?)?;
        assert_eq!(back, cfg);
        let old = r#"{"preset":"Radford64","image_size":64,"channels":3,"nz":100,"ngf":32,"ndf":32,"kernel":4}"#;
        let old: DcganConfig = serde_json::from_str(old)?;
        assert_eq!((old.prior, old.g_leaky_slope, old.d_leaky_slope, old.upsample), (Prior::Normal, None, 0.2, false));
        assert!(DcganConfig { upsample: true, ..DcganConfig::preset(Preset::Radford64) }.validate().unwrap_err().to_string().contains("odd kernel"));
        assert!(DcganConfig { d_leaky_slope: 1.5, ..DcganConfig::preset(Preset::Radford64) }.validate().is_err());
        Ok(())
    }

    #[test]
    fn presets_produce_their_image_sizes() -> Result<()> {
        let dev = Device::Cpu;
        for (preset, size, ch) in [(Preset::Radford64, 32, 3), (Preset::Mnist28, 28, 1), (Preset::Keras28, 28, 1), (Preset::Wide128, 128, 3)] {
            for kernel in [3, 4, 5] {
                let cfg = DcganConfig { image_size: size, ngf: 4, ndf: 4, kernel, ..DcganConfig::preset(preset) };
                let g = Generator::new(&cfg, 1, &dev)?;
                let d = Discriminator::new(&cfg, 2, &dev)?;
                let z = Tensor::randn(0f32, 1., (2, cfg.nz), &dev)?;
                let x = g.forward(&z, Mode::Train { seed: 1 })?;
                assert_eq!(x.dims(), [2, ch, size, size], "{preset:?} k{kernel}");
                assert_eq!(d.forward(&x, Mode::Train { seed: 1 })?.dims(), [2]);
            }
        }
        // The spectrally normalised D: SN convs (with their `u`) and no BatchNorm.
        let cfg = DcganConfig { image_size: 32, ngf: 4, ndf: 4, ..DcganConfig::preset(Preset::Radford64) };
        let d = Discriminator::new_spectral(&cfg, 2, &dev)?;
        let x = Tensor::randn(0f32, 1., (2, 3, 32, 32), &dev)?;
        assert_eq!(d.forward(&x, Mode::Train { seed: 1 })?.dims(), [2]);
        let keys: Vec<String> = d.vars.data().lock().unwrap().keys().cloned().collect();
        assert!(keys.iter().any(|k| k.ends_with("weight_u")) && !keys.iter().any(|k| k.contains("running")), "{keys:?}");
        assert!(Discriminator::new_spectral(&DcganConfig::preset(Preset::Mnist28), 2, &dev).is_err());
        let bad = DcganConfig { image_size: 48, ..DcganConfig::preset(Preset::Radford64) };
        assert!(Generator::new(&bad, 0, &dev).is_err());
        Ok(())
    }

    /// Parity with pytorch/examples DCGAN (`../shared/golden/dcgan-*`), train- and eval-mode BatchNorm.
    #[test]
    fn imports_pytorch_examples_checkpoint_and_matches_golden() -> Result<()> {
        let (Some(gp), Some(dp), Some(op)) =
            (shared_path("golden/dcgan-netG.pth"), shared_path("golden/dcgan-netD.pth"), shared_path("golden/dcgan-outputs.safetensors"))
        else {
            return Ok(());
        };
        let dev = Device::Cpu;
        let gt = read_tensors(&gp, &dev)?;
        let dt = read_tensors(&dp, &dev)?;
        let out = read_tensors(&op, &dev)?;
        let cfg = DcganConfig::infer_from_generator(&gt, "netG")?;
        assert_eq!((cfg.nz, cfg.ngf, cfg.image_size, cfg.channels), (100, 16, 64, 3));
        let dcfg = DcganConfig::infer_from_discriminator(&dt, "netD")?;
        assert_eq!((dcfg.ndf, dcfg.image_size), (16, 64));

        let g = Generator::from_tensors(&cfg, &gt, "", "netG", &dev)?;
        let z = &out["z"];
        let e = rel_err(&g.forward(z, Mode::Eval)?, &out["g_eval"]);
        assert!(e < 1e-4, "g_eval rel err {e}");
        let e = rel_err(&g.forward(z, Mode::Train { seed: 0 })?, &out["g_train"]);
        assert!(e < 1e-4, "g_train rel err {e}");
        let vars = g.vars.data().lock().unwrap();
        let e = rel_err(vars["main.1.running_mean"].as_tensor(), &out["g_train_bn1_running_mean"]);
        assert!(e < 1e-4, "running mean rel err {e}");
        let e = rel_err(vars["main.1.running_var"].as_tensor(), &out["g_train_bn1_running_var"]);
        assert!(e < 1e-4, "running var rel err {e}");

        let d = Discriminator::from_tensors(&dcfg, &dt, "", "netD", &dev)?;
        let x = &out["d_input"];
        let logits = d.forward(x, Mode::Eval)?;
        assert!(rel_err(&logits, &out["d_eval_logits"]) < 1e-4);
        assert!(rel_err(&candle_nn::ops::sigmoid(&logits)?, &out["d_eval"]) < 1e-4);
        let logits = d.forward(x, Mode::Train { seed: 0 })?;
        assert!(rel_err(&logits, &out["d_train_logits"]) < 1e-4, "{}", rel_err(&logits, &out["d_train_logits"]));
        assert!(rel_err(&candle_nn::ops::sigmoid(&logits)?, &out["d_train"]) < 1e-4);
        Ok(())
    }

    #[test]
    fn wrong_file_is_a_clear_error() {
        let mut t = HashMap::new();
        t.insert("encoder.weight".to_string(), Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap());
        let err = DcganConfig::infer_from_generator(&t, "x.pth").unwrap_err().to_string();
        assert!(err.contains("x.pth") && err.contains("main.0.weight"), "{err}");
    }
}
