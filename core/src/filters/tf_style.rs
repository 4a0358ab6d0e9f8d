//! A TensorFlow fast-style transformer (`models::tf_transformer_net`: ml5's "matta" and other ml5/lengstrom
//! checkpoints in that layout) as a `Filter`: spec `tfstyle:PATH`, or the built-in `matta`. The frame is
//! reflect-padded to a multiple of 4 (so the network's 'SAME' strides keep it aligned), stylised in 0..255 and
//! cropped back.

use super::network::{apply_network, NetworkIo, Pad, STYLE_NET_BYTES_PER_PIXEL};
use crate::filter::Filter;
use crate::io::image::PixelRange;
use crate::models::tf_transformer_net::TfTransformerNet;
use anyhow::{Context, Result};
use candle_core::Device;
use std::path::Path;
use std::sync::Arc;

/// The weights of a filter spec naming a TensorFlow fast-style transformer (`matta`, `matta-live` or
/// `tfstyle:PATH`, the file's keys and layouts), or `None` for any other filter.
pub fn tf_style_weights(spec: &str) -> Result<Option<std::collections::HashMap<String, candle_core::Tensor>>> {
    let spec = spec.trim();
    let builtin = match spec {
        "matta" => Some((crate::assets::MATTA, "matta.safetensors")),
        "matta-live" => Some((crate::assets::MATTA_LIVE, "matta-live.safetensors")),
        _ => None,
    };
    if let Some((bytes, name)) = builtin {
        return Ok(Some(super::builtin::tensors(bytes, name)?));
    }
    match spec.strip_prefix("tfstyle:") {
        Some(path) => Ok(Some(crate::io::weights::read_tensors(Path::new(path), &Device::Cpu)?)),
        None => Ok(None),
    }
}

pub struct TfStyleFilter {
    name: String,
    net: Arc<TfTransformerNet>,
    device: Device,
}

impl TfStyleFilter {
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let net = TfTransformerNet::load(path, device)?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "tfstyle".into());
        Ok(Self::from_net(&name, Arc::new(net), device))
    }

    pub fn from_net(name: &str, net: Arc<TfTransformerNet>, device: &Device) -> Self {
        Self { name: name.into(), net, device: device.clone() }
    }
}

impl Filter for TfStyleFilter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn apply(&self, frame: &image::RgbImage) -> Result<image::RgbImage> {
        let (w, h) = frame.dimensions();
        let io = NetworkIo {
            input: PixelRange::Byte,
            output: PixelRange::Byte,
            pad: Pad::Reflect { multiple: 4 },
            bytes_per_pixel: STYLE_NET_BYTES_PER_PIXEL,
        };
        apply_network(frame, io, &self.device, |x| self.net.forward(x).with_context(|| format!("style network `{}` on a {w}x{h} image", self.name)))
    }
}
