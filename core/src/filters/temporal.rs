//! Temporal smoothing for any filter on video: networks run per frame flicker (textures and colours jump while
//! the scene stands still). The output is averaged with the previous output where the *input* did not change,
//! and taken as is where it did, so still regions calm down without ghost trails behind moving ones.

use crate::filter::Filter;
use anyhow::{bail, Result};
use image::RgbImage;
use rayon::prelude::*;
use std::sync::Mutex;

/// Input change (summed over R, G, B, 0..765) above which a pixel counts as moving and is not averaged.
const MOTION_THRESHOLD: f32 = 48.0;

pub struct TemporalSmoothing {
    inner: Box<dyn Filter>,
    /// Weight of the new output on a still pixel, in (0, 1]; 1 is no smoothing.
    new_weight: f32,
    /// Previous input and output frame.
    previous: Mutex<Option<(RgbImage, RgbImage)>>,
}

impl TemporalSmoothing {
    /// `amount` in [0, 1): 0 no smoothing, 0.8 strong (a still pixel keeps 80 % of its previous output).
    pub fn new(inner: Box<dyn Filter>, amount: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&amount) {
            bail!("temporal smoothing must be in [0, 1), got {amount}");
        }
        Ok(TemporalSmoothing { inner, new_weight: 1.0 - amount, previous: Mutex::new(None) })
    }
}

impl Filter for TemporalSmoothing {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        let styled = self.inner.apply(frame)?;
        let mut previous = self.previous.lock().unwrap_or_else(|e| e.into_inner());
        let out = match previous.as_ref() {
            // A new size (another source, a resolution change) starts over.
            Some((prev_in, prev_out)) if prev_in.dimensions() == frame.dimensions() && prev_out.dimensions() == styled.dimensions() => {
                let w = frame.width() as usize;
                let mut out = styled.clone();
                let (a, cur_in, p_in, p_out) = (self.new_weight, frame.as_raw(), prev_in.as_raw(), prev_out.as_raw());
                out.par_chunks_mut(w * 3).enumerate().for_each(|(y, row)| {
                    for x in 0..w {
                        let i = (y * w + x) * 3;
                        let motion: f32 = (0..3).map(|k| (cur_in[i + k] as f32 - p_in[i + k] as f32).abs()).sum();
                        let wt = a + (1.0 - a) * (motion / MOTION_THRESHOLD).min(1.0);
                        for k in 0..3 {
                            let v = wt * row[x * 3 + k] as f32 + (1.0 - wt) * p_out[i + k] as f32;
                            row[x * 3 + k] = v.round() as u8;
                        }
                    }
                });
                out
            }
            _ => styled,
        };
        *previous = Some((frame.clone(), out.clone()));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Flickers: alternately outputs black and white, whatever the input.
    struct Flicker(AtomicU32);
    impl Filter for Flicker {
        fn name(&self) -> String {
            "flicker".into()
        }
        fn apply(&self, f: &RgbImage) -> Result<RgbImage> {
            let v = if self.0.fetch_add(1, Ordering::Relaxed) % 2 == 0 { 0 } else { 255 };
            Ok(RgbImage::from_pixel(f.width(), f.height(), Rgb([v; 3])))
        }
    }

    #[test]
    fn still_pixels_are_averaged_moving_ones_follow_the_new_output() -> Result<()> {
        let f = TemporalSmoothing::new(Box::new(Flicker(AtomicU32::new(0))), 0.75)?;
        let still = RgbImage::from_pixel(4, 4, Rgb([100, 100, 100]));
        assert_eq!(f.apply(&still)?.get_pixel(0, 0)[0], 0);
        // Same input, output flips to white: only a quarter of the jump gets through.
        assert_eq!(f.apply(&still)?.get_pixel(0, 0)[0], 64);
        // The input changes a lot at (0, 0) only: that pixel takes the new (black) output, the others average.
        let mut moved = still.clone();
        moved.put_pixel(0, 0, Rgb([250, 250, 250]));
        let out = f.apply(&moved)?;
        assert_eq!(out.get_pixel(0, 0)[0], 0);
        assert_eq!(out.get_pixel(1, 1)[0], 48);
        // A new size starts over.
        assert_eq!(f.apply(&RgbImage::new(2, 2))?.get_pixel(0, 0)[0], 255);
        assert!(TemporalSmoothing::new(Box::new(Flicker(AtomicU32::new(0))), 1.0).is_err());
        Ok(())
    }
}
