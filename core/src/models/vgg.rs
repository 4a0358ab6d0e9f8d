//! VGG16 / VGG19 convolutional feature extractors (the perceptual networks of Gatys transfer, style-network
//! training and the quality metrics).
//!
//! Two key layouts load into the same struct:
//! - torchvision: `features.{N}.weight` / `.bias`, N the index in `vgg*.features` (a full `vgg19-*.pth` or
//!   `vgg16-*.pth` state dict loads as is; the classifier keys are ignored);
//! - named: `conv{B}_{I}.weight` / `.bias` (the shared Keras/Caffe VGG16 file,
//!   `weights/vgg16_keras_imagenet/vgg16_caffe_bgr_conv1_1-conv4_1.safetensors`).
//!
//! Channel widths are read from the weight shapes. The network is built only up to the deepest layer asked for,
//! so a file that stops early (conv4_1) works for every layer before it, and asking past it names the missing
//! layer and key.
//!
//! **Input**: `features` takes RGB images in **[0, 1]**, `[B, 3, H, W]`; `features_signed` takes [-1, 1] (the
//! range of the GAN generators). The input convention (torchvision mean/std or caffe BGR 0..255 minus mean) is
//! applied inside, as part of the graph, so gradients with respect to the [0, 1] image flow through it.

use crate::nn::{max_pool2d, Conv2d};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::path::Path;

/// The shared real ImageNet VGG16 (conv1_1 .. conv4_1, caffe convention), relative to the shared folder.
pub const VGG16_IMAGENET_SHARED: &str = "weights/vgg16_keras_imagenet/vgg16_caffe_bgr_conv1_1-conv4_1.safetensors";

