//! The DCGAN task (pytorch/examples' loop): D steps on real and on detached fakes; G's step reuses the same
//! fakes, through the updated D, with D's weights untouched (only G's optimiser steps). [`GanRecipe`] adds the
//! small-data recipe on top of that loop: a spectrally normalised D, DiffAugment, R1, an EMA of G and a
//! separate learning rate for D.

use super::diffaugment::DiffAugment;
use super::objective::{gradient_penalty, r1_penalty, ObjectiveSpec};
use super::task::{GanTask, StepContext, StepStats};
use crate::models::dcgan::{DcganConfig, Discriminator, Generator, EMA_KEY_PREFIX};
use crate::models::progressive::{GrowingDiscriminator, GrowingGenerator, GrowthSchedule};
use crate::nn::Mode;
use anyhow::Result;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The parts of a modern small-data GAN recipe a DCGAN run may use (each off by default; stored in the
/// checkpoint with the other [`super::TrainOptions`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GanRecipe {
    /// D with spectrally normalised convs and no BatchNorm ([`Discriminator::new_spectral`]).
    #[serde(default)]
    pub spectral_norm: bool,
    /// Differentiable augmentation of everything D sees, real and fake ([`DiffAugment`]).
    #[serde(default)]
    pub diffaugment: Option<DiffAugment>,
    /// Decay of an exponential moving average of G's weights; sample grids, `generate` on the run folder and
    /// `export` use the average instead of the raw G.
    #[serde(default)]
    pub ema: Option<f64>,
    /// R1 penalty weight γ (Mescheder et al. 2018): D's loss gets `γ/2 · E‖∇ₓD(x)‖²` on real images.
    #[serde(default)]
    pub r1: Option<f64>,
    /// D's learning rate where it differs from G's (the two time-scale update rule, Heusel et al. 2017).
    #[serde(default)]
    pub lr_d: Option<f64>,
    /// Progressive growing (Karras et al. 2018): the resolution each step trains at and its fade-in.
    #[serde(default)]
    pub progressive: Option<GrowthSchedule>,
}

impl GanRecipe {
    /// The recipe `--recipe small-data` selects: SN-D, DiffAugment (colour, translation, cutout), EMA 0.999,
    /// D at twice G's rate (with the hinge objective, which the CLI sets alongside).
    pub fn small_data(lr: f64) -> Self {
        Self {
            spectral_norm: true,
            diffaugment: Some(DiffAugment { color: true, translation: true, cutout: true }),
            ema: Some(0.999),
            r1: None,
            lr_d: Some(2.0 * lr),
            progressive: None,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if let Some(b) = self.ema {
            if !(0.0..1.0).contains(&b) {
                anyhow::bail!("--ema must be in [0, 1), not {b}");
            }
        }
        if let Some(g) = self.r1 {
            if !(g.is_finite() && g > 0.0) {
                anyhow::bail!("--r1 must be a positive number, not {g}");
            }
        }
        if let Some(lr) = self.lr_d {
            if !(lr.is_finite() && lr > 0.0) {
                anyhow::bail!("--lr-d must be a positive number, not {lr}");
            }
        }
        Ok(())
    }
}

/// Key prefix of the moving average in the task's state; the trainer stores task state under `task.`, which
/// gives the checkpoint keys [`EMA_KEY_PREFIX`] that `generate` and `export` look for.
const EMA_STATE_PREFIX: &str = "ema.";

pub struct DcganTask {
    pub g: Generator,
    pub d: Discriminator,
    recipe: GanRecipe,
    /// The moving average of G's weights (same architecture), when the recipe asks for one.
    ema: Option<Generator>,
    /// Whether the average's BatchNorm statistics fit its current weights (cleared by every update), so a step
    /// that both samples and checkpoints recomputes them once.
    ema_statistics_fresh: std::cell::Cell<bool>,
    fixed_noise: Tensor,
    fake: Option<Tensor>,
    /// Progressive growing: the extra heads of G, of its average and of D, and the (resolution, α) of the last
    /// step (samples show it).
    growth: Option<Growth>,
}

struct Growth {
    schedule: GrowthSchedule,
    g: GrowingGenerator,
    ema: Option<GrowingGenerator>,
    d: GrowingDiscriminator,
    now: std::cell::Cell<(usize, f64)>,
}

impl DcganTask {
    pub fn new(config: &DcganConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::with_recipe(config, seed, &ObjectiveSpec::Bce, GanRecipe::default(), device)
    }

