//! The one way a learned filter runs its network on a frame: the frame becomes a tensor in the network's pixel
//! range, is padded to the sizes the network takes, goes through it, and is cropped back and converted to an
//! image. Every network filter (AnimeGANv2, CycleGAN, the style networks) goes through [`apply_network`].
//!
//! A pass needs memory in proportion to its pixels ([`NetworkIo::bytes_per_pixel`]): a 6000x6000 photo through a
//! style network would need tens of GiB. Above `GANIME_MAX_NETWORK_BYTES` (4 GiB) the frame is stylised in
//! overlapping square tiles, each within the limit, blended with linear ramps across the overlaps. Networks with
//! instance norm see slightly different statistics per tile; a wide overlap (a quarter tile) hides the seams.

use crate::io::image::{image_to_tensor_in, tensor_to_image_in, PixelRange};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;

/// How a frame is padded (right and bottom) before the network, and cropped back after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pad {
    /// The network takes any size.
    None,
    /// Mirror-padded to a multiple of `multiple` (where the frame is large enough to mirror; else the edge
    /// row or column is repeated).
    Reflect { multiple: usize },
    /// Edge rows and columns repeated up to a multiple of `multiple`, at least `min`.
    Replicate { multiple: usize, min: usize },
}

/// The network's input and output ranges, padding and memory use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkIo {
    pub input: PixelRange,
    pub output: PixelRange,
    pub pad: Pad,
    /// Peak bytes one pass holds per input pixel (activations and convolution buffers), measured at the widths
    /// of the real networks of this kind: [`STYLE_NET_BYTES_PER_PIXEL`], [`GAN_BYTES_PER_PIXEL`].
    pub bytes_per_pixel: u64,
}

/// Feed-forward style networks (TransformerNet, the 26-style and Magenta networks): the built-in matta
/// (full-width TransformerNet) grew by 770 bytes per pixel from 256² to 512² (peak RSS, f32, CPU).
pub const STYLE_NET_BYTES_PER_PIXEL: u64 = 1024;
/// AnimeGANv2 and CycleGAN generators: 566 bytes per pixel measured with the golden AnimeGANv2 at a quarter of the
/// real widths, so four times that for real files.
pub const GAN_BYTES_PER_PIXEL: u64 = 2304;

/// The smallest tile side worth running a network on; a memory limit that leaves less is refused.
const MIN_TILE: usize = 64;

/// Runs `net` on `frame` as `io` says; the result has the frame's size. A frame whose pass would need more
/// than `GANIME_MAX_NETWORK_BYTES` is run in overlapping tiles (see the module notes).
pub fn apply_network(frame: &RgbImage, io: NetworkIo, device: &Device, net: impl Fn(&Tensor) -> Result<Tensor>) -> Result<RgbImage> {
    apply_network_within(frame, io, device, crate::io::limits::max_network_bytes(), net)
}

/// The memory one pass of a network with `io` needs for a `w x h` frame (after padding), in bytes.
pub fn estimate_bytes(io: NetworkIo, w: usize, h: usize) -> u64 {
    let (pw, ph) = padded_size(io.pad, w, h);
    (pw as u64).saturating_mul(ph as u64).saturating_mul(io.bytes_per_pixel)
}

