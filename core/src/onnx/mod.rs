//! A loader for QDQ-quantised ONNX graphs of the kind tf2onnx writes for int8 TFLite models (Magenta's
//! arbitrary-style networks): the graph's nodes run in order on ganime's own CPU layers, in f32.
//!
//! It is not a general ONNX interpreter: it takes the handful of operators those graphs use (convolution,
//! element-wise arithmetic, the instance-norm moments, pads, nearest resize, reshapes and the
//! `QuantizeLinear`/`DequantizeLinear` pairs) and refuses any other operator or attribute with an error
//! naming the node, so a graph of another kind fails at load time instead of computing something else.
//!
//! - int8/int32 weights are dequantised once at load: every node whose inputs are all constants (the weights'
//!   `DequantizeLinear`, constant reshapes) is evaluated then and dropped from the per-run plan.
//!   [`QdqGraph::bind`] does the same for an input that stays fixed (the style vector of a camera filter).
//! - Activations keep the graph's quantisation: `QuantizeLinear` rounds half to even and saturates to the
//!   zero point's type, as onnxruntime's reference (unfused) kernels do, so outputs follow the int8 model and
//!   not a float approximation of it.

pub mod proto;

use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use prost::Message;
use proto::{data_type, AttributeProto, NodeProto, TensorProto};
use std::collections::{HashMap, HashSet};

/// One executable node.
#[derive(Clone, Debug)]
struct Node {
    op: Op,
    inputs: Vec<String>,
    output: String,
    /// The node's name (or first output) for error messages.
    label: String,
    /// Inputs this node is the last reader of: freed once it has run (set by `plan_frees`).
    frees: Vec<String>,
}

#[derive(Clone, Debug)]
enum Op {
    Quantize {
        lo: f32,
        hi: f32,
    },
    /// A `QuantizeLinear` whose every reader is a `DequantizeLinear` with the same scale and zero point: both in
    /// one pass, producing the dequantised values (the readers become [`Op::Identity`]).
    FakeQuantize {
        lo: f32,
        hi: f32,
    },
    Identity,
    Dequantize {
        axis: usize,
    },
    Conv {
        pads: [usize; 4],
        stride: usize,
        group: usize,
    },
    Clip,
    Relu,
    Sigmoid,
    Sqrt,
    Reciprocal,
    Add,
    Sub,
    Mul,
    GlobalAveragePool,
    Reshape(Vec<i64>),
    Transpose(Vec<usize>),
    ReflectPad(Vec<i64>),
    ResizeNearest(Vec<f32>),
}

/// A parsed graph: constants (initialisers and folded nodes, f32), integer constants (shapes, pads), the
/// remaining nodes in execution order, and the graph's input and output names.
#[derive(Clone)]
pub struct QdqGraph {
    origin: String,
    consts: HashMap<String, Tensor>,
    nodes: Vec<Node>,
    pub inputs: Vec<(String, Vec<Option<i64>>)>,
    pub outputs: Vec<String>,
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

fn attr_str(node: &NodeProto, name: &str) -> Option<String> {
    attr(node, name).map(|a| String::from_utf8_lossy(&a.s).into_owned())
}

/// Values of an initialiser, as f64 (exact for every integer type these graphs hold), and its shape.
fn tensor_values(t: &TensorProto) -> Result<(Vec<f64>, Vec<usize>)> {
    if t.data_location == 1 {
        bail!("initialiser '{}' has its data in an external file, which ganime does not read", t.name);
    }
    let dims: Vec<usize> = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("initialiser '{}' has a negative dimension", t.name))?;
    // Checked: a product that wraps would let a huge shape pass with few values.
    let n =
        dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| anyhow!("initialiser '{}' has an impossible shape {dims:?}", t.name))?;
    let raw = &t.raw_data;
    let values: Vec<f64> = match t.data_type {
        data_type::FLOAT if !raw.is_empty() => raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        data_type::FLOAT => t.float_data.iter().map(|&v| v as f64).collect(),
        data_type::DOUBLE if !raw.is_empty() => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect(),
        data_type::DOUBLE => t.double_data.clone(),
        data_type::INT8 if !raw.is_empty() => raw.iter().map(|&b| b as i8 as f64).collect(),
        data_type::UINT8 if !raw.is_empty() => raw.iter().map(|&b| b as f64).collect(),
        data_type::INT8 | data_type::UINT8 => t.int32_data.iter().map(|&v| v as f64).collect(),
        data_type::INT32 if !raw.is_empty() => raw.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        data_type::INT32 => t.int32_data.iter().map(|&v| v as f64).collect(),
        data_type::INT64 if !raw.is_empty() => raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64).collect(),
        data_type::INT64 => t.int64_data.iter().map(|&v| v as f64).collect(),
        other => bail!("initialiser '{}' has ONNX data type {other}, which ganime does not read", t.name),
    };
    if values.len() != n {
        bail!("initialiser '{}' holds {} values for shape {dims:?}", t.name, values.len());
    }
    Ok((values, dims))
}

