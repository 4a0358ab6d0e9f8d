//! The AnimeGANv2 generator in the layout of the public PyTorch port (bryandlee/animegan2-pytorch `model.py`):
//! `block_a` … `block_e`, `out_layer`, keyed exactly like its `.pt` files (`block_a.0.1.weight`,
//! `block_c.1.layers.1.1.bias`, `out_layer.0.weight`, …). Channel widths are read from the tensor shapes, so
//! full-width checkpoints (face_paint_512_v2, paprika, …) and the reduced-width golden load alike.
//!
//! Two forward conventions ([`ResizeConvention`]): the port's (`align_corners` bilinear, GroupNorm eps 1e-5) and
//! the original TF graph's (`tf_legacy` resize, layer-norm eps 1e-12).

use crate::io::weights::read_tensors;
use crate::nn::bilinear::{resize_bilinear, ResizeConvention};
use crate::nn::depthwise::DepthwiseConv2d;
use crate::nn::fused;
use crate::nn::layer_norm::LayerNorm2d;
use crate::nn::{reflection_pad2d, Conv2d};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use std::collections::HashMap;
use std::path::Path;

impl ResizeConvention {
    /// The normalisation epsilon that goes with each convention.
    pub fn norm_eps(self) -> f64 {
        match self {
            ResizeConvention::AlignCorners => 1e-5,
            ResizeConvention::TfLegacy => 1e-12,
        }
    }
}

enum ConvKind {
    Dense(Conv2d),
    Depthwise(DepthwiseConv2d),
}

/// PyTorch's default conv initialisation (kaiming-uniform with a = √5: U(±1/√fan_in)), as the PyTorch port's
/// modules start. A new generator starts from it rather than DCGAN's N(0, 0.02): with that, the unnormalised
/// 1×1 output conv gives outputs of std 0.02 (a flat gray), and 200 steps of pixel-L1 reconstruction at 2e-4
/// left them gray (L1 0.28–0.36; 0.17–0.20 from this init, as PyTorch's port reaches).
fn torch_default_init(fan_in: usize) -> candle_nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    candle_nn::Init::Uniform { lo: -bound, up: bound }
}

/// `ConvNormLReLU`: `.0` reflection pad (left, right, top, bottom), `.1` conv (no padding), `.2` GroupNorm(1),
/// `.3` LeakyReLU(0.2).
struct ConvNormLRelu {
    pad: (usize, usize, usize, usize),
    conv: ConvKind,
    norm: LayerNorm2d,
}

impl ConvNormLRelu {
    #[allow(clippy::too_many_arguments)]
    fn new(c_in: usize, c_out: usize, k: usize, stride: usize, pad: (usize, usize, usize, usize), depthwise: bool, vb: VarBuilder) -> Result<Self> {
        let conv = if depthwise {
            ConvKind::Depthwise(DepthwiseConv2d::new(c_out, k, true, vb.pp("1"))?)
        } else {
            ConvKind::Dense(Conv2d::new(c_in, c_out, k, stride, 0, false, Some(torch_default_init(c_in * k * k)), vb.pp("1"))?)
        };
        Ok(Self { pad, conv, norm: LayerNorm2d::new(c_out, 1e-5, vb.pp("2"))? })
    }

    /// 3×3, stride 1, reflect pad 1 (the port's default).
    fn same(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Self::new(c_in, c_out, 3, 1, (1, 1, 1, 1), false, vb)
    }

    /// 3×3, stride 2, reflect pad only right and bottom (`padding=(0, 1, 0, 1)`): H, W -> floor(H/2), floor(W/2).
    fn down(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        Self::new(c_in, c_out, 3, 2, (0, 1, 0, 1), false, vb)
    }

    fn forward(&self, x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        let (l, r, t, b) = self.pad;
        if let (ConvKind::Depthwise(c), (1, 1, 1, 1), true) = (&self.conv, self.pad, inference(&self.norm)) {
            let y = fused::depthwise3x3_reflect(x, &c.weight, c.bias.as_ref())?;
            return fused::layer_norm_affine_lrelu(&y, &self.norm.weight, &self.norm.bias, eps, Some(0.2));
        }
        let y = match &self.conv {
            ConvKind::Dense(c) => c.forward_reflect(x, self.pad)?,
            ConvKind::Depthwise(c) => c.forward(&if l + r + t + b > 0 { reflection_pad2d(x, l, r, t, b)? } else { x.clone() })?,
        };
        if inference(&self.norm) {
            return fused::layer_norm_affine_lrelu(&y, &self.norm.weight, &self.norm.bias, eps, Some(0.2));
        }
        crate::nn::kernels::activation::leaky_relu(&norm(&self.norm, &y, eps)?, 0.2)
    }
}

