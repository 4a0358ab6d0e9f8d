//! `nn.ReflectionPad2d`: one copy pass per plane forward, one accumulating pass per plane backward, planes in
//! parallel. Candle has no reflection padding; built from two `index_select`s, its forward gathered on one
//! thread and its backward (`index_add`) scattered on one thread: ~21 % of the main thread's time in a CycleGAN
//! step while the other core waited. With second-order gradients on (WGAN-GP) the layer keeps the gathers,
//! which differentiate again.

use super::{contiguous, second_order_gradients};
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Source index of padded position `i` on an axis of `n` reflected by `lo` in front (no edge repeat).
pub(crate) fn reflect_index(i: usize, lo: usize, n: usize) -> usize {
    let j = i as i64 - lo as i64;
    (if j < 0 {
        -j
    } else if j >= n as i64 {
        2 * (n as i64 - 1) - j
    } else {
        j
    }) as usize
}

/// The padding `(left, right, top, bottom)` of `[B, C, h, w]` planes.
#[derive(Clone, Copy, Debug)]
pub struct ReflectPad {
    pub left: usize,
    pub right: usize,
    pub top: usize,
    pub bottom: usize,
}

impl ReflectPad {
    fn padded_hw(&self, h: usize, w: usize) -> (usize, usize) {
        (h + self.top + self.bottom, w + self.left + self.right)
    }

    /// Source column of every padded column.
    fn columns(&self, w: usize) -> Vec<usize> {
        let wo = w + self.left + self.right;
        (0..wo).map(|i| reflect_index(i, self.left, w)).collect()
    }

    fn forward<T: WithDType>(&self, x: &[T], h: usize, w: usize) -> Vec<T> {
        let (ho, wo) = self.padded_hw(h, w);
        let planes = x.len() / (h * w);
        let cols = self.columns(w);
        let mut out = Vec::with_capacity(planes * ho * wo);
        out.spare_capacity_mut()[..planes * ho * wo].par_chunks_mut(ho * wo).zip(x.par_chunks(h * w)).for_each(
            |(o, plane): (&mut [MaybeUninit<T>], &[T])| {
                for (oy, row) in o.chunks_mut(wo).enumerate() {
                    let src = &plane[reflect_index(oy, self.top, h) * w..][..w];
                    for (d, &s) in row[self.left..self.left + w].iter_mut().zip(src) {
                        d.write(s);
                    }
                    for ox in (0..self.left).chain(self.left + w..wo) {
                        row[ox].write(src[cols[ox]]);
                    }
                }
            },
        );
        // SAFETY: every position of every padded plane was written above.
        unsafe { out.set_len(planes * ho * wo) };
        out
    }

    /// The input gradient: each padded position's gradient added to the input position it copied.
    fn backward<T: WithDType>(&self, g: &[T], h: usize, w: usize) -> Vec<T> {
        let (ho, wo) = self.padded_hw(h, w);
        let cols = self.columns(w);
        let mut dx = super::zeroed(g.len() / (ho * wo) * h * w);
        dx.par_chunks_mut(h * w).zip(g.par_chunks(ho * wo)).for_each(|(dx, g)| {
            for (oy, grow) in g.chunks(wo).enumerate() {
                let dst = &mut dx[reflect_index(oy, self.top, h) * w..][..w];
                for (d, &v) in dst.iter_mut().zip(&grow[self.left..self.left + w]) {
                    *d += v;
                }
                for ox in (0..self.left).chain(self.left + w..wo) {
                    dst[cols[ox]] += grow[ox];
                }
            }
        });
        dx
    }
}

impl CustomOp1 for ReflectPad {
    fn name(&self) -> &'static str {
        "reflection-pad2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        if self.top.max(self.bottom) >= h || self.left.max(self.right) >= w {
            candle_core::bail!("reflection padding {self:?} must be smaller than the input {h}x{w}");
        }
        let y = match s {
            CpuStorage::F32(_) => CpuStorage::F32(self.forward(contiguous::<f32>(self.name(), s, l)?, h, w)),
            CpuStorage::F64(_) => CpuStorage::F64(self.forward(contiguous::<f64>(self.name(), s, l)?, h, w)),
            other => candle_core::bail!("reflection pad kernel: unsupported dtype {:?}", other.dtype()),
        };
        let (ho, wo) = self.padded_hw(h, w);
        Ok((y, Shape::from((b, c, ho, wo))))
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = x.dims4()?;
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&ReflectPadGrad { pad: *self, h, w })?))
    }
}