impl QdqGraph {
    /// Parses an ONNX model; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let model = proto::ModelProto::decode(bytes).map_err(|e| anyhow!("{origin}: not an ONNX model ({e})"))?;
        let graph = model.graph.ok_or_else(|| anyhow!("{origin}: the ONNX model has no graph"))?;
        let mut consts = HashMap::new();
        let mut ints = HashMap::new();
        // Zero points fix the integer type QuantizeLinear saturates to.
        let mut zero_point_types = HashMap::new();
        for init in &graph.initializer {
            let (values, dims) = tensor_values(init).with_context(|| origin.to_string())?;
            if init.data_type == data_type::INT64 {
                ints.insert(init.name.clone(), values.iter().map(|&v| v as i64).collect::<Vec<_>>());
            }
            zero_point_types.insert(init.name.clone(), init.data_type);
            let f32s: Vec<f32> = values.iter().map(|&v| v as f32).collect();
            consts.insert(init.name.clone(), Tensor::from_vec(f32s, dims, &Device::Cpu)?);
        }
        let initialised: HashSet<&String> = graph.initializer.iter().map(|i| &i.name).collect();
        let inputs = graph.input.iter().filter(|i| !initialised.contains(&i.name)).map(|i| (i.name.clone(), i.shape())).collect();
        let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        if outputs.is_empty() {
            bail!("{origin}: the ONNX graph declares no output");
        }
        let nodes = graph
            .node
            .iter()
            .map(|n| Self::node(n, &ints, &zero_point_types).with_context(|| format!("{origin}: node '{}' ({})", label(n), n.op_type)))
            .collect::<Result<Vec<_>>>()?;
        let mut g = Self { origin: origin.to_string(), consts, nodes, inputs, outputs };
        g.fold_constants()?;
        Ok(g)
    }

    fn node(n: &NodeProto, ints: &HashMap<String, Vec<i64>>, zp_types: &HashMap<String, i32>) -> Result<Node> {
        if !n.domain.is_empty() && n.domain != "ai.onnx" {
            bail!("operator domain '{}' is not supported", n.domain);
        }
        if n.output.len() != 1 {
            bail!("{} outputs; ganime runs single-output nodes only", n.output.len());
        }
        let const_ints = |i: usize| -> Result<Vec<i64>> {
            let name = n.input.get(i).ok_or_else(|| anyhow!("input {i} is missing"))?;
            ints.get(name).cloned().ok_or_else(|| anyhow!("input '{name}' must be a constant int64 initialiser"))
        };
        let known = |names: &[&str]| -> Result<()> {
            match n.attribute.iter().find(|a| !names.contains(&a.name.as_str())) {
                Some(a) => bail!("attribute '{}' is not supported", a.name),
                None => Ok(()),
            }
        };
        let op = match n.op_type.as_str() {
            "QuantizeLinear" | "DequantizeLinear" => {
                known(&["axis"])?;
                if n.op_type == "DequantizeLinear" {
                    // ONNX's default axis is 1 (tf2onnx writes 0 for per-output-channel weight scales).
                    let axis = attr(n, "axis").map(|a| a.i).unwrap_or(1);
                    Op::Dequantize { axis: usize::try_from(axis).map_err(|_| anyhow!("negative axis {axis} is not supported"))? }
                } else {
                    // No zero point means uint8.
                    let ty = n.input.get(2).and_then(|z| zp_types.get(z)).copied().unwrap_or(data_type::UINT8);
                    match ty {
                        data_type::UINT8 => Op::Quantize { lo: 0.0, hi: 255.0 },
                        data_type::INT8 => Op::Quantize { lo: -128.0, hi: 127.0 },
                        other => bail!("quantising to ONNX data type {other} is not supported"),
                    }
                }
            }
            "Conv" => {
                known(&["strides", "dilations", "kernel_shape", "pads", "group", "auto_pad"])?;
                if let Some(p) = attr_str(n, "auto_pad").filter(|p| p != "NOTSET") {
                    bail!("auto_pad {p} is not supported");
                }
                if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
                    bail!("dilated convolutions are not supported");
                }
                let strides = attr_ints(n, "strides").unwrap_or(vec![1, 1]);
                if strides.len() != 2 || strides[0] != strides[1] || strides[0] < 1 {
                    bail!("strides {strides:?}: only equal 2-D strides are supported");
                }
                let p = attr_ints(n, "pads").unwrap_or(vec![0; 4]);
                if p.len() != 4 || p.iter().any(|&v| v < 0) {
                    bail!("pads {p:?}: expected four non-negative values");
                }
                let group = attr(n, "group").map(|a| a.i).unwrap_or(1).max(1) as usize;
                Op::Conv { pads: [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize], stride: strides[0] as usize, group }
            }
            "Clip" => Op::Clip,
            "Relu" => Op::Relu,
            "Sigmoid" => Op::Sigmoid,
            "Sqrt" => Op::Sqrt,
            "Reciprocal" => Op::Reciprocal,
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            "GlobalAveragePool" => Op::GlobalAveragePool,
            "Reshape" => {
                known(&["allowzero"])?;
                Op::Reshape(const_ints(1)?)
            }
            "Transpose" => {
                known(&["perm"])?;
                let perm = attr_ints(n, "perm").ok_or_else(|| anyhow!("Transpose without perm"))?;
                Op::Transpose(perm.iter().map(|&p| p as usize).collect())
            }
            "Pad" => {
                known(&["mode"])?;
                match attr_str(n, "mode").as_deref() {
                    Some("reflect") => Op::ReflectPad(const_ints(1)?),
                    other => bail!("pad mode {other:?} is not supported (reflect only)"),
                }
            }
            "Resize" => {
                known(&["coordinate_transformation_mode", "exclude_outside", "mode", "nearest_mode"])?;
                let setting = |k: &str, want: &str| attr_str(n, k).is_none_or(|v| v == want);
                if attr_str(n, "mode").as_deref() != Some("nearest")
                    || !setting("coordinate_transformation_mode", "asymmetric")
                    || !setting("nearest_mode", "floor")
                {
                    bail!("only nearest, asymmetric, floor resizing is supported");
                }
                if n.input.len() != 3 {
                    bail!("only resizing by constant scales is supported");
                }
                Op::ResizeNearest(vec![]) // scales are read from the constant input when the plan is made
            }
            other => bail!("operator {other} is not one ganime's QDQ loader runs (it reads Magenta's arbitrary-style graphs, not general ONNX)"),
        };
        Ok(Node { op, inputs: n.input.clone(), output: n.output[0].clone(), label: label(n), frees: Vec::new() })
    }

    /// Evaluates every node whose inputs are all constants and removes it from the plan.
    fn fold_constants(&mut self) -> Result<()> {
        let mut remaining = Vec::with_capacity(self.nodes.len());
        for mut node in std::mem::take(&mut self.nodes) {
            if let Op::ResizeNearest(scales) = &mut node.op {
                if scales.is_empty() {
                    let s = self
                        .consts
                        .get(&node.inputs[2])
                        .ok_or_else(|| anyhow!("{}: node '{}': Resize scales must be constant", self.origin, node.label))?;
                    *scales = s.to_vec1::<f32>()?;
                }
            }
            if node.inputs.iter().all(|i| i.is_empty() || self.consts.contains_key(i)) {
                let y =
                    self.eval(&node, &|name| self.consts.get(name).cloned()).with_context(|| format!("{}: node '{}'", self.origin, node.label))?;
                self.consts.insert(node.output.clone(), y);
            } else {
                remaining.push(node);
            }
        }
        self.nodes = remaining;
        self.fuse_quantize_dequantize();
        self.plan_frees();
        // Constants only the folded nodes read (the int8 weights) are no longer needed.
        let used: HashSet<&String> = self.nodes.iter().flat_map(|n| &n.inputs).chain(&self.outputs).collect();
        let keep: HashMap<String, Tensor> = self.consts.iter().filter(|(k, _)| used.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        self.consts = keep;
        Ok(())
    }

    /// Marks each intermediate value for freeing after its last reader, once per plan rather than per run.
    fn plan_frees(&mut self) {
        let mut last_reader: HashMap<String, usize> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for input in &n.inputs {
                last_reader.insert(input.clone(), i);
            }
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.frees = n.inputs.iter().filter(|input| last_reader.get(*input) == Some(&i) && !self.outputs.contains(input)).cloned().collect();
        }
    }

    /// Fuses each activation `QuantizeLinear` into its `DequantizeLinear` readers when they all use its scale and
    /// zero point (the same values in the same order: the result is bit-identical to running both).
    fn fuse_quantize_dequantize(&mut self) {
        let mut readers: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, n) in self.nodes.iter().enumerate() {
            for input in &n.inputs {
                readers.entry(input.clone()).or_default().push(i);
            }
        }
        for i in 0..self.nodes.len() {
            let Op::Quantize { lo, hi } = self.nodes[i].op else { continue };
            let q = &self.nodes[i];
            let Some(rs) = readers.get(&q.output) else { continue };
            let same_params = |r: &Node| {
                matches!(r.op, Op::Dequantize { .. })
                    && r.inputs.first() == Some(&q.output)
                    && r.inputs.get(1) == q.inputs.get(1)
                    && r.inputs.get(2) == q.inputs.get(2)
            };
            if self.outputs.contains(&q.output) || !rs.iter().all(|&r| same_params(&self.nodes[r])) {
                continue;
            }
            for &r in rs.clone().iter() {
                self.nodes[r].op = Op::Identity;
                self.nodes[r].inputs.truncate(1);
            }
            self.nodes[i].op = Op::FakeQuantize { lo, hi };
        }
    }

    /// A copy of the graph with `input` fixed to `value`, everything that depends only on it precomputed.
    pub fn bind(&self, input: &str, value: &Tensor) -> Result<Self> {
        if !self.inputs.iter().any(|(n, _)| n == input) {
            bail!("{}: no graph input named '{input}'", self.origin);
        }
        let mut g = self.clone();
        g.consts.insert(input.to_string(), value.to_dtype(DType::F32)?.to_device(&Device::Cpu)?);
        g.inputs.retain(|(n, _)| n != input);
        g.fold_constants()?;
        Ok(g)
    }

    /// Runs the graph on `inputs` (name, f32 tensor) and returns its first output.
    pub fn run(&self, inputs: &[(&str, Tensor)]) -> Result<Tensor> {
        let mut env: HashMap<&str, Tensor> = HashMap::new();
        for (name, _) in &self.inputs {
            let t = inputs.iter().find(|(n, _)| n == name).ok_or_else(|| anyhow!("{}: input '{name}' not given", self.origin))?;
            env.insert(name.as_str(), t.1.to_dtype(DType::F32)?);
        }
        // `GANIME_PROFILE_ONNX=1` prints the time per operator kind (read once per process, not per frame).
        static PROFILE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let mut profile: Option<HashMap<String, (usize, f64)>> =
            PROFILE.get_or_init(|| std::env::var_os("GANIME_PROFILE_ONNX").is_some()).then(HashMap::new);
        for node in &self.nodes {
            let start = std::time::Instant::now();
            let y = self
                .eval(node, &|name| env.get(name).or_else(|| self.consts.get(name)).cloned())
                .with_context(|| format!("{}: node '{}'", self.origin, node.label))?;
            if let Some(p) = profile.as_mut() {
                let e = p.entry(format!("{:?}", node.op).split([' ', '(', '{']).next().unwrap_or("").to_string()).or_insert((0, 0.0));
                *e = (e.0 + 1, e.1 + start.elapsed().as_secs_f64() * 1e3);
            }
            for input in &node.frees {
                env.remove(input.as_str());
            }
            env.insert(node.output.as_str(), y);
        }
        if let Some(p) = profile {
            let mut rows: Vec<_> = p.into_iter().collect();
            rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
            eprintln!("{}: {}", self.origin, rows.iter().map(|(k, (n, ms))| format!("{k} x{n} {ms:.1} ms")).collect::<Vec<_>>().join(", "));
        }
        let out = self.outputs.first().ok_or_else(|| anyhow!("{}: the graph declares no output", self.origin))?;
        env.get(out.as_str()).or_else(|| self.consts.get(out)).cloned().ok_or_else(|| anyhow!("{}: output '{out}' was not computed", self.origin))
    }

    fn eval(&self, node: &Node, get: &dyn Fn(&str) -> Option<Tensor>) -> Result<Tensor> {
        let arg = |i: usize| -> Result<Tensor> {
            let name = node.inputs.get(i).filter(|n| !n.is_empty()).ok_or_else(|| anyhow!("input {i} is missing"))?;
            get(name).ok_or_else(|| anyhow!("input '{name}' is not computed yet"))
        };
        let opt = |i: usize| -> Option<Tensor> { node.inputs.get(i).filter(|n| !n.is_empty()).and_then(|n| get(n)) };
        let x = arg(0)?;
        Ok(match &node.op {
            Op::Quantize { lo, hi } => {
                let (scale, zp) = (arg(1)?, opt(2));
                quantize(&x, &scale, zp.as_ref(), *lo, *hi, false)?
            }
            Op::FakeQuantize { lo, hi } => {
                let (scale, zp) = (arg(1)?, opt(2));
                quantize(&x, &scale, zp.as_ref(), *lo, *hi, true)?
            }
            Op::Identity => x,
            Op::Dequantize { axis } => {
                let (scale, zp) = (arg(1)?, opt(2));
                let axis = per_axis(&x, &scale, *axis)?;
                let q = match zp {
                    Some(z) => x.broadcast_sub(&axis_view(&z, axis, x.rank())?)?,
                    None => x,
                };
                q.broadcast_mul(&axis_view(&scale, axis, q.rank())?)?
            }
            Op::Conv { pads, stride, group } => conv(&x, &arg(1)?, opt(2).as_ref(), *pads, *stride, *group)?,
            Op::Clip => {
                // Bounds are scalars, stored as shape [] or [1].
                let bound =
                    |t: Tensor| -> Result<f32> { t.flatten_all()?.to_vec1::<f32>()?.first().copied().ok_or_else(|| anyhow!("empty Clip bound")) };
                let lo = opt(1).map(bound).transpose()?.unwrap_or(f32::MIN);
                let hi = opt(2).map(bound).transpose()?.unwrap_or(f32::MAX);
                x.clamp(lo, hi)?
            }
            Op::Relu => x.relu()?,
            Op::Sigmoid => candle_nn::ops::sigmoid(&x)?,
            Op::Sqrt => x.sqrt()?,
            Op::Reciprocal => x.recip()?,
            Op::Add => x.broadcast_add(&arg(1)?)?,
            Op::Sub => x.broadcast_sub(&arg(1)?)?,
            Op::Mul => x.broadcast_mul(&arg(1)?)?,
            Op::GlobalAveragePool => x.mean_keepdim(3)?.mean_keepdim(2)?,
            Op::Reshape(shape) => {
                let dims: Vec<usize> = shape
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| if d == 0 { x.dims().get(i).copied().unwrap_or(0) as i64 } else { d })
                    .map(|d| d.max(0) as usize)
                    .collect();
                let known: usize = dims.iter().zip(shape).filter(|(_, s)| **s != -1).map(|(d, _)| *d).product();
                let dims: Vec<usize> = dims.iter().zip(shape).map(|(d, s)| if *s == -1 { x.elem_count() / known.max(1) } else { *d }).collect();
                x.reshape(dims)?
            }
            Op::Transpose(perm) => x.permute(perm.as_slice())?.contiguous()?,
            Op::ReflectPad(pads) => reflect_pad(&x, pads)?,
            Op::ResizeNearest(scales) => resize_nearest(&x, scales)?,
        })
    }
}