/// Weights that are not trainable variables: the fused inference kernels apply (they build no autograd graph).
fn inference(n: &LayerNorm2d) -> bool {
    !n.weight.is_variable()
}

fn norm(n: &LayerNorm2d, x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    if inference(n) {
        return fused::layer_norm_affine_lrelu(x, &n.weight, &n.bias, eps, None);
    }
    n.forward_with_eps(x, eps)
}

/// `InvertedResBlock(in, out, expansion 2)`: 1×1 expand, depthwise 3×3 (with bias), 1×1 project, GroupNorm;
/// residual when in == out.
struct InvertedResBlock {
    expand: ConvNormLRelu,
    depthwise: ConvNormLRelu,
    project: Conv2d,
    norm: LayerNorm2d,
    residual: bool,
}

impl InvertedResBlock {
    fn new(c_in: usize, c_out: usize, vb: VarBuilder) -> Result<Self> {
        let mid = 2 * c_in;
        let vb = vb.pp("layers");
        Ok(Self {
            expand: ConvNormLRelu::new(c_in, mid, 1, 1, (0, 0, 0, 0), false, vb.pp("0"))?,
            depthwise: ConvNormLRelu::new(mid, mid, 3, 1, (1, 1, 1, 1), true, vb.pp("1"))?,
            project: Conv2d::new(mid, c_out, 1, 1, 0, false, Some(torch_default_init(mid)), vb.pp("2"))?,
            norm: LayerNorm2d::new(c_out, 1e-5, vb.pp("3"))?,
            residual: c_in == c_out,
        })
    }

    fn forward(&self, x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        let y = self.depthwise.forward(&self.expand.forward(x, eps)?, eps)?;
        let y = norm(&self.norm, &self.project.forward(&y)?, eps)?;
        if self.residual {
            x + y
        } else {
            Ok(y)
        }
    }
}

enum Block {
    Cnl(ConvNormLRelu),
    Irb(InvertedResBlock),
}

impl Block {
    fn forward(&self, x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        match self {
            Block::Cnl(b) => b.forward(x, eps),
            Block::Irb(b) => b.forward(x, eps),
        }
    }
}

fn run(blocks: &[Block], x: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    blocks.iter().try_fold(x.clone(), |y, b| b.forward(&y, eps))
}

/// The four channel widths (32, 64, 128, 256 in the released checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AnimeGanWidths {
    pub c32: usize,
    pub c64: usize,
    pub c128: usize,
    pub c256: usize,
}

impl AnimeGanWidths {
    pub const RELEASED: Self = Self { c32: 32, c64: 64, c128: 128, c256: 256 };

    /// Reads the widths from a state dict's shapes; a file of another kind is an error naming `source`.
    pub fn infer(tensors: &HashMap<String, Tensor>, source: &str) -> Result<Self> {
        let out = |key: &str| -> Result<usize> {
            let t = tensors
                .get(key)
                .with_context(|| format!("{source}: no `{key}`; not an AnimeGANv2 generator (bryandlee/animegan2-pytorch layout)"))?;
            Ok(t.dim(0)?)
        };
        Ok(Self {
            c32: out("block_a.0.1.weight")?,
            c64: out("block_a.1.1.weight")?,
            c128: out("block_b.0.1.weight")?,
            c256: out("block_c.1.layers.2.weight")?,
        })
    }
}

pub struct AnimeGanV2 {
    pub widths: AnimeGanWidths,
    block_a: Vec<Block>,
    block_b: Vec<Block>,
    block_c: Vec<Block>,
    block_d: Vec<Block>,
    block_e: Vec<Block>,
    out_layer: Conv2d,
}

