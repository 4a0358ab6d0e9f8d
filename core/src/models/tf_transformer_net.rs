//! The TensorFlow fast-style transformer of lengstrom/fast-style-transfer, as ml5 ships it (style "matta",
//! `../shared/weights/fast_style_ml5_matta/`). Keys and layouts are the ml5 checkpoint's, renamed as that
//! folder's README says: `conv1..3.weight` HWIO, `resN.conv{1,2}.weight` HWIO, `deconv{1,2}.weight`
//! `[H, W, out, in]` (tf.nn.conv2d_transpose), `conv_out.weight` HWIO, and for every conv `.in_scale` /
//! `.in_shift` (instance norm γ/β). The layouts are converted to Candle's at load time.
//!
//! Forward (ml5 `transferInternal`): TF 'SAME' zero padding (asymmetric for stride 2 on even sizes: the extra
//! row/column goes after), no conv biases, instance norm with eps 1e-3, ReLU except after the residual
//! blocks' second conv and the output conv; output `tanh(x)·150 + 127.5` (RGB 0..255, unclipped). Input RGB
//! 0..255 floats. The output is the input size rounded up to a multiple of 4.

use crate::nn::fused::NormActivation;
use crate::nn::norm::instance_norm_affine;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

const EPS: f64 = 1e-3;

/// Zero padding (before, after) of TensorFlow's 'SAME' for one axis of size `n`.
fn same_padding(n: usize, k: usize, s: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(n);
    (total / 2, total - total / 2)
}

struct Norm {
    scale: Tensor,
    shift: Tensor,
}

impl Norm {
    /// The norm, then ReLU when `relu`.
    fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        Ok(instance_norm_affine(x, &self.scale, &self.shift, EPS, if relu { NormActivation::Relu } else { NormActivation::None })?)
    }
}

/// A 'SAME' conv (`transpose == false`, weight OIHW) or a stride-2 'SAME' transposed conv to exactly 2H×2W
/// (weight `[in, out, kh, kw]`), each followed by its instance norm.
struct Layer {
    weight: Tensor,
    stride: usize,
    transpose: bool,
    norm: Norm,
}

impl Layer {
    fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let k = self.weight.dim(2)?;
        let y = if self.transpose {
            // The transposed conv of a k3 s2 'SAME' conv from 2n to n, whose padding before is 0: the full
            // transposed conv (2n+1) minus its last row and column.
            let y = crate::nn::conv::conv_transpose2d_no_bias(x, &self.weight, self.stride, 0, 0)?;
            y.narrow(2, 0, 2 * h)?.narrow(3, 0, 2 * w)?
        } else {
            let (top, bottom) = same_padding(h, k, self.stride);
            let (left, right) = same_padding(w, k, self.stride);
            let x = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
            crate::nn::conv::conv2d_no_bias(&x, &self.weight, self.stride, 0)?
        };
        self.norm.forward(&y, relu)
    }
}

pub struct TfTransformerNet {
    down: Vec<Layer>,
    res: Vec<(Layer, Layer)>,
    up: Vec<Layer>,
    out: Layer,
}

/// The downsampling convs (key, stride) and the upsampling transposed convs, in forward order.
const DOWN: [(&str, usize); 3] = [("conv1", 1), ("conv2", 2), ("conv3", 2)];
const UP: [&str; 2] = ["deconv1", "deconv2"];

