//! Gatys optimisation: the image itself is the variable, minimised with L-BFGS (the paper's choice, usually
//! far fewer iterations) or Adam (the project's `train::Adam`, one VGG forward/backward per step).

use super::gatys::{GatysLoss, LossValues};
use super::lbfgs::{Lbfgs, LbfgsConfig};
use crate::nn::adam::{Adam, AdamParams};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum Optimizer {
    Lbfgs,
    Adam,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum StartFrom {
    /// The content image (converges fastest, keeps the layout).
    Content,
    /// Uniform noise in [0, 1] (the paper's start).
    Noise,
}

#[derive(Clone, Debug)]
pub struct TransferOptions {
    pub iterations: usize,
    pub optimizer: Optimizer,
    /// Adam learning rate in [0, 1] pixel units.
    pub lr: f64,
    pub start: StartFrom,
    pub seed: u64,
}

/// The starting image for `content` (RGB [0, 1]).
pub fn initial_image(content: &Tensor, start: StartFrom, seed: u64) -> Result<Tensor> {
    Ok(match start {
        StartFrom::Content => content.clone(),
        StartFrom::Noise => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let v: Vec<f32> = (0..content.elem_count()).map(|_| rng.random::<f32>()).collect();
            Tensor::from_vec(v, content.dims(), content.device())?.to_dtype(content.dtype())?
        }
    })
}

/// Runs the optimisation from `start`; `on_iteration(i, losses, image)` is called after every iteration
/// (1-based) with the current image, for progress, logging and periodic saving. Returns the final image,
/// clamped to [0, 1].
pub fn transfer(
    loss: &GatysLoss,
    start: &Tensor,
    options: &TransferOptions,
    mut on_iteration: impl FnMut(usize, &LossValues, &Tensor) -> Result<()>,
) -> Result<Tensor> {
    let (dims, dtype, device) = (start.dims().to_vec(), start.dtype(), start.device().clone());
    match options.optimizer {
        Optimizer::Lbfgs => {
            let mut x: Vec<f64> = start.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
            let mut opt = Lbfgs::new(LbfgsConfig::default());
            let to_tensor =
                |x: &[f64]| -> Result<Tensor> { Ok(Tensor::from_slice(x, dims.as_slice(), &Device::Cpu)?.to_dtype(dtype)?.to_device(&device)?) };
            for i in 1..=options.iterations {
                let mut evaluated: Vec<LossValues> = Vec::new();
                let value = opt.step(&mut x, |xs| {
                    let (values, grad) = loss.evaluate_with_gradient(&to_tensor(xs)?)?;
                    let g: Vec<f64> = grad.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
                    let total = values.total;
                    evaluated.push(values);
                    Ok((total, g))
                })?;
                // The line search may end on an earlier point than its last evaluation: report the accepted one.
                let accepted = evaluated.into_iter().rev().find(|v| v.total == value).unwrap_or(LossValues { total: value, ..Default::default() });
                on_iteration(i, &accepted, &to_tensor(&x)?)?;
                if opt.converged {
                    break;
                }
            }
            Ok(to_tensor(&x)?.clamp(0.0, 1.0)?)
        }
        Optimizer::Adam => {
            let vars = candle_nn::VarMap::new();
            let image = vars.get(dims.as_slice(), "image", candle_nn::Init::Const(0.0), dtype, &device)?;
            let var = vars.data().lock().unwrap()["image"].clone();
            var.set(start)?;
            let mut adam = Adam::new(&vars, AdamParams { lr: options.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 })?;
            for i in 1..=options.iterations {
                let (total, values) = loss.evaluate(&image)?;
                adam.step(&total.backward()?)?;
                // Keep pixels displayable; the loss is evaluated inside [0, 1] only.
                var.set(&var.as_tensor().clamp(0.0, 1.0)?)?;
                on_iteration(i, &values, var.as_tensor())?;
            }
            Ok(var.as_tensor().clamp(0.0, 1.0)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::vgg::{Vgg, VggOptions};
    use crate::style::gatys::GatysWeights;

    /// A short transfer on small images: the style loss falls by a large factor, the content loss stays bounded.
    #[test]
    fn lbfgs_and_adam_reduce_style_loss() -> Result<()> {
        let Some(w) = crate::data::shared::shared_path("golden/gatys-vgg16-losses.safetensors") else { return Ok(()) };
        let Some(vggw) = crate::data::shared::shared_path(crate::models::vgg::VGG16_IMAGENET_SHARED) else { return Ok(()) };
        let golden = candle_core::safetensors::load(&w, &Device::Cpu)?;
        let vgg = Vgg::load(&vggw, &["relu4_1"], VggOptions::default(), DType::F32, &Device::Cpu)?;
        let weights = GatysWeights {
            content_layers: vec!["relu3_3".into()],
            style_layers: vec!["relu1_1".into(), "relu2_1".into(), "relu3_1".into(), "relu4_1".into()],
            style_layer_weights: vec![],
            alpha: 1.0,
            beta: 1e2,
            tv_weight: 0.0,
        };
        let content = golden["content_rgb01"].narrow(2, 8, 32)?.narrow(3, 8, 32)?;
        let style = golden["style_rgb01"].narrow(2, 8, 32)?.narrow(3, 8, 32)?;
        let loss = GatysLoss::new(&vgg, weights, &content, &[(style.clone(), 1.0)])?;
        let (_, first) = loss.evaluate(&content)?;
        // "Bounded": the result stays much closer to the content than the style image itself is.
        let (_, style_itself) = loss.evaluate(&style)?;
        for (optimizer, iterations, factor) in [(Optimizer::Lbfgs, 10, 5.0), (Optimizer::Adam, 10, 1.5)] {
            let opts = TransferOptions { iterations, optimizer, lr: 0.05, start: StartFrom::Content, seed: 1 };
            let mut history = Vec::new();
            let out = transfer(&loss, &content, &opts, |_, v, _| {
                history.push(v.clone());
                Ok(())
            })?;
            let (_, last) = loss.evaluate(&out)?;
            eprintln!(
                "{optimizer:?}: style {:.4e} -> {:.4e}, content 0 -> {:.4e} (style image: {:.4e})",
                first.style, last.style, last.content, style_itself.content
            );
            assert!(last.style * factor < first.style, "{optimizer:?}: style {} -> {}", first.style, last.style);
            assert!(last.content < style_itself.content, "{optimizer:?}: content {} vs {}", last.content, style_itself.content);
            assert!(history.len() <= iterations && !history.is_empty());
        }
        Ok(())
    }
}
