//! Stride-1 3×3 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2015): each 2×2 block of
//! outputs comes from a 4×4 input tile with 16 multiplies per (input, output) channel pair instead of 36, so the
//! GEMM work is 2.25× smaller. Per block of tiles, the input tiles are transformed (`Bᵀ d B`) into 16 matrices
//! `[C, tiles]`, each multiplied by its transformed weight matrix `[C_out, C]` (`G g Gᵀ`, once per call), and
//! the 16 products are transformed back (`Aᵀ m A`) straight into the output with its bias. Blocks run in
//! parallel, each GEMM single-threaded, as in `conv2d`.
//!
//! Why by hand: neither Candle nor the `gemm` crate has a Winograd convolution, and the 3×3 convs are most of
//! the FLOPs of the AnimeGANv2 generator, the style networks and CycleGAN. The rounding differs from the direct
//! sum (f32 relative error ~1e-6 here), so paths that need the direct summation order (the QDQ loader) do not
//! take it.

use super::conv2d::{padded_image, Border, OutPtr, TILE_ELEMS};
use super::isa::multiversion;
use super::patches::Patches;
use candle_core::WithDType;
use rayon::prelude::*;

/// Whether a conv takes this path: stride-1 3×3 with enough channels for the 16 GEMMs (depth C, height C_out) to
/// be efficient. Measured against the tiled patch matrix (`kernels::conv2d::tests::bench_paths`, three sittings): 1.3–1.6× faster from 64
/// input channels (64→64 at 256²: 42 → 27 ms; 128→128 at 128²: 39–44 → 27 ms; 256→256 at 32²: 11 → 7.5 ms), even
/// or slower below (32→32 at 256²: 13–18 ms both ways; 16→16 at 320×240: 4–15 ms against 6–9).
pub(super) fn wins(p: &Patches, c_out: usize) -> bool {
    p.stride == 1 && p.k == 3 && p.c >= 64 && c_out >= 32
}

/// `U[co][ξ][ci] = (G g Gᵀ)[ξ]` for each 3×3 filter `g = W[co, ci]`: for each ξ the matrix `U_ξ [C_out, C]` with
/// row stride `16·C`. Laid out per output channel so that the transform runs in parallel over `co`, each task
/// writing one contiguous `[16, C]` block (it ran on one thread and was ~10 % of a Gatys or CycleGAN training
/// step: training transforms the weights at every forward).
fn transform_weights<T: WithDType>(w: &[T], c_out: usize, c: usize) -> Vec<T> {
    let half = T::from_f64(0.5);
    let mut u = vec![T::zero(); 16 * c_out * c];
    u.par_chunks_mut(16 * c).enumerate().for_each(|(co, u)| {
        for ci in 0..c {
            let g = &w[(co * c + ci) * 9..][..9];
            // G g: 4 rows of 3.
            let mut t = [[T::zero(); 3]; 4];
            for j in 0..3 {
                let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
                t[0][j] = a;
                t[1][j] = (a + b + d) * half;
                t[2][j] = (a - b + d) * half;
                t[3][j] = d;
            }
            // (G g) Gᵀ: 4 × 4.
            for (i, r) in t.iter().enumerate() {
                let v = [r[0], (r[0] + r[1] + r[2]) * half, (r[0] - r[1] + r[2]) * half, r[2]];
                for (j, &x) in v.iter().enumerate() {
                    u[(i * 4 + j) * c + ci] = x;
                }
            }
        }
    });
    u
}

