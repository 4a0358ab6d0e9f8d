//! Turning a decoded image into one training sample: grayscale/RGB, square fit, CHW f32 in [-1, 1].

use image::imageops::{self, FilterType};
use image::{DynamicImage, GenericImageView, ImageBuffer, Pixel};
use serde::{Deserialize, Serialize};

/// How a source image becomes a square training sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fit {
    /// Resize the shorter side to `size` and crop the centre square (loses the borders, no distortion).
    CenterCrop,
    /// Resize the longer side to `size` and pad the rest with -1 (black), keeping the whole image.
    Pad,
}

/// Shape of the samples a model trains on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub size: usize,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    pub fit: Fit,
}

impl ImageSpec {
    /// Number of f32 values in one sample (`channels * size * size`).
    pub fn sample_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Rejects specs `preprocess` cannot honour, so callers fail early with a message instead of a panic.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.size > 0, "image size must be positive");
        anyhow::ensure!(self.channels == 1 || self.channels == 3, "channels must be 1 (grayscale) or 3 (RGB), got {}", self.channels);
        Ok(())
    }
}

/// Filter for resizing: Triangle is bilinear when upscaling and averages (anti-aliases) when downscaling.
const FILTER: FilterType = FilterType::Triangle;

/// One sample: CHW f32 values in [-1, 1], length `channels * size * size`.
///
/// Panics if `spec` is invalid (see [`ImageSpec::validate`]).
pub fn preprocess(img: &DynamicImage, spec: &ImageSpec) -> Vec<f32> {
    if let Err(e) = spec.validate() {
        panic!("invalid image spec {spec:?}: {e}");
    }
    match spec.channels {
        1 => fit_to_chw(&img.to_luma8(), spec),
        _ => fit_to_chw(&img.to_rgb8(), spec),
    }
}

/// Mirrors a CHW sample left-right in place (data augmentation).
pub fn flip_horizontal(sample: &mut [f32], spec: &ImageSpec) {
    assert_eq!(sample.len(), spec.sample_len(), "sample length does not match {spec:?}");
    for row in sample.chunks_exact_mut(spec.size) {
        row.reverse();
    }
}

fn fit_to_chw<P>(img: &ImageBuffer<P, Vec<u8>>, spec: &ImageSpec) -> Vec<f32>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let size = spec.size as u32;
    let mut out = vec![-1.0; spec.sample_len()];
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return out;
    }
    match spec.fit {
        Fit::CenterCrop => write_chw(&center_square(img, size), spec, &mut out),
        Fit::Pad => {
            let longer = w.max(h);
            write_resized(img, scale(w, size, longer), scale(h, size, longer), spec, &mut out);
        }
    }
    out
}

/// The centre square of `img` resized to `size × size`: what [`Fit::CenterCrop`] trains on (edge smoothing
/// uses it to work at the size the loader will show).
pub fn center_square<P>(img: &ImageBuffer<P, Vec<u8>>, size: u32) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (w, h) = img.dimensions();
    // Cropping the centre square first and then resizing equals resize-then-crop, with less work.
    let side = w.min(h);
    let square = imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    if side == size {
        square
    } else {
        imageops::resize(&square, size, size, FILTER)
    }
}

/// `len * size / longer`, rounded, at least one pixel.
fn scale(len: u32, size: u32, longer: u32) -> u32 {
    ((len as f64 * size as f64 / longer as f64).round() as u32).clamp(1, size)
}

/// Resizes `view` to `w x h` (skipped when it already is) and writes it centred into the CHW `out`.
fn write_resized<I>(view: &I, w: u32, h: u32, spec: &ImageSpec, out: &mut [f32])
where
    I: GenericImageView,
    I::Pixel: Pixel<Subpixel = u8> + 'static,
{
    if view.dimensions() == (w, h) {
        write_chw(view, spec, out);
    } else {
        write_chw(&imageops::resize(view, w, h, FILTER), spec, out);
    }
}

