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
use serde::{Deserialize, Serialize};
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

/// A conv kernel as the layer uses it: converted to Candle's layout once (inference), or kept in the file's
/// layout and converted on every forward, so that training updates the file-layout variable itself and a
/// trained net is written back in the layout `tfstyle:` reads.
enum Kernel {
    Prepared(Tensor),
    Trainable(Tensor),
}

/// conv HWIO -> OIHW; conv2d_transpose `[H, W, out, in]` -> `[in, out, H, W]`: the same permutation.
fn to_candle_layout(kernel: &Tensor) -> candle_core::Result<Tensor> {
    kernel.permute((3, 2, 0, 1))?.contiguous()
}

/// A 'SAME' conv (`transpose == false`, weight OIHW) or a stride-2 'SAME' transposed conv to exactly 2H×2W
/// (weight `[in, out, kh, kw]`), each followed by its instance norm.
struct Layer {
    kernel: Kernel,
    stride: usize,
    transpose: bool,
    norm: Norm,
}

impl Layer {
    fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        let weight = match &self.kernel {
            Kernel::Prepared(w) => w.clone(),
            Kernel::Trainable(file_layout) => to_candle_layout(file_layout)?,
        };
        let (_, _, h, w) = x.dims4()?;
        let k = weight.dim(2)?;
        let y = if self.transpose {
            // The transposed conv of a k3 s2 'SAME' conv from 2n to n, whose padding before is 0: the full
            // transposed conv (2n+1) minus its last row and column.
            let y = crate::nn::conv::conv_transpose2d_no_bias(x, &weight, self.stride, 0, 0)?;
            y.narrow(2, 0, 2 * h)?.narrow(3, 0, 2 * w)?
        } else {
            let (top, bottom) = same_padding(h, k, self.stride);
            let (left, right) = same_padding(w, k, self.stride);
            if top == bottom && left == right && top == left {
                // Symmetric (every stride-1 conv, and stride 2 on odd sizes): the conv pads as it reads, without
                // a padded copy.
                crate::nn::conv::conv2d_no_bias(x, &weight, self.stride, top)?
            } else {
                let x = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
                crate::nn::conv::conv2d_no_bias(&x, &weight, self.stride, 0)?
            }
        };
        self.norm.forward(&y, relu)
    }
}

/// The widths of a TensorFlow fast-style transformer: channels after `conv1`, `conv2` and `conv3` (the residual
/// stream), and its number of residual blocks. matta: `[32, 64, 128]`, 5 blocks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TfTransformerNetConfig {
    pub widths: [usize; 3],
    pub residual_blocks: usize,
}

impl TfTransformerNetConfig {
    /// Every tensor of a net of this config: key and shape in the file's layout.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        let [c1, c2, c3] = self.widths;
        let mut convs = vec![("conv1".to_string(), [9, 9, 3, c1]), ("conv2".into(), [3, 3, c1, c2]), ("conv3".into(), [3, 3, c2, c3])];
        for k in 1..=self.residual_blocks {
            convs.push((format!("res{k}.conv1"), [3, 3, c3, c3]));
            convs.push((format!("res{k}.conv2"), [3, 3, c3, c3]));
        }
        // Transposed convs are `[H, W, out, in]`.
        convs.extend([("deconv1".to_string(), [3, 3, c2, c3]), ("deconv2".into(), [3, 3, c1, c2]), ("conv_out".into(), [9, 9, c1, 3])]);
        convs
            .into_iter()
            .flat_map(|(name, shape)| {
                let out = if name.starts_with("deconv") { shape[2] } else { shape[3] };
                [(format!("{name}.weight"), shape.to_vec()), (format!("{name}.in_scale"), vec![out]), (format!("{name}.in_shift"), vec![out])]
            })
            .collect()
    }
}

