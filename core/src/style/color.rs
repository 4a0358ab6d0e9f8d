//! Keeping the content image's colours (Gatys et al. 2016, "Preserving Color in Neural Artistic Style
//! Transfer", luminance-only transfer): the result takes its luminance (Y of YIQ) from the stylised image and
//! its chrominance (I, Q) from the original.

use anyhow::{bail, Result};
use image::{Rgb, RgbImage};

fn rgb_to_yiq(p: &Rgb<u8>) -> [f32; 3] {
    let [r, g, b] = p.0.map(|v| v as f32);
    [0.299 * r + 0.587 * g + 0.114 * b, 0.595_716 * r - 0.274_453 * g - 0.321_263 * b, 0.211_456 * r - 0.522_591 * g + 0.311_135 * b]
}

fn yiq_to_rgb([y, i, q]: [f32; 3]) -> Rgb<u8> {
    let c = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    Rgb([c(y + 0.956_3 * i + 0.621 * q), c(y - 0.272_1 * i - 0.647_4 * q), c(y - 1.107 * i + 1.704_6 * q)])
}

/// `styled`'s luminance with `original`'s colours (same size required).
pub fn preserve_colors(styled: &RgbImage, original: &RgbImage) -> Result<RgbImage> {
    if styled.dimensions() != original.dimensions() {
        bail!("cannot keep colours: stylised image is {:?}, original {:?}", styled.dimensions(), original.dimensions());
    }
    Ok(RgbImage::from_fn(styled.width(), styled.height(), |x, y| {
        let [luma, _, _] = rgb_to_yiq(styled.get_pixel(x, y));
        let [_, i, q] = rgb_to_yiq(original.get_pixel(x, y));
        yiq_to_rgb([luma, i, q])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_original_chroma_and_styled_luma() -> Result<()> {
        let original = RgbImage::from_pixel(2, 1, Rgb([200, 40, 40]));
        let gray = RgbImage::from_pixel(2, 1, Rgb([90, 90, 90]));
        let out = preserve_colors(&gray, &original)?;
        let p = out.get_pixel(0, 0);
        // Still red, with the gray image's brightness.
        assert!(p[0] > p[1] + 50 && p[1] == p[2], "{p:?}");
        let [y, _, _] = rgb_to_yiq(p);
        assert!((y - 90.0).abs() < 1.0, "{y}");
        // A pixel round-trips through YIQ.
        assert_eq!(preserve_colors(&original, &original)?, original);
        assert!(preserve_colors(&gray, &RgbImage::new(3, 1)).is_err());
        Ok(())
    }
}
