//! Conv2d forward as tiled im2col + GEMM straight into the NCHW output (or, for stride-1 3×3 convs with many
//! channels, Winograd: `winograd.rs`; for wide stride-1 kernels, shifted GEMMs without any patch matrix:
//! `run_shifted`), as a Candle custom op over `(x, weight)`, and for inference as [`conv2d_inference`] (bias
//! added per tile, a reflection pad folded into the gather). Per batch image and tile of output positions, the
//! tile's patch matrix `[C·k·k, tile]` is gathered into a small buffer (one per worker) and multiplied by the
//! weight `[C_out, C·k·k]` with the `gemm` crate into the tile's columns of `y[C_out, Ho·Wo]`. Compared with
//! the whole-image patch matrix + matmul + NHWC→NCHW permute this replaces, nothing large is allocated or
//! copied. Tiles run in parallel (rayon), each GEMM single-threaded.
//!
//! The backward runs the tiled gradient kernels of `conv2d_backward`; under second-order gradients (WGAN-GP)
//! it is built from the tracked `patches` ops and matmuls instead, so it differentiates again:
//! `dW = Σ_b dy_b · im2col(x)_b`, `dx = col2im(dyᵀ · W)`.

use super::on_slices;
use super::patches::{col2im, im2col, Patches};
use crate::nn::kernels::reflect_pad::reflect_index;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// Target size of one tile's patch buffer, in elements (256 KiB of f32: within L2 next to the weight panel).
pub(super) const TILE_ELEMS: usize = 64 * 1024;

/// Fewest output positions per tile, even where the patch buffer then outgrows TILE_ELEMS (deep layers: 2,304
/// rows for 256 channels 3×3): the GEMMs' width (forward, input gradient) or depth (weight gradient). Measured
/// at 16 and 128: animegan-256 776 / 713 → 670 / 647 ms, style-320x240 346 / 327 → 290 / 293 ms; and for the
/// backward, VGG 512→512 at 32² 0.90× → 1.3× the whole-batch path.
pub(super) const MIN_TILE: usize = 128;

pub struct Conv2dGemm {
    pub stride: usize,
    pub pad: usize,
    /// Whether stride-1 convs may take the Winograd or shifted-GEMM paths (other roundings and summation orders
    /// than the patch matrix's (c, ky, kx) one; see [`conv2d_patches`]).
    pub shifted: bool,
}

/// What the forward gather reads outside the image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Border {
    /// Zeros: the conv's own `pad` of the `Patches` geometry.
    Zero,
    /// `ReflectionPad2d` folded into the gather (inference): the geometry is that of the reflect-padded image
    /// (with pad 0), and each value is read from the unpadded `h × w` image through reflected indices, so the
    /// padded copy (a full pass and allocation per conv) is never made.
    Reflect { top: usize, left: usize, h: usize, w: usize },
}

impl Border {
    /// Values per channel plane of the input the kernel reads.
    pub(super) fn src_plane(&self, p: &Patches) -> usize {
        match *self {
            Border::Zero => p.h * p.w,
            Border::Reflect { h, w, .. } => h * w,
        }
    }
}

/// A pointer that tasks writing disjoint columns of one output may share.
#[derive(Clone, Copy)]
pub(super) struct OutPtr<T>(pub(super) *mut T);
unsafe impl<T> Send for OutPtr<T> {}
unsafe impl<T> Sync for OutPtr<T> {}

/// Smallest input channel count for [`Conv2dGemm::run_shifted`] (its GEMMs have depth C, too shallow below).
const SHIFTED_MIN_CHANNELS: usize = 16;

/// Whether a stride-1 conv takes the shifted GEMMs: measured (`bench_paths`, quiet machine) to win by 4-5× on
/// wide kernels with few output channels (9×9 32→3 at 248×328: 107 → 19-21 ms; 7×7 32→3 at 262²: 48 → 12 ms),
/// where the patch matrix is deep and the GEMM thin; on 3×3 convs the two paths are within noise of each other
/// (128→128 at 62×82: 12.4-14.2 vs 12.6-13.8 ms) or the patch matrix wins (32→32 at 258²: 15 vs 23 ms).
fn shifted_wins(p: &Patches) -> bool {
    p.stride == 1 && p.k >= 5 && p.c >= SHIFTED_MIN_CHANNELS
}

