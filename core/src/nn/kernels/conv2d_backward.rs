//! The two gradients of a convolution as tiled kernels, and the transposed convolution built from them.
//!
//! For `y = conv2d(x, W)` (`x [B, C, H, W]`, `W [C_out, C, k, k]`, `y [B, C_out, Ho, Wo]`, patch matrix
//! `cols_b [C·k·k, Ho·Wo]` of image b):
//! - [`input_gradient`]: `dx_b = col2im(Wᵀ · dy_b)`, one tile of output positions at a time: the tile's
//!   `Wᵀ · dy` block is a small buffer scattered straight into `dx`. Tasks are (image, block of input
//!   channels), so no two write the same plane. At stride 1 it is a convolution of `dy` with the flipped
//!   weight instead, on the forward kernel ([`input_gradient_as_conv`]).
//! - [`weight_gradient`]: `dW = Σ_b dy_b · cols_bᵀ`, each tile's patches gathered into a small buffer (as the
//!   forward does) and accumulated into one `dW` per worker, summed at the end in a fixed order.
//!
//! Why: Candle's autograd of the whole-batch GEMM convolution materialises the full patch matrix of the batch
//! twice per backward (`[B·Ho·Wo, C·k·k]`: 150 MB for one VGG layer at 256², 205 MB for CycleGAN's output
//! conv) and copies transposed gradients; these kernels touch only cache-sized tiles.
//!
//! `ConvTranspose2d` is the adjoint of `Conv2d` with the same weight: its forward is [`input_gradient`], its
//! input gradient the conv forward ([`super::conv2d`]) and its weight gradient [`weight_gradient`] with the
//! roles of input and output swapped ([`ConvTranspose2dGemm`]).
//!
//! The kernels' own backward passes are not differentiable again: under second-order gradients (WGAN-GP) the
//! layers keep the tracked patch ops (see `nn::conv`).

use super::conv2d::{for_each_run, gather_tile, scatter_run, Conv2dGemm, MIN_TILE, TILE_ELEMS};
use super::on_slices;
use super::patches::Patches;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// `dx [B, C, H, W]` of a conv `p` (input geometry) from `dy [B, C_out, Ho, Wo]` and `w [C_out, C, k, k]`.
pub(super) fn input_gradient<T: WithDType>(dy: &[T], w: &[T], b: usize, p: Patches, c_out: usize) -> Vec<T> {
    if p.stride == 1 && p.pad < p.k {
        return input_gradient_as_conv(dy, w, b, p, c_out);
    }
    let (ho, wo) = p.out_hw();
    let (l, k, kk, plane, rows) = (ho * wo, p.k, p.k * p.k, p.h * p.w, p.row_len());
    // Enough (image, channel block) tasks for every thread; whole images when the batch alone is enough.
    let blocks = (2 * rayon::current_num_threads()).div_ceil(b).clamp(1, p.c);
    let cb = p.c.div_ceil(blocks);
    let tile = (TILE_ELEMS / (cb * kk)).clamp(MIN_TILE, l.max(MIN_TILE)).min(l);
    let mut dx = super::zeroed(b * p.c * plane);
    dx.par_chunks_mut(p.c * plane).enumerate().for_each(|(bi, image)| {
        image.par_chunks_mut(cb * plane).enumerate().for_each(|(blk, planes)| {
            let (c0, nc) = (blk * cb, planes.len() / plane);
            let m = nc * kk;
            // Per-thread scratch: each tile's GEMM writes every element it then reads.
            super::with_scratch::<T, _>(m * tile, 0, |buf, _| {
                for start in (0..l).step_by(tile) {
                    let n = tile.min(l - start);
                    let buf = &mut buf[..m * n];
                    // SAFETY: buf is [m, n] (row stride n); the weight slice Wᵀ[c0·k²…, co] is at co·rows + c0·k² + i
                    // (i < m, co < c_out); dy_b[co, start + j] at (bi·c_out + co)·l + start + j, j < n: all inside.
                    unsafe {
                        super::gemm_1t(
                            m,
                            n,
                            c_out,
                            buf.as_mut_ptr(),
                            n as isize,
                            false,
                            w.as_ptr().add(c0 * kk),
                            (rows as isize, 1),
                            dy.as_ptr().add(bi * c_out * l + start),
                            (1, l as isize),
                        );
                    }
                    for (r, src) in buf.chunks_exact(n).enumerate() {
                        let (cl, ky, kx) = (r / kk, r / k % k, r % k);
                        let dst = &mut planes[cl * plane..(cl + 1) * plane];
                        for_each_run(&p, wo, start, n, ky, |j, run, ox0, yy| {
                            if let Some(yy) = yy {
                                scatter_run(&mut dst[yy * p.w..][..p.w], &src[j..j + run], ox0, p.stride, kx as isize - p.pad as isize);
                            }
                        });
                    }
                }
            });
        });
    });
    dx
}

