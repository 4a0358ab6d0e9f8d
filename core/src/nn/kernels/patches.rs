//! im2col / col2im: the patch gather and scatter around the GEMM of `nn::Conv2d` (gather, GEMM) and
//! `nn::ConvTranspose2d` (GEMM, scatter). The two are each other's adjoint, so each op's backward is the other
//! one, tracked: convolutions built from them differentiate twice (WGAN-GP).
//!
//! Layout: a "large" image `[B, C, H, W]` and the `[B, Ho·Wo, C·k·k]` patch matrix of a k×k, stride-s,
//! zero-padding-p convolution over it. Rows whose k taps all fall inside the image (every row but the borders)
//! are copied or accumulated as k-element slices; only border rows check each tap. The gather writes every
//! element exactly once, so its output is not zero-filled first.

use super::contiguous;
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Patches {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl Patches {
    pub fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }

    /// `self` if the k×k kernel fits the padded input with a non-zero stride and, given `out`, yields that output
    /// size; otherwise an error naming `op`. The conv kernels index raw buffers by this geometry (`unsafe` GEMMs),
    /// so each op checks it here before running.
    pub fn checked(self, op: &str, out: Option<(usize, usize)>) -> Result<Self> {
        let Patches { c, h, w, k, stride, pad } = self;
        if stride == 0 || k == 0 || h + 2 * pad < k || w + 2 * pad < k {
            candle_core::bail!("{op}: a {k}x{k} kernel with stride {stride} and padding {pad} does not fit a {c}x{h}x{w} input");
        }
        if let Some(out) = out.filter(|&o| o != self.out_hw()) {
            candle_core::bail!(
                "{op}: a {k}x{k} kernel with stride {stride} and padding {pad} over a {c}x{h}x{w} input gives {:?}, not {out:?}",
                self.out_hw()
            );
        }
        Ok(self)
    }

    /// `(dim 0, dim 1, k)` of a conv weight layout `[·, ·, k, k]`, or an error naming `op` if it is not square.
    pub fn square_weight(op: &str, l: &Layout) -> Result<(usize, usize, usize)> {
        let (d0, d1, k, k2) = l.shape().dims4()?;
        if k != k2 {
            candle_core::bail!("{op}: the weight {:?} is not square in its last two dims", l.dims());
        }
        Ok((d0, d1, k))
    }

    pub fn row_len(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Image row of output row `oy`, tap `ky`, or None in the padding.
    #[inline(always)]
    fn src_y(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky).checked_sub(self.pad).filter(|&y| y < self.h)
    }

    /// First image column of output column `ox` (may be negative) and whether all k taps are inside the image.
    #[inline(always)]
    fn src_x(&self, ox: usize) -> (isize, bool) {
        let x0 = (ox * self.stride) as isize - self.pad as isize;
        (x0, x0 >= 0 && x0 as usize + self.k <= self.w)
    }

    pub fn im2col<T: WithDType>(&self, src: &[T], batch: usize) -> Vec<T> {
        let (ho, wo) = self.out_hw();
        let (row, plane, k) = (self.row_len(), self.h * self.w, self.k);
        let len = batch * ho * wo * row;
        let mut out: Vec<T> = Vec::with_capacity(len);
        out.spare_capacity_mut()[..len].par_chunks_mut(row).enumerate().with_min_len(16).for_each(|(pos, dst)| {
            let (b, l) = (pos / (ho * wo), pos % (ho * wo));
            let (oy, ox) = (l / wo, l % wo);
            let img = &src[b * self.c * plane..(b + 1) * self.c * plane];
            let (x0, inside) = self.src_x(ox);
            for (c, dst_c) in dst.chunks_exact_mut(k * k).enumerate() {
                for (ky, dst_row) in dst_c.chunks_exact_mut(k).enumerate() {
                    match self.src_y(oy, ky) {
                        None => dst_row.iter_mut().for_each(|d| {
                            d.write(T::zero());
                        }),
                        Some(y) => {
                            let line = &img[c * plane + y * self.w..][..self.w];
                            if inside {
                                for (d, &v) in dst_row.iter_mut().zip(&line[x0 as usize..x0 as usize + k]) {
                                    d.write(v);
                                }
                            } else {
                                for (kx, d) in dst_row.iter_mut().enumerate() {
                                    let x = x0 + kx as isize;
                                    d.write(if x >= 0 && (x as usize) < self.w { line[x as usize] } else { T::zero() });
                                }
                            }
                        }
                    }
                }
            }
        });
        // SAFETY: the loop above wrote every one of the `len` elements (each row chunk is filled completely).
        unsafe { out.set_len(len) };
        out
    }

    pub fn col2im<T: WithDType>(&self, cols: &[T], batch: usize) -> Vec<T> {
        let (ho, wo) = self.out_hw();
        let (row, plane, k) = (self.row_len(), self.h * self.w, self.k);
        let mut out = super::zeroed(batch * self.c * plane);
        // One task per output plane (b, c): it only scatters into its own plane, so no two tasks write alike.
        out.par_chunks_mut(plane).enumerate().for_each(|(bc, dst)| {
            let (b, c) = (bc / self.c, bc % self.c);
            for oy in 0..ho {
                for ox in 0..wo {
                    let l = oy * wo + ox;
                    let src = &cols[(b * ho * wo + l) * row + c * k * k..][..k * k];
                    let (x0, inside) = self.src_x(ox);
                    for (ky, taps) in src.chunks_exact(k).enumerate() {
                        let Some(y) = self.src_y(oy, ky) else { continue };
                        let line = &mut dst[y * self.w..][..self.w];
                        if inside {
                            for (d, &v) in line[x0 as usize..x0 as usize + k].iter_mut().zip(taps) {
                                *d += v;
                            }
                        } else {
                            for (kx, &v) in taps.iter().enumerate() {
                                let x = x0 + kx as isize;
                                if x >= 0 && (x as usize) < self.w {
                                    line[x as usize] += v;
                                }
                            }
                        }
                    }
                }
            }
        });
        out
    }
}

