use crate::data::{Fit, ImageSpec};
use crate::device::parse_device;
use crate::models::dcgan::{DcganConfig, Preset};
use crate::train::{dcgan::train_dcgan, AdamParams, LabelPolicy, TrainConfig};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum TrainCommand {
    /// DCGAN (Radford et al.) with the BCE objective.
    Dcgan(DcganArgs),
}

#[derive(Args)]
pub struct DcganArgs {
    /// Image folder (searched recursively) or MNIST IDX file (.gz or raw).
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Run folder: checkpoint.safetensors, samples/, log.csv, loss.png, scores.png.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder exactly where its checkpoint stopped (other options come from it).
    #[arg(long, conflicts_with_all = ["data", "out"])]
    resume: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Preset::Radford64)]
    preset: Preset,
    /// Image size (default: the preset's).
    #[arg(long)]
    image_size: Option<usize>,
    /// 1 (grayscale) or 3 (RGB) (default: the preset's).
    #[arg(long)]
    channels: Option<usize>,
    #[arg(long)]
    nz: Option<usize>,
    #[arg(long)]
    ngf: Option<usize>,
    #[arg(long)]
    ndf: Option<usize>,
    /// Kernel size of the up/down-sampling stages (3, 4 or 5).
    #[arg(long)]
    kernel: Option<usize>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Total steps to reach (with --resume: the new total).
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    #[arg(long, default_value_t = 0.5)]
    beta1: f64,
    #[arg(long, default_value_t = 0.999)]
    beta2: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One-sided label smoothing: real targets become 1 - this.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Probability of flipping a sample's real/fake label in D's step.
    #[arg(long, default_value_t = 0.0)]
    label_flip: f64,
    /// Std of Gaussian noise on D's inputs at step 0, annealed linearly to 0.
    #[arg(long, default_value_t = 0.0)]
    instance_noise: f64,
    /// Steps over which the instance noise anneals to 0 (default: the whole run).
    #[arg(long)]
    instance_noise_steps: Option<u64>,
    /// Random horizontal flips of the training images.
    #[arg(long)]
    flip: bool,
    /// Pad to square instead of center-cropping non-square images.
    #[arg(long)]
    pad: bool,
    #[arg(long, default_value_t = 500)]
    sample_every: u64,
    #[arg(long, default_value_t = 500)]
    checkpoint_every: u64,
    #[arg(long, default_value_t = 10)]
    log_every: u64,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    let TrainCommand::Dcgan(a) = cmd;
    let device = parse_device(&a.device)?;
    let summary = if let Some(dir) = &a.resume {
        train_dcgan(None, dir, a.steps, &device, a.quiet)?
    } else {
        let (Some(data), Some(out)) = (a.data.clone(), a.out.clone()) else { bail!("--data and --out are required") };
        let base = DcganConfig::preset(a.preset);
        let model = DcganConfig {
            preset: a.preset,
            image_size: a.image_size.unwrap_or(base.image_size),
            channels: a.channels.unwrap_or(base.channels),
            nz: a.nz.unwrap_or(base.nz),
            ngf: a.ngf.unwrap_or(base.ngf),
            ndf: a.ndf.unwrap_or(base.ndf),
            kernel: a.kernel.unwrap_or(base.kernel),
        };
        model.validate()?;
        let steps = a.steps.unwrap_or(1000);
        let config = TrainConfig {
            data,
            image: ImageSpec { size: model.image_size, channels: model.channels, fit: if a.pad { Fit::Pad } else { Fit::CenterCrop } },
            batch_size: a.batch_size,
            steps,
            seed: a.seed,
            adam: AdamParams { lr: a.lr, beta1: a.beta1, beta2: a.beta2, ..AdamParams::default() },
            labels: LabelPolicy {
                smoothing: a.label_smoothing,
                flip_probability: a.label_flip,
                instance_noise: a.instance_noise,
                instance_noise_steps: a.instance_noise_steps.unwrap_or(steps),
            },
            flip: a.flip,
            sample_every: a.sample_every,
            checkpoint_every: a.checkpoint_every,
            log_every: a.log_every,
        };
        if !(0.0..1.0).contains(&config.labels.smoothing) || !(0.0..=1.0).contains(&config.labels.flip_probability) {
            bail!("--label-smoothing must be in [0, 1) and --label-flip in [0, 1]");
        }
        train_dcgan(Some((model, config)), &out, None, &device, a.quiet)?
    };
    eprintln!(
        "done: {} steps, {} epochs, {:.1} s{}; checkpoint {}",
        summary.steps,
        summary.epochs,
        summary.seconds,
        if summary.skipped_files > 0 { format!(", {} unreadable files skipped", summary.skipped_files) } else { String::new() },
        summary.checkpoint.display()
    );
    Ok(())
}