impl Conv2dGemm {
    pub(super) fn run<T: WithDType>(&self, x: &[T], w: &[T], b: usize, p: Patches, c_out: usize) -> Vec<T> {
        self.run_with_bias(x, w, None, Border::Zero, b, p, c_out)
    }

    /// [`Self::run`] plus a per-output-channel bias, added while each tile of the output is in cache (inference:
    /// one pass over the output fewer than a separate broadcast add).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run_with_bias<T: WithDType>(
        &self,
        x: &[T],
        w: &[T],
        bias: Option<&[T]>,
        border: Border,
        b: usize,
        p: Patches,
        c_out: usize,
    ) -> Vec<T> {
        if self.shifted && super::winograd::wins(&p, c_out) {
            return super::winograd::run(x, w, bias, border, b, p, c_out);
        }
        if self.shifted && shifted_wins(&p) {
            return Self::run_shifted(x, w, bias, border, b, p, c_out);
        }
        Self::run_patches(x, w, bias, border, b, p, c_out)
    }

    /// The tiled patch-matrix path (any stride).
    fn run_patches<T: WithDType>(x: &[T], w: &[T], bias: Option<&[T]>, border: Border, b: usize, p: Patches, c_out: usize) -> Vec<T> {
        let (ho, wo) = p.out_hw();
        let (l, rows, plane) = (ho * wo, p.row_len(), border.src_plane(&p));
        let tile = (TILE_ELEMS / rows).clamp(MIN_TILE, l.max(MIN_TILE)).min(l);
        let tiles = l.div_ceil(tile);
        // Not zero-filled: the GEMMs (which do not read their destination) write every element.
        let mut y: Vec<T> = Vec::with_capacity(b * c_out * l);
        let out = OutPtr(y.as_mut_ptr());
        // One patch buffer per thread, reused across tiles and calls (the gather writes every element of it).
        (0..b * tiles).into_par_iter().for_each(|task| {
            super::with_scratch::<T, _>(rows * tile, 0, |cols, _| {
                let (bi, t) = (task / tiles, task % tiles);
                let (start, n) = (t * tile, tile.min(l - t * tile));
                let img = &x[bi * p.c * plane..(bi + 1) * p.c * plane];
                match border {
                    Border::Zero => gather_tile(img, &p, start, &mut cols[..rows * n]),
                    Border::Reflect { top, left, h, w } => gather_tile_reflect(img, &p, (top, left, h, w), start, &mut cols[..rows * n]),
                }
                let out = out;
                // SAFETY: task (bi, t) writes only columns start..start+n of image bi's [c_out, l] block, which no
                // other task touches; `y`'s capacity outlives the parallel loop; all strides are within the
                // allocations. The bias pass reads those columns after the GEMM has written them.
                unsafe {
                    let dst = out.0.add(bi * c_out * l + start);
                    super::gemm_1t(c_out, n, rows, dst, l as isize, false, w.as_ptr(), (1, rows as isize), cols.as_ptr(), (1, n as isize));
                    if let Some(bias) = bias {
                        for (co, &bv) in bias.iter().enumerate() {
                            for v in std::slice::from_raw_parts_mut(dst.add(co * l), n) {
                                *v += bv;
                            }
                        }
                    }
                }
            })
        });
        // SAFETY: every element was written above.
        unsafe { y.set_len(b * c_out * l) };
        y
    }
}

