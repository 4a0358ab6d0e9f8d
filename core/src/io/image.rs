//! Images <-> tensors, grids like torchvision's `make_grid`, PNG output.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use image::{Rgb, RgbImage};
use std::path::Path;

/// The value range of a network's pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelRange {
    /// [-1, 1] (GANs, AnimeGANv2, CycleGAN).
    Signed,
    /// [0, 1] (style networks' input, Gatys).
    Unit,
    /// 0..255 (fast-neural-style and TensorFlow style networks' output).
    Byte,
}

impl PixelRange {
    /// The 8-bit value of `x` (rounded, clamped).
    fn byte_of(self, x: f32) -> u8 {
        match self {
            PixelRange::Signed => ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8,
            PixelRange::Unit => (x * 255.0).round().clamp(0.0, 255.0) as u8,
            PixelRange::Byte => (x / 255.0 * 255.0).round().clamp(0.0, 255.0) as u8,
        }
    }

    /// `b` (0..255) in this range.
    fn value_of(self, b: u8) -> f32 {
        match self {
            PixelRange::Signed => b as f32 / 127.5 - 1.0,
            PixelRange::Unit => b as f32 / 255.0,
            PixelRange::Byte => b as f32,
        }
    }
}

/// `[N, C, H, W]` (C = 1 or 3) in `range` -> N RGB images.
pub fn tensor_to_images_in(t: &Tensor, range: PixelRange) -> Result<Vec<RgbImage>> {
    let (n, c, h, w) = t.dims4()?;
    if c != 1 && c != 3 {
        bail!("cannot turn a {c}-channel tensor into RGB images");
    }
    let v: Vec<f32> = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let to_u8 = |x: f32| range.byte_of(x);
    Ok((0..n)
        .map(|i| {
            let img = &v[i * c * h * w..(i + 1) * c * h * w];
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let p = y as usize * w + x as usize;
                if c == 1 {
                    let g = to_u8(img[p]);
                    Rgb([g, g, g])
                } else {
                    Rgb([to_u8(img[p]), to_u8(img[h * w + p]), to_u8(img[2 * h * w + p])])
                }
            })
        })
        .collect())
}

/// `[N, C, H, W]` in [-1, 1] -> N RGB images.
pub fn tensor_to_images(t: &Tensor) -> Result<Vec<RgbImage>> {
    tensor_to_images_in(t, PixelRange::Signed)
}

/// The first image of `[N, 3, H, W]` in `range`.
pub fn tensor_to_image_in(t: &Tensor, range: PixelRange) -> Result<RgbImage> {
    let (_, c, _, _) = t.dims4()?;
    if c != 3 {
        bail!("expected 3 channels, got {c}");
    }
    tensor_to_images_in(&t.narrow(0, 0, 1)?, range)?.pop().context("an empty batch")
}

/// RGB image -> `[1, 3, H, W]` f32 tensor in `range`.
pub fn image_to_tensor_in(img: &RgbImage, range: PixelRange, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let data: Vec<f32> = img.as_raw().iter().map(|&b| range.value_of(b)).collect();
    Ok(Tensor::from_vec(data, (h as usize, w as usize, 3), device)?.permute((2, 0, 1))?.unsqueeze(0)?.contiguous()?)
}

/// RGB image -> `[1, 3, H, W]` tensor in [-1, 1].
pub fn image_to_tensor(img: &RgbImage, device: &Device) -> Result<Tensor> {
    image_to_tensor_in(img, PixelRange::Signed, device)
}

/// Tiles images `columns` per row with a `pad`-pixel dark border, like torchvision's `make_grid`.
pub fn grid(images: &[RgbImage], columns: usize, pad: u32) -> Result<RgbImage> {
    let Some(first) = images.first() else { bail!("no images to put in a grid") };
    let (w, h) = first.dimensions();
    let cols = columns.clamp(1, images.len()) as u32;
    let rows = (images.len() as u32).div_ceil(cols);
    let mut out = RgbImage::from_pixel(cols * (w + pad) + pad, rows * (h + pad) + pad, Rgb([16, 16, 16]));
    for (i, img) in images.iter().enumerate() {
        let (x, y) = (i as u32 % cols, i as u32 / cols);
        image::imageops::replace(&mut out, img, (pad + x * (w + pad)) as i64, (pad + y * (h + pad)) as i64);
    }
    Ok(out)
}

/// `left` and `right` next to each other with a `line`-pixel white line between (the papers' real-vs-generated
/// panels, nearest-neighbour pairs).
pub fn side_by_side(left: &RgbImage, right: &RgbImage, line: u32) -> RgbImage {
    let h = left.height().max(right.height());
    let mut out = RgbImage::from_pixel(left.width() + line + right.width(), h, Rgb([255, 255, 255]));
    image::imageops::replace(&mut out, left, 0, 0);
    image::imageops::replace(&mut out, right, (left.width() + line) as i64, 0);
    out
}

/// Saves an image (format from the extension, PNG if none) atomically.
pub fn save_image(img: &RgbImage, path: &Path) -> Result<()> {
    let format = image::ImageFormat::from_path(path).unwrap_or(image::ImageFormat::Png);
    super::write_atomic(path, |tmp| img.save_with_format(tmp, format).with_context(|| format!("cannot encode {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_grid_size() -> Result<()> {
        let img = RgbImage::from_fn(5, 4, |x, y| Rgb([(x * 50) as u8, (y * 60) as u8, 255]));
        let t = image_to_tensor(&img, &Device::Cpu)?;
        assert_eq!(t.dims(), [1, 3, 4, 5]);
        assert_eq!(tensor_to_images(&t)?[0], img);
        let g = grid(&vec![img; 5], 3, 2)?;
        assert_eq!(g.dimensions(), (3 * 7 + 2, 2 * 6 + 2));
        Ok(())
    }
}
