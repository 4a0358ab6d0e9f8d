//! ganime: GAN image generation, style transfer and anime stylisation on Candle.

pub mod bench;
pub mod bench_anime;
pub mod bench_half;
pub mod cli;
pub mod data;
pub mod device;
pub mod filter;
pub mod filters;
pub mod generate;
pub mod io;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod onnx;
pub mod style;
pub mod train;

// The unit tests (and the kernels' ignored micro-benchmarks among them) use the binaries' allocator, so that
// timings are not dominated by fresh-page faults of the system allocator.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tells mimalloc (the binaries' global allocator) to keep freed memory instead of returning it to the OS at
/// once: numeric option ids of mimalloc v2's `mi_option_e` (4 = arena_eager_commit, 15 = purge_delay).
pub fn tune_allocator() {
    unsafe {
        libmimalloc_sys::mi_option_set(4, 1);
        libmimalloc_sys::mi_option_set(15, -1);
    }
}
