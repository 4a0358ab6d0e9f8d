//! `ganime train cyclegan`: a thin wrapper over `train::cyclegan`.

use super::train::UnpairedRunArgs;
use crate::data::{Fit, ImageSpec};
use crate::device::parse_device;
use crate::models::cyclegan::{DiscriminatorConfig, GeneratorConfig};
use crate::train::cyclegan::{train_cyclegan, CycleGanConfig};
use crate::train::{AdamParams, LabelPolicy, LrSchedule, ObjectiveSpec, TrainConfig, TrainOptions};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CycleganArgs {
    /// Folder of domain-A images (searched recursively).
    #[arg(long, required_unless_present = "resume")]
    a: Option<PathBuf>,
    /// Folder of domain-B images.
    #[arg(long, required_unless_present = "resume")]
    b: Option<PathBuf>,
    /// Run folder: checkpoint.safetensors, samples/ (rows A, G_A(A), G_B(G_A(A)), B, G_B(B), G_A(G_B(B))), log.csv, plots.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder exactly where its checkpoint stopped.
    #[arg(long, conflicts_with_all = ["a", "b", "out"])]
    resume: Option<PathBuf>,
    /// Training crop size (a multiple of 4).
    #[arg(long, default_value_t = 256)]
    crop: usize,
    /// Images are resized to this (default: crop·286/256, as the reference's 286 -> 256) before the random crop.
    #[arg(long)]
    load_size: Option<usize>,
    #[arg(long, default_value_t = 64)]
    ngf: usize,
    /// Residual blocks in each generator.
    #[arg(long, default_value_t = 9)]
    n_blocks: usize,
    #[arg(long, default_value_t = 64)]
    ndf: usize,
    /// PatchGAN layers (3 = the 70×70 PatchGAN).
    #[arg(long, default_value_t = 3)]
    n_layers: usize,
    /// lsgan (the reference's default) or bce.
    #[arg(long, default_value = "lsgan")]
    objective: String,
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// Total steps to reach (with --resume: the new total).
    #[arg(long)]
    steps: Option<u64>,
    /// Steps at the full learning rate (the reference's n_epochs; default: half of --steps).
    #[arg(long)]
    constant_steps: Option<u64>,
    /// Steps of linear decay to 0 after those (the reference's n_epochs_decay; default: the rest of --steps).
    #[arg(long)]
    decay_steps: Option<u64>,
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    #[arg(long, default_value_t = 0.5)]
    beta1: f64,
    #[arg(long, default_value_t = 10.0)]
    lambda_cycle: f64,
    /// Identity loss weight relative to --lambda-cycle (0 disables it).
    #[arg(long, default_value_t = 0.5)]
    lambda_identity: f64,
    /// History of generated images the discriminators also see (0 disables it).
    #[arg(long, default_value_t = 50)]
    pool_size: usize,
    #[command(flatten)]
    run: UnpairedRunArgs,
}

pub fn train_cyclegan_cmd(a: CycleganArgs) -> Result<()> {
    let device = parse_device(&a.run.device)?;
    let summary = if let Some(dir) = &a.resume {
        train_cyclegan(None, dir, &device, a.run.control(a.steps)?)?
    } else {
        let (Some(da), Some(db), Some(out)) = (a.a.clone(), a.b.clone(), a.out.clone()) else { bail!("--a, --b and --out are required") };
        let objective = match a.objective.as_str() {
            "lsgan" | "bce" => ObjectiveSpec::parse(&a.objective)?,
            other => bail!("--objective {other}: CycleGAN trains with lsgan or bce"),
        };
        let model = CycleGanConfig {
            generator: GeneratorConfig { ngf: a.ngf, n_blocks: a.n_blocks },
            discriminator: DiscriminatorConfig { ndf: a.ndf, n_layers: a.n_layers },
            crop: a.crop,
            lambda_cycle: a.lambda_cycle,
            lambda_identity: a.lambda_identity,
            pool_size: a.pool_size,
        };
        let load = a.load_size.unwrap_or((a.crop * 286).div_ceil(256));
        model.validate(load)?;
        let steps = a.steps.unwrap_or(1000);
        let constant = a.constant_steps.unwrap_or(steps / 2);
        let decay = a.decay_steps.unwrap_or(steps.saturating_sub(constant));
        if a.batch_size == 0 || a.ngf == 0 || a.ndf == 0 || a.n_blocks == 0 || a.n_layers == 0 {
            bail!("--batch-size, --ngf, --ndf, --n-blocks and --n-layers must be positive");
        }
        let config = TrainConfig {
            data: da,
            image: ImageSpec { size: load, channels: 3, fit: Fit::CenterCrop },
            batch_size: a.batch_size,
            steps,
            seed: a.run.seed,
            adam: AdamParams { lr: a.lr, beta1: a.beta1, ..AdamParams::default() },
            labels: LabelPolicy::default(),
            flip: !a.run.no_flip,
            sample_every: a.run.output.sample_every(),
            checkpoint_every: a.run.output.checkpoint_every(),
            log_every: a.run.output.log_every(),
        };
        let options = TrainOptions {
            objective,
            schedule: Some(LrSchedule { constant_steps: constant, decay_steps: decay }),
            extra_data: vec![db],
            ..TrainOptions::default()
        };
        train_cyclegan(Some((model, config, options)), &out, &device, a.run.control(None)?)?
    };
    eprintln!("done: {} steps, {} epochs, {:.1} s; checkpoint {}", summary.steps, summary.epochs, summary.seconds, summary.checkpoint.display());
    Ok(())
}