    /// As [`Self::new`] for `objective` and `recipe`. D: spectrally normalised when the recipe says so, else a
    /// layer-norm critic for WGAN-GP (BatchNorm would couple the samples whose gradients the penalty
    /// constrains), else the reference's.
    pub fn with_recipe(config: &DcganConfig, seed: u64, objective: &ObjectiveSpec, recipe: GanRecipe, device: &Device) -> Result<Self> {
        recipe.validate()?;
        // G and D draw their initial weights from their own streams of the run's seed.
        let g_seed = seed.wrapping_mul(2).wrapping_add(1);
        let g = Generator::new(config, g_seed, device)?;
        let d_seed = seed.wrapping_mul(2).wrapping_add(2);
        let d = match objective {
            _ if recipe.spectral_norm => Discriminator::new_spectral(config, d_seed, device)?,
            ObjectiveSpec::WganGp { .. } => Discriminator::new_critic(config, d_seed, device)?,
            _ => Discriminator::new(config, d_seed, device)?,
        };
        // The average starts as a copy of G (same seed, same initial weights).
        let ema = recipe.ema.map(|_| Generator::new(config, g_seed, device)).transpose()?;
        let growth = match recipe.progressive {
            None => None,
            Some(schedule) => {
                if recipe.r1.is_some() || objective.build().gradient_penalty().is_some() {
                    anyhow::bail!("--progressive does not combine with --r1 or wgan-gp (their penalties run D at full size)");
                }
                // Heads from their own seed, the same for G and its average.
                let head_seed = seed.wrapping_mul(2).wrapping_add(3);
                Some(Growth {
                    schedule,
                    g: GrowingGenerator::new(&g, &schedule, head_seed)?,
                    ema: ema.as_ref().map(|e| GrowingGenerator::new(e, &schedule, head_seed)).transpose()?,
                    d: GrowingDiscriminator::new(&d, &d.layers, &schedule, head_seed ^ 0xd)?,
                    now: std::cell::Cell::new(schedule.at(0, config.image_size)),
                })
            }
        };
        // The grid's noise is fixed for the whole run and derived from the seed, so it needs no checkpointing.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_f1ed);
        let fixed_noise = config.prior.sample(&mut rng, &[64, config.nz], device)?;
        Ok(Self { g, d, recipe, ema, ema_statistics_fresh: std::cell::Cell::new(false), fixed_noise, fake: None, growth })
    }

    /// The generator a run's samples and exports come from: the moving average when there is one.
    pub fn sampling_generator(&self) -> &Generator {
        self.ema.as_ref().unwrap_or(&self.g)
    }

    /// BatchNorm statistics of the moving average, recomputed from its weights (40 batches, a fixed seed: the
    /// result depends on the weights alone, so a resumed run stays bit-identical).
    fn refresh_average(&self) -> candle_core::Result<()> {
        let Some(ema) = &self.ema else { return Ok(()) };
        if !self.ema_statistics_fresh.get() {
            ema.recompute_batch_norm_statistics(40, 0x57a7_5eed)?;
            self.ema_statistics_fresh.set(true);
        }
        Ok(())
    }

    /// G's pictures at the step's resolution (the full size unless growing).
    fn generate(&self, z: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        match &self.growth {
            None => self.g.forward(z, mode),
            Some(growth) => {
                let (res, alpha) = growth.now.get();
                growth.g.forward(&self.g, z, res, alpha, mode)
            }
        }
    }

    /// D's logits for pictures at the step's resolution.
    fn discriminate(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        match &self.growth {
            None => self.d.forward(x, mode),
            Some(growth) => {
                let (res, alpha) = growth.now.get();
                growth.d.forward(&self.d, x, res, alpha, mode)
            }
        }
    }

