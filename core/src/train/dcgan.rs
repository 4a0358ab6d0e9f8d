//! The DCGAN task (pytorch/examples' loop): D steps on real and on detached fakes; G's step reuses the same
//! fakes, through the updated D, with D's weights untouched (only G's optimiser steps).

use super::task::{randn, GanTask, StepContext, StepStats};
use crate::models::dcgan::{DcganConfig, Discriminator, Generator};
use crate::nn::Mode;
use anyhow::Result;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};

pub struct DcganTask {
    pub g: Generator,
    pub d: Discriminator,
    fixed_noise: Tensor,
    fake: Option<Tensor>,
}

impl DcganTask {
    pub fn new(config: &DcganConfig, seed: u64, device: &Device) -> Result<Self> {
        // G and D draw their initial weights from their own streams of the run's seed.
        let g = Generator::new(config, seed.wrapping_mul(2).wrapping_add(1), device)?;
        let d = Discriminator::new(config, seed.wrapping_mul(2).wrapping_add(2), device)?;
        // The grid's noise is fixed for the whole run and derived from the seed, so it needs no checkpointing.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f1ed);
        let fixed_noise = randn(&mut rng, &[64, config.nz], device)?;
        Ok(Self { g, d, fixed_noise, fake: None })
    }
}

impl GanTask for DcganTask {
    fn groups(&self) -> Vec<(&'static str, &VarMap)> {
        vec![("G", &self.g.vars), ("D", &self.d.vars)]
    }

    fn d_loss(&mut self, real: &Tensor, ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let n = real.dim(0)?;
        let targets = ctx.labels.targets(n, ctx.rng, ctx.device)?;
        let z = ctx.randn(&[n, self.g.config.nz])?;
        let fake = self.g.forward(&z, Mode::Train { seed: ctx.rng.random() })?;
        let real_in = ctx.instance_noise(real)?;
        let fake_in = ctx.instance_noise(&fake.detach())?;
        let d_real = self.d.forward(&real_in, Mode::Train { seed: ctx.rng.random() })?;
        let d_fake = self.d.forward(&fake_in, Mode::Train { seed: ctx.rng.random() })?;
        stats.real_score = ctx.objective.score(&d_real)?.mean_all()?.to_scalar::<f32>()? as f64;
        stats.fake_score = ctx.objective.score(&d_fake)?.mean_all()?.to_scalar::<f32>()? as f64;
        self.fake = Some(fake);
        ctx.objective.d_loss(&d_real, &d_fake, &targets)
    }

    fn g_loss(&mut self, ctx: &mut StepContext, _stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let fake = self.fake.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let fake_in = ctx.instance_noise(&fake)?;
        let d_fake = self.d.forward(&fake_in, Mode::Train { seed: ctx.rng.random() })?;
        ctx.objective.g_loss(&d_fake)
    }

    fn samples(&self) -> candle_core::Result<Tensor> {
        self.g.forward(&self.fixed_noise, Mode::Eval)
    }
}

/// Starts a DCGAN run in `out`, or continues the one there when `resume` (then `config`/`model` come from the
/// checkpoint and only `total_steps` may raise the target). Returns the summary.
pub fn train_dcgan(
    start: Option<(crate::models::dcgan::DcganConfig, super::TrainConfig)>,
    out: &std::path::Path,
    total_steps: Option<u64>,
    device: &Device,
    quiet: bool,
) -> Result<super::TrainSummary> {
    use super::{checkpoint::Checkpoint, Bce, Trainer};
    let mut trainer = match start {
        Some((model, config)) => {
            let task = DcganTask::new(&model, config.seed, device)?;
            Trainer::new(task, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, out, device)?
        }
        None => {
            let ckpt = Checkpoint::read(out, device)?;
            if ckpt.header.kind != "dcgan" {
                anyhow::bail!("{} is a `{}` checkpoint, not a DCGAN one", ckpt.path.display(), ckpt.header.kind);
            }
            let model: DcganConfig = serde_json::from_value(ckpt.header.model.clone())?;
            let seed = ckpt.header.state.as_ref().and_then(|s| s["config"]["seed"].as_u64()).unwrap_or(0);
            Trainer::resume(DcganTask::new(&model, seed, device)?, Box::new(Bce), &ckpt, out, device)?
        }
    };
    if let Some(steps) = total_steps {
        trainer.set_total_steps(steps);
    }
    let dataset = crate::data::open_dataset(&trainer.config().data)?;
    if !quiet {
        eprintln!("training on {} -> {}", dataset.describe(), out.display());
    }
    trainer = trainer.quiet(quiet);
    trainer.run(dataset)
}