impl Conv2dGemm {
    /// Stride-1 convolution without a patch matrix: on the zero-padded input (row length `wp`), the output at
    /// (oy, ox) is Σ over taps (ky, kx) of `W[:, :, ky, kx] · x_pad[:, (oy + ky)·wp + ox + kx]`, so each tap is
    /// one GEMM of the weight slice `[C_out, C]` (strided, no repacking) with a *contiguous* run of every padded
    /// channel, accumulated into an output of `Ho` rows of length `wp`; the `k − 1` extra columns per row are
    /// dropped at the end. Compared with im2col this moves no patch data (k² fewer bytes gathered), at the cost of
    /// `(k − 1) / wp` wasted columns. Column ranges run in parallel, each GEMM single-threaded.
    fn run_shifted<T: WithDType>(x: &[T], w: &[T], bias: Option<&[T]>, border: Border, b: usize, p: Patches, c_out: usize) -> Vec<T> {
        let (ho, wo) = p.out_hw();
        let (c, k, pad) = (p.c, p.k, p.pad);
        let (hp, wp) = (p.h + 2 * pad, p.w + 2 * pad);
        let plane = hp * wp;
        let n_full = ho * wp;
        // Columns per task: enough work per GEMM call, and at least two tasks per image for the two cores.
        let chunk = (n_full.div_ceil(2)).clamp(64.min(n_full), 2048);
        let chunks = n_full.div_ceil(chunk);
        let mut y: Vec<T> = Vec::with_capacity(b * c_out * ho * wo);
        for bi in 0..b {
            let src_plane = border.src_plane(&p);
            let img = &x[bi * c * src_plane..(bi + 1) * c * src_plane];
            // The padded image, plus k slack values: the last tap's run of the last channel reads k − 1 past
            // its plane (into columns that are dropped). Zero-filled only where there is a border to be zero.
            let xp = padded_image(img, &p, border, hp, wp, k);
            // Not zero-filled: each task's first tap writes its columns without reading them.
            let mut full: Vec<T> = Vec::with_capacity(c_out * n_full);
            let out = OutPtr(full.as_mut_ptr());
            (0..chunks).into_par_iter().for_each(|t| {
                let (start, n) = (t * chunk, chunk.min(n_full - t * chunk));
                let out = out;
                for ky in 0..k {
                    for kx in 0..k {
                        let tap = ky * k + kx;
                        // SAFETY: task t writes only columns start..start+n of `full` ([c_out, n_full], row stride
                        // n_full; capacity reserved); it reads x_pad[ci·plane + tap_offset + start ..][..n] for
                        // ci < c, inside xp (tap_offset + start + n <= (k−1)·wp + k−1 + ho·wp <= plane + k − 1);
                        // the weight slice W[co, ci, ky, kx] is at co·c·k² + ci·k² + tap.
                        unsafe {
                            super::gemm_1t(
                                c_out,
                                n,
                                c,
                                out.0.add(start),
                                n_full as isize,
                                tap > 0,
                                w.as_ptr().add(tap),
                                ((k * k) as isize, (c * k * k) as isize),
                                xp.as_ptr().add(ky * wp + kx + start),
                                (1, plane as isize),
                            );
                        }
                    }
                }
            });
            // SAFETY: the tasks wrote every column of every row.
            unsafe { full.set_len(c_out * n_full) };
            let dst = &mut y.spare_capacity_mut()[bi * c_out * ho * wo..(bi + 1) * c_out * ho * wo];
            dst.par_chunks_mut(ho * wo).zip(full.par_chunks(n_full)).enumerate().for_each(|(co, (o, f))| {
                let bv = bias.map_or(T::zero(), |bias| bias[co]);
                for (row, src) in o.chunks_mut(wo).zip(f.chunks(wp)) {
                    for (d, &s) in row.iter_mut().zip(&src[..wo]) {
                        d.write(s + bv);
                    }
                }
            });
        }
        // SAFETY: each image's block was written above.
        unsafe { y.set_len(b * c_out * ho * wo) };
        y
    }
}

/// One image `[C, ·, ·]` as the padded planes the stride-1 paths read: `rows × cols` values per channel (at
/// least the padded size `p.h + 2·p.pad` × `p.w + 2·p.pad`; extra rows and columns zero), then `slack` zeros.
pub(super) fn padded_image<T: WithDType>(img: &[T], p: &Patches, border: Border, rows: usize, cols: usize, slack: usize) -> Vec<T> {
    let (hp, wp) = (p.h + 2 * p.pad, p.w + 2 * p.pad);
    let mut xp = super::zeroed(p.c * rows * cols + slack);
    xp[..p.c * rows * cols].par_chunks_mut(rows * cols).zip(img.par_chunks(border.src_plane(p))).for_each(|(dst, src)| {
        for yv in 0..hp {
            let row = &mut dst[yv * cols..][..wp];
            match border {
                Border::Zero => {
                    if let Some(y) = yv.checked_sub(p.pad).filter(|&y| y < p.h) {
                        row[p.pad..p.pad + p.w].copy_from_slice(&src[y * p.w..][..p.w]);
                    }
                }
                Border::Reflect { top, left, h, w } => {
                    let line = &src[reflect_index(yv, top, h) * w..][..w];
                    row[left..left + w].copy_from_slice(line);
                    for xv in (0..left).chain(left + w..wp) {
                        row[xv] = line[reflect_index(xv, left, w)];
                    }
                }
            }
        }
    });
    xp
}