fn label(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name.clone()
    }
}

/// The axis a scale applies along: `None` for a per-tensor (single-value) scale.
fn per_axis(x: &Tensor, scale: &Tensor, axis: usize) -> Result<Option<usize>> {
    let n = scale.elem_count();
    if n == 1 {
        return Ok(None);
    }
    if x.dims().get(axis) != Some(&n) {
        bail!("a scale of {n} values along axis {axis} does not fit a tensor of shape {:?}", x.dims());
    }
    Ok(Some(axis))
}

/// A scale or zero point shaped to broadcast along `axis` of a rank-`rank` tensor.
fn axis_view(t: &Tensor, axis: Option<usize>, rank: usize) -> Result<Tensor> {
    Ok(match axis {
        None => t.flatten_all()?.reshape(vec![1; rank.max(1)])?,
        Some(a) => {
            let mut shape = vec![1; rank];
            shape[a] = t.elem_count();
            t.reshape(shape)?
        }
    })
}

/// Values per parallel task of the element-wise kernels.
const CHUNK: usize = 1 << 14;

/// Round half to even for |v| < 2²²: adding and subtracting 1.5·2²³ leaves the integer part in the mantissa's
/// last place, rounded by the FPU's default mode (ties to even). `f32::round_ties_even` is a library call on
/// x86-64 without SSE4.1, ~10× slower on these element-wise passes.
#[inline(always)]
fn round_half_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

