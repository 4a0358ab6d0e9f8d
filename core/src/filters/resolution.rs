//! Processing resolution for any filter: the frame is resized to the size the network runs at, filtered, and
//! the result scaled back to the frame's size. Learned filters cost roughly their pixel count, so this is the
//! knob that makes them live on a CPU.

use crate::filter::Filter;
use anyhow::{bail, Context, Result};
use image::imageops::{resize, FilterType};
use image::RgbImage;

/// The size a wrapped filter sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessingSize {
    /// Exactly `w x h` (aspect ratio not kept).
    Exact(u32, u32),
    /// The longer side becomes this many pixels, the aspect ratio is kept; both sides are rounded to a
    /// multiple of 4, which strided convolutions and 2x up/down-sampling networks need.
    LongSide(u32),
}

impl ProcessingSize {
    /// `WxH` or a single number (the long side).
    pub fn parse(s: &str) -> Result<Self> {
        let num = |v: &str| -> Result<u32> {
            let n: u32 = v.trim().parse().with_context(|| format!("'{v}' is not a whole number"))?;
            if !(4..=8192).contains(&n) {
                bail!("{n} is not a usable size (4..=8192)");
            }
            Ok(n)
        };
        let size = match s.split_once(['x', 'X']) {
            Some((w, h)) => ProcessingSize::Exact(num(w)?, num(h)?),
            None => ProcessingSize::LongSide(num(s)?),
        };
        Ok(size)
    }

    /// The processing size for a `w x h` frame.
    pub fn for_frame(self, w: u32, h: u32) -> (u32, u32) {
        match self {
            ProcessingSize::Exact(pw, ph) => (pw, ph),
            ProcessingSize::LongSide(n) => {
                let scale = n as f64 / w.max(h).max(1) as f64;
                let side = |v: u32| (((v as f64 * scale) / 4.0).round() as u32 * 4).max(4);
                (side(w), side(h))
            }
        }
    }
}

/// A filter run at a [`ProcessingSize`].
pub struct AtResolution {
    inner: Box<dyn Filter>,
    size: ProcessingSize,
}

impl AtResolution {
    pub fn new(inner: Box<dyn Filter>, size: ProcessingSize) -> Self {
        AtResolution { inner, size }
    }
}

impl Filter for AtResolution {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        let (w, h) = frame.dimensions();
        let (pw, ph) = self.size.for_frame(w, h);
        if (pw, ph) == (w, h) {
            return self.inner.apply(frame);
        }
        // Bilinear both ways: cheap, and a network's output is smooth enough that sharper kernels gain little.
        let small = resize(frame, pw, ph, FilterType::Triangle);
        let styled = self.inner.apply(&small)?;
        if styled.dimensions() != (pw, ph) {
            bail!("filter '{}' turned a {pw}x{ph} frame into {:?}", self.inner.name(), styled.dimensions());
        }
        Ok(resize(&styled, w, h, FilterType::Triangle))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use std::sync::{Arc, Mutex};

    /// Records the sizes it is asked to filter and paints everything red.
    struct SizeSpy(Arc<Mutex<Vec<(u32, u32)>>>);
    impl Filter for SizeSpy {
        fn name(&self) -> String {
            "spy".into()
        }
        fn apply(&self, f: &RgbImage) -> Result<RgbImage> {
            self.0.lock().unwrap().push(f.dimensions());
            Ok(RgbImage::from_pixel(f.width(), f.height(), Rgb([255, 0, 0])))
        }
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(ProcessingSize::parse("256").unwrap(), ProcessingSize::LongSide(256));
        assert_eq!(ProcessingSize::parse("320x240").unwrap(), ProcessingSize::Exact(320, 240));
        for bad in ["", "abc", "0", "2x2", "100000"] {
            assert!(ProcessingSize::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ProcessingSize::LongSide(256).for_frame(640, 480), (256, 192));
        assert_eq!(ProcessingSize::LongSide(250).for_frame(320, 240), (252, 188));
    }

    #[test]
    fn filters_at_the_processing_size_and_scales_back() -> Result<()> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let f = AtResolution::new(Box::new(SizeSpy(seen.clone())), ProcessingSize::LongSide(160));
        let out = f.apply(&RgbImage::new(320, 240))?;
        assert_eq!(*seen.lock().unwrap(), [(160, 120)]);
        assert_eq!(out.dimensions(), (320, 240));
        assert_eq!(out.get_pixel(100, 100), &Rgb([255, 0, 0]));
        assert_eq!(f.name(), "spy");
        Ok(())
    }
}