/// The patch matrix of output positions `start..start + n` of one image `img [C, H, W]` into `cols [C·k·k, n]`:
/// row r = (c, ky, kx), column j = position start + j, gathered one output-row run at a time (with stride 1, a
/// run is a slice copy of an image line). Every element is written (zero in the padding), so `cols` may hold
/// anything on entry.
pub(super) fn gather_tile<T: WithDType>(img: &[T], p: &Patches, start: usize, cols: &mut [T]) {
    let (k, plane, wo) = (p.k, p.h * p.w, p.out_hw().1);
    let n = cols.len() / p.row_len();
    for (r, dst) in cols.chunks_exact_mut(n).enumerate() {
        let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
        for_each_run(p, wo, start, n, ky, |j, run, ox0, yy| match yy {
            Some(yy) => {
                gather_run(&mut dst[j..j + run], &img[c * plane + yy * p.w..][..p.w], ox0, p.stride, kx as isize - p.pad as isize, |_| T::zero())
            }
            None => dst[j..j + run].fill(T::zero()),
        });
    }
}

/// [`gather_tile`] for [`Border::Reflect`]: `p` is the geometry of the reflect-padded image (pad 0), `img` the
/// unpadded `[C, h, w]`; padded row/column v reads source index `reflect_index(v, top/left, h/w)`.
fn gather_tile_reflect<T: WithDType>(img: &[T], p: &Patches, (top, left, h, w): (usize, usize, usize, usize), start: usize, cols: &mut [T]) {
    let (k, wo) = (p.k, p.out_hw().1);
    let n = cols.len() / p.row_len();
    for (r, dst) in cols.chunks_exact_mut(n).enumerate() {
        let (c, ky, kx) = (r / (k * k), r / k % k, r % k);
        for_each_run(p, wo, start, n, ky, |j, run, ox0, yv| {
            let yv = yv.expect("with pad 0 every row of the padded geometry is inside it");
            let line = &img[c * h * w + reflect_index(yv, top, h) * w..][..w];
            // gather_run's columns are relative to the line (x = padded column − left ≥ −left).
            gather_run(&mut dst[j..j + run], line, ox0, p.stride, kx as isize - left as isize, |x| {
                line[reflect_index((x + left as isize) as usize, left, w)]
            });
        });
    }
}

/// Splits output positions `start..start + n` (row width `wo`) into runs within one output row, and calls
/// `f(j, run, ox0, yy)` for each run, `yy` its image row (output row · stride + ky − pad) or None in the padding.
#[inline(always)]
pub(super) fn for_each_run(p: &Patches, wo: usize, start: usize, n: usize, ky: usize, mut f: impl FnMut(usize, usize, usize, Option<usize>)) {
    let (mut j, mut pos) = (0, start);
    while j < n {
        let (oy, ox0) = (pos / wo, pos % wo);
        let run = (wo - ox0).min(n - j);
        let yy = (oy * p.stride + ky) as isize - p.pad as isize;
        f(j, run, ox0, (yy >= 0 && (yy as usize) < p.h).then_some(yy as usize));
        j += run;
        pos += run;
    }
}

/// The run indices `lo..hi` whose image column `(ox0 + i)·stride + offset` lies inside a line of `w` values.
/// In closed form (it searched the run from both ends, as long again as the copy it bounds).
#[inline(always)]
fn inside_run(len: usize, w: usize, ox0: usize, stride: usize, offset: isize) -> std::ops::Range<usize> {
    let s = stride as isize;
    // ⌈a / s⌉ for either sign of a: (ox0 + i)·s ≥ −offset ⟺ ox0 + i ≥ ⌈−offset / s⌉, and
    // (ox0 + i)·s < w − offset ⟺ ox0 + i < ⌈(w − offset) / s⌉.
    let ceil_div = |a: isize| if a <= 0 { -(-a / s) } else { (a + s - 1) / s };
    let lo = (ceil_div(-offset) - ox0 as isize).clamp(0, len as isize) as usize;
    let hi = (ceil_div(w as isize - offset) - ox0 as isize).clamp(lo as isize, len as isize) as usize;
    lo..hi
}