/// `QuantizeLinear`: `q = saturate(round_half_even(x / scale) + zero_point)`, per tensor (activations); with
/// `dequantize`, `(q − zero_point) · scale` in the same pass (what `DequantizeLinear` computes, in the same order).
fn quantize(x: &Tensor, scale: &Tensor, zp: Option<&Tensor>, lo: f32, hi: f32, dequantize: bool) -> Result<Tensor> {
    use rayon::prelude::*;
    if scale.elem_count() != 1 {
        bail!("per-axis QuantizeLinear is not supported");
    }
    let s = scale.flatten_all()?.to_vec1::<f32>()?[0];
    let z = zp.map(|z| z.flatten_all()?.to_vec1::<f32>().map(|v| v[0])).transpose()?.unwrap_or(0.0);
    // Clamped before rounding so the trick's range holds; the bounds are outside [lo, hi] - z.
    let (below, above) = (lo - z - 1.0, hi - z + 1.0);
    let v = crate::nn::fused::with_cpu_f32(&[x], |xs| {
        let xs = xs[0];
        let mut out = vec![0f32; xs.len()];
        out.par_chunks_mut(CHUNK).zip(xs.par_chunks(CHUNK)).for_each(|(o, i)| {
            for (o, &v) in o.iter_mut().zip(i) {
                *o = (round_half_even((v / s).clamp(below, above)) + z).clamp(lo, hi);
            }
            if dequantize {
                o.iter_mut().for_each(|q| *q = (*q - z) * s);
            }
        });
        Ok(out)
    })?
    .ok_or_else(|| anyhow!("the QDQ loader runs on f32 CPU tensors, got {:?} on {:?}", x.dtype(), x.device()))?;
    Ok(Tensor::from_vec(v, x.dims(), x.device())?)
}

