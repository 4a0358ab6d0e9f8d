//! The AnimeGANv2 training recipe (Chen et al. 2019/2020, TachibanaYoshino/AnimeGANv2 `AnimeGANv2.py`) as a
//! task of the shared trainer. Three data streams: photos, anime pictures, and the anime pictures with their
//! edges smoothed (made once into the run folder at the training size, see `data::edge_smooth`). The first
//! `init_steps` train the generator on the content loss alone (reconstruction, at `init_lr`, with its own
//! Adam: the moments are reset when the adversarial phase starts); after that:
//! - D (LSGAN, optionally spectrally normalised): `w_d · (1.2·(D(anime) − 1)² + 1.2·D(G(photo))² +
//!   1.2·D(gray anime)² + 0.8·D(gray smoothed anime)²)`. The smoothed picture is shown in grayscale, as the
//!   reference's loader does: in colour it is nearly the real picture, and labelling it fake leaves D no
//!   answer but ~0.6 everywhere;
//! - G: `w_g · (D(G(photo)) − 1)² + 1.5·content + 2.5·style + 10·colour + 1·TV` (losses in `animegan_losses`),
//!   content and style on caffe-convention VGG16 features (0..255 BGR minus the mean: the scale the paper's
//!   weights were tuned on; the reference used VGG19 conv4_4);
//! - the colour anime pictures D sees have the anime set's mean colour cast removed (the reference's
//!   `data_mean.py`), so G is not rewarded for tinting everything;
//! - optionally, random crops of both streams (D judges rendering, not face shape) and DiffAugment
//!   (translation, cutout) on every picture D sees;
//! - optionally (`structure` weight), White-box Cartoonization's structure loss: VGG-feature L1 between G's
//!   output and its own superpixel-flattened copy (`superpixel`), which rewards flat cel-shaded regions;
//! - Adam β1 0.5, G at 2e-5 and D at 4e-5 (the paper's rates).
//!
//! Each term's gradient norm at G's output is logged beside its value (`loss-terms.csv`): with Adam, the
//! balance of the terms is the balance of their gradients.

use super::animegan_losses::{chroma_l1, color_loss, gram_l1, grayscale3, l1, lsgan, total_variation_mean};
use super::diffaugment::DiffAugment;
use super::superpixel::Slic;
use super::task::{GanTask, StepContext, StepStats};
use super::trainer::{start_or_resume, RunControl, TrainConfig, TrainOptions, TrainSummary, Trainer};
use crate::data::concat::ConcatDataset;
use crate::data::{open_dataset, Dataset, ImageSpec};
use crate::io::checkpoint::Checkpoint;
use crate::models::animegan::{AnimeGanV2, AnimeGanWidths};
use crate::models::animegan_discriminator::{AnimeDiscriminator, AnimeDiscriminatorConfig};
use crate::models::vgg::Vgg;
use crate::nn::bilinear::ResizeConvention;
use crate::nn::init::seeded_var_builder;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const CHECKPOINT_KIND: &str = "animegan";
/// The generator alone, written next to the checkpoint when a run ends: loadable as `animegan:PATH`.
pub const GENERATOR_FILE: &str = "generator.safetensors";

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnimeGanLossWeights {
    pub adversarial_g: f64,
    pub adversarial_d: f64,
    pub content: f64,
    pub style: f64,
    pub color: f64,
    pub tv: f64,
    /// L1 on U and V between photo and stylisation (not in the paper: 0 there).
    #[serde(default)]
    pub chroma: f64,
    /// VGG-feature L1 between the stylisation and its own superpixel-flattened copy (White-box Cartoonization's
    /// structure loss; not in AnimeGAN: 0 there). Rewards flat cel-shaded regions.
    #[serde(default)]
    pub structure: f64,
}

impl Default for AnimeGanLossWeights {
    /// AnimeGANv2's defaults (`g_adv_weight 300, d_adv_weight 300, con 1.5, sty 2.5, color 10, tv 1`).
    fn default() -> Self {
        Self { adversarial_g: 300.0, adversarial_d: 300.0, content: 1.5, style: 2.5, color: 10.0, tv: 1.0, chroma: 0.0, structure: 0.0 }
    }
}

/// Parts of the recipe given for a run: each `Some` replaces the loss weight it names (on `--resume`, the run's
/// stored one, which the next checkpoint then records), and `keep_color_cast` stops removing the anime set's
/// colour cast (a resumed run that drifts toward the complementary tint can be set right without starting over).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AnimeGanRecipeChanges {
    /// Both G's and D's adversarial weight.
    pub adversarial: Option<f64>,
    pub content: Option<f64>,
    pub style: Option<f64>,
    pub color: Option<f64>,
    pub tv: Option<f64>,
    pub chroma: Option<f64>,
    pub structure: Option<f64>,
    pub keep_color_cast: bool,
    pub photo_scale_min: Option<f64>,
    pub superpixel_size: Option<usize>,
    pub chroma_gain: Option<f64>,
}

