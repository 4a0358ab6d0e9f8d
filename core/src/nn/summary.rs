//! A Keras-style model summary of a [`Sequential`](super::Sequential) layer list: each layer, its output shape
//! and parameter count, then total / trainable / non-trainable parameters. As in Keras, BatchNorm's moving mean
//! and variance count as non-trainable (PyTorch keeps them as buffers, not parameters).

use super::LayerSpec;
use anyhow::{bail, Result};
use std::fmt;

/// One row of a summary.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// The layer's key prefix in the weights (`main.3`) and its type.
    pub name: String,
    pub kind: &'static str,
    /// Output shape without the batch dimension.
    pub output: Vec<usize>,
    pub trainable: u64,
    pub non_trainable: u64,
}

/// A network's summary: its rows and totals.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub title: String,
    pub input: Vec<usize>,
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Walks `layers` from an input of shape `input` (no batch dimension), checking that each layer fits the
    /// shape it receives. `prefix` names the layers (`main` gives `main.0`, `main.1`, … like the weights).
    pub fn of(title: &str, layers: &[LayerSpec], input: &[usize], prefix: &str) -> Result<Self> {
        let mut shape = input.to_vec();
        let mut rows = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            let (kind, output, trainable, non_trainable) =
                describe(layer, &shape).map_err(|e| anyhow::anyhow!("{title}: layer {prefix}.{i}: {e}"))?;
            rows.push(SummaryRow { name: format!("{prefix}.{i}"), kind, output: output.clone(), trainable, non_trainable });
            shape = output;
        }
        Ok(Self { title: title.to_string(), input: input.to_vec(), rows })
    }

    pub fn trainable(&self) -> u64 {
        self.rows.iter().map(|r| r.trainable).sum()
    }

    pub fn non_trainable(&self) -> u64 {
        self.rows.iter().map(|r| r.non_trainable).sum()
    }

    pub fn total(&self) -> u64 {
        self.trainable() + self.non_trainable()
    }

    /// The output shape of the last layer.
    pub fn output(&self) -> &[usize] {
        self.rows.last().map(|r| r.output.as_slice()).unwrap_or(&self.input)
    }
}

/// `(type, output shape, trainable, non-trainable)` of one layer given its input shape.
fn describe(layer: &LayerSpec, input: &[usize]) -> Result<(&'static str, Vec<usize>, u64, u64)> {
    let chw = |c_in: usize| -> Result<(usize, usize)> {
        match *input {
            [c, h, w] if c == c_in => Ok((h, w)),
            _ => bail!("expects [{c_in}, H, W], gets {input:?}"),
        }
    };
    let bias = |b: bool, c: usize| if b { c as u64 } else { 0 };
    Ok(match *layer {
        LayerSpec::Conv { c_in, c_out, k, stride, pad, bias: b } | LayerSpec::SnConv { c_in, c_out, k, stride, pad, bias: b } => {
            let (h, w) = chw(c_in)?;
            if h + 2 * pad < k || w + 2 * pad < k {
                bail!("a {k}x{k} kernel does not fit {h}x{w} padded by {pad}");
            }
            let out = |x: usize| (x + 2 * pad - k) / stride + 1;
            let kind = if matches!(layer, LayerSpec::Conv { .. }) { "Conv2d" } else { "SpectralNormConv2d" };
            // A spectrally normalised conv also keeps its power-iteration vector `u` (not trained).
            let u = if kind == "SpectralNormConv2d" { c_out as u64 } else { 0 };
            (kind, vec![c_out, out(h), out(w)], (c_in * c_out * k * k) as u64 + bias(b, c_out), u)
        }
        LayerSpec::ConvTranspose { c_in, c_out, k, stride, pad, out_pad, bias: b } => {
            let (h, w) = chw(c_in)?;
            let out = |x: usize| ((x - 1) * stride + k + out_pad).checked_sub(2 * pad);
            let (Some(oh), Some(ow)) = (out(h), out(w)) else { bail!("padding {pad} is larger than the output") };
            ("ConvTranspose2d", vec![c_out, oh, ow], (c_in * c_out * k * k) as u64 + bias(b, c_out), 0)
        }
        LayerSpec::Linear { d_in, d_out, bias: b } => {
            if input != [d_in] {
                bail!("expects [{d_in}], gets {input:?}");
            }
            ("Linear", vec![d_out], (d_in * d_out) as u64 + bias(b, d_out), 0)
        }
        LayerSpec::BatchNorm(c) | LayerSpec::LayerNorm(c) => {
            if input.first() != Some(&c) {
                bail!("normalises {c} channels, gets {input:?}");
            }
            // Scale and shift are trained; BatchNorm's moving mean and variance are not.
            let moving = if matches!(layer, LayerSpec::BatchNorm(_)) { 2 * c as u64 } else { 0 };
            (if moving > 0 { "BatchNorm" } else { "LayerNorm" }, input.to_vec(), 2 * c as u64, moving)
        }
        LayerSpec::Relu => ("ReLU", input.to_vec(), 0, 0),
        LayerSpec::LeakyRelu(_) => ("LeakyReLU", input.to_vec(), 0, 0),
        LayerSpec::Tanh => ("Tanh", input.to_vec(), 0, 0),
        LayerSpec::Dropout(_) => ("Dropout", input.to_vec(), 0, 0),
        LayerSpec::Flatten => ("Flatten", vec![input.iter().product()], 0, 0),
        LayerSpec::Unflatten { c, h, w } => {
            if input.iter().product::<usize>() != c * h * w {
                bail!("cannot reshape {input:?} to [{c}, {h}, {w}]");
            }
            ("Reshape", vec![c, h, w], 0, 0)
        }
        LayerSpec::Upsample(s) => match *input {
            [c, h, w] => ("Upsample", vec![c, h * s, w * s], 0, 0),
            _ => bail!("up-samples [C, H, W], gets {input:?}"),
        },
    })
}