/// `--vgg FILE` if given, else the shared ImageNet VGG16 (see `data::shared`), else an error saying how to get it.
pub fn default_vgg(given: Option<std::path::PathBuf>) -> anyhow::Result<std::path::PathBuf> {
    match given.or_else(|| crate::data::shared::shared_file(VGG16_IMAGENET_SHARED)) {
        Some(v) => Ok(v),
        None => anyhow::bail!("--vgg: give VGG16 or VGG19 weights ({})", crate::data::shared::missing_hint(VGG16_IMAGENET_SHARED)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VggArch {
    Vgg16,
    Vgg19,
}

crate::named_values!(VggArch { Vgg16 => "vgg16", Vgg19 => "vgg19" });

impl VggArch {
    /// Convolutions per block.
    fn blocks(self) -> [usize; 5] {
        match self {
            VggArch::Vgg16 => [2, 2, 3, 3, 3],
            VggArch::Vgg19 => [2, 2, 4, 4, 4],
        }
    }

    /// Layer names in `features` order: `conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, …`; a layer's
    /// position here is its torchvision `features` index.
    pub fn layer_names(self) -> Vec<String> {
        let mut names = Vec::new();
        for (b, &n) in self.blocks().iter().enumerate() {
            for i in 1..=n {
                names.push(format!("conv{}_{i}", b + 1));
                names.push(format!("relu{}_{i}", b + 1));
            }
            names.push(format!("pool{}", b + 1));
        }
        names
    }
}

/// How an RGB [0, 1] image becomes the network input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InputConvention {
    /// `(rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]` (torchvision weights).
    Torchvision,
    /// `bgr * 255 - [103.939, 116.779, 123.68]` (Caffe / Keras weights, the shared VGG16).
    Caffe,
}

/// Pooling between blocks: max as in the trained networks, or average as Gatys et al. suggest for synthesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Pooling {
    #[default]
    Max,
    Avg,
}

crate::named_values!(InputConvention { Torchvision => "torchvision", Caffe => "caffe" });
crate::named_values!(Pooling { Max => "max", Avg => "avg" });

/// How a weights file names its convolutions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyStyle {
    Torchvision,
    Named,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct VggOptions {
    /// None: detected from the keys (a file too short to tell is taken as VGG19 for torchvision keys and VGG16
    /// for named keys).
    pub arch: Option<VggArch>,
    /// None: torchvision for torchvision keys, caffe for named keys (the shared file).
    pub convention: Option<InputConvention>,
    pub pooling: Pooling,
}

enum Op {
    Conv(Conv2d),
    Relu,
    Pool,
}

pub struct Vgg {
    pub arch: VggArch,
    pub convention: InputConvention,
    pub pooling: Pooling,
    names: Vec<String>,
    ops: Vec<Op>,
}

/// Weights file key of conv layer `name` (at `features` index `index`).
fn conv_key(style: KeyStyle, name: &str, index: usize) -> String {
    match style {
        KeyStyle::Torchvision => format!("features.{index}"),
        KeyStyle::Named => name.to_string(),
    }
}

impl Vgg {
    /// Builds the network up to `deepest` (a layer name such as `relu4_1`) from a `VarBuilder` keyed like the
    /// weights file. `tensors` (the same file's tensors) supplies the shapes: widths are not hard-coded.
    fn build(tensors: &HashMap<String, Tensor>, style: KeyStyle, arch: VggArch, deepest: usize, vb: VarBuilder, source: &str) -> Result<Vec<Op>> {
        let names = arch.layer_names();
        let mut ops = Vec::new();
        let mut c_in = 3;
        let mut last_conv: Option<&str> = None;
        for (index, name) in names.iter().enumerate().take(deepest + 1) {
            let op = if name.starts_with("conv") {
                let key = conv_key(style, name, index);
                let Some(w) = tensors.get(&format!("{key}.weight")) else {
                    bail!(
                        "{source} has no {name} (`{key}.weight`): the file stops at {}; ask for an earlier layer",
                        last_conv.unwrap_or("(no convolution at all)")
                    );
                };
                let (c_out, wc_in, kh, kw) = w.dims4().with_context(|| format!("{source}: `{key}.weight` is not a 4-d conv kernel"))?;
                if wc_in != c_in || kh != 3 || kw != 3 {
                    bail!("{source}: `{key}.weight` has shape {:?}; {name} of {arch:?} needs [_, {c_in}, 3, 3]", w.dims());
                }
                last_conv = Some(name);
                c_in = c_out;
                Op::Conv(
                    Conv2d::new(wc_in, c_out, 3, 1, 1, true, None, vb.pp(&key)).with_context(|| format!("{source}: cannot load {name} (`{key}`)"))?,
                )
            } else if name.starts_with("relu") {
                Op::Relu
            } else {
                Op::Pool
            };
            ops.push(op);
        }
        Ok(ops)
    }

    /// Loads a VGG from `.pth` / `.safetensors` tensors, built up to the deepest of `layers`.
    pub fn from_tensors(
        tensors: &HashMap<String, Tensor>,
        layers: &[&str],
        options: VggOptions,
        dtype: DType,
        device: &Device,
        source: &str,
    ) -> Result<Self> {
        let (style, arch, convention) = resolve(tensors, options, source)?;
        let names = arch.layer_names();
        if layers.is_empty() {
            bail!("no VGG layer requested");
        }
        let mut deepest = 0;
        for l in layers {
            let i = names.iter().position(|n| n == l).with_context(|| format!("`{l}` is not a {arch:?} layer; layers are {}", names.join(", ")))?;
            deepest = deepest.max(i);
        }
        // Only the convs actually built are fetched, so extra keys (classifier, deeper convs) are ignored.
        let vb = VarBuilder::from_tensors(tensors.clone(), dtype, device);
        let ops = Self::build(tensors, style, arch, deepest, vb, source)?;
        Ok(Self { arch, convention, pooling: options.pooling, names, ops })
    }

    /// Loads a VGG weights file, built up to the deepest of `layers`.
    pub fn load(path: &Path, layers: &[&str], options: VggOptions, dtype: DType, device: &Device) -> Result<Self> {
        let tensors = crate::io::weights::read_tensors(path, &Device::Cpu)?;
        Self::from_tensors(&tensors, layers, options, dtype, device, &path.display().to_string())
    }

    /// The shared ImageNet VGG16 (caffe convention, max pooling) up to the deepest of `layers`
    /// (at most `relu4_1`), in f32.
    pub fn vgg16_imagenet(path: &Path, layers: &[&str], device: &Device) -> Result<Self> {
        Self::load(path, layers, VggOptions { arch: Some(VggArch::Vgg16), ..Default::default() }, DType::F32, device)
    }

    /// Layers this network can produce (those built).
    pub fn available_layers(&self) -> &[String] {
        &self.names[..self.ops.len()]
    }

    /// Number of channels of a layer's output.
    pub fn channels(&self, layer: &str) -> Result<usize> {
        let i = self.position(layer)?;
        let mut c = 3;
        for op in &self.ops[..=i] {
            if let Op::Conv(conv) = op {
                c = conv.weight.dim(0)?;
            }
        }
        Ok(c)
    }

    fn position(&self, layer: &str) -> Result<usize> {
        match self.names.iter().position(|n| n == layer) {
            Some(i) if i < self.ops.len() => Ok(i),
            Some(_) => bail!("layer `{layer}` is deeper than this VGG was built for (up to {})", self.names[self.ops.len() - 1]),
            None => bail!("`{layer}` is not a {:?} layer; layers are {}", self.arch, self.names.join(", ")),
        }
    }

    /// RGB [0, 1] `[B, 3, H, W]` -> the network input of this convention (differentiable).
    pub fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor> {
        let dev = rgb01.device();
        let dtype = rgb01.dtype();
        let channel = |v: [f64; 3]| Tensor::new(&v, dev)?.to_dtype(dtype)?.reshape((1, 3, 1, 1));
        Ok(match self.convention {
            InputConvention::Torchvision => rgb01.broadcast_sub(&channel([0.485, 0.456, 0.406])?)?.broadcast_div(&channel([0.229, 0.224, 0.225])?)?,
            InputConvention::Caffe => {
                let bgr = rgb01.contiguous()?.index_select(&Tensor::new(&[2u32, 1, 0], dev)?, 1)?;
                (bgr * 255.0)?.broadcast_sub(&channel([103.939, 116.779, 123.68])?)?
            }
        })
    }

    /// Features of already preprocessed input `x` at `layers`, in the order asked.
    pub fn forward_preprocessed(&self, x: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        let wanted = layers.iter().map(|l| self.position(l)).collect::<Result<Vec<_>>>()?;
        let deepest = *wanted.iter().max().context("no VGG layer requested")?;
        let mut found: Vec<Option<Tensor>> = vec![None; layers.len()];
        let mut h = x.clone();
        for (i, op) in self.ops.iter().enumerate().take(deepest + 1) {
            h = match op {
                Op::Conv(conv) => conv.forward(&h)?,
                Op::Relu => crate::nn::kernels::activation::relu(&h)?,
                Op::Pool => match self.pooling {
                    Pooling::Max => max_pool2d(&h, 2)?,
                    Pooling::Avg => avg_pool2(&h)?,
                },
            };
            for (slot, &w) in found.iter_mut().zip(&wanted) {
                if w == i {
                    *slot = Some(h.clone());
                }
            }
        }
        Ok(found.into_iter().map(|t| t.expect("every wanted layer is visited")).collect())
    }

    /// Features of RGB images in **[0, 1]** at `layers` (e.g. `["relu3_3", "relu4_1"]`), in the order asked.
    pub fn features(&self, rgb01: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        self.forward_preprocessed(&self.preprocess(rgb01)?, layers)
    }

    /// Features of images in **[-1, 1]** (generator outputs).
    pub fn features_signed(&self, images: &Tensor, layers: &[&str]) -> Result<Vec<Tensor>> {
        self.features(&((images + 1.0)? * 0.5)?, layers)
    }
}

/// Key layout, architecture and input convention of a VGG weights file (options override detection).
fn resolve(tensors: &HashMap<String, Tensor>, options: VggOptions, source: &str) -> Result<(KeyStyle, VggArch, InputConvention)> {
    let style = if tensors.contains_key("features.0.weight") {
        KeyStyle::Torchvision
    } else if tensors.contains_key("conv1_1.weight") {
        KeyStyle::Named
    } else {
        bail!("{source} is not a VGG: it has neither `features.0.weight` (torchvision) nor `conv1_1.weight`");
    };
    let arch = options.arch.unwrap_or(match style {
        // features.16 is conv3_4 in VGG19 and a pool in VGG16; features.17 is conv4_1 in VGG16.
        KeyStyle::Torchvision if tensors.contains_key("features.17.weight") => VggArch::Vgg16,
        KeyStyle::Torchvision => VggArch::Vgg19,
        KeyStyle::Named if tensors.contains_key("conv3_4.weight") => VggArch::Vgg19,
        KeyStyle::Named => VggArch::Vgg16,
    });
    let convention = options.convention.unwrap_or(match style {
        KeyStyle::Torchvision => InputConvention::Torchvision,
        KeyStyle::Named => InputConvention::Caffe,
    });
    Ok((style, arch, convention))
}

/// The architecture a VGG weights file holds (or `options.arch`).
pub fn detect_arch(tensors: &HashMap<String, Tensor>, options: VggOptions, source: &str) -> Result<VggArch> {
    Ok(resolve(tensors, options, source)?.1)
}

/// 2×2 average pooling, stride 2 (odd edges dropped, like `nn.AvgPool2d(2)`).
fn avg_pool2(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / 2, w / 2);
    x.narrow(2, 0, ho * 2)?.narrow(3, 0, wo * 2)?.reshape((b, c, ho, 2, wo, 2))?.mean(5)?.mean(3)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;

    #[test]
    fn layer_names_follow_torchvision_indices() {
        let n19 = VggArch::Vgg19.layer_names();
        assert_eq!(n19[1], "relu1_1");
        assert_eq!(n19[6], "relu2_1");
        assert_eq!(n19[11], "relu3_1");
        assert_eq!(n19[17], "relu3_4");
        assert_eq!(n19[22], "relu4_2");
        assert_eq!(n19[29], "relu5_1");
        let n16 = VggArch::Vgg16.layer_names();
        assert_eq!(n16[16], "pool3");
        assert_eq!(n16[17], "conv4_1");
        assert_eq!(n16.len(), 31);
    }

    #[test]
    fn vgg19_seeded_matches_golden_both_conventions() -> Result<()> {
        let (Some(w), Some(g)) = (shared_path("golden/vgg19-features-seeded.pth"), shared_path("golden/vgg19-features.safetensors")) else {
            return Ok(());
        };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        let layers = ["relu1_1", "relu2_1", "relu3_1", "relu3_4"];
        for (conv, name) in [(InputConvention::Torchvision, "torchvision"), (InputConvention::Caffe, "caffe")] {
            let vgg = Vgg::load(&w, &layers, VggOptions { convention: Some(conv), ..Default::default() }, DType::F32, &Device::Cpu)?;
            assert_eq!(vgg.arch, VggArch::Vgg19);
            let input = vgg.preprocess(&golden["image"])?;
            assert!(rel_err(&input, &golden[&format!("input_{name}")]) < 1e-6);
            let feats = vgg.features(&golden["image"], &layers)?;
            for (f, l) in feats.iter().zip(layers) {
                let e = rel_err(f, &golden[&format!("{name}_{l}")]);
                eprintln!("vgg19 {name} {l}: relative error {e:.2e}");
                assert!(e < 1e-5, "{name} {l}: relative error {e}");
            }
        }
        Ok(())
    }

    #[test]
    fn missing_and_unknown_layers_are_clear_errors() -> Result<()> {
        let Some(w) = shared_path("golden/vgg19-features-seeded.pth") else { return Ok(()) };
        let err = Vgg::load(&w, &["relu4_2"], VggOptions::default(), DType::F32, &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("conv4_1") && err.contains("features.19.weight") && err.contains("conv3_4"), "{err}");
        let err = Vgg::load(&w, &["relu9_9"], VggOptions::default(), DType::F32, &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("relu9_9"), "{err}");
        let vgg = Vgg::load(&w, &["relu2_1"], VggOptions::default(), DType::F32, &Device::Cpu)?;
        let x = Tensor::zeros((1, 3, 8, 8), DType::F32, &Device::Cpu)?;
        assert!(vgg.features(&x, &["relu3_1"]).is_err());
        assert_eq!(vgg.channels("relu2_1")?, 32);
        Ok(())
    }

    #[test]
    fn vgg16_imagenet_matches_golden() -> Result<()> {
        let (Some(w), Some(g)) = (shared_path(VGG16_IMAGENET_SHARED), shared_path("golden/vgg16-imagenet-features.safetensors")) else {
            return Ok(());
        };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        let layers = ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_3", "relu4_1"];
        let vgg = Vgg::vgg16_imagenet(&w, &layers, &Device::Cpu)?;
        assert!(rel_err(&vgg.preprocess(&golden["x_rgb01"])?, &golden["x_caffe"]) < 1e-6);
        let feats = vgg.features(&golden["x_rgb01"], &layers)?;
        for (f, l) in feats.iter().zip(layers) {
            let stored = golden.keys().find(|k| k.starts_with(&format!("{l}_first"))).unwrap();
            let k = golden[stored].dim(1)?;
            let e = rel_err(&f.narrow(1, 0, k)?, &golden[stored]);
            eprintln!("vgg16 {l}: relative error {e:.2e} (first {k} channels)");
            assert!(e < 1e-4, "{l} first {k} channels: relative error {e}");
            let f64f = f.to_dtype(DType::F64)?;
            let mean = f64f.mean_keepdim(3)?.mean_keepdim(2)?.flatten_all()?;
            let meansq = f64f.sqr()?.mean_keepdim(3)?.mean_keepdim(2)?.flatten_all()?;
            let e1 = rel_err(&mean, &golden[&format!("{l}_chmean")]);
            let e2 = rel_err(&meansq, &golden[&format!("{l}_chmeansq")]);
            assert!(e1 < 1e-4 && e2 < 1e-4, "{l} channel statistics: {e1} {e2}");
        }
        Ok(())
    }
}
