//! The AnimeGANv2 training recipe (Chen et al. 2019/2020, TachibanaYoshino/AnimeGANv2 `AnimeGANv2.py`) as a
//! task of the shared trainer. Three data streams: photos, anime pictures, and the anime pictures with their
//! edges smoothed (made once into the run folder, see `data::edge_smooth`). The first `init_steps` train the
//! generator on the content loss alone (reconstruction, at `init_lr`); after that:
//! - D (LSGAN): `w_d · (1.2·(D(anime) − 1)² + 1.2·D(G(photo))² + 1.2·D(gray anime)² + 0.8·D(smoothed anime)²)`;
//! - G: `w_g · (D(G(photo)) − 1)² + 1.5·content + 2.5·style + 10·colour + 1·TV` (losses in `animegan_losses`),
//!   content and style on VGG16 features (the shared ImageNet VGG16; the reference used VGG19 conv4_4);
//! - Adam β1 0.5, G at 2e-5 and D at 4e-5 (the paper's rates).

use super::animegan_losses::{chroma_l1, color_loss, gram_l1, grayscale3, l1, lsgan, total_variation_mean};
use super::checkpoint::Checkpoint;
use super::task::{GanTask, StepContext, StepStats};
use super::trainer::{checkpoint_options, TrainConfig, TrainOptions, TrainSummary, Trainer};
use crate::data::concat::ConcatDataset;
use crate::data::{open_dataset, Dataset, Fit, ImageSpec};
use crate::models::animegan::{AnimeGanV2, AnimeGanWidths};
use crate::models::animegan_discriminator::{AnimeDiscriminator, AnimeDiscriminatorConfig};
use crate::models::vgg::Vgg;
use crate::nn::bilinear::ResizeConvention;
use crate::nn::init::seeded_var_builder;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
}

impl Default for AnimeGanLossWeights {
    /// AnimeGANv2's defaults (`g_adv_weight 300, d_adv_weight 300, con 1.5, sty 2.5, color 10, tv 1`).
    fn default() -> Self {
        Self { adversarial_g: 300.0, adversarial_d: 300.0, content: 1.5, style: 2.5, color: 10.0, tv: 1.0, chroma: 0.0 }
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
}

fn one() -> f64 {
    1.0
}

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
        if [w.adversarial_g, w.adversarial_d, w.content, w.style, w.color, w.tv, w.chroma].iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            bail!("loss weights must be finite and non-negative, got {w:?}");
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
        Ok(())
    }
}

/// Tensors kept from the critic phase for the generator phase of the same step.
struct Pending {
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
}

impl AnimeGanTask {
    pub fn new(config: &AnimeGanTrainConfig, seed: u64, fixed: Tensor, device: &Device) -> Result<Self> {
        let g_vars = VarMap::new();
        let generator = AnimeGanV2::new(config.generator, seeded_var_builder(&g_vars, seed.wrapping_mul(2).wrapping_add(1), DType::F32, device))?;
        let d_vars = VarMap::new();
        let discriminator = AnimeDiscriminator::new(config.discriminator, seeded_var_builder(&d_vars, seed.wrapping_mul(2).wrapping_add(2), DType::F32, device))?;
        let vgg = Vgg::load(&config.vgg, &[&config.feature_layer], crate::models::vgg::VggOptions::default(), DType::F32, device)
            .with_context(|| format!("--vgg {}: cannot load the perceptual network", config.vgg.display()))?;
        Ok(Self { config: config.clone(), generator, g_vars, discriminator, d_vars, vgg, fixed, pending: None })
    }

    fn generate(&self, photo: &Tensor) -> candle_core::Result<Tensor> {
        self.generator.forward(photo, ResizeConvention::AlignCorners).map_err(candle_core::Error::wrap)
    }

    fn features(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let mut f = self.vgg.features_signed(images, &[&self.config.feature_layer]).map_err(candle_core::Error::wrap)?;
        let f = f.remove(0);
        if self.config.feature_scale == 1.0 { Ok(f) } else { f * self.config.feature_scale }
    }

    fn in_init(&self, step: u64) -> bool {
        step < self.config.init_steps
    }
}

