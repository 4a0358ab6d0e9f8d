//! Helpers for the end-to-end tests: finding (or building) the `ganime` binary, running it, and preparing
//! small datasets from the shared data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ganime::data::shared::{REQUIRE_SHARED_VAR, SHARED_DIR_VAR};

/// The shared folder of this checkout: `$GANIME_SHARED_DIR`, else `<workspace>/../shared`.
pub fn shared_root() -> PathBuf {
    std::env::var_os(SHARED_DIR_VAR).map(PathBuf::from).unwrap_or_else(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(manifest).join("../shared")
    })
}

/// `<shared>/<rel>` if it exists. When missing: a panic naming the path under `GANIME_REQUIRE_SHARED=1` (CI),
/// else a printed `skipping` and `None`, so the caller returns early.
pub fn shared_path(rel: &str) -> Option<PathBuf> {
    let path = shared_root().join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var(REQUIRE_SHARED_VAR).as_deref() == Ok("1") {
        panic!("shared data {} not found ({REQUIRE_SHARED_VAR}=1)", path.display());
    }
    eprintln!("skipping: {} not found", path.display());
    None
}

/// `ganime` with the checkout's shared folder as its run-time default (the binary looks in
/// `$GANIME_SHARED_DIR`, else `../shared` from where it runs) and two threads.
pub fn ganime_command() -> Command {
    let mut cmd = Command::new(ganime_bin());
    cmd.env(SHARED_DIR_VAR, shared_root()).env("RAYON_NUM_THREADS", "2");
    cmd
}

/// The `ganime` binary of this build profile (`target/<profile>/ganime`), built on first use if missing.
pub fn ganime_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        // The test executable lives in target/<profile>/deps/.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let bin = profile_dir.join(format!("ganime{}", std::env::consts::EXE_SUFFIX));
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "ganime", "--bin", "ganime"]);
        if release {
            cmd.arg("--release");
        }
        // Always ask cargo: it is a no-op when the binary is up to date, and rebuilds a stale one.
        let status = cmd.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("cargo build");
        assert!(status.success(), "building the ganime binary failed");
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Runs `ganime args…`; returns the output (exit status checked by the caller).
pub fn ganime(args: &[&str]) -> Output {
    ganime_command().args(args).output().expect("run ganime")
}

/// Runs `ganime args…` and panics with its stderr unless it succeeds.
pub fn ganime_ok(args: &[&str]) -> String {
    let out = ganime(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "ganime {args:?} failed:\n{stderr}");
    stderr
}

/// Runs `ganime args…`, expects failure, returns stderr.
pub fn ganime_err(args: &[&str]) -> String {
    let out = ganime(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "ganime {args:?} should have failed:\n{stderr}");
    stderr
}

/// Copies the first `n` images of `../shared/data/anime-faces` into a new temp folder.
pub fn anime_subset(n: usize) -> Option<tempfile::TempDir> {
    let src = shared_path("data/anime-faces")?;
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    files.sort();
    for f in files.iter().take(n) {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    Some(dir)
}

pub fn image_size(path: &Path) -> (u32, u32) {
    image::image_dimensions(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}