    /// Real pictures brought to the step's resolution (box filter); while a resolution fades in, they fade
    /// from the half resolution's too, as G's pictures do.
    fn real_at_resolution(&self, real: &Tensor) -> candle_core::Result<Tensor> {
        let Some(growth) = &self.growth else { return Ok(real.clone()) };
        let (res, alpha) = growth.now.get();
        let factor = self.g.config.image_size / res;
        let x = if factor > 1 { real.avg_pool2d(factor)? } else { real.clone() };
        if alpha >= 1.0 {
            return Ok(x);
        }
        let low = crate::nn::upsample_nearest2d(&x.avg_pool2d(2)?, 2)?;
        (low * (1.0 - alpha))? + (x * alpha)?
    }

    /// What D sees of a batch: DiffAugment when the recipe has it, then the instance noise.
    fn d_input(&self, x: &Tensor, ctx: &mut StepContext) -> candle_core::Result<Tensor> {
        let x = match &self.recipe.diffaugment {
            Some(a) => a.apply(x, ctx.rng)?,
            None => x.clone(),
        };
        ctx.instance_noise(&x)
    }
}

impl GanTask for DcganTask {
    fn groups(&self) -> Vec<(&'static str, &VarMap)> {
        vec![("G", &self.g.vars), ("D", &self.d.vars)]
    }

    fn d_loss(&mut self, real: &[Tensor], ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        if let Some(growth) = &self.growth {
            growth.now.set(growth.schedule.at(ctx.step, self.g.config.image_size));
        }
        let real = &self.real_at_resolution(&real[0])?;
        let n = real.dim(0)?;
        let targets = ctx.labels.targets(n, ctx.rng, ctx.device)?;
        let z = self.g.config.prior.sample(ctx.rng, &[n, self.g.config.nz], ctx.device)?;
        let fake = self.generate(&z, Mode::Train { seed: ctx.rng.random() })?;
        let real_in = self.d_input(real, ctx)?;
        let fake_in = self.d_input(&fake.detach(), ctx)?;
        let d_real = self.discriminate(&real_in, Mode::Train { seed: ctx.rng.random() })?;
        let d_fake = self.discriminate(&fake_in, Mode::Train { seed: ctx.rng.random() })?;
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
        let loss = match self.recipe.r1 {
            None => loss,
            Some(gamma) => {
                let d = &self.d;
                (loss + r1_penalty(|x| d.forward(x, Mode::Eval), &real_in, gamma)?)?
            }
        };
        self.fake = Some(fake);
        Ok(loss)
    }

    fn g_loss(&mut self, ctx: &mut StepContext, _stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let fake = self.fake.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let fake_in = self.d_input(&fake, ctx)?;
        let d_fake = self.discriminate(&fake_in, Mode::Train { seed: ctx.rng.random() })?;
        ctx.objective.g_loss(&d_fake)
    }

    fn learning_rate(&self, group: &str, _step: u64) -> Option<f64> {
        (group == "D").then_some(self.recipe.lr_d).flatten()
    }

    fn after_generator_step(&mut self, step: u64) -> candle_core::Result<()> {
        let (Some(ema), Some(decay)) = (&self.ema, self.recipe.ema) else { return Ok(()) };
        // The warm-up of TensorFlow's ExponentialMovingAverage(num_updates): early on the average follows G
        // closely instead of holding on to the random initialisation.
        let decay = decay.min((1.0 + step as f64) / (10.0 + step as f64));
        let g = self.g.vars.data().lock().unwrap();
        let avg = ema.vars.data().lock().unwrap();
        // BatchNorm's running statistics are not averaged: they are recomputed for the averaged weights
        // whenever the average is sampled or saved ([`Self::refresh_average`]).
        for (name, var) in g.iter().filter(|(name, _)| !name.contains("running_")) {
            let a = avg.get(name).ok_or_else(|| candle_core::Error::Msg(format!("EMA of G has no `{name}`")))?;
            a.set(&((a.as_tensor() * decay)? + (var.as_tensor() * (1.0 - decay))?)?)?;
        }
        self.ema_statistics_fresh.set(false);
        Ok(())
    }

