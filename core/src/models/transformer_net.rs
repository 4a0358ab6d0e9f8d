//! pytorch/examples `fast_neural_style` `TransformerNet` (Johnson et al. feed-forward style network), keyed
//! exactly like the example's checkpoints (`conv1.conv2d.weight`, `in1.weight`, `res3.conv2.conv2d.bias`,
//! `deconv3.conv2d.weight`, …), so the `.pth` files users download for it load directly.
//!
//! Old checkpoints carry `in*.running_mean/var` buffers from torch <= 0.3; instance norm here always uses the
//! instance statistics, so those keys are simply never read (the example deletes them before loading).
//!
//! Widths and the number of residual blocks are read from the weight shapes, so the slim variant
//! (`TransformerNetConfig::slim`, for real-time use on CPUs) loads through the same code.
//! Input and output are RGB in 0..255 (`[B, 3, H, W]`); the output is not clamped. Output size follows the
//! network's arithmetic: H -> ceil(ceil(H/2)/2)*4 (67 -> 68).

use crate::nn::fused::NormActivation;
use crate::nn::{upsample_nearest2d, Conv2d, InstanceNorm2d};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarBuilder};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformerNetConfig {
    /// Channels after conv1, conv2, conv3 (the example: 32, 64, 128).
    pub widths: [usize; 3],
    /// Residual blocks at the bottleneck (the example: 5).
    pub residual_blocks: usize,
}

impl TransformerNetConfig {
    /// The pytorch/examples network.
    pub fn standard() -> Self {
        Self { widths: [32, 64, 128], residual_blocks: 5 }
    }

    /// Half the channels and three residual blocks: ~4x fewer multiply-adds, for live camera use on CPUs.
    pub fn slim() -> Self {
        Self { widths: [16, 32, 64], residual_blocks: 3 }
    }

    /// The config a weights file was trained with, read from its tensor shapes.
    pub fn infer(tensors: &HashMap<String, Tensor>, source: &str) -> Result<Self> {
        let out = |key: &str| -> Result<usize> {
            let t = tensors.get(key).with_context(|| format!("{source}: `{key}` is missing; not a fast-neural-style TransformerNet file"))?;
            Ok(t.dim(0)?)
        };
        let widths = [out("conv1.conv2d.weight")?, out("conv2.conv2d.weight")?, out("conv3.conv2d.weight")?];
        let residual_blocks = (1..).take_while(|i| tensors.contains_key(&format!("res{i}.conv1.conv2d.weight"))).count();
        if residual_blocks == 0 {
            bail!("{source}: no residual blocks (`res1.conv1.conv2d.weight` is missing)");
        }
        Ok(Self { widths, residual_blocks })
    }
}

/// `ConvLayer`: reflection pad k/2, then a k×k conv with `stride` (key prefix `conv2d`).
struct ConvLayer {
    conv: Conv2d,
    pad: usize,
}