/// `dst[i] = line[(ox0 + i)·stride + offset]`, and `outside(column)` for columns outside the line.
#[inline]
fn gather_run<T: WithDType>(dst: &mut [T], line: &[T], ox0: usize, stride: usize, offset: isize, outside: impl Fn(isize) -> T) {
    let r = inside_run(dst.len(), line.len(), ox0, stride, offset);
    let len = dst.len();
    for i in (0..r.start).chain(r.end..len) {
        dst[i] = outside(((ox0 + i) * stride) as isize + offset);
    }
    if r.is_empty() {
        return;
    }
    let x = ((ox0 + r.start) * stride) as isize + offset;
    if stride == 1 {
        dst[r.clone()].copy_from_slice(&line[x as usize..][..r.len()]);
    } else {
        // Whole chunks of `stride` values, the first of each: the loads vectorise as shuffles (`step_by` made one
        // scalar load and bounds check per value: ~13 % of a one-thread DCGAN step in these gathers).
        let (src, dst) = (&line[x as usize..], &mut dst[r]);
        let whole = (src.len() / stride).min(dst.len());
        for (d, c) in dst[..whole].iter_mut().zip(src.chunks_exact(stride)) {
            *d = c[0];
        }
        for (i, d) in dst.iter_mut().enumerate().skip(whole) {
            *d = src[i * stride];
        }
    }
}

/// `line[(ox0 + i)·stride + offset] += src[i]` for the columns inside the line: the adjoint of [`gather_run`].
#[inline]
pub(super) fn scatter_run<T: WithDType>(line: &mut [T], src: &[T], ox0: usize, stride: usize, offset: isize) {
    let r = inside_run(src.len(), line.len(), ox0, stride, offset);
    if r.is_empty() {
        return;
    }
    let x = ((ox0 + r.start) * stride) as isize + offset;
    let (line, src) = (&mut line[x as usize..], &src[r]);
    if stride == 1 {
        for (d, s) in line.iter_mut().zip(src) {
            *d += *s;
        }
        return;
    }
    // As in `gather_run`: whole chunks, then the last value if its chunk is cut by the line's end.
    let whole = (line.len() / stride).min(src.len());
    for (c, s) in line.chunks_exact_mut(stride).zip(&src[..whole]) {
        c[0] += *s;
    }
    for (i, s) in src.iter().enumerate().skip(whole) {
        line[i * stride] += *s;
    }
}

impl CustomOp2 for Conv2dGemm {
    fn name(&self) -> &'static str {
        "conv2d-gemm"
    }

    fn cpu_fwd(&self, sx: &CpuStorage, lx: &Layout, sw: &CpuStorage, lw: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = lx.shape().dims4()?;
        let (c_out, c_in, k) = Patches::square_weight(self.name(), lw)?;
        if c_in != c {
            candle_core::bail!("conv2d: input {:?} does not fit weight {:?}", lx.dims(), lw.dims());
        }
        let p = Patches { c, h, w, k, stride: self.stride, pad: self.pad }.checked(self.name(), None)?;
        let (ho, wo) = p.out_hw();
        let y = on_slices(self.name(), (sx, lx), (sw, lw), |x, w| self.run(x, w, b, p, c_out), |x, w| self.run(x, w, b, p, c_out))?;
        Ok((y, Shape::from((b, c_out, ho, wo))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, c, h, wd) = x.dims4()?;
        let (c_out, _, k, _) = w.dims4()?;
        if !super::second_order_gradients() {
            // The tiled gradient kernels (no whole-batch patch matrix); not differentiable again. Only the
            // gradients something asks for: a frozen network (VGG features for a loss) needs no weight gradient.
            use super::conv2d_backward::{conv2d_input_gradient, conv2d_weight_gradient};
            let dx = x.track_op().then(|| conv2d_input_gradient(dy, w, self.stride, self.pad, (h, wd))).transpose()?;
            let dw = w.track_op().then(|| conv2d_weight_gradient(x, dy, k, self.stride, self.pad)).transpose()?;
            return Ok((dx, dw));
        }
        // Second-order gradients: built from tracked ops, so they differentiate again.
        let rows = c * k * k;
        let dy = dy.flatten_from(2)?; // [B, C_out, L]
        let cols = im2col(x, k, self.stride, self.pad)?; // [B, L, rows]
        let dw = dy.matmul(&cols)?.sum(0)?.reshape(w.shape())?;
        let l = dy.dim(2)?;
        let dy_rows = dy.transpose(1, 2)?.contiguous()?.reshape((b * l, c_out))?;
        let dcols = dy_rows.matmul(&w.reshape((c_out, rows))?)?.reshape((b, l, rows))?;
        let dx = col2im(&dcols, c, h, wd, k, self.stride, self.pad)?;
        Ok((Some(dx), Some(dw)))
    }
}

