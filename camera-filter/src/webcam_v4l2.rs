//! Webcam capture on Linux: V4L2 through `linuxvideo`, which issues the ioctls from Rust (no C headers, no
//! bindgen, no libclang), so `cargo build` needs nothing beyond Rust and a C compiler. YUYV frames are
//! converted here (BT.601, limited range, as UVC webcams send them); MJPEG frames are decoded with the `image`
//! crate.

use crate::source::Source;
use anyhow::{bail, Context, Result};
use image::RgbImage;
use linuxvideo::format::{PixFormat, PixelFormat};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, CapabilityFlags, Device, Fract};
use std::path::{Path, PathBuf};

const OTHER_SOURCES: &str = "use another source: --input FOLDER (image frames), --input FILE.y4m, \
--input - (Y4M on stdin, e.g. from ffmpeg -f yuv4mpegpipe), --input IMAGE, or --input synthetic";

/// The capture devices, as `(index, name, description)`: `index` N is `/dev/videoN`.
pub fn list() -> Result<Vec<(String, String, String)>> {
    let mut cameras = Vec::new();
    let devices = match linuxvideo::list() {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cameras),
        Err(e) => return Err(e).context("cannot list /dev/video*"),
    };
    for device in devices.flatten() {
        let (Ok(path), Ok(caps)) = (device.path(), device.capabilities()) else { continue };
        let Some(index) = video_index(&path) else { continue };
        if !caps.device_capabilities().contains(CapabilityFlags::VIDEO_CAPTURE) {
            continue; // metadata nodes and outputs: UVC cameras expose two /dev/video* each
        }
        cameras.push((index.to_string(), caps.card().to_string(), format!("{} ({})", path.display(), caps.driver())));
    }
    cameras.sort_by_key(|c| c.0.parse::<u32>().unwrap_or(u32::MAX));
    Ok(cameras)
}

/// N of `/dev/videoN`.
fn video_index(path: &Path) -> Option<u32> {
    path.file_name()?.to_str()?.strip_prefix("video")?.parse().ok()
}

/// Opens `/dev/video{index}`, asking for `size` (default 640×480) at `fps`, YUYV preferred (no JPEG decoding
/// per frame), else MJPEG.
pub fn open(index: u32, size: Option<(u32, u32)>, fps: Option<f64>) -> Result<Box<dyn Source>> {
    let path = PathBuf::from(format!("/dev/video{index}"));
    let cameras = list().unwrap_or_default();
    let found =
        || if cameras.is_empty() { "none".to_string() } else { cameras.iter().map(|(i, n, _)| format!("{i}: {n}")).collect::<Vec<_>>().join(", ") };
    if !path.exists() && cameras.is_empty() {
        bail!("no camera found (no video capture device under /dev/video*); {OTHER_SOURCES}");
    }
    if !path.exists() {
        bail!("no camera {index} ({} does not exist; cameras found: {}); {OTHER_SOURCES}", path.display(), found());
    }
    // Opened even when the listing skipped it: a permission error (not in the `video` group) is shown as one.
    let device = Device::open(&path).with_context(|| format!("cannot open camera {index} ({}); cameras found: {}", path.display(), found()))?;
    let name = device.capabilities().map(|c| c.card().to_string()).unwrap_or_default();
    let offered = device.formats(BufType::VIDEO_CAPTURE).filter_map(|f| f.ok().map(|f| f.pixel_format())).collect::<Vec<_>>();
    let Some(format) = [PixelFormat::YUYV, PixelFormat::MJPG].into_iter().find(|f| offered.contains(f)) else {
        bail!("camera {index} ({name}) offers {offered:?}; ganime reads YUYV and MJPEG");
    };
    let (w, h) = size.unwrap_or((640, 480));
    let capture = device.video_capture(PixFormat::new(w, h, format)).with_context(|| format!("camera {index} ({name}) refuses to capture"))?;
    let f = capture.format();
    let layout =
        FrameLayout { width: f.width(), height: f.height(), stride: f.bytes_per_line() as usize, mjpeg: f.pixel_format() == PixelFormat::MJPG };
    let mut rate = 30.0;
    if let Some(fps) = fps {
        // A rate the driver cannot do is replaced by the nearest it can; keep what it reports.
        if let Ok(interval) = capture.set_frame_interval(Fract::new(1000, (fps * 1000.0).round().max(1.0) as u32)) {
            if interval.numerator() > 0 {
                rate = interval.denominator() as f64 / interval.numerator() as f64;
            }
        }
    }
    let stream = capture.into_stream().with_context(|| format!("camera {index} ({name}) does not start streaming"))?;
    Ok(Box::new(Webcam { stream, layout, fps: rate, what: format!("camera {index} ({name})") }))
}