/// `Conv` with explicit (possibly uneven) zero padding: the padding is applied first, then the project's conv
/// kernel (dense) or depthwise kernel.
fn conv(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, [top, left, bottom, right]: [usize; 4], stride: usize, group: usize) -> Result<Tensor> {
    let x = if top + bottom > 0 { x.pad_with_zeros(2, top, bottom)? } else { x.clone() };
    let x = if left + right > 0 { x.pad_with_zeros(3, left, right)? } else { x };
    let (c_out, c_per_group, _, _) = w.dims4()?;
    let c_in = x.dim(1)?;
    if group == 1 {
        let y = crate::nn::kernels::conv2d::conv2d_patches(&x, w, stride, 0)?;
        return Ok(match bias {
            Some(b) => y.broadcast_add(&b.reshape((1, c_out, 1, 1))?)?,
            None => y,
        });
    }
    if group == c_in && c_out == c_in && c_per_group == 1 {
        return Ok(crate::nn::kernels::depthwise::depthwise_conv2d(&x, w, bias, stride)?);
    }
    bail!("grouped convolution with {group} groups of {c_per_group} channels is not supported (dense or depthwise only)")
}

/// ONNX `Pad` in reflect mode: `pads` = begins of every axis, then ends.
pub(crate) fn reflect_pad(x: &Tensor, pads: &[i64]) -> Result<Tensor> {
    let rank = x.rank();
    if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
        bail!("pads {pads:?} do not fit a rank-{rank} tensor");
    }
    // NCHW padded on H and W only (all but the graph's first pad): the nn layer's one-pass plane kernel.
    if rank == 4 && pads[0] + pads[1] + pads[4] + pads[5] == 0 {
        let [top, left, bottom, right] = [pads[2], pads[3], pads[6], pads[7]].map(|p| p as usize);
        return Ok(crate::nn::reflection_pad2d(x, left, right, top, bottom)?);
    }
    let mut y = x.contiguous()?;
    for axis in 0..rank {
        let (lo, hi, n) = (pads[axis] as usize, pads[axis + rank] as usize, y.dim(axis)?);
        if lo + hi == 0 {
            continue;
        }
        if lo.max(hi) >= n {
            bail!("reflect padding {lo}+{hi} is too large for an axis of {n}");
        }
        let index: Vec<u32> = (0..n + lo + hi).map(|i| crate::nn::kernels::reflect_pad::reflect_index(i, lo, n) as u32).collect();
        y = y.index_select(&Tensor::new(index.as_slice(), x.device())?, axis)?;
    }
    Ok(y)
}