/// `Bᵀ d B` for the tiles `tx0..tx0 + nt` of tile row `ty` of one padded plane (row length `cols`), into the 16
/// rows `v[ξ·v_stride ..][..nt]`. The row part of the transform runs on whole image rows (contiguous, so it
/// vectorises), the column part writes each ξ as a contiguous run over the tiles.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn input_transform<T: WithDType>(plane: &[T], cols: usize, ty: usize, tx0: usize, nt: usize, t: &mut Vec<T>, v: &mut [T], v_stride: usize) {
    let width = 2 * nt + 2;
    let row = |i: usize| &plane[(2 * ty + i) * cols + 2 * tx0..][..width];
    let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
    // `t`: the four rows of `Bᵀ d`, then their even and odd columns (per-thread scratch: `resize` zeroes only
    // what it adds).
    let half = nt + 1;
    t.resize(4 * width + 2 * half, T::zero());
    let (rows_t, eo) = t.split_at_mut(4 * width);
    let (t0, rest) = rows_t.split_at_mut(width);
    let (t1, rest) = rest.split_at_mut(width);
    let (t2, t3) = rest.split_at_mut(width);
    for x in 0..width {
        t0[x] = d0[x] - d2[x];
        t1[x] = d1[x] + d2[x];
        t2[x] = d2[x] - d1[x];
        t3[x] = d1[x] - d3[x];
    }
    // The column part per tile j reads columns 2j .. 2j + 3 of a row: a = e[j], b = o[j], c = e[j + 1],
    // d = o[j + 1] with e / o the row's even / odd columns. Split into e and o once (the one stride-2 pass), the
    // four outputs are unit-stride passes that vectorise; read at stride 2 they ran element by element.
    let (e, o) = eo.split_at_mut(half);
    for (i, ti) in [&*t0, &*t1, &*t2, &*t3].into_iter().enumerate() {
        for (x, pair) in ti.chunks_exact(2).enumerate() {
            e[x] = pair[0];
            o[x] = pair[1];
        }
        let (e0, e1, o0, o1) = (&e[..nt], &e[1..], &o[..nt], &o[1..]);
        let mut rows = v[4 * i * v_stride..].chunks_mut(v_stride);
        let mut next = || &mut rows.next().expect("four rows")[..nt];
        for ((d, &a), &c) in next().iter_mut().zip(e0).zip(e1) {
            *d = a - c;
        }
        for ((d, &b), &c) in next().iter_mut().zip(o0).zip(e1) {
            *d = b + c;
        }
        for ((d, &b), &c) in next().iter_mut().zip(o0).zip(e1) {
            *d = c - b;
        }
        for ((d, &b), &dd) in next().iter_mut().zip(o0).zip(o1) {
            *d = b - dd;
        }
    }
}

multiversion! {
    /// [`input_transform`] of one run of tiles for every channel `ci` of the padded image `xp` (planes of `rows ×
    /// cols`) into `v[ci·block ..]`, where `block` is the tiles of the block (the row length of `v_ξ`), compiled for
    /// the CPU's instruction set (`bench_input_transform`, AMD EPYC: ~20 µs with AVX2 against 24–29 at baseline).
    fn input_transforms<T: WithDType>(xp: &[T], c: usize, rows: usize, cols: usize, run: (usize, usize, usize), t: &mut Vec<T>, v: &mut [T], block: usize) -> () {
        let (ty, tx0, len) = run;
        for ci in 0..c {
            input_transform(&xp[ci * rows * cols..(ci + 1) * rows * cols], cols, ty, tx0, len, t, &mut v[ci * block..], c * block);
        }
    }
}

/// One output row of `len` tiles: per tile j, the columns s_q = a_q ± b_q ± c_q (q = 0..4) of `Aᵀ m` for this
/// row give the outputs `s0 + s1 + s2` and `s1 − s2 − s3` (+ bias) at columns 2j and 2j + 1; the tiles from
/// `full` on give only the first (the right edge of an odd width). Split out so that the loop over whole tiles
/// has no branch and vectorises.
///
/// # Safety
/// `dst` is valid for writes at `0 .. 2·len` (at `2·full` for the last tile when `full < len`).
#[inline(always)]
unsafe fn output_row<T: WithDType, const DIFF: bool>(a: [&[T]; 4], b: [&[T]; 4], c: [&[T]; 4], full: usize, len: usize, bias: T, dst: *mut T) {
    let col = |q: usize, j: usize| if DIFF { a[q][j] - b[q][j] - c[q][j] } else { a[q][j] + b[q][j] + c[q][j] };
    for j in 0..full {
        let (s0, s1, s2, s3) = (col(0, j), col(1, j), col(2, j), col(3, j));
        dst.add(2 * j).write(s0 + s1 + s2 + bias);
        dst.add(2 * j + 1).write(s1 - s2 - s3 + bias);
    }
    for j in full..len {
        dst.add(2 * j).write(col(0, j) + col(1, j) + col(2, j) + bias);
    }
}

