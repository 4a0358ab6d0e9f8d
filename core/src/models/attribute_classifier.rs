//! A small CNN that predicts categorical attributes (hair colour, eye colour, …) of a face image: the
//! "classifier" of the TL-GAN method, used to label generated samples and to caption sheets.
//! Keys: `trunk.{i}.…` (a PyTorch-style Sequential) and `heads.{k}.{weight,bias}` (one linear head per attribute).

use crate::nn::{seeded_var_builder, LayerSpec, Mode, Sequential};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Init, Linear, VarMap};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Input size (images are resized to it), RGB in [-1, 1].
    pub image_size: usize,
    pub width: usize,
    pub attributes: Vec<Attribute>,
}

impl ClassifierConfig {
    /// Every value as `attribute=value` ("hair=blonde"), attributes in order: the names axes, guided moves and
    /// their reports use.
    pub fn value_names(&self) -> Vec<String> {
        self.attributes.iter().flat_map(|a| a.values.iter().map(move |v| format!("{}={v}", a.name))).collect()
    }

    fn trunk(&self) -> Vec<LayerSpec> {
        let w = self.width;
        let mut l =
            vec![LayerSpec::Conv { c_in: 3, c_out: w, k: 3, stride: 1, pad: 1, bias: false }, LayerSpec::BatchNorm(w), LayerSpec::LeakyRelu(0.2)];
        let mut c = w;
        let mut size = self.image_size;
        while size > 4 {
            let next = (2 * c).min(8 * w);
            l.extend([
                LayerSpec::Conv { c_in: c, c_out: next, k: 4, stride: 2, pad: 1, bias: false },
                LayerSpec::BatchNorm(next),
                LayerSpec::LeakyRelu(0.2),
            ]);
            c = next;
            size /= 2;
        }
        l.extend([LayerSpec::Flatten, LayerSpec::Dropout(0.3)]);
        l
    }

    fn features(&self) -> usize {
        let mut c = self.width;
        let mut size = self.image_size;
        while size > 4 {
            c = (2 * c).min(8 * self.width);
            size /= 2;
        }
        c * 16
    }
}

pub struct AttributeClassifier {
    pub config: ClassifierConfig,
    pub vars: VarMap,
    trunk: Sequential,
    heads: Vec<Linear>,
}

impl AttributeClassifier {
    pub fn new(config: &ClassifierConfig, seed: u64, device: &Device) -> Result<Self> {
        if config.image_size < 8 || !config.image_size.is_power_of_two() {
            bail!("classifier image size must be a power of two >= 8, not {}", config.image_size);
        }
        if config.attributes.is_empty() || config.attributes.iter().any(|a| a.values.len() < 2) {
            bail!("a classifier needs at least one attribute with two or more values");
        }
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, seed, DType::F32, device);
        let init = Init::Kaiming {
            dist: candle_nn::init::NormalOrUniform::Normal,
            fan: candle_nn::init::FanInOut::FanIn,
            non_linearity: candle_nn::init::NonLinearity::ReLU,
        };
        let trunk = Sequential::new(&config.trunk(), init, vb.pp("trunk"))?;
        let f = config.features();
        let heads = config
            .attributes
            .iter()
            .enumerate()
            .map(|(k, a)| {
                let vb = vb.pp("heads").pp(k);
                let w = vb.get_with_hints((a.values.len(), f), "weight", Init::Randn { mean: 0.0, stdev: (1.0 / f as f64).sqrt() })?;
                let b = vb.get_with_hints(a.values.len(), "bias", Init::Const(0.0))?;
                Ok(Linear::new(w, Some(b)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { config: config.clone(), vars, trunk, heads })
    }

    /// Resizes to the classifier's input size (bilinear; exact 2×2 averaging for a 2× reduction).
    pub fn prepare(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let s = self.config.image_size;
        let (_, _, h, w) = images.dims4()?;
        if (h, w) == (s, s) {
            Ok(images.clone())
        } else if (h, w) == (2 * s, 2 * s) {
            // The same values as the bilinear 2× reduction (each output the mean of its 2×2 block), but
            // differentiable: guided attribute moves take gradients through it.
            images.avg_pool2d(2)
        } else {
            images.upsample_bilinear2d(s, s, false)
        }
    }

    /// One logits tensor `[N, values]` per attribute.
    pub fn forward(&self, images: &Tensor, mode: Mode) -> candle_core::Result<Vec<Tensor>> {
        let f = self.trunk.forward(&self.prepare(images)?, mode)?;
        self.heads.iter().map(|h| h.forward(&f)).collect()
    }

    /// The trunk's last feature map averaged over its 4×4 positions: `[N, channels]` (inference mode), a compact
    /// image embedding for the quality metrics.
    pub fn embedding(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let flat = self.trunk.forward(&self.prepare(images)?, Mode::Eval)?;
        let n = flat.dim(0)?;
        let c = flat.dim(1)? / 16;
        flat.reshape((n, c, 16))?.mean(2)
    }

    /// Softmax probabilities per attribute, inference mode.
    pub fn probabilities(&self, images: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        self.forward(images, Mode::Eval)?.iter().map(|l| candle_nn::ops::softmax(l, 1)).collect()
    }

    /// The most likely value of each attribute for each image: `[N][attribute]`.
    pub fn predict(&self, images: &Tensor) -> Result<Vec<Vec<String>>> {
        let probs = self.probabilities(images)?;
        let n = images.dim(0)?;
        let mut out = vec![Vec::new(); n];
        for (a, p) in self.config.attributes.iter().zip(&probs) {
            let idx: Vec<u32> = p.argmax(1)?.to_vec1()?;
            for (i, &k) in idx.iter().enumerate() {
                out[i].push(a.values[k as usize].clone());
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_keys() -> Result<()> {
        let cfg = ClassifierConfig {
            image_size: 16,
            width: 4,
            attributes: vec![
                Attribute { name: "hair".into(), values: vec!["a".into(), "b".into(), "c".into()] },
                Attribute { name: "eyes".into(), values: vec!["x".into(), "y".into()] },
            ],
        };
        let c = AttributeClassifier::new(&cfg, 1, &Device::Cpu)?;
        let x = Tensor::zeros((2, 3, 32, 32), DType::F32, &Device::Cpu)?;
        let out = c.forward(&x, Mode::Eval)?;
        assert_eq!((out[0].dims(), out[1].dims()), (&[2, 3][..], &[2, 2][..]));
        assert!(c.vars.data().lock().unwrap().contains_key("heads.1.bias"));
        assert_eq!(c.predict(&x)?.len(), 2);
        Ok(())
    }
}