/// Conv2d (no bias, zero padding) through the kernel: `x [B, C, H, W]`, `weight [C_out, C, k, k]`.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&weight.contiguous()?, Conv2dGemm { stride, pad, shifted: true })
}

/// Conv2d with an optional bias for inference: f32 CPU tensors that need no gradient run the kernel with the bias
/// added per tile ([`Conv2dGemm::run_with_bias`]); `None` for anything else (the caller takes the general path).
pub fn conv2d_inference(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>, stride: usize, padding: Padding) -> Result<Option<Tensor>> {
    let (b, c, h, w) = x.dims4()?;
    let (c_out, c_in, k, k2) = weight.dims4()?;
    if c_in != c || k != k2 || bias.is_some_and(|t| t.dims() != [c_out]) {
        return Ok(None); // the general path reports the mismatch
    }
    let (p, border) = match padding {
        Padding::Zero(pad) => (Patches { c, h, w, k, stride, pad }, Border::Zero),
        Padding::Reflect { left, right, top, bottom } => {
            if top.max(bottom) >= h || left.max(right) >= w {
                return Ok(None); // reflection_pad2d reports it
            }
            (Patches { c, h: h + top + bottom, w: w + left + right, k, stride, pad: 0 }, Border::Reflect { top, left, h, w })
        }
    };
    let p = p.checked("conv2d", None)?;
    let (ho, wo) = p.out_hw();
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    let y = crate::nn::fused::with_cpu_f32(&inputs, |d| {
        Ok(Conv2dGemm { stride, pad: p.pad, shifted: true }.run_with_bias(d[0], d[1], d.get(2).copied(), border, b, p, c_out))
    })?;
    y.map(|y| Tensor::from_vec(y, (b, c_out, ho, wo), x.device())).transpose()
}

/// The padding of [`conv2d_inference`]: the conv's own zeros, or a `ReflectionPad2d((left, right, top, bottom))`
/// in front of it (folded into the patch gather).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Padding {
    Zero(usize),
    Reflect { left: usize, right: usize, top: usize, bottom: usize },
}

