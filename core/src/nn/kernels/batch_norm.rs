//! BatchNorm fused with the activation after it, as one Candle custom op over `(x, weight, bias)`.
//!
//! `x` is viewed as `[N, C, S]` (S = H·W, or 1 after a Linear layer). The per-channel mean and inverse standard
//! deviation are computed before the op (batch statistics in training, running ones in eval) and travel inside
//! it, so the forward is one pass: `y = act(x·scale + shift)`. The backward is two passes: per-channel sums of
//! `g = dy·act'(y)` and `g·x̂`, then `dx = scale·(g − Σg/M − x̂·Σgx̂/M)` (the mean terms only with batch
//! statistics), with `dweight = Σgx̂` and `dbias = Σg`. Candle's BatchNorm takes ~15 element-wise tensors and
//! two transposed copies for the same forward, and autograd through all of them for the backward.
//!
//! The backward returns plain tensors (not differentiable again); `nn::BatchNorm2d` uses Candle's ops when
//! second-order gradients are on.

use super::isa::multiversion;
use super::{contiguous, Activation};
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, WithDType};
use rayon::prelude::*;

/// `[N, C, S]` view of a tensor of rank >= 2.
fn ncs(dims: &[usize]) -> Result<(usize, usize, usize)> {
    if dims.len() < 2 {
        candle_core::bail!("batch norm: input of shape {dims:?} has no channel dimension");
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// Per-channel mean and biased variance of `x` (f32 or f64 on the CPU), accumulated in f64.
pub fn channel_stats(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let x = x.contiguous()?;
    let (n, c, s) = ncs(x.dims())?;
    let (storage, layout) = x.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else { candle_core::bail!("batch norm kernel: CPU tensors only") };
    match x.dtype() {
        DType::F32 => Ok(stats(contiguous::<f32>("batch norm", cpu, layout)?, n, c, s)),
        DType::F64 => Ok(stats(contiguous::<f64>("batch norm", cpu, layout)?, n, c, s)),
        d => candle_core::bail!("batch norm kernel: unsupported dtype {d:?}"),
    }
}

multiversion! {
    fn stats<T: WithDType>(x: &[T], n: usize, c: usize, s: usize) -> (Vec<f64>, Vec<f64>) {
        let count = (n * s) as f64;
        let per_channel: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let strips = || (0..n).map(move |i| &x[(i * c + ch) * s..][..s]);
                // A closure, not the function itself: it is compiled in this copy, with its instruction set.
                let mean = strips().map(|strip| sum_lanes(strip)).sum::<f64>() / count;
                // Two passes (the channel is in cache): no cancellation in E[x²] − E[x]².
                let m = T::from_f64(mean);
                let var = strips().map(|strip| square_deviation_lanes(strip, m)).sum::<f64>() / count;
                (mean, var)
            })
            .collect();
        per_channel.into_iter().unzip()
    }
}

/// Σ a: partial sums in [`LANES`] lanes of `T` over blocks of at most [`BLOCK`] values, the lanes and blocks
/// added in f64. Why: a single f64 running sum is a serial dependency chain with a conversion per element
/// (scalar code: the BatchNorm backward spent 31 ms of its 33 at [64,128,16,16] there); lanes vectorise, and a
/// lane holds at most BLOCK / LANES = 256 terms, so f32 rounding stays near f32's own precision.
#[inline(always)]
pub(super) fn sum_lanes<T: WithDType>(a: &[T]) -> f64 {
    fold_lanes(a, a, |x, _| x)
}

/// Σ a·(b − shift), as [`sum_lanes`].
#[inline(always)]
pub(super) fn dot_lanes<T: WithDType>(a: &[T], b: &[T], shift: T) -> f64 {
    fold_lanes(a, b, |x, y| x * (y - shift))
}

/// Σ (a − shift)², as [`sum_lanes`].
#[inline(always)]
pub(super) fn square_deviation_lanes<T: WithDType>(a: &[T], shift: T) -> f64 {
    fold_lanes(a, a, |x, _| (x - shift) * (x - shift))
}

#[inline(always)]
fn fold_lanes<T: WithDType>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut total = 0f64;
    for (ab, bb) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
        let mut acc = [T::zero(); LANES];
        let (mut ai, mut bi) = (ab.chunks_exact(LANES), bb.chunks_exact(LANES));
        for (ac, bc) in (&mut ai).zip(&mut bi) {
            for l in 0..LANES {
                acc[l] += f(ac[l], bc[l]);
            }
        }
        total += acc.iter().map(|v| v.to_f64()).sum::<f64>();
        total += ai.remainder().iter().zip(bi.remainder()).map(|(&x, &y)| f(x, y).to_f64()).sum::<f64>();
    }
    total
}