/// Stride 1: `dx` is the convolution of `dy` (padded by k − 1 − pad) with the weight flipped in space and with
/// in/out channels swapped, so it runs on the forward kernel (tiled patches, or shifted GEMMs for k ≥ 5). Measured
/// on VGG 64→64 3×3 at 256² (`bench`): 1.5× the speed of the tiled scatter below, relative to the weight gradient.
fn input_gradient_as_conv<T: WithDType>(dy: &[T], w: &[T], b: usize, p: Patches, c_out: usize) -> Vec<T> {
    let (c, k) = (p.c, p.k);
    let mut flipped = vec![T::zero(); w.len()];
    for co in 0..c_out {
        for ci in 0..c {
            for t in 0..k * k {
                flipped[(ci * c_out + co) * k * k + (k * k - 1 - t)] = w[(co * c + ci) * k * k + t];
            }
        }
    }
    let (ho, wo) = p.out_hw();
    let q = Patches { c: c_out, h: ho, w: wo, k, stride: 1, pad: k - 1 - p.pad };
    debug_assert_eq!(q.out_hw(), (p.h, p.w));
    Conv2dGemm { stride: 1, pad: q.pad, shifted: true }.run(dy, &flipped, b, q, c)
}

/// `dW [C_out, C·k·k]` of a conv `p` from its input `x [B, C, H, W]` and `dy [B, C_out, Ho, Wo]`.
pub(super) fn weight_gradient<T: WithDType>(x: &[T], dy: &[T], b: usize, p: Patches, c_out: usize) -> Vec<T> {
    let (ho, wo) = p.out_hw();
    let (l, rows, plane) = (ho * wo, p.row_len(), p.h * p.w);
    let tile = (TILE_ELEMS / rows).clamp(MIN_TILE, l.max(MIN_TILE)).min(l);
    let tiles = l.div_ceil(tile);
    let tasks = b * tiles;
    // A fixed split of the (image, tile) tasks into parts, each with its own accumulator, summed in order:
    // the result does not depend on scheduling (exact resume compares runs bit for bit).
    let parts = (2 * rayon::current_num_threads()).min(tasks);
    let partials: Vec<Vec<T>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut acc = vec![T::zero(); c_out * rows];
            // Per-thread scratch for the patch tiles (the gather writes every element).
            super::with_scratch::<T, _>(rows * tile, 0, |cols, _| {
                for task in part * tasks / parts..(part + 1) * tasks / parts {
                    let (bi, t) = (task / tiles, task % tiles);
                    let (start, n) = (t * tile, tile.min(l - t * tile));
                    let cols = &mut cols[..rows * n];
                    gather_tile(&x[bi * p.c * plane..(bi + 1) * p.c * plane], &p, start, cols);
                    // SAFETY: acc is [c_out, rows]; dy_b[co, start + j] at (bi·c_out + co)·l + start + j (j < n);
                    // cols is [rows, n], read transposed (element (j, r) at r·n + j): all inside their buffers.
                    unsafe {
                        super::gemm_1t(
                            c_out,
                            rows,
                            n,
                            acc.as_mut_ptr(),
                            rows as isize,
                            true,
                            dy.as_ptr().add(bi * c_out * l + start),
                            (1, l as isize),
                            cols.as_ptr(),
                            (n as isize, 1),
                        );
                    }
                }
            });
            acc
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut dw = partials.next().unwrap_or_else(|| vec![T::zero(); c_out * rows]);
    for part in partials {
        dw.iter_mut().zip(&part).for_each(|(a, &v)| *a += v);
    }
    dw
}

