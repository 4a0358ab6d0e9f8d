//! Webcam capture through nokhwa on macOS (AVFoundation) and Windows (Media Foundation); Linux uses
//! `webcam_v4l2.rs`.

use crate::source::Source;
use anyhow::{anyhow, bail, Context, Result};
use image::RgbImage;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};
use nokhwa::Camera;

const OTHER_SOURCES: &str = "use another source: --input FOLDER (image frames), --input FILE.y4m, \
--input - (Y4M on stdin, e.g. from ffmpeg -f yuv4mpegpipe), --input IMAGE, or --input synthetic";

/// The cameras the platform reports, as `(index, name, description)`.
pub fn list() -> Result<Vec<(String, String, String)>> {
    let cameras = nokhwa::query(ApiBackend::Auto).map_err(|e| anyhow!("cannot list cameras: {e}"))?;
    Ok(cameras.iter().map(|c| (c.index().to_string(), c.human_name(), c.description().to_string())).collect())
}

/// Opens camera `index`, asking for the nearest format to `size` at `fps` (uncompressed YUYV preferred: no
/// JPEG decoding per frame).
pub fn open(index: u32, size: Option<(u32, u32)>, fps: Option<f64>) -> Result<Box<dyn Source>> {
    let cameras = list().unwrap_or_default();
    if cameras.is_empty() {
        bail!("no camera found (the system reports no video capture device); {OTHER_SOURCES}");
    }
    let (w, h) = size.unwrap_or((640, 480));
    let request = CameraFormat::new(Resolution::new(w, h), FrameFormat::YUYV, fps.unwrap_or(30.0).round() as u32);
    let format = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(request));
    let names = cameras.iter().map(|(i, n, _)| format!("{i}: {n}")).collect::<Vec<_>>().join(", ");
    let mut camera =
        Camera::new(CameraIndex::Index(index), format).map_err(|e| anyhow!("cannot open camera {index} ({e}); cameras found: {names}"))?;
    camera.open_stream().map_err(|e| anyhow!("camera {index} does not start streaming: {e}"))?;
    let name = camera.info().human_name();
    Ok(Box::new(Webcam { fps: camera.frame_rate().max(1) as f64, camera, what: format!("camera {index} ({name})") }))
}

struct Webcam {
    camera: Camera,
    fps: f64,
    what: String,
}

impl Source for Webcam {
    fn next_frame(&mut self) -> Result<Option<RgbImage>> {
        let buffer = self.camera.frame().map_err(|e| anyhow!("{}: capture failed: {e}", self.what))?;
        let res = buffer.resolution();
        let frame = if buffer.source_frame_format() == FrameFormat::MJPEG {
            // nokhwa's MJPEG decoder needs a C JPEG library; the image crate's decoder is already here.
            image::load_from_memory_with_format(buffer.buffer(), image::ImageFormat::Jpeg)
                .with_context(|| format!("{}: bad MJPEG frame", self.what))?
                .to_rgb8()
        } else {
            let rgb = buffer.decode_image::<RgbFormat>().map_err(|e| anyhow!("{}: cannot decode frame: {e}", self.what))?;
            RgbImage::from_raw(res.width_x, res.height_y, rgb.into_raw())
                .with_context(|| format!("{}: frame buffer does not match {}x{}", self.what, res.width_x, res.height_y))?
        };
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
