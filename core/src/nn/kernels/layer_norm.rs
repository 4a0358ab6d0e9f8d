//! AnimeGANv2's layer norm (`GroupNorm(1, C)`: each sample normalised over C·H·W, biased variance) with its
//! per-channel scale and offset, as one Candle custom op over `(x, weight, bias)` for training. Candle's
//! composition is about ten element-wise tensors and their autograd, most of them reductions or broadcasts on
//! one thread: the largest serial share of an AnimeGAN training step (the generator has a norm after every
//! conv, and so has D). Inference keeps `nn::fused::layer_norm_affine_lrelu`.
//!
//! Forward: per-sample mean and inverse standard deviation in f64 (lane sums), then `y = x̂·w[c] + b[c]`.
//! Backward (M = C·H·W, g = dy): per (sample, channel) plane Σg and Σg·x̂; then
//! `dx = inv·(w[c]·g − Σ_c w[c]Σg / M − x̂·Σ_c w[c]Σg·x̂ / M)`, `dw[c] = Σ g·x̂`, `db[c] = Σ g`.
//! The backward returns plain tensors; with second-order gradients on the layer keeps Candle's ops.

use super::batch_norm::{dot_lanes, square_deviation_lanes, sum_lanes};
use super::{contiguous, second_order_gradients};
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, WithDType};
use rayon::prelude::*;

struct LayerNormAffine {
    eps: f64,
}

impl LayerNormAffine {
    /// Per sample: (mean, inverse standard deviation).
    fn stats<T: WithDType>(&self, x: &[T], n: usize, m: usize, plane: usize) -> Vec<(f64, f64)> {
        (0..n)
            .map(|i| {
                let sample = &x[i * m..(i + 1) * m];
                let mean = sample.par_chunks(plane).map(sum_lanes).sum::<f64>() / m as f64;
                let shift = T::from_f64(mean);
                let var = sample.par_chunks(plane).map(|p| square_deviation_lanes(p, shift)).sum::<f64>() / m as f64;
                (mean, 1.0 / (var + self.eps).sqrt())
            })
            .collect()
    }

    fn forward<T: WithDType>(&self, x: &[T], w: &[T], b: &[T], (n, c, plane): (usize, usize, usize)) -> Vec<T> {
        let stats = self.stats(x, n, c * plane, plane);
        let mut y = super::zeroed(x.len());
        y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(nc, (dst, src))| {
            let ((mean, inv), ch) = (stats[nc / c], nc % c);
            let scale = w[ch].to_f64() * inv;
            let (a, k) = (T::from_f64(scale), T::from_f64(b[ch].to_f64() - mean * scale));
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v * a + k;
            }
        });
        y
    }

    /// (dx, dweight, dbias).
    fn backward<T: WithDType>(&self, x: &[T], w: &[T], dy: &[T], (n, c, plane): (usize, usize, usize)) -> (Vec<T>, Vec<T>, Vec<T>) {
        let m = c * plane;
        let stats = self.stats(x, n, m, plane);
        // Per plane: Σg and Σg·x̂.
        let sums: Vec<(f64, f64)> = (0..n * c)
            .into_par_iter()
            .map(|nc| {
                let (mean, inv) = stats[nc / c];
                let (g, xs) = (&dy[nc * plane..][..plane], &x[nc * plane..][..plane]);
                (sum_lanes(g), dot_lanes(g, xs, T::from_f64(mean)) * inv)
            })
            .collect();
        // Per sample: Σ_c w[c]·Σg and Σ_c w[c]·Σg·x̂, divided by M.
        let per_sample: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                (0..c).fold((0.0, 0.0), |(a, bb), ch| {
                    let (sg, sgx) = sums[i * c + ch];
                    (a + w[ch].to_f64() * sg, bb + w[ch].to_f64() * sgx)
                })
            })
            .map(|(a, bb)| (a / m as f64, bb / m as f64))
            .collect();
        let mut dx = super::zeroed(x.len());
        dx.par_chunks_mut(plane).enumerate().for_each(|(nc, dst)| {
            let ((mean, inv), ch) = (stats[nc / c], nc % c);
            let (mg, mgx) = per_sample[nc / c];
            // dx = inv·w·g − inv·mg − inv·mgx·(x − mean)·inv, as a·g + bx·x + k.
            let a = T::from_f64(inv * w[ch].to_f64());
            let bx = T::from_f64(-inv * mgx * inv);
            let k = T::from_f64(-inv * mg + inv * mgx * inv * mean);
            let (g, xs) = (&dy[nc * plane..][..plane], &x[nc * plane..][..plane]);
            for ((d, &gv), &xv) in dst.iter_mut().zip(g).zip(xs) {
                *d = a * gv + bx * xv + k;
            }
        });
        let dweight = (0..c).map(|ch| T::from_f64((0..n).map(|i| sums[i * c + ch].1).sum())).collect();
        let dbias = (0..c).map(|ch| T::from_f64((0..n).map(|i| sums[i * c + ch].0).sum())).collect();
        (dx, dweight, dbias)
    }
}

fn dims(l: &Layout) -> Result<(usize, usize, usize)> {
    let (n, c, h, w) = l.shape().dims4()?;
    if h * w == 0 {
        candle_core::bail!("layer norm: empty {h}×{w} planes");
    }
    Ok((n, c, h * w))
}