/// The fewest tiles a block gives its 16 GEMMs (their `n`), balance permitting: 16-tile blocks ran the GEMMs on
/// the `gemm` crate's narrowest micro-kernel (16 × 6), about half the rate of the 64 × 6 one, in the deep
/// layers (512 channels at 32², where a 512-channel block fits two patch tiles with 16 tiles).
const MIN_BLOCK: usize = 64;

/// The tiles `t0..t0 + nt` (row-major over the `th × tw` tiles) as runs within one tile row:
/// `(ty, tx0, len, j0)` with `j0` the run's first column in the block.
fn row_runs(t0: usize, nt: usize, tw: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut t = t0;
    std::iter::from_fn(move || {
        (t < t0 + nt).then(|| {
            let (ty, tx0) = (t / tw, t % tw);
            let len = (tw - tx0).min(t0 + nt - t);
            let run = (ty, tx0, len, t - t0);
            t += len;
            run
        })
    })
}

/// The conv `p` (stride 1, 3×3; its padding given by `border`) of `x [B, C, ·, ·]` with `w [C_out, C, 3, 3]`,
/// plus `bias`: `[B, C_out, Ho, Wo]`.
pub(super) fn run<T: WithDType>(x: &[T], w: &[T], bias: Option<&[T]>, border: Border, b: usize, p: Patches, c_out: usize) -> Vec<T> {
    let (ho, wo) = p.out_hw();
    let c = p.c;
    let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
    // The padded planes, rounded up to whole tiles (the extra row/column is zero and its outputs dropped).
    let (rows, cols) = (2 * th + 2, 2 * tw + 2);
    let u = transform_weights(w, c_out, c);
    // A block is a run of tiles (row-major, across tile rows): the 16 transformed inputs [16, C, block] within
    // about two patch tiles of `conv2d`, but at least MIN_BLOCK tiles unless that leaves fewer than two blocks
    // per thread.
    let tiles = th * tw;
    let balanced = tiles.div_ceil(2 * rayon::current_num_threads());
    let block = (2 * TILE_ELEMS / (16 * c)).clamp(16, 512).max(MIN_BLOCK.min(balanced)).min(tiles);
    let src_plane = border.src_plane(&p);
    let mut y: Vec<T> = Vec::with_capacity(b * c_out * ho * wo);
    let out = OutPtr(y.as_mut_ptr());
    for bi in 0..b {
        let xp = padded_image(&x[bi * c * src_plane..(bi + 1) * c * src_plane], &p, border, rows, cols, 0);
        // The blocks' transformed inputs `v` and products `m` live in per-thread scratch reused across blocks and
        // calls (each element is written before it is read: by the input transform and by the GEMMs, which do not
        // read their destination).
        (0..tiles.div_ceil(block)).into_par_iter().for_each_init(Vec::new, |t: &mut Vec<T>, blk| {
            super::with_scratch::<T, _>(16 * c * block, 16 * c_out * block, |v, m| {
                let t0 = blk * block;
                let nt = block.min(tiles - t0);
                let (v, m) = (&mut v[..16 * c * nt], &mut m[..16 * c_out * nt]);
                // v_ξ = [C, nt] at ξ·C·nt: row ci of ξ at (ξ·C + ci)·nt, a run's tiles from column j0.
                for (ty, tx0, len, j0) in row_runs(t0, nt, tw) {
                    input_transforms(&xp, c, rows, cols, (ty, tx0, len), t, &mut v[j0..], nt);
                }
                for xi in 0..16 {
                    // SAFETY: m_ξ [c_out, nt] and v_ξ [c, nt] are row-major blocks inside m and v; u_ξ [c_out, c]
                    // starts at ξ·c in u with row stride 16·c.
                    unsafe {
                        super::gemm_1t(
                            c_out,
                            nt,
                            c,
                            m.as_mut_ptr().add(xi * c_out * nt),
                            nt as isize,
                            false,
                            u.as_ptr().add(xi * c),
                            (1, 16 * c as isize),
                            v.as_ptr().add(xi * c * nt),
                            (1, nt as isize),
                        );
                    }
                }
                // `Aᵀ m A` per tile: rows 2ty, 2ty + 1 and columns 2tx, 2tx + 1 of each output channel, cropped
                // at the bottom and right edges.
                let out = out;
                for (ty, tx0, len, j0) in row_runs(t0, nt, tw) {
                    let rows_out = (ho - 2 * ty).min(2);
                    let full = if 2 * (tx0 + len) <= wo { len } else { len - 1 };
                    for co in 0..c_out {
                        let bv = bias.map_or(T::zero(), |bias| bias[co]);
                        let mr = |xi: usize| &m[(xi * c_out + co) * nt + j0..][..len];
                        let ms: [&[T]; 16] = std::array::from_fn(mr);
                        for dy in 0..rows_out {
                            // SAFETY: row 2ty + dy < ho of image bi, channel co (capacity reserved above); columns
                            // 2tx0 .. 2(tx0 + len) cropped to wo belong to this task's tiles only.
                            let dst = out.0.wrapping_add(((bi * c_out + co) * ho + 2 * ty + dy) * wo + 2 * tx0);
                            // Aᵀ m for output row dy: rows 0 + 1 + 2 of the 4×4 products, or 1 − 2 − 3.
                            let row = |r: usize| [ms[4 * r], ms[4 * r + 1], ms[4 * r + 2], ms[4 * r + 3]];
                            unsafe {
                                if dy == 0 {
                                    output_row::<T, false>(row(0), row(1), row(2), full, len, bv, dst);
                                } else {
                                    output_row::<T, true>(row(1), row(2), row(3), full, len, bv, dst);
                                }
                            }
                        }
                    }
                }
            })
        });
    }
    // SAFETY: the tiles cover every output position of every image and channel.
    unsafe { y.set_len(b * c_out * ho * wo) };
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;
    use crate::nn::kernels::conv2d::{conv2d_inference, Padding};
    use crate::nn::kernels::isa::Isa;
    use candle_core::{DType, Device, Result, Tensor};

    use crate::nn::gradcheck::max_diff;

    /// The runs of a block: within one tile row each, in order, covering the block.
    #[test]
    fn row_runs_split_blocks_at_tile_rows() {
        let runs: Vec<_> = row_runs(5, 9, 4).collect();
        assert_eq!(runs, vec![(1, 1, 3, 0), (2, 0, 4, 3), (3, 0, 2, 7)]);
        assert_eq!(row_runs(0, 4, 4).collect::<Vec<_>>(), vec![(0, 0, 4, 0)]);
    }

    /// `Bᵀ d B` of every tile by the textbook formula (B = [[1,0,0,0],[0,1,-1,1],[-1,1,1,0],[0,0,0,-1]]) against
    /// the kernel's, for short and long runs, on every instruction set the CPU has.
    #[test]
    fn input_transform_matches_the_formula() {
        let bt = [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]];
        let _one_isa_at_a_time = super::super::isa::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = super::super::isa::active();
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            super::super::isa::set_active(isa);
            for nt in [1, 5, 128, 129, 300] {
                let (c, rows, cols, ty, tx0) = (2, 6, 2 * nt + 6, 1, 1);
                let xp: Vec<f64> = (0..c * rows * cols).map(|i| ((i * 37) % 101) as f64 - 50.0).collect();
                let mut v = vec![0.0; 16 * c * nt];
                input_transforms(&xp, c, rows, cols, (ty, tx0, nt), &mut Vec::new(), &mut v, nt);
                for ci in 0..c {
                    for j in 0..nt {
                        let d = |r: usize, q: usize| xp[ci * rows * cols + (2 * ty + r) * cols + 2 * (tx0 + j) + q];
                        for (xi, got) in (0..16).map(|xi| (xi, v[(xi * c + ci) * nt + j])) {
                            let (r, q) = (xi / 4, xi % 4);
                            let want: f64 = (0..4).flat_map(|a| (0..4).map(move |b| (a, b))).map(|(a, b)| bt[r][a] * d(a, b) * bt[q][b]).sum();
                            assert_eq!(got, want, "{isa:?}, {nt} tiles, channel {ci}, tile {j}, element {xi}");
                        }
                    }
                }
            }
        }
        super::super::isa::set_active(before);
    }

    /// The input transform's time per call on every instruction set (one 128-channel block of 32 tiles):
    /// `cargo test --release -p ganime bench_input_transform -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn bench_input_transform() {
        let (c, rows, cols, nt) = (128, 66, 66, 32);
        let xp: Vec<f32> = (0..c * rows * cols).map(|i| (i % 13) as f32).collect();
        let (mut v, mut t) = (vec![0f32; 16 * c * nt], Vec::new());
        let _one_isa_at_a_time = super::super::isa::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = super::super::isa::active();
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512, Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            let isa = super::super::isa::set_active(isa);
            let start = std::time::Instant::now();
            for rep in 0..200 {
                input_transforms(&xp, c, rows, cols, (rep % 32, 0, nt), &mut t, &mut v, nt);
            }
            eprintln!("{isa:?}: {:.1} µs per call", start.elapsed().as_secs_f64() * 1e6 / 200.0);
        }
        super::super::isa::set_active(before);
    }

    /// Against Candle's conv2d: odd and even sizes (partial tiles), a tile row split into blocks (256 channels, 35 tiles), blocks spanning
    /// several tile rows with odd sizes (512 channels, 17 × 16 tiles), zero padding 0–2, a folded reflection pad,
    /// bias, batch 2, in f64 (exact up to rounding) and f32.
    #[test]
    fn matches_candle_conv2d() -> Result<()> {
        // (batch, c_in, c_out, h, w, pad)
        for (i, &(b, ci, co, h, w, pad)) in [
            (1, 64, 32, 8, 8, 1),
            (2, 65, 33, 7, 9, 1),
            (1, 64, 34, 5, 6, 0),
            (1, 70, 32, 3, 4, 2),
            (2, 64, 32, 13, 2, 1),
            (1, 256, 32, 4, 69, 1),
            (1, 512, 32, 33, 31, 1),
        ]
        .iter()
        .enumerate()
        {
            let p = Patches { c: ci, h, w, k: 3, stride: 1, pad };
            assert!(wins(&p, co));
            let x = seeded(&[b, ci, h, w], i as u64)?;
            let wt = seeded(&[co, ci, 3, 3], 10 + i as u64)?;
            let want = x.conv2d(&wt, pad, 1, 1, 1)?;
            let (xs, ws) = (x.flatten_all()?.to_vec1::<f64>()?, wt.flatten_all()?.to_vec1::<f64>()?);
            // The block size depends on the thread count (1: whole tile rows here; 3: blocks that start and end
            // inside tile rows).
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().map_err(candle_core::Error::wrap)?;
                let got = pool.install(|| run(&xs, &ws, None, Border::Zero, b, p, co));
                let got = Tensor::from_vec(got, want.dims(), &Device::Cpu)?;
                assert!(max_diff(&got, &want) < 1e-12, "f64 case {i}, {threads} threads: {}", max_diff(&got, &want));
            }
            // f32 through the public entry (dispatch, bias), zero and reflect padding.
            let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
            let bias = seeded(&[co], 20 + i as u64)?;
            let want = want.broadcast_add(&bias.reshape((1, co, 1, 1))?)?;
            let got = conv2d_inference(&f32s(&x), &f32s(&wt), Some(&f32s(&bias)), 1, Padding::Zero(pad))?.unwrap();
            let scale = want.abs()?.max_all()?.to_scalar::<f64>()?;
            assert!(max_diff(&got.to_dtype(DType::F64)?, &want) < 1e-5 * scale, "f32 case {i}");
            if pad > 0 && pad < h.min(w) {
                let want = crate::nn::reflection_pad2d(&x, pad, pad, pad, pad)?.conv2d(&wt, 0, 1, 1, 1)?;
                let got =
                    conv2d_inference(&f32s(&x), &f32s(&wt), None, 1, Padding::Reflect { left: pad, right: pad, top: pad, bottom: pad })?.unwrap();
                assert!(max_diff(&got.to_dtype(DType::F64)?, &want) < 1e-5 * scale, "reflect case {i}");
            }
        }
        Ok(())
    }
}
