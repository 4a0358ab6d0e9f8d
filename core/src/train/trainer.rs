//! The training loop shared by every GAN task.

use super::log::{LogRow, TrainLog};
use super::objective::Objective;
use super::objective::ObjectiveSpec;
use super::optimizer::{LrSchedule, Optimizer, OptimizerKind};
use super::task::{GanTask, LabelPolicy, StepContext, StepStats};
use crate::data::{Dataset, ImageSpec, Loader, LoaderConfig};
use crate::io::checkpoint::{self, Checkpoint, Header};
use crate::io::image::{grid, save_image, side_by_side, tensor_to_images};
use crate::nn::adam::AdamParams;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How one invocation drives a run (not stored: each `--resume` says it again).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunControl {
    /// A new total of steps (raising a resumed run's target).
    pub total_steps: Option<u64>,
    /// No progress bar.
    pub quiet: bool,
    /// Wall-clock budget of this invocation (`--max-minutes`).
    pub time_limit: Option<std::time::Duration>,
    /// Sample, checkpoint and log intervals given now; on a resumed run they replace the stored ones.
    pub cadence: Cadence,
    /// A new base learning rate (e.g. lowered for the end of a resumed run). Tasks with rates of their own
    /// (AnimeGAN's per-phase rates) keep theirs; the commands offer it only where it applies.
    pub learning_rate: Option<f64>,
}

/// The intervals (in steps) of a run's samples, checkpoints and log lines; `None` keeps the run's own.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cadence {
    pub sample_every: Option<u64>,
    pub checkpoint_every: Option<u64>,
    pub log_every: Option<u64>,
}

impl Cadence {
    /// The intervals given on a command line, each refused by its flag's name when 0.
    pub fn given(sample_every: Option<u64>, checkpoint_every: Option<u64>, log_every: Option<u64>) -> Result<Self> {
        for (name, v) in [("--sample-every", sample_every), ("--checkpoint-every", checkpoint_every), ("--log-every", log_every)] {
            if v == Some(0) {
                bail!("{name} must be a positive number of steps, not 0");
            }
        }
        Ok(Self { sample_every, checkpoint_every, log_every })
    }

    /// Writes the intervals that were given into `config`.
    pub fn apply(&self, config: &mut TrainConfig) {
        for (given, stored) in [
            (self.sample_every, &mut config.sample_every),
            (self.checkpoint_every, &mut config.checkpoint_every),
            (self.log_every, &mut config.log_every),
        ] {
            if let Some(v) = given {
                *stored = v;
            }
        }
    }
}

/// The run's options (stored in every checkpoint, so `--resume` needs none of them again).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub image: ImageSpec,
    pub batch_size: usize,
    /// Total steps the run should reach (a resumed run may raise it).
    pub steps: u64,
    pub seed: u64,
    pub adam: AdamParams,
    pub labels: LabelPolicy,
    pub flip: bool,
    pub sample_every: u64,
    pub checkpoint_every: u64,
    pub log_every: u64,
}

impl TrainConfig {
    /// A run that never samples, logs or checkpoints, on synthetic data: benchmarks drive it step by step.
    pub fn benchmark(image_size: usize, batch_size: usize) -> Self {
        Self {
            data: "random".into(),
            image: ImageSpec { size: image_size, channels: 3, fit: crate::data::Fit::CenterCrop },
            batch_size,
            steps: u64::MAX,
            seed: 0,
            adam: AdamParams::default(),
            labels: LabelPolicy::default(),
            flip: false,
            sample_every: u64::MAX,
            checkpoint_every: u64::MAX,
            log_every: u64::MAX,
        }
    }
}

/// Options beyond [`TrainConfig`] that not every task uses: the objective, the optimiser kind, a learning-rate
/// schedule, further data streams (CycleGAN's domain B), stop rules and the quality measurement. Stored in the
/// checkpoint; older checkpoints without it read as the defaults (BCE, Adam, constant rate, one stream, none).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    #[serde(default)]
    pub objective: ObjectiveSpec,
    #[serde(default)]
    pub optimizer: OptimizerKind,
    #[serde(default)]
    pub schedule: Option<LrSchedule>,
    /// Data streams after `TrainConfig::data`, each batched like it (same size, seed offset by its index).
    #[serde(default)]
    pub extra_data: Vec<PathBuf>,
    /// The small-data recipe's parts (DCGAN runs).
    #[serde(default)]
    pub recipe: super::dcgan::GanRecipe,
    /// Run length in epochs of the first data stream (`--epochs`), instead of `TrainConfig::steps`.
    #[serde(default)]
    pub epochs: Option<u64>,
    /// Epochs after which a sample grid `samples/epoch_NNNN.png` is written (`--sample-epochs 1,2,20`).
    #[serde(default)]
    pub sample_epochs: Vec<u64>,
    /// Steps at which `panels/step_NNNNNNN.png` shows real training images beside generated ones.
    #[serde(default)]
    pub panel_steps: Vec<u64>,
    /// Rules that end the run early (`--stop-when`).
    #[serde(default)]
    pub stop_when: Vec<super::stop::StopRule>,
    /// Classes and held-out part of the (first) training data; the run trains on the training part.
    #[serde(default)]
    pub selection: crate::data::selection::DataSelection,
    /// The quality measurement (`--eval-every`), so that a resumed run goes on measuring and keeping its best
    /// checkpoint without being told again.
    #[serde(default)]
    pub eval: Option<crate::metrics::TrainingEval>,
}

