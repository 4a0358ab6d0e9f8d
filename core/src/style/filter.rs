//! A feed-forward style network as a `Filter` (`style:PATH` in `filters::open`): RGB image -> tensor in
//! 0..255 -> `TransformerNet` -> cropped back to the input size (the network rounds sizes up to a multiple
//! of 4) -> clamped RGB image.

use crate::filter::Filter;
use crate::models::transformer_net::TransformerNet;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

pub struct StyleNetFilter {
    name: String,
    net: TransformerNet,
    device: Device,
}

impl StyleNetFilter {
    /// Opens a pytorch/examples `.pth` (zip or legacy), a safetensors with its keys, or a ganime style-training
    /// checkpoint (keys under `net.`).
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let tensors = crate::io::weights::read_tensors(path, &Device::Cpu)?;
        let tensors: HashMap<String, Tensor> = if tensors.contains_key("net.conv1.conv2d.weight") {
            tensors.into_iter().filter_map(|(k, t)| k.strip_prefix("net.").map(|k| (k.to_string(), t))).collect()
        } else {
            tensors
        };
        let net = TransformerNet::from_tensors(&tensors, DType::F32, device, &path.display().to_string())?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "style".into());
        Ok(Self { name, net, device: device.clone() })
    }

    pub fn from_net(name: &str, net: TransformerNet, device: &Device) -> Self {
        Self { name: name.into(), net, device: device.clone() }
    }
}

impl Filter for StyleNetFilter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn apply(&self, frame: &image::RgbImage) -> Result<image::RgbImage> {
        let (w, h) = frame.dimensions();
        let x = (super::image_to_rgb01(frame, &self.device)? * 255.0)?;
        let y = self.net.forward(&x).with_context(|| format!("style network `{}` on a {w}x{h} image", self.name))?;
        let y = y.narrow(2, 0, h as usize)?.narrow(3, 0, w as usize)?;
        super::tensor_to_image(&y, 255.0)
    }
}
