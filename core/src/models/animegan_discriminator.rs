//! The AnimeGAN / AnimeGANv2 discriminator (TachibanaYoshino/AnimeGANv2 `net/discriminator.py`, `D_net`):
//! a 3×3 conv (ch/2) + LeakyReLU 0.2; then `n_dis - 1` times a stride-2 3×3 conv (×2) + LeakyReLU and a 3×3
//! conv (×4) + layer norm + LeakyReLU; a 3×3 conv + layer norm + LeakyReLU; a 3×3 conv to one channel. No
//! biases, zero padding 1. Spectral normalisation of every conv is an option (the reference trains with it,
//! `--sn True`). Output: a patch map of logits at 1/2^(n_dis-1) of the input size. Keys:
//! `layers.{i}.conv.weight` (plus `layers.{i}.conv.weight_u` with spectral norm), `layers.{i}.norm.{weight,bias}`.

use crate::nn::layer_norm::LayerNorm2d;
use crate::nn::spectral_norm::SpectralNormConv2d;
use crate::nn::Conv2d;
use anyhow::{bail, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnimeDiscriminatorConfig {
    /// The reference's `ch` (64); the first conv has ch/2 channels.
    pub channels: usize,
    /// The reference's `n_dis` (3): n_dis − 1 stride-2 stages.
    pub n_dis: usize,
    /// Spectral normalisation of every conv (absent in runs made before it existed: off).
    #[serde(default)]
    pub spectral_norm: bool,
}

impl Default for AnimeDiscriminatorConfig {
    fn default() -> Self {
        Self { channels: 64, n_dis: 3, spectral_norm: false }
    }
}

enum Conv {
    Plain(Conv2d),
    /// Normalised by its largest singular value; one power-iteration step per forward.
    Spectral(SpectralNormConv2d),
}

impl Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Conv::Plain(c) => c.forward(x),
            Conv::Spectral(c) => c.forward(x, true),
        }
    }
}

struct Layer {
    conv: Conv,
    norm: Option<LayerNorm2d>,
    /// LeakyReLU 0.2 after (all but the last layer).
    activation: bool,
}

pub struct AnimeDiscriminator {
    layers: Vec<Layer>,
}

impl AnimeDiscriminator {
    pub fn new(config: AnimeDiscriminatorConfig, vb: VarBuilder) -> Result<Self> {
        if config.channels < 2 || config.n_dis == 0 {
            bail!("discriminator channels must be at least 2 and n_dis at least 1, got {config:?}");
        }
        let vb = vb.pp("layers");
        let mut layers = Vec::new();
        let mut add = |c_in: usize, c_out: usize, stride: usize, norm: bool, activation: bool| -> Result<()> {
            let p = vb.pp(layers.len().to_string());
            let conv = if config.spectral_norm {
                Conv::Spectral(SpectralNormConv2d::new(
                    c_in,
                    c_out,
                    3,
                    stride,
                    1,
                    false,
                    candle_nn::Init::Randn { mean: 0.0, stdev: 0.02 },
                    p.pp("conv"),
                )?)
            } else {
                Conv::Plain(Conv2d::new(c_in, c_out, 3, stride, 1, false, None, p.pp("conv"))?)
            };
            let norm = if norm { Some(LayerNorm2d::new(c_out, 1e-5, p.pp("norm"))?) } else { None };
            layers.push(Layer { conv, norm, activation });
            Ok(())
        };
        let mut ch = config.channels / 2;
        add(3, ch, 1, false, true)?;
        let mut c_in = ch;
        for _ in 1..config.n_dis {
            add(c_in, ch * 2, 2, false, true)?;
            add(ch * 2, ch * 4, 1, true, true)?;
            c_in = ch * 4;
            ch *= 2;
        }
        add(c_in, ch * 2, 1, true, true)?;
        add(ch * 2, 1, 1, false, false)?;
        Ok(Self { layers })
    }