impl CustomOp3 for LayerNormAffine {
    fn name(&self) -> &'static str {
        "layer-norm-affine"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout, sb: &CpuStorage, lb: &Layout) -> Result<(CpuStorage, Shape)> {
        let d = dims(lx)?;
        if lw.shape().elem_count() != d.1 || lb.shape().elem_count() != d.1 {
            candle_core::bail!("layer norm: {} channels in the input, {} weights, {} biases", d.1, lw.shape().elem_count(), lb.shape().elem_count());
        }
        let name = self.name();
        let y = match sx {
            CpuStorage::F32(_) => {
                CpuStorage::F32(self.forward::<f32>(contiguous(name, sx, lx)?, contiguous(name, sw, lw)?, contiguous(name, sb, lb)?, d))
            }
            CpuStorage::F64(_) => {
                CpuStorage::F64(self.forward::<f64>(contiguous(name, sx, lx)?, contiguous(name, sw, lw)?, contiguous(name, sb, lb)?, d))
            }
            other => candle_core::bail!("layer norm kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((y, lx.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, weight: &Tensor, _bias: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (x, weight, dy) = (x.contiguous()?, weight.contiguous()?, dy.contiguous()?);
        let (gx, lx) = x.storage_and_layout();
        let (gw, lw) = weight.storage_and_layout();
        let (gd, ld) = dy.storage_and_layout();
        let (Storage::Cpu(sx), Storage::Cpu(sw), Storage::Cpu(sd)) = (&*gx, &*gw, &*gd) else {
            candle_core::bail!("layer norm kernel: CPU tensors only")
        };
        let d = dims(lx)?;
        let (name, dev) = (self.name(), x.device());
        macro_rules! run {
            ($t:ty) => {{
                let (dx, dw, db) = self.backward::<$t>(contiguous(name, sx, lx)?, contiguous(name, sw, lw)?, contiguous(name, sd, ld)?, d);
                (Tensor::from_vec(dx, x.shape(), dev)?, Tensor::from_vec(dw, weight.shape(), dev)?, Tensor::from_vec(db, weight.shape(), dev)?)
            }};
        }
        let (dx, dw, db) = match x.dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            other => candle_core::bail!("layer norm kernel: unsupported dtype {other:?}"),
        };
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `layer_norm2d(x)·weight[c] + bias[c]` of `x [N, C, H, W]` with autograd, on the kernel for f32/f64 CPU tensors
/// of one dtype without second-order gradients; None otherwise (the caller composes Candle's ops).
pub fn layer_norm_affine(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Option<Tensor>> {
    let dtype = x.dtype();
    if !x.device().is_cpu()
        || !matches!(dtype, DType::F32 | DType::F64)
        || weight.dtype() != dtype
        || bias.dtype() != dtype
        || second_order_gradients()
    {
        return Ok(None);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormAffine { eps }).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{max_diff, seeded};
    use candle_core::Var;

    fn reference(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
        let c = w.dim(0)?;
        crate::nn::layer_norm::layer_norm2d(x, eps)?.broadcast_mul(&w.reshape((1, c, 1, 1))?)?.broadcast_add(&b.reshape((1, c, 1, 1))?)
    }

    /// Values and all three gradients against the autograd of Candle's composition, f64 and f32.
    #[test]
    fn matches_candle_autograd() -> Result<()> {
        let x = Var::from_tensor(&((seeded(&[3, 4, 5, 6], 1)? * 2.0)? + 0.5)?)?;
        let w = Var::from_tensor(&seeded(&[4], 2)?)?;
        let b = Var::from_tensor(&seeded(&[4], 3)?)?;
        let ours = layer_norm_affine(&x, &w, &b, 1e-5)?.unwrap();
        let theirs = reference(&x, &w, &b, 1e-5)?;
        assert!(max_diff(&ours, &theirs) < 1e-12, "forward {}", max_diff(&ours, &theirs));
        let r = seeded(&[3, 4, 5, 6], 4)?;
        let ga = (ours * &r)?.sum_all()?.backward()?;
        let gb = (theirs * &r)?.sum_all()?.backward()?;
        for (name, v) in [("x", x.as_tensor()), ("weight", w.as_tensor()), ("bias", b.as_tensor())] {
            let d = max_diff(ga.get(v).unwrap(), gb.get(v).unwrap());
            assert!(d < 1e-10, "d{name}: {d}");
        }
        let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let d = max_diff(&layer_norm_affine(&f32s(&x), &f32s(&w), &f32s(&b), 1e-5)?.unwrap(), &reference(&x, &w, &b, 1e-5)?);
        assert!(d < 1e-5, "f32 {d}");
        crate::nn::gradcheck::check_gradient(&[2, 3, 4, 2], |x| {
            Ok(layer_norm_affine(x, &w.to_dtype(DType::F64)?.narrow(0, 0, 3)?, &b.narrow(0, 0, 3)?, 1e-5)?.unwrap())
        })
    }

    /// `cargo test --release -p ganime kernels::layer_norm::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let dev = candle_core::Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (8, 64, 32, 32), &dev)?)?;
        let w = Var::from_tensor(&Tensor::ones(64, DType::F32, &dev)?)?;
        let b = Var::from_tensor(&Tensor::zeros(64, DType::F32, &dev)?)?;
        for (name, kernel) in [("candle ops", false), ("kernel", true)] {
            crate::nn::kernels::bench_ms(&format!("{name}, fwd+bwd [8,64,32,32]"), &mut || {
                let y = if kernel { layer_norm_affine(&x, &w, &b, 1e-5)?.unwrap() } else { reference(&x, &w, &b, 1e-5)? };
                y.sum_all()?.backward().map(|_| ())
            })?;
        }
        Ok(())
    }
}
