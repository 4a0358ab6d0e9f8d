//! Where frames come from: a webcam, a folder of frames, a Y4M stream (file or stdin), a still image, or a
//! synthetic moving pattern. Every source yields RGB frames until it ends; `restart` lets the capture loop
//! play a finite source again (`--loop`).

use anyhow::{bail, Context, Result};
use ganime::io::y4m::Y4mReader;
use image::{Rgb, RgbImage};
use std::io::BufRead;
use std::path::{Path, PathBuf};

pub trait Source {
    /// The next frame; `None` when the source has ended.
    fn next_frame(&mut self) -> Result<Option<RgbImage>>;
    /// Frames per second the source runs at (a camera's, a Y4M header's, or the requested rate).
    fn fps(&self) -> f64;
    /// Starts again from the first frame; false if this source cannot (stdin, a camera).
    fn restart(&mut self) -> Result<bool>;
    /// For messages: what this source is.
    fn describe(&self) -> String;
    /// True for a device that delivers frames at its own rate (a camera); other sources are paced by the
    /// capture loop in live mode.
    fn paced_by_device(&self) -> bool {
        false
    }
}

/// What `--input` (and `--camera`) name.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    Camera(u32),
    Folder(PathBuf),
    Y4mFile(PathBuf),
    Y4mStdin,
    Image(PathBuf),
    Synthetic,
}

const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "bmp"];

impl SourceSpec {
    /// `-` (Y4M on stdin), `synthetic`, a folder, a `.y4m` file or an image file.
    pub fn parse(input: &str) -> Result<Self> {
        if input == "-" {
            return Ok(SourceSpec::Y4mStdin);
        }
        if input == "synthetic" {
            return Ok(SourceSpec::Synthetic);
        }
        let path = PathBuf::from(input);
        if path.is_dir() {
            return Ok(SourceSpec::Folder(path));
        }
        if !path.exists() {
            bail!("--input {input}: no such file or folder (give a frame folder, a .y4m file, '-' for Y4M on stdin, an image, or 'synthetic')");
        }
        let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
        if ext == "y4m" {
            Ok(SourceSpec::Y4mFile(path))
        } else if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            Ok(SourceSpec::Image(path))
        } else {
            bail!("--input {input}: unknown file type '.{ext}' (expected .y4m or an image: {})", IMAGE_EXTENSIONS.join(", "))
        }
    }
}

/// Opens a source. `size` is the frame size asked for (camera request, synthetic size); `fps` the rate asked
/// for (camera request; for folders, images and the pattern it is their rate).
pub fn open(spec: &SourceSpec, size: Option<(u32, u32)>, fps: Option<f64>) -> Result<Box<dyn Source>> {
    Ok(match spec {
        SourceSpec::Camera(index) => crate::webcam::open(*index, size, fps)?,
        SourceSpec::Folder(dir) => Box::new(Frames::folder(dir, fps.unwrap_or(30.0))?),
        SourceSpec::Image(path) => {
            Box::new(Frames { files: vec![path.clone()], next: 0, fps: fps.unwrap_or(30.0), what: format!("image {}", path.display()) })
        }
        SourceSpec::Y4mFile(path) => Box::new(Y4mSource::file(path, fps)?),
        SourceSpec::Y4mStdin => {
            let stdin: Box<dyn BufRead> = Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()));
            let reader = Y4mReader::new(stdin).context("reading Y4M from stdin (--input -)")?;
            Box::new(Y4mSource { fps: fps.unwrap_or(reader.header().fps_f64()), reader, path: None })
        }
        SourceSpec::Synthetic => {
            let (w, h) = size.unwrap_or((640, 480));
            Box::new(Synthetic { w, h, t: 0, fps: fps.unwrap_or(30.0) })
        }
    })
}

/// Image files played in name order (a frame folder, or one still image).
struct Frames {
    files: Vec<PathBuf>,
    next: usize,
    fps: f64,
    what: String,
}

impl Frames {
    fn folder(dir: &Path, fps: f64) -> Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read frame folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str())))
            .collect();
        if files.is_empty() {
            bail!("frame folder {} has no images ({})", dir.display(), IMAGE_EXTENSIONS.join(", "));
        }
        files.sort();
        Ok(Frames { what: format!("{} frames in {}", files.len(), dir.display()), files, next: 0, fps })
    }
}

impl Source for Frames {
    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let Some(path) = self.files.get(self.next) else { return Ok(None) };
        self.next += 1;
        let img = image::open(path).with_context(|| format!("cannot decode frame {}", path.display()))?;
        Ok(Some(img.to_rgb8()))
    }
    fn fps(&self) -> f64 {
        self.fps
    }
    fn restart(&mut self) -> Result<bool> {
        self.next = 0;
        Ok(true)
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

struct Y4mSource {
    reader: Y4mReader<Box<dyn BufRead>>,
    fps: f64,
    path: Option<PathBuf>,
}

impl Y4mSource {
    fn file(path: &Path, fps: Option<f64>) -> Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let input: Box<dyn BufRead> = Box::new(std::io::BufReader::with_capacity(1 << 20, file));
        let reader = Y4mReader::new(input).with_context(|| format!("reading {}", path.display()))?;
        Ok(Y4mSource { fps: fps.unwrap_or(reader.header().fps_f64()), reader, path: Some(path.to_path_buf()) })
    }
}