const LANES: usize = 16;
const BLOCK: usize = 4096;

/// The fused op. `mean` and `inv_std` are per channel; `batch_stats` says whether they were computed from
/// this `x` (training), which adds their dependence on `x` to the backward.
pub struct BatchNormAct {
    pub mean: Vec<f64>,
    pub inv_std: Vec<f64>,
    pub batch_stats: bool,
    pub act: Activation,
}

impl BatchNormAct {
    fn scale_shift<T: WithDType>(&self, weight: &[T], bias: &[T]) -> (Vec<T>, Vec<T>) {
        (0..self.mean.len())
            .map(|ch| {
                let scale = weight[ch].to_f64() * self.inv_std[ch];
                (T::from_f64(scale), T::from_f64(bias[ch].to_f64() - self.mean[ch] * scale))
            })
            .unzip()
    }

    fn forward<T: WithDType>(&self, x: &[T], weight: &[T], bias: &[T], n: usize, c: usize, s: usize) -> Vec<T> {
        let (scale, shift) = self.scale_shift(weight, bias);
        forward_kernel(self.act, &scale, &shift, x, n, c, s)
    }

    /// (dx, dweight, dbias).
    #[allow(clippy::too_many_arguments)]
    fn backward<T: WithDType>(&self, x: &[T], weight: &[T], y: &[T], dy: &[T], n: usize, c: usize, s: usize) -> (Vec<T>, Vec<T>, Vec<T>) {
        backward_kernel(self, x, weight, y, dy, n, c, s)
    }
}

multiversion! {
    /// `act(x·scale + shift)` per channel of `x [N, C, S]`.
    fn forward_kernel<T: WithDType>(act: Activation, scale: &[T], shift: &[T], x: &[T], n: usize, c: usize, s: usize) -> Vec<T> {
        let slope = T::from_f64(act.slope());
        let mut y = super::zeroed(n * c * s);
        y.par_chunks_mut(s).zip(x.par_chunks(s)).enumerate().with_min_len(64.max(1024 / s.max(1))).for_each(|(nc, (dst, src))| {
            let ch = nc % c;
            let (a, b) = (scale[ch], shift[ch]);
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = act.apply(v * a + b, slope);
            }
        });
        y
    }
}

multiversion! {
    /// (dx, dweight, dbias) of [`BatchNormAct`].
    fn backward_kernel<T: WithDType>(op: &BatchNormAct, x: &[T], weight: &[T], y: &[T], dy: &[T], n: usize, c: usize, s: usize) -> (Vec<T>, Vec<T>, Vec<T>) {
        // act'(y)·dy: dy where y > 0, else dy·slope (slope 1 for the identity, so one formula serves all); the
        // closure owns its slope (see `select_positive_by`).
        let slope = T::from_f64(op.act.slope());
        let g_into = move |dst: &mut [T], dy: &[T], y: &[T]| {
            for ((d, &dyv), &yv) in dst.iter_mut().zip(dy).zip(y) {
                *d = super::select_positive_by(yv, dyv, dyv * slope);
            }
        };
        // Per channel: Σg and Σg·x̂ (g of one plane at a time in a buffer, then vectorised lane sums).
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map_init(Vec::new, |g: &mut Vec<T>, ch| {
                g.resize(s, T::zero());
                let m = T::from_f64(op.mean[ch]);
                let (mut sg, mut sgx) = (0f64, 0f64);
                for i in 0..n {
                    let plane = (i * c + ch) * s..(i * c + ch + 1) * s;
                    g_into(g, &dy[plane.clone()], &y[plane.clone()]);
                    sg += sum_lanes(g);
                    sgx += dot_lanes(g, &x[plane], m);
                }
                (sg, sgx * op.inv_std[ch])
            })
            .collect();
        let count = (n * s) as f64;
        let mut dx = super::zeroed(n * c * s);
        dx.par_chunks_mut(s).enumerate().with_min_len(64.max(1024 / s.max(1))).for_each(|(nc, dst)| {
            let ch = nc % c;
            let (mean, inv_std) = (op.mean[ch], op.inv_std[ch]);
            let scale = weight[ch].to_f64() * inv_std;
            let plane = nc * s..(nc + 1) * s;
            g_into(dst, &dy[plane.clone()], &y[plane.clone()]);
            if op.batch_stats {
                // dx = scale·g − scale·Σg/M − scale·Σgx̂/M · (x − mean)·inv_std, as a·g + b·x + k.
                let (sg, sgx) = sums[ch];
                let a = T::from_f64(scale);
                let b = T::from_f64(-scale * sgx / count * inv_std);
                let k = T::from_f64(-scale * sg / count + scale * sgx / count * inv_std * mean);
                for (d, &xv) in dst.iter_mut().zip(&x[plane]) {
                    *d = a * *d + b * xv + k;
                }
            } else {
                let a = T::from_f64(scale);
                for d in dst.iter_mut() {
                    *d = a * *d;
                }
            }
        });
        let dweight = sums.iter().map(|&(_, sgx)| T::from_f64(sgx)).collect();
        let dbias = sums.iter().map(|&(sg, _)| T::from_f64(sg)).collect();
        (dx, dweight, dbias)
    }
}

