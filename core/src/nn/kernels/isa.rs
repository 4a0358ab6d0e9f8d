//! Run-time choice of instruction set for the kernels' own loops. One build serves every x86-64 CPU, so the
//! crate is compiled for baseline x86-64 (SSE2); a kernel written with [`multiversion!`] is compiled three times
//! (AVX-512, AVX2 + FMA, baseline) and each call runs the best copy this CPU has. The copies are the same
//! source: Rust never fuses or reorders floating-point operations on its own, so the three give bit-identical
//! results, only with wider vectors. Measured where it matters (BatchNorm's lane sums and selects compile to
//! scalar code without SSE4.1/AVX: docs/perf-log.md).
//!
//! `GANIME_ISA=avx2` or `GANIME_ISA=baseline` caps the choice (to time or test a lower path on a bigger CPU);
//! the `gemm` crate makes its own choice and ignores it.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Baseline = 1,
    /// AVX2 + FMA (Haswell, Zen).
    Avx2 = 2,
    /// AVX-512 F/BW/DQ/VL plus AVX2 + FMA (Skylake-SP and later Xeons, Zen 4).
    Avx512 = 3,
}

impl Isa {
    fn from_u8(v: u8) -> Option<Isa> {
        match v {
            1 => Some(Isa::Baseline),
            2 => Some(Isa::Avx2),
            3 => Some(Isa::Avx512),
            _ => None,
        }
    }
}

/// The environment variable that caps the level.
pub const ISA_VAR: &str = "GANIME_ISA";

/// The level the kernels run at (0 = not decided yet).
static ACTIVE: AtomicU8 = AtomicU8::new(0);

/// What this CPU has, among the levels the kernels are compiled for.
pub fn detected() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl");
        if avx2 && avx512 {
            return Isa::Avx512;
        }
        if avx2 {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// The level [`multiversion!`] kernels run at: what the CPU has, capped by `GANIME_ISA` (decided on first use).
pub fn active() -> Isa {
    if let Some(isa) = Isa::from_u8(ACTIVE.load(Ordering::Relaxed)) {
        return isa;
    }
    let cap = match std::env::var(ISA_VAR).as_deref() {
        Ok("baseline") => Isa::Baseline,
        Ok("avx2") => Isa::Avx2,
        Ok("avx512") | Err(_) => Isa::Avx512,
        Ok(other) => {
            eprintln!("warning: {ISA_VAR}={other} is not one of baseline, avx2, avx512; ignored");
            Isa::Avx512
        }
    };
    let isa = detected().min(cap);
    ACTIVE.store(isa as u8, Ordering::Relaxed);
    isa
}

/// Held by every test that calls [`set_active`], so that one test's switch cannot land inside another's.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the kernels at `isa` (never above what the CPU has) until the next call; for tests that compare the
/// paths (holding [`TEST_LOCK`]). Other threads' kernels switch too, which cannot change their results (the paths
/// are bit-identical).
#[cfg(test)]
pub(crate) fn set_active(isa: Isa) -> Isa {
    let isa = isa.min(detected());
    ACTIVE.store(isa as u8, Ordering::Relaxed);
    isa
}

/// `fn name<T: Bound, …>(arg: Type, …) -> Ret { body }`, compiled three times and dispatched on [`active`]. The
/// body is pasted into each copy (not called from it), so the closures it hands to rayon are compiled with the
/// copy's instruction set too. Several bounds of one parameter are written `T: A | B` (macro syntax for `A + B`);
/// arguments are plain names.
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident <$($T:ident : $B:path $(| $Bs:path)*),+> ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name<$($T: $B $(+ $Bs)*),+>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx512<$($T: $B $(+ $Bs)*),+>($($arg: $ty),*) -> $ret $body
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2<$($T: $B $(+ $Bs)*),+>($($arg: $ty),*) -> $ret $body
                match $crate::nn::kernels::isa::active() {
                    // SAFETY: `active` never exceeds what the CPU has (`detected`).
                    $crate::nn::kernels::isa::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::nn::kernels::isa::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::nn::kernels::isa::Isa::Baseline => {}
                }
            }
            #[allow(clippy::too_many_arguments)]
            fn baseline<$($T: $B $(+ $Bs)*),+>($($arg: $ty),*) -> $ret $body
            baseline($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_active_is_capped_by_the_cpu() {
        let _only_this_test_switches = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = active();
        assert_eq!(set_active(Isa::Baseline), Isa::Baseline);
        assert_eq!(active(), Isa::Baseline);
        assert!(set_active(Isa::Avx512) <= detected());
        set_active(before);
    }
}
