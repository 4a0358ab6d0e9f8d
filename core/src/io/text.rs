//! Drawing text onto images with the embedded DejaVu Sans Mono (sheet captions and titles). ab_glyph does the
//! glyph rasterisation; placing glyphs on a line is all that is written here.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the embedded font is valid")
}

/// Width in pixels of `text` at `size` px.
pub fn text_width(text: &str, size: f32) -> u32 {
    let f = font();
    let sf = f.as_scaled(PxScale::from(size));
    text.chars().map(|c| sf.h_advance(sf.glyph_id(c))).sum::<f32>().ceil() as u32
}

/// Draws `text` with its top-left corner at (x, y), alpha-blended in `color`. Clipped to the image.
pub fn draw_text(img: &mut RgbImage, text: &str, x: i32, y: i32, size: f32, color: Rgb<u8>) {
    let f = font();
    let scale = PxScale::from(size);
    let sf = f.as_scaled(scale);
    let mut pen = x as f32;
    let baseline = y as f32 + sf.ascent();
    for c in text.chars() {
        let glyph = sf.scaled_glyph(c).clone();
        let id = glyph.id;
        let g = ab_glyph::Glyph { position: ab_glyph::point(pen, baseline), ..glyph };
        if let Some(outline) = f.outline_glyph(g) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                    let p = img.get_pixel_mut(px as u32, py as u32);
                    for k in 0..3 {
                        p[k] = (p[k] as f32 * (1.0 - coverage) + color[k] as f32 * coverage).round() as u8;
                    }
                }
            });
        }
        pen += sf.h_advance(id);
    }
}

/// Draws `text` centred horizontally in `[x0, x0 + width)`.
pub fn draw_text_centered(img: &mut RgbImage, text: &str, x0: i32, width: u32, y: i32, size: f32, color: Rgb<u8>) {
    let w = text_width(text, size) as i32;
    draw_text(img, text, x0 + (width as i32 - w) / 2, y, size, color);
}

/// [`draw_text_centered`], shrunk below `size` where needed so the text fits in `width` (sheet captions under
/// narrow cells would otherwise run into their neighbours).
pub fn draw_text_fitted(img: &mut RgbImage, text: &str, x0: i32, width: u32, y: i32, size: f32, color: Rgb<u8>) {
    draw_text_centered(img, text, x0, width, y, fitted_size(text, size, width), color);
}

/// The largest size up to `size` at which `text` is at most `width` pixels wide.
pub fn fitted_size(text: &str, size: f32, width: u32) -> f32 {
    let w = text_width(text, size);
    if w <= width || w == 0 {
        return size;
    }
    // Glyph advances scale linearly with the size; the ceil in text_width may need one more small step.
    let mut s = size * width as f32 / w as f32;
    while s > 1.0 && text_width(text, s) > width {
        s *= 0.97;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_dark_pixels_where_the_text_is() {
        let mut img = RgbImage::from_pixel(120, 30, Rgb([255, 255, 255]));
        draw_text(&mut img, "seed 42", 2, 4, 16.0, Rgb([0, 0, 0]));
        let dark = img.pixels().filter(|p| p[0] < 128).count();
        assert!(dark > 50, "{dark}");
        assert!(text_width("seed 42", 16.0) > text_width("seed", 16.0));
        // Nothing drawn right of the text.
        let w = text_width("seed 42", 16.0) + 4;
        assert!((w..120).all(|x| (0..30).all(|y| img.get_pixel(x, y)[0] == 255)));
    }

    #[test]
    fn fitted_text_stays_inside_its_width() {
        let text = "orange hair, green eyes";
        assert!(text_width(text, 12.0) > 96);
        let s = fitted_size(text, 12.0, 96);
        assert!(s < 12.0 && text_width(text, s) <= 96 && text_width(text, s) > 80, "{s}");
        assert_eq!(fitted_size("seed 1", 12.0, 96), 12.0);
        // Drawn fitted and centred in a 96 px cell at x = 20: nothing outside [20, 116).
        let mut img = RgbImage::from_pixel(140, 20, Rgb([255, 255, 255]));
        draw_text_fitted(&mut img, text, 20, 96, 2, 12.0, Rgb([0, 0, 0]));
        assert!((0..140).filter(|x| !(20..116).contains(x)).all(|x| (0..20).all(|y| img.get_pixel(x, y)[0] == 255)));
    }
}