/// `(dy, w) -> dx` of a conv over a `[C, h, w]` input (h and w given: several input sizes share one output size).
struct InputGradient {
    stride: usize,
    pad: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGradient {
    fn name(&self) -> &'static str {
        "conv2d-input-gradient"
    }

    fn cpu_fwd(&self, sy: &CpuStorage, ly: &Layout, sw: &CpuStorage, lw: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c_out, ho, wo) = ly.shape().dims4()?;
        let (c_out_w, c, k) = Patches::square_weight(self.name(), lw)?;
        if c_out_w != c_out {
            candle_core::bail!("{}: gradient {:?} does not fit weight {:?}", self.name(), ly.dims(), lw.dims());
        }
        let p = Patches { c, h: self.h, w: self.w, k, stride: self.stride, pad: self.pad }.checked(self.name(), Some((ho, wo)))?;
        let dx = on_slices(self.name(), (sy, ly), (sw, lw), |dy, w| input_gradient(dy, w, b, p, c_out), |dy, w| input_gradient(dy, w, b, p, c_out))?;
        Ok((dx, Shape::from((b, c, self.h, self.w))))
    }
}

/// `(x, dy) -> dW [C_out, C, k, k]` of a k×k conv.
struct WeightGradient {
    k: usize,
    stride: usize,
    pad: usize,
}

impl CustomOp2 for WeightGradient {
    fn name(&self) -> &'static str {
        "conv2d-weight-gradient"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sy: &CpuStorage, ly: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = lx.shape().dims4()?;
        let (by, c_out, ho, wo) = ly.shape().dims4()?;
        if by != b {
            candle_core::bail!("{}: gradient {:?} and input {:?} differ in batch", self.name(), ly.dims(), lx.dims());
        }
        let p = Patches { c, h, w, k: self.k, stride: self.stride, pad: self.pad }.checked(self.name(), Some((ho, wo)))?;
        let dw =
            on_slices(self.name(), (sx, lx), (sy, ly), |x, dy| weight_gradient(x, dy, b, p, c_out), |x, dy| weight_gradient(x, dy, b, p, c_out))?;
        Ok((dw, Shape::from((c_out, c, self.k, self.k))))
    }
}

/// The input gradient of `conv2d(x, w, stride, pad)` for an input of `h × w_in` (not differentiable again).
pub fn conv2d_input_gradient(dy: &Tensor, w: &Tensor, stride: usize, pad: usize, (h, w_in): (usize, usize)) -> Result<Tensor> {
    dy.contiguous()?.apply_op2_no_bwd(&w.contiguous()?, &InputGradient { stride, pad, h, w: w_in })
}

/// The weight gradient of `conv2d(x, w, stride, pad)` for a `k × k` weight (not differentiable again).
pub fn conv2d_weight_gradient(x: &Tensor, dy: &Tensor, k: usize, stride: usize, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op2_no_bwd(&dy.contiguous()?, &WeightGradient { k, stride, pad })
}

/// `F.conv_transpose2d(x, w, stride, padding, output_padding)` (weight `[C_in, C_out, k, k]`, no bias) as
/// the conv's input gradient, with its own backward from the conv forward and weight gradient.
pub struct ConvTranspose2dGemm {
    pub stride: usize,
    pub pad: usize,
    pub output_padding: usize,
}

impl ConvTranspose2dGemm {
    fn out_hw(&self, (h, w): (usize, usize), k: usize) -> (usize, usize) {
        let big = |n: usize| (n - 1) * self.stride + k + self.output_padding - 2 * self.pad;
        (big(h), big(w))
    }
}

