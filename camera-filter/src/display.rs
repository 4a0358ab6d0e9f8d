//! The live window (minifb): the filtered frame with a small overlay (filter, frames/s, model latency), a
//! before/after split view, and the keys: left/right filter, space split, S snapshot, R record, +/- strength,
//! Q/Esc quit.

use crate::pipeline::{Controls, Processed};
use crate::sink::FrameWriter;
use anyhow::{anyhow, Context, Result};
use ganime::io::image::save_image;
use ganime::io::text::{draw_text, text_width};
use image::{Rgb, RgbImage};
use minifb::{Key, KeyRepeat, Scale, ScaleMode, Window, WindowOptions};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Frames/s over the recent past (exponential average of the gaps between shown frames).
#[derive(Default)]
pub struct FpsMeter {
    last: Option<Instant>,
    mean_gap: Option<f64>,
}

impl FpsMeter {
    pub fn tick(&mut self) {
        let now = Instant::now();
        if let Some(last) = self.last.replace(now) {
            let gap = (now - last).as_secs_f64();
            self.mean_gap = Some(self.mean_gap.map_or(gap, |m| 0.9 * m + 0.1 * gap));
        }
    }
    pub fn fps(&self) -> f64 {
        self.mean_gap.map_or(0.0, |g| 1.0 / g.max(1e-6))
    }
}

/// The frame to show: the output, or left half before / right half after with a white divider.
pub fn compose(p: &Processed, split: bool) -> RgbImage {
    if !split || p.input.dimensions() != p.output.dimensions() {
        return p.output.clone();
    }
    let mut out = p.output.clone();
    let half = out.width() / 2;
    for (x, y, px) in out.enumerate_pixels_mut() {
        if x < half {
            *px = *p.input.get_pixel(x, y);
        } else if x < half + 2 {
            *px = Rgb([255, 255, 255]);
        }
    }
    out
}

/// Draws `lines` in a dark box at the top-left corner.
pub fn draw_overlay(img: &mut RgbImage, lines: &[String]) {
    const SIZE: f32 = 13.0;
    const LINE: u32 = 16;
    let width = lines.iter().map(|l| text_width(l, SIZE)).max().unwrap_or(0) + 8;
    let height = LINE * lines.len() as u32 + 6;
    for y in 0..height.min(img.height()) {
        for x in 0..width.min(img.width()) {
            let p = img.get_pixel_mut(x, y);
            p.0 = p.0.map(|v| v / 3);
        }
    }
    for (i, line) in lines.iter().enumerate() {
        draw_text(img, line, 4, 3 + (i as u32 * LINE) as i32, SIZE, Rgb([255, 255, 255]));
    }
}

pub struct Display {
    window: Window,
    buffer: Vec<u32>,
    size: (usize, usize),
    split: bool,
    fps: FpsMeter,
    last: Option<Processed>,
    snapshot_dir: PathBuf,
    recorder: Option<FrameWriter>,
    /// A short message shown under the overlay for a few seconds (snapshot saved, recording started…).
    notice: Option<(String, Instant)>,
}

impl Display {
    pub fn open(title: &str, w: u32, h: u32, snapshot_dir: PathBuf) -> Result<Self> {
        // Small frames (a 320x240 webcam) are shown at twice the size.
        let scale = if w < 480 { Scale::X2 } else { Scale::X1 };
        let options = WindowOptions { resize: true, scale, scale_mode: ScaleMode::AspectRatioStretch, ..WindowOptions::default() };
        let mut window = Window::new(title, w as usize, h as usize, options).map_err(|e| {
            let display = std::env::var("DISPLAY").unwrap_or_default();
            anyhow!("cannot open a window ({e}; DISPLAY='{display}'): run with --headless, with --output-y4m, or under a desktop / Xvfb")
        })?;
        window.set_target_fps(0);
        Ok(Display {
            window,
            buffer: Vec::new(),
            size: (w as usize, h as usize),
            split: false,
            fps: FpsMeter::default(),
            last: None,
            snapshot_dir,
            recorder: None,
            notice: None,
        })
    }

    pub fn is_open(&self) -> bool {
        self.window.is_open()
    }

