//! The project's own CPU kernels, plugged into Candle as custom ops (`cpu_fwd` + `bwd`), for the places where
//! Candle's CPU backend spends the time in our workloads (see BENCHMARKS.md, "CPU kernels"):
//!
//! - [`conv2d`]: Conv2d forward as tiled im2col + GEMM into the NCHW output (no whole-image patch matrix), and
//!   for wide (k ≥ 5) stride-1 kernels as k² shifted GEMMs on the padded input (no patch matrix at all).
//! - [`conv2d_backward`]: the input and weight gradients of a convolution as tiled GEMMs (no whole-batch patch
//!   matrix), and `ConvTranspose2d` built from them.
//! - [`patches`]: im2col / col2im, the gather and scatter around the GEMM of `Conv2d` / `ConvTranspose2d`.
//! - [`batch_norm`]: BatchNorm (batch or running statistics) fused with the ReLU / LeakyReLU after it, forward
//!   and backward in two passes each, instead of Candle's ~15 separate element-wise tensors.
//! - [`layer_norm`]: AnimeGANv2's layer norm with its affine part for training, forward and backward one op each.
//! - [`bilinear`]: separable bilinear resizing, one parallel pass each way (training and inference).
//! - [`depthwise`]: depthwise convolution (any stride) as direct per-channel stencils, inference only.
//! - [`activation`]: LeakyReLU in one pass (Candle builds it from max, min, mul and add).
//! - [`max_pool`]: k×k max pooling, forward and backward in one parallel pass each (Candle: serial reductions,
//!   a broadcast comparison mask in the backward).
//! - [`reflect_pad`]: reflection padding, one copy pass forward and one accumulating pass backward (Candle:
//!   two serial gathers and scatters).
//! - [`adam`]: the Adam update in place (Candle: ~12 allocating element-wise ops per parameter tensor).
//!
//! Each kernel runs on f32 and f64 CPU tensors; the layers call Candle's own ops on other devices, so the CUDA
//! build is unaffected. Each file has parity tests against Candle's op (and autograd or finite differences for
//! the backward) and an ignored micro-benchmark:
//! `cargo test --release -p ganime kernels -- --ignored --nocapture`. `instruction_sets` re-runs those tests on
//! an emulated AVX2 CPU without AVX-512 and on a pre-AVX one (QEMU user mode).

pub mod activation;
pub mod adam;
pub mod batch_norm;
pub mod bilinear;
pub mod conv2d;
pub mod conv2d_backward;
pub mod depthwise;
#[cfg(all(test, target_arch = "x86_64"))]
mod instruction_sets;
pub mod isa;
pub mod layer_norm;
pub mod max_pool;
pub mod patches;
pub mod reflect_pad;
pub mod winograd;

use candle_core::{backend::BackendStorage, CpuStorage, Layout, Result, WithDType};
use rayon::prelude::*;

/// `dst[m × n] = lhs[m × k] · rhs[k × n]`, or `+=` with `accumulate`, single-threaded (the kernels run their
/// own tasks in parallel): the one way the kernels call the `gemm` crate. `dst` is row-major with row stride
/// `dst_rs`; `lhs` and `rhs` are given with their (column, row) strides.
///
/// # Safety
/// Every element the sizes and strides address lies inside its allocation, and no other thread touches the
/// elements of `dst` meanwhile.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_1t<T: WithDType>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: isize,
    accumulate: bool,
    lhs: *const T,
    (lhs_cs, lhs_rs): (isize, isize),
    rhs: *const T,
    (rhs_cs, rhs_rs): (isize, isize),
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs,
        accumulate,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        T::one(),
        T::one(),
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// Elements per task of the kernels' simple parallel passes.
const ZERO_CHUNK: usize = 1 << 15;

