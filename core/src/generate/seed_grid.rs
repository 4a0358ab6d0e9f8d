//! The papers' numbered sample grids: an N×N grid whose cell (row, column) is the picture of one seed, with
//! the row and column numbers in the margins, so a cell can be named and made again (`--grid 1 --seed S`, or
//! `sheet --seeds S`).

use crate::io::text::{draw_text, draw_text_centered, text_width};
use anyhow::{bail, Result};
use image::{Rgb, RgbImage};

/// Largest grid side `--grid` accepts.
pub const MAX_GRID: usize = 32;

/// The seed of cell (`row`, `column`), both counted from 1, in an `n`×`n` grid starting at `first_seed`.
pub fn cell_seed(first_seed: u64, n: usize, row: usize, column: usize) -> u64 {
    first_seed.wrapping_add(((row - 1) * n + column - 1) as u64)
}

/// Checks a grid side.
pub fn validate(n: usize) -> Result<()> {
    if n == 0 || n > MAX_GRID {
        bail!("--grid {n}: the side must be 1..={MAX_GRID}");
    }
    Ok(())
}

/// Lays out `images` (row-major, `n`×`n`, all the same size) on a white page with the row numbers on the left
/// and the column numbers on top.
pub fn render(images: &[RgbImage], n: usize) -> Result<RgbImage> {
    if images.len() != n * n {
        bail!("a {n}x{n} grid needs {} pictures, not {}", n * n, images.len());
    }
    let (w, h) = images[0].dimensions();
    const GAP: u32 = 4;
    let label = (h as f32 * 0.3).clamp(10.0, 18.0);
    let left = text_width(&n.to_string(), label) + 2 * GAP;
    let top = label as u32 + 2 * GAP;
    let (cols, rows) = (n as u32, n as u32);
    let mut page = RgbImage::from_pixel(left + cols * (w + GAP), top + rows * (h + GAP), Rgb([255, 255, 255]));
    let ink = Rgb([40, 40, 40]);
    for c in 0..cols {
        draw_text_centered(&mut page, &(c + 1).to_string(), (left + c * (w + GAP)) as i32, w, GAP as i32, label, ink);
    }
    for r in 0..rows {
        let y = top + r * (h + GAP);
        let text = (r + 1).to_string();
        draw_text(&mut page, &text, (left - GAP - text_width(&text, label)) as i32, (y + h / 2) as i32 - label as i32 / 2, label, ink);
        for c in 0..cols {
            image::imageops::replace(&mut page, &images[(r * cols + c) as usize], (left + c * (w + GAP)) as i64, y as i64);
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_map_to_seeds_and_sit_where_numbered() -> Result<()> {
        assert_eq!(cell_seed(100, 5, 1, 1), 100);
        assert_eq!(cell_seed(100, 5, 2, 3), 107);
        assert_eq!(cell_seed(100, 5, 5, 5), 124);
        let images: Vec<RgbImage> = (0..4u8).map(|i| RgbImage::from_pixel(20, 20, Rgb([i * 60, 0, 0]))).collect();
        let page = render(&images, 2)?;
        // Cell (2, 1) is image 2: find its colour in the lower-left quadrant.
        let (w, h) = page.dimensions();
        let found = (h / 2..h).any(|y| (0..w / 2).any(|x| page.get_pixel(x, y).0 == [120, 0, 0]));
        assert!(found);
        assert!(render(&images, 3).is_err());
        assert!(validate(0).is_err() && validate(MAX_GRID + 1).is_err() && validate(5).is_ok());
        Ok(())
    }
}