impl AnimeGanRecipeChanges {
    pub fn applied_to(&self, mut w: AnimeGanLossWeights) -> AnimeGanLossWeights {
        if let Some(v) = self.adversarial {
            (w.adversarial_g, w.adversarial_d) = (v, v);
        }
        for (to, given) in [
            (&mut w.content, self.content),
            (&mut w.style, self.style),
            (&mut w.color, self.color),
            (&mut w.tv, self.tv),
            (&mut w.chroma, self.chroma),
            (&mut w.structure, self.structure),
        ] {
            if let Some(v) = given {
                *to = v;
            }
        }
        w
    }

    fn any(&self) -> bool {
        *self != Self::default()
    }

    fn apply(&self, model: &mut AnimeGanTrainConfig) {
        model.weights = self.applied_to(model.weights);
        if self.keep_color_cast {
            model.anime_color_offset = Some([0.0; 3]);
        }
        if self.photo_scale_min.is_some() {
            model.photo_scale_min = self.photo_scale_min;
        }
        if self.superpixel_size.is_some() {
            model.superpixel_size = self.superpixel_size;
        }
        if self.chroma_gain.is_some() {
            model.chroma_gain = self.chroma_gain;
        }
    }
}

/// The model part of an AnimeGAN run (the checkpoint's `model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnimeGanTrainConfig {
    pub generator: AnimeGanWidths,
    pub discriminator: AnimeDiscriminatorConfig,
    /// Photo folders (one stream: their concatenation).
    pub photos: Vec<PathBuf>,
    pub anime: PathBuf,
    /// VGG16/VGG19 weights for the content and style losses.
    pub vgg: PathBuf,
    /// The VGG layer of both the content and the style loss.
    pub feature_layer: String,
    /// Factor on the VGG features before the content and style losses. The shared VGG16 takes 0..255 caffe
    /// input; 1/(255·0.226) ≈ 0.0174 puts its features on the scale of a torchvision-normalised VGG, which
    /// weakens content (×0.017) and style (×0.0003) against the colour and adversarial terms (see the
    /// `--feature-scale` help for what each balance did).
    #[serde(default = "one")]
    pub feature_scale: f64,
    pub init_steps: u64,
    pub init_lr: f64,
    pub g_lr: f64,
    pub d_lr: f64,
    pub weights: AnimeGanLossWeights,
    /// Weight of an L1 loss between photo and output pixels during the initialisation (0 = the paper's
    /// content-only initialisation). A narrow generator rebuilds structure but not colour from VGG features
    /// alone, and the colour loss's Huber terms on U and V are too flat near 0 to pull the chroma back.
    #[serde(default)]
    pub init_pixel_weight: f64,
    /// Side of the random square crop each training picture is cut to (0: the whole picture).
    #[serde(default)]
    pub crop: usize,
    /// DiffAugment on every picture D sees (absent: none).
    #[serde(default)]
    pub diffaugment: Option<DiffAugment>,
    /// Added to the colour anime pictures (RGB, in [-1, 1] units) so that the set's channel means are equal:
    /// the reference's `data_mean.py`. Measured once when a run starts (absent in older runs: none).
    #[serde(default)]
    pub anime_color_offset: Option<[f32; 3]>,
    /// Photos are shrunk by a random factor in [this, 1] at each step before they are cropped (absent: never),
    /// so that G also learns faces smaller than the training pictures show them (a webcam frame at the camera's
    /// processing size has a face half as tall).
    #[serde(default)]
    pub photo_scale_min: Option<f64>,
    /// Pixels per superpixel of the structure loss (absent: White-box's ~330, made for 256 px scenes; a 64 px
    /// face wants smaller ones).
    #[serde(default)]
    pub superpixel_size: Option<usize>,
    /// Factor on the photo's chroma in the chroma term's target (absent: 1, the photo's own colours).
    #[serde(default)]
    pub chroma_gain: Option<f64>,
    /// Reset G's Adam moments when the adversarial phase starts (the reference's separate initialisation
    /// optimiser). Off in runs made before it existed, so they resume unchanged.
    #[serde(default)]
    pub reset_optimizer_after_init: bool,
}

fn one() -> f64 {
    1.0
}

/// The VGG feature factor the paper's loss weights were tuned for: 1 on caffe-convention features.
pub const CAFFE_FEATURE_SCALE: f64 = 1.0;

