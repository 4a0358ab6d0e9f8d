//! `nn.GroupNorm(1, C, affine=True)`, the "layer norm" of AnimeGANv2 (and `tf.contrib.layers.layer_norm`):
//! each sample normalised over (C, H, W) with the *biased* variance, then a per-channel scale and offset.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Normalises each sample of an NCHW tensor over C·H·W (no affine part).
/// f16/bf16 inputs are normalised in f32 (see `instance_norm`) and cast back.
pub fn layer_norm2d(x: &Tensor, eps: f64) -> Result<Tensor> {
    if super::norm::is_half(x.dtype()) {
        return layer_norm2d(&x.to_dtype(candle_core::DType::F32)?, eps)?.to_dtype(x.dtype());
    }
    let (b, c, h, w) = x.dims4()?;
    let flat = x.reshape((b, c * h * w))?;
    let centred = flat.broadcast_sub(&flat.mean_keepdim(1)?)?;
    let var = centred.sqr()?.mean_keepdim(1)?;
    centred.broadcast_div(&(var + eps)?.sqrt()?)?.reshape((b, c, h, w))
}

/// GroupNorm with one group; keys `weight`, `bias` (`[C]`).
#[derive(Clone, Debug)]
pub struct LayerNorm2d {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm2d {
    pub fn new(channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(channels, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, eps })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_eps(x, self.eps)
    }

    /// With another epsilon (AnimeGANv2's TF convention). On the CPU with something to differentiate: the
    /// training kernel of `kernels::layer_norm`.
    pub fn forward_with_eps(&self, x: &Tensor, eps: f64) -> Result<Tensor> {
        if x.track_op() || self.weight.track_op() || self.bias.track_op() {
            if let Some(y) = super::kernels::layer_norm::layer_norm_affine(x, &self.weight, &self.bias, eps)? {
                return Ok(y);
            }
        }
        let c = self.weight.dim(0)?;
        layer_norm2d(x, eps)?.broadcast_mul(&self.weight.reshape((1, c, 1, 1))?)?.broadcast_add(&self.bias.reshape((1, c, 1, 1))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn normalises_each_sample_over_all_channels() -> Result<()> {
        let x = seeded(&[2, 3, 4, 5], 1)?;
        let y = layer_norm2d(&((x * 3.0)? + 2.0)?, 1e-5)?.reshape((2, 60))?;
        let mean: Vec<f64> = y.mean(1)?.to_vec1()?;
        let var: Vec<f64> = y.sqr()?.mean(1)?.to_vec1()?;
        assert!(mean.iter().all(|m| m.abs() < 1e-12), "{mean:?}");
        assert!(var.iter().all(|v| (v - 1.0).abs() < 1e-4), "{var:?}");
        Ok(())
    }

    #[test]
    fn affine_gradient() -> Result<()> {
        let mut vm = VarMap::new();
        let norm = LayerNorm2d::new(2, 1e-5, VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu))?;
        vm.set_one("weight", Tensor::new(&[0.5f64, 2.0], &Device::Cpu)?)?;
        check_gradient(&[2, 2, 3, 3], |x| norm.forward(x))
    }
}