fn mean(t: &Tensor) -> candle_core::Result<f64> {
    t.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()
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

    fn trains_critic(&self, step: u64) -> bool {
        !self.in_init(step)
    }

    fn d_loss(&mut self, real: &[Tensor], ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let [photo, anime, smoothed] = real else {
            candle_core::bail!("AnimeGAN needs three data streams (photos, anime, smoothed anime), got {}", real.len());
        };
        if self.in_init(ctx.step) {
            self.pending = Some(Pending { photo: photo.clone(), fake: None, anime_gray: None });
            return Tensor::zeros((), DType::F32, photo.device());
        }
        let fake = self.generate(photo)?;
        let anime_gray = grayscale3(anime)?;
        let d = &self.discriminator;
        let (d_anime, d_fake) = (d.forward(anime)?, d.forward(&fake.detach())?);
        let (d_gray, d_smooth) = (d.forward(&anime_gray)?, d.forward(smoothed)?);
        stats.real_score = mean(&d_anime)?;
        stats.fake_score = mean(&d_fake)?;
        let loss = (((lsgan(&d_anime, 1.0)? * 1.2)? + (lsgan(&d_fake, 0.0)? * 1.2)?)? + ((lsgan(&d_gray, 0.0)? * 1.2)? + (lsgan(&d_smooth, 0.0)? * 0.8)?)?)?;
        self.pending = Some(Pending { photo: photo.clone(), fake: Some(fake), anime_gray: Some(anime_gray) });
        loss * self.config.weights.adversarial_d
    }

    fn g_loss(&mut self, _ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let p = self.pending.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let w = self.config.weights;
        let photo_features = self.features(&p.photo)?.detach();
        let (Some(fake), Some(anime_gray)) = (p.fake, p.anime_gray) else {
            // Initialisation: reconstruct the photo's content (and, if asked, its pixels).
            let fake = self.generate(&p.photo)?;
            let content = (l1(&self.features(&fake)?, &photo_features)? * w.content)?;
            let pixel = (l1(&fake, &p.photo)? * self.config.init_pixel_weight)?;
            let zero = Tensor::zeros((), DType::F32, fake.device())?;
            stats.terms = Tensor::stack(&[&zero, &content, &zero, &zero, &zero, &zero, &pixel], 0)?.to_dtype(DType::F64)?.to_vec1()?;
            return content + pixel;
        };
        // One VGG pass for the stylisation and its grayscale (content and style), one for the gray anime.
        let n = fake.dim(0)?;
        let both = self.features(&Tensor::cat(&[&fake, &grayscale3(&fake)?], 0)?)?;
        let (fake_features, fake_gray_features) = (both.narrow(0, 0, n)?, both.narrow(0, n, n)?);
        let anime_features = self.features(&anime_gray)?.detach();
        let content = l1(&fake_features, &photo_features)?;
        let style = gram_l1(&fake_gray_features, &anime_features)?;
        let color = color_loss(&p.photo, &fake)?;
        let zero = Tensor::zeros((), DType::F32, fake.device())?;
        let chroma = if w.chroma > 0.0 { (chroma_l1(&p.photo, &fake)? * w.chroma)? } else { zero.clone() };
        let tv = total_variation_mean(&fake)?;
        let adversarial = lsgan(&self.discriminator.forward(&fake)?, 1.0)?;
        let (content, style, color, tv, adversarial) = ((content * w.content)?, (style * w.style)?, (color * w.color)?, (tv * w.tv)?, (adversarial * w.adversarial_g)?);
        // One copy off the device for all terms.
        stats.terms = Tensor::stack(&[&adversarial, &content, &style, &color, &tv, &chroma, &zero], 0)?.to_dtype(DType::F64)?.to_vec1()?;
        ((content + style)? + ((color + tv)? + chroma)?)? + adversarial
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["adversarial", "content", "style", "colour", "tv", "chroma", "init_pixel"]
    }

    /// Pairs of photo and stylisation, two pairs per row.
    fn samples(&self) -> candle_core::Result<Tensor> {
        let y = self.generate(&self.fixed)?;
        let pairs = (0..self.fixed.dim(0)?).map(|i| Tensor::cat(&[self.fixed.narrow(0, i, 1)?, y.narrow(0, i, 1)?], 0)).collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&pairs, 0)
    }

    fn sample_columns(&self) -> Option<usize> {
        Some(4)
    }
}

