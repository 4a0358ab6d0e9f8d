//! Nearest upsampling and max pooling written as reshapes + broadcast / reductions, so that their backward (and
//! second derivative) is Candle's own reshape/broadcast/max backward, for any integer factor. On the CPU max
//! pooling runs on its kernel (`kernels::max_pool`) unless second-order gradients are on.

use candle_core::{Result, Tensor};

/// `F.interpolate(x, scale_factor=s, mode="nearest")` for an integer `s`.
pub fn upsample_nearest2d(x: &Tensor, s: usize) -> Result<Tensor> {
    if s == 2 && !x.track_op() {
        if let Some(y) = super::fused::upsample2_planes(x)? {
            return Ok(y);
        }
    }
    let (b, c, h, w) = x.dims4()?;
    x.reshape((b, c, h, 1, w, 1))?.broadcast_as((b, c, h, s, w, s))?.reshape((b, c, h * s, w * s))
}

/// `F.max_pool2d(x, k)` (stride = kernel, no padding; trailing rows/columns that do not fill a window are
/// dropped like PyTorch does). On the CPU the kernel of `kernels::max_pool`; Candle's reductions elsewhere and
/// under second-order gradients.
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Tensor> {
    if let Some(y) = super::kernels::max_pool::max_pool2d(x, k)? {
        return Ok(y);
    }
    let (b, c, h, w) = x.dims4()?;
    let (ho, wo) = (h / k, w / k);
    let x = if ho * k != h || wo * k != w { x.narrow(2, 0, ho * k)?.narrow(3, 0, wo * k)? } else { x.clone() };
    x.reshape((b, c, ho, k, wo, k))?.max(5)?.max(3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::check_gradient;
    use candle_core::Device;

    #[test]
    fn upsample_matches_candle_nearest() -> Result<()> {
        let x = crate::nn::gradcheck::seeded(&[2, 3, 4, 5], 1)?;
        let ours = upsample_nearest2d(&x, 3)?;
        let theirs = x.upsample_nearest2d(12, 15)?;
        assert_eq!((ours - theirs)?.abs()?.max_all()?.to_scalar::<f64>()?, 0.0);
        Ok(())
    }

    #[test]
    fn max_pool_values() -> Result<()> {
        let x = Tensor::arange(0f32, 20., &Device::Cpu)?.reshape((1, 1, 4, 5))?;
        let y: Vec<Vec<f32>> = max_pool2d(&x, 2)?.squeeze(0)?.squeeze(0)?.to_vec2()?;
        assert_eq!(y, vec![vec![6., 8.], vec![16., 18.]]);
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        check_gradient(&[1, 2, 3, 4], |x| upsample_nearest2d(x, 2))?;
        check_gradient(&[2, 1, 4, 6], |x| max_pool2d(x, 2))
    }
}
