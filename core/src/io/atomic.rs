//! Outputs and checkpoints are written to a temp file in the target's folder, synced, then renamed over the
//! target (and the folder synced), so an interrupted run never leaves a half-written file where a good one was.
//! Targets that are not regular files are handled deliberately: a FIFO or a device (`/dev/stdout`, a named
//! pipe) is written to directly, never replaced; a symlink is followed and its target replaced, the link kept.
//! Temp files a killed process left behind for the same target are removed on the next write.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Writes whatever `write` puts into the temp path, then renames it to `path` (see the module docs).
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let path = &resolve_target(path);
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() && !meta.is_dir() {
            // A FIFO, socket or device: renaming over it would replace it for everyone.
            return write(path).with_context(|| format!("writing {}", path.display()));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?.to_string_lossy().to_string();
    remove_orphans(dir, &name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write(&tmp)
        .and_then(|()| sync_file(&tmp))
        .and_then(|()| std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display())));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))?;
    // The rename is durable once the folder's entry is; a failure here (some filesystems refuse to open a
    // folder for syncing) does not undo a write that happened.
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// A symlink's final target (every link followed, so the links survive and point at the new file); anything
/// else as it is.
fn resolve_target(path: &Path) -> PathBuf {
    let mut path = path.to_path_buf();
    // A chain of links, followed a bounded number of times (a loop stops here and the write fails on it).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&path) {
                Ok(target) if target.is_absolute() => path = target,
                Ok(target) => path = path.parent().unwrap_or(Path::new(".")).join(target),
                Err(_) => break,
            },
            _ => break,
        }
    }
    path
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", path.display()))
}

/// Removes `.{name}.{pid}.tmp` files in `dir` whose process is gone (a run killed mid-write) and that are over an
/// hour old (a writer in another PID namespace, or on another host sharing the folder, is not in our /proc).
fn remove_orphans(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")).and_then(|p| p.parse::<u32>().ok()) else { continue };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        // Where /proc does not exist (not Linux), nothing is known to be dead: leave it.
        let old = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age.as_secs() > 3600);
        if !alive && old && Path::new("/proc/self").exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
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

    /// A FIFO is written to, not replaced; a symlink keeps pointing at the (new) file; a dead process's
    /// temp file is cleaned up.
    #[test]
    fn fifos_symlinks_and_orphans() {
        let dir = tempfile::tempdir().unwrap();
        // Symlink: the link stays a link, its target gets the content.
        let target = dir.path().join("real.txt");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink("real.txt", &link).unwrap();
        let link2 = dir.path().join("link2.txt");
        std::os::unix::fs::symlink("link.txt", &link2).unwrap();
        write_atomic(&link2, |t| Ok(std::fs::write(t, "new")?)).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(std::fs::symlink_metadata(&link2).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        // FIFO: a reader gets the bytes, and the FIFO is still a FIFO afterwards.
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_atomic(&fifo, |t| Ok(std::fs::write(t, "through the pipe")?)).unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
        // An hour-old orphan of a process that no longer exists (pid beyond pid_max) goes; the write succeeds.
        let orphan = dir.path().join(".real.txt.4294967.tmp");
        std::fs::write(&orphan, "half").unwrap();
        let fresh = dir.path().join(".real.txt.4294968.tmp");
        std::fs::write(&fresh, "a writer we cannot see").unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        std::fs::File::options().write(true).open(&orphan).unwrap().set_modified(hour_ago).unwrap();
        write_atomic(&target, |t| Ok(std::fs::write(t, "newer")?)).unwrap();
        assert!(!orphan.exists());
        assert!(fresh.exists(), "a recent temp file may belong to a writer elsewhere");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "newer");
    }
}
