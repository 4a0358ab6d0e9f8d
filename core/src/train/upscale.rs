//! Training the learned upscaler ([`crate::models::upscaler`]) on pairs made by downscaling: each training
//! picture is the high-resolution target, its 2×2 box average the input (the "BD" degradation of the cartoon
//! super-resolution papers). One optimiser group, `G`, no critic, in the shared trainer (checkpoints,
//! `--resume`, `--max-minutes`, samples, logs).

use super::animegan_losses::l1;
use super::task::{GanTask, StepContext, StepStats};
use super::trainer::{start_or_resume, RunControl, TrainConfig, TrainOptions, TrainSummary, Trainer};
use crate::data::concat::ConcatDataset;
use crate::io::checkpoint::Checkpoint;
use crate::models::upscaler::{Upscaler, UpscalerConfig};
use crate::nn::init::seeded_var_builder;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const CHECKPOINT_KIND: &str = "upscaler";
/// The upscaler alone, written next to the checkpoint when a run ends (`ganime upscale --model`).
pub const MODEL_FILE: &str = "upscaler.safetensors";

/// The model part of an upscaler run (the checkpoint's `model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UpscaleRunConfig {
    pub upscaler: UpscalerConfig,
    /// Picture folders it trains on (one stream: their concatenation).
    pub data: Vec<PathBuf>,
}

/// The training input of a target batch: its `factor`×`factor` box average.
pub fn downscale(hr: &Tensor, factor: usize) -> candle_core::Result<Tensor> {
    hr.avg_pool2d(factor)
}

pub struct UpscaleTask {
    model: Upscaler,
    vars: VarMap,
    fixed: Tensor,
    pending: Option<Tensor>,
}

impl UpscaleTask {
    pub fn new(config: &UpscaleRunConfig, seed: u64, fixed: Tensor, device: &Device) -> Result<Self> {
        let vars = VarMap::new();
        let model = Upscaler::new(config.upscaler, seeded_var_builder(&vars, seed.wrapping_mul(2).wrapping_add(1), DType::F32, device))?;
        Ok(Self { model, vars, fixed, pending: None })
    }
}

impl GanTask for UpscaleTask {
    fn groups(&self) -> Vec<(&'static str, &VarMap)> {
        vec![("G", &self.vars)]
    }

    fn critic_groups(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn trains_critic(&self, _step: u64) -> bool {
        false
    }

    /// No critic: keeps the batch for the upscaler's step.
    fn d_loss(&mut self, real: &[Tensor], _ctx: &mut StepContext, _stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let hr = real.first().ok_or_else(|| candle_core::Error::Msg("the upscaler needs a picture stream".into()))?;
        self.pending = Some(hr.clone());
        Tensor::zeros((), DType::F32, hr.device())
    }

    fn g_loss(&mut self, _ctx: &mut StepContext, _stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let hr = self.pending.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let lr = downscale(&hr, self.model.config.factor)?;
        l1(&self.model.forward(&lr)?, &hr)
    }

    /// Rows of: input (nearest-enlarged), bilinear, the upscaler, the original.
    fn samples(&self) -> candle_core::Result<Tensor> {
        let r = self.model.config.factor;
        let (_, _, h, w) = self.fixed.dims4()?;
        let lr = downscale(&self.fixed, r)?;
        let nearest = lr.upsample_nearest2d(h, w)?;
        let bilinear = lr.upsample_bilinear2d(h, w, false)?;
        let learned = self.model.forward(&lr)?;
        super::task::interleave(&[&nearest, &bilinear, &learned, &self.fixed])
    }

    fn sample_columns(&self) -> Option<usize> {
        Some(8)
    }
}

/// Starts an upscaler run in `out`, or resumes the one there. Writes [`MODEL_FILE`] (f16) at the end.
pub fn train_upscaler(start: Option<(UpscaleRunConfig, TrainConfig)>, out: &Path, device: &Device, run: RunControl) -> Result<TrainSummary> {
    let (model, config, ckpt) = start_or_resume(start, out, CHECKPOINT_KIND, "an upscaler run", device)?;
    model.upscaler.validate()?;
    if config.image.size % model.upscaler.factor != 0 {
        anyhow::bail!("--image-size {} is not a multiple of the factor {}", config.image.size, model.upscaler.factor);
    }
    let data = ConcatDataset::open(&model.data, "--data")?;
    let fixed = crate::data::spread_samples(data.as_ref(), &config.image, 8, device)?;
    let task = UpscaleTask::new(&model, config.seed, fixed, device)?;
    let mut trainer = Trainer::new_or_resumed(
        task,
        TrainOptions::default(),
        CHECKPOINT_KIND,
        serde_json::to_value(&model)?,
        config,
        ckpt.as_ref(),
        out,
        device,
        run,
    )?;
    if !run.quiet {
        eprintln!("training a {}x upscaler on {} -> {}", model.upscaler.factor, data.describe(), out.display());
    }
    let summary = trainer.run_streams(vec![data])?;
    let ckpt = Checkpoint::read(out, &Device::Cpu)?;
    crate::generate::export_generator(&ckpt, &out.join(MODEL_FILE), DType::F16, "learned 2x upscaler trained by ganime", false)?;
    Ok(summary)
}
