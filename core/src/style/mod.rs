//! Neural style transfer: Gatys optimisation (losses, L-BFGS / Adam), the training of feed-forward style
//! networks with a perceptual loss, and colour preservation. The style networks' filters live in `filters/`.

pub mod color;
pub mod gatys;
pub mod lbfgs;
pub mod train;
pub mod transfer;

use anyhow::{Context, Result};
use image::RgbImage;
use std::path::Path;

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