impl AnimeGanV2 {
    pub fn new(widths: AnimeGanWidths, vb: VarBuilder) -> Result<Self> {
        let AnimeGanWidths { c32, c64, c128, c256 } = widths;
        let cnl = |b: ConvNormLRelu| Block::Cnl(b);
        let (a, b, c, d, e) = (vb.pp("block_a"), vb.pp("block_b"), vb.pp("block_c"), vb.pp("block_d"), vb.pp("block_e"));
        Ok(Self {
            widths,
            block_a: vec![
                cnl(ConvNormLRelu::new(3, c32, 7, 1, (3, 3, 3, 3), false, a.pp("0"))?),
                cnl(ConvNormLRelu::down(c32, c64, a.pp("1"))?),
                cnl(ConvNormLRelu::same(c64, c64, a.pp("2"))?),
            ],
            block_b: vec![cnl(ConvNormLRelu::down(c64, c128, b.pp("0"))?), cnl(ConvNormLRelu::same(c128, c128, b.pp("1"))?)],
            block_c: vec![
                cnl(ConvNormLRelu::same(c128, c128, c.pp("0"))?),
                Block::Irb(InvertedResBlock::new(c128, c256, c.pp("1"))?),
                Block::Irb(InvertedResBlock::new(c256, c256, c.pp("2"))?),
                Block::Irb(InvertedResBlock::new(c256, c256, c.pp("3"))?),
                Block::Irb(InvertedResBlock::new(c256, c256, c.pp("4"))?),
                cnl(ConvNormLRelu::same(c256, c128, c.pp("5"))?),
            ],
            block_d: vec![cnl(ConvNormLRelu::same(c128, c128, d.pp("0"))?), cnl(ConvNormLRelu::same(c128, c128, d.pp("1"))?)],
            block_e: vec![
                cnl(ConvNormLRelu::same(c128, c64, e.pp("0"))?),
                cnl(ConvNormLRelu::same(c64, c64, e.pp("1"))?),
                cnl(ConvNormLRelu::new(c64, c32, 7, 1, (3, 3, 3, 3), false, e.pp("2"))?),
            ],
            out_layer: Conv2d::new(c32, 3, 1, 1, 0, false, Some(torch_default_init(c32)), vb.pp("out_layer").pp("0"))?,
        })
    }

    /// Builds the generator from a state dict (extra keys are ignored; missing or mis-shaped ones are errors).
    pub fn from_tensors(tensors: HashMap<String, Tensor>, source: &str, device: &Device) -> Result<Self> {
        Self::from_tensors_as(tensors, DType::F32, source, device)
    }

    /// As `from_tensors`, with the weights in `dtype` (inputs must then be in `dtype` too).
    pub fn from_tensors_as(tensors: HashMap<String, Tensor>, dtype: DType, source: &str, device: &Device) -> Result<Self> {
        let widths = AnimeGanWidths::infer(&tensors, source)?;
        let vb = VarBuilder::from_tensors(tensors, dtype, device);
        Self::new(widths, vb).with_context(|| format!("{source}: not a complete AnimeGANv2 generator"))
    }

