//! Losses. Candle's `binary_cross_entropy_with_logit` computes sigmoid then log and returns `inf` once a
//! discriminator's logits pass ~17, so the stable form is written here.

use candle_core::{Result, Tensor};

/// `F.binary_cross_entropy_with_logits(x, t)` (mean): `max(x,0) - x*t + log(1 + exp(-|x|))`.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let x = logits;
    ((x.relu()? - (x * targets)?)? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?.mean_all()
}

/// Mean absolute error.
pub fn l1_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a - b)?.abs()?.mean_all()
}

/// Mean squared error.
pub fn mse_loss(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a - b)?.sqr()?.mean_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::Device;

    #[test]
    fn bce_is_finite_for_large_logits() -> Result<()> {
        let x = Tensor::new(&[20f32, -20., 0.], &Device::Cpu)?;
        let t = Tensor::new(&[0f32, 1., 0.5], &Device::Cpu)?;
        let v = bce_with_logits(&x, &t)?.to_scalar::<f32>()?;
        assert!((v - 13.564383).abs() < 1e-5, "{v}");
        Ok(())
    }

    #[test]
    fn bce_gradient() -> Result<()> {
        let t = seeded(&[6], 2)?.abs()?;
        check_gradient(&[6], |x| bce_with_logits(&(x * 5.0)?, &t))
    }

    #[test]
    fn l1_and_mse_gradient() -> Result<()> {
        let b = seeded(&[2, 3], 5)?;
        check_gradient(&[2, 3], |x| l1_loss(x, &b))?;
        check_gradient(&[2, 3], |x| mse_loss(x, &b))?;
        let a = Tensor::new(&[1f64, -2.], &Device::Cpu)?;
        let z = Tensor::zeros(2, candle_core::DType::F64, &Device::Cpu)?;
        assert_eq!(l1_loss(&a, &z)?.to_scalar::<f64>()?, 1.5);
        assert_eq!(mse_loss(&a, &z)?.to_scalar::<f64>()?, 2.5);
        Ok(())
    }
}
