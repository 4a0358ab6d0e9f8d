//! The AnimeGAN / AnimeGANv2 discriminator (TachibanaYoshino/AnimeGANv2 `net/discriminator.py`, `D_net`):
//! a 3×3 conv (ch/2) + LeakyReLU 0.2; then `n_dis - 1` times a stride-2 3×3 conv (×2) + LeakyReLU and a 3×3
//! conv (×4) + layer norm + LeakyReLU; a 3×3 conv + layer norm + LeakyReLU; a 3×3 conv to one channel. No
//! biases, zero padding 1, no spectral norm (the reference makes it optional). Output: a patch map of logits
//! at 1/2^(n_dis-1) of the input size. Keys: `layers.{i}.conv.weight`, `layers.{i}.norm.{weight,bias}`.

use crate::nn::layer_norm::LayerNorm2d;
use crate::nn::Conv2d;
use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnimeDiscriminatorConfig {
    /// The reference's `ch` (64); the first conv has ch/2 channels.
    pub channels: usize,
    /// The reference's `n_dis` (3): n_dis − 1 stride-2 stages.
    pub n_dis: usize,
}

impl Default for AnimeDiscriminatorConfig {
    fn default() -> Self {
        Self { channels: 64, n_dis: 3 }
    }
}

struct Layer {
    conv: Conv2d,
    norm: Option<LayerNorm2d>,
    /// LeakyReLU 0.2 after (all but the last layer).
    activation: bool,
}

pub struct AnimeDiscriminator {
    layers: Vec<Layer>,
}

impl AnimeDiscriminator {
    pub fn new(config: AnimeDiscriminatorConfig, vb: VarBuilder) -> Result<Self> {
        if config.channels < 2 || config.n_dis == 0 {
            bail!("discriminator channels must be at least 2 and n_dis at least 1, got {config:?}");
        }
        let vb = vb.pp("layers");
        let mut layers = Vec::new();
        let mut add = |c_in: usize, c_out: usize, stride: usize, norm: bool, activation: bool| -> Result<()> {
            let p = vb.pp(layers.len().to_string());
            let conv = Conv2d::new(c_in, c_out, 3, stride, 1, false, None, p.pp("conv"))?;
            let norm = if norm { Some(LayerNorm2d::new(c_out, 1e-5, p.pp("norm"))?) } else { None };
            layers.push(Layer { conv, norm, activation });
            Ok(())
        };
        let mut ch = config.channels / 2;
        add(3, ch, 1, false, true)?;
        let mut c_in = ch;
        for _ in 1..config.n_dis {
            add(c_in, ch * 2, 2, false, true)?;
            add(ch * 2, ch * 4, 1, true, true)?;
            c_in = ch * 4;
            ch *= 2;
        }
        add(c_in, ch * 2, 1, true, true)?;
        add(ch * 2, 1, 1, false, false)?;
        Ok(Self { layers })
    }

    /// `[N, 3, H, W]` in [-1, 1] -> logits `[N, 1, H/2^(n_dis-1), W/2^(n_dis-1)]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        for layer in &self.layers {
            y = layer.conv.forward(&y)?;
            if let Some(n) = &layer.norm {
                y = n.forward(&y)?;
            }
            if layer.activation {
                y = crate::nn::kernels::activation::leaky_relu(&y, 0.2)?;
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shapes_and_parameter_count() -> Result<()> {
        let vm = candle_nn::VarMap::new();
        let d = AnimeDiscriminator::new(AnimeDiscriminatorConfig::default(), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
        let y = d.forward(&Tensor::zeros((2, 3, 64, 48), DType::F32, &Device::Cpu)?)?;
        assert_eq!(y.dims(), &[2, 1, 16, 12]);
        // Reference D_net(ch=64, n_dis=3) conv weights: 3·32, 32·64, 64·128, 128·128, 128·256, 256·256, 256·1
        // (×9), plus layer norms (128 + 256 + 256) × 2.
        let convs = 9 * (3 * 32 + 32 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256);
        let norms = 2 * (128 + 256 + 256);
        let total: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(total, convs + norms);
        Ok(())
    }
}
