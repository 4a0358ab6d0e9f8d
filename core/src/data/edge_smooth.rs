//! AnimeGAN's "edge-smoothed anime" images (Chen et al. 2019, `tools/edge_smooth.py`): the discriminator is
//! shown anime pictures whose line edges were blurred, labelled fake, so the generator learns that crisp edges
//! are what makes a picture anime. Recipe: Canny edges of the grayscale picture, dilated by a 5×5 square, and
//! inside that mask each pixel replaced by a 5×5 Gaussian average (OpenCV's `getGaussianKernel(5, 0)`, which
//! for σ ≤ 0 and 5 taps is its fixed binomial table [1, 4, 6, 4, 1] / 16) with reflect-101 borders. Canny and dilation come from `imageproc`; the masked blur is a few lines here
//! because no crate blurs only inside a mask.

use crate::data::ImageFolder;
use anyhow::{Context, Result};
use image::{GrayImage, Luma, RgbImage};
use imageproc::distance_transform::Norm;
use std::path::{Path, PathBuf};

/// Canny hysteresis thresholds of the reference script (`cv2.Canny(gray, 100, 200)`).
pub const CANNY_LOW: f32 = 100.0;
pub const CANNY_HIGH: f32 = 200.0;
const K: usize = 5;

/// The outer product of OpenCV's `getGaussianKernel(5, 0)` = [1, 4, 6, 4, 1] / 16 (its fixed table for small
/// kernels when σ is not given).
pub fn gaussian_kernel() -> [[f32; K]; K] {
    const TAPS: [f32; K] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
    TAPS.map(|gy| TAPS.map(|gx| gy * gx))
}

/// BT.601 luma as OpenCV's `imread(f, 0)` computes it (the `image` crate's own grayscale uses Rec. 709).
fn luma601(img: &RgbImage) -> GrayImage {
    GrayImage::from_fn(img.width(), img.height(), |x, y| {
        let [r, g, b] = img.get_pixel(x, y).0;
        Luma([(0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32).round().clamp(0.0, 255.0) as u8])
    })
}

/// The pixels that get blurred: Canny edges dilated by a 5×5 square (255 inside, 0 outside).
pub fn edge_mask(img: &RgbImage) -> GrayImage {
    let edges = imageproc::edges::canny(&luma601(img), CANNY_LOW, CANNY_HIGH);
    imageproc::morphology::dilate(&edges, Norm::LInf, (K / 2) as u8)
}

/// Reflect-101 index (`np.pad(mode='reflect')`): -1 -> 1, n -> n - 2.
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

/// `img` with every pixel inside `mask` replaced by the 5×5 Gaussian average of its neighbourhood.
pub fn blur_inside(img: &RgbImage, mask: &GrayImage) -> RgbImage {
    let kernel = gaussian_kernel();
    let (w, h) = img.dimensions();
    let mut out = img.clone();
    for y in 0..h {
        for x in 0..w {
            if mask.get_pixel(x, y).0[0] == 0 {
                continue;
            }
            let mut acc = [0f32; 3];
            for (dy, row) in kernel.iter().enumerate() {
                let sy = reflect(y as isize + dy as isize - 2, h as usize) as u32;
                for (dx, &k) in row.iter().enumerate() {
                    let sx = reflect(x as isize + dx as isize - 2, w as usize) as u32;
                    let p = img.get_pixel(sx, sy).0;
                    for c in 0..3 {
                        acc[c] += k * p[c] as f32;
                    }
                }
            }
            out.put_pixel(x, y, image::Rgb(acc.map(|v| v.round().clamp(0.0, 255.0) as u8)));
        }
    }
    out
}

/// The edge-smoothed version of an anime picture.
pub fn smooth_edges(img: &RgbImage) -> RgbImage {
    blur_inside(img, &edge_mask(img))
}

