//! `ganime train`: the training subcommands and the run options they share.

use anyhow::Result;
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum TrainCommand {
    /// DCGAN (Radford et al.) with the BCE, LSGAN, WGAN or WGAN-GP objective.
    Dcgan(super::train_dcgan::DcganArgs),
    /// CycleGAN (Zhu et al.): unpaired translation between image folders A and B.
    Cyclegan(super::train_cyclegan::CycleganArgs),
    /// AnimeGANv2 (Chen et al.): photo -> anime stylisation from unpaired photo and anime folders.
    Animegan(super::train_animegan::AnimeganArgs),
    /// Short DCGAN runs with several objectives on the same data: side-by-side sample grids and loss plots.
    Compare(super::train_compare::CompareArgs),
    /// A learned 2× upscaler (ESPCN) from picture folders, trained on pairs made by downscaling.
    Upscaler(super::upscale::TrainUpscalerArgs),
}

/// How often a training run writes samples, checkpoints and log rows (shared by every `train` command).
#[derive(Args)]
pub struct RunOutputArgs {
    /// Steps between sample grids [default: 500]; with --resume it replaces the run's own interval.
    #[arg(long)]
    pub sample_every: Option<u64>,
    /// Steps between checkpoints [default: 500]; with --resume it replaces the run's own interval.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Steps between log rows [default: 10]; with --resume it replaces the run's own interval.
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Stop after this many minutes of training (with samples, a checkpoint and the exported model, as at the
    /// last step); `--resume` continues.
    #[arg(long)]
    pub max_minutes: Option<f64>,
}

/// Options the unpaired-translation train commands (cyclegan, animegan) share.
#[derive(Args)]
pub struct UnpairedRunArgs {
    /// No random horizontal flips.
    #[arg(long)]
    pub no_flip: bool,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub output: RunOutputArgs,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl UnpairedRunArgs {
    /// How this invocation drives the run: `total_steps` (a new total on --resume), --quiet, --max-minutes.
    pub fn control(&self, total_steps: Option<u64>) -> anyhow::Result<crate::train::trainer::RunControl> {
        self.output.control(self.quiet, total_steps)
    }

    /// The training config of a new run with these run options.
    pub fn train_config(
        &self,
        data: std::path::PathBuf,
        image: crate::data::ImageSpec,
        batch_size: usize,
        steps: u64,
        adam: crate::train::AdamParams,
    ) -> crate::train::TrainConfig {
        crate::train::TrainConfig {
            data,
            image,
            batch_size,
            steps,
            seed: self.seed,
            adam,
            labels: crate::train::LabelPolicy::default(),
            flip: !self.no_flip,
            sample_every: self.output.sample_every(),
            checkpoint_every: self.output.checkpoint_every(),
            log_every: self.output.log_every(),
        }
    }
}

impl RunOutputArgs {
    /// How this invocation drives the run: `total_steps` (a new total on --resume), `quiet`, --max-minutes and
    /// the intervals given (checked positive; a resumed run takes them over).
    pub fn control(&self, quiet: bool, total_steps: Option<u64>) -> anyhow::Result<crate::train::trainer::RunControl> {
        Ok(crate::train::trainer::RunControl {
            total_steps,
            quiet,
            time_limit: self.time_limit()?,
            cadence: crate::train::trainer::Cadence::given(self.sample_every, self.checkpoint_every, self.log_every)?,
            learning_rate: None,
        })
    }

    /// A new run's sample interval: the one given, else 500 steps.
    pub fn sample_every(&self) -> u64 {
        self.sample_every.unwrap_or(500)
    }

    /// A new run's checkpoint interval: the one given, else 500 steps.
    pub fn checkpoint_every(&self) -> u64 {
        self.checkpoint_every.unwrap_or(500)
    }

    /// A new run's log interval: the one given, else 10 steps.
    pub fn log_every(&self) -> u64 {
        self.log_every.unwrap_or(10)
    }

    pub fn time_limit(&self) -> anyhow::Result<Option<std::time::Duration>> {
        match self.max_minutes {
            None => Ok(None),
            Some(m) if m > 0.0 && m.is_finite() => Ok(Some(std::time::Duration::from_secs_f64(m * 60.0))),
            Some(m) => anyhow::bail!("--max-minutes must be a positive number, not {m}"),
        }
    }
}

/// `--eval-every N --eval-count C` as the trainers take them. A resumed run keeps its own measurement for what
/// is not given, and `--eval-every 0` turns it off there; a new run has nothing to turn off, so 0 is refused.
pub fn training_eval(every: Option<u64>, count: Option<usize>, default_count: usize, resuming: bool) -> Result<crate::metrics::TrainingEvalRequest> {
    if every == Some(0) && !resuming {
        anyhow::bail!("--eval-every 0: the metric interval must be at least 1 step (0 turns measuring off with --resume)");
    }
    Ok(crate::metrics::TrainingEvalRequest { every, count, default_count })
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Dcgan(a) => super::train_dcgan::run(a),
        TrainCommand::Cyclegan(a) => super::train_cyclegan::train_cyclegan_cmd(a),
        TrainCommand::Compare(a) => super::train_compare::compare_cmd(a),
        TrainCommand::Animegan(a) => super::train_animegan::run(a),
        TrainCommand::Upscaler(a) => super::upscale::train(a),
    }
}
