//! `ganime train animegan`: a thin wrapper over `train::animegan`.

use super::train::UnpairedRunArgs;
use crate::data::{Fit, ImageSpec};
use crate::device::parse_device;
use crate::models::animegan::AnimeGanWidths;
use crate::models::animegan_discriminator::AnimeDiscriminatorConfig;
use crate::train::animegan::{train_animegan, AnimeGanLossWeights, AnimeGanRecipeChanges, AnimeGanTrainConfig, GENERATOR_FILE};
use crate::train::AdamParams;
use anyhow::{bail, Context, Result};
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
    /// square). The default, 1, is the caffe convention of the shared VGG16 (0..255 BGR minus the mean), the
    /// scale the paper's loss weights were tuned on; `loss-terms.csv` logs each term and its gradient norm at
    /// G's output, which show the balance.
    #[arg(long, default_value_t = crate::train::animegan::CAFFE_FEATURE_SCALE)]
    feature_scale: f64,
    /// Training image size (images are centre-cropped and resized to it).
    #[arg(long, default_value_t = 128)]
    image_size: usize,
    /// Side of the random square crop of each picture (photos and anime alike) that G and D train on, so D
    /// judges rendering rather than the shape of a whole face. Default: 3/4 of --image-size (a multiple of 4);
    /// 0 = whole pictures.
    #[arg(long)]
    crop: Option<usize>,
    /// DiffAugment on every picture D sees: `translation`, `cutout` and/or `color` (comma-separated), or `none`.
    /// Colour jitter is off by default: colour is part of the style D must judge.
    #[arg(long, default_value = "translation,cutout")]
    diffaugment: String,
    /// D without spectral normalisation (the reference trains with it).
    #[arg(long)]
    no_spectral_norm: bool,
    /// Keep the anime set's mean colour cast (by default it is removed from the colour pictures D sees as real,
    /// as the reference's data_mean.py does). With --resume: keep it from here on.
    #[arg(long)]
    keep_color_cast: bool,
    /// Shrink the photos by a random factor in [S, 1] at each step before cropping (off by default), so the
    /// filter also learns faces smaller than the training photos show them, as in webcam frames at the camera's
    /// processing size. A shrunk picture smaller than --crop is used whole (D judges patches, so fakes of
    /// another size than the anime crops are fine). With --resume: from here on.
    #[arg(long)]
    photo_scale_min: Option<f64>,
    /// Pixels per SLIC superpixel of --structure-weight's flattened copy [default: 330, White-box's size for
    /// 256 px scenes; smaller for small faces]. With --resume: from here on.
    #[arg(long)]
    superpixel_size: Option<usize>,
    /// Factor on the photo's chroma (U, V) in --chroma-weight's target [default: 1, the photo's own colours];
    /// above 1 asks for more saturated colours, an anime palette. With --resume: from here on.
    #[arg(long)]
    chroma_gain: Option<f64>,
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
    /// Loss weights. Given with --resume, a weight replaces the run's stored one from there on (the checkpoint
    /// records it): the balance can be changed mid-run.
    #[command(flatten)]
    weights: LossWeightArgs,
    /// Every N steps (and at the end) measure Fréchet and kernel distance between --eval-count photos
    /// stylised by the current generator and as many anime pictures (VGG16 relu3_3, as `ganime eval
    /// --features vgg16`) into metrics.csv / metrics.png, and keep the checkpoint of the lowest kernel distance
    /// as best.checkpoint.safetensors (open it with --filter animegan:RUN/best.checkpoint.safetensors).
    /// The run stores both settings: --resume goes on measuring, and either option given with it replaces its
    /// own part from there on (--eval-every 0: off, for later resumes too).
    #[arg(long)]
    eval_every: Option<u64>,
    /// Pictures per set for --eval-every [default: 100].
    #[arg(long)]
    eval_count: Option<usize>,
    #[command(flatten)]
    run: UnpairedRunArgs,
}

