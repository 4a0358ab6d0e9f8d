//! Where ganime finds the shared material (`data/`, `weights/`, `golden/`) for run-time defaults such as the
//! VGG16 of `eval`, `train animegan` and `distill`: `$GANIME_SHARED_DIR`, else `../shared` from the current
//! directory (the sibling of a checkout, where the README's commands run). Nothing depends on where the binary
//! was built. The tests find it from their source tree instead (`shared_path`, test builds only).

use std::path::PathBuf;

/// Env var naming the shared folder (the directory that contains `data/`, `weights/`, `golden/`).
pub const SHARED_DIR_VAR: &str = "GANIME_SHARED_DIR";
/// Env var that turns a missing shared path into a test failure (for CI, where skipping would hide a broken
/// setup).
pub const REQUIRE_SHARED_VAR: &str = "GANIME_REQUIRE_SHARED";

/// The shared folder at run time: `$GANIME_SHARED_DIR`, else `../shared` from the current directory.
pub fn shared_dir() -> PathBuf {
    std::env::var_os(SHARED_DIR_VAR).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("../shared"))
}

/// `<shared>/<rel>` if it exists: for tools that prefer shared material when it is there (e.g. `ganime eval`
/// using the real VGG16 weights by default).
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    Some(shared_dir().join(rel)).filter(|p| p.exists())
}

/// What to tell a user whose default file is missing.
pub fn missing_hint(rel: &str) -> String {
    format!(
        "{} not found (set {SHARED_DIR_VAR} to the folder holding the shared data, or run from a checkout next to it)",
        shared_dir().join(rel).display()
    )
}

/// Test builds: `<workspace>/../shared/<rel>` (or `$GANIME_SHARED_DIR/<rel>`) if it exists; when missing, a
/// panic naming the path under `GANIME_REQUIRE_SHARED=1`, else a printed `skipping` and `None`.
#[cfg(test)]
pub(crate) fn shared_path(rel: &str) -> Option<PathBuf> {
    let root = std::env::var_os(SHARED_DIR_VAR).map(PathBuf::from).unwrap_or_else(|| {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(manifest).join("../shared")
    });
    let path = root.join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var(REQUIRE_SHARED_VAR).as_deref() == Ok("1") {
        panic!("shared data {} not found ({REQUIRE_SHARED_VAR}=1)", path.display());
    }
    eprintln!("skipping: {} not found", path.display());
    None
}
