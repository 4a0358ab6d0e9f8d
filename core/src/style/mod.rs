//! Neural style transfer: Gatys optimisation (losses, L-BFGS / Adam), feed-forward style networks
//! (`models::transformer_net`) as filters, their training with a perceptual loss, and colour preservation.

pub mod arbitrary_filter;
pub mod bench;
pub mod color;
pub mod filter;
pub mod gatys;
pub mod lbfgs;
pub mod tf_style_filter;
pub mod train;
pub mod transfer;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use std::path::Path;

/// RGB image -> `[1, 3, H, W]` f32 in [0, 1].
pub fn image_to_rgb01(img: &RgbImage, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let data: Vec<f32> = img.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
    Ok(Tensor::from_vec(data, (h as usize, w as usize, 3), device)?.permute((2, 0, 1))?.unsqueeze(0)?.contiguous()?)
}

/// `[1, 3, H, W]` with values on a `scale` range (1 for [0, 1], 255 for 0..255) -> RGB image (clamped).
pub fn tensor_to_image(t: &Tensor, scale: f32) -> Result<RgbImage> {
    let (_, c, h, w) = t.dims4()?;
    if c != 3 {
        anyhow::bail!("expected 3 channels, got {c}");
    }
    let v: Vec<f32> = t.get(0)?.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.permute((1, 2, 0))?.flatten_all()?.to_vec1()?;
    let bytes = v.iter().map(|x| (x / scale * 255.0).round().clamp(0.0, 255.0) as u8).collect();
    RgbImage::from_raw(w as u32, h as u32, bytes).context("image buffer size")
}

/// Opens an image file as RGB, naming the file on failure.
pub fn open_rgb(path: &Path) -> Result<RgbImage> {
    Ok(image::open(path).with_context(|| format!("cannot read image {}", path.display()))?.to_rgb8())
}

/// Scales `img` so its longer side is `max_side` (aspect kept; Catmull-Rom).
pub fn resize_max_side(img: &RgbImage, max_side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let s = max_side as f64 / w.max(h) as f64;
    let (nw, nh) = (((w as f64 * s).round() as u32).max(1), ((h as f64 * s).round() as u32).max(1));
    if (nw, nh) == (w, h) {
        return img.clone();
    }
    image::imageops::resize(img, nw, nh, image::imageops::FilterType::CatmullRom)
}

/// A progress bar over `total` steps starting at `position` (hidden when `quiet`).
pub fn progress_bar(total: u64, position: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}").expect("valid template"));
    bar.set_position(position);
    bar
}
