//! Reflection padding (Candle has zero and replication padding only).

use super::kernels::reflect_pad::{self, ReflectPad};
use candle_core::{Result, Tensor};

/// `nn.ReflectionPad2d((left, right, top, bottom))` on an NCHW tensor: on the CPU the kernel of
/// `kernels::reflect_pad` (one pass each way); elsewhere and under second-order gradients one `index_select`
/// per axis, differentiable (and twice differentiable) through Candle's own gather backward.
pub fn reflection_pad2d(x: &Tensor, left: usize, right: usize, top: usize, bottom: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if top.max(bottom) >= h || left.max(right) >= w {
        candle_core::bail!("reflection padding ({left},{right},{top},{bottom}) must be smaller than the input {h}x{w}");
    }
    if let Some(y) = reflect_pad::reflection_pad2d(x, ReflectPad { left, right, top, bottom })? {
        return Ok(y);
    }
    let index = |n: usize, lo: usize, hi: usize| -> Vec<u32> { (0..n + lo + hi).map(|i| reflect_pad::reflect_index(i, lo, n) as u32).collect() };
    let x = if top + bottom > 0 { x.index_select(&Tensor::new(index(h, top, bottom).as_slice(), x.device())?, 2)? } else { x.clone() };
    if left + right > 0 {
        x.index_select(&Tensor::new(index(w, left, right).as_slice(), x.device())?, 3)
    } else {
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::check_gradient;
    use candle_core::Device;

    #[test]
    fn matches_torch_reflect_values() -> Result<()> {
        // torch: F.pad(torch.arange(12.).view(1,1,3,4), (2,1,1,2), mode="reflect")
        let x = Tensor::arange(0f32, 12., &Device::Cpu)?.reshape((1, 1, 3, 4))?;
        let y = reflection_pad2d(&x, 2, 1, 1, 2)?;
        assert_eq!(y.dims4()?, (1, 1, 6, 7));
        let rows: Vec<Vec<f32>> = y.squeeze(0)?.squeeze(0)?.to_vec2()?;
        assert_eq!(rows[0], vec![6., 5., 4., 5., 6., 7., 6.]);
        assert_eq!(rows[1], vec![2., 1., 0., 1., 2., 3., 2.]);
        assert_eq!(rows[3], vec![10., 9., 8., 9., 10., 11., 10.]);
        assert_eq!(rows[5], vec![2., 1., 0., 1., 2., 3., 2.]);
        Ok(())
    }

    #[test]
    fn too_much_padding_is_an_error() {
        let x = Tensor::zeros((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(reflection_pad2d(&x, 2, 2, 0, 0).is_err());
    }

    #[test]
    fn gradient_symmetric_and_asymmetric() -> Result<()> {
        check_gradient(&[1, 2, 4, 5], |x| reflection_pad2d(x, 2, 2, 2, 2))?;
        check_gradient(&[2, 1, 4, 5], |x| reflection_pad2d(x, 0, 1, 0, 1))
    }
}