/// Writes the edge-smoothed version of every image in `anime` to `cache` (same relative paths, PNG), skipping
/// the ones already there, and returns `cache`. Each picture is first brought to the `size × size` centre
/// square the loader trains on, then smoothed (the reference resizes first: smoothing at file size and
/// shrinking after would blur edges D never sees, and leave the ones it sees sharp). Made once per run folder,
/// so a resumed run reuses it.
pub fn cache_smoothed(anime: &Path, cache: &Path, size: u32) -> Result<PathBuf> {
    let folder = ImageFolder::open(anime)?;
    for path in folder.paths() {
        let rel = path.strip_prefix(anime).unwrap_or(path);
        let target = cache.join(rel).with_extension("png");
        if target.is_file() {
            continue;
        }
        let img = image::open(path).with_context(|| format!("cannot decode anime image {}", path.display()))?.to_rgb8();
        crate::io::image::save_image(&smooth_at_size(&img, size), &target)?;
    }
    Ok(cache.to_path_buf())
}

/// The edge-smoothed `size × size` training view of an anime picture.
pub fn smooth_at_size(img: &RgbImage, size: u32) -> RgbImage {
    smooth_edges(&crate::data::center_square(img, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_matches_opencv() {
        let k = gaussian_kernel();
        assert_eq!(k[2], [6.0 / 256.0, 24.0 / 256.0, 36.0 / 256.0, 24.0 / 256.0, 6.0 / 256.0]);
        let total: f32 = k.iter().flatten().sum();
        assert!((total - 1.0).abs() < 1e-6);
    }

    #[test]
    fn reflect_101() {
        let got: Vec<usize> = (-2..7).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, vec![2, 1, 0, 1, 2, 3, 4, 3, 2]);
    }

    /// A black/white vertical edge: the mask covers the edge ±2 px and nothing far away; a masked pixel is the
    /// hand-computed Gaussian average, an unmasked one is unchanged.
    #[test]
    fn smooths_only_around_edges() {
        let img = RgbImage::from_fn(20, 12, |x, _| if x < 10 { image::Rgb([0, 0, 0]) } else { image::Rgb([200, 100, 40]) });
        let mask = edge_mask(&img);
        assert!(mask.get_pixel(9, 6).0[0] > 0 && mask.get_pixel(10, 6).0[0] > 0, "edge pixels masked");
        assert_eq!(mask.get_pixel(2, 6).0[0], 0);
        assert_eq!(mask.get_pixel(17, 6).0[0], 0);
        let out = blur_inside(&img, &mask);
        assert_eq!(out.get_pixel(2, 6), img.get_pixel(2, 6));
        // At x = 10 the 5-wide window covers columns 8..=12: weights of columns 10, 11, 12 see the bright side.
        let k = gaussian_kernel();
        let bright: f32 = (0..5).map(|dy| k[dy][2] + k[dy][3] + k[dy][4]).sum();
        let want = [200.0 * bright, 100.0 * bright, 40.0 * bright].map(|v: f32| v.round() as u8);
        assert_eq!(out.get_pixel(10, 6).0, want);
        assert_ne!(out.get_pixel(10, 6), img.get_pixel(10, 6));
    }

    /// Smoothing happens at the training size: the cached picture has the loader's size, and equals smoothing
    /// the resized picture (not resizing the smoothed one, which the old order did).
    #[test]
    fn smooths_after_resizing() -> Result<()> {
        // Thin diagonal lines at 96 px: at 48 px they are still edges, blurred differently from a shrunk blur.
        let img = RgbImage::from_fn(96, 80, |x, y| if (x + 2 * y) % 12 < 2 { image::Rgb([20, 20, 30]) } else { image::Rgb([230, 210, 190]) });
        let dir = std::env::temp_dir().join(format!("ganime-smooth-{}", std::process::id()));
        let (src, cache) = (dir.join("anime"), dir.join("cache"));
        std::fs::create_dir_all(&src)?;
        img.save(src.join("a.png"))?;
        cache_smoothed(&src, &cache, 48)?;
        let cached = image::open(cache.join("a.png"))?.to_rgb8();
        assert_eq!(cached.dimensions(), (48, 48));
        let want = smooth_edges(&crate::data::center_square(&img, 48));
        assert_eq!(cached, want);
        let old_order = crate::data::center_square(&smooth_edges(&img), 48);
        assert_ne!(cached, old_order, "smoothing before resizing gives a different picture");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
