//! Depthwise convolution (`nn.Conv2d(c, c, k, groups=c)`), stride 1, no padding. Candle runs a grouped conv as
//! one conv per group plus a concatenation (slow for hundreds of channels, see CANDLE-NOTES); a depthwise
//! kernel is only k·k per-channel multiply-adds of shifted views, written here as such. Differentiable.

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Weight `[C, 1, k, k]`, optional bias `[C]` (PyTorch keys `weight`, `bias`).
#[derive(Clone, Debug)]
pub struct DepthwiseConv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl DepthwiseConv2d {
    pub fn new(channels: usize, k: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let bound = 1.0 / ((k * k) as f64).sqrt();
        let weight = vb.get_with_hints((channels, 1, k, k), "weight", Init::Uniform { lo: -bound, up: bound })?;
        let bias = if bias { Some(vb.get_with_hints(channels, "bias", Init::Uniform { lo: -bound, up: bound })?) } else { None };
        Ok(Self { weight, bias })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c, _, k, _) = self.weight.dims4()?;
        let (_, cx, h, w) = x.dims4()?;
        if cx != c || h < k || w < k {
            candle_core::bail!("depthwise conv: input {:?} does not fit a [{c}, 1, {k}, {k}] kernel", x.dims());
        }
        let (ho, wo) = (h - k + 1, w - k + 1);
        // Per-tap weights as [k*k, 1, C, 1, 1] slices.
        let taps = self.weight.reshape((c, k * k))?.t()?.contiguous()?;
        let mut acc: Option<Tensor> = None;
        for ky in 0..k {
            let rows = x.narrow(2, ky, ho)?;
            for kx in 0..k {
                let wt = taps.get(ky * k + kx)?.reshape((1, c, 1, 1))?;
                let term = rows.narrow(3, kx, wo)?.broadcast_mul(&wt)?;
                acc = Some(match acc {
                    None => term,
                    Some(a) => (a + term)?,
                });
            }
        }
        let y = acc.expect("k >= 1");
        match &self.bias {
            None => Ok(y),
            Some(b) => y.broadcast_add(&b.reshape((1, c, 1, 1))?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};

    #[test]
    fn matches_candle_grouped_conv() -> Result<()> {
        let weight = seeded(&[4, 1, 3, 3], 1)?;
        let bias = seeded(&[4], 2)?;
        let dw = DepthwiseConv2d { weight: weight.clone(), bias: Some(bias.clone()) };
        let x = seeded(&[2, 4, 5, 6], 3)?;
        let reference = x.conv2d(&weight, 0, 1, 1, 4)?.broadcast_add(&bias.reshape((1, 4, 1, 1))?)?;
        let diff = (dw.forward(&x)? - reference)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-12, "{diff}");
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        let dw = DepthwiseConv2d { weight: seeded(&[2, 1, 3, 3], 1)?, bias: None };
        check_gradient(&[1, 2, 4, 5], |x| dw.forward(x))?;
        let x = seeded(&[1, 2, 4, 4], 5)?;
        check_gradient(&[2, 1, 3, 3], |w| DepthwiseConv2d { weight: w.clone(), bias: None }.forward(&x))
    }
}