impl AnimeGanTrainConfig {
    pub fn validate(&self) -> Result<()> {
        let w = self.generator;
        if [w.c32, w.c64, w.c128, w.c256].contains(&0) {
            bail!("generator widths must be positive, got {w:?}");
        }
        for (name, lr) in [("--init-lr", self.init_lr), ("--g-lr", self.g_lr), ("--d-lr", self.d_lr)] {
            if !(lr > 0.0 && lr.is_finite()) {
                bail!("{name} must be a positive number, not {lr}");
            }
        }
        let w = self.weights;
        for (flag, v) in [
            ("--adversarial-weight (G)", w.adversarial_g),
            ("--adversarial-weight (D)", w.adversarial_d),
            ("--content-weight", w.content),
            ("--style-weight", w.style),
            ("--color-weight", w.color),
            ("--tv-weight", w.tv),
            ("--chroma-weight", w.chroma),
            ("--structure-weight", w.structure),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{flag} must be a finite, non-negative loss weight, not {v}");
            }
        }
        if !(self.init_pixel_weight >= 0.0 && self.init_pixel_weight.is_finite()) {
            bail!("--init-pixel-weight must be finite and non-negative, not {}", self.init_pixel_weight);
        }
        if !(self.feature_scale > 0.0 && self.feature_scale.is_finite()) {
            bail!("--feature-scale must be a positive number, not {}", self.feature_scale);
        }
        if self.photos.is_empty() {
            bail!("--photos: give at least one photo folder");
        }
        // Bounded before anything is built: a run config read on --resume must not allocate without end.
        let w = self.generator;
        if [w.c32, w.c64, w.c128, w.c256, self.discriminator.channels].iter().any(|&c| c > 4096) || self.discriminator.n_dis > 8 {
            bail!("generator widths {w:?} or discriminator {:?} are larger than ganime builds (4096 channels, n_dis 8 at most)", self.discriminator);
        }
        // Upper bounds of the weights: G's ~40 3x3-equivalent convs at its widest width (inverted residual blocks
        // expand by 2); D's 2 n_dis + 1 3x3 convs at most `channels` x 2^(n_dis - 1) wide.
        let widest = [w.c32, w.c64, w.c128, w.c256].into_iter().max().unwrap_or(0) as u128;
        crate::nn::sequential::check_parameters("the AnimeGAN generator", Some(360 * widest * widest))?;
        let d = self.discriminator;
        let d_widest = (d.channels as u128) << d.n_dis.saturating_sub(1);
        crate::nn::sequential::check_parameters("the AnimeGAN discriminator", Some(9 * (2 * d.n_dis as u128 + 1) * d_widest * d_widest))?;
        if let Some(scale) = self.photo_scale_min {
            if !(0.25..=1.0).contains(&scale) {
                bail!("--photo-scale-min must be between 0.25 and 1, not {scale}");
            }
        }
        if let Some(gain) = self.chroma_gain {
            if !(0.25..=4.0).contains(&gain) {
                bail!("--chroma-gain must be between 0.25 and 4, not {gain}");
            }
        }
        if let Some(size) = self.superpixel_size {
            if !(4..=65_536).contains(&size) {
                bail!("--superpixel-size must be between 4 and 65536 pixels, not {size}");
            }
        }
        if self.crop != 0 && self.crop < 16 {
            bail!("--crop must be 0 (whole pictures) or at least 16, not {}", self.crop);
        }
        Ok(())
    }
}

/// Tensors kept from the critic phase for the generator phase of the same step.
struct Pending {
    /// The (cropped) photo batch.
    photo: Tensor,
    /// G(photo) with its graph (after initialisation).
    fake: Option<Tensor>,
    anime_gray: Option<Tensor>,
}

pub struct AnimeGanTask {
    pub config: AnimeGanTrainConfig,
    pub generator: AnimeGanV2,
    g_vars: VarMap,
    discriminator: AnimeDiscriminator,
    d_vars: VarMap,
    vgg: Vgg,
    /// Fixed photos for the sample grid, `[k, 3, S, S]`.
    fixed: Tensor,
    pending: Option<Pending>,
    /// Steps whose log row gets freshly measured gradient norms (every `log_every`-th).
    grad_norm_every: u64,
    /// The last measured gradient norm at G's output of each loss term (order of `LOSS_TERMS`).
    grad_norms: Vec<f64>,
}