fn slice_of<'a, T>(v: &'a [T], l: &Layout) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&v[start..end]),
        None => candle_core::bail!("patch ops need a contiguous input"),
    }
}

struct Im2Col(Patches);
struct Col2Im(Patches);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let b = l.dims()[0];
        let (ho, wo) = p.out_hw();
        let shape = Shape::from((b, ho * wo, p.row_len()));
        let out = match s {
            CpuStorage::F32(_) => CpuStorage::F32(p.im2col(contiguous::<f32>(self.name(), s, l)?, b)),
            CpuStorage::F64(_) => CpuStorage::F64(p.im2col(contiguous::<f64>(self.name(), s, l)?, b)),
            // The filters' `--dtype f16` (the matmul after it runs in f16 too; Candle's CPU matmul has no bf16).
            CpuStorage::F16(v) => CpuStorage::F16(p.im2col(slice_of(v, l)?, b)),
            other => candle_core::bail!("im2col: unsupported dtype {:?}", other.dtype()),
        };
        Ok((out, shape))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // The adjoint of a gather is the matching scatter; tracked, so second derivatives work too.
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = self.0;
        let b = l.dims()[0];
        let shape = Shape::from((b, p.c, p.h, p.w));
        let out = match s {
            CpuStorage::F32(_) => CpuStorage::F32(p.col2im(contiguous::<f32>(self.name(), s, l)?, b)),
            CpuStorage::F64(_) => CpuStorage::F64(p.col2im(contiguous::<f64>(self.name(), s, l)?, b)),
            CpuStorage::F16(v) => CpuStorage::F16(p.col2im(slice_of(v, l)?, b)),
            other => candle_core::bail!("col2im: unsupported dtype {:?}", other.dtype()),
        };
        Ok((out, shape))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

/// `[B, C, H, W]` -> `[B, Ho·Wo, C·k·k]`.
pub fn im2col(x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    x.contiguous()?.apply_op1(Im2Col(Patches { c, h, w, k, stride, pad }))
}