/// `n` zeros, written in parallel: a large `vec![0; n]` is one `memset` on the calling thread (mimalloc's
/// zeroing allocation), which the kernels' own passes then wait on while the other cores idle.
pub(crate) fn zeroed<T: WithDType>(n: usize) -> Vec<T> {
    if n < 2 * ZERO_CHUNK {
        return vec![T::zero(); n];
    }
    let mut v = Vec::with_capacity(n);
    v.spare_capacity_mut().par_chunks_mut(ZERO_CHUNK).for_each(|c| {
        for x in c {
            x.write(T::zero());
        }
    });
    // SAFETY: every one of the n elements was written above.
    unsafe { v.set_len(n) };
    v
}

thread_local! {
    /// Per-thread scratch storage of [`with_scratch`] (f64 words: aligned for every element type).
    static SCRATCH: std::cell::RefCell<[Vec<f64>; 2]> = const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// The first `n` elements of `buf` as `T`s, growing it (with zeros) when it is shorter.
fn scratch_slice<T: WithDType>(buf: &mut Vec<f64>, n: usize) -> &mut [T] {
    const { assert!(std::mem::align_of::<T>() <= std::mem::align_of::<f64>()) };
    let words = (n * std::mem::size_of::<T>()).div_ceil(std::mem::size_of::<f64>());
    if buf.len() < words {
        buf.resize(words, 0.0);
    }
    // SAFETY: the words cover n elements of T, f64's alignment serves T's, and every bit pattern is a valid
    // value of the plain numeric types that implement WithDType (floats and integers).
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<T>(), n) }
}

/// Runs `f` with two scratch slices of `a` and `b` elements kept by this thread across calls, so that the
/// kernels' per-task buffers (patch tiles, Winograd blocks) are neither allocated nor zeroed for every task:
/// they hold whatever an earlier task left, so `f` must write every element before reading it. `f` must not
/// call `with_scratch` again (the buffers are borrowed).
pub(crate) fn with_scratch<T: WithDType, R>(a: usize, b: usize, f: impl FnOnce(&mut [T], &mut [T]) -> R) -> R {
    SCRATCH.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let [first, second] = &mut *bufs;
        f(scratch_slice(first, a), scratch_slice(second, b))
    })
}

/// A new vector of `n` elements written by `f`, `chunk` at a time in parallel: `f` receives the first index of
/// its chunk and the chunk to fill.
///
/// # Safety
/// `f` writes every element of every chunk it is given (the vector's length is then set to `n`).
pub(crate) unsafe fn filled<T: WithDType>(n: usize, chunk: usize, f: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    v.spare_capacity_mut()[..n].par_chunks_mut(chunk.max(1)).enumerate().for_each(|(i, c)| f(i * chunk.max(1), c));
    // SAFETY: `f` writes every element of every chunk (its contract), and the chunks cover 0..n.
    unsafe { v.set_len(n) };
    v
}

/// The contiguous slice behind a CPU storage + layout, or an error naming the op.
pub(crate) fn contiguous<'a, T: WithDType>(op: &str, s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(s)?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: needs a contiguous input"),
    }
}

/// Runs `f` on the contiguous f32 or f64 slices of two storages.
pub(crate) fn on_slices(
    name: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    f32: impl FnOnce(&[f32], &[f32]) -> Vec<f32>,
    f64: impl FnOnce(&[f64], &[f64]) -> Vec<f64>,
) -> Result<CpuStorage> {
    Ok(match s1 {
        CpuStorage::F32(_) => CpuStorage::F32(f32(contiguous(name, s1, l1)?, contiguous(name, s2, l2)?)),
        CpuStorage::F64(_) => CpuStorage::F64(f64(contiguous(name, s1, l1)?, contiguous(name, s2, l2)?)),
        other => candle_core::bail!("{name}: unsupported dtype {:?}", other.dtype()),
    })
}