/// [`conv2d`] always through the patch matrix, whose reduction runs over (c, ky, kx) in order like
/// onnxruntime's (MLAS) im2col convolution: the QDQ loader uses it so that its results round like
/// onnxruntime's and land on the same int8 grid points.
pub fn conv2d_patches(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&weight.contiguous()?, Conv2dGemm { stride, pad, shifted: false })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::{DType, Device, Var};

    use crate::nn::gradcheck::max_diff;

    #[test]
    fn matches_candle_conv2d_forward_and_backward() -> Result<()> {
        // (batch, c_in, c_out, h, w, k, stride, pad): odd sizes, strides, paddings, a tile boundary (70x71).
        // H and W keep one parity under stride 2: Candle's own conv2d backward fails otherwise (CANDLE-NOTES);
        // the finite-difference check below covers that case for ours.
        // The last three take the shifted-GEMM path (odd sizes, pad 0/1/2, k 3/5).
        let cases = [
            (2, 3, 4, 7, 5, 3, 1, 1),
            (1, 2, 3, 8, 8, 4, 2, 1),
            (2, 1, 2, 9, 7, 5, 2, 2),
            (1, 4, 5, 6, 6, 1, 1, 0),
            (1, 3, 2, 70, 71, 3, 1, 0),
            (3, 2, 2, 5, 5, 3, 3, 0),
            (2, 16, 5, 9, 11, 5, 1, 2),
            (1, 17, 3, 13, 12, 7, 1, 0),
            (1, 16, 4, 9, 40, 5, 1, 2),
        ];
        for &(_, c, _, h, w, k, s, p) in &cases[6..] {
            assert!(shifted_wins(&Patches { c, h, w, k, stride: s, pad: p }));
        }
        for (i, &(b, ci, co, h, w, k, s, p)) in cases.iter().enumerate() {
            let x = Var::from_tensor(&seeded(&[b, ci, h, w], i as u64)?)?;
            let wt = Var::from_tensor(&seeded(&[co, ci, k, k], 100 + i as u64)?)?;
            let ours = conv2d(&x, &wt, s, p)?;
            let theirs = x.conv2d(&wt, p, s, 1, 1)?;
            assert!(max_diff(&ours, &theirs) < 1e-12, "forward case {i}");
            let r = seeded(ours.dims(), 7)?;
            let g1 = (ours * &r)?.sum_all()?.backward()?;
            let g2 = (theirs * &r)?.sum_all()?.backward()?;
            for v in [&x, &wt] {
                assert!(max_diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-10, "backward case {i}");
            }
            let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let d = max_diff(&conv2d(&f32s(&x), &f32s(&wt), s, p)?.to_dtype(DType::F64)?, &x.conv2d(&wt, p, s, 1, 1)?);
            assert!(d < 1e-4, "f32 case {i}: {d}");
        }
        let wt = seeded(&[2, 2, 3, 3], 3)?;
        check_gradient(&[1, 2, 5, 6], |x| conv2d(x, &wt, 2, 1))
    }

    /// The inference entry: bias added per tile, zero padding or a reflection pad folded into the gather (patch
    /// and shifted paths, asymmetric pads, strides 1–2, odd sizes, batch 2), against reflect-pad + Candle's conv2d
    /// + a broadcast bias.
    #[test]
    fn inference_with_bias_and_folded_reflection_matches_pad_then_conv() -> Result<()> {
        // (c_in, c_out, h, w, k, stride, (left, right, top, bottom)); the last two take the shifted GEMMs.
        let cases = [
            (3, 4, 7, 9, 3, 1, (1, 1, 1, 1)),
            (5, 3, 9, 8, 3, 2, (0, 1, 0, 1)),
            (2, 3, 11, 10, 7, 1, (3, 3, 3, 3)),
            (4, 2, 6, 5, 1, 1, (0, 0, 0, 0)),
            (3, 5, 9, 12, 3, 2, (2, 1, 1, 2)),
            (16, 3, 12, 13, 9, 1, (4, 4, 4, 4)),
            (17, 4, 9, 10, 5, 1, (2, 1, 0, 2)),
        ];
        for (i, &(ci, co, h, w, k, s, (l, r, t, bt))) in cases.iter().enumerate() {
            let x = seeded(&[2, ci, h, w], i as u64)?.to_dtype(DType::F32)?;
            let wt = seeded(&[co, ci, k, k], 50 + i as u64)?.to_dtype(DType::F32)?;
            let bias = seeded(&[co], 90 + i as u64)?.to_dtype(DType::F32)?;
            let want = crate::nn::reflection_pad2d(&x, l, r, t, bt)?.conv2d(&wt, 0, s, 1, 1)?.broadcast_add(&bias.reshape((1, co, 1, 1))?)?;
            let got = conv2d_inference(&x, &wt, Some(&bias), s, Padding::Reflect { left: l, right: r, top: t, bottom: bt })?.expect("f32 CPU");
            assert_eq!(got.dims(), want.dims(), "case {i}");
            assert!(max_diff(&got, &want) < 1e-4, "reflect case {i}: {}", max_diff(&got, &want));
            let p = l.min(r).min(t).min(bt);
            let want = x.conv2d(&wt, p, s, 1, 1)?.broadcast_add(&bias.reshape((1, co, 1, 1))?)?;
            let got = conv2d_inference(&x, &wt, Some(&bias), s, Padding::Zero(p))?.expect("f32 CPU");
            assert!(max_diff(&got, &want) < 1e-4, "zero-pad case {i}: {}", max_diff(&got, &want));
        }
        // A reflection as wide as the input is refused (as `reflection_pad2d` refuses it), not read out of bounds.
        let x = Tensor::zeros((1, 1, 3, 3), DType::F32, &Device::Cpu)?;
        assert!(conv2d_inference(
            &x,
            &Tensor::zeros((1, 1, 3, 3), DType::F32, &Device::Cpu)?,
            None,
            1,
            Padding::Reflect { left: 3, right: 0, top: 0, bottom: 0 }
        )?
        .is_none());
        Ok(())
    }

    /// The closed form of `inside_run` against a search over every index, for strides 1–3, paddings, run
    /// starts and lengths around the line's ends.
    #[test]
    fn inside_run_matches_a_search() {
        for stride in 1..=3 {
            for w in 1..=7 {
                for offset in -4isize..=4 {
                    for ox0 in 0..6 {
                        for len in 0..9 {
                            let inside = |i: usize| (0..w as isize).contains(&(((ox0 + i) * stride) as isize + offset));
                            let want: Vec<usize> = (0..len).filter(|&i| inside(i)).collect();
                            let got: Vec<usize> = inside_run(len, w, ox0, stride, offset).collect();
                            assert_eq!(got, want, "stride {stride} w {w} offset {offset} ox0 {ox0} len {len}");
                        }
                    }
                }
            }
        }
    }

    /// The forward paths of the kernel (patch matrix, shifted GEMMs, and Winograd for 3×3) on the stride-1 convs of
    /// the camera and anime networks.
    /// `cargo test --release -p ganime kernels::conv2d::tests::bench_paths -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench_paths() -> Result<()> {
        crate::tune_allocator();
        for (ci, co, k, h, w) in [
            (32, 3, 9, 248, 328),
            (64, 32, 3, 242, 322),
            (128, 64, 3, 122, 162),
            (32, 32, 3, 62, 82),
            (16, 8, 3, 242, 322),
            (128, 128, 3, 62, 82),
            (32, 32, 3, 258, 258),
            (64, 64, 3, 130, 130),
            (32, 3, 7, 262, 262),
            (32, 32, 7, 262, 262),
            (16, 16, 3, 322, 242),
            (64, 64, 3, 258, 258),
            (128, 128, 3, 130, 130),
            (128, 64, 3, 258, 258),
            (256, 256, 3, 34, 34),
            (512, 512, 3, 34, 34),
            (512, 512, 3, 18, 18),
        ] {
            let x: Vec<f32> = Tensor::randn(0f32, 1., (1, ci, h, w), &Device::Cpu)?.flatten_all()?.to_vec1()?;
            let wt: Vec<f32> = Tensor::randn(0f32, 1., (co, ci, k, k), &Device::Cpu)?.flatten_all()?.to_vec1()?;
            let p = Patches { c: ci, h, w, k, stride: 1, pad: 0 };
            let flop = 2.0 * (co * ci * k * k * (h - k + 1) * (w - k + 1)) as f64;
            for name in ["patches", "shifted", "winograd"].into_iter().filter(|&n| n != "winograd" || k == 3) {
                let run = || match name {
                    "shifted" => Conv2dGemm::run_shifted(&x, &wt, None, Border::Zero, 1, p, co),
                    "winograd" => super::super::winograd::run(&x, &wt, None, Border::Zero, 1, p, co),
                    _ => Conv2dGemm::run_patches(&x, &wt, None, Border::Zero, 1, p, co),
                };
                run();
                let t = std::time::Instant::now();
                for _ in 0..5 {
                    run();
                }
                let s = t.elapsed().as_secs_f64() / 5.0;
                println!("{name} {ci}->{co} k{k} {h}x{w}: {:.2} ms, {:.1} GFLOP/s", s * 1e3, flop / s / 1e9);
            }
        }
        Ok(())
    }

    /// `cargo test --release -p ganime kernels::conv2d::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        // TransformerNet's 9x9 input conv and a residual 3x3 conv at 320x240.
        for (ci, co, k, h, w) in [(3, 32, 9, 248, 328), (128, 128, 3, 62, 82)] {
            let x = Tensor::randn(0f32, 1., (1, ci, h, w), &Device::Cpu)?;
            let wt = Tensor::randn(0f32, 1., (co, ci, k, k), &Device::Cpu)?;
            let flop = 2.0 * (co * ci * k * k * (h - k + 1) * (w - k + 1)) as f64;
            for (name, ours) in [("candle conv2d", false), ("kernel conv2d", true)] {
                let run = || if ours { conv2d(&x, &wt, 1, 0) } else { x.conv2d(&wt, 0, 1, 1, 1) };
                run()?;
                let t = std::time::Instant::now();
                for _ in 0..5 {
                    run()?;
                }
                let s = t.elapsed().as_secs_f64() / 5.0;
                println!("{name} {ci}->{co} k{k} {h}x{w}: {:.2} ms, {:.1} GFLOP/s", s * 1e3, flop / s / 1e9);
            }
        }
        Ok(())
    }
}
