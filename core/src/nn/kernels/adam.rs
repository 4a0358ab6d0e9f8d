//! The Adam update in place, as Candle in-place ops over contiguous CPU storage: the two moment averages in
//! one pass, then the parameter step in another. Candle's tensor arithmetic takes ~12 element-wise ops per
//! parameter tensor, each allocating a fresh result (for DCGAN's 6.3 M parameters, ~1 GB of memory traffic
//! per step); this reads and writes each array once per pass and allocates nothing.

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, WithDType};
use rayon::prelude::*;

const CHUNK: usize = 1 << 13;

fn range(l: &Layout, op: &str) -> Result<std::ops::Range<usize>> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(start..end),
        None => candle_core::bail!("{op}: needs contiguous tensors"),
    }
}

/// `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`. An in-place op has one destination, so the moments live
/// in one `[2, n]` tensor: row 0 is m, row 1 is v.
struct Moments {
    beta1: f64,
    beta2: f64,
}

impl Moments {
    fn run<T: WithDType>(&self, mv: &mut [T], g: &[T]) {
        let n = g.len();
        let (m, v) = mv.split_at_mut(n);
        let (b1, b2) = (T::from_f64(self.beta1), T::from_f64(self.beta2));
        let (a1, a2) = (T::from_f64(1.0 - self.beta1), T::from_f64(1.0 - self.beta2));
        m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)).zip(g.par_chunks(CHUNK)).for_each(|((m, v), g)| {
            for ((m, v), &g) in m.iter_mut().zip(v.iter_mut()).zip(g) {
                *m = *m * b1 + g * a1;
                *v = *v * b2 + g * g * a2;
            }
        });
    }
}

impl InplaceOp2 for Moments {
    fn name(&self) -> &'static str {
        "adam-moments"
    }
    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (r1, r2) = (range(l1, self.name())?, range(l2, self.name())?);
        if r1.len() != 2 * r2.len() {
            candle_core::bail!("adam: moments of {} elements for a gradient of {}", r1.len(), r2.len());
        }
        match (s1, s2) {
            (CpuStorage::F32(mv), CpuStorage::F32(g)) => self.run(&mut mv[r1], &g[r2]),
            (CpuStorage::F64(mv), CpuStorage::F64(g)) => self.run(&mut mv[r1], &g[r2]),
            _ => candle_core::bail!("adam kernel: f32 or f64 tensors of one dtype only"),
        }
        Ok(())
    }
}

/// `w −= lr · (m / c1) / (sqrt(v / c2) + ε)`, with the bias corrections `c1 = 1 − β1ᵗ`, `c2 = 1 − β2ᵗ`.
struct Step {
    lr: f64,
    c1: f64,
    c2: f64,
    eps: f64,
}

impl Step {
    fn run<T: WithDType + Sqrt>(&self, w: &mut [T], mv: &[T]) {
        let (m, v) = mv.split_at(w.len());
        let (c1, c2, eps, lr) = (T::from_f64(self.c1), T::from_f64(self.c2), T::from_f64(self.eps), T::from_f64(self.lr));
        w.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK)).zip(v.par_chunks(CHUNK)).for_each(|((w, m), v)| {
            for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
                *w -= m / c1 / ((v / c2).sqrt() + eps) * lr;
            }
        });
    }
}

pub(crate) trait Sqrt {
    fn sqrt(self) -> Self;
}
impl Sqrt for f32 {
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}
impl Sqrt for f64 {
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

impl InplaceOp2 for Step {
    fn name(&self) -> &'static str {
        "adam-step"
    }
    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (r1, r2) = (range(l1, self.name())?, range(l2, self.name())?);
        if r2.len() != 2 * r1.len() {
            candle_core::bail!("adam: moments of {} elements for a parameter of {}", r2.len(), r1.len());
        }
        match (s1, s2) {
            (CpuStorage::F32(w), CpuStorage::F32(mv)) => self.run(&mut w[r1], &mv[r2]),
            (CpuStorage::F64(w), CpuStorage::F64(mv)) => self.run(&mut w[r1], &mv[r2]),
            _ => candle_core::bail!("adam kernel: f32 or f64 tensors of one dtype only"),
        }
        Ok(())
    }
}

/// One Adam step of `param` with gradient `grad` and moments `mv` (`[2, n]`: m then v), all in place.
/// `t` is the 1-based step count.
#[allow(clippy::too_many_arguments)]
pub fn adam_step(param: &Tensor, mv: &Tensor, grad: &Tensor, lr: f64, beta1: f64, beta2: f64, eps: f64, t: i32) -> Result<()> {
    let grad = grad.contiguous()?;
    mv.inplace_op2(&grad, &Moments { beta1, beta2 })?;
    let step = Step { lr, c1: 1.0 - beta1.powi(t), c2: 1.0 - beta2.powi(t), eps };
    param.inplace_op2(mv, &step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;
    use candle_core::{DType, Device};

    #[test]
    fn matches_the_tensor_formula() -> Result<()> {
        for dtype in [DType::F64, DType::F32] {
            let n = 1000 * 3 + 7;
            let w0 = seeded(&[n], 1)?.to_dtype(dtype)?;
            let w = w0.copy()?;
            let mv = Tensor::zeros((2, n), dtype, &Device::Cpu)?;
            let (mut m, mut v) = (w0.zeros_like()?, w0.zeros_like()?);
            let mut reference = w0.clone();
            let (lr, b1, b2, eps) = (2e-4, 0.5, 0.999, 1e-8);
            for t in 1..=3 {
                let g = seeded(&[n], 10 + t as u64)?.to_dtype(dtype)?;
                adam_step(&w, &mv, &g, lr, b1, b2, eps, t)?;
                m = ((&m * b1)? + (&g * (1.0 - b1))?)?;
                v = ((&v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
                let denom = ((&v / (1.0 - b2.powi(t)))?.sqrt()? + eps)?;
                reference = (&reference - (((&m / (1.0 - b1.powi(t)))? / denom)? * lr)?)?;
            }
            let d = (w - reference)?.abs()?.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            assert!(d < if dtype == DType::F64 { 1e-15 } else { 1e-7 }, "{dtype:?}: {d}");
        }
        Ok(())
    }

    /// `cargo test --release -p ganime kernels::adam::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let n = 3_500_000; // DCGAN G's parameters
        let w = Tensor::randn(0f32, 1., n, &Device::Cpu)?;
        let g = Tensor::randn(0f32, 1., n, &Device::Cpu)?;
        let mv = Tensor::zeros((2, n), DType::F32, &Device::Cpu)?;
        let (mut m, mut v) = (w.zeros_like()?, w.zeros_like()?);
        crate::nn::kernels::bench_ms("candle tensor ops, 3.5M params", &mut || {
            m = ((&m * 0.5)? + (&g * 0.5)?)?;
            v = ((&v * 0.999)? + (g.sqr()? * 0.001)?)?;
            let denom = ((&v / 0.5)?.sqrt()? + 1e-8)?;
            let _w = (&w - ((&m / 0.5)? / denom)? * 2e-4)?;
            Ok(())
        })?;
        crate::nn::kernels::bench_ms("in-place kernel", &mut || adam_step(&w, &mv, &g, 2e-4, 0.5, 0.999, 1e-8, 5))
    }
}
