//! `ganime bench WORKLOAD`: the workloads of `../shared/bench/README.md`, timed exactly like
//! `pytorch_reference.py` (warm-up of >= 2 runs and min(3 s, 15 % of the budget), then the median of runs
//! over `seconds`), printing the same JSON line, so BENCHMARKS.md compares like with like.

pub mod anime;
pub mod half;
pub mod style;

use crate::models::dcgan::{DcganConfig, Generator, Preset};
use crate::nn::Mode;
use crate::train::{task::randn, Bce, DcganTask, TrainConfig, Trainer};
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use std::time::Instant;

pub const WORKLOADS: &[&str] = &["dcgan64-train", "dcgan64-generate"];

pub struct BenchResult {
    pub workload: String,
    pub unit: &'static str,
    pub value: f64,
    pub median_ms: f64,
    pub runs: usize,
    pub warmup_runs: usize,
}

impl BenchResult {
    pub fn json(&self) -> String {
        format!(
            r#"{{"workload": "{}", "unit": "{}", "value": {:.4}, "median_ms": {:.3}, "runs": {}, "warmup_runs": {}, "threads": {}, "impl": "ganime"}}"#,
            self.workload,
            self.unit,
            self.value,
            self.median_ms,
            self.runs,
            self.warmup_runs,
            rayon::current_num_threads()
        )
    }
}

pub(crate) fn time_it(mut step: impl FnMut() -> Result<()>, seconds: f64, min_runs: usize) -> Result<(f64, usize, usize)> {
    let t0 = Instant::now();
    let mut warmup = 0;
    while warmup < 2 || t0.elapsed().as_secs_f64() < (3.0f64).min(0.15 * seconds) {
        step()?;
        warmup += 1;
    }
    let mut times = Vec::new();
    let t0 = Instant::now();
    while times.len() < min_runs || t0.elapsed().as_secs_f64() < seconds {
        let s = Instant::now();
        step()?;
        times.push(s.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let n = times.len();
    let median = if n % 2 == 1 { times[n / 2] } else { 0.5 * (times[n / 2 - 1] + times[n / 2]) };
    Ok((median, n, warmup))
}

/// pytorch/examples DCGAN at full width (nz 100, ngf = ndf = 64, 64×64), batch 64.
fn full_width() -> DcganConfig {
    DcganConfig::preset(Preset::Radford64)
}

pub fn run(workload: &str, seconds: f64, min_runs: usize, device: &Device) -> Result<BenchResult> {
    if let Some(result) = style::run(workload, seconds, min_runs, device) {
        return result;
    }
    let batch = 64;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (median, runs, warmup) = match workload {
        "dcgan64-train" => {
            let model = full_width();
            let out = tempfile::tempdir()?;
            let config = TrainConfig::benchmark(64, batch);
            let task = DcganTask::new(&model, 0, device)?;
            let mut trainer = Trainer::new(task, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, out.path(), device)?;
            // A fixed random batch in [-1, 1], as the reference (no data loading).
            let real = ((Tensor::rand(0f32, 1., (batch, 3, 64, 64), device)? * 2.0)? - 1.0)?;
            time_it(|| trainer.train_step(&real).map(|_| ()), seconds, min_runs)?
        }
        "dcgan64-generate" => {
            let g = Generator::new(&full_width(), 0, device)?;
            time_it(
                || {
                    let z = randn(&mut rng, &[batch, 100], device)?;
                    let y = g.forward(&z, Mode::Eval)?;
                    device.synchronize()?;
                    drop(y);
                    Ok(())
                },
                seconds,
                min_runs,
            )?
        }
        anime if anime::WORKLOADS.contains(&anime) => return anime::run(anime, seconds, min_runs, device),
        other => bail!("unknown workload `{other}`; known: {}, {}", WORKLOADS.join(", "), anime::WORKLOADS.join(", ")),
    };
    Ok(BenchResult { workload: workload.into(), unit: "images/s", value: batch as f64 / median, median_ms: median * 1e3, runs, warmup_runs: warmup })
}