/// [`apply_network`] with an explicit memory limit per pass (`limit` bytes).
pub fn apply_network_within(
    frame: &RgbImage,
    io: NetworkIo,
    device: &Device,
    limit: u64,
    net: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<RgbImage> {
    let (w, h) = frame.dimensions();
    if w == 0 || h == 0 {
        bail!("cannot stylise an empty {w}x{h} image");
    }
    let need = estimate_bytes(io, w as usize, h as usize);
    if need <= limit {
        return apply_whole(frame, io, device, &net);
    }
    let tile = tile_side(io, limit).with_context(|| {
        format!("stylising a {w}x{h} image needs about {:.1} GiB in one pass, more than the limit", need as f64 / (1u64 << 30) as f64)
    })?;
    apply_tiled(frame, io, device, tile, &net)
}

/// The padded size `pad` gives a `w x h` frame.
fn padded_size(pad: Pad, w: usize, h: usize) -> (usize, usize) {
    match pad {
        Pad::None => (w, h),
        Pad::Reflect { multiple } => (w.next_multiple_of(multiple), h.next_multiple_of(multiple)),
        Pad::Replicate { multiple, min } => {
            let target = |n: usize| n.div_ceil(multiple).max(min.div_ceil(multiple)) * multiple;
            (target(w), target(h))
        }
    }
}

/// The largest square tile (a multiple of 8, so strided layers see the same grid in every tile) whose pass fits
/// in `limit` bytes.
fn tile_side(io: NetworkIo, limit: u64) -> Result<usize> {
    let side = ((limit / io.bytes_per_pixel.max(1)) as f64).sqrt() as usize / 8 * 8;
    if side < MIN_TILE {
        bail!(
            "a network pass takes about {} bytes per pixel, and the limit of {limit} bytes (GANIME_MAX_NETWORK_BYTES) leaves tiles \
             smaller than {MIN_TILE}x{MIN_TILE}; raise it",
            io.bytes_per_pixel
        );
    }
    Ok(side)
}

/// Where the tiles of one axis of length `n` start: tiles of `tile` pixels overlapping by at least about a quarter
/// tile, spread evenly, starts on multiples of 8 (the last tile ends at the edge).
fn tile_starts(n: usize, tile: usize) -> Vec<usize> {
    if n <= tile {
        return vec![0];
    }
    let overlap = tile / 4;
    let count = (n - overlap).div_ceil(tile - overlap);
    let mut starts: Vec<usize> = (0..count - 1).map(|k| k * (n - tile) / (count - 1) / 8 * 8).collect();
    starts.push(n - tile);
    starts.dedup();
    starts
}

/// The blending weight of a tile `[start, start + len)` at `p`: 1 inside, a linear ramp over `ramp` pixels on a
/// side that overlaps another tile (not at the image's edge). Never 0, so every pixel has some weight.
fn feather(p: usize, start: usize, len: usize, ramp: usize, first: bool, last: bool) -> f32 {
    let rising = if first { 1.0 } else { ((p - start) as f32 + 0.5) / ramp as f32 };
    let falling = if last { 1.0 } else { ((start + len - p) as f32 - 0.5) / ramp as f32 };
    rising.min(1.0) * falling.min(1.0)
}

/// Runs `net` on overlapping `tile x tile` pieces of `frame` and blends them. Rows are finished one row of tiles
/// at a time, so besides the result only one band of tiles is held (in f32, with its weights).
fn apply_tiled(frame: &RgbImage, io: NetworkIo, device: &Device, tile: usize, net: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<RgbImage> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (xs, ys) = (tile_starts(w, tile), tile_starts(h, tile));
    let ramp = tile / 4;
    let (tw, th) = (tile.min(w), tile.min(h));
    let mut out = RgbImage::new(w as u32, h as u32);
    // Weighted sums (r, g, b, weight) of rows [band_top, band_top + rows) of the image.
    let mut band_top = 0;
    let mut band: Vec<[f32; 4]> = Vec::new();
    for (j, &y0) in ys.iter().enumerate() {
        let rows = y0 + th - band_top;
        band.resize(rows * w, [0.0; 4]);
        for (i, &x0) in xs.iter().enumerate() {
            let piece = image::imageops::crop_imm(frame, x0 as u32, y0 as u32, tw as u32, th as u32).to_image();
            let styled = apply_whole(&piece, io, device, net)?;
            for (x, y, p) in styled.enumerate_pixels() {
                let (gx, gy) = (x0 + x as usize, y0 + y as usize);
                let weight = feather(gx, x0, tw, ramp, i == 0, i + 1 == xs.len()) * feather(gy, y0, th, ramp, j == 0, j + 1 == ys.len());
                let cell = &mut band[(gy - band_top) * w + gx];
                for c in 0..3 {
                    cell[c] += weight * p[c] as f32;
                }
                cell[3] += weight;
            }
        }
        // Rows above the next row of tiles get nothing more.
        let done = ys.get(j + 1).copied().unwrap_or(h);
        for (k, cell) in band.drain(..(done - band_top) * w).enumerate() {
            let (x, y) = (k % w, band_top + k / w);
            let value = |c: usize| (cell[c] / cell[3]).round().clamp(0.0, 255.0) as u8;
            out.put_pixel(x as u32, y as u32, image::Rgb([value(0), value(1), value(2)]));
        }
        band_top = done;
    }
    Ok(out)
}

/// One pass of `net` over the whole frame.
fn apply_whole(frame: &RgbImage, io: NetworkIo, device: &Device, net: &dyn Fn(&Tensor) -> Result<Tensor>) -> Result<RgbImage> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let x = image_to_tensor_in(frame, io.input, device)?;
    let (pw, ph) = padded_size(io.pad, w, h);
    let (pw, ph) = (pw - w, ph - h);
    let x = match io.pad {
        _ if pw == 0 && ph == 0 => x,
        // Mirrored where the frame is large enough to mirror, else the edge repeated.
        Pad::Reflect { .. } if h > ph && w > pw => crate::nn::reflection_pad2d(&x, 0, pw, 0, ph)?,
        _ => x.pad_with_same(2, 0, ph)?.pad_with_same(3, 0, pw)?,
    };
    let y = net(&x)?;
    tensor_to_image_in(&y.narrow(2, 0, h)?.narrow(3, 0, w)?, io.output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Padding reaches the network, cropping undoes it, and the ranges convert both ways.
    #[test]
    fn pads_crops_and_converts() -> Result<()> {
        let frame = RgbImage::from_fn(5, 3, |x, y| image::Rgb([(x * 50) as u8, (y * 100) as u8, 7]));
        for (pad, want) in [(Pad::None, (3, 5)), (Pad::Reflect { multiple: 4 }, (4, 8)), (Pad::Replicate { multiple: 4, min: 8 }, (8, 8))] {
            for range in [PixelRange::Signed, PixelRange::Unit, PixelRange::Byte] {
                let io = NetworkIo { input: range, output: range, pad, bytes_per_pixel: 1 };
                let seen = std::cell::Cell::new((0, 0));
                let out = apply_network(&frame, io, &Device::Cpu, |x| {
                    seen.set((x.dim(2)?, x.dim(3)?));
                    Ok(x.clone())
                })?;
                assert_eq!(seen.get(), want, "{pad:?}");
                assert_eq!(out, frame, "{pad:?} {range:?}: identity network");
            }
        }
        // A frame too small to mirror is edge-padded instead of refused.
        let tiny = RgbImage::from_pixel(1, 2, image::Rgb([9, 9, 9]));
        let io = NetworkIo { input: PixelRange::Unit, output: PixelRange::Unit, pad: Pad::Reflect { multiple: 4 }, bytes_per_pixel: 1 };
        assert_eq!(apply_network(&tiny, io, &Device::Cpu, |x| Ok(x.clone()))?, tiny);
        Ok(())
    }

    /// Above the limit the network only ever sees tiles within it, every pixel is covered (an identity network
    /// gives the frame back exactly, so the weights are right), and a limit too small for a useful tile is
    /// refused with the numbers.
    #[test]
    fn large_frames_run_in_tiles_within_the_limit() -> Result<()> {
        let frame = RgbImage::from_fn(301, 203, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8]));
        let io = NetworkIo { input: PixelRange::Unit, output: PixelRange::Unit, pad: Pad::Reflect { multiple: 4 }, bytes_per_pixel: 1000 };
        assert_eq!(estimate_bytes(io, 301, 203), 304 * 204 * 1000);
        for limit in [96 * 96 * 1000, 120 * 120 * 1000, 250 * 250 * 1000, u64::MAX] {
            let (largest, passes) = (std::cell::Cell::new(0u64), std::cell::Cell::new(0));
            let out = apply_network_within(&frame, io, &Device::Cpu, limit, |x| {
                largest.set(largest.get().max(estimate_bytes(io, x.dim(3)?, x.dim(2)?)));
                passes.set(passes.get() + 1);
                Ok(x.clone())
            })?;
            assert!(largest.get() <= limit, "a pass needed {} bytes, over the limit of {limit}", largest.get());
            assert_eq!(passes.get() > 1, limit < 304 * 204 * 1000, "limit {limit}: {} passes", passes.get());
            assert_eq!(out, frame, "limit {limit}: an identity network tiled gives the frame back");
        }
        let err = apply_network_within(&frame, io, &Device::Cpu, 50 * 50 * 1000, |x| Ok(x.clone())).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains("301x203") && err.contains("1000 bytes per pixel") && err.contains("GANIME_MAX_NETWORK_BYTES"), "{err}");
        Ok(())
    }

    /// Tiles overlap by about a quarter tile, start on multiples of 8 (but the last, which ends at the edge),
    /// and cover the axis.
    #[test]
    fn tiles_overlap_and_cover() {
        assert_eq!(tile_starts(100, 128), vec![0]);
        for (n, tile) in [(301, 96), (6000, 2040), (16384, 64), (129, 128)] {
            let starts = tile_starts(n, tile);
            assert_eq!(starts[0], 0);
            assert_eq!(*starts.last().unwrap(), n - tile);
            for pair in starts.windows(2) {
                assert!(pair[0] % 8 == 0 && pair[1] > pair[0], "{n} {tile}: {starts:?}");
                assert!(pair[0] + tile >= pair[1] + tile / 4 - 7, "{n} {tile}: overlap too small in {starts:?}");
            }
        }
    }
}