/// Up to 8 photos spread over the photo set (centre-cropped) for the sample grid.
fn fixed_photos(photos: &Arc<dyn Dataset>, size: usize, device: &Device) -> Result<Tensor> {
    let spec = ImageSpec { size, channels: 3, fit: Fit::CenterCrop };
    let k = photos.len().min(8);
    let mut v = Vec::with_capacity(k * spec.sample_len());
    for i in 0..k {
        v.extend(photos.load(i * photos.len() / k, &spec)?);
    }
    Ok(Tensor::from_vec(v, (k, 3, size, size), device)?)
}

/// The run folder's cache of edge-smoothed anime pictures.
pub fn smoothed_cache(out: &Path) -> PathBuf {
    out.join("anime-smoothed")
}

/// Starts an AnimeGAN run in `out` (`start` = model and trainer config; `config.data` is the first photo
/// folder), or resumes the one there. `total_steps` may raise the target on resume.
pub fn train_animegan(start: Option<(AnimeGanTrainConfig, TrainConfig)>, out: &Path, total_steps: Option<u64>, device: &Device, quiet: bool, time_limit: Option<std::time::Duration>) -> Result<TrainSummary> {
    let (model, config, ckpt) = match start {
        Some((m, c)) => (m, c, None),
        None => {
            let ckpt = Checkpoint::read(out, device)?;
            if ckpt.header.kind != CHECKPOINT_KIND {
                bail!("{} is a `{}` checkpoint, not an AnimeGAN one", ckpt.path.display(), ckpt.header.kind);
            }
            let model: AnimeGanTrainConfig = serde_json::from_value(ckpt.header.model.clone()).with_context(|| format!("{}: malformed AnimeGAN config", ckpt.path.display()))?;
            let state = ckpt.header.state.as_ref().context("checkpoint has no training state")?;
            let config: TrainConfig = serde_json::from_value(state["config"].clone()).with_context(|| format!("{}: malformed training config", ckpt.path.display()))?;
            (model, config, Some(ckpt))
        }
    };
    model.validate()?;
    let photos: Vec<Arc<dyn Dataset>> = model.photos.iter().map(|p| open_dataset(p).with_context(|| format!("--photos {}", p.display()))).collect::<Result<_>>()?;
    let photos: Arc<dyn Dataset> = Arc::new(ConcatDataset::new(photos));
    let anime = open_dataset(&model.anime).with_context(|| format!("--anime {}", model.anime.display()))?;
    if !quiet {
        eprintln!("edge-smoothing {} anime pictures (once per run folder) ...", anime.len());
    }
    let cache = crate::data::edge_smooth::cache_smoothed(&model.anime, &smoothed_cache(out))?;
    let smoothed = open_dataset(&cache)?;
    let fixed = fixed_photos(&photos, config.image.size, device)?;
    let task = AnimeGanTask::new(&model, config.seed, fixed, device)?;
    let options = TrainOptions { objective: super::ObjectiveSpec::Lsgan, ..TrainOptions::default() };
    let mut trainer = match &ckpt {
        None => Trainer::new(task, options.objective.build(), CHECKPOINT_KIND, serde_json::to_value(&model)?, config, out, device)?.with_options(options)?,
        Some(ckpt) => Trainer::resume(task, checkpoint_options(ckpt)?.objective.build(), ckpt, out, device)?,
    };
    if let Some(steps) = total_steps {
        trainer.set_total_steps(steps);
    }
    if !quiet {
        eprintln!("training AnimeGAN on photos = {}, anime = {} -> {}", photos.describe(), anime.describe(), out.display());
    }
    trainer = trainer.quiet(quiet).time_limit(time_limit);
    let summary = trainer.run_streams(vec![photos, anime, smoothed])?;
    // The generator alone, from the checkpoint the run just wrote, in the PyTorch port's layout.
    let ckpt = Checkpoint::read(out, &Device::Cpu)?;
    crate::generate::export_generator(&ckpt, &out.join(GENERATOR_FILE), DType::F32, "", false)?;
    Ok(summary)
}
