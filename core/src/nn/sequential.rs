//! A PyTorch-style `nn.Sequential` described by a list of layer specs, so that a model's weights are keyed
//! exactly like the reference (`main.0.weight`, `main.1.running_mean`, …): parameter-free layers take an
//! index too, as in PyTorch.

use super::kernels::{activation::leaky_relu, Activation};
use super::{BatchNorm2d, Conv2d, ConvTranspose2d};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, Linear, VarBuilder};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One layer of a sequential network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LayerSpec {
    Conv {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
    },
    /// A conv with spectral normalisation of its weight ([`super::spectral_norm`]).
    SnConv {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
    },
    ConvTranspose {
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        out_pad: usize,
        bias: bool,
    },
    Linear {
        d_in: usize,
        d_out: usize,
        bias: bool,
    },
    BatchNorm(usize),
    /// GroupNorm(1, C): per-sample layer norm (a WGAN-GP critic's replacement for BatchNorm).
    LayerNorm(usize),
    Relu,
    LeakyRelu(f64),
    Tanh,
    Dropout(f64),
    Flatten,
    Unflatten {
        c: usize,
        h: usize,
        w: usize,
    },
    /// Nearest-neighbour up-sampling by an integer factor (resize-convolution: up-sample, then a stride-1 conv).
    Upsample(usize),
}

impl LayerSpec {
    /// How many parameters (and running statistics) the layer holds; `None` when the count overflows.
    pub fn parameters(&self) -> Option<u64> {
        let conv = |c_in: usize, c_out: usize, k: usize, bias: bool| {
            (c_in as u64).checked_mul(c_out as u64)?.checked_mul(k as u64)?.checked_mul(k as u64)?.checked_add(if bias { c_out as u64 } else { 0 })
        };
        match *self {
            LayerSpec::Conv { c_in, c_out, k, bias, .. } | LayerSpec::ConvTranspose { c_in, c_out, k, bias, .. } => conv(c_in, c_out, k, bias),
            // The weight and its power-iteration vector `u`.
            LayerSpec::SnConv { c_in, c_out, k, bias, .. } => conv(c_in, c_out, k, bias)?.checked_add(c_out as u64),
            LayerSpec::Linear { d_in, d_out, bias } => conv(d_in, d_out, 1, bias),
            LayerSpec::BatchNorm(c) => (c as u64).checked_mul(4),
            LayerSpec::LayerNorm(c) => (c as u64).checked_mul(2),
            _ => Some(0),
        }
    }
}

/// The parameters of a whole network, `None` when the count overflows.
pub fn parameter_count(layers: &[LayerSpec]) -> Option<u64> {
    layers.iter().try_fold(0u64, |n, l| n.checked_add(l.parameters()?))
}

/// The most parameters a network built from a file's config may hold (1 GiB of f32; the largest published
/// networks ganime runs hold tens of millions).
pub const MAX_PARAMETERS: u64 = 1 << 28;

/// Refuses, before anything is built, a network (`what`) whose config asks for more than [`MAX_PARAMETERS`]
/// (`None`: the count overflowed). Each size of a config may be within its bound while their product is
/// terabytes: widths that double per stage, or times the number of blocks.
pub fn check_parameters(what: &str, count: Option<u128>) -> anyhow::Result<()> {
    match count {
        Some(n) if n <= MAX_PARAMETERS as u128 => Ok(()),
        n => anyhow::bail!(
            "{what} would hold {} parameters, more than ganime builds ({MAX_PARAMETERS} at most)",
            n.map_or("over 2^128".to_string(), |n| n.to_string())
        ),
    }
}

// `Layer::LayerNorm` is the layer's name, not a stutter.
#[allow(clippy::enum_variant_names)]
enum Layer {
    Conv(Conv2d),
    SnConv(super::spectral_norm::SpectralNormConv2d),
    ConvTranspose(ConvTranspose2d),
    Linear(Linear),
    BatchNorm(BatchNorm2d),
    LayerNorm(super::layer_norm::LayerNorm2d),
    Relu,
    LeakyRelu(f64),
    Tanh,
    Dropout(f64),
    Flatten,
    Unflatten(usize, usize, usize),
    Upsample(usize),
}

/// How a forward pass runs: eval (BatchNorm running stats, no dropout) or train (batch statistics, which also
/// update the running stats, and dropout masks drawn from `seed`, so a resumed run draws the same masks).
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Eval,
    Train { seed: u64 },
}

pub struct Sequential {
    layers: Vec<Layer>,
}

