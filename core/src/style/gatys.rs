//! Gatys et al. (2015) losses on VGG features, exactly as in the paper:
//! - content: `sum((F_l(x) - F_l(content))^2)` summed over the content layers (no 1/2; the golden's form);
//! - style: `E_l = sum((G_l(x) - A_l)^2) / (4 N_l^2 M_l^2)` with `G = F F^T` (`F` = `[N_l, M_l]`), combined as
//!   `sum_l w_l E_l`, `w_l = 1/|L|` unless given;
//! - total: `alpha * content + beta * style (+ tv_weight * TV(x))`.
//!
//! Several style images blend by weighting their Gram matrices; a style image of another size has its Gram
//! rescaled by `M_l(x) / M_l(style)` (i.e. Grams are compared per pixel), which is the identity for equal sizes.
//! Squared differences are summed in f64: a layer can hold ~1e6 terms of very different magnitude.

use crate::models::vgg::Vgg;
use anyhow::{bail, Result};
use candle_core::{DType, Tensor, Var};

/// `F F^T` per sample: `[B, C, H, W]` -> `[B, C, C]`, not normalised.
pub fn gram(features: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, h, w) = features.dims4()?;
    let f = features.reshape((b, c, h * w))?;
    f.matmul(&f.t()?)
}

/// Sum of squares accumulated in f64 (a scalar f64 tensor; differentiable).
fn sum_sq_f64(t: &Tensor) -> candle_core::Result<Tensor> {
    t.sqr()?.to_dtype(DType::F64)?.sum_all()
}

/// Total variation: sum of squared differences between horizontal and vertical neighbours.
pub fn total_variation(x: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let dy = (x.narrow(2, 1, h - 1)? - x.narrow(2, 0, h - 1)?)?;
    let dx = (x.narrow(3, 1, w - 1)? - x.narrow(3, 0, w - 1)?)?;
    sum_sq_f64(&dy)? + sum_sq_f64(&dx)?
}

#[derive(Clone, Debug)]
pub struct GatysWeights {
    pub content_layers: Vec<String>,
    pub style_layers: Vec<String>,
    /// `w_l` per style layer; empty means `1/|L|` each.
    pub style_layer_weights: Vec<f64>,
    pub alpha: f64,
    pub beta: f64,
    pub tv_weight: f64,
}

/// Loss values of one evaluation, as plain numbers.
#[derive(Clone, Debug, Default)]
pub struct LossValues {
    pub content: f64,
    pub style_per_layer: Vec<f64>,
    pub style: f64,
    pub tv: f64,
    pub total: f64,
}

/// The Gatys objective with its constant targets.
pub struct GatysLoss<'a> {
    vgg: &'a Vgg,
    weights: GatysWeights,
    layer_weights: Vec<f64>,
    /// All layers the forward needs: content layers, then style layers.
    layers: Vec<String>,
    content_targets: Vec<Tensor>,
    /// Blended per-pixel Grams (`G / M`) of the style images, per style layer.
    style_grams_per_pixel: Vec<Tensor>,
}

impl<'a> GatysLoss<'a> {
    /// `content` and each style image: RGB [0, 1] `[1, 3, H, W]`; `styles` pairs an image with its blend weight.
    pub fn new(vgg: &'a Vgg, weights: GatysWeights, content: &Tensor, styles: &[(Tensor, f64)]) -> Result<Self> {
        if weights.content_layers.is_empty() || weights.style_layers.is_empty() {
            bail!("Gatys transfer needs at least one content layer and one style layer");
        }
        if styles.is_empty() {
            bail!("no style image given");
        }
        let blend_total: f64 = styles.iter().map(|(_, w)| w).sum();
        if styles.iter().any(|(_, w)| !w.is_finite() || *w < 0.0) || blend_total <= 0.0 {
            bail!("style blend weights must be non-negative and sum to a positive number");
        }
        let n = weights.style_layers.len();
        let layer_weights = if weights.style_layer_weights.is_empty() {
            vec![1.0 / n as f64; n]
        } else if weights.style_layer_weights.len() == n {
            weights.style_layer_weights.clone()
        } else {
            bail!("{} style layer weights given for {n} style layers", weights.style_layer_weights.len());
        };
        let content_names: Vec<&str> = weights.content_layers.iter().map(String::as_str).collect();
        let style_names: Vec<&str> = weights.style_layers.iter().map(String::as_str).collect();
        let content_targets = vgg.features(content, &content_names)?.into_iter().map(|t| t.detach()).collect();
        let mut style_grams_per_pixel: Vec<Option<Tensor>> = vec![None; n];
        for (image, w) in styles {
            for (slot, f) in style_grams_per_pixel.iter_mut().zip(vgg.features(image, &style_names)?) {
                let (_, _, h, wd) = f.dims4()?;
                let g = ((gram(&f)? / (h * wd) as f64)? * (*w / blend_total))?.detach();
                *slot = Some(match slot.take() {
                    None => g,
                    Some(acc) => (acc + g)?,
                });
            }
        }
        let layers = weights.content_layers.iter().chain(&weights.style_layers).cloned().collect();
        Ok(Self {
            vgg,
            weights,
            layer_weights,
            layers,
            content_targets,
            style_grams_per_pixel: style_grams_per_pixel.into_iter().map(|g| g.expect("filled")).collect(),
        })
    }