/// The weighted loss terms a step reports, in `StepStats::terms` order (then one gradient norm each).
const LOSS_TERMS: [&str; 8] = ["adversarial", "content", "style", "colour", "tv", "chroma", "init_pixel", "structure"];
const GRAD_NORM_TERMS: [&str; 8] =
    ["grad_adversarial", "grad_content", "grad_style", "grad_colour", "grad_tv", "grad_chroma", "grad_init_pixel", "grad_structure"];

impl AnimeGanTask {
    pub fn new(config: &AnimeGanTrainConfig, seed: u64, fixed: Tensor, grad_norm_every: u64, device: &Device) -> Result<Self> {
        let g_vars = VarMap::new();
        let generator = AnimeGanV2::new(config.generator, seeded_var_builder(&g_vars, seed.wrapping_mul(2).wrapping_add(1), DType::F32, device))?;
        let d_vars = VarMap::new();
        let discriminator =
            AnimeDiscriminator::new(config.discriminator, seeded_var_builder(&d_vars, seed.wrapping_mul(2).wrapping_add(2), DType::F32, device))?;
        let vgg = Vgg::load(&config.vgg, &[&config.feature_layer], crate::models::vgg::VggOptions::default(), DType::F32, device)
            .with_context(|| format!("--vgg {}: cannot load the perceptual network", config.vgg.display()))?;
        let grad_norms = vec![f64::NAN; LOSS_TERMS.len()];
        Ok(Self {
            config: config.clone(),
            generator,
            g_vars,
            discriminator,
            d_vars,
            vgg,
            fixed,
            pending: None,
            grad_norm_every: grad_norm_every.max(1),
            grad_norms,
        })
    }

    pub(super) fn generate(&self, photo: &Tensor) -> candle_core::Result<Tensor> {
        self.generator.forward(photo, ResizeConvention::AlignCorners).map_err(candle_core::Error::wrap)
    }

    fn features(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let mut f = self.vgg.features_signed(images, &[&self.config.feature_layer]).map_err(candle_core::Error::wrap)?;
        let f = f.remove(0);
        if self.config.feature_scale == 1.0 {
            Ok(f)
        } else {
            f * self.config.feature_scale
        }
    }

    fn in_init(&self, step: u64) -> bool {
        step < self.config.init_steps
    }

    /// What D is shown of a batch: DiffAugment when the recipe asks for it.
    fn augment(&self, x: &Tensor, ctx: &mut StepContext) -> candle_core::Result<Tensor> {
        match &self.config.diffaugment {
            Some(a) => a.apply(x, ctx.rng),
            None => Ok(x.clone()),
        }
    }

    /// The colour anime batch as D sees it as real: the set's mean colour cast removed.
    fn color_balanced(&self, anime: &Tensor) -> candle_core::Result<Tensor> {
        match self.config.anime_color_offset {
            Some(o) => anime.broadcast_add(&Tensor::from_slice(&o, (1, 3, 1, 1), anime.device())?),
            None => Ok(anime.clone()),
        }
    }