impl Source for Y4mSource {
    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let what = self.describe();
        self.reader.next_frame().with_context(|| format!("reading {what}"))
    }
    fn fps(&self) -> f64 {
        self.fps
    }
    fn restart(&mut self) -> Result<bool> {
        let Some(path) = self.path.clone() else { return Ok(false) };
        *self = Y4mSource::file(&path, Some(self.fps))?;
        Ok(true)
    }
    fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("Y4M file {}", p.display()),
            None => "Y4M on stdin".into(),
        }
    }
}

/// A moving test pattern: colour bars, a gradient, and a bright disc circling the frame, one cycle in
/// `CYCLE` frames (the end of the source unless it loops).
pub struct Synthetic {
    w: u32,
    h: u32,
    t: u32,
    fps: f64,
}

impl Synthetic {
    pub const CYCLE: u32 = 120;

    pub fn frame(w: u32, h: u32, t: u32) -> RgbImage {
        const BARS: [[u8; 3]; 7] = [[235, 235, 235], [235, 235, 16], [16, 235, 235], [16, 235, 16], [235, 16, 235], [235, 16, 16], [16, 16, 235]];
        let phase = t as f32 / Self::CYCLE as f32 * std::f32::consts::TAU;
        let (cx, cy) = (w as f32 * (0.5 + 0.3 * phase.cos()), h as f32 * (0.5 + 0.3 * phase.sin()));
        let r2 = (w.min(h) as f32 * 0.12).powi(2);
        RgbImage::from_fn(w, h, |x, y| {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            if dx * dx + dy * dy < r2 {
                return Rgb([255, 220, 60]);
            }
            if y < h * 2 / 3 {
                Rgb(BARS[(x * 7 / w.max(1)) as usize])
            } else {
                let v = ((x + t * 4) % w.max(1)) as f32 / w as f32 * 255.0;
                Rgb([v as u8, (255.0 - v) as u8, 128])
            }
        })
    }
}

impl Source for Synthetic {
    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        if self.t >= Self::CYCLE {
            return Ok(None);
        }
        self.t += 1;
        Ok(Some(Self::frame(self.w, self.h, self.t - 1)))
    }
    fn fps(&self) -> f64 {
        self.fps
    }
    fn restart(&mut self) -> Result<bool> {
        self.t = 0;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("synthetic pattern {}x{}", self.w, self.h)
    }
}

/// A source over frames already in memory (benchmarks: no decoding in the timed loop).
pub struct InMemory {
    frames: Vec<RgbImage>,
    next: usize,
    fps: f64,
}

impl InMemory {
    pub fn new(frames: Vec<RgbImage>, fps: f64) -> Self {
        InMemory { frames, next: 0, fps }
    }
}

impl Source for InMemory {
    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        self.next += 1;
        Ok(self.frames.get(self.next - 1).cloned())
    }
    fn fps(&self) -> f64 {
        self.fps
    }
    fn restart(&mut self) -> Result<bool> {
        self.next = 0;
        Ok(true)
    }
    fn describe(&self) -> String {
        format!("{} frames in memory", self.frames.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inputs_and_names_bad_ones() -> Result<()> {
        let dir = tempfile::tempdir()?;
        assert_eq!(SourceSpec::parse("-")?, SourceSpec::Y4mStdin);
        assert_eq!(SourceSpec::parse("synthetic")?, SourceSpec::Synthetic);
        assert_eq!(SourceSpec::parse(dir.path().to_str().unwrap())?, SourceSpec::Folder(dir.path().into()));
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "x")?;
        assert!(format!("{:#}", SourceSpec::parse(txt.to_str().unwrap()).err().unwrap()).contains(".txt"));
        assert!(format!("{:#}", SourceSpec::parse("/no/such/clip.y4m").err().unwrap()).contains("no such file"));
        let err = open(&SourceSpec::Folder(dir.path().into()), None, None).err().unwrap();
        assert!(format!("{err:#}").contains("has no images"));
        Ok(())
    }

    #[test]
    fn synthetic_moves_and_ends_after_a_cycle_unless_restarted() -> Result<()> {
        let mut s = open(&SourceSpec::Synthetic, Some((64, 48)), None)?;
        let first = s.next_frame()?.unwrap();
        assert_eq!(first.dimensions(), (64, 48));
        assert_ne!(s.next_frame()?.unwrap(), first, "the pattern does not move");
        let mut n = 2;
        while s.next_frame()?.is_some() {
            n += 1;
        }
        assert_eq!(n, Synthetic::CYCLE);
        assert!(s.restart()?);
        assert_eq!(s.next_frame()?.unwrap(), first);
        Ok(())
    }

    #[test]
    fn folder_frames_play_in_name_order() -> Result<()> {
        let dir = tempfile::tempdir()?;
        for (name, v) in [("b.png", 20u8), ("a.png", 10), ("c.jpg.txt", 0)] {
            if name.ends_with(".png") {
                RgbImage::from_pixel(4, 4, Rgb([v; 3])).save(dir.path().join(name))?;
            } else {
                std::fs::write(dir.path().join(name), "not an image")?;
            }
        }
        let mut s = open(&SourceSpec::Folder(dir.path().into()), None, Some(12.0))?;
        assert_eq!(s.fps(), 12.0);
        assert_eq!(s.next_frame()?.unwrap().get_pixel(0, 0)[0], 10);
        assert_eq!(s.next_frame()?.unwrap().get_pixel(0, 0)[0], 20);
        assert!(s.next_frame()?.is_none());
        Ok(())
    }
}