/// Copies `view` centred into the `size x size` CHW buffer, mapping 0..=255 to -1..=1.
fn write_chw<I>(view: &I, spec: &ImageSpec, out: &mut [f32])
where
    I: GenericImageView,
    I::Pixel: Pixel<Subpixel = u8>,
{
    let size = spec.size;
    let plane = size * size;
    let (w, h) = view.dimensions();
    let (x0, y0) = ((size - w as usize) / 2, (size - h as usize) / 2);
    for (x, y, pixel) in view.pixels() {
        let at = (y0 + y as usize) * size + x0 + x as usize;
        for (c, &v) in pixel.channels().iter().take(spec.channels).enumerate() {
            out[c * plane + at] = v as f32 / 127.5 - 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    fn spec(size: usize, channels: usize, fit: Fit) -> ImageSpec {
        ImageSpec { size, channels, fit }
    }

    /// 40x20: left half red, right half blue; wide so crop and pad differ.
    fn wide_image() -> DynamicImage {
        let img = RgbImage::from_fn(40, 20, |x, _| if x < 20 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        DynamicImage::ImageRgb8(img)
    }

    #[test]
    fn shapes_and_range() {
        for fit in [Fit::CenterCrop, Fit::Pad] {
            for channels in [1, 3] {
                let s = spec(16, channels, fit);
                let v = preprocess(&wide_image(), &s);
                assert_eq!(v.len(), channels * 16 * 16);
                assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
            }
        }
    }

    #[test]
    fn crop_vs_pad() {
        let plane = 16 * 16;
        let at = |y: usize, x: usize| y * 16 + x;
        let crop = preprocess(&wide_image(), &spec(16, 3, Fit::CenterCrop));
        // Crop keeps the centre 20x20: every row is red on the left, blue on the right, no padding.
        assert_eq!(crop[at(0, 0)], 1.0);
        assert_eq!(crop[2 * plane + at(15, 15)], 1.0);
        assert_eq!(crop[at(0, 15)], -1.0);

        let pad = preprocess(&wide_image(), &spec(16, 3, Fit::Pad));
        // Pad scales 40x20 to 16x8 placed in rows 4..12; rows outside are black (-1 in all channels).
        for c in 0..3 {
            assert!(pad[c * plane..c * plane + 4 * 16].iter().all(|&v| v == -1.0));
            assert!(pad[c * plane + 12 * 16..(c + 1) * plane].iter().all(|&v| v == -1.0));
        }
        assert_eq!(pad[at(8, 0)], 1.0, "red at the left of the content rows");
        assert_eq!(pad[2 * plane + at(8, 15)], 1.0, "blue at the right of the content rows");
    }

    #[test]
    fn no_resize_when_already_square_and_sized() {
        let img = GrayImage::from_fn(8, 8, |x, y| Luma([(x * 30 + y) as u8]));
        let v = preprocess(&DynamicImage::ImageLuma8(img.clone()), &spec(8, 1, Fit::CenterCrop));
        for (x, y, p) in img.enumerate_pixels() {
            assert_eq!(v[y as usize * 8 + x as usize], p.0[0] as f32 / 127.5 - 1.0);
        }
    }

    #[test]
    fn grayscale() {
        let rgb = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 10, Rgb([200, 200, 200])));
        let v = preprocess(&rgb, &spec(4, 1, Fit::Pad));
        assert!(v.iter().all(|&x| (x - (200.0 / 127.5 - 1.0)).abs() < 1e-6));

        // Gray input with 3 channels replicates the gray value.
        let gray = DynamicImage::ImageLuma8(GrayImage::from_fn(6, 6, |x, _| Luma([x as u8 * 40])));
        let v = preprocess(&gray, &spec(6, 3, Fit::CenterCrop));
        assert_eq!(v[..36], v[36..72]);
        assert_eq!(v[..36], v[72..]);
    }

    #[test]
    fn flip() {
        let s = spec(3, 3, Fit::Pad);
        let mut v: Vec<f32> = (0..27).map(|i| i as f32).collect();
        flip_horizontal(&mut v, &s);
        assert_eq!(&v[..6], &[2.0, 1.0, 0.0, 5.0, 4.0, 3.0]);
        flip_horizontal(&mut v, &s);
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as f32));
    }

    #[test]
    fn invalid_spec_is_rejected() {
        assert!(spec(8, 2, Fit::Pad).validate().is_err());
        assert!(spec(0, 3, Fit::Pad).validate().is_err());
        assert!(spec(8, 3, Fit::Pad).validate().is_ok());
    }
}