#[derive(Args)]
struct LossWeightArgs {
    /// Adversarial weight of G and D [default: 300].
    #[arg(long)]
    adversarial_weight: Option<f64>,
    /// [default: 1.5]
    #[arg(long)]
    content_weight: Option<f64>,
    /// [default: 2.5]
    #[arg(long)]
    style_weight: Option<f64>,
    /// [default: 10]
    #[arg(long)]
    color_weight: Option<f64>,
    /// [default: 1]
    #[arg(long)]
    tv_weight: Option<f64>,
    /// Weight of an L1 loss on the U and V (chroma) channels between photo and stylisation, beside the colour
    /// loss (0: the paper's colour loss alone, whose Huber terms barely pull chroma back: small generators
    /// trained briefly drift to one tint) [default: 0].
    #[arg(long)]
    chroma_weight: Option<f64>,
    /// Weight of White-box Cartoonization's structure loss: VGG-feature L1 between the stylisation and its own
    /// copy with every SLIC superpixel (~330 px) painted its mean colour, which rewards flat cel-shaded regions
    /// with clean borders (0: off, as in AnimeGAN) [default: 0].
    #[arg(long)]
    structure_weight: Option<f64>,
}

impl AnimeganArgs {
    /// The recipe options as given: applied to the paper's recipe for a new run, to the stored one on --resume.
    fn recipe_changes(&self) -> AnimeGanRecipeChanges {
        let w = &self.weights;
        AnimeGanRecipeChanges {
            adversarial: w.adversarial_weight,
            content: w.content_weight,
            style: w.style_weight,
            color: w.color_weight,
            tv: w.tv_weight,
            chroma: w.chroma_weight,
            structure: w.structure_weight,
            keep_color_cast: self.keep_color_cast,
            photo_scale_min: self.photo_scale_min,
            superpixel_size: self.superpixel_size,
            chroma_gain: self.chroma_gain,
        }
    }
}

pub fn run(a: AnimeganArgs) -> Result<()> {
    let device = parse_device(&a.run.device)?;
    let eval = super::train::training_eval(a.eval_every, a.eval_count, 100, a.resume.is_some())?;
    let (summary, out) = if let Some(dir) = &a.resume {
        (train_animegan(None, dir, &device, a.run.control(a.steps)?, eval, a.recipe_changes())?, dir.clone())
    } else {
        let (Some(anime), Some(out)) = (a.anime.clone(), a.out.clone()) else { bail!("--photos, --anime and --out are required") };
        let Some(first_photos) = a.photos.first().cloned() else { bail!("--photos: give at least one photo folder") };
        let vgg = crate::models::vgg::default_vgg(a.vgg.clone())?;
        if a.width == 0 || a.d_channels < 2 || a.batch_size == 0 {
            bail!("--width and --batch-size must be positive and --d-channels at least 2");
        }
        if a.image_size < 16 || a.image_size % 4 != 0 {
            bail!("--image-size must be a multiple of 4 and at least 16, not {}", a.image_size);
        }
        let crop = a.crop.unwrap_or(a.image_size * 3 / 4 / 4 * 4);
        if crop != 0 && (crop < 16 || crop % 4 != 0 || crop > a.image_size) {
            bail!("--crop must be 0 or a multiple of 4 from 16 to --image-size ({}), not {crop}", a.image_size);
        }
        let diffaugment = match a.diffaugment.trim() {
            "none" => None,
            policy => Some(crate::train::diffaugment::DiffAugment::parse(policy).context("--diffaugment")?),
        };
        let w = a.width;
        let model = AnimeGanTrainConfig {
            generator: AnimeGanWidths { c32: w, c64: 2 * w, c128: 4 * w, c256: 8 * w },
            discriminator: AnimeDiscriminatorConfig { channels: a.d_channels, n_dis: 3, spectral_norm: !a.no_spectral_norm },
            photos: a.photos.clone(),
            anime,
            vgg,
            feature_layer: a.feature_layer.clone(),
            feature_scale: a.feature_scale,
            init_steps: a.init_steps,
            init_lr: a.init_lr,
            init_pixel_weight: a.init_pixel_weight,
            crop,
            diffaugment,
            // Measured from the anime set when the run starts (--keep-color-cast: zero, through the changes).
            anime_color_offset: None,
            reset_optimizer_after_init: true,
            g_lr: a.g_lr,
            d_lr: a.d_lr,
            // The paper's; the options given (weights, colour cast, scale, superpixels, chroma gain) are applied as
            // recipe changes, the same way as on --resume.
            weights: AnimeGanLossWeights::default(),
            chroma_gain: None,
            photo_scale_min: None,
            superpixel_size: None,
        };
        let adam = AdamParams { lr: a.g_lr, beta1: 0.5, ..AdamParams::default() };
        let image = ImageSpec { size: a.image_size, channels: 3, fit: Fit::CenterCrop };
        let config = a.run.train_config(first_photos, image, a.batch_size, a.steps.unwrap_or(2000), adam);
        (train_animegan(Some((model, config)), &out, &device, a.run.control(None)?, eval, a.recipe_changes())?, out)
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
