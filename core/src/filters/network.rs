//! The one way a learned filter runs its network on a frame: the frame becomes a tensor in the network's pixel
//! range, is padded to the sizes the network takes, goes through it, and is cropped back and converted to an
//! image. Every network filter (AnimeGANv2, CycleGAN, the style networks) goes through [`apply_network`].

use crate::io::image::{image_to_tensor_in, tensor_to_image_in, PixelRange};
use anyhow::{bail, Result};
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

/// The network's input and output ranges and padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkIo {
    pub input: PixelRange,
    pub output: PixelRange,
    pub pad: Pad,
}

/// Runs `net` on `frame` as `io` says; the result has the frame's size.
pub fn apply_network(frame: &RgbImage, io: NetworkIo, device: &Device, net: impl Fn(&Tensor) -> Result<Tensor>) -> Result<RgbImage> {
    let (w, h) = frame.dimensions();
    if w == 0 || h == 0 {
        bail!("cannot stylise an empty {w}x{h} image");
    }
    let (w, h) = (w as usize, h as usize);
    let x = image_to_tensor_in(frame, io.input, device)?;
    let x = match io.pad {
        Pad::None => x,
        Pad::Reflect { multiple } => {
            let (ph, pw) = ((multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple);
            if ph == 0 && pw == 0 {
                x
            } else if h > ph && w > pw {
                crate::nn::reflection_pad2d(&x, 0, pw, 0, ph)?
            } else {
                x.pad_with_same(2, 0, ph)?.pad_with_same(3, 0, pw)?
            }
        }
        Pad::Replicate { multiple, min } => {
            let target = |n: usize| n.div_ceil(multiple).max(min.div_ceil(multiple)) * multiple;
            x.pad_with_same(2, 0, target(h) - h)?.pad_with_same(3, 0, target(w) - w)?
        }
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
                let io = NetworkIo { input: range, output: range, pad };
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
        let io = NetworkIo { input: PixelRange::Unit, output: PixelRange::Unit, pad: Pad::Reflect { multiple: 4 } };
        assert_eq!(apply_network(&tiny, io, &Device::Cpu, |x| Ok(x.clone()))?, tiny);
        Ok(())
    }
}