impl CustomOp2 for ConvTranspose2dGemm {
    fn name(&self) -> &'static str {
        "conv-transpose2d-gemm"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, _, h, w) = lx.shape().dims4()?;
        let (_, _, k) = Patches::square_weight(self.name(), lw)?;
        if h == 0 || w == 0 || self.output_padding >= self.stride || (h - 1) * self.stride + k + self.output_padding < 2 * self.pad + 1 {
            candle_core::bail!("conv_transpose2d: input {:?}, output padding {}, stride {}: the input must be non-empty, the output padding below the stride and the output non-empty", lx.dims(), self.output_padding, self.stride);
        }
        let (big_h, big_w) = self.out_hw((h, w), k);
        InputGradient { stride: self.stride, pad: self.pad, h: big_h, w: big_w }.cpu_fwd(sx, lx, sw, lw)
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, k, _) = w.dims4()?;
        let dy = dy.contiguous()?;
        let dx = x.track_op().then(|| dy.apply_op2_no_bwd(w, &Conv2dGemm { stride: self.stride, pad: self.pad, shifted: true })).transpose()?;
        let dw = w.track_op().then(|| conv2d_weight_gradient(&dy, x, k, self.stride, self.pad)).transpose()?;
        Ok((dx, dw))
    }
}

/// [`ConvTranspose2dGemm`] on contiguous copies of `x [B, C_in, h, w]` and `w [C_in, C_out, k, k]`.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, stride: usize, pad: usize, output_padding: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&w.contiguous()?, ConvTranspose2dGemm { stride, pad, output_padding })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;
    use candle_core::{DType, Var};

    use crate::nn::gradcheck::max_diff;

    /// (batch, c_in, c_out, h, w, k, stride, pad): odd sizes, strides 1–3, paddings 0–2, 1×1, a tile boundary
    /// (70×71), more channels than one block, and the tiny spatial sizes of DCGAN.
    const CASES: [(usize, usize, usize, usize, usize, usize, usize, usize); 9] = [
        (2, 3, 4, 7, 5, 3, 1, 1),
        (1, 2, 3, 8, 8, 4, 2, 1),
        (2, 1, 2, 9, 7, 5, 2, 2),
        (1, 4, 5, 6, 6, 1, 1, 0),
        (1, 3, 2, 70, 71, 3, 1, 0),
        (3, 2, 2, 5, 5, 3, 3, 0),
        (1, 37, 6, 9, 11, 3, 1, 1),
        (5, 6, 7, 4, 4, 4, 1, 0),
        (4, 5, 3, 8, 6, 4, 2, 1),
    ];

    #[test]
    fn conv_gradients_match_autograd_of_candle_conv2d() -> Result<()> {
        for (i, &(b, ci, co, h, w, k, s, p)) in CASES.iter().enumerate() {
            let x = Var::from_tensor(&seeded(&[b, ci, h, w], i as u64)?)?;
            let wt = Var::from_tensor(&seeded(&[co, ci, k, k], 100 + i as u64)?)?;
            let y = x.conv2d(&wt, p, s, 1, 1)?;
            let dy = seeded(y.dims(), 200 + i as u64)?;
            let grads = (&y * &dy)?.sum_all()?.backward()?;
            let (dx, dw) = (grads.get(&x).unwrap(), grads.get(&wt).unwrap());
            assert!(max_diff(&conv2d_input_gradient(&dy, &wt, s, p, (h, w))?, dx) < 1e-11, "dx case {i}");
            assert!(max_diff(&conv2d_weight_gradient(&x, &dy, k, s, p)?, dw) < 1e-11, "dW case {i}");
            // f32 through the same kernels.
            let f = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            assert!(max_diff(&conv2d_input_gradient(&f(&dy), &f(&wt), s, p, (h, w))?, dx) < 1e-4, "f32 dx case {i}");
            assert!(max_diff(&conv2d_weight_gradient(&f(&x), &f(&dy), k, s, p)?, dw) < 1e-3, "f32 dW case {i}");
        }
        Ok(())
    }

    /// Each gradient kernel alone, in GFLOP/s, on a VGG and a CycleGAN layer and DCGAN's first D layer
    /// (the layer-level comparison with the whole-batch path is `nn::conv::tests::bench_training_paths`).
    /// `cargo test --release -p ganime kernels::conv2d_backward::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        for (b, ci, co, h, w, k, s, p) in [(1, 64, 64, 256, 256, 3, 1, 1), (1, 256, 256, 34, 34, 3, 1, 0), (64, 3, 64, 64, 64, 4, 2, 1)] {
            let x = Tensor::randn(0f32, 1., (b, ci, h, w), &candle_core::Device::Cpu)?;
            let wt = Tensor::randn(0f32, 1., (co, ci, k, k), &candle_core::Device::Cpu)?;
            let (ho, wo) = Patches { c: ci, h, w, k, stride: s, pad: p }.out_hw();
            let dy = Tensor::randn(0f32, 1., (b, co, ho, wo), &candle_core::Device::Cpu)?;
            let gflop = 2.0 * (b * co * ci * k * k * ho * wo) as f64 / 1e9;
            for (name, run) in [
                ("input gradient", Box::new(|| conv2d_input_gradient(&dy, &wt, s, p, (h, w)).map(|_| ())) as Box<dyn Fn() -> Result<()>>),
                ("weight gradient", Box::new(|| conv2d_weight_gradient(&x, &dy, k, s, p).map(|_| ()))),
            ] {
                run()?;
                let t = std::time::Instant::now();
                for _ in 0..5 {
                    run()?;
                }
                let secs = t.elapsed().as_secs_f64() / 5.0;
                println!("{name} [{b}, {ci}, {h}, {w}] -> {co} k{k} s{s}: {:.2} ms, {:.1} GFLOP/s", secs * 1e3, gflop / secs);
            }
        }
        Ok(())
    }

    #[test]
    fn conv_transpose_matches_candle_forward_and_backward() -> Result<()> {
        // (batch, c_in, c_out, h, w, k, stride, pad, output_padding): DCGAN's 1→4 and 4→8 layers among them.
        let cases = [
            (2, 3, 2, 4, 4, 4, 2, 1, 0),
            (2, 5, 3, 1, 1, 4, 1, 0, 0),
            (1, 3, 2, 3, 5, 3, 2, 1, 1),
            (2, 2, 3, 4, 4, 5, 2, 2, 1),
            (1, 4, 3, 6, 5, 3, 1, 1, 0),
        ];
        for (i, &(b, ci, co, h, w, k, s, p, op)) in cases.iter().enumerate() {
            let x = Var::from_tensor(&seeded(&[b, ci, h, w], i as u64)?)?;
            let wt = Var::from_tensor(&seeded(&[ci, co, k, k], 50 + i as u64)?)?;
            let ours = conv_transpose2d(&x, &wt, s, p, op)?;
            let theirs = x.conv_transpose2d(&wt, p, op, s, 1)?;
            assert!(max_diff(&ours, &theirs) < 1e-12, "forward case {i}");
            let r = seeded(ours.dims(), 7)?;
            let g1 = (ours * &r)?.sum_all()?.backward()?;
            let g2 = (theirs * &r)?.sum_all()?.backward()?;
            for v in [&x, &wt] {
                assert!(max_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-11, "backward case {i}");
            }
        }
        let x = seeded(&[1, 2, 3, 3], 1)?;
        let wt = seeded(&[2, 2, 3, 3], 2)?;
        assert!(conv_transpose2d(&x, &wt, 2, 1, 2).is_err(), "output padding at the stride");
        // Shapes the kernels' raw indexing cannot take are refused, not run.
        let refused = |r: Result<Tensor>, what: &str| assert!(r.unwrap_err().to_string().contains(what), "{what}");
        refused(conv_transpose2d(&x, &seeded(&[2, 2, 3, 2], 3)?, 2, 1, 0), "not square");
        refused(conv2d_input_gradient(&seeded(&[1, 2, 3, 3], 4)?, &wt, 1, 1, (5, 5)), "gives");
        refused(conv2d_weight_gradient(&x, &seeded(&[1, 2, 3, 3], 5)?, 3, 0, 1), "stride 0");
        refused(super::super::conv2d::conv2d(&x, &seeded(&[2, 2, 5, 5], 6)?, 1, 0), "does not fit");
        Ok(())
    }
}
