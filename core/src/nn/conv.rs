//! Conv2d and ConvTranspose2d layers (PyTorch keys `weight`, `bias`; PyTorch layouts).
//!
//! On the CPU both run as one large GEMM plus a patch gather/scatter (`im2col` / `col2im`), written here as
//! Candle custom ops that are each other's adjoint. Why by hand: Candle's CPU `conv_transpose2d` forward is a
//! direct loop (~15 GFLOP/s here) and conv2d's backward goes through it; as GEMM + scatter, the forward and
//! both gradients are matmuls (Candle's `gemm` backend), and the patch ops differentiate twice (WGAN-GP).
//! On other devices the layers call Candle's own convolutions.

use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use rayon::prelude::*;

/// The geometry shared by im2col and col2im: a "large" image `[B, C, H, W]` and the `[B, Ho*Wo, C*k*k]` patch
/// matrix of a k×k, stride-s, zero-padding-p convolution over it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Patches {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Patches {
    fn out_hw(&self) -> (usize, usize) {
        ((self.h + 2 * self.pad - self.k) / self.stride + 1, (self.w + 2 * self.pad - self.k) / self.stride + 1)
    }
    fn row_len(&self) -> usize {
        self.c * self.k * self.k
    }
    /// For output position `(oy, ox)` and tap `(ky, kx)`: the image coordinate, or None in the zero padding.
    #[inline]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride + ky).checked_sub(self.pad)?;
        let x = (ox * self.stride + kx).checked_sub(self.pad)?;
        (y < self.h && x < self.w).then_some((y, x))
    }

    fn im2col<T: Copy + Default + Send + Sync>(&self, src: &[T], batch: usize) -> Vec<T> {
        let (ho, wo) = self.out_hw();
        let (row, plane) = (self.row_len(), self.h * self.w);
        let mut out = vec![T::default(); batch * ho * wo * row];
        out.par_chunks_mut(row).enumerate().for_each(|(pos, dst)| {
            let (b, l) = (pos / (ho * wo), pos % (ho * wo));
            let (oy, ox) = (l / wo, l % wo);
            let img = &src[b * self.c * plane..(b + 1) * self.c * plane];
            let mut i = 0;
            for c in 0..self.c {
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        if let Some((y, x)) = self.source(oy, ox, ky, kx) {
                            dst[i] = img[c * plane + y * self.w + x];
                        }
                        i += 1;
                    }
                }
            }
        });
        out
    }

    fn col2im<T: Copy + Default + Send + Sync + std::ops::AddAssign>(&self, cols: &[T], batch: usize) -> Vec<T> {
        let (ho, wo) = self.out_hw();
        let (row, plane, kk) = (self.row_len(), self.h * self.w, self.k * self.k);
        let mut out = vec![T::default(); batch * self.c * plane];
        // One task per output plane (b, c): it only scatters into its own plane, so no two tasks write alike.
        out.par_chunks_mut(plane).enumerate().for_each(|(bc, dst)| {
            let (b, c) = (bc / self.c, bc % self.c);
            for l in 0..ho * wo {
                let (oy, ox) = (l / wo, l % wo);
                let src = &cols[(b * ho * wo + l) * row + c * kk..][..kk];
                for ky in 0..self.k {
                    for kx in 0..self.k {
                        if let Some((y, x)) = self.source(oy, ox, ky, kx) {
                            dst[y * self.w + x] += src[ky * self.k + kx];
                        }
                    }
                }
            }
        });
        out
    }
}

fn contiguous_slice<'a, T>(data: &'a [T], layout: &Layout) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
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
            CpuStorage::F32(v) => CpuStorage::F32(p.im2col(contiguous_slice(v, l)?, b)),
            CpuStorage::F64(v) => CpuStorage::F64(p.im2col(contiguous_slice(v, l)?, b)),
            // The filters' `--dtype f16` (the matmul after it runs in f16 too; Candle's CPU matmul has no bf16).
            CpuStorage::F16(v) => CpuStorage::F16(p.im2col(contiguous_slice(v, l)?, b)),
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
            CpuStorage::F32(v) => CpuStorage::F32(p.col2im(contiguous_slice(v, l)?, b)),
            CpuStorage::F64(v) => CpuStorage::F64(p.col2im(contiguous_slice(v, l)?, b)),
            // The filters' `--dtype f16` (the matmul after it runs in f16 too; Candle's CPU matmul has no bf16).
            CpuStorage::F16(v) => CpuStorage::F16(p.col2im(contiguous_slice(v, l)?, b)),
            other => candle_core::bail!("col2im: unsupported dtype {:?}", other.dtype()),
        };
        Ok((out, shape))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

fn im2col(x: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    x.contiguous()?.apply_op1(Im2Col(Patches { c, h, w, k, stride, pad }))
}

fn col2im(cols: &Tensor, c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    cols.contiguous()?.apply_op1(Col2Im(Patches { c, h, w, k, stride, pad }))
}

fn weight_init(init: Option<Init>) -> Init {
    // The DCGAN papers' N(0, 0.02) unless a model asks otherwise.
    init.unwrap_or(Init::Randn { mean: 0.0, stdev: 0.02 })
}

fn add_bias(y: Tensor, bias: &Option<Tensor>) -> Result<Tensor> {
    match bias {
        None => Ok(y),
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1, 1))?),
    }
}

