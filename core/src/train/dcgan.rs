//! The DCGAN task (pytorch/examples' loop): D steps on real and on detached fakes; G's step reuses the same
//! fakes, through the updated D, with D's weights untouched (only G's optimiser steps).

use super::objective::{gradient_penalty, ObjectiveSpec};
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
        Self::for_objective(config, seed, &ObjectiveSpec::Bce, device)
    }

    /// As [`Self::new`]; a WGAN-GP run gets a layer-norm critic (BatchNorm would couple the samples whose
    /// gradients the penalty constrains).
    pub fn for_objective(config: &DcganConfig, seed: u64, objective: &ObjectiveSpec, device: &Device) -> Result<Self> {
        // G and D draw their initial weights from their own streams of the run's seed.
        let g = Generator::new(config, seed.wrapping_mul(2).wrapping_add(1), device)?;
        let d_seed = seed.wrapping_mul(2).wrapping_add(2);
        let d = match objective {
            ObjectiveSpec::WganGp { .. } => Discriminator::new_critic(config, d_seed, device)?,
            _ => Discriminator::new(config, d_seed, device)?,
        };
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

    fn d_loss(&mut self, real: &[Tensor], ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let real = &real[0];
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
        let loss = ctx.objective.d_loss(&d_real, &d_fake, &targets)?;
        let loss = match ctx.objective.gradient_penalty() {
            None => loss,
            Some(lambda) => {
                let d = &self.d;
                let gp = gradient_penalty(|x| d.forward(x, Mode::Eval), &real_in, &fake_in, ctx.rng)?;
                (loss + (gp * lambda)?)?
            }
        };
        self.fake = Some(fake);
        Ok(loss)
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
    start: Option<(crate::models::dcgan::DcganConfig, super::TrainConfig, super::TrainOptions)>,
    out: &std::path::Path,
    total_steps: Option<u64>,
    device: &Device,
    quiet: bool,
    eval: Option<crate::metrics::TrainingEval>,
    time_limit: Option<std::time::Duration>,
) -> Result<super::TrainSummary> {
    use super::{checkpoint::Checkpoint, trainer::checkpoint_options, Bce, Trainer};
    let mut trainer = match start {
        Some((model, config, options)) => {
            if options.objective.build().gradient_penalty().is_some() {
                super::objective::enable_second_order_gradients()?;
            }
            let task = DcganTask::for_objective(&model, config.seed, &options.objective, device)?;
            Trainer::new(task, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, out, device)?.with_options(options)?
        }
        None => {
            let ckpt = Checkpoint::read(out, device)?;
            if ckpt.header.kind != "dcgan" {
                anyhow::bail!("{} is a `{}` checkpoint, not a DCGAN one", ckpt.path.display(), ckpt.header.kind);
            }
            let model: DcganConfig = serde_json::from_value(ckpt.header.model.clone())?;
            let seed = ckpt.header.state.as_ref().and_then(|s| s["config"]["seed"].as_u64()).unwrap_or(0);
            let options = checkpoint_options(&ckpt)?;
            if options.objective.build().gradient_penalty().is_some() {
                super::objective::enable_second_order_gradients()?;
            }
            let task = DcganTask::for_objective(&model, seed, &options.objective, device)?;
            Trainer::resume(task, options.objective.build(), &ckpt, out, device)?
        }
    };
    if let Some(steps) = total_steps {
        trainer.set_total_steps(steps);
    }
    let dataset = crate::data::open_dataset(&trainer.config().data)?;
    if !quiet {
        eprintln!("training on {} -> {}", dataset.describe(), out.display());
    }
    trainer = trainer.quiet(quiet).time_limit(time_limit);
    if let Some(eval) = eval {
        let monitor = crate::metrics::dcgan_monitor(dataset.as_ref(), &trainer.config().image, eval, device)?;
        trainer = trainer.with_monitor(monitor);
    }
    trainer.run(dataset)
}
