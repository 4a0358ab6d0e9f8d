//! The training loop shared by every GAN task.

use super::adam::{Adam, AdamParams};
use super::checkpoint::{self, Checkpoint, Header};
use super::log::{LogRow, TrainLog};
use super::objective::Objective;
use super::task::{GanTask, LabelPolicy, StepContext, StepStats};
use crate::data::{Dataset, ImageSpec, Loader, LoaderConfig};
use crate::io::image::{grid, save_image, tensor_to_images};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

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
    optimisers: Vec<(&'static str, Adam)>,
    out: PathBuf,
    device: Device,
    quiet: bool,
}

impl<T: GanTask> Trainer<T> {
    /// A new run writing into `out` (which must not already hold a checkpoint: resume it instead).
    pub fn new(task: T, objective: Box<dyn Objective>, kind: &str, model: serde_json::Value, config: TrainConfig, out: &Path, device: &Device) -> Result<Self> {
        if checkpoint::resolve(out).is_file() && out.is_dir() {
            bail!("{} already holds a checkpoint: use --resume {} to continue it, or choose another --out", out.display(), out.display());
        }
        if config.batch_size == 0 || config.steps == 0 {
            bail!("--batch-size and --steps must be positive");
        }
        let optimisers = task.groups().into_iter().map(|(n, v)| Ok((n, Adam::new(v, config.adam)?))).collect::<Result<Vec<_>>>()?;
        let state = RunState {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            config,
            objective: objective.name().to_string(),
            step: 0,
            epoch: 0,
            batch: 0,
            adam_steps: HashMap::new(),
            seconds: 0.0,
        };
        Ok(Self { task, objective, kind: kind.into(), model, state, optimisers, out: out.to_path_buf(), device: device.clone(), quiet: false })
    }

    /// Restores weights, optimiser moments, step, data position and RNG from `ckpt` into a task built from the
    /// same config.
    pub fn resume(task: T, objective: Box<dyn Objective>, ckpt: &Checkpoint, out: &Path, device: &Device) -> Result<Self> {
        let state: RunState = serde_json::from_value(ckpt.header.state.clone().context("checkpoint has no training state (an exported model cannot be resumed)")?)
            .with_context(|| format!("{}: malformed training state", ckpt.path.display()))?;
        if state.objective != objective.name() {
            bail!("{} was trained with the {} objective, not {}", ckpt.path.display(), state.objective, objective.name());
        }
        let source = ckpt.path.display().to_string();
        let mut optimisers = Vec::new();
        for (name, vars) in task.groups() {
            crate::io::weights::load_varmap(vars, &ckpt.tensors, &format!("{name}."), &source)?;
            let mut opt = Adam::new(vars, state.config.adam)?;
            opt.load_state(&ckpt.tensors, &format!("opt.{name}."), state.adam_steps.get(name).copied().unwrap_or(0))?;
            optimisers.push((name, opt));
        }
        Ok(Self { task, objective, kind: ckpt.header.kind.clone(), model: ckpt.header.model.clone(), state, optimisers, out: out.to_path_buf(), device: device.clone(), quiet: false })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.state.config
    }

    /// Raises (or lowers, not below the current step) the total number of steps.
    pub fn set_total_steps(&mut self, steps: u64) {
        self.state.config.steps = steps.max(self.state.step);
    }

    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    pub fn step(&self) -> u64 {
        self.state.step
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.out.join(checkpoint::FILE_NAME)
    }

    pub fn save_checkpoint(&self) -> Result<()> {
        let mut state = self.state.clone();
        state.adam_steps = self.optimisers.iter().map(|(n, o)| (n.to_string(), o.steps)).collect();
        let header = Header { kind: self.kind.clone(), model: self.model.clone(), state: Some(serde_json::to_value(&state)?), note: None };
        let extra = self.optimisers.iter().flat_map(|(n, o)| o.state_tensors(&format!("opt.{n}."))).collect();
        Checkpoint::write(&self.checkpoint_path(), &header, &self.task.groups(), extra, DType::F32)
    }

    fn save_samples(&self) -> Result<PathBuf> {
        let images = tensor_to_images(&self.task.samples()?)?;
        let cols = (images.len() as f64).sqrt().ceil() as usize;
        let path = self.out.join("samples").join(format!("step_{:07}.png", self.state.step));
        save_image(&grid(&images, cols, 2)?, &path)?;
        Ok(path)
    }