impl ConvLayer {
    fn new(c_in: usize, c_out: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Self> {
        // PyTorch's default conv init (kaiming_uniform with a = sqrt(5)) is U(±1/sqrt(fan_in)).
        let bound = 1.0 / ((c_in * k * k) as f64).sqrt();
        let conv = Conv2d::new(c_in, c_out, k, stride, 0, true, Some(Init::Uniform { lo: -bound, up: bound }), vb.pp("conv2d"))?;
        Ok(Self { conv, pad: k / 2 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let p = self.pad;
        // On CPU, `Conv2d` runs the project's tiled im2col + GEMM kernel (`nn::kernels::conv2d`), at inference
        // with the reflection padding folded into its patch gather (see BENCHMARKS.md).
        Ok(self.conv.forward_reflect(x, (p, p, p, p))?)
    }
}

/// `UpsampleConvLayer`: nearest ×2, then a `ConvLayer`.
struct UpsampleConvLayer(ConvLayer);

impl UpsampleConvLayer {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(&upsample_nearest2d(x, 2)?)
    }
}

struct ResidualBlock {
    conv1: ConvLayer,
    in1: InstanceNorm2d,
    conv2: ConvLayer,
    in2: InstanceNorm2d,
}

impl ResidualBlock {
    fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: ConvLayer::new(c, c, 3, 1, vb.pp("conv1"))?,
            in1: InstanceNorm2d::new(c, true, vb.pp("in1"))?,
            conv2: ConvLayer::new(c, c, 3, 1, vb.pp("conv2"))?,
            in2: InstanceNorm2d::new(c, true, vb.pp("in2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.in1.forward_act(&self.conv1.forward(x)?, NormActivation::Relu)?;
        Ok((self.in2.forward_act(&self.conv2.forward(&y)?, NormActivation::None)? + x)?)
    }
}

pub struct TransformerNet {
    pub config: TransformerNetConfig,
    conv1: ConvLayer,
    in1: InstanceNorm2d,
    conv2: ConvLayer,
    in2: InstanceNorm2d,
    conv3: ConvLayer,
    in3: InstanceNorm2d,
    res: Vec<ResidualBlock>,
    deconv1: UpsampleConvLayer,
    in4: InstanceNorm2d,
    deconv2: UpsampleConvLayer,
    in5: InstanceNorm2d,
    deconv3: ConvLayer,
}

impl TransformerNet {
    pub fn new(config: &TransformerNetConfig, vb: VarBuilder) -> Result<Self> {
        let [c1, c2, c3] = config.widths;
        if c1 == 0 || c2 == 0 || c3 == 0 || config.residual_blocks == 0 {
            bail!("TransformerNet widths and residual blocks must be positive: {config:?}");
        }
        Ok(Self {
            config: config.clone(),
            conv1: ConvLayer::new(3, c1, 9, 1, vb.pp("conv1"))?,
            in1: InstanceNorm2d::new(c1, true, vb.pp("in1"))?,
            conv2: ConvLayer::new(c1, c2, 3, 2, vb.pp("conv2"))?,
            in2: InstanceNorm2d::new(c2, true, vb.pp("in2"))?,
            conv3: ConvLayer::new(c2, c3, 3, 2, vb.pp("conv3"))?,
            in3: InstanceNorm2d::new(c3, true, vb.pp("in3"))?,
            res: (1..=config.residual_blocks).map(|i| ResidualBlock::new(c3, vb.pp(format!("res{i}")))).collect::<Result<_>>()?,
            deconv1: UpsampleConvLayer(ConvLayer::new(c3, c2, 3, 1, vb.pp("deconv1"))?),
            in4: InstanceNorm2d::new(c2, true, vb.pp("in4"))?,
            deconv2: UpsampleConvLayer(ConvLayer::new(c2, c1, 3, 1, vb.pp("deconv2"))?),
            in5: InstanceNorm2d::new(c1, true, vb.pp("in5"))?,
            deconv3: ConvLayer::new(c1, 3, 9, 1, vb.pp("deconv3"))?,
        })
    }

    /// Loads a pytorch/examples checkpoint (`.pth`, zip or legacy format) or a safetensors file with its keys.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, dtype: DType, device: &Device, source: &str) -> Result<Self> {
        let config = TransformerNetConfig::infer(tensors, source)?;
        let vb = VarBuilder::from_tensors(tensors.clone(), dtype, device);
        Self::new(&config, vb).with_context(|| format!("{source}: tensors do not fit a TransformerNet {config:?}"))
    }

    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let tensors = crate::io::weights::read_tensors(path, &Device::Cpu)?;
        Self::from_tensors(&tensors, DType::F32, device, &path.display().to_string())
    }

    /// RGB 0..255 `[B, 3, H, W]` -> stylised RGB (unclamped, about 0..255).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = x.dims4()?;
        if c != 3 || h < 5 || w < 5 {
            bail!("TransformerNet needs a [B, 3, H, W] input with H, W >= 5, got {:?}", x.dims());
        }
        let y = self.in1.forward_act(&self.conv1.forward(x)?, NormActivation::Relu)?;
        let y = self.in2.forward_act(&self.conv2.forward(&y)?, NormActivation::Relu)?;
        let mut y = self.in3.forward_act(&self.conv3.forward(&y)?, NormActivation::Relu)?;
        for block in &self.res {
            y = block.forward(&y)?;
        }
        let y = self.in4.forward_act(&self.deconv1.forward(&y)?, NormActivation::Relu)?;
        let y = self.in5.forward_act(&self.deconv2.forward(&y)?, NormActivation::Relu)?;
        self.deconv3.forward(&y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;

    fn check(net: &TransformerNet, golden: &HashMap<String, Tensor>) -> Result<()> {
        for (x, y) in [("x_square", "y_square"), ("x_odd", "y_odd")] {
            let out = net.forward(&golden[x])?;
            assert_eq!(out.dims(), golden[y].dims(), "{y} shape");
            let e = rel_err(&out, &golden[y]);
            let max = (out.to_dtype(DType::F64)? - &golden[y])?.abs()?.max_all()?.to_scalar::<f64>()?;
            eprintln!("transformer_net {y}: relative error {e:.2e}, max abs {max:.2e}");
            assert!(e < 1e-5 && max < 1e-2, "{y}: relative error {e}, max abs {max}");
        }
        Ok(())
    }

    #[test]
    fn zip_and_legacy_checkpoints_match_golden() -> Result<()> {
        let Some(g) = shared_path("golden/fast-neural-style-outputs.safetensors") else { return Ok(()) };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        for file in ["golden/fast-neural-style-net.pth", "golden/fast-neural-style-net-legacy-format.pth"] {
            let Some(path) = shared_path(file) else { return Ok(()) };
            let net = TransformerNet::load(&path, &Device::Cpu)?;
            assert_eq!(net.config, TransformerNetConfig { widths: [8, 16, 32], residual_blocks: 5 });
            check(&net, &golden)?;
        }
        // The training path (variables, the project's GEMM convolution) gives the same outputs.
        let Some(path) = shared_path("golden/fast-neural-style-net.pth") else { return Ok(()) };
        let tensors = crate::io::weights::read_tensors(&path, &Device::Cpu)?;
        let vars = candle_nn::VarMap::new();
        let net = TransformerNet::new(&TransformerNetConfig::infer(&tensors, "test")?, VarBuilder::from_varmap(&vars, DType::F32, &Device::Cpu))?;
        crate::io::weights::load_varmap(&vars, &tensors, "", "test")?;
        check(&net, &golden)
    }

    #[test]
    fn slim_variant_builds_and_keeps_size() -> Result<()> {
        let vm = candle_nn::VarMap::new();
        let net = TransformerNet::new(&TransformerNetConfig::slim(), candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
        let y = net.forward(&Tensor::zeros((1, 3, 32, 40), DType::F32, &Device::Cpu)?)?;
        assert_eq!(y.dims(), [1, 3, 32, 40]);
        let t: HashMap<String, Tensor> = vm.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        assert_eq!(TransformerNetConfig::infer(&t, "slim")?, TransformerNetConfig::slim());
        Ok(())
    }
}
