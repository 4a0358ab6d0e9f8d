//! Enlarging pictures for the page: the learned 2× upscaler ([`crate::models::upscaler`], trained by
//! `ganime train upscaler`) applied as often as needed, then Lanczos to the exact size; or Lanczos alone.
//! Sheets and the editors' "place" use [`Upscaling::best`]: the built-in learned upscaler where one ships
//! (it is shipped only when it measured better than Lanczos on held-out anime pictures), else Lanczos.

use crate::io::image::{image_to_tensor, tensor_to_image_in, PixelRange};
use crate::models::upscaler::{Upscaler, UpscalerConfig};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::imageops::FilterType;
use image::RgbImage;
use std::collections::HashMap;
use std::path::Path;

/// A trained upscaler loaded for inference.
pub struct LearnedUpscaler {
    model: Upscaler,
    /// Where it came from, for messages.
    pub source: String,
}

impl LearnedUpscaler {
    /// An `upscaler.safetensors` written by `ganime train upscaler` (its config in the metadata).
    pub fn open(path: &Path) -> Result<Self> {
        crate::io::weights::check_model_file(path, "upscaler")?;
        let bytes = std::fs::read(path).with_context(|| format!("cannot read upscaler {}", path.display()))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Self> {
        let meta = crate::io::weights::safetensors_metadata(bytes).with_context(|| format!("{source} is not a safetensors file"))?;
        if meta.get("ganime.kind").map(String::as_str) != Some("upscaler") {
            bail!("{source} is not an upscaler written by `ganime train upscaler` (no ganime.kind = upscaler)");
        }
        let trained: serde_json::Value = serde_json::from_str(meta.get("ganime.trained").map(String::as_str).unwrap_or(""))
            .with_context(|| format!("{source}: malformed config"))?;
        let config: UpscalerConfig =
            serde_json::from_value(trained["upscaler"].clone()).with_context(|| format!("{source}: malformed upscaler config"))?;
        config.validate().with_context(|| source.to_string())?;
        let tensors: HashMap<String, Tensor> = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)?
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_dtype(DType::F32)?)))
            .collect::<Result<_>>()?;
        let model =
            Upscaler::new(config, VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)).with_context(|| format!("{source}: wrong tensors"))?;
        Ok(Self { model, source: source.to_string() })
    }

    /// One pass: the picture `factor` times larger.
    pub fn enlarge(&self, img: &RgbImage) -> Result<RgbImage> {
        let (w, h) = img.dimensions();
        let r = self.model.config.factor as u64;
        crate::io::limits::check_rgb("the upscaled picture", 1, w as u64 * r, h as u64 * r)?;
        let x = image_to_tensor(img, &Device::Cpu)?;
        tensor_to_image_in(&self.model.forward(&x)?, PixelRange::Signed)
    }
}

/// How pictures are enlarged.
pub enum Upscaling {
    Lanczos,
    Learned(LearnedUpscaler),
}

impl Upscaling {
    /// The built-in learned upscaler when this build ships one, else Lanczos. Decoded once per process: sheets,
    /// every `generate --size` batch and every plug-in character use it.
    pub fn best() -> &'static Self {
        static BEST: std::sync::OnceLock<Upscaling> = std::sync::OnceLock::new();
        BEST.get_or_init(|| match crate::assets::ANIME_UPSCALER {
            Some(bytes) => LearnedUpscaler::from_bytes(bytes, "built-in anime-upscaler-2x.safetensors").map(Self::Learned).unwrap_or(Self::Lanczos),
            None => Self::Lanczos,
        })
    }

    pub fn name(&self) -> String {
        match self {
            Self::Lanczos => "lanczos".into(),
            Self::Learned(u) => format!("learned ({})", u.source),
        }
    }

    /// `img` resized to `w`×`h`: learned 2× passes while the picture is still smaller than the target, then
    /// Lanczos to the exact size (shrinking, or the last fraction of enlarging).
    pub fn resize(&self, img: &RgbImage, w: u32, h: u32) -> Result<RgbImage> {
        let mut img = img.clone();
        if let Self::Learned(u) = self {
            while img.width() < w && img.height() < h {
                img = u.enlarge(&img)?;
            }
        }
        if img.dimensions() == (w, h) {
            return Ok(img);
        }
        Ok(image::imageops::resize(&img, w, h, FilterType::Lanczos3))
    }
}

/// PSNR (dB, 8-bit) between two pictures of the same size.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.as_raw().len().max(1) as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// The degraded input of a measurement: `img` shrunk by `factor` with a box filter (as training pairs are
/// made).
pub fn box_downscale(img: &RgbImage, factor: u32) -> RgbImage {
    let (w, h) = (img.width() / factor, img.height() / factor);
    RgbImage::from_fn(w, h, |x, y| {
        let mut sum = [0u32; 3];
        for dy in 0..factor {
            for dx in 0..factor {
                let p = img.get_pixel(x * factor + dx, y * factor + dy).0;
                for c in 0..3 {
                    sum[c] += p[c] as u32;
                }
            }
        }
        let n = factor * factor;
        image::Rgb(sum.map(|s| ((s + n / 2) / n) as u8))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanczos_resizes_to_the_exact_size_and_psnr_is_sane() -> Result<()> {
        let img = RgbImage::from_fn(10, 8, |x, y| image::Rgb([(x * 20) as u8, (y * 30) as u8, 100]));
        let big = Upscaling::Lanczos.resize(&img, 25, 20)?;
        assert_eq!(big.dimensions(), (25, 20));
        assert!(psnr(&img, &img) > 100.0);
        let small = box_downscale(&img, 2);
        assert_eq!(small.dimensions(), (5, 4));
        assert_eq!(small.get_pixel(0, 0).0, [10, 15, 100]);
        assert!(LearnedUpscaler::from_bytes(b"not a model", "x.safetensors").is_err());
        Ok(())
    }
}