/// `[B, Ho·Wo, C·k·k]` -> `[B, C, H, W]`, summing overlapping taps.
pub fn col2im(cols: &Tensor, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    cols.contiguous()?.apply_op1(Col2Im(Patches { c, h, w, k, stride, pad }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::{DType, Device};

    /// The plain per-element definition, to check the sliced fast paths against.
    fn im2col_reference(p: &Patches, x: &[f64], batch: usize) -> Vec<f64> {
        let (ho, wo) = p.out_hw();
        let mut out = Vec::new();
        for b in 0..batch {
            for oy in 0..ho {
                for ox in 0..wo {
                    for c in 0..p.c {
                        for ky in 0..p.k {
                            for kx in 0..p.k {
                                let y = (oy * p.stride + ky) as isize - p.pad as isize;
                                let xx = (ox * p.stride + kx) as isize - p.pad as isize;
                                let inside = y >= 0 && xx >= 0 && (y as usize) < p.h && (xx as usize) < p.w;
                                out.push(if inside { x[((b * p.c + c) * p.h + y as usize) * p.w + xx as usize] } else { 0.0 });
                            }
                        }
                    }
                }
            }
        }
        out
    }

    const CASES: [(usize, usize, usize, usize, usize, usize); 6] =
        [(3, 7, 5, 3, 1, 1), (2, 8, 8, 4, 2, 1), (1, 6, 9, 5, 2, 2), (2, 4, 4, 1, 1, 0), (3, 5, 6, 3, 3, 0), (1, 3, 3, 3, 1, 2)];

    #[test]
    fn im2col_matches_definition_and_col2im_is_its_adjoint() -> Result<()> {
        for &(c, h, w, k, stride, pad) in &CASES {
            let p = Patches { c, h, w, k, stride, pad };
            let x = seeded(&[2, c, h, w], 1)?;
            let cols = im2col(&x, k, stride, pad)?;
            let expected = im2col_reference(&p, &x.flatten_all()?.to_vec1()?, 2);
            assert_eq!(cols.flatten_all()?.to_vec1::<f64>()?, expected, "{p:?}");
            // <im2col(x), r> == <x, col2im(r)> for any r.
            let r = seeded(cols.dims(), 2)?;
            let lhs = (&cols * &r)?.sum_all()?.to_scalar::<f64>()?;
            let rhs = (&x * col2im(&r, c, h, w, k, stride, pad)?)?.sum_all()?.to_scalar::<f64>()?;
            assert!((lhs - rhs).abs() < 1e-9 * (1.0 + lhs.abs()), "{p:?}: {lhs} vs {rhs}");
            let x32 = x.to_dtype(DType::F32)?;
            let d = (im2col(&x32, k, stride, pad)?.to_dtype(DType::F64)? - &cols)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?;
            assert!(d < 1e-6);
        }
        Ok(())
    }

    #[test]
    fn gradients() -> Result<()> {
        check_gradient(&[1, 2, 5, 6], |x| im2col(x, 3, 2, 1))?;
        check_gradient(&[1, 9, 12], |cols| col2im(cols, 3, 5, 5, 2, 2, 1))
    }

    /// `cargo test --release -p ganime kernels::patches::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        // DCGAN D's second conv (64 -> 128, k4 s2 p1 at 32x32), batch 64.
        let x = Tensor::randn(0f32, 1., (64, 64, 32, 32), &Device::Cpu)?;
        let cols = im2col(&x, 4, 2, 1)?;
        for (name, f) in [
            ("im2col [64,64,32,32] k4 s2 p1", Box::new(|| im2col(&x, 4, 2, 1).map(|_| ())) as Box<dyn Fn() -> Result<()>>),
            ("col2im back", Box::new(|| col2im(&cols, 64, 32, 32, 4, 2, 1).map(|_| ()))),
        ] {
            f()?;
            let t = std::time::Instant::now();
            for _ in 0..10 {
                f()?;
            }
            let ms = t.elapsed().as_secs_f64() * 100.0;
            println!("{name}: {ms:.2} ms ({:.1} GB/s of patch matrix)", cols.elem_count() as f64 * 4.0 / ms / 1e6);
        }
        Ok(())
    }
}
