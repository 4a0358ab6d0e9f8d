//! AnimeGANv2 and CycleGAN generators as filters (`animegan:PATH`, `cyclegan:PATH`). Both networks need H and W
//! to be multiples of 4, so a frame is edge-padded up to one and the result cropped back: any size works.

use super::network::{apply_network, NetworkIo, Pad, GAN_BYTES_PER_PIXEL};
use crate::compute::Compute;
use crate::filter::Filter;
use crate::io::image::PixelRange;
use crate::models::animegan::AnimeGanV2;
use crate::models::cyclegan::{load_generator, Direction, ResnetGenerator};
use crate::nn::bilinear::ResizeConvention;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use std::path::Path;

/// AnimeGANv2 and CycleGAN generators: [-1, 1] pixels, sizes that are multiples of 4 (at least 8).
const GAN_IO: NetworkIo = NetworkIo {
    input: PixelRange::Signed,
    output: PixelRange::Signed,
    pad: Pad::Replicate { multiple: 4, min: 8 },
    bytes_per_pixel: GAN_BYTES_PER_PIXEL,
};

pub struct AnimeGanFilter {
    net: AnimeGanV2,
    convention: ResizeConvention,
    name: String,
    device: Device,
    /// The network's weight type; frames are cast to it.
    dtype: DType,
}

impl AnimeGanFilter {
    pub fn open(path: &Path, convention: ResizeConvention, device: &Device) -> Result<Self> {
        Self::open_on(path, convention, &Compute { device: device.clone(), dtype: DType::F32 })
    }

    /// As `open`, with the weights on `compute.device` in `compute.dtype`.
    pub fn open_on(path: &Path, convention: ResizeConvention, compute: &Compute) -> Result<Self> {
        let (tensors, source) = AnimeGanV2::read_state_dict(path, &Device::Cpu)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "animegan".into());
        Self::from_tensors(tensors, &source, &stem, convention, compute)
    }

    /// A generator from named tensors (e.g. a built-in model's bytes), on `compute`.
    pub fn from_tensors(
        tensors: std::collections::HashMap<String, Tensor>,
        source: &str,
        name: &str,
        convention: ResizeConvention,
        compute: &Compute,
    ) -> Result<Self> {
        let net = AnimeGanV2::from_tensors_as(compute.cast(tensors)?, compute.dtype, source, &compute.device)?;
        Ok(Self { net, convention, name: name.to_string(), device: compute.device.clone(), dtype: compute.dtype })
    }
}

impl Filter for AnimeGanFilter {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        apply_network(frame, GAN_IO, &self.device, |x| self.net.forward(&x.to_dtype(self.dtype)?, self.convention))
    }
}

pub struct CycleGanFilter {
    net: ResnetGenerator,
    name: String,
    device: Device,
}

impl CycleGanFilter {
    pub fn open(path: &Path, direction: Direction, device: &Device) -> Result<Self> {
        let net = load_generator(path, direction, device)?;
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "cyclegan".into());
        Ok(Self { net, name: stem, device: device.clone() })
    }
}

impl Filter for CycleGanFilter {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        apply_network(frame, GAN_IO, &self.device, |x| Ok(self.net.forward(x)?))
    }
}

/// Splits `PATH#OPTION` (the option after the last `#`), unless the whole string is an existing file.
pub fn split_option(spec_path: &str) -> (&str, Option<&str>) {
    if Path::new(spec_path).exists() {
        return (spec_path, None);
    }
    match spec_path.rsplit_once('#') {
        Some((p, opt)) => (p, Some(opt)),
        None => (spec_path, None),
    }
}

/// `animegan:PATH[#align_corners|#tf_legacy]`.
pub fn open_animegan(spec_path: &str, compute: &Compute) -> Result<Box<dyn Filter>> {
    let (path, option) = split_option(spec_path);
    let convention = match option {
        None | Some("align_corners") => ResizeConvention::AlignCorners,
        Some("tf_legacy") => ResizeConvention::TfLegacy,
        Some(other) => anyhow::bail!("unknown AnimeGANv2 convention '#{other}' in 'animegan:{spec_path}': use #align_corners or #tf_legacy"),
    };
    Ok(Box::new(AnimeGanFilter::open_on(Path::new(path), convention, compute)?))
}

/// `cyclegan:PATH[#a2b|#b2a]`, in f32 (its loader builds the generator in f32).
pub fn open_cyclegan(spec_path: &str, compute: &Compute) -> Result<Box<dyn Filter>> {
    if compute.dtype != DType::F32 {
        anyhow::bail!("cyclegan:{spec_path}: CycleGAN filters run in f32 only, not {:?}; drop --dtype", compute.dtype);
    }
    let (path, option) = split_option(spec_path);
    let direction = match option {
        None => Direction::A2b,
        Some(d) => Direction::parse(d).with_context(|| format!("in 'cyclegan:{spec_path}'"))?,
    };
    Ok(Box::new(CycleGanFilter::open(Path::new(path), direction, &compute.device)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;

    #[test]
    fn odd_sized_frames_keep_their_size() -> Result<()> {
        let Some(g) = shared_path("golden/cyclegan-resnet-netG.pth") else { return Ok(()) };
        let f = crate::filters::open(&format!("cyclegan:{}#b2a", g.display()))?;
        let frame = RgbImage::from_fn(13, 6, |x, y| image::Rgb([(x * 19) as u8, (y * 40) as u8, 128]));
        let out = f.apply(&frame)?;
        assert_eq!(out.dimensions(), (13, 6));
        assert_ne!(out, frame);
        let Some(a) = shared_path("golden/animeganv2-net.pt") else { return Ok(()) };
        for spec in [format!("animegan:{}", a.display()), format!("animegan:{}#tf_legacy", a.display())] {
            assert_eq!(crate::filters::open(&spec)?.apply(&frame)?.dimensions(), (13, 6));
        }
        let err = crate::filters::open(&format!("animegan:{}#sideways", a.display())).err().unwrap().to_string();
        assert!(err.contains("sideways"), "{err}");
        Ok(())
    }

    #[test]
    fn missing_file_is_named() {
        let err = format!("{:#}", crate::filters::open("animegan:/nonexistent/hayao.pt").err().unwrap());
        assert!(err.contains("/nonexistent/hayao.pt"), "{err}");
        let err = format!("{:#}", crate::filters::open("cyclegan:/nonexistent/g.pth#b2a").err().unwrap());
        assert!(err.contains("/nonexistent/g.pth"), "{err}");
    }
}
