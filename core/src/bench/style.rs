//! Benchmark workloads of the style work (`../shared/bench/README.md`): `style-320x240`, `style-640x480`
//! (TransformerNet forward, full width) and `gatys-256-iter` (VGG19 to relu5_1 forward + loss + backward to
//! the image), timed by `bench::time_it` like `pytorch_reference.py`.

use super::{time_it, BenchResult};
use crate::models::transformer_net::{TransformerNet, TransformerNetConfig};
use crate::models::vgg::{Vgg, VggArch, VggOptions};
use crate::style::gatys::{GatysLoss, GatysWeights};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

pub const WORKLOADS: &[&str] = &["style-320x240", "style-640x480", "gatys-256-iter"];

/// Full-width VGG19 `features` conv weights (kaiming normal, fan_out, like torchvision's init), seeded.
fn random_vgg19(device: &Device) -> Result<HashMap<String, Tensor>> {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut tensors = HashMap::new();
    let mut c_in = 3;
    for (index, name) in VggArch::Vgg19.layer_names().iter().enumerate() {
        if let Some(rest) = name.strip_prefix("conv") {
            let block: usize = rest[..1].parse()?;
            let c_out = [64, 128, 256, 512, 512][block - 1];
            let std = (2.0 / (c_out * 9) as f64).sqrt();
            let normal = rand_distr::Normal::new(0.0, std)?;
            let w: Vec<f32> = (0..c_out * c_in * 9).map(|_| normal.sample(&mut rng) as f32).collect();
            tensors.insert(format!("features.{index}.weight"), Tensor::from_vec(w, (c_out, c_in, 3, 3), device)?);
            tensors.insert(format!("features.{index}.bias"), Tensor::zeros(c_out, DType::F32, device)?);
            c_in = c_out;
        }
    }
    Ok(tensors)
}

/// Runs a style workload; None when `workload` is not one of ours.
pub fn run(workload: &str, seconds: f64, min_runs: usize, device: &Device) -> Option<Result<BenchResult>> {
    if !WORKLOADS.contains(&workload) {
        return None;
    }
    Some((|| {
        let (median, runs, warmup, unit) = match workload {
            "gatys-256-iter" => {
                let tensors = random_vgg19(device)?;
                let style_layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];
                let vgg = Vgg::from_tensors(
                    &tensors,
                    &["relu5_1", "relu4_2"],
                    VggOptions { arch: Some(VggArch::Vgg19), ..Default::default() },
                    DType::F32,
                    device,
                    "random VGG19",
                )?;
                let weights = GatysWeights {
                    content_layers: vec!["relu4_2".into()],
                    style_layers: style_layers.iter().map(|s| s.to_string()).collect(),
                    style_layer_weights: vec![],
                    alpha: 1.0,
                    beta: 1e3,
                    tv_weight: 0.0,
                };
                let content = Tensor::rand(0f32, 1., (1, 3, 256, 256), device)?;
                let style = Tensor::rand(0f32, 1., (1, 3, 256, 256), device)?;
                let x = Tensor::rand(0f32, 1., (1, 3, 256, 256), device)?;
                let loss = GatysLoss::new(&vgg, weights, &content, &[(style, 1.0)])?;
                let (m, r, w) = time_it(|| loss.evaluate_with_gradient(&x).map(|_| ()), seconds, min_runs)?;
                (m, r, w, "iterations/s")
            }
            _ => {
                let (h, w) = if workload == "style-320x240" { (240, 320) } else { (480, 640) };
                let net =
                    crate::nn::init::seeded_inference_model(0, DType::F32, device, |vb| TransformerNet::new(&TransformerNetConfig::standard(), vb))?;
                let x = (Tensor::rand(0f32, 1., (1, 3, h, w), device)? * 255.0)?;
                let (m, r, wu) = time_it(
                    || {
                        let y = net.forward(&x)?;
                        device.synchronize()?;
                        drop(y);
                        Ok(())
                    },
                    seconds,
                    min_runs,
                )?;
                (m, r, wu, "frames/s")
            }
        };
        Ok(BenchResult { workload: workload.into(), unit, value: 1.0 / median, median_ms: median * 1e3, runs, warmup_runs: warmup })
    })())
}