    /// The weighted G terms (order of `LOSS_TERMS`) for the output `fake` of `photo`; `None` during the
    /// initialisation, whose terms are content and pixel L1.
    fn g_terms(
        &self,
        photo: &Tensor,
        photo_features: &Tensor,
        fake: &Tensor,
        anime_gray: Option<&Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<Vec<Tensor>> {
        let w = self.config.weights;
        let zero = Tensor::zeros((), DType::F32, fake.device())?;
        let Some(anime_gray) = anime_gray else {
            let content = (l1(&self.features(fake)?, photo_features)? * w.content)?;
            let pixel = (l1(fake, photo)? * self.config.init_pixel_weight)?;
            return Ok(vec![zero.clone(), content, zero.clone(), zero.clone(), zero.clone(), zero.clone(), pixel, zero]);
        };
        // One VGG pass for the stylisation, its grayscale (content and style) and, with the structure term, its
        // superpixel-flattened copy (a constant target: no gradient flows into it); one for the gray anime.
        let n = fake.dim(0)?;
        let mut inputs = vec![fake.clone(), grayscale3(fake)?];
        if w.structure > 0.0 {
            let default = Slic::default();
            let slic = Slic { pixels_per_segment: self.config.superpixel_size.unwrap_or(default.pixels_per_segment), ..default };
            inputs.push(slic.flatten_batch(fake)?);
        }
        let all = self.features(&Tensor::cat(&inputs, 0)?)?;
        let (fake_features, fake_gray_features) = (all.narrow(0, 0, n)?, all.narrow(0, n, n)?);
        let anime_features = self.features(anime_gray)?.detach();
        let content = (l1(&fake_features, photo_features)? * w.content)?;
        let style = (gram_l1(&fake_gray_features, &anime_features)? * w.style)?;
        let color = (color_loss(photo, fake)? * w.color)?;
        let chroma = if w.chroma > 0.0 { (chroma_l1(photo, fake, self.config.chroma_gain.unwrap_or(1.0))? * w.chroma)? } else { zero.clone() };
        let tv = (total_variation_mean(fake)? * w.tv)?;
        let structure = if w.structure > 0.0 { (l1(&fake_features, &all.narrow(0, 2 * n, n)?.detach())? * w.structure)? } else { zero.clone() };
        let adversarial = (lsgan(&self.discriminator.forward(&self.augment(fake, ctx)?)?, 1.0)? * w.adversarial_g)?;
        Ok(vec![adversarial, content, style, color, tv, chroma, zero, structure])
    }

    /// The norm of each term's gradient at G's output (a detached copy of `fake`, so G is not touched). The
    /// augmentation is drawn from a copy of the run's RNG: the step itself then draws the same one, and the run
    /// does not depend on how often it is measured.
    fn measure_grad_norms(
        &mut self,
        photo: &Tensor,
        photo_features: &Tensor,
        fake: &Tensor,
        anime_gray: Option<&Tensor>,
        ctx: &mut StepContext,
    ) -> candle_core::Result<()> {
        let leaf = Var::from_tensor(&fake.detach())?;
        let mut rng = ctx.rng.clone();
        let mut ctx = StepContext { objective: ctx.objective, labels: ctx.labels, rng: &mut rng, step: ctx.step, device: ctx.device };
        let terms = self.g_terms(photo, photo_features, leaf.as_tensor(), anime_gray, &mut ctx)?;
        self.grad_norms = terms
            .iter()
            .map(|t| {
                let grads = t.backward()?;
                Ok(match grads.get(&leaf) {
                    Some(g) => g.sqr()?.sum_all()?.sqrt()?.to_dtype(DType::F64)?.to_scalar::<f64>()?,
                    None => 0.0,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(())
    }
}

/// A random `size × size` crop of each picture of `[N, C, H, W]` (each its own place, from `rng`).
pub fn random_crops(x: &Tensor, size: usize, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
    let (n, _, h, w) = x.dims4()?;
    if size == 0 || (size >= h && size >= w) {
        return Ok(x.clone());
    }
    let (ch, cw) = (size.min(h), size.min(w));
    let crops = (0..n)
        .map(|i| {
            let (top, left) = (rng.random_range(0..=h - ch), rng.random_range(0..=w - cw));
            x.narrow(0, i, 1)?.narrow(2, top, ch)?.narrow(3, left, cw)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&crops, 0)
}

/// `[N, C, H, W]` shrunk (bilinear) by one random factor in [`min`, 1], its sides rounded to multiples of 4 (at
/// least 16): the generator's down- and upsampling need them.
pub fn random_shrink(x: &Tensor, min: f64, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let scale = rng.random_range(min..=1.0);
    let side = |s: usize| (((s as f64 * scale) / 4.0).round() as usize * 4).clamp(16.min(s), s);
    let (sh, sw) = (side(h), side(w));
    if (sh, sw) == (h, w) {
        return Ok(x.clone());
    }
    crate::nn::bilinear::resize_bilinear(x, sh, sw, ResizeConvention::AlignCorners)
}

fn mean(t: &Tensor) -> candle_core::Result<f64> {
    t.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()
}

/// The grayscale pictures D is shown as fake at one step: (grayscale anime, grayscale edge-smoothed anime).
pub fn discriminator_grays(anime: &Tensor, smoothed: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    Ok((grayscale3(anime)?, grayscale3(smoothed)?))
}

impl GanTask for AnimeGanTask {
    fn groups(&self) -> Vec<(&'static str, &VarMap)> {
        vec![("G", &self.g_vars), ("D", &self.d_vars)]
    }

    fn learning_rate(&self, group: &str, step: u64) -> Option<f64> {
        Some(match group {
            "G" if self.in_init(step) => self.config.init_lr,
            "G" => self.config.g_lr,
            _ => self.config.d_lr,
        })
    }

    fn resets_optimizer(&self, group: &str, step: u64) -> bool {
        self.config.reset_optimizer_after_init && group == "G" && step == self.config.init_steps && step > 0
    }

    fn trains_critic(&self, step: u64) -> bool {
        !self.in_init(step)
    }

    fn d_loss(&mut self, real: &[Tensor], ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let [photo, anime, smoothed] = real else {
            candle_core::bail!("AnimeGAN needs three data streams (photos, anime, smoothed anime), got {}", real.len());
        };
        let crop = self.config.crop;
        let photo = match self.config.photo_scale_min {
            Some(min) => random_crops(&random_shrink(photo, min, ctx.rng)?, crop, ctx.rng)?,
            None => random_crops(photo, crop, ctx.rng)?,
        };
        if self.in_init(ctx.step) {
            self.pending = Some(Pending { photo, fake: None, anime_gray: None });
            return Tensor::zeros((), DType::F32, real[0].device());
        }
        let (anime, smoothed) = (random_crops(anime, crop, ctx.rng)?, random_crops(smoothed, crop, ctx.rng)?);
        let fake = self.generate(&photo)?;
        let (anime_gray, smoothed_gray) = discriminator_grays(&anime, &smoothed)?;
        let seen_anime = self.augment(&self.color_balanced(&anime)?, ctx)?;
        let seen_fake = self.augment(&fake.detach(), ctx)?;
        let seen_gray = self.augment(&anime_gray, ctx)?;
        let seen_smooth = self.augment(&smoothed_gray, ctx)?;
        let d = &self.discriminator;
        let (d_anime, d_fake) = (d.forward(&seen_anime)?, d.forward(&seen_fake)?);
        let (d_gray, d_smooth) = (d.forward(&seen_gray)?, d.forward(&seen_smooth)?);
        stats.real_score = mean(&d_anime)?;
        stats.fake_score = mean(&d_fake)?;
        let loss =
            (((lsgan(&d_anime, 1.0)? * 1.2)? + (lsgan(&d_fake, 0.0)? * 1.2)?)? + ((lsgan(&d_gray, 0.0)? * 1.2)? + (lsgan(&d_smooth, 0.0)? * 0.8)?)?)?;
        // The grays come from the pictures as they are (the reference's loader corrects only the colour copy).
        self.pending = Some(Pending { photo, fake: Some(fake), anime_gray: Some(anime_gray) });
        loss * self.config.weights.adversarial_d
    }

    fn g_loss(&mut self, ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let p = self.pending.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let photo_features = self.features(&p.photo)?.detach();
        let fake = match p.fake {
            Some(f) => f,
            None => self.generate(&p.photo)?,
        };
        if (ctx.step + 1) % self.grad_norm_every == 0 {
            self.measure_grad_norms(&p.photo, &photo_features, &fake, p.anime_gray.as_ref(), ctx)?;
        }
        let terms = self.g_terms(&p.photo, &photo_features, &fake, p.anime_gray.as_ref(), ctx)?;
        // One copy off the device for all terms.
        let mut logged: Vec<f64> = Tensor::stack(&terms, 0)?.to_dtype(DType::F64)?.to_vec1()?;
        logged.extend(&self.grad_norms);
        stats.terms = logged;
        terms.into_iter().try_fold(Tensor::zeros((), DType::F32, fake.device())?, |acc, t| acc + t)
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        LOSS_TERMS.iter().chain(&GRAD_NORM_TERMS).copied().collect()
    }

    /// Pairs of photo and stylisation, two pairs per row.
    fn samples(&self) -> candle_core::Result<Tensor> {
        let y = self.generate(&self.fixed)?;
        super::task::interleave(&[&self.fixed, &y])
    }

    fn sample_columns(&self) -> Option<usize> {
        Some(4)
    }
}

/// The run folder's cache of edge-smoothed anime pictures at the training size.
pub fn smoothed_cache(out: &Path, size: usize) -> PathBuf {
    out.join(format!("anime-smoothed-{size}px"))
}

/// What to add to each RGB channel of the anime pictures (in [-1, 1] units) so that the set's three channel
/// means become their common mean (the reference's `data_mean.py`: `mean(B, G, R) − channel mean`).
pub fn color_cast_offset(anime: &dyn Dataset, spec: &ImageSpec) -> Result<[f32; 3]> {
    anyhow::ensure!(spec.channels == 3, "the colour-cast measurement needs RGB pictures");
    let plane = spec.size * spec.size;
    let mut sums = [0f64; 3];
    for i in 0..anime.len() {
        let sample = anime.load(i, spec)?;
        for (c, sum) in sums.iter_mut().enumerate() {
            *sum += sample[c * plane..(c + 1) * plane].iter().map(|&v| v as f64).sum::<f64>() / plane as f64;
        }
    }
    let means = sums.map(|s| s / anime.len().max(1) as f64);
    let gray = means.iter().sum::<f64>() / 3.0;
    Ok(means.map(|m| (gray - m) as f32))
}

/// Starts an AnimeGAN run in `out` (`start` = model and trainer config; `config.data` is the first photo
/// folder), or resumes the one there. `total_steps` may raise the target on resume; `changes` alter the recipe
/// (of the new or the resumed run). `eval`: measure the
/// stylised photos against the anime set every N steps (`metrics.csv`) and keep the best checkpoint
/// (`trainer::BEST_CHECKPOINT`); what it leaves out, a resumed run takes from the measurement it stored.
pub fn train_animegan(
    start: Option<(AnimeGanTrainConfig, TrainConfig)>,
    out: &Path,
    device: &Device,
    run: RunControl,
    eval: crate::metrics::TrainingEvalRequest,
    changes: AnimeGanRecipeChanges,
) -> Result<TrainSummary> {
    let (mut model, config, ckpt) = start_or_resume(start, out, CHECKPOINT_KIND, "an AnimeGAN run", device)?;
    if changes.any() {
        changes.apply(&mut model);
        if ckpt.is_some() && !run.quiet {
            eprintln!(
                "from here on: loss weights {:?}, anime colour offset {:?}, photo scale min {:?}, superpixel size {:?}, chroma gain {:?}",
                model.weights, model.anime_color_offset, model.photo_scale_min, model.superpixel_size, model.chroma_gain
            );
        }
    }
    model.validate()?;
    let photos = ConcatDataset::open(&model.photos, "--photos")?;
    let anime = open_dataset(&model.anime).with_context(|| format!("--anime {}", model.anime.display()))?;
    if !run.quiet {
        eprintln!("edge-smoothing {} anime pictures (once per run folder) ...", anime.len());
    }
    let cache = crate::data::edge_smooth::cache_smoothed(&model.anime, &smoothed_cache(out, config.image.size), config.image.size as u32)?;
    let smoothed = open_dataset(&cache)?;
    if ckpt.is_none() && model.anime_color_offset.is_none() {
        model.anime_color_offset = Some(color_cast_offset(anime.as_ref(), &config.image)?);
    }
    // Up to 8 photos spread over the set, whole (centre-cropped), for the sample grid.
    let fixed = crate::data::spread_samples(photos.as_ref(), &config.image, 8, device)?;
    let task = AnimeGanTask::new(&model, config.seed, fixed, config.log_every, device)?;
    let options = TrainOptions { objective: super::ObjectiveSpec::Lsgan, ..TrainOptions::default() };
    let mut trainer =
        Trainer::new_or_resumed(task, options, CHECKPOINT_KIND, serde_json::to_value(&model)?, config, ckpt.as_ref(), out, device, run)?;
    if let Some(eval) = trainer.set_evaluation(eval)? {
        let monitor = super::monitor::animegan_monitor(photos.as_ref(), anime.as_ref(), &trainer.config().image, &model.vgg, eval, device)?;
        trainer = trainer.with_monitor(monitor);
    }
    if ckpt.is_some() && changes.any() {
        trainer = trainer.with_model(serde_json::to_value(&model)?);
    }
    if !run.quiet {
        eprintln!("training AnimeGAN on photos = {}, anime = {} -> {}", photos.describe(), anime.describe(), out.display());
    }
    let summary = trainer.run_streams(vec![photos, anime, smoothed])?;
    // The generator alone, from the checkpoint the run just wrote, in the PyTorch port's layout.
    let ckpt = Checkpoint::read(out, &Device::Cpu)?;
    crate::generate::export_generator(&ckpt, &out.join(GENERATOR_FILE), DType::F32, "", false)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn channels_equal(x: &Tensor) -> bool {
        let c = |i| x.narrow(1, i, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        c(0) == c(1) && c(1) == c(2)
    }

    /// A run config read on `--resume` is bounded before anything is built.
    #[test]
    fn oversized_run_configs_are_refused() {
        let config = |c32: usize| AnimeGanTrainConfig {
            generator: AnimeGanWidths { c32, c64: 16, c128: 32, c256: 64 },
            discriminator: AnimeDiscriminatorConfig::default(),
            photos: vec![PathBuf::from("p")],
            anime: PathBuf::from("a"),
            vgg: PathBuf::from("v"),
            feature_layer: "conv4_1".into(),
            feature_scale: 1.0,
            init_steps: 1,
            init_lr: 1e-4,
            g_lr: 1e-4,
            d_lr: 1e-4,
            weights: AnimeGanLossWeights::default(),
            init_pixel_weight: 0.0,
            crop: 0,
            diffaugment: None,
            anime_color_offset: None,
            photo_scale_min: None,
            superpixel_size: None,
            chroma_gain: None,
            reset_optimizer_after_init: true,
        };
        assert!(config(8).validate().is_ok());
        let err = config(1_000_000).validate().unwrap_err().to_string();
        assert!(err.contains("larger than ganime builds"), "{err}");
        // Each width within its bound, the network still far too big; the released widths pass.
        let err = config(4096).validate().unwrap_err().to_string();
        assert!(err.contains("AnimeGAN generator would hold"), "{err}");
        let mut released = config(32);
        released.generator = AnimeGanWidths::RELEASED;
        assert!(released.validate().is_ok());
        released.discriminator = AnimeDiscriminatorConfig { channels: 4096, n_dis: 8, spectral_norm: false };
        assert!(released.validate().unwrap_err().to_string().contains("AnimeGAN discriminator would hold"));
    }

    /// D is shown the edge-smoothed anime in grayscale (as the reference's loader makes it), never in colour.
    #[test]
    fn smoothed_anime_reaches_d_in_grayscale() -> Result<()> {
        let anime = crate::nn::gradcheck::seeded(&[2, 3, 8, 8], 1)?.to_dtype(DType::F32)?;
        let smoothed = crate::nn::gradcheck::seeded(&[2, 3, 8, 8], 2)?.to_dtype(DType::F32)?;
        let (gray, smooth_gray) = discriminator_grays(&anime, &smoothed)?;
        assert!(channels_equal(&gray) && channels_equal(&smooth_gray));
        assert!(!channels_equal(&smoothed));
        assert_eq!(crate::nn::gradcheck::max_diff(&smooth_gray, &grayscale3(&smoothed)?), 0.0);
        Ok(())
    }

    /// The colour-cast offset makes the channel means of the set equal, keeping their average.
    #[test]
    fn color_cast_offset_balances_the_channel_means() -> Result<()> {
        let dir = tempfile::tempdir()?;
        for (i, rgb) in [[200u8, 120, 90], [180, 100, 60], [220, 150, 100]].iter().enumerate() {
            image::RgbImage::from_pixel(6, 6, image::Rgb(*rgb)).save(dir.path().join(format!("{i}.png")))?;
        }
        let folder = crate::data::ImageFolder::open(dir.path())?;
        let spec = ImageSpec { size: 4, channels: 3, fit: crate::data::Fit::CenterCrop };
        let offset = color_cast_offset(&folder, &spec)?;
        let mean = |c: usize| [200.0, 180.0, 220.0, 120.0, 100.0, 150.0, 90.0, 60.0, 100.0][c * 3..c * 3 + 3].iter().sum::<f64>() / 3.0 / 127.5 - 1.0;
        let corrected: Vec<f64> = (0..3).map(|c| mean(c) + offset[c] as f64).collect();
        assert!((corrected[0] - corrected[1]).abs() < 1e-5 && (corrected[1] - corrected[2]).abs() < 1e-5, "{corrected:?}");
        assert!((corrected[0] - (mean(0) + mean(1) + mean(2)) / 3.0).abs() < 1e-5);
        assert!(offset[0] < 0.0 && offset[2] > 0.0, "a red-orange set is pushed toward blue: {offset:?}");
        Ok(())
    }

    /// Crops are cut where the RNG says, each picture its own place, and the whole picture passes unchanged.
    #[test]
    fn random_crops_of_each_picture() -> Result<()> {
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 10.0 * 10.0, &Device::Cpu)?.reshape((2, 3, 10, 10))?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let y = random_crops(&x, 4, &mut rng)?;
        assert_eq!(y.dims(), &[2, 3, 4, 4]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for i in 0..2 {
            let (top, left) = (rng.random_range(0..=6usize), rng.random_range(0..=6usize));
            let want = x.narrow(0, i, 1)?.narrow(2, top, 4)?.narrow(3, left, 4)?;
            assert_eq!(crate::nn::gradcheck::max_diff(&y.narrow(0, i, 1)?, &want), 0.0);
        }
        assert_eq!(random_crops(&x, 0, &mut rng)?.dims(), x.dims());
        Ok(())
    }

    /// Shrinking draws one factor per batch, keeps sides multiples of 4 and at least 16, and leaves a picture that
    /// would not change as it is.
    #[test]
    fn random_shrink_sizes() -> Result<()> {
        let x = Tensor::ones((2, 3, 128, 96), DType::F32, &Device::Cpu)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let y = random_shrink(&x, 0.5, &mut rng)?;
            let (_, _, h, w) = y.dims4()?;
            assert!(h % 4 == 0 && w % 4 == 0 && (64..=128).contains(&h) && (48..=96).contains(&w), "{h}x{w}");
            assert!(crate::nn::gradcheck::max_diff(&y, &Tensor::ones_like(&y)?) < 1e-6);
            seen.insert(h);
        }
        assert!(seen.len() > 5, "sizes drawn: {seen:?}");
        assert_eq!(random_shrink(&x, 1.0, &mut rng)?.dims(), x.dims());
        Ok(())
    }
}
