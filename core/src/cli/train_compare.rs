//! `ganime train compare`: a thin wrapper over `train::compare`.

use crate::data::{Fit, ImageSpec};
use crate::device::parse_device;
use crate::models::dcgan::{DcganConfig, Preset};
use crate::train::compare::compare_objectives;
use crate::train::{AdamParams, LabelPolicy, ObjectiveSpec, TrainConfig};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CompareArgs {
    /// Image folder (or MNIST IDX file) all runs train on.
    #[arg(long)]
    data: PathBuf,
    /// Output folder: one run folder per objective, comparison.png, d_loss.png, g_loss.png.
    #[arg(long)]
    out: PathBuf,
    /// Comma-separated objectives.
    #[arg(long, default_value = "bce,lsgan,wgan,wgan-gp")]
    objectives: String,
    #[arg(long, default_value_t = 32)]
    image_size: usize,
    #[arg(long, default_value_t = 32)]
    ngf: usize,
    #[arg(long, default_value_t = 32)]
    ndf: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Generator updates per run.
    #[arg(long, default_value_t = 200)]
    steps: u64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long)]
    quiet: bool,
}

pub fn compare_cmd(a: CompareArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let objectives = a.objectives.split(',').map(|s| ObjectiveSpec::parse(s.trim())).collect::<Result<Vec<_>>>()?;
    let model = DcganConfig { image_size: a.image_size, ngf: a.ngf, ndf: a.ndf, ..DcganConfig::preset(Preset::Radford64) };
    model.validate()?;
    if a.steps == 0 || a.batch_size == 0 {
        bail!("--steps and --batch-size must be positive");
    }
    let config = TrainConfig {
        data: a.data.clone(),
        image: ImageSpec { size: a.image_size, channels: 3, fit: Fit::CenterCrop },
        batch_size: a.batch_size,
        steps: a.steps,
        seed: a.seed,
        adam: AdamParams::default(),
        labels: LabelPolicy::default(),
        flip: false,
        sample_every: a.steps,
        checkpoint_every: a.steps,
        log_every: 1,
    };
    let c = compare_objectives(&model, &config, &objectives, &a.out, &device, a.quiet)?;
    eprintln!("wrote {} and {}", c.grid.display(), c.plots.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(())
}
