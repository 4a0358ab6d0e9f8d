//! Host pixel buffers (`GanimeImage`: any stride, RGBA8 / RGB8 / GRAY8 / GRAYA8) <-> `RgbImage` plus alpha.
//! Every access goes through `check` first, so a short stride, an empty or huge size or an unknown format is an
//! error and never an out-of-bounds access.

use crate::{fail, Failure};
use ganime_plugin_abi::*;
use image::{Rgb, RgbImage};

/// Validates a host buffer's description; the message names the argument.
pub fn check(img: &GanimeImage, what: &str) -> Result<usize, Failure> {
    if img.data.is_null() {
        return fail(GANIME_ERR_NULL_POINTER, format!("{what}.data is NULL"));
    }
    if bytes_per_pixel(img.format).is_none() {
        return fail(
            GANIME_ERR_UNKNOWN_FORMAT,
            format!("{what}: unknown pixel format {} (expected 1 = RGBA8, 2 = RGB8, 3 = GRAY8, 4 = GRAYA8)", img.format),
        );
    }
    required_len(img.width, img.height, img.stride, img.format).or_else(|m| fail(GANIME_ERR_INVALID_ARGUMENT, format!("{what}: {m}")))
}

/// Rec. 601 luma, the usual RGB -> gray conversion of 8-bit editors.
fn luma(p: &Rgb<u8>) -> u8 {
    ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000) as u8
}

/// Copies a checked host buffer into an RGB image and its alpha channel (if the format has one).
///
/// # Safety
/// `img` must describe memory the caller may read (the ABI's contract with the host).
pub unsafe fn read(img: &GanimeImage) -> Result<(RgbImage, Option<Vec<u8>>), Failure> {
    let len = check(img, "src")?;
    let bytes = std::slice::from_raw_parts(img.data as *const u8, len);
    let bpp = bytes_per_pixel(img.format).unwrap_or(1);
    let (w, h) = (img.width as usize, img.height as usize);
    let mut rgb = RgbImage::new(img.width, img.height);
    let has_alpha = matches!(img.format, GANIME_FORMAT_RGBA8 | GANIME_FORMAT_GRAYA8);
    let mut alpha = if has_alpha { Vec::with_capacity(w * h) } else { Vec::new() };
    for y in 0..h {
        let row = &bytes[y * img.stride..y * img.stride + w * bpp];
        for (x, px) in row.chunks_exact(bpp).enumerate() {
            let value = match img.format {
                GANIME_FORMAT_RGBA8 | GANIME_FORMAT_RGB8 => Rgb([px[0], px[1], px[2]]),
                _ => Rgb([px[0], px[0], px[0]]),
            };
            rgb.put_pixel(x as u32, y as u32, value);
            if has_alpha {
                alpha.push(px[bpp - 1]);
            }
        }
    }
    Ok((rgb, has_alpha.then_some(alpha)))
}

/// Writes `rgb` (and `alpha`, else opaque) into a host buffer of the same size.
///
/// # Safety
/// `img` must describe memory the caller may write (the ABI's contract with the host).
pub unsafe fn write(rgb: &RgbImage, alpha: Option<&[u8]>, img: &GanimeImage) -> Result<(), Failure> {
    let len = check(img, "dst")?;
    if rgb.dimensions() != (img.width, img.height) {
        return fail(GANIME_ERR_INVALID_ARGUMENT, format!("dst is {}x{}, the result {:?}", img.width, img.height, rgb.dimensions()));
    }
    let bytes = std::slice::from_raw_parts_mut(img.data, len);
    let bpp = bytes_per_pixel(img.format).unwrap_or(1);
    let w = img.width as usize;
    for (y, src_row) in rgb.rows().enumerate() {
        let row = &mut bytes[y * img.stride..y * img.stride + w * bpp];
        for (x, (px, p)) in row.chunks_exact_mut(bpp).zip(src_row).enumerate() {
            let a = alpha.map_or(255, |a| a[y * w + x]);
            match img.format {
                GANIME_FORMAT_RGBA8 => px.copy_from_slice(&[p[0], p[1], p[2], a]),
                GANIME_FORMAT_RGB8 => px.copy_from_slice(&[p[0], p[1], p[2]]),
                GANIME_FORMAT_GRAY8 => px[0] = luma(p),
                _ => px.copy_from_slice(&[luma(p), a]),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_format_with_padding() {
        let rgb = RgbImage::from_fn(3, 2, |x, y| Rgb([x as u8 * 40, y as u8 * 90, 200]));
        for format in [GANIME_FORMAT_RGBA8, GANIME_FORMAT_RGB8, GANIME_FORMAT_GRAY8, GANIME_FORMAT_GRAYA8] {
            let bpp = bytes_per_pixel(format).unwrap();
            let stride = 3 * bpp + 5;
            // One canary byte past the end.
            let mut buf = vec![0xAAu8; stride + 3 * bpp + 1];
            let img = GanimeImage { data: buf.as_mut_ptr(), width: 3, height: 2, stride, format };
            let alpha = [1u8, 2, 3, 4, 5, 6];
            unsafe { write(&rgb, Some(&alpha), &img) }.unwrap();
            let (back, a) = unsafe { read(&img) }.unwrap();
            match format {
                GANIME_FORMAT_RGBA8 | GANIME_FORMAT_RGB8 => assert_eq!(back, rgb),
                _ => assert_eq!(back.get_pixel(1, 1), &Rgb([luma(rgb.get_pixel(1, 1)); 3])),
            }
            assert_eq!(a.is_some(), bpp.is_multiple_of(2));
            if let Some(a) = a {
                assert_eq!(a, alpha);
            }
            assert_eq!(*buf.last().unwrap(), 0xAA, "format {format} wrote past the buffer");
            assert_eq!(buf[3 * bpp], 0xAA, "format {format} wrote into the stride padding");
        }
    }

    #[test]
    fn rejects_bad_descriptions() {
        let mut buf = [0u8; 16];
        let ok = GanimeImage { data: buf.as_mut_ptr(), width: 2, height: 2, stride: 6, format: GANIME_FORMAT_RGB8 };
        assert!(check(&ok, "x").is_ok());
        let cases = [
            (GanimeImage { data: std::ptr::null_mut(), ..ok }, GANIME_ERR_NULL_POINTER),
            (GanimeImage { format: 0, ..ok }, GANIME_ERR_UNKNOWN_FORMAT),
            (GanimeImage { stride: 5, ..ok }, GANIME_ERR_INVALID_ARGUMENT),
            (GanimeImage { width: 0, ..ok }, GANIME_ERR_INVALID_ARGUMENT),
            (GanimeImage { height: u32::MAX, ..ok }, GANIME_ERR_INVALID_ARGUMENT),
        ];
        for (img, status) in cases {
            assert_eq!(check(&img, "x").unwrap_err().status, status);
        }
    }
}