    /// `[N, 3, H, W]` in [-1, 1] -> logits `[N, 1, H/2^(n_dis-1), W/2^(n_dis-1)]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        for layer in &self.layers {
            y = layer.conv.forward(&y)?;
            if let Some(n) = &layer.norm {
                y = n.forward(&y)?;
            }
            if layer.activation {
                y = crate::nn::kernels::activation::leaky_relu(&y, 0.2)?;
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shapes_and_parameter_count() -> Result<()> {
        let vm = candle_nn::VarMap::new();
        let d = AnimeDiscriminator::new(AnimeDiscriminatorConfig::default(), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
        let y = d.forward(&Tensor::zeros((2, 3, 64, 48), DType::F32, &Device::Cpu)?)?;
        assert_eq!(y.dims(), &[2, 1, 16, 12]);
        // Reference D_net(ch=64, n_dis=3) conv weights: 3·32, 32·64, 64·128, 128·128, 128·256, 256·256, 256·1
        // (×9), plus layer norms (128 + 256 + 256) × 2.
        let convs = 9 * (3 * 32 + 32 * 64 + 64 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256);
        let norms = 2 * (128 + 256 + 256);
        let total: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(total, convs + norms);
        Ok(())
    }

    /// The whole D's gradients at 64×64 in f32 (the CPU training kernels: tiled and Winograd convolutions,
    /// layer norm, fused LeakyReLU) against the same network in f64, whose gradients are checked against
    /// central differences on a few weights and input pixels. With and without spectral norm.
    #[test]
    fn whole_discriminator_gradients_at_64_px() -> Result<()> {
        use crate::nn::gradcheck::seeded;
        use candle_core::Var;
        for spectral_norm in [false, true] {
            let config = AnimeDiscriminatorConfig { channels: 16, n_dis: 3, spectral_norm };
            let vm32 = candle_nn::VarMap::new();
            AnimeDiscriminator::new(config, crate::nn::init::seeded_var_builder(&vm32, 5, DType::F32, &Device::Cpu))?;
            let weights: std::collections::HashMap<String, Tensor> =
                vm32.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
            // Each precision gets its own variables with the same values (spectral norm updates its u).
            let build = |dtype: DType| -> Result<(AnimeDiscriminator, Vec<(String, Var)>)> {
                let vm = candle_nn::VarMap::new();
                {
                    let mut data = vm.data().lock().unwrap();
                    for (k, t) in &weights {
                        data.insert(k.clone(), Var::from_tensor(&t.to_dtype(dtype)?)?);
                    }
                }
                let d = AnimeDiscriminator::new(config, VarBuilder::from_varmap(&vm, dtype, &Device::Cpu))?;
                let mut vars: Vec<(String, Var)> = vm.data().lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                vars.sort_by(|a, b| a.0.cmp(&b.0));
                Ok((d, vars))
            };
            let x64 = seeded(&[2, 3, 64, 64], 3)?;
            let r = seeded(&[2, 1, 16, 16], 4)?;
            let grads_of = |dtype: DType| -> Result<(Tensor, Vec<(String, Tensor)>, f64)> {
                let (d, vars) = build(dtype)?;
                let x = Var::from_tensor(&x64.to_dtype(dtype)?)?;
                let loss = (d.forward(x.as_tensor())? * r.to_dtype(dtype)?)?.sum_all()?;
                let g = loss.backward()?;
                let gx = g.get(&x).expect("input gradient").to_dtype(DType::F64)?;
                let gw = vars
                    .iter()
                    .filter(|(k, _)| !k.ends_with("weight_u"))
                    .map(|(k, v)| (k.clone(), g.get(v).expect("weight gradient").to_dtype(DType::F64).unwrap()))
                    .collect();
                Ok((gx, gw, loss.to_dtype(DType::F64)?.to_scalar::<f64>()?))
            };
            let (gx32, gw32, _) = grads_of(DType::F32)?;
            let (gx64, gw64, _) = grads_of(DType::F64)?;
            let rel = |a: &Tensor, b: &Tensor| {
                crate::nn::gradcheck::max_diff(a, b) / (b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap() + 1e-12)
            };
            assert!(rel(&gx32, &gx64) < 1e-3, "input gradient f32 vs f64 (sn {spectral_norm}): {}", rel(&gx32, &gx64));
            assert_eq!(gw32.len(), gw64.len());
            for ((k, a), (_, b)) in gw32.iter().zip(&gw64) {
                assert!(rel(a, b) < 1e-3, "{k} gradient f32 vs f64 (sn {spectral_norm}): {}", rel(a, b));
            }
            // The f64 gradients against central differences at a few input pixels (a fresh network each time,
            // so spectral norm's u starts from the same place).
            let objective = |x: &Tensor| -> Result<f64> {
                let (d, _) = build(DType::F64)?;
                Ok((d.forward(x)? * &r)?.sum_all()?.to_scalar::<f64>()?)
            };
            let flat: Vec<f64> = x64.flatten_all()?.to_vec1()?;
            let gx: Vec<f64> = gx64.flatten_all()?.to_vec1()?;
            for i in [0, 4_321, 12_288 + 2_080, flat.len() - 1] {
                let eps = 1e-5;
                let at = |delta: f64| -> Result<f64> {
                    let mut v = flat.clone();
                    v[i] += delta;
                    objective(&Tensor::from_vec(v, x64.dims(), &Device::Cpu)?)
                };
                let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps);
                assert!(
                    (numeric - gx[i]).abs() < 1e-5 * (1.0 + numeric.abs()),
                    "pixel {i} (sn {spectral_norm}): numeric {numeric}, autograd {}",
                    gx[i]
                );
            }
        }
        Ok(())
    }
}
