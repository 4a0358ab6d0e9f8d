//! `ganime train upscaler` and `ganime upscale`: the learned 2× upscaler for generated characters and frames.

use super::train::UnpairedRunArgs;
use crate::device::parse_device;
use crate::generate::upscale::{box_downscale, psnr, LearnedUpscaler, Upscaling};
use crate::io::image::save_image;
use crate::models::upscaler::UpscalerConfig;
use crate::train::upscale::{train_upscaler, UpscaleRunConfig, MODEL_FILE};
use crate::train::AdamParams;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainUpscalerArgs {
    /// Picture folders to learn from (repeat for several): each picture is a target, its 2×2 box average the
    /// input.
    #[arg(long, required_unless_present = "resume")]
    data: Vec<PathBuf>,
    /// Run folder: checkpoint.safetensors, upscaler.safetensors (f16), samples/ (input, bilinear, learned,
    /// original), log.csv.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder exactly where its checkpoint stopped.
    #[arg(long, conflicts_with_all = ["data", "out"])]
    resume: Option<PathBuf>,
    /// Hidden channels.
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Target size of the training pictures (centre-cropped square; the input is half of it).
    #[arg(long, default_value_t = 64)]
    image_size: usize,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Total steps to reach (with --resume: the new total).
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[command(flatten)]
    run: UnpairedRunArgs,
}

pub fn train(a: TrainUpscalerArgs) -> Result<()> {
    let device = parse_device(&a.run.device)?;
    let summary = match (&a.resume, &a.out) {
        (Some(dir), _) => train_upscaler(None, dir, &device, a.run.control(a.steps)?)?,
        (None, Some(out)) => {
            let upscaler = UpscalerConfig { width: a.width, ..UpscalerConfig::default() };
            upscaler.validate().context("--width")?;
            if a.image_size < 8 || a.image_size % 2 != 0 || a.batch_size == 0 {
                bail!("--image-size must be even and at least 8, --batch-size positive");
            }
            if !(a.lr > 0.0 && a.lr.is_finite()) {
                bail!("--lr must be a positive number, not {}", a.lr);
            }
            let Some(first) = a.data.first().cloned() else { bail!("--data: give at least one picture folder") };
            let image = crate::data::ImageSpec { size: a.image_size, channels: 3, fit: crate::data::Fit::CenterCrop };
            let adam = AdamParams { lr: a.lr, beta1: 0.9, ..AdamParams::default() };
            let config = a.run.train_config(first, image, a.batch_size, a.steps.unwrap_or(2000), adam);
            train_upscaler(Some((UpscaleRunConfig { upscaler, data: a.data.clone() }, config)), out, &device, a.run.control(None)?)?
        }
        (None, None) => bail!("--out is required"),
    };
    let out = a.resume.as_ref().or(a.out.as_ref()).expect("one of them");
    eprintln!("done: {} steps, {:.1} s; model {}", summary.steps, summary.seconds, out.join(MODEL_FILE).display());
    Ok(())
}

#[derive(Args)]
pub struct UpscaleArgs {
    /// Picture to enlarge.
    #[arg(long = "in", required_unless_present = "measure")]
    input: Option<PathBuf>,
    /// Where to write it.
    #[arg(long, required_unless_present = "measure")]
    out: Option<PathBuf>,
    /// Enlargement factor (learned 2× passes, then Lanczos to the exact size).
    #[arg(long, default_value_t = 2.0)]
    scale: f64,
    /// An upscaler from `ganime train upscaler` (default: the built-in one where this build ships one, else
    /// Lanczos).
    #[arg(long, conflicts_with = "lanczos")]
    model: Option<PathBuf>,
    /// Plain Lanczos3.
    #[arg(long)]
    lanczos: bool,
    /// Instead: measure on the pictures of this folder (never trained on) shrunk 2× with a box filter, the
    /// PSNR of the learned upscaler against Lanczos3 and bilinear in restoring them.
    #[arg(long, conflicts_with_all = ["input", "out"])]
    measure: Option<PathBuf>,
    /// With --measure: at most this many pictures, spread over the folder.
    #[arg(long, default_value_t = 200)]
    count: usize,
    /// Replace --out if it exists.
    #[arg(long)]
    overwrite: bool,
}

pub fn upscale(a: UpscaleArgs) -> Result<()> {
    let chosen;
    let upscaling = match (&a.model, a.lanczos) {
        (Some(path), _) => {
            chosen = Upscaling::Learned(LearnedUpscaler::open(path)?);
            &chosen
        }
        (None, true) => &Upscaling::Lanczos,
        (None, false) => Upscaling::best(),
    };
    if let Some(dir) = &a.measure {
        return measure(upscaling, dir, a.count);
    }
    let (Some(input), Some(out)) = (&a.input, &a.out) else { bail!("--in and --out are required") };
    if !(a.scale.is_finite() && a.scale > 0.0 && a.scale <= 16.0) {
        bail!("--scale {} must be in (0, 16]", a.scale);
    }
    if out.exists() && !a.overwrite {
        bail!("{} exists: pass --overwrite to replace it", out.display());
    }
    let img = image::open(input).with_context(|| format!("cannot read --in {}", input.display()))?.to_rgb8();
    let (w, h) = ((img.width() as f64 * a.scale).round().max(1.0) as u32, (img.height() as f64 * a.scale).round().max(1.0) as u32);
    crate::io::limits::check_rgb("--scale", 1, w as u64, h as u64)?;
    save_image(&upscaling.resize(&img, w, h)?, out)?;
    eprintln!("wrote {} ({w}x{h}, {})", out.display(), upscaling.name());
    Ok(())
}

fn measure(upscaling: &Upscaling, dir: &std::path::Path, count: usize) -> Result<()> {
    let Upscaling::Learned(_) = upscaling else { bail!("--measure compares a learned upscaler with Lanczos: give --model (this build ships none)") };
    let set = crate::data::ImageFolder::open(dir).with_context(|| format!("--measure {}", dir.display()))?;
    let paths = set.paths();
    let k = paths.len().min(count.max(1));
    let (mut learned, mut lanczos, mut bilinear, mut n) = (0.0, 0.0, 0.0, 0usize);
    for i in 0..k {
        let path = &paths[i * paths.len() / k];
        let img = image::open(path).with_context(|| format!("cannot decode {}", path.display()))?.to_rgb8();
        let (w, h) = (img.width() / 2 * 2, img.height() / 2 * 2);
        let img = image::imageops::crop_imm(&img, 0, 0, w, h).to_image();
        let small = box_downscale(&img, 2);
        learned += psnr(&upscaling.resize(&small, w, h)?, &img);
        lanczos += psnr(&Upscaling::Lanczos.resize(&small, w, h)?, &img);
        bilinear += psnr(&image::imageops::resize(&small, w, h, image::imageops::FilterType::Triangle), &img);
        n += 1;
    }
    let n = n as f64;
    println!("{} pictures of {} shrunk 2x (box) and restored; mean PSNR:", k, dir.display());
    println!("  learned   {:.2} dB  ({})", learned / n, upscaling.name());
    println!("  lanczos3  {:.2} dB", lanczos / n);
    println!("  bilinear  {:.2} dB", bilinear / n);
    Ok(())
}