/// A smaller net's starting weights cut from a trained one (`tensors`, the file's keys and layouts): each layer
/// keeps the output channels whose instance-norm scales are largest (a channel the norm scales near 0 contributes
/// little downstream) and the next layer reads those. The residual stream is one set of channels shared by
/// `conv3` and every block's output, chosen by their scales together; it keeps the blocks whose output scales are
/// largest. At the trained net's own widths and block count the result is the trained net.
pub fn narrowed(tensors: &HashMap<String, Tensor>, to: &TfTransformerNetConfig, source: &str) -> Result<HashMap<String, Tensor>> {
    let get = |key: &str| -> Result<Tensor> {
        Ok(tensors
            .get(key)
            .with_context(|| format!("{source}: tensor `{key}` is missing; not a TensorFlow fast-style transformer"))?
            .to_dtype(DType::F32)?)
    };
    let scale_magnitude = |keys: &[String]| -> Result<Vec<f32>> {
        let mut sum: Option<Tensor> = None;
        for key in keys {
            let a = get(key)?.abs()?;
            sum = Some(match sum {
                None => a,
                Some(s) => (s + a)?,
            });
        }
        Ok(sum.context("no scales")?.to_vec1::<f32>()?)
    };
    // Indices of the `n` largest values, in their original order.
    let largest = |values: Vec<f32>, n: usize, what: &str| -> Result<Tensor> {
        if n > values.len() {
            bail!("{source}: {what} has {} channels; a narrowed copy cannot have {n}", values.len());
        }
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_by(|&a, &b| values[b as usize].total_cmp(&values[a as usize]));
        order.truncate(n);
        order.sort_unstable();
        Ok(Tensor::new(order, &Device::Cpu)?)
    };
    let blocks = (1..).take_while(|k| tensors.contains_key(&format!("res{k}.conv1.weight"))).count();
    if to.residual_blocks > blocks {
        bail!("{source}: has {blocks} residual blocks; a narrowed copy cannot have {}", to.residual_blocks);
    }
    let [c1, c2, c3] = to.widths;
    // No skip connections: the encoder's and the decoder's channels at one size are unrelated sets.
    let own = |layer: &str, n: usize, what: &str| largest(scale_magnitude(&[format!("{layer}.in_scale")])?, n, what);
    let full = own("conv1", c1, "the full-size encoder (conv1)")?;
    let half = own("conv2", c2, "the half-size encoder (conv2)")?;
    let half_up = own("deconv1", c2, "the half-size decoder (deconv1)")?;
    let full_up = own("deconv2", c1, "the full-size decoder (deconv2)")?;
    let mut stream_keys = vec!["conv3.in_scale".to_string()];
    stream_keys.extend((1..=blocks).map(|k| format!("res{k}.conv2.in_scale")));
    let stream = largest(scale_magnitude(&stream_keys)?, c3, "the residual stream")?;
    let mut block_weight: Vec<(usize, f32)> =
        (1..=blocks).map(|k| Ok((k, get(&format!("res{k}.conv2.in_scale"))?.abs()?.sum_all()?.to_scalar::<f32>()?))).collect::<Result<_>>()?;
    block_weight.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut kept: Vec<usize> = block_weight.iter().take(to.residual_blocks).map(|b| b.0).collect();
    kept.sort_unstable();

    let mut out = HashMap::new();
    // One layer: its kernel with input channels `inputs` (axis 2) and outputs `outputs` (axis 3, or 2 for a
    // transposed kernel's `[H, W, out, in]`), and the norm of those outputs.
    let mut put = |to_name: &str, from: &str, inputs: Option<&Tensor>, outputs: Option<&Tensor>, transpose: bool| -> Result<()> {
        let (in_axis, out_axis) = if transpose { (3, 2) } else { (2, 3) };
        let mut w = get(&format!("{from}.weight"))?;
        if let Some(i) = inputs {
            w = w.index_select(i, in_axis)?;
        }
        let (mut scale, mut shift) = (get(&format!("{from}.in_scale"))?, get(&format!("{from}.in_shift"))?);
        if let Some(o) = outputs {
            w = w.index_select(o, out_axis)?;
            scale = scale.index_select(o, 0)?;
            shift = shift.index_select(o, 0)?;
        }
        out.insert(format!("{to_name}.weight"), w.contiguous()?);
        out.insert(format!("{to_name}.in_scale"), scale);
        out.insert(format!("{to_name}.in_shift"), shift);
        Ok(())
    };
    put("conv1", "conv1", None, Some(&full), false)?;
    put("conv2", "conv2", Some(&full), Some(&half), false)?;
    put("conv3", "conv3", Some(&half), Some(&stream), false)?;
    for (j, k) in kept.iter().enumerate() {
        // A block's inner width stays the stream's: its inner channels are cut by their own scales.
        let inner = largest(get(&format!("res{k}.conv1.in_scale"))?.abs()?.to_vec1::<f32>()?, c3, "a residual block")?;
        put(&format!("res{}.conv1", j + 1), &format!("res{k}.conv1"), Some(&stream), Some(&inner), false)?;
        put(&format!("res{}.conv2", j + 1), &format!("res{k}.conv2"), Some(&inner), Some(&stream), false)?;
    }
    put("deconv1", "deconv1", Some(&stream), Some(&half_up), true)?;
    put("deconv2", "deconv2", Some(&half_up), Some(&full_up), true)?;
    put("conv_out", "conv_out", Some(&full_up), None, false)?;
    Ok(out)
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
        Self::build(tensors, device, source, false)
    }

    /// A trainable net of `config`: its variables under `vb`, named and laid out as the file (`tfstyle:`) has
    /// them. Kernels start He-normal, instance-norm scales at 1 and shifts at 0.
    pub fn new(config: &TfTransformerNetConfig, vb: candle_nn::VarBuilder) -> Result<Self> {
        if config.widths.contains(&0) || config.residual_blocks == 0 {
            bail!("TensorFlow fast-style transformer widths and residual blocks must be positive: {config:?}");
        }
        let mut tensors = HashMap::new();
        for (key, shape) in config.shapes() {
            let init = if key.ends_with(".weight") {
                // Fan-in of a conv kernel HWIO is H·W·I; of a transposed one [H, W, out, in], H·W·in.
                let fan_in = if key.starts_with("deconv") { shape[0] * shape[1] * shape[3] } else { shape[0] * shape[1] * shape[2] };
                candle_nn::Init::Randn { mean: 0.0, stdev: (2.0 / fan_in as f64).sqrt() }
            } else {
                candle_nn::Init::Const(if key.ends_with(".in_scale") { 1.0 } else { 0.0 })
            };
            tensors.insert(key.clone(), vb.get_with_hints(shape, &key, init)?);
        }
        Self::build(&tensors, vb.device(), "the trainable net", true)
    }

    fn build(tensors: &HashMap<String, Tensor>, device: &Device, source: &str, trainable: bool) -> Result<Self> {
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
            let channels = if transpose { w.dim(2)? } else { w.dim(3)? };
            let norm_param = |p: &str| -> Result<Tensor> {
                let t = get(&format!("{name}.{p}"))?;
                if t.dims() != [channels] {
                    bail!("{source}: `{name}.{p}` has shape {:?}, the conv has {channels} output channels", t.dims());
                }
                Ok(t.reshape((1, channels, 1, 1))?)
            };
            let kernel = if trainable { Kernel::Trainable(w) } else { Kernel::Prepared(to_candle_layout(&w)?) };
            Ok(Layer { kernel, stride, transpose, norm: Norm { scale: norm_param("in_scale")?, shift: norm_param("in_shift")? } })
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
        // File layouts: conv_out HWIO (O last), conv1 HWIO (I third).
        if get("conv_out.weight")?.dims()[3] != 3 || get("conv1.weight")?.dims()[2] != 3 {
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

    fn matta() -> Result<HashMap<String, Tensor>> {
        Ok(candle_core::safetensors::load_buffer(crate::assets::MATTA, &Device::Cpu)?)
    }

    #[test]
    fn narrowed_at_the_nets_own_widths_is_the_net() -> Result<()> {
        let weights = matta()?;
        let same = narrowed(&weights, &TfTransformerNetConfig { widths: [32, 64, 128], residual_blocks: 5 }, "matta")?;
        assert_eq!(same.len(), weights.len());
        for (key, t) in &weights {
            let a = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            assert_eq!(same[key].dims(), t.dims(), "{key}");
            assert_eq!(same[key].flatten_all()?.to_vec1::<f32>()?, a, "{key}");
        }
        Ok(())
    }

    /// A narrowed copy has exactly the shapes of its config, loads as a filter's net, keeps the teacher's
    /// largest-scale channels and blocks, and a copy wider than the teacher is refused.
    #[test]
    fn narrowed_copy_has_its_configs_shapes_and_the_strongest_channels() -> Result<()> {
        let weights = matta()?;
        let config = TfTransformerNetConfig { widths: [8, 16, 24], residual_blocks: 2 };
        let small = narrowed(&weights, &config, "matta")?;
        assert_eq!(small.len(), config.shapes().len());
        for (key, shape) in config.shapes() {
            assert_eq!(small[&key].dims(), shape.as_slice(), "{key}");
        }
        let both = weights["conv1.in_scale"].to_dtype(DType::F32)?.abs()?.to_vec1::<f32>()?;
        let mut order: Vec<usize> = (0..both.len()).collect();
        order.sort_by(|&a, &b| both[b].total_cmp(&both[a]));
        let mut top: Vec<usize> = order[..8].to_vec();
        top.sort_unstable();
        let shifts = weights["conv1.in_shift"].to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let expected: Vec<f32> = top.iter().map(|&i| shifts[i]).collect();
        assert_eq!(small["conv1.in_shift"].to_vec1::<f32>()?, expected);
        let net = TfTransformerNet::from_tensors(&small, &Device::Cpu, "narrowed")?;
        assert_eq!(net.forward(&Tensor::full(100f32, (1, 3, 12, 16), &Device::Cpu)?)?.dims(), [1, 3, 12, 16]);
        let err = narrowed(&weights, &TfTransformerNetConfig { widths: [8, 16, 256], residual_blocks: 2 }, "matta").err().unwrap().to_string();
        assert!(err.contains("the residual stream has 128 channels"), "{err}");
        let err = narrowed(&weights, &TfTransformerNetConfig { widths: [8, 16, 24], residual_blocks: 6 }, "matta").err().unwrap().to_string();
        assert!(err.contains("5 residual blocks"), "{err}");
        Ok(())
    }

    /// Where the channels and blocks the cut drops are silent in the full net (instance-norm scale and shift 0,
    /// so they output 0 and add nothing), the cut net computes the same function: every kept index, in every
    /// layer and both kernel layouts, is the right one.
    #[test]
    fn narrowed_copy_computes_the_nets_function_where_the_dropped_parts_are_silent() -> Result<()> {
        let mut weights: HashMap<String, Tensor> = matta()?.into_iter().map(|(k, v)| (k, v.to_dtype(DType::F32).unwrap())).collect();
        let mut silence = |layer: &str, channels: &[usize]| {
            for p in ["in_scale", "in_shift"] {
                let key = format!("{layer}.{p}");
                let mut v = weights[&key].to_vec1::<f32>().unwrap();
                for &c in channels {
                    v[c] = 0.0;
                }
                weights.insert(key, Tensor::new(v, &Device::Cpu).unwrap());
            }
        };
        let every = |step: usize, offset: usize, n: usize| (offset..n).step_by(step).collect::<Vec<_>>();
        silence("conv1", &every(4, 1, 32)); // 24 of 32 kept
        silence("deconv2", &every(4, 2, 32));
        silence("conv2", &every(4, 3, 64)); // 48 of 64
        silence("deconv1", &every(4, 0, 64));
        let dropped_stream = every(4, 1, 128); // 96 of 128
        silence("conv3", &dropped_stream);
        for k in 1..=5 {
            silence(&format!("res{k}.conv1"), &every(4, k % 4, 128));
            if k == 2 {
                silence("res2.conv2", &(0..128).collect::<Vec<_>>()); // the block adds nothing: dropped
            } else {
                silence(&format!("res{k}.conv2"), &dropped_stream);
            }
        }
        let config = TfTransformerNetConfig { widths: [24, 48, 96], residual_blocks: 4 };
        let small = narrowed(&weights, &config, "silenced matta")?;
        let x = ((crate::nn::gradcheck::seeded(&[1, 3, 20, 28], 12)?.to_dtype(DType::F32)? + 1.0)? * 120.0)?;
        let full = TfTransformerNet::from_tensors(&weights, &Device::Cpu, "full")?.forward(&x)?;
        let cut = TfTransformerNet::from_tensors(&small, &Device::Cpu, "cut")?.forward(&x)?;
        let e = rel_err(&cut, &full);
        assert!(e < 1e-4, "relative error {e}");
        Ok(())
    }

    /// The trainable net computes what the same weights compute when loaded for inference, and the gradient of
    /// its output reaches every variable (kept in the file's layout, so the trained net saves as `tfstyle:`).
    #[test]
    fn trainable_net_matches_the_loaded_net_and_trains_every_variable() -> Result<()> {
        let config = TfTransformerNetConfig { widths: [4, 8, 8], residual_blocks: 2 };
        let vars = candle_nn::VarMap::new();
        let net = TfTransformerNet::new(&config, crate::nn::init::seeded_var_builder(&vars, 3, DType::F32, &Device::Cpu))?;
        let tensors: HashMap<String, Tensor> = vars.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().copy().unwrap())).collect();
        assert_eq!(tensors.len(), config.shapes().len());
        for (key, shape) in config.shapes() {
            assert_eq!(tensors[&key].dims(), shape.as_slice(), "{key}");
        }
        let x = ((crate::nn::gradcheck::seeded(&[2, 3, 12, 20], 5)?.to_dtype(DType::F32)? + 1.0)? * 100.0)?;
        let trained = net.forward(&x)?;
        let loaded = TfTransformerNet::from_tensors(&tensors, &Device::Cpu, "copy")?.forward(&x)?;
        let e = rel_err(&trained, &loaded);
        assert!(e < 1e-5, "relative error {e}");
        let grads = trained.sqr()?.mean_all()?.backward()?;
        for (key, var) in vars.data().lock().unwrap().iter() {
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{key}: no gradient"));
            assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0, "{key}: zero gradient");
        }
        Ok(())
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