impl TfTransformerNet {
    /// Builds the net from the checkpoint's tensors (any float dtype; computed in f32). `source` names the
    /// file in errors.
    pub fn from_tensors(tensors: &HashMap<String, Tensor>, device: &Device, source: &str) -> Result<Self> {
        let get = |key: &str| -> Result<Tensor> {
            let t = tensors
                .get(key)
                .with_context(|| format!("{source}: tensor `{key}` is missing; not a TensorFlow fast-style transformer (ml5/lengstrom layout)"))?;
            Ok(t.to_dtype(DType::F32)?.to_device(device)?)
        };
        let layer = |name: &str, stride: usize, transpose: bool| -> Result<Layer> {
            let w = get(&format!("{name}.weight"))?;
            if w.rank() != 4 {
                bail!("{source}: `{name}.weight` has shape {:?}; a TensorFlow conv kernel has 4 dimensions", w.dims());
            }
            // conv HWIO -> OIHW; conv2d_transpose [H, W, out, in] -> [in, out, H, W]: the same permutation.
            let weight = w.permute((3, 2, 0, 1))?.contiguous()?;
            let channels = if transpose { weight.dim(1)? } else { weight.dim(0)? };
            let norm_param = |p: &str| -> Result<Tensor> {
                let t = get(&format!("{name}.{p}"))?;
                if t.dims() != [channels] {
                    bail!("{source}: `{name}.{p}` has shape {:?}, the conv has {channels} output channels", t.dims());
                }
                Ok(t.reshape((1, channels, 1, 1))?)
            };
            Ok(Layer { weight, stride, transpose, norm: Norm { scale: norm_param("in_scale")?, shift: norm_param("in_shift")? } })
        };
        let down = DOWN.iter().map(|&(n, s)| layer(n, s, false)).collect::<Result<Vec<_>>>()?;
        let blocks = (1..).take_while(|k| tensors.contains_key(&format!("res{k}.conv1.weight"))).count();
        if blocks == 0 {
            bail!("{source}: no residual blocks (`res1.conv1.weight`); not a TensorFlow fast-style transformer");
        }
        let res = (1..=blocks)
            .map(|k| Ok((layer(&format!("res{k}.conv1"), 1, false)?, layer(&format!("res{k}.conv2"), 1, false)?)))
            .collect::<Result<Vec<_>>>()?;
        let up = UP.iter().map(|n| layer(n, 2, true)).collect::<Result<Vec<_>>>()?;
        let out = layer("conv_out", 1, false)?;
        if out.weight.dim(0)? != 3 || down[0].weight.dim(1)? != 3 {
            bail!("{source}: the first and last convs must have 3 (RGB) channels");
        }
        Ok(Self { down, res, up, out })
    }

    pub fn load(path: &std::path::Path, device: &Device) -> Result<Self> {
        let tensors = crate::io::weights::read_tensors(path, &Device::Cpu)?;
        Self::from_tensors(&tensors, device, &path.display().to_string())
    }

    /// RGB 0..255 `[N, 3, H, W]` -> stylised RGB on 0..255 (unclipped), `[N, 3, 4⌈H/4⌉, 4⌈W/4⌉]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for l in &self.down {
            h = l.forward(&h, true)?;
        }
        for (a, b) in &self.res {
            h = (&h + b.forward(&a.forward(&h, true)?, false)?)?;
        }
        for l in &self.up {
            h = l.forward(&h, true)?;
        }
        Ok(((self.out.forward(&h, false)?.tanh()? * 150.0)? + 127.5)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;

    #[test]
    fn same_padding_is_tensorflows() {
        assert_eq!(same_padding(128, 3, 2), (0, 1));
        assert_eq!(same_padding(117, 3, 2), (1, 1));
        assert_eq!(same_padding(90, 9, 1), (4, 4));
    }

    #[test]
    fn matta_matches_golden() -> Result<()> {
        let (Some(w), Some(g)) = (shared_path("weights/fast_style_ml5_matta/matta.safetensors"), shared_path("golden/matta-outputs.safetensors"))
        else {
            return Ok(());
        };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        let net = TfTransformerNet::load(&w, &Device::Cpu)?;
        for (x, y) in [("x", "y_unclipped"), ("x_odd", "y_unclipped_odd")] {
            let out = net.forward(&golden[x].to_dtype(DType::F32)?)?;
            assert_eq!(out.dims(), golden[y].dims());
            let e = rel_err(&out, &golden[y]);
            eprintln!("matta {y}: relative error {e:.2e}");
            assert!(e < 1e-4, "{y}: relative error {e}");
        }
        Ok(())
    }
}
