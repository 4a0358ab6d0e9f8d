//! Where filtered frames go besides the window: a Y4M stream (stdout or a file), numbered PNG frames, and the
//! window's snapshot/recording files.

use anyhow::{bail, Context, Result};
use ganime::io::image::save_image;
use ganime::io::y4m::Y4mWriter;
use image::imageops::{resize, FilterType};
use image::RgbImage;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::thread::JoinHandle;

/// `--output-y4m -|FILE`. A file is written under a temporary name and renamed when the run ends, so a
/// stopped run never leaves a truncated stream where a good one was.
pub struct Y4mOut {
    target: Target,
    fps: (u32, u32),
    writer: Option<Y4mWriter<Box<dyn Write>>>,
}

enum Target {
    Stdout,
    File { path: PathBuf, tmp: PathBuf },
}

/// What happened to a frame sent to the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Written,
    /// The reader closed the pipe (EPIPE): stop quietly.
    ReaderGone,
}

impl Y4mOut {
    pub fn new(target: &str, fps: f64) -> Result<Self> {
        // Frame rate as a fraction: 30000/1001-style rates stay exact enough at millihertz.
        let (num, den) = ((fps * 1000.0).round().max(1.0) as u32, 1000);
        let gcd = (1..=den).rev().find(|d| num % d == 0 && den % d == 0).unwrap_or(1);
        let fps = (num / gcd, den / gcd);
        let target = if target == "-" {
            Target::Stdout
        } else {
            let path = PathBuf::from(target);
            let name = path.file_name().with_context(|| format!("--output-y4m {target}: not a file path"))?;
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            if !dir.is_dir() {
                bail!("--output-y4m {target}: folder {} does not exist", dir.display());
            }
            let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
            Target::File { path, tmp }
        };
        Ok(Y4mOut { target, fps, writer: None })
    }

    /// Writes a frame; the stream's size is the first frame's, later frames of another size are resized to it.
    pub fn send(&mut self, frame: &RgbImage) -> Result<Sent> {
        if self.writer.is_none() {
            let out: Box<dyn Write> = match &self.target {
                Target::Stdout => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout())),
                Target::File { tmp, .. } => Box::new(BufWriter::with_capacity(
                    1 << 20,
                    std::fs::File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
                )),
            };
            match Y4mWriter::new(out, frame.width(), frame.height(), self.fps) {
                Ok(w) => self.writer = Some(w),
                Err(e) => return self.failed(e),
            }
        }
        let writer = self.writer.as_mut().expect("opened above");
        let (w, h) = writer.size();
        let result =
            if frame.dimensions() == (w, h) { writer.write_frame(frame) } else { writer.write_frame(&resize(frame, w, h, FilterType::Triangle)) };
        match result {
            Ok(()) => Ok(Sent::Written),
            Err(e) => self.failed(e),
        }
    }

    fn failed(&mut self, e: std::io::Error) -> Result<Sent> {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            self.writer = None;
            return Ok(Sent::ReaderGone);
        }
        Err(e).with_context(|| format!("writing the Y4M stream to {}", self.describe()))
    }

    fn describe(&self) -> String {
        match &self.target {
            Target::Stdout => "stdout".into(),
            Target::File { path, .. } => path.display().to_string(),
        }
    }

    /// Flushes, and moves a file into place (`ok`) or removes the partial one.
    pub fn finish(mut self, ok: bool) -> Result<()> {
        let flushed = match self.writer.take() {
            Some(w) => w.into_inner().flush().map_err(anyhow::Error::from),
            None => Ok(()),
        };
        if let Target::File { path, tmp } = &self.target {
            if ok && flushed.is_ok() && tmp.exists() {
                std::fs::rename(tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
            } else {
                let _ = std::fs::remove_file(tmp);
            }
        }
        match flushed {
            Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) => Ok(()),
            other => other.with_context(|| format!("finishing the Y4M stream to {}", self.describe())),
        }
    }
}

/// Saves frames as `frame_000001.png`, … on a background thread, so that PNG encoding does not slow the
/// display. When the writer falls behind, frames are dropped (and counted) rather than queued without bound.
pub struct FrameWriter {
    dir: PathBuf,
    tx: Option<SyncSender<(u64, RgbImage)>>,
    thread: Option<JoinHandle<Result<()>>>,
    next: u64,
    pub dropped: u64,
}

impl FrameWriter {
    /// `lossless`: wait for the writer instead of dropping (offline runs, where every frame must be saved).
    pub fn new(dir: &Path, lossless: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create folder {}", dir.display()))?;
        let (tx, rx) = sync_channel::<(u64, RgbImage)>(if lossless { 4 } else { 16 });
        let out = dir.to_path_buf();
        let thread = std::thread::Builder::new().name("frame-writer".into()).spawn(move || {
            for (n, img) in rx {
                save_image(&img, &out.join(format!("frame_{n:06}.png")))?;
            }
            Ok(())
        })?;
        Ok(FrameWriter { dir: dir.to_path_buf(), tx: Some(tx), thread: Some(thread), next: 1, dropped: 0 })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn push(&mut self, frame: RgbImage, lossless: bool) -> Result<()> {
        let tx = self.tx.as_ref().expect("open until finish");
        let item = (self.next, frame);
        let sent = if lossless {
            tx.send(item).map_err(|_| ())
        } else {
            match tx.try_send(item) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => {
                    self.dropped += 1;
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => Err(()),
            }
        };
        if sent.is_err() {
            // The writer thread stopped on an error: report it.
            return self.finish_inner();
        }
        self.next += 1;
        Ok(())
    }

    /// Frames handed to the writer so far.
    pub fn count(&self) -> u64 {
        self.next - 1
    }

    fn finish_inner(&mut self) -> Result<()> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow::anyhow!("the frame writer panicked"))?,
            None => Ok(()),
        }
    }

    pub fn finish(mut self) -> Result<()> {
        self.finish_inner()
    }
}