/// Thousands separated by commas, as Keras prints parameter counts.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn shape(s: &[usize]) -> String {
    let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
    format!("(None, {})", dims.join(", "))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = "_".repeat(72);
        let double = "=".repeat(72);
        writeln!(f, "Model: \"{}\"   input {}", self.title, shape(&self.input))?;
        writeln!(f, "{line}")?;
        writeln!(f, " {:<32}{:<26}{:>12}", "Layer (type)", "Output Shape", "Param #")?;
        writeln!(f, "{double}")?;
        for r in &self.rows {
            let name = format!("{} ({})", r.name, r.kind);
            writeln!(f, " {:<32}{:<26}{:>12}", name, shape(&r.output), grouped(r.trainable + r.non_trainable))?;
        }
        writeln!(f, "{double}")?;
        writeln!(f, "Total params: {}", grouped(self.total()))?;
        writeln!(f, "Trainable params: {}", grouped(self.trainable()))?;
        writeln!(f, "Non-trainable params: {}", grouped(self.non_trainable()))?;
        write!(f, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{Mode, Sequential};
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{Init, VarBuilder, VarMap};

    /// The counts and shapes agree with the layers Candle builds and runs: every variable is counted once, and
    /// the forward pass produces the summarised output shape.
    #[test]
    fn summary_matches_the_built_network() -> anyhow::Result<()> {
        let layers = [
            LayerSpec::Linear { d_in: 8, d_out: 4 * 9, bias: true },
            LayerSpec::Unflatten { c: 4, h: 3, w: 3 },
            LayerSpec::BatchNorm(4),
            LayerSpec::Relu,
            LayerSpec::Upsample(2),
            LayerSpec::Conv { c_in: 4, c_out: 3, k: 3, stride: 1, pad: 1, bias: false },
            LayerSpec::ConvTranspose { c_in: 3, c_out: 2, k: 5, stride: 2, pad: 2, out_pad: 1, bias: true },
            LayerSpec::SnConv { c_in: 2, c_out: 5, k: 4, stride: 2, pad: 1, bias: true },
            LayerSpec::Flatten,
        ];
        let s = Summary::of("net", &layers, &[8], "main")?;
        let vm = VarMap::new();
        let net = Sequential::new(&layers, Init::Const(0.01), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu).pp("main"))?;
        let y = net.forward(&Tensor::ones((2, 8), DType::F32, &Device::Cpu)?, Mode::Eval)?;
        assert_eq!(y.dims()[1..], *s.output());
        assert_eq!(s.output(), [5 * 6 * 6]);
        let built: u64 = vm.data().lock().unwrap().values().map(|v| v.elem_count() as u64).sum();
        assert_eq!(built, s.total());
        assert_eq!(s.non_trainable(), 2 * 4 + 5, "BatchNorm's moving statistics and the SN conv's u");
        let text = s.to_string();
        assert!(text.contains("main.6 (ConvTranspose2d)") && text.contains("(None, 2, 12, 12)"), "{text}");
        assert!(text.contains(&format!("Total params: {}", grouped(s.total()))), "{text}");
        Ok(())
    }

    #[test]
    fn layers_that_do_not_fit_are_named() {
        let layers = [LayerSpec::Linear { d_in: 8, d_out: 10, bias: true }, LayerSpec::Unflatten { c: 3, h: 2, w: 2 }];
        let err = Summary::of("G", &layers, &[8], "main").unwrap_err().to_string();
        assert!(err.contains("G: layer main.1") && err.contains("[3, 2, 2]"), "{err}");
        assert_eq!(grouped(840705), "840,705");
        assert_eq!(grouped(384), "384");
    }
}
