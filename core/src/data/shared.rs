//! Locating the read-only shared data (`../shared` next to the workspace) from tests and tools, so that a
//! checkout without it skips instead of failing, while CI can insist on it.

use std::path::{Path, PathBuf};

/// Env var overriding the shared folder (the directory that contains `data/`).
pub const SHARED_DIR_VAR: &str = "GANIME_SHARED_DIR";
/// Env var that turns a missing shared path into a panic (for CI, where skipping would hide a broken setup).
pub const REQUIRE_SHARED_VAR: &str = "GANIME_REQUIRE_SHARED";

/// `<workspace root>/../shared/<rel>` (or `$GANIME_SHARED_DIR/<rel>`) if it exists.
///
/// When missing: panics naming the path if `GANIME_REQUIRE_SHARED=1`, otherwise prints
/// `skipping: {path} not found` to stderr and returns `None` so the caller can return early.
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

/// The shared folder: `$GANIME_SHARED_DIR`, else the sibling `shared` of the workspace root.
fn shared_root() -> PathBuf {
    if let Some(dir) = std::env::var_os(SHARED_DIR_VAR) {
        return PathBuf::from(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest.parent().unwrap_or(manifest);
    match workspace.parent() {
        Some(parent) => parent.join("shared"),
        None => workspace.join("../shared"),
    }
}

/// `<shared>/<rel>` if it exists, without the CI panic of [`shared_path`]: for tools that merely prefer shared
/// material when it is there (e.g. `ganime eval` using the real VGG16 weights by default).
pub fn shared_file(rel: &str) -> Option<PathBuf> {
    Some(shared_root().join(rel)).filter(|p| p.exists())
}