impl Sequential {
    /// Builds the layers under `vb` with keys `{index}.weight` etc. `init` is the weight init of conv and
    /// linear layers.
    pub fn new(specs: &[LayerSpec], init: Init, vb: VarBuilder) -> Result<Self> {
        let layers = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let vb = vb.pp(i);
                Ok(match *spec {
                    LayerSpec::Conv { c_in, c_out, k, stride, pad, bias } => {
                        Layer::Conv(Conv2d::new(c_in, c_out, k, stride, pad, bias, Some(init), vb)?)
                    }
                    LayerSpec::SnConv { c_in, c_out, k, stride, pad, bias } => {
                        Layer::SnConv(super::spectral_norm::SpectralNormConv2d::new(c_in, c_out, k, stride, pad, bias, init, vb)?)
                    }
                    LayerSpec::ConvTranspose { c_in, c_out, k, stride, pad, out_pad, bias } => {
                        Layer::ConvTranspose(ConvTranspose2d::new(c_in, c_out, k, stride, pad, out_pad, bias, Some(init), vb)?)
                    }
                    LayerSpec::Linear { d_in, d_out, bias } => {
                        let w = vb.get_with_hints((d_out, d_in), "weight", init)?;
                        let b = if bias { Some(vb.get_with_hints(d_out, "bias", Init::Const(0.0))?) } else { None };
                        Layer::Linear(Linear::new(w, b))
                    }
                    LayerSpec::BatchNorm(c) => Layer::BatchNorm(BatchNorm2d::new(c, vb)?),
                    LayerSpec::LayerNorm(c) => Layer::LayerNorm(super::layer_norm::LayerNorm2d::new(c, 1e-5, vb)?),
                    LayerSpec::Relu => Layer::Relu,
                    LayerSpec::LeakyRelu(slope) => Layer::LeakyRelu(slope),
                    LayerSpec::Tanh => Layer::Tanh,
                    LayerSpec::Dropout(p) => Layer::Dropout(p),
                    LayerSpec::Flatten => Layer::Flatten,
                    LayerSpec::Unflatten { c, h, w } => Layer::Unflatten(c, h, w),
                    LayerSpec::Upsample(s) => Layer::Upsample(s),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { layers })
    }

    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_range(x, 0..self.layers.len(), mode)
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Runs layers `range` only (a progressive-growing network enters and leaves the stack part-way). A range
    /// must not end between a BatchNorm and its activation.
    pub fn forward_range(&self, x: &Tensor, range: std::ops::Range<usize>, mode: Mode) -> Result<Tensor> {
        let train = matches!(mode, Mode::Train { .. });
        let mut x = x.clone();
        let mut fused_into_previous = false;
        for (i, layer) in self.layers.iter().enumerate().take(range.end).skip(range.start) {
            if std::mem::take(&mut fused_into_previous) {
                continue;
            }
            x = match layer {
                Layer::Conv(c) => c.forward(&x)?,
                Layer::SnConv(c) => c.forward(&x, train)?,
                Layer::ConvTranspose(c) => c.forward(&x)?,
                Layer::Linear(l) => l.forward(&x)?,
                Layer::BatchNorm(bn) => {
                    // BatchNorm + the activation after it run as one kernel.
                    let act = match self.layers.get(i + 1).filter(|_| i + 1 < range.end) {
                        Some(Layer::Relu) => Activation::Relu,
                        Some(Layer::LeakyRelu(slope)) if *slope >= 0.0 => Activation::LeakyRelu(*slope),
                        _ => Activation::Identity,
                    };
                    fused_into_previous = act != Activation::Identity;
                    bn.forward_act(&x, train, act)?
                }
                Layer::LayerNorm(ln) => ln.forward(&x)?,
                Layer::Relu => super::kernels::activation::relu(&x)?,
                Layer::LeakyRelu(slope) => leaky_relu(&x, *slope)?,
                Layer::Tanh => super::kernels::activation::tanh(&x)?,
                Layer::Dropout(p) => match mode {
                    Mode::Train { seed } => dropout(&x, *p, seed.wrapping_add(i as u64))?,
                    Mode::Eval => x,
                },
                Layer::Flatten => x.flatten_from(1)?,
                Layer::Unflatten(c, h, w) => x.reshape(((), *c, *h, *w))?,
                Layer::Upsample(s) => super::upsample_nearest2d(&x, *s)?,
            };
        }
        Ok(x)
    }
}

/// Inverted dropout with a mask from a seeded generator (Candle's own dropout draws from an unseeded one).
fn dropout(x: &Tensor, p: f64, seed: u64) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let keep: Vec<f32> = (0..x.elem_count()).map(|_| if rng.random::<f64>() < p { 0.0 } else { (1.0 / (1.0 - p)) as f32 }).collect();
    let mask = Tensor::from_vec(keep, x.shape(), x.device())?.to_dtype(x.dtype())?;
    x * mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn keys_follow_pytorch_indices_and_dropout_is_seeded() -> Result<()> {
        let vm = VarMap::new();
        let specs = [
            LayerSpec::Conv { c_in: 1, c_out: 2, k: 3, stride: 1, pad: 1, bias: true },
            LayerSpec::LeakyRelu(0.2),
            LayerSpec::Dropout(0.5),
            LayerSpec::BatchNorm(2),
            LayerSpec::Flatten,
            LayerSpec::Linear { d_in: 32, d_out: 1, bias: false },
        ];
        let net = Sequential::new(&specs, Init::Const(0.1), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu).pp("main"))?;
        let mut keys: Vec<String> = vm.data().lock().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["main.0.bias", "main.0.weight", "main.3.bias", "main.3.running_mean", "main.3.running_var", "main.3.weight", "main.5.weight"]
        );
        let x = Tensor::ones((2, 1, 4, 4), DType::F32, &Device::Cpu)?;
        let a: Vec<Vec<f32>> = net.forward(&x, Mode::Train { seed: 3 })?.to_vec2()?;
        let b: Vec<Vec<f32>> = net.forward(&x, Mode::Train { seed: 3 })?.to_vec2()?;
        let c: Vec<Vec<f32>> = net.forward(&x, Mode::Train { seed: 4 })?.to_vec2()?;
        assert_eq!(a, b);
        assert_ne!(a, c);
        Ok(())
    }
}