    /// Loads a `.pt`/`.pth` (zip-format state dict) or `.safetensors` file, or the generator of a ganime
    /// AnimeGAN checkpoint (a run folder or its `checkpoint.safetensors`, keys `G.…`).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let (tensors, source) = Self::read_state_dict(path, device)?;
        Self::from_tensors(tensors, &source, device)
    }

    /// The generator's tensors (keys as in the PyTorch port) from a `.pt`/`.safetensors` file or a ganime
    /// AnimeGAN run (folder or checkpoint, `G.` prefix dropped), and the file's name for messages.
    pub fn read_state_dict(path: &Path, device: &Device) -> Result<(HashMap<String, Tensor>, String)> {
        let file = crate::io::checkpoint::resolve(path);
        let mut tensors = read_tensors(&file, device)?;
        if !tensors.contains_key("block_a.0.1.weight") && tensors.contains_key("G.block_a.0.1.weight") {
            tensors = tensors.into_iter().filter_map(|(k, t)| k.strip_prefix("G.").map(|k| (k.to_string(), t))).collect();
        }
        Ok((tensors, file.display().to_string()))
    }

    /// `[N, 3, H, W]` in [-1, 1] -> same size in [-1, 1]. H and W must be multiples of 4 (the filter pads).
    pub fn forward(&self, x: &Tensor, convention: ResizeConvention) -> Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        if c != 3 || h % 4 != 0 || w % 4 != 0 || h < 8 || w < 8 {
            bail!("AnimeGANv2 needs a [N, 3, H, W] input with H and W multiples of 4 and at least 8, got {:?}", x.dims());
        }
        let eps = convention.norm_eps();
        let y = run(&self.block_a, x, eps)?;
        let (_, _, h2, w2) = y.dims4()?;
        let y = run(&self.block_c, &run(&self.block_b, &y, eps)?, eps)?;
        let y = run(&self.block_d, &resize_bilinear(&y, h2, w2, convention)?, eps)?;
        let y = run(&self.block_e, &resize_bilinear(&y, h, w, convention)?, eps)?;
        Ok(crate::nn::kernels::activation::tanh(&self.out_layer.forward(&y)?)?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;

    /// `../shared/golden/animeganv2-*`: square and wide inputs, both conventions, to 1e-4 relative.
    #[test]
    fn matches_golden_in_both_conventions() -> Result<()> {
        let (Some(net), Some(outs)) = (shared_path("golden/animeganv2-net.pt"), shared_path("golden/animeganv2-outputs.safetensors")) else {
            return Ok(());
        };
        let dev = Device::Cpu;
        let g = AnimeGanV2::load(&net, &dev)?;
        assert_eq!(g.widths, AnimeGanWidths { c32: 8, c64: 16, c128: 32, c256: 64 });
        let t = read_tensors(&outs, &dev)?;
        for shape in ["square", "wide"] {
            for (conv, name) in [(ResizeConvention::AlignCorners, "align_corners"), (ResizeConvention::TfLegacy, "tf_legacy")] {
                let y = g.forward(&t[&format!("x_{shape}")], conv)?;
                let e = rel_err(&y, &t[&format!("y_{shape}_{name}")]);
                assert!(e < 1e-4, "{shape} {name}: relative error {e}");
                eprintln!("animegan {shape} {name}: relative error {e:.2e}");
            }
        }
        Ok(())
    }

    /// A new generator starts with outputs of a photo's order of contrast, not a flat gray (see
    /// `torch_default_init`): with DCGAN's N(0, 0.02) it was 0.02.
    #[test]
    fn new_generator_outputs_are_not_flat() -> Result<()> {
        let vm = candle_nn::VarMap::new();
        let g = AnimeGanV2::new(
            AnimeGanWidths { c32: 8, c64: 16, c128: 32, c256: 64 },
            crate::nn::init::seeded_var_builder(&vm, 1, DType::F32, &Device::Cpu),
        )?;
        let x = crate::nn::gradcheck::seeded(&[1, 3, 32, 32], 3)?.to_dtype(DType::F32)?;
        let y = g.forward(&x, ResizeConvention::AlignCorners)?;
        let std = y.broadcast_sub(&y.mean_all()?)?.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        assert!(std > 0.15, "output std {std}");
        Ok(())
    }

    /// The training path (trainable weights) end to end: every weight's autograd gradient against central
    /// differences in f64, so no building block's backward can be silently wrong inside the generator.
    #[test]
    fn weight_gradients_match_finite_differences() -> Result<()> {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let g = AnimeGanV2::new(AnimeGanWidths { c32: 2, c64: 3, c128: 4, c256: 4 }, crate::nn::init::seeded_var_builder(&vm, 5, DType::F64, &dev))?;
        let x = crate::nn::gradcheck::seeded(&[1, 3, 8, 12], 1)?;
        let r = crate::nn::gradcheck::seeded(&[1, 3, 8, 12], 2)?;
        let objective = || -> Result<Tensor> { Ok((g.forward(&x, ResizeConvention::AlignCorners)? * &r)?.sum_all()?) };
        let grads = objective()?.backward()?;
        let vars = vm.data().lock().unwrap().clone();
        assert!(vars.len() > 30);
        for (name, var) in vars {
            let analytic: Vec<f64> = grads.get(var.as_tensor()).with_context(|| format!("no gradient for {name}"))?.flatten_all()?.to_vec1()?;
            let base: Vec<f64> = var.as_tensor().flatten_all()?.to_vec1()?;
            // A few elements per tensor keep the test fast.
            for i in [0, base.len() / 2, base.len() - 1] {
                let at = |d: f64| -> Result<f64> {
                    let mut v = base.clone();
                    v[i] += d;
                    var.set(&Tensor::from_vec(v, var.as_tensor().dims(), &dev)?)?;
                    Ok(objective()?.to_scalar::<f64>()?)
                };
                let eps = 1e-6;
                let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps);
                var.set(&Tensor::from_vec(base.clone(), var.as_tensor().dims(), &dev)?)?;
                let err = (numeric - analytic[i]).abs();
                assert!(err <= 1e-5 * (1.0 + numeric.abs()), "{name}[{i}]: numeric {numeric}, autograd {}", analytic[i]);
            }
        }
        Ok(())
    }

    #[test]
    fn wrong_file_and_bad_size_are_clear_errors() -> Result<()> {
        let mut t = HashMap::new();
        t.insert("model.1.weight".to_string(), Tensor::zeros((2, 3, 7, 7), DType::F32, &Device::Cpu)?);
        let err = AnimeGanV2::from_tensors(t, "x.pt", &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("x.pt") && err.contains("block_a.0.1.weight"), "{err}");
        let vm = candle_nn::VarMap::new();
        let g = AnimeGanV2::new(AnimeGanWidths { c32: 2, c64: 2, c128: 2, c256: 2 }, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
        let err = g.forward(&Tensor::zeros((1, 3, 10, 12), DType::F32, &Device::Cpu)?, ResizeConvention::AlignCorners).err().unwrap();
        assert!(err.to_string().contains("multiples of 4"), "{err}");
        Ok(())
    }
}