/// The gradient of [`ReflectPad`] for an input of `h × w`.
struct ReflectPadGrad {
    pad: ReflectPad,
    h: usize,
    w: usize,
}

impl CustomOp1 for ReflectPadGrad {
    fn name(&self) -> &'static str {
        "reflection-pad2d-backward"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, ho, wo) = l.shape().dims4()?;
        if (ho, wo) != self.pad.padded_hw(self.h, self.w) {
            candle_core::bail!("reflection pad backward: gradient {:?} for an input of {}×{}", l.shape(), self.h, self.w);
        }
        let dx = match s {
            CpuStorage::F32(_) => CpuStorage::F32(self.pad.backward(contiguous::<f32>(self.name(), s, l)?, self.h, self.w)),
            CpuStorage::F64(_) => CpuStorage::F64(self.pad.backward(contiguous::<f64>(self.name(), s, l)?, self.h, self.w)),
            other => candle_core::bail!("reflection pad kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((dx, Shape::from((b, c, self.h, self.w))))
    }
}

/// `pad` of `x [B, C, H, W]` on the kernel for f32/f64 CPU tensors without second-order gradients; None
/// otherwise. The caller checks the padding against the size.
pub fn reflection_pad2d(x: &Tensor, pad: ReflectPad) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) || (x.track_op() && second_order_gradients()) {
        return Ok(None);
    }
    x.contiguous()?.apply_op1(pad).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, max_diff, seeded};
    use candle_core::{Device, Var};

    /// The two `index_select`s the layer used before (and still uses under second-order gradients).
    fn gathers(x: &Tensor, p: ReflectPad) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let index = |n: usize, lo: usize, hi: usize| -> Vec<u32> { (0..n + lo + hi).map(|i| reflect_index(i, lo, n) as u32).collect() };
        let x = x.index_select(&Tensor::new(index(h, p.top, p.bottom).as_slice(), x.device())?, 2)?;
        x.index_select(&Tensor::new(index(w, p.left, p.right).as_slice(), x.device())?, 3)
    }

    /// Values and gradients against the gathers (exact: the same additions), asymmetric paddings, f64 and f32;
    /// finite differences.
    #[test]
    fn matches_the_gathers_forward_and_backward() -> Result<()> {
        let pads = [
            ReflectPad { left: 2, right: 1, top: 1, bottom: 2 },
            ReflectPad { left: 3, right: 3, top: 3, bottom: 3 },
            ReflectPad { left: 0, right: 1, top: 0, bottom: 0 },
        ];
        for (i, &p) in pads.iter().enumerate() {
            let x = Var::from_tensor(&seeded(&[2, 3, 5, 6], 50 + i as u64)?)?;
            let ours = reflection_pad2d(&x, p)?.unwrap();
            let theirs = gathers(&x, p)?;
            assert_eq!(max_diff(&ours, &theirs), 0.0, "forward case {i}");
            let r = seeded(ours.dims(), 60 + i as u64)?;
            let a = (ours * &r)?.sum_all()?.backward()?;
            let b = (theirs * &r)?.sum_all()?.backward()?;
            assert!(max_diff(a.get(&x).unwrap(), b.get(&x).unwrap()) < 1e-14, "backward case {i}");
            let x32 = x.to_dtype(DType::F32)?;
            assert_eq!(max_diff(&reflection_pad2d(&x32, p)?.unwrap(), &gathers(&x32, p)?), 0.0, "f32 case {i}");
        }
        check_gradient(&[1, 2, 4, 5], |x| Ok(reflection_pad2d(x, ReflectPad { left: 2, right: 2, top: 2, bottom: 1 })?.unwrap()))
    }

    /// `cargo test --release -p ganime kernels::reflect_pad::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (1, 64, 128, 128), &Device::Cpu)?)?;
        let p = ReflectPad { left: 1, right: 1, top: 1, bottom: 1 };
        for (name, kernel) in [("candle index_select", false), ("kernel", true)] {
            crate::nn::kernels::bench_ms(&format!("{name}, fwd+bwd [1,64,128,128] pad 1"), &mut || {
                let y = if kernel { reflection_pad2d(&x, p)?.unwrap() } else { gathers(&x, p)? };
                y.sum_all()?.backward().map(|_| ())
            })?;
        }
        Ok(())
    }
}
