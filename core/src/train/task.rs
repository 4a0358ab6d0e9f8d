//! What a GAN contributes to the shared training loop.

use super::objective::{Objective, Targets};
use candle_core::{Device, Result, Tensor};
use candle_nn::VarMap;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The regularising tricks of the seed papers for D's targets and inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelPolicy {
    /// One-sided label smoothing: real targets are `1 - smoothing` (fake targets stay 0).
    pub smoothing: f64,
    /// Probability that a sample's real/fake label is flipped in D's step.
    pub flip_probability: f64,
    /// Initial std of Gaussian noise added to D's inputs, annealed linearly to 0 over `instance_noise_steps`.
    pub instance_noise: f64,
    pub instance_noise_steps: u64,
}

impl LabelPolicy {
    pub fn targets(&self, n: usize, rng: &mut ChaCha8Rng, device: &Device) -> Result<Targets> {
        let mut real = Vec::with_capacity(n);
        let mut fake = Vec::with_capacity(n);
        for _ in 0..n {
            let flip = self.flip_probability > 0.0 && rng.random::<f64>() < self.flip_probability;
            let (r, f) = if flip { (0.0, 1.0 - self.smoothing) } else { (1.0 - self.smoothing, 0.0) };
            real.push(r as f32);
            fake.push(f as f32);
        }
        Ok(Targets { real: Tensor::from_vec(real, n, device)?, fake: Tensor::from_vec(fake, n, device)? })
    }

    /// The instance-noise std at `step`.
    pub fn noise_std(&self, step: u64) -> f64 {
        if self.instance_noise <= 0.0 || step >= self.instance_noise_steps {
            return 0.0;
        }
        self.instance_noise * (1.0 - step as f64 / self.instance_noise_steps as f64)
    }
}

/// Everything a task's step may draw on. All randomness comes from `rng`, which the checkpoint stores, so a
/// resumed run continues bit for bit.
pub struct StepContext<'a> {
    pub objective: &'a dyn Objective,
    pub labels: &'a LabelPolicy,
    pub rng: &'a mut ChaCha8Rng,
    pub step: u64,
    pub device: &'a Device,
}

impl StepContext<'_> {
    /// Standard-normal tensor of `shape` from the run's generator.
    pub fn randn(&mut self, shape: &[usize]) -> Result<Tensor> {
        randn(self.rng, shape, self.device)
    }

    /// Adds the current instance noise to D's input (identity once annealed).
    pub fn instance_noise(&mut self, x: &Tensor) -> Result<Tensor> {
        let std = self.labels.noise_std(self.step);
        if std == 0.0 {
            return Ok(x.clone());
        }
        x + (self.randn(x.dims())? * std)?
    }
}

pub use crate::nn::init::randn;

/// Sample grids that compare: picture i of every set in turn (`[a0, b0, c0, a1, b1, c1, …]`), so with as many
/// columns as sets (or a multiple) each row shows one input through every stage.
pub fn interleave(sets: &[&Tensor]) -> Result<Tensor> {
    let n = sets.first().map(|t| t.dim(0)).transpose()?.unwrap_or(0);
    let rows = (0..n).map(|i| Tensor::cat(&sets.iter().map(|t| t.narrow(0, i, 1)).collect::<Result<Vec<_>>>()?, 0)).collect::<Result<Vec<_>>>()?;
    Tensor::cat(&rows, 0)
}

/// Numbers a step reports for the log.
#[derive(Clone, Debug, Default)]
pub struct StepStats {
    pub d_loss: f64,
    pub g_loss: f64,
    /// Mean D score on real images (D(x)).
    pub real_score: f64,
    /// Mean D score on fakes in D's step (D(G(z))).
    pub fake_score: f64,
    /// The weighted terms of the losses, in the order of [`GanTask::loss_terms`] (empty when it names none).
    pub terms: Vec<f64>,
}

pub trait GanTask {
    /// The optimiser groups, by name ("G", "D"): also the networks a checkpoint stores.
    fn groups(&self) -> Vec<(&'static str, &VarMap)>;
    /// Names of the loss terms a step reports in [`StepStats::terms`], logged to `loss-terms.csv` /
    /// `loss-terms.png` (for recipes whose balance of many terms decides the result, like AnimeGAN's).
    fn loss_terms(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The groups updated in the critic phase (the others are updated in the generator phase).
    fn critic_groups(&self) -> Vec<&'static str> {
        vec!["D"]
    }
    /// The learning rate of optimiser group `group` at `step`, where the task sets its own (AnimeGAN: separate
    /// rates for G and D, and another for its initialisation phase); `None` = the run's rate.
    fn learning_rate(&self, _group: &str, _step: u64) -> Option<f64> {
        None
    }
    /// Whether group `group`'s optimiser starts afresh (moments and step count zeroed) before `step`: for a
    /// recipe whose phases each have their own optimiser (AnimeGAN's initialisation, then adversarial training).
    fn resets_optimizer(&self, _group: &str, _step: u64) -> bool {
        false
    }
    /// Whether the critic groups are updated at `step`. When not, `d_loss` is still called (it receives the
    /// batches) but its result is not back-propagated (AnimeGAN's content-only initialisation).
    fn trains_critic(&self, _step: u64) -> bool {
        true
    }
    /// D's loss on one batch of real images per data stream (`real[0]` for single-stream tasks); fills
    /// `real_score`/`fake_score`. Called `objective.critic_steps()` times per step, with fresh batches.
    fn d_loss(&mut self, real: &[Tensor], ctx: &mut StepContext, stats: &mut StepStats) -> Result<Tensor>;
    /// G's loss (after D's update).
    fn g_loss(&mut self, ctx: &mut StepContext, stats: &mut StepStats) -> Result<Tensor>;
    /// Called after each update of the generator groups (e.g. to update a moving average of G's weights).
    fn after_generator_step(&mut self, _step: u64) -> Result<()> {
        Ok(())
    }
    /// Images for the progress grid (a fixed set of inputs, eval mode), `[N, C, H, W]` in [-1, 1].
    fn samples(&self) -> Result<Tensor>;
    /// Images per grid row (default: a square grid).
    fn sample_columns(&self) -> Option<usize> {
        None
    }
    /// State beyond the networks that a checkpoint must keep for an exact resume (e.g. an image pool).
    fn state_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        Ok(Vec::new())
    }
    /// Restores [`Self::state_tensors`] (keys prefixed `task.` in `tensors`).
    fn load_state(&mut self, _tensors: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
}
