//! `ganime train dcgan`: a thin wrapper over `train::dcgan`.

use super::train::RunOutputArgs;
use crate::data::{Fit, ImageSpec};
use crate::device::parse_device;
use crate::models::dcgan::{DcganConfig, Preset, Prior};
use crate::models::progressive::GrowthSchedule;
use crate::train::{
    compare::recommended,
    dcgan::{train_dcgan, RunLength},
    AdamParams, DiffAugment, GanRecipe, LabelPolicy, ObjectiveSpec, OptimizerKind, TrainConfig, TrainOptions,
};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

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
    #[command(flatten)]
    model: DcganModelArgs,
    /// Print a Keras-style summary of G and D (layers, output shapes, parameters) before training.
    #[arg(long)]
    summary: bool,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Total steps to reach (with --resume: the new total). Default 1000 unless --epochs is given.
    #[arg(long, conflicts_with = "epochs")]
    steps: Option<u64>,
    /// Run length in epochs (passes over the training data) instead of --steps (with --resume: the new total).
    /// One line per epoch reports the time per step and the ETA.
    #[arg(long)]
    epochs: Option<u64>,
    /// Write the sample grid after these epochs as samples/epoch_NNNN.png (comma-separated, e.g. 1,2,20).
    #[arg(long, value_delimiter = ',')]
    sample_epochs: Vec<u64>,
    /// At these steps write panels/step_N.png: real training images beside generated ones, same size, a white
    /// line between (comma-separated).
    #[arg(long, value_delimiter = ',')]
    panel_steps: Vec<u64>,
    /// End the run early: `d-fake<0.05@300` (D's score on samples below 0.05 for 300 steps in a row; also
    /// d-real, d-loss, g-loss and >), or `kid-plateau@3` (no new best kernel distance in 3 --eval-every
    /// evaluations). Repeatable; the reason goes to events.log.
    #[arg(long)]
    stop_when: Vec<crate::train::stop::StopRule>,
    #[command(flatten)]
    selection: SelectionArgs,
    /// bce, lsgan, hinge, wgan (weight clipping, RMSProp 5e-5) or wgan-gp (gradient penalty, Adam 1e-4 betas 0.5/0.9).
    #[arg(long, default_value = "bce")]
    objective: String,
    /// Critic updates per generator update (wgan, wgan-gp; default 5).
    #[arg(long)]
    n_critic: Option<usize>,
    /// WGAN weight clipping bound (default 0.01).
    #[arg(long)]
    clip: Option<f64>,
    /// WGAN-GP penalty weight λ (default 10).
    #[arg(long)]
    gp_lambda: Option<f64>,
    /// Optimiser (default: rmsprop for wgan, adam otherwise).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerKind>,
    /// Learning rate (default: 2e-4; 5e-5 for wgan, 1e-4 for wgan-gp).
    #[arg(long)]
    lr: Option<f64>,
    /// Adam beta1 (default 0.5).
    #[arg(long)]
    beta1: Option<f64>,
    /// Adam beta2 (default 0.999; 0.9 for wgan-gp).
    #[arg(long)]
    beta2: Option<f64>,
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
    /// Steps over which the instance noise anneals to 0 (required with --instance-noise: a length that does not
    /// depend on --steps keeps a run extended with --resume identical to a straight one).
    #[arg(long)]
    instance_noise_steps: Option<u64>,
    /// Random horizontal flips of the training images.
    #[arg(long)]
    flip: bool,
    /// `small-data`: the recipe of the built-in generator (hinge objective, spectrally normalised D without
    /// BatchNorm, DiffAugment color,translation,cutout, EMA 0.999 of G, D at twice G's learning rate).
    /// The flags below override its parts.
    #[arg(long, value_parser = ["small-data"])]
    recipe: Option<String>,
    /// Spectral normalisation of every conv in D, and no BatchNorm in D.
    #[arg(long)]
    spectral_norm: bool,
    /// Differentiable augmentation of everything D sees: a comma-separated subset of color,translation,cutout.
    #[arg(long)]
    diffaugment: Option<String>,
    /// Keep an exponential moving average of G's weights with this decay (e.g. 0.999); samples and exports use it.
    #[arg(long)]
    ema: Option<f64>,
    /// R1 penalty weight γ on real images (needs second-order gradients: slower).
    #[arg(long)]
    r1: Option<f64>,
    /// D's learning rate, when it should differ from G's (--lr).
    #[arg(long)]
    lr_d: Option<f64>,
    /// Progressive growing (Karras et al. 2018, radford64 preset): train at --start-size first, then double the
    /// resolution every 2 x --stage-steps steps (a fade-in, then a stable stage) up to --image-size.
    #[arg(long)]
    progressive: bool,
    /// First resolution of --progressive.
    #[arg(long, default_value_t = 8, requires = "progressive")]
    start_size: usize,
    /// Steps of --progressive's first stage, of each fade-in and of each stable stage.
    #[arg(long, default_value_t = 1000, requires = "progressive")]
    stage_steps: u64,
    /// Pad to square instead of center-cropping non-square images.
    #[arg(long)]
    pad: bool,
    #[command(flatten)]
    output: RunOutputArgs,
    /// Every N steps, measure the Fréchet and kernel distance of fixed samples to the training images
    /// (metrics.csv, metrics.png), and keep the checkpoint of the lowest kernel distance as
    /// best.checkpoint.safetensors (`export --checkpoint RUN/best.checkpoint.safetensors`). The run stores both
    /// settings: --resume goes on measuring, and either option given with it replaces its own part from there on
    /// (--eval-every 0: off, for later resumes too).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Images per set for --eval-every [default: 256].
    #[arg(long)]
    eval_count: Option<usize>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Which images of a folder-per-class dataset to use (`train dcgan`, `data export-csv`).
