//! The anime workloads of `../shared/bench/README.md` for `ganime bench`: `animegan-256` (full-width
//! AnimeGANv2 generator forward on a 256×256 frame) and `cyclegan128-train` (one full CycleGAN iteration at
//! 128×128 through the shared trainer, ImagePool off as in the reference script).

use super::{time_it, BenchResult};
use crate::models::animegan::{AnimeGanV2, AnimeGanWidths};
use crate::models::cyclegan::{DiscriminatorConfig, GeneratorConfig};
use crate::nn::bilinear::ResizeConvention;
use crate::train::cyclegan::{CycleGanConfig, CycleGanTask};
use crate::train::{Lsgan, TrainConfig, Trainer};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};

pub const WORKLOADS: &[&str] = &["animegan-256", "cyclegan128-train"];

fn random_images(n: usize, size: usize, device: &Device) -> Result<Tensor> {
    Ok(((Tensor::rand(0f32, 1., (n, 3, size, size), device)? * 2.0)? - 1.0)?)
}

pub fn run(workload: &str, seconds: f64, min_runs: usize, device: &Device) -> Result<BenchResult> {
    let (unit, (median, runs, warmup)) = match workload {
        "animegan-256" => {
            let g = crate::nn::init::seeded_inference_model(0, DType::F32, device, |vb| AnimeGanV2::new(AnimeGanWidths::RELEASED, vb))?;
            let x = random_images(1, 256, device)?;
            (
                "frames/s",
                time_it(
                    || {
                        let y = g.forward(&x, ResizeConvention::AlignCorners)?;
                        device.synchronize()?;
                        drop(y);
                        Ok(())
                    },
                    seconds,
                    min_runs,
                )?,
            )
        }
        "cyclegan128-train" => {
            let model = CycleGanConfig {
                generator: GeneratorConfig { ngf: 64, n_blocks: 9 },
                discriminator: DiscriminatorConfig { ndf: 64, n_layers: 3 },
                crop: 128,
                lambda_cycle: 10.0,
                lambda_identity: 0.5,
                pool_size: 0,
            };
            let config = TrainConfig::benchmark(128, 1);
            let fixed = (random_images(1, 128, device)?, random_images(1, 128, device)?);
            let task = CycleGanTask::new(&model, 0, fixed, device)?;
            let out = tempfile::tempdir()?;
            let mut trainer = Trainer::new(task, Box::new(Lsgan), "cyclegan", serde_json::to_value(&model)?, config, out.path(), device)?;
            let reals = vec![vec![random_images(1, 128, device)?, random_images(1, 128, device)?]];
            ("steps/s", time_it(|| trainer.train_step_streams(&reals).map(|_| ()), seconds, min_runs)?)
        }
        other => anyhow::bail!("unknown workload `{other}`"),
    };
    Ok(BenchResult { workload: workload.into(), unit, value: 1.0 / median, median_ms: median * 1e3, runs, warmup_runs: warmup })
}