    /// The total loss (scalar f64 tensor, differentiable w.r.t. `x`) and its parts, for RGB [0, 1] `x`.
    pub fn evaluate(&self, x: &Tensor) -> Result<(Tensor, LossValues)> {
        let names: Vec<&str> = self.layers.iter().map(String::as_str).collect();
        let feats = self.vgg.features(x, &names)?;
        let (content_feats, style_feats) = feats.split_at(self.weights.content_layers.len());
        let mut content = Tensor::zeros((), DType::F64, x.device())?;
        for (f, t) in content_feats.iter().zip(&self.content_targets) {
            content = (content + sum_sq_f64(&(f - t)?)?)?;
        }
        let mut style = Tensor::zeros((), DType::F64, x.device())?;
        let mut per_layer = Vec::new();
        for ((f, a), w) in style_feats.iter().zip(&self.style_grams_per_pixel).zip(&self.layer_weights) {
            let (_, c, h, wd) = f.dims4()?;
            let m = (h * wd) as f64;
            let e = (sum_sq_f64(&(gram(f)? - (a * m)?)?)? / (4.0 * (c * c) as f64 * m * m))?;
            per_layer.push(e.to_scalar::<f64>()?);
            style = (style + (e * *w)?)?;
        }
        let mut total = ((&content * self.weights.alpha)? + (&style * self.weights.beta)?)?;
        let mut tv = 0.0;
        if self.weights.tv_weight > 0.0 {
            let t = total_variation(x)?;
            tv = t.to_scalar::<f64>()?;
            total = (total + (t * self.weights.tv_weight)?)?;
        }
        let values =
            LossValues { content: content.to_scalar()?, style_per_layer: per_layer, style: style.to_scalar()?, tv, total: total.to_scalar()? };
        Ok((total, values))
    }

