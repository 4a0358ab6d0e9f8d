//! CycleGAN's networks as in junyanz/pytorch-CycleGAN-and-pix2pix `models/networks.py`, keyed like its
//! checkpoints (`latest_net_G_A.pth`: `model.1.weight`, `model.10.conv_block.1.weight`, …):
//! `ResnetGenerator(norm='instance', padding_type='reflect')` and the 70×70 PatchGAN `NLayerDiscriminator`.
//! InstanceNorm without affine parameters (so every conv has a bias); `ngf`, the block count, `ndf` and the
//! layer count are inferred from the tensor shapes.

use crate::io::weights::load_varmap;
use crate::nn::kernels::Activation;
use crate::nn::{instance_norm, instance_norm_act, seeded_var_builder, Conv2d, ConvTranspose2d};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

const EPS: f64 = 1e-5;
/// `init_weights('normal', 0.02)`.
const INIT: Init = Init::Randn { mean: 0.0, stdev: 0.02 };

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorConfig {
    pub ngf: usize,
    pub n_blocks: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscriminatorConfig {
    pub ndf: usize,
    pub n_layers: usize,
}

impl GeneratorConfig {
    /// `ngf` from `model.1.weight` `[ngf, 3, 7, 7]`, blocks from the `model.N.conv_block.1.weight` keys.
    pub fn infer(tensors: &HashMap<String, Tensor>, prefix: &str, source: &str) -> Result<Self> {
        let key = format!("{prefix}model.1.weight");
        let first = tensors.get(&key).with_context(|| format!("{source}: no `{key}`; not a CycleGAN ResNet generator"))?;
        let &[ngf, 3, 7, 7] = first.dims() else {
            bail!("{source}: `{key}` has shape {:?}; a ResNet generator's is [ngf, 3, 7, 7]", first.dims());
        };
        let n_blocks = tensors.keys().filter(|k| k.starts_with(prefix) && k.ends_with(".conv_block.1.weight")).count();
        if n_blocks == 0 {
            bail!("{source}: no residual blocks (`{prefix}model.10.conv_block.1.weight`, …)");
        }
        Ok(Self { ngf, n_blocks })
    }
}

impl DiscriminatorConfig {
    pub fn infer(tensors: &HashMap<String, Tensor>, prefix: &str, source: &str) -> Result<Self> {
        let key = format!("{prefix}model.0.weight");
        let first = tensors.get(&key).with_context(|| format!("{source}: no `{key}`; not a PatchGAN discriminator"))?;
        let &[ndf, _, 4, 4] = first.dims() else {
            bail!("{source}: `{key}` has shape {:?}; a PatchGAN's is [ndf, 3, 4, 4]", first.dims());
        };
        let convs = tensors.keys().filter(|k| k.starts_with(prefix) && k.ends_with(".weight") && tensors[*k].rank() == 4).count();
        if convs < 3 {
            bail!("{source}: {convs} convolutions; a PatchGAN has at least 3");
        }
        Ok(Self { ndf, n_layers: convs - 2 })
    }
}

/// A conv followed by InstanceNorm and ReLU / LeakyReLU (or nothing).
fn in_act(x: Tensor, leaky: bool) -> candle_core::Result<Tensor> {
    instance_norm_act(&x, EPS, if leaky { Activation::LeakyRelu(0.2) } else { Activation::Relu })
}

struct ResnetBlock {
    conv1: Conv2d,
    conv2: Conv2d,
}

impl ResnetBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = in_act(self.conv1.forward_reflect(x, (1, 1, 1, 1))?, false)?;
        let y = instance_norm(&self.conv2.forward_reflect(&y, (1, 1, 1, 1))?, EPS)?;
        x + y
    }
}

/// The ResNet generator: images `[N, 3, H, W]` in [-1, 1] (H, W multiples of 4) -> same size.
pub struct ResnetGenerator {
    pub config: GeneratorConfig,
    pub vars: VarMap,
    head: Conv2d,
    down: [Conv2d; 2],
    blocks: Vec<ResnetBlock>,
    up: [ConvTranspose2d; 2],
    tail: Conv2d,
}

