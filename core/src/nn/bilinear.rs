//! Bilinear resizing in the two conventions AnimeGANv2 checkpoints were made with. Candle's
//! `upsample_bilinear2d` covers `align_corners=True` but has no backward and no TF1 convention; this version is
//! two gathers and a lerp per axis, so it is differentiable and covers both; on the CPU a kernel does the same
//! arithmetic in one parallel pass each way.

use super::kernels::bilinear::{self, Bilinear, Taps};
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Where an output pixel samples the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeConvention {
    /// `F.interpolate(mode="bilinear", align_corners=True)`: `src = dst * (in - 1) / (out - 1)`.
    AlignCorners,
    /// TF1 `tf.image.resize_images` (bilinear, no half-pixel centres): `src = dst * in / out`, clamped.
    TfLegacy,
}

crate::named_values!(ResizeConvention { AlignCorners => "align-corners", TfLegacy => "tf-legacy" });

/// For one axis: the two source indices and the weight of the second, per output index.
fn axis_taps(n_in: usize, n_out: usize, convention: ResizeConvention) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
    let scale = match convention {
        ResizeConvention::AlignCorners if n_out > 1 => (n_in - 1) as f64 / (n_out - 1) as f64,
        ResizeConvention::AlignCorners => 0.0,
        ResizeConvention::TfLegacy => n_in as f64 / n_out as f64,
    };
    let (mut i0, mut i1, mut w) = (Vec::with_capacity(n_out), Vec::with_capacity(n_out), Vec::with_capacity(n_out));
    for d in 0..n_out {
        let src = d as f64 * scale;
        let lo = (src.floor() as usize).min(n_in - 1);
        i0.push(lo as u32);
        i1.push((lo + 1).min(n_in - 1) as u32);
        w.push(src - lo as f64);
    }
    (i0, i1, w)
}

/// Lerp along `dim` (2 = H, 3 = W) of an NCHW tensor.
fn resize_axis(x: &Tensor, dim: usize, n_out: usize, convention: ResizeConvention) -> Result<Tensor> {
    let n_in = x.dim(dim)?;
    if n_in == n_out {
        return Ok(x.clone());
    }
    let (i0, i1, w) = axis_taps(n_in, n_out, convention);
    let dev = x.device();
    let a = x.index_select(&Tensor::new(i0.as_slice(), dev)?, dim)?;
    let b = x.index_select(&Tensor::new(i1.as_slice(), dev)?, dim)?;
    let shape: Vec<usize> = (0..4).map(|d| if d == dim { n_out } else { 1 }).collect();
    let w = Tensor::from_vec(w, shape, dev)?.to_dtype(x.dtype())?;
    &a + (b - &a)?.broadcast_mul(&w)?
}

/// Resizes an NCHW tensor to `h × w`: along H first, then W (as the TF graph does). On the CPU one parallel pass
/// over the planes each way (`kernels::bilinear`, the same arithmetic); the gathers elsewhere and under
/// second-order gradients.
pub fn resize_bilinear(x: &Tensor, h: usize, w: usize, convention: ResizeConvention) -> Result<Tensor> {
    let (_, _, h_in, w_in) = x.dims4()?;
    let taps = |n_in, n_out| {
        let (lo, hi, weight) = axis_taps(n_in, n_out, convention);
        Taps { lo, hi, weight }
    };
    if let Some(y) = bilinear::resize(x, Bilinear { rows: taps(h_in, h), cols: taps(w_in, w), h_in, w_in })? {
        return Ok(y);
    }
    resize_axis(&resize_axis(x, 2, h, convention)?, 3, w, convention)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};

    #[test]
    fn align_corners_matches_candle() -> Result<()> {
        let x = seeded(&[1, 2, 4, 5], 3)?.to_dtype(candle_core::DType::F32)?;
        let ours = resize_bilinear(&x, 9, 7, ResizeConvention::AlignCorners)?;
        let theirs = x.upsample_bilinear2d(9, 7, true)?;
        let diff = (ours - theirs)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        Ok(())
    }

    /// The kernel gives the gathers' values exactly, in both conventions, and their gradients up to rounding
    /// (it weights the first source by `g − g·w` where autograd adds `g` and `−g·w`).
    #[test]
    fn kernel_equals_the_composition() -> Result<()> {
        use crate::nn::gradcheck::max_diff;
        let x = candle_core::Var::from_tensor(&seeded(&[2, 3, 5, 7], 4)?)?;
        for convention in [ResizeConvention::AlignCorners, ResizeConvention::TfLegacy] {
            for (h, w) in [(10, 14), (9, 4), (5, 7), (1, 1)] {
                let kernel = resize_bilinear(&x, h, w, convention)?;
                let composed = resize_axis(&resize_axis(&x, 2, h, convention)?, 3, w, convention)?;
                assert_eq!(kernel.dims(), &[2, 3, h, w]);
                assert_eq!(max_diff(&kernel, &composed), 0.0, "{convention:?} {h}x{w}");
                let x32 = x.to_dtype(candle_core::DType::F32)?;
                let composed32 = resize_axis(&resize_axis(&x32, 2, h, convention)?, 3, w, convention)?;
                assert_eq!(max_diff(&resize_bilinear(&x32, h, w, convention)?, &composed32), 0.0, "f32 {convention:?} {h}x{w}");
                let r = seeded(&[2, 3, h, w], 5)?;
                let (a, b) = ((kernel * &r)?.sum_all()?.backward()?, (composed * &r)?.sum_all()?.backward()?);
                assert!(max_diff(a.get(&x).unwrap(), b.get(&x).unwrap()) < 1e-12, "gradient {convention:?} {h}x{w}");
            }
        }
        Ok(())
    }

    #[test]
    fn tf_legacy_doubling_copies_even_rows_and_clamps_the_last() -> Result<()> {
        let x = Tensor::new(&[0f64, 2., 4.], &candle_core::Device::Cpu)?.reshape((1, 1, 1, 3))?;
        let y: Vec<f64> = resize_bilinear(&x, 1, 6, ResizeConvention::TfLegacy)?.flatten_all()?.to_vec1()?;
        assert_eq!(y, vec![0., 1., 2., 3., 4., 4.]);
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        check_gradient(&[1, 2, 3, 4], |x| resize_bilinear(x, 6, 8, ResizeConvention::TfLegacy))?;
        check_gradient(&[1, 1, 3, 4], |x| resize_bilinear(x, 5, 7, ResizeConvention::AlignCorners))
    }
}
