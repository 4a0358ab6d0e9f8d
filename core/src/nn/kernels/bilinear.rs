//! Separable bilinear resizing of `[N, C, H, W]` planes, forward and backward each one parallel pass over the
//! planes: rows first (`a + (b − a)·w` between two source rows), then columns, the arithmetic of the gathers
//! in `nn::bilinear` (which stay for other devices and second-order gradients). Training the AnimeGANv2
//! generator went through four single-threaded `index_select`s forward and their `index_add`s backward per
//! resize: ~15 % of the main thread's time in a training step.

use super::{contiguous, second_order_gradients};
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// One axis: for each output index the two source indices and the weight of the second.
#[derive(Clone, Debug)]
pub struct Taps {
    pub lo: Vec<u32>,
    pub hi: Vec<u32>,
    pub weight: Vec<f64>,
}

/// The resize of `h_in × w_in` planes by `rows` and `cols`.
#[derive(Clone, Debug)]
pub struct Bilinear {
    pub rows: Taps,
    pub cols: Taps,
    pub h_in: usize,
    pub w_in: usize,
}

impl Bilinear {
    fn out_hw(&self) -> (usize, usize) {
        (self.rows.lo.len(), self.cols.lo.len())
    }

    /// The rows' and columns' second-source weights in `T`.
    fn weights<T: WithDType>(&self) -> (Vec<T>, Vec<T>) {
        let cast = |w: &[f64]| w.iter().map(|&v| T::from_f64(v)).collect();
        (cast(&self.rows.weight), cast(&self.cols.weight))
    }

    fn forward<T: WithDType>(&self, x: &[T]) -> Vec<T> {
        let (h, w) = (self.h_in, self.w_in);
        let (ho, wo) = self.out_hw();
        let (wy, wx) = self.weights::<T>();
        let planes = x.len() / (h * w);
        let mut out = Vec::with_capacity(planes * ho * wo);
        out.spare_capacity_mut()[..planes * ho * wo].par_chunks_mut(ho * wo).zip(x.par_chunks(h * w)).for_each_init(
            || vec![T::zero(); w],
            |row, (o, plane): (&mut [MaybeUninit<T>], &[T])| {
                for (y, o_row) in o.chunks_mut(wo).enumerate() {
                    let (r0, r1) = (&plane[self.rows.lo[y] as usize * w..][..w], &plane[self.rows.hi[y] as usize * w..][..w]);
                    for ((r, &a), &b) in row.iter_mut().zip(r0).zip(r1) {
                        *r = a + (b - a) * wy[y];
                    }
                    for (xo, v) in o_row.iter_mut().enumerate() {
                        let (a, b) = (row[self.cols.lo[xo] as usize], row[self.cols.hi[xo] as usize]);
                        v.write(a + (b - a) * wx[xo]);
                    }
                }
            },
        );
        // SAFETY: every output position of every plane was written above.
        unsafe { out.set_len(planes * ho * wo) };
        out
    }

    /// The input gradient: each output's gradient spread back over its four sources with the same weights.
    fn backward<T: WithDType>(&self, g: &[T]) -> Vec<T> {
        let (h, w) = (self.h_in, self.w_in);
        let (ho, wo) = self.out_hw();
        let (wy, wx) = self.weights::<T>();
        let mut dx = super::zeroed(g.len() / (ho * wo) * h * w);
        dx.par_chunks_mut(h * w).zip(g.par_chunks(ho * wo)).for_each_init(
            || vec![T::zero(); w],
            |row, (dx, g)| {
                for (y, g_row) in g.chunks(wo).enumerate() {
                    row.fill(T::zero());
                    for (xo, &gv) in g_row.iter().enumerate() {
                        row[self.cols.lo[xo] as usize] += gv - gv * wx[xo];
                        row[self.cols.hi[xo] as usize] += gv * wx[xo];
                    }
                    let (lo, hi) = (self.rows.lo[y] as usize * w, self.rows.hi[y] as usize * w);
                    for (c, &r) in row.iter().enumerate() {
                        dx[lo + c] += r - r * wy[y];
                        dx[hi + c] += r * wy[y];
                    }
                }
            },
        );
        dx
    }
}

impl CustomOp1 for Bilinear {
    fn name(&self) -> &'static str {
        "resize-bilinear"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        if h * w == 0 || self.out_hw().0 * self.out_hw().1 == 0 {
            candle_core::bail!("bilinear resize: empty planes ({h}×{w} to {:?})", self.out_hw());
        }
        if (h, w) != (self.h_in, self.w_in) {
            candle_core::bail!("bilinear resize: input {h}×{w}, taps for {}×{}", self.h_in, self.w_in);
        }
        let y = match s {
            CpuStorage::F32(_) => CpuStorage::F32(self.forward(contiguous::<f32>(self.name(), s, l)?)),
            CpuStorage::F64(_) => CpuStorage::F64(self.forward(contiguous::<f64>(self.name(), s, l)?)),
            other => candle_core::bail!("bilinear resize kernel: unsupported dtype {:?}", other.dtype()),
        };
        let (ho, wo) = self.out_hw();
        Ok((y, Shape::from((b, c, ho, wo))))
    }
    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&BilinearGrad(self.clone()))?))
    }
}

/// The gradient of [`Bilinear`]: `[N, C, Ho, Wo]` → `[N, C, H, W]`.
struct BilinearGrad(Bilinear);

impl CustomOp1 for BilinearGrad {
    fn name(&self) -> &'static str {
        "resize-bilinear-backward"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, ho, wo) = l.shape().dims4()?;
        if (ho, wo) != self.0.out_hw() {
            candle_core::bail!("bilinear resize backward: gradient {:?} for an output of {:?}", l.shape(), self.0.out_hw());
        }
        let dx = match s {
            CpuStorage::F32(_) => CpuStorage::F32(self.0.backward(contiguous::<f32>(self.name(), s, l)?)),
            CpuStorage::F64(_) => CpuStorage::F64(self.0.backward(contiguous::<f64>(self.name(), s, l)?)),
            other => candle_core::bail!("bilinear resize kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((dx, Shape::from((b, c, self.0.h_in, self.0.w_in))))
    }
}

/// `x [N, C, H, W]` resized by `op` on the kernel for f32/f64 CPU tensors (without second-order gradients when
/// `x` is tracked); None otherwise.
pub fn resize(x: &Tensor, op: Bilinear) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) || (x.track_op() && second_order_gradients()) {
        return Ok(None);
    }
    x.contiguous()?.apply_op1(op).map(Some)
}