/// Where a run stands; saved in the checkpoint header.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct RunState {
    config: TrainConfig,
    objective: String,
    step: u64,
    epoch: usize,
    batch: usize,
    rng: ChaCha8Rng,
    adam_steps: HashMap<String, u64>,
    seconds: f64,
    #[serde(default)]
    options: TrainOptions,
    /// (epoch, batch) of the next batch of every data stream; empty in single-stream checkpoints, where
    /// `epoch`/`batch` say it.
    #[serde(default)]
    positions: Vec<(usize, usize)>,
}

#[derive(Debug)]
pub struct TrainSummary {
    pub steps: u64,
    pub epochs: usize,
    pub skipped_files: usize,
    pub seconds: f64,
    pub checkpoint: PathBuf,
}

pub struct Trainer<T: GanTask> {
    pub task: T,
    objective: Box<dyn Objective>,
    kind: String,
    model: serde_json::Value,
    state: RunState,
    optimisers: Vec<(&'static str, Optimizer)>,
    out: PathBuf,
    device: Device,
    quiet: bool,
    monitor: Option<super::Monitor<T>>,
    /// Wall-clock budget of this invocation (not stored: a resumed run gets its own).
    time_limit: Option<std::time::Duration>,
}

impl<T: GanTask> Trainer<T> {
    /// A new run writing into `out` (which must not already hold a checkpoint: resume it instead).
    pub fn new(
        task: T,
        objective: Box<dyn Objective>,
        kind: &str,
        model: serde_json::Value,
        config: TrainConfig,
        out: &Path,
        device: &Device,
    ) -> Result<Self> {
        if checkpoint::resolve(out).is_file() && out.is_dir() {
            bail!("{} already holds a checkpoint: use --resume {} to continue it, or choose another --out", out.display(), out.display());
        }
        if config.batch_size == 0 || config.steps == 0 {
            bail!("--batch-size and --steps must be positive");
        }
        let optimisers = build_optimisers(&task, OptimizerKind::Adam, config.adam)?;
        let state = RunState {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            objective: objective.name().to_string(),
            step: 0,
            epoch: 0,
            batch: 0,
            adam_steps: HashMap::new(),
            seconds: 0.0,
            options: TrainOptions { objective: ObjectiveSpec::parse(objective.name()).unwrap_or_default(), ..TrainOptions::default() },
            positions: Vec::new(),
        };
        Ok(Self {
            task,
            objective,
            kind: kind.into(),
            model,
            state,
            optimisers,
            out: out.to_path_buf(),
            device: device.clone(),
            quiet: false,
            monitor: None,
            time_limit: None,
        })
    }

    /// Sets the objective, optimiser kind, schedule and extra data streams of a new run (before it starts).
    pub fn with_options(mut self, options: TrainOptions) -> Result<Self> {
        if self.state.step > 0 {
            bail!("options can only be set before a run starts");
        }
        self.objective = options.objective.build();
        self.state.objective = self.objective.name().to_string();
        self.optimisers = build_optimisers(&self.task, options.optimizer, self.state.config.adam)?;
        self.state.options = options;
        Ok(self)
    }

    pub fn options(&self) -> &TrainOptions {
        &self.state.options
    }

    /// The objective a checkpoint was trained with (BCE for checkpoints that predate the choice).
    pub fn checkpoint_objective(ckpt: &Checkpoint) -> Result<Box<dyn Objective>> {
        Ok(checkpoint_options(ckpt)?.objective.build())
    }