/// What the driver chose for the frames.
struct FrameLayout {
    width: u32,
    height: u32,
    stride: usize,
    mjpeg: bool,
}

struct Webcam {
    stream: ReadStream,
    layout: FrameLayout,
    fps: f64,
    what: String,
}

impl Source for Webcam {
    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let FrameLayout { width: w, height: h, stride, mjpeg } = self.layout;
        let frame = self
            .stream
            .dequeue(|buf| {
                let frame = if mjpeg {
                    image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg).map(|i| i.to_rgb8()).map_err(std::io::Error::other)
                } else {
                    yuyv_to_rgb(&buf, w, h, stride).map_err(std::io::Error::other)
                };
                Ok(frame)
            })
            .with_context(|| format!("{}: capture failed", self.what))?
            .with_context(|| format!("{}: bad frame", self.what))?;
        Ok(Some(frame))
    }
    fn fps(&self) -> f64 {
        self.fps
    }
    fn restart(&mut self) -> Result<bool> {
        Ok(false)
    }
    fn paced_by_device(&self) -> bool {
        true
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// YUYV 4:2:2 (`Y0 U Y1 V` per pixel pair, rows `stride` bytes apart) to RGB, BT.601 limited range.
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32, stride: usize) -> Result<RgbImage> {
    let (w, h) = (width as usize, height as usize);
    let stride = if stride == 0 { 2 * w } else { stride };
    if w == 0 || h == 0 || w % 2 != 0 || stride < 2 * w {
        bail!("unusable YUYV frame layout {width}x{height}, {stride} bytes per row");
    }
    let needed = stride.checked_mul(h - 1).and_then(|n| n.checked_add(2 * w)).context("frame size overflows")?;
    if data.len() < needed {
        bail!("YUYV frame of {} bytes, {width}x{height} needs {needed}", data.len());
    }
    let mut out = RgbImage::new(width, height);
    let pixels: &mut [u8] = &mut out;
    for y in 0..h {
        let row = &data[y * stride..y * stride + 2 * w];
        let dst = &mut pixels[y * w * 3..(y + 1) * w * 3];
        for (pair, rgb) in row.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
            let (u, v) = (pair[1] as f32 - 128.0, pair[3] as f32 - 128.0);
            for (k, &luma) in [pair[0], pair[2]].iter().enumerate() {
                let c = 1.164 * (luma as f32 - 16.0);
                let px = [c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u];
                for (d, s) in rgb[3 * k..3 * k + 3].iter_mut().zip(px) {
                    *d = s.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Black, white and pure red as a webcam encodes them (BT.601 limited range), and row padding skipped.
    #[test]
    fn yuyv_known_colours_and_stride() {
        // Red (255, 0, 0): Y 81, U 90, V 240. Black: Y 16, U = V = 128. White: Y 235.
        let row0 = [16, 128, 235, 128, 0xEE, 0xEE]; // black, white, then 2 padding bytes
        let row1 = [81, 90, 81, 240, 0xEE, 0xEE];
        let data: Vec<u8> = row0.iter().chain(&row1).copied().collect();
        let img = yuyv_to_rgb(&data, 2, 2, 6).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
        let red = img.get_pixel(0, 1).0;
        assert!(red[0] >= 250 && red[1] <= 3 && red[2] <= 3, "{red:?}");
        assert_eq!(img.get_pixel(0, 1), img.get_pixel(1, 1));
    }

    #[test]
    fn short_or_odd_frames_are_errors() {
        assert!(yuyv_to_rgb(&[0; 7], 2, 2, 4).is_err());
        assert!(yuyv_to_rgb(&[0; 12], 3, 2, 6).is_err());
        assert!(yuyv_to_rgb(&[0; 8], 2, 2, 2).is_err());
        assert!(yuyv_to_rgb(&[0; 8], 2, 2, 0).is_ok());
    }

    #[test]
    fn device_index_from_path() {
        assert_eq!(video_index(Path::new("/dev/video12")), Some(12));
        assert_eq!(video_index(Path::new("/dev/vbi0")), None);
    }
}
