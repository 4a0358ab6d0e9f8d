//! Depthwise convolution forward (`groups == channels`) with any stride, for inference: each output channel
//! is a k×k stencil over its own input channel, computed directly (rayon over channels). Candle runs a grouped
//! conv as one conv per group plus a concatenation, which for MobileNet's 960-channel depthwise layers is
//! hundreds of tiny convolutions. Padding is the caller's (pad first).

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

/// `x [1, C, H, W]` f32, `weight [C, 1, k, k]`, optional `bias [C]` -> `[1, C, (H-k)/s+1, (W-k)/s+1]`.
pub fn depthwise_conv2d(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (cw, one, k, k2) = weight.dims4()?;
    if b != 1 || cw != c || one != 1 || k != k2 || h < k || w < k || stride == 0 {
        candle_core::bail!("depthwise conv: input {:?} does not fit a {:?} kernel with stride {stride}", x.dims(), weight.dims());
    }
    let (ho, wo) = ((h - k) / stride + 1, (w - k) / stride + 1);
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = Tensor::zeros(c, DType::F32, x.device())?;
            &zeros
        }
    };
    let y = crate::nn::fused::with_cpu_f32(&[x, weight, bias], |s| {
        let (xs, ws, bs) = (s[0], s[1], s[2]);
        let mut y = vec![0f32; c * ho * wo];
        y.par_chunks_mut(ho * wo).enumerate().for_each(|(ch, out)| {
            let plane = &xs[ch * h * w..(ch + 1) * h * w];
            let taps = &ws[ch * k * k..(ch + 1) * k * k];
            out.fill(bs[ch]);
            for ky in 0..k {
                for kx in 0..k {
                    let t = taps[ky * k + kx];
                    for oy in 0..ho {
                        let line = &plane[(oy * stride + ky) * w + kx..];
                        let row = &mut out[oy * wo..(oy + 1) * wo];
                        if stride == 1 {
                            row.iter_mut().zip(&line[..wo]).for_each(|(o, v)| *o += t * v);
                        } else {
                            row.iter_mut().enumerate().for_each(|(ox, o)| *o += t * line[ox * stride]);
                        }
                    }
                }
            }
        });
        Ok(y)
    })?;
    let Some(y) = y else { candle_core::bail!("depthwise conv kernel: f32 CPU tensors only, got {:?}", x.dtype()) };
    Tensor::from_vec(y, (1, c, ho, wo), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;
    use candle_core::DType;

    #[test]
    fn matches_candle_grouped_conv() -> Result<()> {
        for (i, &(c, h, w, k, s)) in [(4, 7, 9, 3, 1), (5, 8, 8, 3, 2), (3, 9, 6, 3, 2), (2, 5, 5, 1, 1), (6, 11, 10, 5, 3)].iter().enumerate() {
            let x = seeded(&[1, c, h, w], i as u64)?.to_dtype(DType::F32)?;
            let wt = seeded(&[c, 1, k, k], 50 + i as u64)?.to_dtype(DType::F32)?;
            let bias = seeded(&[c], 90 + i as u64)?.to_dtype(DType::F32)?;
            let ours = depthwise_conv2d(&x, &wt, Some(&bias), s)?;
            let theirs = x.conv2d(&wt, 0, s, 1, c)?.broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
            assert_eq!(ours.dims(), theirs.dims(), "case {i}");
            let d = (ours - theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(d < 1e-5, "case {i}: {d}");
        }
        assert!(depthwise_conv2d(
            &Tensor::zeros((1, 3, 2, 2), DType::F32, &candle_core::Device::Cpu)?,
            &Tensor::zeros((3, 1, 3, 3), DType::F32, &candle_core::Device::Cpu)?,
            None,
            1
        )
        .is_err());
        Ok(())
    }
}