/// `nn.Conv2d(c_in, c_out, k, stride, padding, bias)` with zero padding. Weight `[c_out, c_in, k, k]`.
#[derive(Clone, Debug)]
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, padding: usize, bias: bool, init: Option<Init>, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((c_out, c_in, k, k), "weight", weight_init(init))?;
        let bias = if bias { Some(vb.get_with_hints(c_out, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, stride, padding })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c_out, c_in, k, _) = self.weight.dims4()?;
        let y = if x.device().is_cpu() {
            let (b, _, h, w) = x.dims4()?;
            let p = Patches { c: c_in, h, w, k, stride: self.stride, pad: self.padding };
            let (ho, wo) = p.out_hw();
            let cols = im2col(x, k, self.stride, self.padding)?.reshape((b * ho * wo, p.row_len()))?;
            let y = cols.matmul(&self.weight.reshape((c_out, p.row_len()))?.t()?)?;
            y.reshape((b, ho, wo, c_out))?.permute((0, 3, 1, 2))?.contiguous()?
        } else {
            x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?
        };
        add_bias(y, &self.bias)
    }
}

/// `nn.ConvTranspose2d(c_in, c_out, k, stride, padding, output_padding, bias)`. Weight `[c_in, c_out, k, k]`.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: usize,
    pub padding: usize,
    pub output_padding: usize,
}

impl ConvTranspose2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, padding: usize, output_padding: usize, bias: bool, init: Option<Init>, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints((c_in, c_out, k, k), "weight", weight_init(init))?;
        let bias = if bias { Some(vb.get_with_hints(c_out, "bias", Init::Const(0.0))?) } else { None };
        Ok(Self { weight, bias, stride, padding, output_padding })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (c_in, c_out, k, _) = self.weight.dims4()?;
        let (b, _, h, w) = x.dims4()?;
        let big = |n: usize| (n - 1) * self.stride + k + self.output_padding - 2 * self.padding;
        let y = if x.device().is_cpu() {
            let rows = x.permute((0, 2, 3, 1))?.contiguous()?.reshape((b * h * w, c_in))?;
            let cols = rows.matmul(&self.weight.reshape((c_in, c_out * k * k))?)?.reshape((b, h * w, c_out * k * k))?;
            col2im(&cols, c_out, big(h), big(w), k, self.stride, self.padding)?
        } else {
            x.conv_transpose2d(&self.weight, self.padding, self.output_padding, self.stride, 1)?
        };
        add_bias(y, &self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap()
    }

    fn conv(c_in: usize, c_out: usize, k: usize, s: usize, p: usize) -> Result<Conv2d> {
        let vm = VarMap::new();
        Conv2d::new(c_in, c_out, k, s, p, true, Some(Init::Randn { mean: 0., stdev: 0.5 }), VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu))
    }

    fn convt(c_in: usize, c_out: usize, k: usize, s: usize, p: usize, op: usize) -> Result<ConvTranspose2d> {
        let vm = VarMap::new();
        ConvTranspose2d::new(c_in, c_out, k, s, p, op, true, Some(Init::Randn { mean: 0., stdev: 0.5 }), VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu))
    }

    #[test]
    fn conv2d_matches_candle() -> Result<()> {
        for &(k, s, p, h, w) in &[(4, 2, 1, 8, 8), (3, 1, 1, 5, 7), (5, 2, 2, 7, 6), (1, 1, 0, 3, 3)] {
            let c = conv(3, 4, k, s, p)?;
            let x = seeded(&[2, 3, h, w], 1)?;
            let reference = x.conv2d(&c.weight, p, s, 1, 1)?.broadcast_add(&c.bias.as_ref().unwrap().reshape((1, 4, 1, 1))?)?;
            assert!(max_diff(&c.forward(&x)?, &reference) < 1e-12);
        }
        Ok(())
    }

    #[test]
    fn conv_transpose2d_matches_candle() -> Result<()> {
        for &(k, s, p, op, h, w) in &[(4, 2, 1, 0, 4, 4), (4, 1, 0, 0, 1, 1), (3, 2, 1, 1, 3, 5), (5, 2, 2, 1, 4, 4)] {
            let c = convt(3, 2, k, s, p, op)?;
            let x = seeded(&[2, 3, h, w], 2)?;
            let reference = x
                .conv_transpose2d(&c.weight, p, op, s, 1)?
                .broadcast_add(&c.bias.as_ref().unwrap().reshape((1, 2, 1, 1))?)?;
            assert!(max_diff(&c.forward(&x)?, &reference) < 1e-12);
        }
        Ok(())
    }

    #[test]
    fn conv_gradients_input_and_weight() -> Result<()> {
        let c = conv(2, 3, 3, 2, 1)?;
        check_gradient(&[2, 2, 5, 6], |x| c.forward(x))?;
        let x = seeded(&[2, 2, 5, 6], 4)?;
        check_gradient(&[3, 2, 3, 3], |w| Conv2d { weight: w.clone(), bias: None, stride: 2, padding: 1 }.forward(&x))?;
        let t = convt(2, 3, 4, 2, 1, 0)?;
        check_gradient(&[2, 2, 3, 3], |x| t.forward(x))?;
        let x = seeded(&[2, 2, 3, 3], 5)?;
        check_gradient(&[2, 3, 3, 3], |w| {
            ConvTranspose2d { weight: w.clone(), bias: None, stride: 2, padding: 1, output_padding: 1 }.forward(&x)
        })
    }

}