    /// Trains until `config.steps`, checkpointing every `checkpoint_every` steps and at the end.
    pub fn run(&mut self, dataset: Arc<dyn Dataset>) -> Result<TrainSummary> {
        let cfg = self.state.config.clone();
        std::fs::create_dir_all(&self.out).with_context(|| format!("cannot create output folder {}", self.out.display()))?;
        let resume_step = (self.state.step > 0).then_some(self.state.step);
        let mut log = TrainLog::open(&self.out.join("log.csv"), resume_step)?;
        let loader_cfg = LoaderConfig { batch_size: cfg.batch_size, seed: cfg.seed, flip: cfg.flip, prefetch: 4 };
        let mut loader = Loader::start(dataset, cfg.image, loader_cfg, self.state.epoch, self.state.batch)?;
        let bar = self.progress_bar(cfg.steps);
        let started = Instant::now();
        let seconds_before = self.state.seconds;
        while self.state.step < cfg.steps {
            let batch = loader.next_batch()?;
            let real = batch.to_tensor(&cfg.image, &self.device)?;
            let stats = self.train_step(&real).with_context(|| {
                format!("training stopped at step {}; the last good checkpoint is {}", self.state.step + 1, self.checkpoint_path().display())
            })?;
            // Position of the *next* batch, for resume.
            self.state.epoch = batch.epoch + (batch.index + 1) / batch.batches_per_epoch;
            self.state.batch = (batch.index + 1) % batch.batches_per_epoch;
            self.state.step += 1;
            self.state.seconds = seconds_before + started.elapsed().as_secs_f64();
            let step = self.state.step;
            let last = step == cfg.steps;
            if step % cfg.log_every.max(1) == 0 || last {
                log.append(LogRow { step, epoch: batch.epoch, d_loss: stats.d_loss, g_loss: stats.g_loss, d_real: stats.real_score, d_fake: stats.fake_score, seconds: self.state.seconds })?;
            }
            if step % cfg.sample_every.max(1) == 0 || last {
                self.save_samples()?;
                log.plot(&self.out)?;
            }
            if step % cfg.checkpoint_every.max(1) == 0 || last {
                self.save_checkpoint()?;
            }
            bar.set_position(step);
            bar.set_message(format!("epoch {} D {:.3} G {:.3} D(x) {:.2} D(G(z)) {:.2}", batch.epoch, stats.d_loss, stats.g_loss, stats.real_score, stats.fake_score));
        }
        bar.finish();
        Ok(TrainSummary { steps: self.state.step, epochs: self.state.epoch, skipped_files: loader.skipped(), seconds: self.state.seconds, checkpoint: self.checkpoint_path() })
    }

    /// One D update then one G update. A non-finite loss aborts before any weight changes.
    pub fn train_step(&mut self, real: &Tensor) -> Result<StepStats> {
        let mut stats = StepStats::default();
        let mut ctx = StepContext { objective: self.objective.as_ref(), labels: &self.state.config.labels, rng: &mut self.state.rng, step: self.state.step, device: &self.device };
        let d_loss = self.task.d_loss(real, &mut ctx, &mut stats)?;
        stats.d_loss = finite(&d_loss, "discriminator")?;
        let grads = d_loss.backward()?;
        step_group(&mut self.optimisers, "D", &grads)?;
        drop(grads);
        let g_loss = self.task.g_loss(&mut ctx, &mut stats)?;
        stats.g_loss = finite(&g_loss, "generator")?;
        let grads = g_loss.backward()?;
        step_group(&mut self.optimisers, "G", &grads)?;
        Ok(stats)
    }

    fn progress_bar(&self, total: u64) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {per_sec}  ETA {eta}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(self.state.step);
        bar
    }
}

fn finite(loss: &Tensor, which: &str) -> Result<f64> {
    let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    if !v.is_finite() {
        bail!("the {which} loss became {v} (diverged); lower the learning rate or resume from the last checkpoint");
    }
    Ok(v)
}

fn step_group(optimisers: &mut [(&'static str, Adam)], name: &str, grads: &candle_core::backprop::GradStore) -> Result<()> {
    let (_, opt) = optimisers.iter_mut().find(|(n, _)| *n == name).with_context(|| format!("task has no {name} group"))?;
    opt.step(grads)
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
            if self.calls.fetch_add(1, Ordering::SeqCst) + 1 >= self.at { loss * f64::NAN } else { Ok(loss) }
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

    #[test]
    fn refuses_to_overwrite_a_run() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let dev = Device::Cpu;
        let (model, config) = setup(1);
        let mut t = Trainer::new(DcganTask::new(&model, 3, &dev)?, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config.clone(), dir.path(), &dev)?.quiet(true);
        t.run(Arc::new(Synthetic(8)))?;
        let again = Trainer::new(DcganTask::new(&model, 3, &dev)?, Box::new(Bce), "dcgan", serde_json::to_value(&model)?, config, dir.path(), &dev);
        assert!(again.err().unwrap().to_string().contains("--resume"));
        Ok(())
    }
}