    /// Restores weights, optimiser moments, step, data position and RNG from `ckpt` into a task built from the
    /// same config.
    pub fn resume(task: T, objective: Box<dyn Objective>, ckpt: &Checkpoint, out: &Path, device: &Device) -> Result<Self> {
        let state: RunState =
            serde_json::from_value(ckpt.header.state.clone().context("checkpoint has no training state (an exported model cannot be resumed)")?)
                .with_context(|| format!("{}: malformed training state", ckpt.path.display()))?;
        if state.objective != objective.name() {
            bail!("{} was trained with the {} objective, not {}", ckpt.path.display(), state.objective, objective.name());
        }
        let source = ckpt.path.display().to_string();
        let mut optimisers = Vec::new();
        let mut task = task;
        task.load_state(&ckpt.tensors).with_context(|| format!("{source}: cannot restore the task's state"))?;
        for (name, vars) in task.groups() {
            crate::io::weights::load_varmap(vars, &ckpt.tensors, &format!("{name}."), &source)?;
            let mut opt = Optimizer::new(state.options.optimizer, vars, state.config.adam)?;
            opt.load_state(&ckpt.tensors, &format!("opt.{name}."), state.adam_steps.get(name).copied().unwrap_or(0))?;
            optimisers.push((name, opt));
        }
        Ok(Self {
            task,
            objective,
            kind: ckpt.header.kind.clone(),
            model: ckpt.header.model.clone(),
            state,
            optimisers,
            out: out.to_path_buf(),
            device: device.clone(),
            quiet: false,
            monitor: None,
            time_limit: None,
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    /// A new run with `options` (`ckpt` None), or the run of `ckpt` resumed with the options it stored, set up
    /// as `run` asks (a new total of steps, the progress bar, a time budget).
    pub fn new_or_resumed(
        task: T,
        options: TrainOptions,
        kind: &str,
        model: serde_json::Value,
        config: TrainConfig,
        ckpt: Option<&Checkpoint>,
        out: &Path,
        device: &Device,
        run: RunControl,
    ) -> Result<Self> {
        let trainer = match ckpt {
            None => Trainer::new(task, options.objective.build(), kind, model, config, out, device)?.with_options(options)?,
            Some(ckpt) => Trainer::resume(task, checkpoint_options(ckpt)?.objective.build(), ckpt, out, device)?,
        };
        Ok(trainer.controlled(run))
    }

    /// Replaces the model description the checkpoints record (a resumed run whose recipe was changed, such as
    /// AnimeGAN's loss weights given with `--resume`, records the change so the next resume keeps it).
    pub fn with_model(mut self, model: serde_json::Value) -> Self {
        self.model = model;
        self
    }

    /// Applies `run`: a new total of steps (not below the current step), quiet, the time budget.
    pub fn controlled(mut self, run: RunControl) -> Self {
        if let Some(steps) = run.total_steps {
            self.set_total_steps(steps);
        }
        run.cadence.apply(&mut self.state.config);
        if let Some(lr) = run.learning_rate {
            self.state.config.adam.lr = lr;
        }
        self.quiet(run.quiet).time_limit(run.time_limit)
    }

    pub fn set_total_steps(&mut self, steps: u64) {
        self.state.config.steps = steps.max(self.state.step);
        // A length in steps replaces one in epochs.
        self.state.options.epochs = None;
    }

    /// Makes the run `epochs` epochs long (of the first data stream; the steps follow from its size when the
    /// run starts). A resumed run may raise it.
    pub fn set_total_epochs(&mut self, epochs: u64) {
        self.state.options.epochs = Some(epochs);
    }

    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Stops (with samples and a checkpoint, as at the last step) once this much time has passed in `run`;
    /// `--resume` continues from there.
    pub fn time_limit(mut self, limit: Option<std::time::Duration>) -> Self {
        self.time_limit = limit;
        self
    }

    /// Merges the measurement asked for with the one the run stored, records the result for the next
    /// `--resume` and returns it; the caller attaches the matching [`Trainer::with_monitor`].
    pub fn set_evaluation(&mut self, request: crate::metrics::TrainingEvalRequest) -> Result<Option<crate::metrics::TrainingEval>> {
        let eval = request.merge(self.state.options.eval)?;
        self.state.options.eval = eval;
        Ok(eval)
    }

    /// Measures quality every `monitor.every` steps (and at the end) into `metrics.csv` / `metrics.png`.
    pub fn with_monitor(mut self, monitor: super::Monitor<T>) -> Self {
        self.monitor = Some(monitor);
        self
    }

    pub fn step(&self) -> u64 {
        self.state.step
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.out.join(checkpoint::FILE_NAME)
    }

    pub fn save_checkpoint(&self) -> Result<()> {
        self.save_checkpoint_to(&self.checkpoint_path(), None)
    }

    /// The checkpoint of this step at `path` (the run's own, or the best one of `--eval-every`), with `note`.
    fn save_checkpoint_to(&self, path: &Path, note: Option<String>) -> Result<()> {
        let mut state = self.state.clone();
        state.adam_steps = self.optimisers.iter().map(|(n, o)| (n.to_string(), o.steps())).collect();
        let header = Header { kind: self.kind.clone(), model: self.model.clone(), state: Some(serde_json::to_value(&state)?), note };
        let mut extra: Vec<(String, Tensor)> = self.optimisers.iter().flat_map(|(n, o)| o.state_tensors(&format!("opt.{n}."))).collect();
        extra.extend(self.task.state_tensors()?.into_iter().map(|(k, t)| (format!("task.{k}"), t)));
        Checkpoint::write(path, &header, &self.task.groups(), extra, DType::F32)
    }

    fn save_samples(&self) -> Result<PathBuf> {
        self.save_samples_as(&format!("step_{:07}.png", self.state.step))
    }

    fn sample_grid(&self) -> Result<RgbImage> {
        let images = tensor_to_images(&self.task.samples()?)?;
        let cols = self.task.sample_columns().unwrap_or((images.len() as f64).sqrt().ceil() as usize);
        grid(&images, cols, 2)
    }

    /// The fixed-noise sample grid as `samples/NAME`.
    fn save_samples_as(&self, name: &str) -> Result<PathBuf> {
        let path = self.out.join("samples").join(name);
        save_image(&self.sample_grid()?, &path)?;
        Ok(path)
    }

    /// `panels/step_N.png`: a grid of this step's real training images and the sample grid, side by side at the
    /// same size, a white line between (the papers' real-vs-generated figures).
    fn save_panel(&self, real: &Tensor, step: u64) -> Result<PathBuf> {
        let generated = self.sample_grid()?;
        let reals = tensor_to_images(real)?;
        let cols = (reals.len() as f64).sqrt().ceil() as usize;
        let real = grid(&reals, cols, 2)?;
        let real = image::imageops::resize(&real, generated.width(), generated.height(), image::imageops::FilterType::Nearest);
        let path = self.out.join("panels").join(format!("step_{step:07}.png"));
        save_image(&side_by_side(&real, &generated, 4), &path)?;
        Ok(path)
    }

    /// Trains until `config.steps`, checkpointing every `checkpoint_every` steps and at the end.
    pub fn run(&mut self, dataset: Arc<dyn Dataset>) -> Result<TrainSummary> {
        self.run_streams(vec![dataset])
    }

    /// [`Self::run`] over several data streams (the task's `d_loss` gets one batch of each per critic step).
    pub fn run_streams(&mut self, datasets: Vec<Arc<dyn Dataset>>) -> Result<TrainSummary> {
        let Some(first) = datasets.first() else { bail!("no training data") };
        if let Some(epochs) = self.state.options.epochs {
            // Each step takes `critic_steps` batches of the first stream.
            let batches = (first.len() / self.state.config.batch_size).max(1) as u64;
            let steps = epochs.saturating_mul(batches).div_ceil(self.objective.critic_steps() as u64).max(1);
            self.state.config.steps = steps.max(self.state.step);
        }
        let cfg = self.state.config.clone();
        let options = self.state.options.clone();
        std::fs::create_dir_all(&self.out).with_context(|| format!("cannot create output folder {}", self.out.display()))?;
        let resume_step = (self.state.step > 0).then_some(self.state.step);
        if resume_step.is_none() {
            save_first_images(first.as_ref(), &cfg.image, &self.out.join("samples").join("training-images-25.png"), &self.device)?;
        }
        let mut stop_rules = super::stop::StopRules::new(&options.stop_when);
        if stop_rules.needs_evaluations() && self.monitor.is_none() {
            bail!(
                "--stop-when kid-plateau needs --eval-every N (the kernel distance it watches); a run that stores the rule cannot turn its measurement off with --eval-every 0"
            );
        }
        let mut log = TrainLog::open(&self.out.join("log.csv"), resume_step)?;
        let mut best_kid = self.monitor.as_ref().and_then(|_| best_kernel_distance(&self.out));
        let mut metrics = match &self.monitor {
            Some(m) => Some(super::monitor::MetricsLog::open(&self.out.join("metrics.csv"), &m.names, resume_step)?),
            None => None,
        };
        let term_names: Vec<String> = self.task.loss_terms().iter().map(|n| n.to_string()).collect();
        let mut terms_log = (!term_names.is_empty())
            .then(|| {
                super::monitor::MetricsLog::open_with_plot(
                    &self.out.join("loss-terms.csv"),
                    &term_names,
                    resume_step,
                    ("loss-terms.png", "Weighted loss terms"),
                )
            })
            .transpose()?;
        if self.state.positions.len() != datasets.len() {
            self.state.positions = vec![(self.state.epoch, self.state.batch); datasets.len()];
        }
        let mut loaders = datasets
            .into_iter()
            .enumerate()
            .map(|(i, dataset)| {
                // Each stream its own order, so A and B are not shuffled in lockstep.
                let loader_cfg = LoaderConfig { batch_size: cfg.batch_size, seed: cfg.seed.wrapping_add(i as u64), flip: cfg.flip, prefetch: 4 };
                let (epoch, batch) = self.state.positions[i];
                Loader::start(dataset, cfg.image, loader_cfg, epoch, batch)
            })
            .collect::<Result<Vec<_>>>()?;
        let bar = self.progress_bar(cfg.steps);
        let _training = super::interrupt::Training::start();
        let started = Instant::now();
        let seconds_before = self.state.seconds;
        // Where the current epoch began (step, seconds), for the per-epoch line's time per step.
        let mut epoch_start = (self.state.step, self.state.seconds);
        let mut stopped_by_rule = None;
        while self.state.step < cfg.steps {
            let epoch_before = self.state.epoch;
            let mut reals = Vec::new();
            let mut epoch = 0;
            let mut next_positions = self.state.positions.clone();
            for _ in 0..self.objective.critic_steps() {
                let mut batches = Vec::with_capacity(loaders.len());
                for (i, loader) in loaders.iter_mut().enumerate() {
                    let batch = loader.next_batch()?;
                    batches.push(batch.to_tensor(&cfg.image, &self.device)?);
                    // Position of the *next* batch, for resume.
                    next_positions[i] = (batch.epoch + (batch.index + 1) / batch.batches_per_epoch, (batch.index + 1) % batch.batches_per_epoch);
                    if i == 0 {
                        epoch = batch.epoch;
                    }
                }
                reals.push(batches);
            }
            let stats = self.train_step_streams(&reals).with_context(|| {
                format!("training stopped at step {}; the last good checkpoint is {}", self.state.step + 1, self.checkpoint_path().display())
            })?;
            self.state.positions = next_positions;
            (self.state.epoch, self.state.batch) = self.state.positions[0];
            self.state.step += 1;
            self.state.seconds = seconds_before + started.elapsed().as_secs_f64();
            let step = self.state.step;
            let observed = super::stop::Observed { d_real: stats.real_score, d_fake: stats.fake_score, d_loss: stats.d_loss, g_loss: stats.g_loss };
            if stopped_by_rule.is_none() {
                stopped_by_rule = stop_rules.after_step(observed);
            }
            // Out of time, stopped by Ctrl-C / SIGTERM or by a stop rule: this step is the last, checkpointed
            // like any last.
            let out_of_time = self.time_limit.is_some_and(|l| started.elapsed() >= l) || super::interrupt::requested();
            let mut last = step == cfg.steps || out_of_time || stopped_by_rule.is_some();
            for epoch in epoch_before + 1..=self.state.epoch {
                let (s0, t0) = std::mem::replace(&mut epoch_start, (step, self.state.seconds));
                let per_step = (self.state.seconds - t0) / (step - s0).max(1) as f64;
                let total = options.epochs.map(|e| format!("/{e}")).unwrap_or_default();
                // Tasks without a critic (distillation, the upscaler) have one loss.
                let losses = if self.task.critic_groups().is_empty() {
                    format!("loss {:.4}", stats.g_loss)
                } else {
                    format!("D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}", stats.d_loss, stats.g_loss, stats.real_score, stats.fake_score)
                };
                let line = format!(
                    "epoch {epoch}{total}: step {step}/{}, {per_step:.3} s/it, ETA {}, {losses}",
                    cfg.steps,
                    format_duration(per_step * cfg.steps.saturating_sub(step) as f64),
                );
                if self.quiet {
                    eprintln!("{line}");
                } else {
                    bar.println(line);
                }
                if options.sample_epochs.contains(&(epoch as u64)) {
                    self.save_samples_as(&format!("epoch_{epoch:04}.png"))?;
                }
            }
            // Quality first: a plateau rule may make this step the last, which the log, samples and checkpoint
            // below then treat as any last step.
            if let (Some(m), Some(metrics)) = (self.monitor.as_mut(), metrics.as_mut()) {
                if step % m.every == 0 || last {
                    let values = (m.measure)(&self.task).with_context(|| format!("measuring quality at step {step}"))?;
                    metrics.append(step, values, &self.out)?;
                    if let Some(kid) = metrics.series("kernel distance") {
                        if is_new_best(&kid, best_kid) {
                            let value = kid[kid.len() - 1];
                            self.save_checkpoint_to(&self.out.join(BEST_CHECKPOINT), Some(format!("{BEST_NOTE_PREFIX}{value}")))?;
                            best_kid = Some(value);
                            append_event(
                                &self.out,
                                &format!("step {step}: new best kernel distance {:.4e} -> {BEST_CHECKPOINT}", kid[kid.len() - 1]),
                            )?;
                        }
                        if stopped_by_rule.is_none() {
                            stopped_by_rule = stop_rules.after_evaluation(&kid);
                            last |= stopped_by_rule.is_some();
                        }
                    }
                }
            }
            if options.panel_steps.contains(&step) {
                self.save_panel(&reals[0][0], step)?;
            }
            if step % cfg.log_every.max(1) == 0 || last {
                log.append(LogRow {
                    step,
                    epoch,
                    d_loss: stats.d_loss,
                    g_loss: stats.g_loss,
                    d_real: stats.real_score,
                    d_fake: stats.fake_score,
                    seconds: self.state.seconds,
                })?;
                if let Some(terms) = terms_log.as_mut().filter(|_| stats.terms.len() == term_names.len()) {
                    terms.record(step, stats.terms.clone())?;
                }
            }
            if step % cfg.sample_every.max(1) == 0 || last {
                self.save_samples()?;
                log.plot(&self.out)?;
                if let Some(terms) = &terms_log {
                    terms.plot(&self.out)?;
                }
            }
            if step % cfg.checkpoint_every.max(1) == 0 || last {
                self.save_checkpoint()?;
            }
            bar.set_position(step);
            bar.set_message(format!(
                "epoch {} D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}",
                epoch, stats.d_loss, stats.g_loss, stats.real_score, stats.fake_score
            ));
            if let Some(why) = &stopped_by_rule {
                let line = format!("stopped at step {step} by --stop-when: {why}");
                eprintln!("{line}");
                append_event(&self.out, &line)?;
                break;
            }
            if out_of_time {
                break;
            }
        }
        bar.finish();
        Ok(TrainSummary {
            steps: self.state.step,
            epochs: self.state.epoch,
            skipped_files: loaders.iter().map(Loader::skipped).sum(),
            seconds: self.state.seconds,
            checkpoint: self.checkpoint_path(),
        })
    }

    /// One D update then one G update on a single data stream. A non-finite loss aborts before any weight
    /// changes.
    pub fn train_step(&mut self, real: &Tensor) -> Result<StepStats> {
        let reals = vec![vec![real.clone()]; self.objective.critic_steps()];
        self.train_step_streams(&reals)
    }

    /// `reals[k]` holds one batch per data stream for critic update k; then one update of the generators.
    pub fn train_step_streams(&mut self, reals: &[Vec<Tensor>]) -> Result<StepStats> {
        let step = self.state.step;
        let factor = self.state.options.schedule.map_or(1.0, |s| s.factor(step));
        for (name, o) in self.optimisers.iter_mut() {
            if self.task.resets_optimizer(name, step) {
                o.reset().with_context(|| format!("resetting the {name} optimiser"))?;
            }
            o.set_lr(self.task.learning_rate(name, step).unwrap_or(self.state.config.adam.lr) * factor);
        }
        let critics = self.task.critic_groups();
        let train_critic = self.task.trains_critic(step);
        let (critic_vars, generator_vars): (Vec<_>, Vec<_>) = self.task.groups().into_iter().partition(|(name, _)| critics.contains(name));
        let [critic_vars, generator_vars] =
            [critic_vars, generator_vars].map(|groups| groups.iter().flat_map(|(_, vars)| vars.all_vars()).collect::<Vec<Var>>());
        let mut stats = StepStats::default();
        let mut ctx = StepContext {
            objective: self.objective.as_ref(),
            labels: &self.state.config.labels,
            rng: &mut self.state.rng,
            step,
            device: &self.device,
        };
        for batches in reals {
            let d_loss = self.task.d_loss(batches, &mut ctx, &mut stats)?;
            stats.d_loss = finite(&d_loss, "discriminator")?;
            if !train_critic {
                continue;
            }
            let grads = d_loss.backward_for(critic_vars.iter().map(Var::as_tensor))?;
            for (name, opt) in self.optimisers.iter_mut().filter(|(n, _)| critics.contains(n)) {
                opt.step(&grads).with_context(|| format!("updating {name}"))?;
            }
            drop(grads);
            if let Some(c) = ctx.objective.weight_clip() {
                for (name, vars) in self.task.groups().into_iter().filter(|(n, _)| critics.contains(n)) {
                    for var in vars.all_vars() {
                        var.set(&var.as_tensor().clamp(-c, c)?).with_context(|| format!("clipping {name}"))?;
                    }
                }
            }
        }
        let g_loss = self.task.g_loss(&mut ctx, &mut stats)?;
        stats.g_loss = finite(&g_loss, "generator")?;
        // Only the generators' gradients: the critics' weight gradients through the generator loss would be
        // discarded (PyTorch computes them; ~13 of a DCGAN step's ~160 GFLOP).
        let grads = g_loss.backward_for(generator_vars.iter().map(Var::as_tensor))?;
        for (name, opt) in self.optimisers.iter_mut().filter(|(n, _)| !critics.contains(n)) {
            opt.step(&grads).with_context(|| format!("updating {name}"))?;
        }
        drop(grads);
        self.task.after_generator_step(step)?;
        Ok(stats)
    }

    fn progress_bar(&self, total: u64) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(self.state.step);
        bar
    }
}

/// The first 25 training images in dataset order as a 5×5 grid, as the papers show their data (unreadable
/// files are skipped here as the loader skips them).
fn save_first_images(data: &dyn Dataset, spec: &ImageSpec, path: &Path, device: &Device) -> Result<()> {
    let mut values = Vec::with_capacity(25 * spec.sample_len());
    let mut n = 0;
    for i in 0..data.len() {
        if n == 25 {
            break;
        }
        if let Ok(v) = data.load(i, spec) {
            values.extend(v);
            n += 1;
        }
    }
    if n == 0 {
        return Ok(());
    }
    let images = tensor_to_images(&Tensor::from_vec(values, (n, spec.channels, spec.size, spec.size), device)?)?;
    save_image(&grid(&images, 5, 2)?, path)
}

/// With `--eval-every`, the checkpoint of the step whose kernel distance is the lowest so far (a complete
/// checkpoint: `export`, `generate --checkpoint` and the `animegan:` filter open it like the run's own). Long runs
/// get worse again at times (an AnimeGAN run's KID went 2.97e15 → 4.16e15 → 2.87e15); the run's own checkpoint
/// is always the latest.
pub const BEST_CHECKPOINT: &str = "best.checkpoint.safetensors";

/// The note of [`BEST_CHECKPOINT`] that records its kernel distance, so that a resumed run (whose metrics rows
/// past its checkpoint are dropped) still compares against the kept best.
const BEST_NOTE_PREFIX: &str = "kernel distance ";

/// The kernel distance the run's best checkpoint was kept for, if it has one.
fn best_kernel_distance(out: &Path) -> Option<f64> {
    let path = out.join(BEST_CHECKPOINT);
    let note = Checkpoint::read(&path, &Device::Cpu).ok()?.header.note?;
    note.strip_prefix(BEST_NOTE_PREFIX)?.parse().ok()
}

/// Whether the last value of a kernel-distance series is finite and below every earlier finite one and below
/// `kept` (the best checkpoint's own value).
fn is_new_best(series: &[f64], kept: Option<f64>) -> bool {
    let Some((&last, earlier)) = series.split_last() else { return false };
    last.is_finite() && earlier.iter().chain(kept.as_ref()).filter(|v| v.is_finite()).all(|&v| last < v)
}

/// Appends a line to the run's `events.log` (why a run stopped early, new best checkpoints).
fn append_event(out: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    let path = out.join("events.log");
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{line}").with_context(|| format!("cannot write {}", path.display()))
}

/// `1h 04m`, `12m 30s`, `45s`.
fn format_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

fn finite(loss: &Tensor, which: &str) -> Result<f64> {
    let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !v.is_finite() {
        bail!("the {which} loss became {v} (diverged); lower the learning rate or resume from the last checkpoint");
    }
    Ok(v)
}

fn build_optimisers<T: GanTask>(task: &T, kind: OptimizerKind, params: AdamParams) -> Result<Vec<(&'static str, Optimizer)>> {
    task.groups().into_iter().map(|(n, v)| Ok((n, Optimizer::new(kind, v, params)?))).collect()
}

/// The [`TrainOptions`] stored in a checkpoint (defaults for checkpoints that predate them).
/// The run in `out` for `--resume`: its checkpoint, the model config `M` in its header and its training config.
/// `kind` is the checkpoint kind the task writes, `what` names the run in errors ("an AnimeGAN run").
pub fn read_run<M: serde::de::DeserializeOwned>(out: &Path, kind: &str, what: &str, device: &Device) -> Result<(M, TrainConfig, Checkpoint)> {
    let ckpt = Checkpoint::read(out, device)?;
    if ckpt.header.kind != kind {
        bail!("{} is a `{}` checkpoint, not {what}", ckpt.path.display(), ckpt.header.kind);
    }
    let model: M = serde_json::from_value(ckpt.header.model.clone()).with_context(|| format!("{}: malformed {what} config", ckpt.path.display()))?;
    let state = ckpt.header.state.as_ref().context("checkpoint has no training state (an exported model cannot be resumed)")?;
    let config: TrainConfig =
        serde_json::from_value(state["config"].clone()).with_context(|| format!("{}: malformed training config", ckpt.path.display()))?;
    Ok((model, config, ckpt))
}

/// A new run's configs (`start`), or those of the run in `out` with its checkpoint (see [`read_run`]).
pub fn start_or_resume<M: serde::de::DeserializeOwned>(
    start: Option<(M, TrainConfig)>,
    out: &Path,
    kind: &str,
    what: &str,
    device: &Device,
) -> Result<(M, TrainConfig, Option<Checkpoint>)> {
    Ok(match start {
        Some((m, c)) => (m, c, None),
        None => {
            let (m, c, ckpt) = read_run(out, kind, what, device)?;
            (m, c, Some(ckpt))
        }
    })
}

pub fn checkpoint_options(ckpt: &Checkpoint) -> Result<TrainOptions> {
    let state = ckpt.header.state.as_ref().context("checkpoint has no training state (an exported model cannot be resumed)")?;
    match state.get("options") {
        None => Ok(TrainOptions::default()),
        Some(o) => serde_json::from_value(o.clone()).with_context(|| format!("{}: malformed training options", ckpt.path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Fit;
    use crate::models::dcgan::{DcganConfig, Preset};
    use crate::train::{objective::Targets, Bce, DcganTask};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Deterministic synthetic images, so the trainer's tests need no files.
    struct Synthetic(usize);
    impl Dataset for Synthetic {
        fn len(&self) -> usize {
            self.0
        }
        fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>> {
            let n = spec.channels * spec.size * spec.size;
            Ok((0..n).map(|i| (((i * 7 + index * 13) % 17) as f32 / 8.0) - 1.0).collect())
        }
        fn describe(&self) -> String {
            "synthetic".into()
        }
        fn name(&self, _: usize) -> Option<String> {
            None
        }
    }

    /// BCE that returns NaN from the `at`-th D loss on: a diverging run.
    struct NanAt {
        at: usize,
        calls: AtomicUsize,
    }
    impl Objective for NanAt {
        fn name(&self) -> &'static str {
            "bce"
        }
        fn d_loss(&self, r: &Tensor, f: &Tensor, t: &Targets) -> candle_core::Result<Tensor> {
            let loss = Bce.d_loss(r, f, t)?;
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 >= self.at {
                loss * f64::NAN
            } else {
                Ok(loss)
            }
        }
        fn g_loss(&self, f: &Tensor) -> candle_core::Result<Tensor> {
            Bce.g_loss(f)
        }
        fn score(&self, d: &Tensor) -> candle_core::Result<Tensor> {
            Bce.score(d)
        }
    }

    fn setup(steps: u64) -> (DcganConfig, TrainConfig) {
        let model = DcganConfig { image_size: 16, ngf: 4, ndf: 4, ..DcganConfig::preset(Preset::Radford64) };
        let config = TrainConfig {
            data: "synthetic".into(),
            image: ImageSpec { size: 16, channels: 3, fit: Fit::CenterCrop },
            batch_size: 4,
            steps,
            seed: 3,
            adam: AdamParams::default(),
            labels: LabelPolicy { smoothing: 0.1, flip_probability: 0.2, instance_noise: 0.1, instance_noise_steps: 10 },
            flip: true,
            sample_every: 100,
            checkpoint_every: 1,
            log_every: 1,
        };
        (model, config)
    }

    #[test]
    fn nan_loss_stops_and_keeps_the_last_good_checkpoint() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = Device::Cpu;
        let (model, config) = setup(5);
        let task = DcganTask::new(&model, 3, &dev)?;
        let objective = Box::new(NanAt { at: 3, calls: AtomicUsize::new(0) });
        let mut trainer = Trainer::new(task, objective, "dcgan", serde_json::to_value(&model)?, config, dir.path(), &dev)?.quiet(true);
        let err = format!("{:#}", trainer.run(Arc::new(Synthetic(12))).unwrap_err());
        assert!(err.contains("step 3") && err.contains("NaN") && err.contains("checkpoint"), "{err}");
        let ckpt = Checkpoint::read(dir.path(), &dev)?;
        assert_eq!(ckpt.header.state.unwrap()["step"], 2);
        Ok(())
    }

    /// With a quality monitor, the checkpoint of the lowest kernel distance so far is kept beside the run's own
    /// (here the distances 5, 3, 4, 2, 6 at steps 1–5: best at steps 1, 2 and 4, the run's checkpoint at 5).
    #[test]
    fn keeps_the_checkpoint_of_the_best_kernel_distance() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = Device::Cpu;
        let (model, config) = setup(5);
        let scripted = [5.0, 3.0, 4.0, 2.0, 6.0];
        let calls = std::cell::Cell::new(0);
        let monitor = super::super::Monitor::new(1, &["kernel distance"], move |_: &DcganTask| {
            calls.set(calls.get() + 1);
            Ok(vec![scripted[calls.get() - 1]])
        })?;
        let task = DcganTask::new(&model, 3, &dev)?;
        let mut trainer =
            Trainer::new(task, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, dir.path(), &dev)?.quiet(true).with_monitor(monitor);
        trainer.run(Arc::new(Synthetic(12)))?;
        let step_of = |path: &Path| -> Result<u64> { Ok(Checkpoint::read(path, &dev)?.header.state.unwrap()["step"].as_u64().unwrap()) };
        assert_eq!(step_of(&dir.path().join(BEST_CHECKPOINT))?, 4);
        assert_eq!(step_of(dir.path())?, 5);
        let events = std::fs::read_to_string(dir.path().join("events.log"))?;
        let bests: Vec<&str> = events.lines().filter(|l| l.contains("new best")).collect();
        assert_eq!(bests.len(), 3, "{events}");
        assert!(bests[2].starts_with("step 4:"), "{events}");
        assert!(!is_new_best(&[2.0, f64::NAN], None) && is_new_best(&[f64::NAN, 2.0], None) && !is_new_best(&[], None));
        assert!(!is_new_best(&[3.0], Some(2.0)) && is_new_best(&[3.0], Some(4.0)));
        assert_eq!(best_kernel_distance(dir.path()), Some(2.0));
        Ok(())
    }

    /// With `backward_for` each phase asks for its own groups' gradients only: one step still moves every
    /// trained weight of both G and D (a group left out of its phase's request would keep its weights).
    #[test]
    fn one_step_updates_every_weight_of_both_networks() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = Device::Cpu;
        let (model, config) = setup(1);
        let mut trainer =
            Trainer::new(DcganTask::new(&model, 3, &dev)?, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, dir.path(), &dev)?
                .quiet(true);
        let weights = |t: &Trainer<DcganTask>| -> Vec<(String, Vec<f32>)> {
            let mut all = Vec::new();
            for (group, vars) in t.task.groups() {
                for (name, var) in vars.data().lock().unwrap().iter().filter(|(n, _)| !n.contains("running_")) {
                    all.push((format!("{group}.{name}"), var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()));
                }
            }
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        };
        let before = weights(&trainer);
        let real = ((Tensor::rand(0f32, 1., (4, 3, 16, 16), &dev)? * 2.0)? - 1.0)?;
        trainer.train_step(&real)?;
        let after = weights(&trainer);
        assert!(before.iter().any(|(n, _)| n.starts_with("G.")) && before.iter().any(|(n, _)| n.starts_with("D.")));
        for ((name, a), (_, b)) in before.iter().zip(&after) {
            assert_ne!(a, b, "{name} did not change in a step");
        }
        Ok(())
    }

    /// `--eval-every` / `--eval-count` on resume: each given part replaces the stored one, absent parts keep it,
    /// an interval of 0 turns it off, a count alone with nothing to measure is refused.
    #[test]
    fn a_resumed_run_keeps_its_evaluation_unless_told() {
        use crate::metrics::{TrainingEval, TrainingEvalRequest};
        let stored = Some(TrainingEval { every: 5, count: 10 });
        let ask = |every, count| TrainingEvalRequest { every, count, default_count: 100 }.merge(stored).unwrap();
        assert_eq!(ask(None, None), stored);
        assert_eq!(ask(Some(7), None), Some(TrainingEval { every: 7, count: 10 }));
        assert_eq!(ask(None, Some(20)), Some(TrainingEval { every: 5, count: 20 }));
        assert_eq!(ask(Some(0), None), None);
        let new_run = |every, count| TrainingEvalRequest { every, count, default_count: 100 }.merge(None);
        assert_eq!(new_run(Some(7), None).unwrap(), Some(TrainingEval { every: 7, count: 100 }));
        assert_eq!(new_run(None, None).unwrap(), None);
        assert!(new_run(None, Some(20)).unwrap_err().to_string().contains("--eval-count 20"));
    }

    #[test]
    fn refuses_to_overwrite_a_run() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = Device::Cpu;
        let (model, config) = setup(1);
        let mut t =
            Trainer::new(DcganTask::new(&model, 3, &dev)?, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config.clone(), dir.path(), &dev)?
                .quiet(true);
        t.run(Arc::new(Synthetic(8)))?;
        let again = Trainer::new(DcganTask::new(&model, 3, &dev)?, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, dir.path(), &dev);
        assert!(again.err().unwrap().to_string().contains("--resume"));
        Ok(())
    }
}
