//! Outputs and checkpoints are written to a temp file in the target's folder, then renamed over the target,
//! so an interrupted run never leaves a half-written file where a good one was.

use anyhow::{Context, Result};
use std::path::Path;

/// Writes whatever `write` puts into the temp path, then renames it to `path`.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result =
        write(&tmp).and_then(|()| std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display())));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.txt");
        write_atomic(&p, |t| Ok(std::fs::write(t, "good")?)).unwrap();
        let err = write_atomic(&p, |t| {
            std::fs::write(t, "half")?;
            anyhow::bail!("disk full")
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp file left behind");
    }
}