    fn samples(&self) -> candle_core::Result<Tensor> {
        self.refresh_average()?;
        let Some(growth) = &self.growth else { return self.sampling_generator().forward(&self.fixed_noise, Mode::Eval) };
        // While growing: the current resolution (and fade), enlarged to the final size for the grid.
        let (res, alpha) = growth.now.get();
        let heads = match (&self.ema, &growth.ema) {
            (Some(_), Some(h)) => h,
            _ => &growth.g,
        };
        let x = heads.forward(self.sampling_generator(), &self.fixed_noise, res, alpha, Mode::Eval)?;
        crate::nn::upsample_nearest2d(&x, self.g.config.image_size / res)
    }

    fn state_tensors(&self) -> candle_core::Result<Vec<(String, Tensor)>> {
        let Some(ema) = &self.ema else { return Ok(Vec::new()) };
        // Saved with statistics that fit its weights, so `generate` and `export` need no extra pass.
        self.refresh_average()?;
        let data = ema.vars.data().lock().unwrap();
        Ok(data.iter().map(|(k, v)| (format!("{EMA_STATE_PREFIX}{k}"), v.as_tensor().clone())).collect())
    }

    fn load_state(&mut self, tensors: &std::collections::HashMap<String, Tensor>) -> candle_core::Result<()> {
        let Some(ema) = &self.ema else { return Ok(()) };
        let data = ema.vars.data().lock().unwrap();
        for (k, v) in data.iter() {
            let t = tensors
                .get(&format!("{EMA_KEY_PREFIX}{k}"))
                .ok_or_else(|| candle_core::Error::Msg(format!("the checkpoint has no moving average of G's `{k}`")))?;
            v.set(&t.to_dtype(v.dtype())?)?;
        }
        Ok(())
    }
}

/// How long a run is: a total of steps, or of epochs of the training data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunLength {
    Steps(u64),
    Epochs(u64),
}

/// Starts a DCGAN run in `out`, or continues the one there when `resume` (then `config`/`model` come from the
/// checkpoint and only `length` may raise the target). Returns the summary.
pub fn train_dcgan(
    start: Option<(crate::models::dcgan::DcganConfig, super::TrainConfig, super::TrainOptions)>,
    out: &std::path::Path,
    length: Option<RunLength>,
    device: &Device,
    run: super::trainer::RunControl,
    eval: crate::metrics::TrainingEvalRequest,
) -> Result<super::TrainSummary> {
    use super::{trainer::checkpoint_options, Bce, Trainer};
    use crate::io::checkpoint::Checkpoint;
    let mut trainer = match start {
        Some((model, config, options)) => {
            if options.objective.build().gradient_penalty().is_some() || options.recipe.r1.is_some() {
                super::objective::enable_second_order_gradients()?;
            }
            let task = DcganTask::with_recipe(&model, config.seed, &options.objective, options.recipe, device)?;
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
            if options.objective.build().gradient_penalty().is_some() || options.recipe.r1.is_some() {
                super::objective::enable_second_order_gradients()?;
            }
            let task = DcganTask::with_recipe(&model, seed, &options.objective, options.recipe, device)?;
            Trainer::resume(task, options.objective.build(), &ckpt, out, device)?
        }
    };
    match length {
        Some(RunLength::Steps(steps)) => trainer.set_total_steps(steps),
        Some(RunLength::Epochs(epochs)) => trainer.set_total_epochs(epochs),
        None => {}
    }
    let selected = crate::data::selection::open_selected(&trainer.config().data, &trainer.options().selection, crate::data::selection::Part::Train)?;
    let dataset = selected.data.clone();
    if !run.quiet {
        eprintln!("training on {} -> {}", dataset.describe(), out.display());
    }
    if !trainer.options().selection.is_everything() {
        eprintln!("{}", selected.report());
    }
    trainer = trainer.controlled(run);
    if let Some(eval) = trainer.set_evaluation(eval)? {
        let monitor = super::monitor::dcgan_monitor(dataset.as_ref(), &trainer.config().image, eval, device)?;
        trainer = trainer.with_monitor(monitor);
    }
    trainer.run(dataset)
}
