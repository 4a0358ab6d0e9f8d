//! `ganime train animegan`: a thin wrapper over `train::animegan`.

use super::train::UnpairedRunArgs;
use crate::data::{Fit, ImageSpec};
use crate::device::parse_device;
use crate::models::animegan::AnimeGanWidths;
use crate::models::animegan_discriminator::AnimeDiscriminatorConfig;
use crate::train::animegan::{train_animegan, AnimeGanLossWeights, AnimeGanTrainConfig, GENERATOR_FILE};
use crate::train::{AdamParams, LabelPolicy, TrainConfig};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct AnimeganArgs {
    /// Photo folder (repeat for several; e.g. faces and landscapes).
    #[arg(long, required_unless_present = "resume")]
    photos: Vec<PathBuf>,
    /// Folder of anime pictures in the target style.
    #[arg(long, required_unless_present = "resume")]
    anime: Option<PathBuf>,
    /// Run folder: checkpoint.safetensors, generator.safetensors, samples/ (photo, stylisation pairs), log.csv,
    /// plots, anime-smoothed/ (the edge-smoothed anime pictures, made once).
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder exactly where its checkpoint stopped.
    #[arg(long, conflicts_with_all = ["photos", "anime", "out"])]
    resume: Option<PathBuf>,
    /// VGG16/VGG19 weights for the content and style losses (default: the shared ImageNet VGG16).
    #[arg(long)]
    vgg: Option<PathBuf>,
    /// VGG layer for content and style.
    #[arg(long, default_value = "conv4_1")]
    feature_layer: String,
    /// Factor on the VGG features in the content and style losses (content scales with it, style with its
    /// square). The default, 1/(255·0.226), puts the caffe-convention shared VGG16 on the scale of a
    /// torchvision-normalised VGG. It decides the balance of the terms: `loss-terms.csv` shows it (measured at
    /// conv3_1, 64 px: at the default the adversarial term dominates and outputs wash out to gray line
    /// drawings; at 1 style and content do (G loss ~2,250 after the initialisation, ~420 at 0.25) and
    /// outputs turn into sepia brush strokes; at 0.25 adversarial, content and style are each ~90-175).
    #[arg(long, default_value_t = 0.01735)]
    feature_scale: f64,
    /// Training image size (images are centre-cropped and resized to it).
    #[arg(long, default_value_t = 128)]
    image_size: usize,
    /// Generator width: channels of the first stage (the released AnimeGANv2 uses 32; the later stages are
    /// 2x, 4x and 8x). Small widths make a real-time CPU filter.
    #[arg(long, default_value_t = 32)]
    width: usize,
    /// Discriminator channels (the reference's `ch`).
    #[arg(long, default_value_t = 64)]
    d_channels: usize,
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    /// Total steps to reach, initialisation included (with --resume: the new total).
    #[arg(long)]
    steps: Option<u64>,
    /// Steps of content-only initialisation before the adversarial phase.
    #[arg(long, default_value_t = 200)]
    init_steps: u64,
    #[arg(long, default_value_t = 2e-4)]
    init_lr: f64,
    /// Weight of an L1 pixel loss during the initialisation (0: content only, as in the paper; a narrow
    /// generator needs it to keep colours).
    #[arg(long, default_value_t = 0.0)]
    init_pixel_weight: f64,
    #[arg(long, default_value_t = 2e-5)]
    g_lr: f64,
    #[arg(long, default_value_t = 4e-5)]
    d_lr: f64,
    #[arg(long, default_value_t = 300.0)]
    adversarial_weight: f64,
    #[arg(long, default_value_t = 1.5)]
    content_weight: f64,
    #[arg(long, default_value_t = 2.5)]
    style_weight: f64,
    #[arg(long, default_value_t = 10.0)]
    color_weight: f64,
    #[arg(long, default_value_t = 1.0)]
    tv_weight: f64,
    /// Weight of an L1 loss on the U and V (chroma) channels between photo and stylisation, beside the colour
    /// loss (0: the paper's colour loss alone, whose Huber terms barely pull chroma back: small generators
    /// trained briefly drift to one tint)
    #[arg(long, default_value_t = 0.0)]
    chroma_weight: f64,
    #[command(flatten)]
    run: UnpairedRunArgs,
}

pub fn run(a: AnimeganArgs) -> Result<()> {
    let device = parse_device(&a.run.device)?;
    let (summary, out) = if let Some(dir) = &a.resume {
        (train_animegan(None, dir, a.steps, &device, a.run.quiet, a.run.output.time_limit()?)?, dir.clone())
    } else {
        let (Some(anime), Some(out)) = (a.anime.clone(), a.out.clone()) else { bail!("--photos, --anime and --out are required") };
        let Some(first_photos) = a.photos.first().cloned() else { bail!("--photos: give at least one photo folder") };
        let vgg = match a.vgg.clone().or_else(|| crate::data::shared::shared_file(crate::models::vgg::VGG16_IMAGENET_SHARED)) {
            Some(v) => v,
            None => bail!("--vgg: give VGG16 or VGG19 weights (the shared {} was not found)", crate::models::vgg::VGG16_IMAGENET_SHARED),
        };
        if a.width == 0 || a.d_channels < 2 || a.batch_size == 0 {
            bail!("--width and --batch-size must be positive and --d-channels at least 2");
        }
        if a.image_size < 16 || a.image_size % 4 != 0 {
            bail!("--image-size must be a multiple of 4 and at least 16, not {}", a.image_size);
        }
        let w = a.width;
        let model = AnimeGanTrainConfig {
            generator: AnimeGanWidths { c32: w, c64: 2 * w, c128: 4 * w, c256: 8 * w },
            discriminator: AnimeDiscriminatorConfig { channels: a.d_channels, n_dis: 3 },
            photos: a.photos.clone(),
            anime,
            vgg,
            feature_layer: a.feature_layer.clone(),
            feature_scale: a.feature_scale,
            init_steps: a.init_steps,
            init_lr: a.init_lr,
            init_pixel_weight: a.init_pixel_weight,
            g_lr: a.g_lr,
            d_lr: a.d_lr,
            weights: AnimeGanLossWeights {
                adversarial_g: a.adversarial_weight,
                adversarial_d: a.adversarial_weight,
                content: a.content_weight,
                style: a.style_weight,
                color: a.color_weight,
                tv: a.tv_weight,
                chroma: a.chroma_weight,
            },
        };
        let config = TrainConfig {
            data: first_photos,
            image: ImageSpec { size: a.image_size, channels: 3, fit: Fit::CenterCrop },
            batch_size: a.batch_size,
            steps: a.steps.unwrap_or(2000),
            seed: a.run.seed,
            adam: AdamParams { lr: a.g_lr, beta1: 0.5, ..AdamParams::default() },
            labels: LabelPolicy::default(),
            flip: !a.run.no_flip,
            sample_every: a.run.output.sample_every,
            checkpoint_every: a.run.output.checkpoint_every,
            log_every: a.run.output.log_every,
        };
        (train_animegan(Some((model, config)), &out, None, &device, a.run.quiet, a.run.output.time_limit()?)?, out)
    };
    eprintln!(
        "done: {} steps, {:.1} s; checkpoint {}; generator {} (use it as --filter animegan:{})",
        summary.steps,
        summary.seconds,
        summary.checkpoint.display(),
        out.join(GENERATOR_FILE).display(),
        out.join(GENERATOR_FILE).display()
    );
    Ok(())
}
