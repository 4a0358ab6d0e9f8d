//! The identity filter: what the camera pipeline costs by itself, and the "before" side of comparisons.

use crate::filter::Filter;
use anyhow::Result;
use image::RgbImage;

pub struct Passthrough;

impl Filter for Passthrough {
    fn name(&self) -> String {
        "passthrough".into()
    }
    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        Ok(frame.clone())
    }
}