    /// Loss parts and `d total / d x`.
    pub fn evaluate_with_gradient(&self, x: &Tensor) -> Result<(LossValues, Tensor)> {
        let var = Var::from_tensor(&x.detach())?;
        let (total, values) = self.evaluate(var.as_tensor())?;
        let grads = total.backward()?;
        let g = grads.get(&var).ok_or_else(|| anyhow::anyhow!("no gradient reached the image"))?.clone();
        Ok((values, g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;
    use crate::models::vgg::{VggOptions, VGG16_IMAGENET_SHARED};
    use candle_core::Device;

    fn scalar(t: &Tensor) -> f64 {
        t.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()[0]
    }

    fn weights(content: &[&str], style: &[&str], beta: f64) -> GatysWeights {
        GatysWeights {
            content_layers: content.iter().map(|s| s.to_string()).collect(),
            style_layers: style.iter().map(|s| s.to_string()).collect(),
            style_layer_weights: vec![],
            alpha: 1.0,
            beta,
            tv_weight: 0.0,
        }
    }

    #[test]
    fn vgg19_seeded_losses_and_gradient_match_golden() -> Result<()> {
        let (Some(w), Some(g)) = (shared_path("golden/vgg19-features-seeded.pth"), shared_path("golden/gatys-losses.safetensors")) else {
            return Ok(());
        };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        let style_layers = ["relu1_1", "relu2_1", "relu3_1"];
        for dtype in [DType::F32, DType::F64] {
            let vgg = Vgg::load(&w, &["relu3_1"], VggOptions::default(), dtype, &Device::Cpu)?;
            let img = |k: &str| golden[k].to_dtype(dtype).unwrap();
            let loss = GatysLoss::new(&vgg, weights(&["relu3_1"], &style_layers, 1000.0), &img("content_image"), &[(img("style_image"), 1.0)])?;
            let (v, grad) = loss.evaluate_with_gradient(&img("x"))?;
            let tol = if dtype == DType::F32 { 1e-5 } else { 1e-10 };
            let close = |a: f64, k: &str| {
                let r = scalar(&golden[k]);
                assert!((a - r).abs() <= tol * r.abs(), "{dtype:?} {k}: {a} vs {r}");
            };
            close(v.content, "content_loss");
            for (e, l) in v.style_per_layer.iter().zip(style_layers) {
                close(*e, &format!("style_loss_{l}"));
            }
            close(v.style, "style_loss");
            close(v.total, "total_loss");
            let e = rel_err(&grad, &golden["grad_x"]);
            eprintln!("gatys vgg19 {dtype:?}: total {} vs {}, grad_x relative error {e:.2e}", v.total, scalar(&golden["total_loss"]));
            assert!(e < if dtype == DType::F32 { 1e-4 } else { 1e-9 }, "{dtype:?} grad_x: relative error {e}");
        }
        Ok(())
    }

    #[test]
    fn vgg16_imagenet_losses_and_gradients_match_golden() -> Result<()> {
        let (Some(w), Some(g)) = (shared_path(VGG16_IMAGENET_SHARED), shared_path("golden/gatys-vgg16-losses.safetensors")) else {
            return Ok(());
        };
        let golden = candle_core::safetensors::load(&g, &Device::Cpu)?;
        let style_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1"];
        let vgg = Vgg::vgg16_imagenet(&w, &["relu4_1"], &Device::Cpu)?;
        let loss =
            GatysLoss::new(&vgg, weights(&["relu3_3"], &style_layers, 1000.0), &golden["content_rgb01"], &[(golden["style_rgb01"].clone(), 1.0)])?;
        let (v, grad) = loss.evaluate_with_gradient(&golden["x_rgb01"])?;
        let close = |a: f64, k: &str| {
            let r = scalar(&golden[k]);
            assert!((a - r).abs() <= 1e-5 * r.abs(), "{k}: {a} vs {r}");
        };
        close(v.content, "content_loss");
        for (e, l) in v.style_per_layer.iter().zip(style_layers) {
            close(*e, &format!("style_loss_{l}"));
        }
        close(v.style, "style_loss");
        close(v.total, "total_loss");
        let e = rel_err(&grad, &golden["grad_x_rgb01"]);
        eprintln!("gatys vgg16: total {} vs {}, grad_x_rgb01 relative error {e:.2e}", v.total, scalar(&golden["total_loss"]));
        assert!(e < 1e-4, "grad_x_rgb01: relative error {e}");
        // The content gradient alone, with the preprocessed input as the variable.
        let content_only =
            GatysLoss::new(&vgg, weights(&["relu3_3"], &["relu1_1"], 0.0), &golden["content_rgb01"], &[(golden["style_rgb01"].clone(), 1.0)])?;
        let xc = Var::from_tensor(&golden["x_caffe"].to_dtype(DType::F32)?)?;
        let f = vgg.forward_preprocessed(xc.as_tensor(), &["relu3_3"])?;
        let total = sum_sq_f64(&(&f[0] - &content_only.content_targets[0])?)?;
        let gc = total.backward()?.get(&xc).unwrap().clone();
        let e = rel_err(&gc, &golden["grad_x_caffe_content"]);
        eprintln!("gatys vgg16: grad_x_caffe_content relative error {e:.2e}");
        assert!(e < 1e-4, "grad_x_caffe_content: relative error {e}");
        Ok(())
    }

    #[test]
    fn tv_and_blend_validation() -> Result<()> {
        let x = Tensor::new(&[[[[0f32, 1.], [3., 1.]]]], &Device::Cpu)?;
        assert_eq!(total_variation(&x)?.to_scalar::<f64>()?, 9.0 + 0.0 + 1.0 + 4.0);
        let g = gram(&Tensor::new(&[[[[1f32, 2.]], [[3., 4.]]]], &Device::Cpu)?)?;
        assert_eq!(g.flatten_all()?.to_vec1::<f32>()?, vec![5., 11., 11., 25.]);
        Ok(())
    }
}