/// `Resize` nearest, asymmetric coordinates, floor rounding: output index `i` reads input `floor(i / scale)`.
fn resize_nearest(x: &Tensor, scales: &[f32]) -> Result<Tensor> {
    if scales.len() != x.rank() {
        bail!("{} resize scales for a rank-{} tensor", scales.len(), x.rank());
    }
    // NCHW doubled in H and W (the transformer's upsampling).
    if scales == [1.0, 1.0, 2.0, 2.0] {
        return Ok(crate::nn::upsample_nearest2d(x, 2)?);
    }
    let mut y = x.contiguous()?;
    for (axis, &s) in scales.iter().enumerate() {
        if s == 1.0 {
            continue;
        }
        if s <= 0.0 {
            bail!("resize scale {s} must be positive");
        }
        let n = y.dim(axis)?;
        let out = (n as f32 * s).floor() as usize;
        let index: Vec<u32> = (0..out).map(|i| ((i as f32 / s).floor() as usize).min(n - 1) as u32).collect();
        y = y.index_select(&Tensor::new(index.as_slice(), x.device())?, axis)?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() -> Result<()> {
        let x = Tensor::new(&[0.5f32, 1.5, 2.5, -0.5, 300.0, -300.0, 1.26], &Device::Cpu)?;
        let q = quantize(&x, &Tensor::new(&[1f32], &Device::Cpu)?, None, 0.0, 255.0, false)?.to_vec1::<f32>()?;
        assert_eq!(q, vec![0.0, 2.0, 2.0, 0.0, 255.0, 0.0, 1.0]);
        let q = quantize(&x, &Tensor::new(&[0.5f32], &Device::Cpu)?, Some(&Tensor::new(&[-3f32], &Device::Cpu)?), -128.0, 127.0, false)?
            .to_vec1::<f32>()?;
        assert_eq!(q, vec![-2.0, 0.0, 2.0, -4.0, 127.0, -128.0, -0.0]);
        Ok(())
    }

    #[test]
    fn reflect_pad_and_nearest_resize_by_hand() -> Result<()> {
        let x = Tensor::new(&[[1f32, 2., 3.]], &Device::Cpu)?;
        let y = reflect_pad(&x, &[0, 2, 0, 1])?.to_vec2::<f32>()?;
        assert_eq!(y, vec![vec![3., 2., 1., 2., 3., 2.]]);
        let y = resize_nearest(&x, &[1.0, 2.0])?.to_vec2::<f32>()?;
        assert_eq!(y, vec![vec![1., 1., 2., 2., 3., 3.]]);
        assert!(reflect_pad(&x, &[0, 3, 0, 0]).is_err());
        Ok(())
    }

    /// The NCHW fast paths of pad and resize agree with the general per-axis gathers.
    #[test]
    fn plane_kernels_match_the_general_gathers() -> Result<()> {
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 5.0 * 7.0, &Device::Cpu)?.reshape((2, 3, 5, 7))?;
        let pads = [0, 0, 2, 1, 0, 0, 1, 3];
        let general = |x: &Tensor, pads: &[i64]| -> Result<Tensor> {
            // Through the rank-5 general path: the fast path only takes rank 4.
            let y = reflect_pad(&x.unsqueeze(0)?, &[0, pads[0], pads[1], pads[2], pads[3], 0, pads[4], pads[5], pads[6], pads[7]])?;
            Ok(y.squeeze(0)?)
        };
        let (fast, slow) = (reflect_pad(&x, &pads)?, general(&x, &pads)?);
        assert_eq!(fast.flatten_all()?.to_vec1::<f32>()?, slow.flatten_all()?.to_vec1::<f32>()?);
        let fast = resize_nearest(&x, &[1.0, 1.0, 2.0, 2.0])?;
        let slow = resize_nearest(&x.unsqueeze(0)?, &[1.0, 1.0, 1.0, 2.0, 2.0])?.squeeze(0)?;
        assert_eq!(fast.dims(), &[2, 3, 10, 14]);
        assert_eq!(fast.flatten_all()?.to_vec1::<f32>()?, slow.flatten_all()?.to_vec1::<f32>()?);
        let big = Tensor::new(&[1e9f32, -1e9, 2.5, 3.5, -2.5], &Device::Cpu)?;
        assert_eq!(
            quantize(&big, &Tensor::new(&[1f32], &Device::Cpu)?, None, -128.0, 127.0, false)?.to_vec1::<f32>()?,
            vec![127.0, -128.0, 2.0, 4.0, -2.0]
        );
        Ok(())
    }

    /// Every truncation of a real graph (and a few corrupted bytes) is an error or a refused graph, never a
    /// panic: `models inspect` reads user files through this parser.
    #[test]
    fn truncated_or_corrupt_graphs_never_panic() {
        let bytes = crate::assets::MAGENTA_TRANSFORM;
        for cut in (0..bytes.len()).step_by(bytes.len() / 97 + 1) {
            // The whole graph is one length-delimited field: any cut of it is a decode error.
            assert!(QdqGraph::from_bytes(&bytes[..cut], "cut.onnx").is_err(), "cut at {cut}");
            let _ = crate::models::catalog::inspect_onnx(&bytes[..cut], "cut.onnx");
        }
        let mut corrupt = bytes.to_vec();
        for i in (100..corrupt.len()).step_by(corrupt.len() / 13) {
            corrupt[i] ^= 0x5a;
        }
        let _ = QdqGraph::from_bytes(&corrupt, "corrupt.onnx");
    }

    #[test]
    fn not_an_onnx_file_is_a_clear_error() {
        let e = QdqGraph::from_bytes(b"\xff\xff\xff not protobuf", "x.onnx").err().unwrap();
        assert!(format!("{e:#}").contains("x.onnx"), "{e:#}");
    }
}
