//! The kernels on the instruction sets ganime meets. The `gemm` crate (and Candle through it) picks its
//! micro-kernels at run time (AVX-512, AVX2 + FMA, SSE), and ganime's own loops are compiled for baseline
//! x86-64, so one build serves every x86-64 CPU; a test on this machine only checks this machine's path.
//! These tests re-run this binary's kernel tests under QEMU's user-mode emulator (`qemu-x86_64 -cpu MODEL`,
//! Debian package `qemu-user`) as an AVX2 CPU without AVX-512 (the AMD EPYC these benchmarks also ran on) and
//! as a pre-AVX one, where the emulated CPU first proves it lacks what it should lack.
//!
//! Without `qemu-x86_64` they are skipped, except under `GANIME_REQUIRE_SHARED=1` (CI installs it). QEMU before
//! 7.2 cannot emulate AVX2: there the AVX2 test fails in the child's CPU check.

use std::process::Command;

/// Set in the emulated child: which instruction set it must see (`avx2` or `sse4.2`); the children do not
/// spawn further emulators.
const EMULATED_CPU_VAR: &str = "GANIME_EMULATED_CPU";

/// In an emulated child, the CPU has the instruction set it was started for and none above it (what makes the
/// other kernel tests of that run exercise that path).
#[test]
fn emulated_cpu_is_the_one_asked_for() {
    let features = || {
        [
            is_x86_feature_detected!("sse4.2"),
            is_x86_feature_detected!("avx"),
            is_x86_feature_detected!("avx2"),
            is_x86_feature_detected!("fma"),
            is_x86_feature_detected!("avx512f"),
        ]
    };
    match std::env::var(EMULATED_CPU_VAR).as_deref() {
        Ok("avx2") => assert_eq!(features(), [true, true, true, true, false], "expected AVX2 + FMA without AVX-512"),
        Ok("sse4.2") => assert_eq!(features(), [true, false, false, false, false], "expected SSE4.2 without AVX"),
        Ok(other) => panic!("{EMULATED_CPU_VAR}={other}: unknown instruction set"),
        Err(_) => {}
    }
}

/// Runs this test binary's `nn::kernels` tests under `qemu-x86_64 -cpu <model>` with the child told to expect
/// `instruction_set`; `None` when the emulator is missing (and not required).
fn kernel_tests_under(model: &str, instruction_set: &str) -> Option<String> {
    if std::env::var_os(EMULATED_CPU_VAR).is_some() {
        return None;
    }
    if Command::new("qemu-x86_64").arg("--version").output().is_err() {
        let required = std::env::var(crate::data::shared::REQUIRE_SHARED_VAR).as_deref() == Ok("1");
        assert!(!required, "qemu-x86_64 not found: the instruction-set tests need it (apt: qemu-user)");
        eprintln!("skipping: qemu-x86_64 not found (apt: qemu-user)");
        return None;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new("qemu-x86_64")
        .args(["-cpu", model])
        .arg(&exe)
        .args(["nn::kernels::", "--test-threads", "2"])
        .env(EMULATED_CPU_VAR, instruction_set)
        .output()
        .expect("qemu-x86_64 runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "kernel tests on an emulated {model} ({instruction_set}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}

/// How many of this binary's `nn::kernels::` tests are not ignored (what a child must report as passed).
fn kernel_tests_to_run() -> usize {
    let exe = std::env::current_exe().expect("the test binary's path");
    let count = |extra: &[&str]| {
        let out = Command::new(&exe).args(["nn::kernels::", "--list"]).args(extra).output().expect("the test binary lists its tests");
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.ends_with(": test")).count()
    };
    count(&[]) - count(&["--ignored"])
}

/// The number `N` of `N passed` in a libtest summary.
fn passed(stdout: &str) -> usize {
    stdout.lines().filter_map(|l| l.strip_prefix("test result: ok. ")).filter_map(|l| l.split(' ').next()?.parse::<usize>().ok()).sum()
}

#[test]
fn kernels_pass_on_avx2_without_avx512() {
    if let Some(stdout) = kernel_tests_under("Haswell-v4", "avx2") {
        assert!(stdout.contains("emulated_cpu_is_the_one_asked_for ... ok"), "{stdout}");
        assert_eq!(passed(&stdout), kernel_tests_to_run(), "every kernel test must pass on the emulated CPU:\n{stdout}");
    }
}

#[test]
fn kernels_pass_without_avx() {
    if let Some(stdout) = kernel_tests_under("Nehalem-v2", "sse4.2") {
        assert!(stdout.contains("emulated_cpu_is_the_one_asked_for ... ok"), "{stdout}");
        assert_eq!(passed(&stdout), kernel_tests_to_run(), "every kernel test must pass on the emulated CPU:\n{stdout}");
    }
}
