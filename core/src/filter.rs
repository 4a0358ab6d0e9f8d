//! The `Filter` trait: image -> image of the same size. Every stylisation model (style networks, AnimeGANv2,
//! CycleGAN generators) and every non-learned effect implements it; `stylize`, the camera and the editor
//! plug-in only talk to this trait.

use anyhow::{bail, Result};
use image::RgbImage;

pub trait Filter: Send + Sync {
    /// Short name for menus and overlays ("toon", "candy", …).
    fn name(&self) -> String;
    /// Stylises `frame`; the result has the same size.
    fn apply(&self, frame: &RgbImage) -> Result<RgbImage>;
}

/// `original` and `styled` mixed per pixel: `strength` 0 gives the original, 1 the styled image.
pub fn blend(original: &RgbImage, styled: &RgbImage, strength: f32) -> Result<RgbImage> {
    if original.dimensions() != styled.dimensions() {
        bail!("cannot blend a {:?} image with a {:?} one", original.dimensions(), styled.dimensions());
    }
    let s = strength.clamp(0.0, 1.0);
    let mut out = original.clone();
    for (o, st) in out.iter_mut().zip(styled.iter()) {
        *o = (*o as f32 * (1.0 - s) + *st as f32 * s).round() as u8;
    }
    Ok(out)
}

/// A filter applied with a strength (blend with the input).
pub fn apply_with_strength(filter: &dyn Filter, frame: &RgbImage, strength: f32) -> Result<RgbImage> {
    let styled = filter.apply(frame)?;
    if strength >= 1.0 {
        return Ok(styled);
    }
    blend(frame, &styled, strength)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    struct Invert;
    impl Filter for Invert {
        fn name(&self) -> String {
            "invert".into()
        }
        fn apply(&self, f: &RgbImage) -> Result<RgbImage> {
            let mut o = f.clone();
            o.iter_mut().for_each(|p| *p = 255 - *p);
            Ok(o)
        }
    }

    #[test]
    fn strength_blends() -> Result<()> {
        let img = RgbImage::from_pixel(2, 2, Rgb([0, 100, 200]));
        assert_eq!(apply_with_strength(&Invert, &img, 1.0)?.get_pixel(0, 0), &Rgb([255, 155, 55]));
        assert_eq!(apply_with_strength(&Invert, &img, 0.0)?, img);
        assert_eq!(apply_with_strength(&Invert, &img, 0.5)?.get_pixel(1, 1), &Rgb([128, 128, 128]));
        assert!(blend(&img, &RgbImage::new(3, 2), 0.5).is_err());
        Ok(())
    }
}