#[derive(Args, Clone)]
pub struct SelectionArgs {
    /// Train on this class only: a first-level subfolder of --data (repeatable).
    #[arg(long = "class")]
    classes: Vec<String>,
    /// Keep only classes with at least this many images (the kept and dropped classes are listed).
    #[arg(long)]
    min_class_size: Option<usize>,
    /// Hold this fraction of every kept class out of training (e.g. 0.07), the same images every time; stored
    /// with the run, so `ganime eval --checkpoint RUN` compares against them.
    #[arg(long)]
    holdout: Option<f64>,
}

impl SelectionArgs {
    pub fn selection(&self) -> crate::data::selection::DataSelection {
        crate::data::selection::DataSelection { classes: self.classes.clone(), min_class_size: self.min_class_size, holdout: self.holdout }
    }
}

/// The architecture options of a DCGAN (`train dcgan`, `models summary`).
#[derive(Args, Clone)]
pub struct DcganModelArgs {
    /// radford64, mnist28, keras28 (the Simpsons paper's Keras model) or wide128.
    #[arg(long, default_value_t = Preset::Radford64)]
    preset: Preset,
    /// Image size (default: the preset's).
    #[arg(long)]
    image_size: Option<usize>,
    /// 1 (grayscale) or 3 (RGB) (default: the preset's).
    #[arg(long)]
    channels: Option<usize>,
    /// Latent size.
    #[arg(long)]
    nz: Option<usize>,
    #[arg(long)]
    ngf: Option<usize>,
    #[arg(long)]
    ndf: Option<usize>,
    /// Kernel size of the up/down-sampling stages (3, 4 or 5).
    #[arg(long)]
    kernel: Option<usize>,
    /// The latent prior: normal, or uniform on [-1, 1] (the DCGAN and KTH DCGAN-128 papers). Stored with the
    /// model; generate, sheet, interpolate and attribute fitting draw from it.
    #[arg(long, default_value_t = Prior::Normal)]
    prior: Prior,
    /// LeakyReLU in G with this slope instead of ReLU (0.01 in the anime DCGAN paper).
    #[arg(long)]
    g_leaky_slope: Option<f64>,
    /// D's LeakyReLU slope.
    #[arg(long, default_value_t = 0.2)]
    d_leaky_slope: f64,
    /// Resize-convolution in G (nearest 2x up-sampling, then a stride-1 conv) instead of transposed convs: the
    /// DCGAN-128 variant, without checkerboard texture. Needs --kernel 3 or 5.
    #[arg(long)]
    upsample: bool,
}

impl DcganModelArgs {
    /// The preset's config with the options given.
    pub fn config(&self) -> Result<DcganConfig> {
        let base = DcganConfig::preset(self.preset);
        let model = DcganConfig {
            preset: self.preset,
            image_size: self.image_size.unwrap_or(base.image_size),
            channels: self.channels.unwrap_or(base.channels),
            nz: self.nz.unwrap_or(base.nz),
            ngf: self.ngf.unwrap_or(base.ngf),
            ndf: self.ndf.unwrap_or(base.ndf),
            kernel: self.kernel.unwrap_or(base.kernel),
            prior: self.prior,
            g_leaky_slope: self.g_leaky_slope,
            d_leaky_slope: self.d_leaky_slope,
            upsample: self.upsample,
        };
        model.validate()?;
        Ok(model)
    }
}

fn run_length(steps: Option<u64>, epochs: Option<u64>) -> Option<RunLength> {
    steps.map(RunLength::Steps).or(epochs.map(RunLength::Epochs))
}

/// Prints G's and D's summaries.
pub fn print_summaries(model: &DcganConfig) -> Result<()> {
    let (g, d) = model.summaries()?;
    println!("{g}\n\n{d}");
    Ok(())
}

/// `--objective` and its parameters.
pub fn parse_objective(name: &str, n_critic: Option<usize>, clip: Option<f64>, gp_lambda: Option<f64>) -> Result<ObjectiveSpec> {
    let spec = ObjectiveSpec::parse(name)?;
    Ok(match spec {
        ObjectiveSpec::Wgan { clip: c, n_critic: n } => ObjectiveSpec::Wgan { clip: clip.unwrap_or(c), n_critic: n_critic.unwrap_or(n) },
        ObjectiveSpec::WganGp { lambda, n_critic: n } => {
            ObjectiveSpec::WganGp { lambda: gp_lambda.unwrap_or(lambda), n_critic: n_critic.unwrap_or(n) }
        }
        other => {
            if n_critic.is_some() || clip.is_some() || gp_lambda.is_some() {
                bail!("--n-critic, --clip and --gp-lambda only apply to --objective wgan / wgan-gp");
            }
            other
        }
    })
}