/// Whether backward passes must stay differentiable (WGAN-GP sets `CANDLE_GRAD_DO_NOT_DETACH`, see
/// `train::objective`). Fused kernels whose backward is itself a plain kernel then step aside for Candle's ops.
pub(crate) fn second_order_gradients() -> bool {
    std::env::var("CANDLE_GRAD_DO_NOT_DETACH").map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

/// A cheap element-wise activation that a kernel can apply to its output in the same pass.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    /// LeakyReLU with a non-negative slope (so the output's sign tells the input's, which the backward uses).
    LeakyRelu(f64),
}

/// `value` where `key` > 0, else `otherwise`: the activations and their derivatives as selects of two values
/// computed for every element. Closures calling it should own their slope (`move`): with the multiply written
/// inside the `else` and the slope borrowed, LLVM kept a load behind a branch, a scalar loop that mispredicted on
/// half of a layer's values (BatchNorm's backward took ~30× its forward's time).
#[inline(always)]
pub(crate) fn select_positive_by<T: WithDType>(key: T, value: T, otherwise: T) -> T {
    if key > T::zero() {
        value
    } else {
        otherwise
    }
}

impl Activation {
    #[inline(always)]
    pub(crate) fn apply<T: WithDType>(self, v: T, slope: T) -> T {
        match self {
            Activation::Identity => v,
            // Here the branch form vectorises (the forward kernels pass the slope by value); the select form ran
            // the BatchNorm forward ~2× slower.
            _ => {
                if v > T::zero() {
                    v
                } else {
                    v * slope
                }
            }
        }
    }

    /// The slope for negative inputs (0 for ReLU, 1 for identity).
    pub(crate) fn slope(self) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => 0.0,
            Activation::LeakyRelu(s) => s,
        }
    }
}

/// The kernels' micro-benchmarks: `f` once to warm up, then the mean of 10 runs in ms, printed under `name`.
#[cfg(test)]
pub(crate) fn bench_ms(name: &str, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
    f()?;
    let t = std::time::Instant::now();
    for _ in 0..10 {
        f()?;
    }
    println!("{name}: {:.2} ms", t.elapsed().as_secs_f64() * 100.0);
    Ok(())
}

#[cfg(test)]
mod peak {
    /// The machine's practical f32 peak, for BENCHMARKS.md: a 2048³ matmul through Candle (the `gemm` crate, as
    /// the conv kernels use). `cargo test --release -p ganime kernels::peak -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn matmul_peak_gflops() -> candle_core::Result<()> {
        crate::tune_allocator();
        let n = 2048;
        let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), &candle_core::Device::Cpu)?;
        let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), &candle_core::Device::Cpu)?;
        a.matmul(&b)?;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = std::time::Instant::now();
            a.matmul(&b)?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("f32 matmul {n}x{n}x{n}: {:.1} ms, {:.1} GFLOP/s", best * 1e3, 2.0 * (n * n * n) as f64 / best / 1e9);
        Ok(())
    }
}

#[cfg(test)]
mod buffers {
    /// Parallel zeroing and filling give what the serial versions give, at sizes around the chunk boundaries.
    #[test]
    fn zeroed_and_filled_cover_every_element() {
        for n in [0, 1, 2 * super::ZERO_CHUNK - 1, 2 * super::ZERO_CHUNK, 3 * super::ZERO_CHUNK + 7] {
            let z: Vec<f32> = super::zeroed(n);
            assert_eq!(z.len(), n);
            assert!(z.iter().all(|&v| v == 0.0));
            for chunk in [1, 1000, 1 << 14] {
                // SAFETY: the closure writes every element of its chunk.
                let f: Vec<f64> = unsafe {
                    super::filled(n, chunk, |start, c| {
                        for (i, x) in c.iter_mut().enumerate() {
                            x.write((start + i) as f64 * 0.5);
                        }
                    })
                };
                assert!(f.iter().enumerate().all(|(i, &v)| v == i as f64 * 0.5), "n {n}, chunk {chunk}");
            }
        }
    }
}