impl CustomOp3 for BatchNormAct {
    fn name(&self) -> &'static str {
        "batch-norm-act"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout, sb: &CpuStorage, lb: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, s) = ncs(lx.dims())?;
        if lw.shape().elem_count() != c || lb.shape().elem_count() != c || self.mean.len() != c {
            candle_core::bail!("batch norm: {c} channels in the input, {} weights, {} biases", lw.shape().elem_count(), lb.shape().elem_count());
        }
        let y = match sx {
            CpuStorage::F32(_) => CpuStorage::F32(self.forward::<f32>(
                contiguous(self.name(), sx, lx)?,
                contiguous(self.name(), sw, lw)?,
                contiguous(self.name(), sb, lb)?,
                n,
                c,
                s,
            )),
            CpuStorage::F64(_) => CpuStorage::F64(self.forward::<f64>(
                contiguous(self.name(), sx, lx)?,
                contiguous(self.name(), sw, lw)?,
                contiguous(self.name(), sb, lb)?,
                n,
                c,
                s,
            )),
            other => candle_core::bail!("batch norm kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((y, lx.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, weight: &Tensor, _bias: &Tensor, y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, c, s) = ncs(x.dims())?;
        let (x, weight, y, dy) = (x.contiguous()?, weight.contiguous()?, y.contiguous()?, dy.contiguous()?);
        let (gx, lx) = x.storage_and_layout();
        let (gw, lw) = weight.storage_and_layout();
        let (gy, ly) = y.storage_and_layout();
        let (gd, ld) = dy.storage_and_layout();
        let (Storage::Cpu(sx), Storage::Cpu(sw), Storage::Cpu(sy), Storage::Cpu(sd)) = (&*gx, &*gw, &*gy, &*gd) else {
            candle_core::bail!("batch norm kernel: CPU tensors only")
        };
        let dev = x.device();
        macro_rules! run {
            ($t:ty) => {{
                let (dx, dw, db) = self.backward::<$t>(
                    contiguous(self.name(), sx, lx)?,
                    contiguous(self.name(), sw, lw)?,
                    contiguous(self.name(), sy, ly)?,
                    contiguous(self.name(), sd, ld)?,
                    n,
                    c,
                    s,
                );
                (Tensor::from_vec(dx, x.shape(), dev)?, Tensor::from_vec(dw, c, dev)?, Tensor::from_vec(db, c, dev)?)
            }};
        }
        let (dx, dw, db) = match x.dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            d => candle_core::bail!("batch norm kernel: unsupported dtype {d:?}"),
        };
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `act(instance_norm(x))` of `x [N, C, H, W]` with autograd, on this kernel: instance norm is batch norm of the
/// `[1, N·C, H, W]` view (each (sample, channel) plane a channel with its own statistics, biased variance,
/// γ = 1, β = 0). One pass forward and two backward where Candle's composition (mean, centre, square, mean,
/// sqrt, divide, then the activation) ran ~10 element-wise ops and their autograd, several on one thread:
/// ~20 % of the main thread's time in a CycleGAN step. None off the CPU, for other dtypes, a negative slope or
/// with second-order gradients on.
pub fn instance_norm_act(x: &Tensor, eps: f64, act: Activation) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) || act.slope() < 0.0 || super::second_order_gradients() {
        return Ok(None);
    }
    let (n, c, h, w) = x.dims4()?;
    if x.elem_count() == 0 {
        return Ok(None);
    }
    let planes = x.contiguous()?.reshape((1, n * c, h, w))?;
    let (mean, var) = channel_stats(&planes)?;
    let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let (ones, zeros) = (Tensor::ones(n * c, x.dtype(), x.device())?, Tensor::zeros(n * c, x.dtype(), x.device())?);
    let y = planes.apply_op3(&ones, &zeros, BatchNormAct { mean, inv_std, batch_stats: true, act })?;
    y.reshape((n, c, h, w)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;
    use candle_core::{Device, Var};

    use crate::nn::gradcheck::max_diff;

    /// The same computation from Candle's own ops (batch statistics, biased variance).
    fn reference(x: &Tensor, w: &Tensor, b: &Tensor, act: Activation, eps: f64) -> Result<Tensor> {
        let c = x.dim(1)?;
        let mut shape = vec![1; x.rank()];
        shape[1] = c;
        let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
        let mean = x.mean_keepdim(dims.as_slice())?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(dims.as_slice())?;
        let y = centred
            .broadcast_div(&(var + eps)?.sqrt()?)?
            .broadcast_mul(&w.reshape(shape.as_slice())?)?
            .broadcast_add(&b.reshape(shape.as_slice())?)?;
        match act {
            Activation::Identity => Ok(y),
            Activation::Relu => y.relu(),
            Activation::LeakyRelu(s) => candle_nn::ops::leaky_relu(&y, s),
        }
    }

    fn fused(x: &Tensor, w: &Tensor, b: &Tensor, act: Activation, eps: f64) -> Result<Tensor> {
        let (mean, var) = channel_stats(x)?;
        let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        x.apply_op3(w, b, BatchNormAct { mean, inv_std, batch_stats: true, act })
    }

    #[test]
    fn forward_and_backward_match_candle_autograd() -> Result<()> {
        // Odd sizes, rank 2 (after a Linear layer) and rank 4, every activation.
        let shapes: [&[usize]; 4] = [&[3, 5, 7, 3], &[2, 4, 1, 1], &[5, 6], &[4, 3, 9, 11]];
        let acts = [Activation::Identity, Activation::Relu, Activation::LeakyRelu(0.2)];
        for (i, shape) in shapes.iter().enumerate() {
            for (j, &act) in acts.iter().enumerate() {
                let c = shape[1];
                let seed = (10 * i + j) as u64;
                let x = Var::from_tensor(&(seeded(shape, seed)? * 3.0)?.affine(1.0, 0.5)?)?;
                let w = Var::from_tensor(&seeded(&[c], seed + 100)?.affine(1.0, 1.0)?)?;
                let b = Var::from_tensor(&seeded(&[c], seed + 200)?)?;
                let r = seeded(shape, seed + 300)?;
                let ours = fused(&x, &w, &b, act, 1e-5)?;
                let theirs = reference(&x, &w, &b, act, 1e-5)?;
                assert!(max_diff(&ours, &theirs) < 1e-12, "forward {shape:?} {act:?}");
                let g1 = (ours * &r)?.sum_all()?.backward()?;
                let g2 = (theirs * &r)?.sum_all()?.backward()?;
                for v in [&x, &w, &b] {
                    let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                    assert!(d < 1e-10, "backward {shape:?} {act:?}: {d}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn f32_matches_f64() -> Result<()> {
        let x = seeded(&[4, 8, 5, 5], 1)?;
        let (w, b) = (seeded(&[8], 2)?, seeded(&[8], 3)?);
        let y64 = fused(&x, &w, &b, Activation::LeakyRelu(0.2), 1e-5)?;
        let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let y32 = fused(&f(&x), &f(&w), &f(&b), Activation::LeakyRelu(0.2), 1e-5)?;
        assert!(max_diff(&y32.to_dtype(DType::F64)?, &y64) < 1e-5);
        Ok(())
    }

    #[test]
    fn running_statistics_backward_is_a_per_channel_scale() -> Result<()> {
        // Eval mode: y = act(x·scale + shift), so dx = scale·dy·act'.
        let x = Var::from_tensor(&seeded(&[2, 3, 4, 5], 4)?)?;
        let (w, b) = (seeded(&[3], 5)?, seeded(&[3], 6)?);
        let op = BatchNormAct { mean: vec![0.1, -0.2, 0.3], inv_std: vec![2.0, 0.5, 1.5], batch_stats: false, act: Activation::Relu };
        let ours = x.apply_op3(&w, &b, op)?;
        let scale = (w.to_dtype(DType::F64)? * Tensor::new(&[2.0f64, 0.5, 1.5], &Device::Cpu)?)?.reshape((1, 3, 1, 1))?;
        let shift = (b - (Tensor::new(&[0.1f64, -0.2, 0.3], &Device::Cpu)?.reshape(3)? * scale.flatten_all()?)?)?.reshape((1, 3, 1, 1))?;
        let theirs = x.broadcast_mul(&scale)?.broadcast_add(&shift)?.relu()?;
        assert!(max_diff(&ours, &theirs) < 1e-12);
        let r = seeded(&[2, 3, 4, 5], 7)?;
        let d = max_diff((ours * &r)?.sum_all()?.backward()?.get(&x).unwrap(), (theirs * &r)?.sum_all()?.backward()?.get(&x).unwrap());
        assert!(d < 1e-12);
        Ok(())
    }

    /// Every instruction-set copy of the forward and backward (`isa::multiversion!`) gives the same bits, in f32
    /// (where the lane sums vectorise) and f64, with batch and running statistics.
    #[test]
    fn every_instruction_set_gives_the_same_bits() -> Result<()> {
        use crate::nn::kernels::isa::{self, Isa};
        let run = |dtype: DType| -> Result<Vec<Vec<u64>>> {
            let x = Var::from_tensor(&(seeded(&[3, 6, 9, 13], 8)? * 2.0)?.to_dtype(dtype)?)?;
            let (w, b) = (seeded(&[6], 9)?.affine(1.0, 1.0)?.to_dtype(dtype)?, seeded(&[6], 10)?.to_dtype(dtype)?);
            let r = seeded(&[3, 6, 9, 13], 11)?.to_dtype(dtype)?;
            let mut out = Vec::new();
            for batch_stats in [true, false] {
                let (mean, var) = channel_stats(&x)?;
                let inv_std = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
                let y = x.apply_op3(&w, &b, BatchNormAct { mean: mean.clone(), inv_std, batch_stats, act: Activation::LeakyRelu(0.2) })?;
                let dx = (&y * &r)?.sum_all()?.backward()?.get(&x).unwrap().clone();
                for t in [&y, &dx] {
                    out.push(t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?.iter().map(|v| v.to_bits()).collect());
                }
                out.push(mean.iter().chain(&var).map(|v| v.to_bits()).collect());
            }
            Ok(out)
        };
        let _only_this_test_switches = isa::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = isa::active();
        let mut results = Vec::new();
        for level in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            let got = isa::set_active(level);
            results.push((got, run(DType::F32)?, run(DType::F64)?));
        }
        isa::set_active(before);
        for (level, f32_bits, f64_bits) in &results[1..] {
            assert!(f32_bits == &results[0].1 && f64_bits == &results[0].2, "{level:?} differs from the baseline copy");
        }
        Ok(())
    }

    /// `cargo test --release -p ganime kernels::batch_norm::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (64, 128, 16, 16), &Device::Cpu)?)?;
        let w = Var::from_tensor(&Tensor::ones(128, DType::F32, &Device::Cpu)?)?;
        let b = Var::from_tensor(&Tensor::zeros(128, DType::F32, &Device::Cpu)?)?;
        let bn = candle_nn::BatchNorm::new(
            128,
            Tensor::zeros(128, DType::F32, &Device::Cpu)?,
            Tensor::ones(128, DType::F32, &Device::Cpu)?,
            w.as_tensor().clone(),
            b.as_tensor().clone(),
            1e-5,
        )?;
        use candle_core::ModuleT;
        crate::nn::kernels::bench_ms("candle batch norm + relu, fwd+bwd [64,128,16,16]", &mut || {
            let y = bn.forward_t(&x, true)?.relu()?;
            y.sum_all()?.backward().map(|_| ())
        })?;
        let xs: Vec<f32> = x.as_tensor().flatten_all()?.to_vec1()?;
        let dy = vec![1f32; xs.len()];
        let (w1, b0) = (vec![1f32; 128], vec![0f32; 128]);
        crate::nn::kernels::bench_ms("  statistics", &mut || {
            std::hint::black_box(stats(&xs, 64, 128, 256));
            Ok(())
        })?;
        let (mean, var) = stats(&xs, 64, 128, 256);
        let op = BatchNormAct { mean, inv_std: var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect(), batch_stats: true, act: Activation::Relu };
        let y = op.forward(&xs, &w1, &b0, 64, 128, 256);
        crate::nn::kernels::bench_ms("  forward", &mut || {
            std::hint::black_box(op.forward(&xs, &w1, &b0, 64, 128, 256));
            Ok(())
        })?;
        crate::nn::kernels::bench_ms("  backward", &mut || {
            std::hint::black_box(op.backward(&xs, &w1, &y, &dy, 64, 128, 256));
            Ok(())
        })?;
        crate::nn::kernels::bench_ms("fused kernel, fwd+bwd", &mut || {
            let y = fused(&x, &w, &b, Activation::Relu, 1e-5)?;
            y.sum_all()?.backward().map(|_| ())
        })
    }
}