pub fn run(a: DcganArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let eval = super::train::training_eval(a.eval_every, a.eval_count, 256, a.resume.is_some())?;
    let summary = if let Some(dir) = &a.resume {
        if !a.sample_epochs.is_empty() || !a.panel_steps.is_empty() || !a.stop_when.is_empty() || !a.selection.selection().is_everything() {
            bail!(
                "--sample-epochs, --panel-steps, --stop-when, --class, --min-class-size and --holdout are stored with the run: give them when it starts, not with --resume"
            );
        }
        train_dcgan(None, dir, run_length(a.steps, a.epochs), &device, a.output.control(a.quiet, None)?, eval)?
    } else {
        let (Some(data), Some(out)) = (a.data.clone(), a.out.clone()) else { bail!("--data and --out are required") };
        let model = a.model.config()?;
        if a.summary {
            print_summaries(&model)?;
        }
        let steps = a.steps.unwrap_or(1000);
        if a.epochs == Some(0) || a.steps == Some(0) {
            bail!("--steps and --epochs must be positive");
        }
        let objective_name = match (&a.recipe, a.objective.as_str()) {
            // The recipe's objective unless another was asked for.
            (Some(_), "bce") => "hinge",
            (_, name) => name,
        };
        let objective = parse_objective(objective_name, a.n_critic, a.clip, a.gp_lambda)?;
        let config = TrainConfig {
            data,
            image: ImageSpec { size: model.image_size, channels: model.channels, fit: if a.pad { Fit::Pad } else { Fit::CenterCrop } },
            batch_size: a.batch_size,
            steps,
            seed: a.seed,
            adam: AdamParams::default(),
            labels: LabelPolicy {
                smoothing: a.label_smoothing,
                flip_probability: a.label_flip,
                instance_noise: a.instance_noise,
                instance_noise_steps: match (a.instance_noise, a.instance_noise_steps) {
                    (n, Some(s)) if n > 0.0 => s,
                    (n, None) if n > 0.0 => bail!("--instance-noise {n} needs --instance-noise-steps N (the steps over which it anneals to 0)"),
                    _ => 0,
                },
            },
            flip: a.flip,
            sample_every: a.output.sample_every(),
            checkpoint_every: a.output.checkpoint_every(),
            log_every: a.output.log_every(),
        };
        if !(0.0..1.0).contains(&config.labels.smoothing) || !(0.0..=1.0).contains(&config.labels.flip_probability) {
            bail!("--label-smoothing must be in [0, 1) and --label-flip in [0, 1]");
        }
        // The objective's recommended optimiser settings, then whatever was given explicitly.
        let (mut config, optimizer) = recommended(objective, &config);
        config.adam.lr = a.lr.unwrap_or(config.adam.lr);
        config.adam.beta1 = a.beta1.unwrap_or(config.adam.beta1);
        config.adam.beta2 = a.beta2.unwrap_or(config.adam.beta2);
        if config.adam.lr.is_nan() || config.adam.lr <= 0.0 || !(0.0..1.0).contains(&config.adam.beta1) || !(0.0..1.0).contains(&config.adam.beta2) {
            bail!("--lr must be positive and --beta1/--beta2 in [0, 1)");
        }
        let mut recipe = match a.recipe.as_deref() {
            Some(_) => GanRecipe::small_data(config.adam.lr),
            None => GanRecipe::default(),
        };
        recipe.spectral_norm |= a.spectral_norm;
        if let Some(policy) = &a.diffaugment {
            recipe.diffaugment = Some(DiffAugment::parse(policy).map_err(|e| anyhow::anyhow!("--diffaugment: {e}"))?);
        }
        recipe.ema = a.ema.or(recipe.ema);
        recipe.r1 = a.r1.or(recipe.r1);
        recipe.lr_d = a.lr_d.or(recipe.lr_d);
        if a.progressive {
            let schedule = GrowthSchedule { start: a.start_size, stage_steps: a.stage_steps };
            schedule.validate(&model)?;
            recipe.progressive = Some(schedule);
        }
        recipe.validate()?;
        let options = TrainOptions {
            objective,
            optimizer: a.optimizer.unwrap_or(optimizer),
            recipe,
            epochs: a.epochs,
            sample_epochs: a.sample_epochs.clone(),
            panel_steps: a.panel_steps.clone(),
            stop_when: a.stop_when.clone(),
            selection: a.selection.selection(),
            ..TrainOptions::default()
        };
        train_dcgan(Some((model, config, options)), &out, None, &device, a.output.control(a.quiet, None)?, eval)?
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
