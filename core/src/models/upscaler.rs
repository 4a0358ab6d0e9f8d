//! A small learned 2× upscaler (ESPCN, Shi et al. 2016, with a residual on bilinear up-sampling): three convs at
//! the low resolution, then a sub-pixel shuffle. For generated characters (64 → 128 → 256) and filtered frames,
//! where Lanczos blurs the line art.
//!
//! # Shapes
//! `[N, 3, H, W]` in [-1, 1] -> `[N, 3, 2H, 2W]` in [-1, 1].

use crate::nn::Conv2d;
use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpscalerConfig {
    /// Channels of the hidden convs.
    pub width: usize,
    /// Up-scaling factor of one pass (2).
    pub factor: usize,
}

impl Default for UpscalerConfig {
    fn default() -> Self {
        Self { width: 32, factor: 2 }
    }
}

impl UpscalerConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=256).contains(&self.width) {
            bail!("upscaler width {} is outside 1..=256", self.width);
        }
        if !(2..=4).contains(&self.factor) {
            bail!("upscaler factor {} is outside 2..=4", self.factor);
        }
        Ok(())
    }
}

pub struct Upscaler {
    pub config: UpscalerConfig,
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
}

fn conv(c_in: usize, c_out: usize, k: usize, vb: VarBuilder) -> candle_core::Result<Conv2d> {
    Conv2d::new(c_in, c_out, k, 1, k / 2, true, None, vb)
}

impl Upscaler {
    /// Keys `conv1`, `conv2`, `conv3` (`.weight`, `.bias`).
    pub fn new(config: UpscalerConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let w = config.width;
        let r = config.factor;
        Ok(Self {
            config,
            conv1: conv(3, w, 5, vb.pp("conv1"))?,
            conv2: conv(w, w, 3, vb.pp("conv2"))?,
            conv3: conv(w, 3 * r * r, 3, vb.pp("conv3"))?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.config.factor;
        let y = self.conv1.forward(x)?.relu()?;
        let y = self.conv2.forward(&y)?.relu()?;
        let residual = pixel_shuffle(&self.conv3.forward(&y)?, r)?;
        // The network learns what bilinear up-sampling misses; the input needs no gradient.
        let base = x.detach().upsample_bilinear2d(h * r, w * r, false)?;
        (base + residual)?.clamp(-1f32, 1f32)
    }
}

/// `[N, C·r², H, W]` -> `[N, C, H·r, W·r]` (PyTorch's `pixel_shuffle`).
pub fn pixel_shuffle(x: &Tensor, r: usize) -> candle_core::Result<Tensor> {
    let (n, cr2, h, w) = x.dims4()?;
    let c = cr2 / (r * r);
    x.reshape((n, c, r, r, h, w))?.permute((0, 1, 4, 2, 5, 3))?.reshape((n, c, h * r, w * r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn pixel_shuffle_matches_pytorch_layout() -> candle_core::Result<()> {
        // PyTorch: out[n, c, h*r + i, w*r + j] = in[n, c*r*r + i*r + j, h, w].
        let x = Tensor::arange(0f32, 8. * 3. * 2., &Device::Cpu)?.reshape((1, 8, 3, 2))?;
        let y = pixel_shuffle(&x, 2)?;
        assert_eq!(y.dims(), [1, 2, 6, 4]);
        let (xv, yv): (Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>) = (x.get(0)?.to_vec3()?, y.get(0)?.to_vec3()?);
        for c in 0..2 {
            for h in 0..3 {
                for w in 0..2 {
                    for i in 0..2 {
                        for j in 0..2 {
                            assert_eq!(yv[c][h * 2 + i][w * 2 + j], xv[c * 4 + i * 2 + j][h][w]);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn untrained_with_zero_residual_is_bilinear() -> Result<()> {
        let dev = Device::Cpu;
        let vb = VarBuilder::zeros(DType::F32, &dev);
        let up = Upscaler::new(UpscalerConfig::default(), vb)?;
        let x = Tensor::rand(0f32, 1., (1, 3, 8, 6), &dev)?.affine(2.0, -1.0)?;
        let y = up.forward(&x)?;
        assert_eq!(y.dims(), [1, 3, 16, 12]);
        let diff = (y - x.upsample_bilinear2d(16, 12, false)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        assert!(Upscaler::new(UpscalerConfig { width: 0, factor: 2 }, VarBuilder::zeros(DType::F32, &dev)).is_err());
        Ok(())
    }
}