    /// Shows a new frame with its overlay, and records it when recording.
    pub fn show(&mut self, p: Processed, controls: &Controls) -> Result<()> {
        self.fps.tick();
        let mut view = compose(&p, self.split);
        if let Some(r) = self.recorder.as_mut() {
            r.push(view.clone(), false)?;
        }
        let n = controls.names().len();
        let mut lines = vec![
            format!("{} ({}/{})  strength {:.0}%", p.filter, controls.current() + 1, n, p.strength * 100.0),
            format!("{:.1} frames/s  model {:.1} ms", self.fps.fps(), p.model.as_secs_f64() * 1e3),
        ];
        if self.split {
            lines.push("before | after".into());
        }
        if self.recorder.is_some() {
            lines.push("REC".into());
        }
        if let Some((text, at)) = &self.notice {
            if at.elapsed() < Duration::from_secs(3) {
                lines.push(text.clone());
            }
        }
        draw_overlay(&mut view, &lines);
        let (w, h) = (view.width() as usize, view.height() as usize);
        self.buffer.clear();
        self.buffer.extend(view.pixels().map(|p| (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32));
        self.size = (w, h);
        self.window.update_with_buffer(&self.buffer, w, h).map_err(|e| anyhow!("window update failed: {e}"))?;
        self.last = Some(p);
        Ok(())
    }

    /// Keeps the window responsive while no frame arrives.
    pub fn idle(&mut self) {
        self.window.update();
    }

    /// Acts on the keys pressed since the last update.
    pub fn handle_keys(&mut self, controls: &Controls) -> Result<()> {
        for key in self.window.get_keys_pressed(KeyRepeat::No) {
            match key {
                Key::Q | Key::Escape => controls.quit(),
                Key::Right => controls.switch(1),
                Key::Left => controls.switch(-1),
                Key::Space => self.split = !self.split,
                Key::Equal | Key::NumPadPlus => {
                    controls.nudge_strength(0.1);
                }
                Key::Minus | Key::NumPadMinus => {
                    controls.nudge_strength(-0.1);
                }
                Key::S => self.snapshot()?,
                Key::R => self.toggle_recording()?,
                _ => {}
            }
        }
        Ok(())
    }

    fn stamp() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn snapshot(&mut self) -> Result<()> {
        let Some(p) = &self.last else { return Ok(()) };
        let path = self.snapshot_dir.join(format!("ganime-snapshot-{}.png", Self::stamp()));
        save_image(&compose(p, self.split), &path).context("saving a snapshot")?;
        eprintln!("saved {}", path.display());
        self.notice = Some((format!("saved {}", path.file_name().unwrap_or_default().to_string_lossy()), Instant::now()));
        Ok(())
    }

    fn toggle_recording(&mut self) -> Result<()> {
        if let Some(r) = self.recorder.take() {
            let (dir, n, dropped) = (r.dir().to_path_buf(), r.count(), r.dropped);
            r.finish()?;
            eprintln!("recorded {n} frames to {} ({dropped} dropped: the disk was slower than the frames)", dir.display());
            self.notice = Some((format!("recorded {n} frames"), Instant::now()));
        } else {
            let dir = self.snapshot_dir.join(format!("ganime-recording-{}", Self::stamp()));
            self.recorder = Some(FrameWriter::new(&dir, false)?);
            eprintln!("recording to {}", dir.display());
        }
        Ok(())
    }

    /// Stops a recording in progress.
    pub fn finish(mut self) -> Result<()> {
        if self.recorder.is_some() {
            self.toggle_recording()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn split_view_and_overlay() {
        let p = Processed {
            input: Arc::new(RgbImage::from_pixel(40, 20, Rgb([10, 10, 10]))),
            output: RgbImage::from_pixel(40, 20, Rgb([200, 100, 0])),
            filter: "x".into(),
            strength: 1.0,
            captured_at: Instant::now(),
            model: Duration::ZERO,
        };
        assert_eq!(compose(&p, false), p.output);
        let split = compose(&p, true);
        assert_eq!(split.get_pixel(5, 5), &Rgb([10, 10, 10]));
        assert_eq!(split.get_pixel(20, 5), &Rgb([255, 255, 255]));
        assert_eq!(split.get_pixel(30, 5), &Rgb([200, 100, 0]));

        let mut img = RgbImage::from_pixel(200, 60, Rgb([200, 200, 200]));
        draw_overlay(&mut img, &["toon 30.0 frames/s".to_string()]);
        let bright_in_box = (0..60).filter(|&x| img.get_pixel(x, 10)[0] > 150).count();
        assert!(bright_in_box > 0 && img.get_pixel(2, 2)[0] < 100, "no text or box");
        assert_eq!(img.get_pixel(199, 59), &Rgb([200, 200, 200]));
    }

    #[test]
    fn fps_meter() {
        let mut m = FpsMeter::default();
        assert_eq!(m.fps(), 0.0);
        m.tick();
        std::thread::sleep(Duration::from_millis(20));
        m.tick();
        assert!(m.fps() > 10.0 && m.fps() < 55.0, "{}", m.fps());
    }
}