impl ResnetGenerator {
    pub fn build(config: GeneratorConfig, vars: VarMap, vb: VarBuilder) -> Result<Self> {
        let GeneratorConfig { ngf, n_blocks } = config;
        if ngf == 0 || n_blocks == 0 {
            bail!("ngf and the number of residual blocks must be positive");
        }
        let vb = vb.pp("model");
        let conv = |c_in, c_out, k, s, p, i: usize| Conv2d::new(c_in, c_out, k, s, p, true, Some(INIT), vb.pp(i));
        let w = 4 * ngf;
        let blocks = (0..n_blocks)
            .map(|b| {
                let bb = vb.pp(10 + b).pp("conv_block");
                Ok(ResnetBlock {
                    conv1: Conv2d::new(w, w, 3, 1, 0, true, Some(INIT), bb.pp("1"))?,
                    conv2: Conv2d::new(w, w, 3, 1, 0, true, Some(INIT), bb.pp("5"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let up = |c_in, c_out, i: usize| ConvTranspose2d::new(c_in, c_out, 3, 2, 1, 1, true, Some(INIT), vb.pp(i));
        let n = n_blocks;
        Ok(Self {
            config,
            head: conv(3, ngf, 7, 1, 0, 1)?,
            down: [conv(ngf, 2 * ngf, 3, 2, 1, 4)?, conv(2 * ngf, w, 3, 2, 1, 7)?],
            blocks,
            up: [up(w, 2 * ngf, 10 + n)?, up(2 * ngf, ngf, 13 + n)?],
            tail: conv(ngf, 3, 7, 1, 0, 17 + n)?,
            vars,
        })
    }

    /// Freshly initialised (weights N(0, 0.02), biases 0) from `seed`.
    pub fn new(config: GeneratorConfig, seed: u64, device: &Device) -> Result<Self> {
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        Self::build(config, vars, vb)
    }

    /// From a state dict (`prefix` + `model.…`; stray InstanceNorm running stats of old files are ignored).
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, prefix: &str, source: &str, device: &Device) -> Result<Self> {
        let config = GeneratorConfig::infer(tensors, prefix, source)?;
        let g = Self::new(config, 0, device)?;
        load_varmap(&g.vars, tensors, prefix, source)?;
        Ok(g)
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        if h % 4 != 0 || w % 4 != 0 || h < 8 || w < 8 {
            candle_core::bail!("the CycleGAN generator needs H and W to be multiples of 4 (at least 8), got {h}x{w}");
        }
        let mut y = in_act(self.head.forward_reflect(x, (3, 3, 3, 3))?, false)?;
        for d in &self.down {
            y = in_act(d.forward(&y)?, false)?;
        }
        for b in &self.blocks {
            y = b.forward(&y)?;
        }
        for u in &self.up {
            y = in_act(u.forward(&y)?, false)?;
        }
        crate::nn::kernels::activation::tanh(&self.tail.forward_reflect(&y, (3, 3, 3, 3))?)
    }
}

/// The PatchGAN: images -> a map of raw logits (`[N, 1, h, w]`; 70×70 receptive field for 3 layers).
pub struct PatchDiscriminator {
    pub config: DiscriminatorConfig,
    pub vars: VarMap,
    convs: Vec<Conv2d>,
}

impl PatchDiscriminator {
    pub fn build(config: DiscriminatorConfig, vars: VarMap, vb: VarBuilder) -> Result<Self> {
        let DiscriminatorConfig { ndf, n_layers } = config;
        if ndf == 0 || n_layers == 0 {
            bail!("ndf and the number of layers must be positive");
        }
        let vb = vb.pp("model");
        let width = |n: usize| ndf * (1usize << n).min(8);
        let mut convs = vec![Conv2d::new(3, ndf, 4, 2, 1, true, Some(INIT), vb.pp(0))?];
        for n in 1..=n_layers {
            let stride = if n < n_layers { 2 } else { 1 };
            convs.push(Conv2d::new(width(n - 1), width(n), 4, stride, 1, true, Some(INIT), vb.pp(2 + 3 * (n - 1)))?);
        }
        convs.push(Conv2d::new(width(n_layers), 1, 4, 1, 1, true, Some(INIT), vb.pp(2 + 3 * n_layers))?);
        Ok(Self { config, vars, convs })
    }

    pub fn new(config: DiscriminatorConfig, seed: u64, device: &Device) -> Result<Self> {
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        Self::build(config, vars, vb)
    }

    pub fn from_tensors(tensors: &HashMap<String, Tensor>, prefix: &str, source: &str, device: &Device) -> Result<Self> {
        let config = DiscriminatorConfig::infer(tensors, prefix, source)?;
        let d = Self::new(config, 0, device)?;
        load_varmap(&d.vars, tensors, prefix, source)?;
        Ok(d)
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let last = self.convs.len() - 1;
        let mut y = candle_nn::ops::leaky_relu(&self.convs[0].forward(x)?, 0.2)?;
        for c in &self.convs[1..last] {
            y = in_act(c.forward(&y)?, true)?;
        }
        self.convs[last].forward(&y)
    }
}

/// Which generator of a CycleGAN pair: `a2b` is `G_A` (A -> B), `b2a` is `G_B`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    A2b,
    B2a,
}

crate::named_values!(Direction { A2b => "a2b", B2a => "b2a" });

impl Direction {
    /// The reference implementation's (and ganime checkpoints') network name.
    pub fn generator_name(self) -> &'static str {
        match self {
            Direction::A2b => "G_A",
            Direction::B2a => "G_B",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "a2b" => Ok(Direction::A2b),
            "b2a" => Ok(Direction::B2a),
            other => bail!("unknown direction '{other}': use a2b or b2a"),
        }
    }
}

/// A generator from a reference `.pth` (`latest_net_G_A.pth`: keys `model.…`, direction ignored) or from a
/// ganime CycleGAN checkpoint / run folder (keys `G_A.model.…`, `G_B.model.…`, chosen by `direction`).
pub fn load_generator(path: &std::path::Path, direction: Direction, device: &Device) -> Result<ResnetGenerator> {
    let file = crate::io::checkpoint::resolve(path);
    let tensors = crate::io::weights::read_tensors(&file, device)?;
    let source = file.display().to_string();
    if tensors.contains_key("model.1.weight") {
        return ResnetGenerator::from_tensors(&tensors, "", &source, device);
    }
    let prefix = format!("{}.", direction.generator_name());
    if !tensors.contains_key(&format!("{prefix}model.1.weight")) {
        bail!("{source} holds neither a CycleGAN generator (`model.1.weight`) nor a CycleGAN checkpoint (`{prefix}model.1.weight`)");
    }
    ResnetGenerator::from_tensors(&tensors, &prefix, &source, device)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::io::weights::read_tensors;
    use crate::models::rel_err;

    /// `../shared/golden/cyclegan-*`: square and non-square inputs, to 1e-4 relative.
    #[test]
    fn imports_reference_checkpoints_and_matches_golden() -> Result<()> {
        let (Some(gp), Some(dp), Some(op)) = (
            shared_path("golden/cyclegan-resnet-netG.pth"),
            shared_path("golden/cyclegan-patchgan-netD.pth"),
            shared_path("golden/cyclegan-outputs.safetensors"),
        ) else {
            return Ok(());
        };
        let dev = Device::Cpu;
        let g = ResnetGenerator::from_tensors(&read_tensors(&gp, &dev)?, "", "netG", &dev)?;
        assert_eq!(g.config, GeneratorConfig { ngf: 8, n_blocks: 3 });
        let d = PatchDiscriminator::from_tensors(&read_tensors(&dp, &dev)?, "", "netD", &dev)?;
        assert_eq!(d.config, DiscriminatorConfig { ndf: 8, n_layers: 3 });
        let t = read_tensors(&op, &dev)?;
        for (out, net_out) in [
            ("g_out", g.forward(&t["x"])?),
            ("g_out_odd", g.forward(&t["x_odd"])?),
            ("d_out", d.forward(&t["d_in"])?),
            ("d_out_odd", d.forward(&t["x_odd"])?),
        ] {
            assert_eq!(net_out.dims(), t[out].dims(), "{out}");
            let e = rel_err(&net_out, &t[out]);
            eprintln!("cyclegan {out}: relative error {e:.2e}");
            assert!(e < 1e-4, "{out}: relative error {e}");
        }
        Ok(())
    }

    #[test]
    fn wrong_files_are_clear_errors() {
        let mut t = HashMap::new();
        t.insert("main.0.weight".to_string(), Tensor::zeros((2, 3, 4, 4), DType::F32, &Device::Cpu).unwrap());
        let err = ResnetGenerator::from_tensors(&t, "", "g.pth", &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("g.pth") && err.contains("model.1.weight"), "{err}");
        let err = PatchDiscriminator::from_tensors(&t, "", "d.pth", &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("d.pth"), "{err}");
    }
}
