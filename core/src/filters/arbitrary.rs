//! Arbitrary style from any image (Magenta, `models::magenta_arbitrary`) as a `Filter`: spec
//! `arbitrary:STYLE_IMAGE`. The style image is centre-cropped to a square and resized to 256×256 (what the
//! predictor was trained on), turned into a style vector once, and bound into the transformer; each frame is
//! then reflect-padded to a multiple of 4, stylised and cropped back. The built-in networks run on the CPU in f32.

use crate::filter::Filter;
use crate::models::magenta_arbitrary::{StylePredictor, StyleTransformer, StyledTransformer, STYLE_SIZE};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use std::path::Path;

pub struct ArbitraryStyleFilter {
    name: String,
    transformer: StyledTransformer,
}

/// HWC RGB bytes -> `[1, H, W, 3]` f32 in [0, 1] (the Magenta graphs take NHWC).
fn nhwc01(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let data: Vec<f32> = img.as_raw().iter().map(|&b| b as f32 / 255.0).collect();
    Ok(Tensor::from_vec(data, (1, h as usize, w as usize, 3), &Device::Cpu)?)
}

/// The style image as the predictor sees it: the centred square, 256×256 (Catmull-Rom).
pub fn style_input(style: &RgbImage) -> RgbImage {
    let (w, h) = style.dimensions();
    let side = w.min(h);
    let square = image::imageops::crop_imm(style, (w - side) / 2, (h - side) / 2, side, side).to_image();
    image::imageops::resize(&square, STYLE_SIZE, STYLE_SIZE, image::imageops::FilterType::CatmullRom)
}

impl ArbitraryStyleFilter {
    /// The filter for the style image at `path`, with the given networks.
    pub fn open(path: &Path, predictor: &StylePredictor, transformer: &StyleTransformer) -> Result<Self> {
        let style = crate::style::open_rgb(path)?;
        if style.width().min(style.height()) < 16 {
            bail!("style image {} is {}x{}: too small to take a style from (at least 16x16)", path.display(), style.width(), style.height());
        }
        let vector = predictor.predict(&nhwc01(&style_input(&style))?).with_context(|| format!("style of {}", path.display()))?;
        let name = path.file_stem().map(|s| format!("arbitrary:{}", s.to_string_lossy())).unwrap_or_else(|| "arbitrary".into());
        Ok(Self { name, transformer: transformer.with_style(&vector)? })
    }
}

impl Filter for ArbitraryStyleFilter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        let (w, h) = frame.dimensions();
        if w.min(h) < 8 {
            bail!("filter {}: a {w}x{h} frame is too small (at least 8x8)", self.name);
        }
        // Reflect-pad right and bottom to multiples of 4 (the two stride-2 stages need it), crop back after.
        let (pw, ph) = ((4 - w % 4) % 4, (4 - h % 4) % 4);
        let x = nhwc01(frame)?;
        let x = if pw + ph > 0 { crate::onnx::reflect_pad(&x, &[0, 0, 0, 0, 0, ph as i64, pw as i64, 0])? } else { x };
        let y = self.transformer.forward(&x).with_context(|| format!("filter {} on a {w}x{h} frame", self.name))?;
        let y = y.narrow(1, 0, h as usize)?.narrow(2, 0, w as usize)?;
        let bytes: Vec<u8> = y.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8).collect();
        RgbImage::from_raw(w, h, bytes).context("stylised frame size")
    }
}
