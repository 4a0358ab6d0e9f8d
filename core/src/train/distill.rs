//! Distillation: any filter ganime can open (the teacher: a built-in name or `KIND:PATH`) becomes a slim,
//! real-time network (the student: an AnimeGANv2 generator or a fast-neural-style TransformerNet) trained to
//! reproduce it on a folder of photos or frames.
//!
//! The task runs in the shared trainer (checkpoints, `--resume`, `--max-minutes`, samples, logs), with one
//! optimiser group, `G`, and no critic. Each step the teacher stylises the step's photo batch (each picture
//! as it is, on the CPU), and the student learns `pixel · L1(student, teacher) + feature · L1` between their
//! VGG16 features (caffe convention, divided by 255 so the term is on the pixel term's scale): the pixel
//! term keeps colours and PSNR, the feature term keeps edges and texture sharp where L1 alone blurs them.
//! At the end, [`fidelity`] measures the student against the teacher on pictures it never trained on.

use super::animegan_losses::l1;
use super::task::{GanTask, StepContext, StepStats};
use super::trainer::{start_or_resume, RunControl, TrainConfig, TrainOptions, TrainSummary, Trainer};
use crate::data::concat::ConcatDataset;
use crate::data::{Fit, ImageFolder, ImageSpec};
use crate::filter::Filter;
use crate::io::checkpoint::Checkpoint;
use crate::io::image::{image_to_tensor, tensor_to_images};
use crate::models::animegan::{AnimeGanV2, AnimeGanWidths};
use crate::models::tf_transformer_net::{narrowed, TfTransformerNet, TfTransformerNetConfig};
use crate::models::transformer_net::{TransformerNet, TransformerNetConfig};
use crate::models::vgg::Vgg;
use crate::nn::bilinear::ResizeConvention;
use crate::nn::init::seeded_var_builder;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT_KIND: &str = "distill";
/// The student alone, written next to the checkpoint when a run ends: loadable as a filter
/// ([`StudentConfig::filter_spec`]: `animegan:PATH`, `style:PATH` or `tfstyle:PATH`).
pub const STUDENT_FILE: &str = "student.safetensors";
/// Caffe-convention VGG features are on a 0..255 scale; this brings their L1 to the pixel term's.
const FEATURE_SCALE: f64 = 1.0 / 255.0;

/// The student network. Stored untagged: runs from before the TransformerNet student hold the AnimeGAN widths
/// alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StudentConfig {
    /// An AnimeGANv2 generator (the architecture of the anime filters).
    AnimeGan(AnimeGanWidths),
    /// A TensorFlow fast-style transformer (`matta`'s own architecture: zero padding, transposed convs, a tanh
    /// output), stored under its own key so that it is not read as the TransformerNet's same-named widths.
    TfTransformerNet { tf_transformer_net: TfTransformerNetConfig },
    /// A pytorch/examples TransformerNet (the architecture of the `style:` filters).
    TransformerNet(TransformerNetConfig),
}

impl StudentConfig {
    /// The `stylize --filter` spec that opens the exported student file `path`.
    pub fn filter_spec(&self, path: &Path) -> String {
        match self {
            StudentConfig::AnimeGan(_) => format!("animegan:{}", path.display()),
            StudentConfig::TransformerNet(_) => format!("style:{}", path.display()),
            StudentConfig::TfTransformerNet { .. } => format!("tfstyle:{}", path.display()),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            StudentConfig::AnimeGan(_) => "an AnimeGANv2 student",
            StudentConfig::TransformerNet(_) => "a TransformerNet student",
            StudentConfig::TfTransformerNet { .. } => "a TensorFlow fast-style transformer student",
        }
    }
}

/// The student as trained: pictures in [-1, 1] in and out.
pub enum Student {
    AnimeGan(AnimeGanV2),
    TransformerNet(TransformerNet),
    TfTransformerNet(TfTransformerNet),
}

impl Student {
    pub fn new(config: &StudentConfig, vb: candle_nn::VarBuilder) -> Result<Self> {
        Ok(match config {
            StudentConfig::AnimeGan(w) => Student::AnimeGan(AnimeGanV2::new(*w, vb)?),
            StudentConfig::TransformerNet(c) => Student::TransformerNet(TransformerNet::new(c, vb)?),
            StudentConfig::TfTransformerNet { tf_transformer_net } => Student::TfTransformerNet(TfTransformerNet::new(tf_transformer_net, vb)?),
        })
    }

    /// `[N, 3, H, W]` in [-1, 1] -> the same. The style networks work on 0..255 pixels, as their filters feed them.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let pixels = || (x + 1.0)? * 127.5;
        match self {
            Student::AnimeGan(g) => g.forward(x, ResizeConvention::AlignCorners).map_err(candle_core::Error::wrap),
            Student::TransformerNet(net) => net.forward(&pixels()?).map_err(candle_core::Error::wrap)?.affine(1.0 / 127.5, -1.0),
            Student::TfTransformerNet(net) => net.forward(&pixels()?).map_err(candle_core::Error::wrap)?.affine(1.0 / 127.5, -1.0),
        }
    }
}

/// The model part of a distillation run (the checkpoint's `model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistillConfig {
    /// The filter spec of the teacher, as `stylize --filter` takes it (without processing options).
    pub teacher: String,
    pub student: StudentConfig,
    /// Photo folders the student trains on (one stream: their concatenation).
    pub photos: Vec<PathBuf>,
    /// VGG16/VGG19 weights for the feature term.
    pub vgg: PathBuf,
    pub feature_layer: String,
    pub pixel_weight: f64,
    pub feature_weight: f64,
    /// The student starts as the teacher cut to the student's widths ([`narrowed`]) instead of at random: for a
    /// TensorFlow fast-style student of a teacher of that architecture (`matta`).
    #[serde(default)]
    pub student_from_teacher: bool,
}

impl DistillConfig {
    pub fn validate(&self) -> Result<()> {
        let positive = match &self.student {
            StudentConfig::AnimeGan(w) => ![w.c32, w.c64, w.c128, w.c256].contains(&0),
            StudentConfig::TransformerNet(c) => !c.widths.contains(&0) && c.residual_blocks > 0,
            StudentConfig::TfTransformerNet { tf_transformer_net: c } => !c.widths.contains(&0) && c.residual_blocks > 0,
        };
        if !positive {
            bail!("student widths and blocks must be positive, got {:?}", self.student);
        }
        for (name, v) in [("--pixel-weight", self.pixel_weight), ("--feature-weight", self.feature_weight)] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} must be finite and non-negative, not {v}");
            }
        }
        if self.pixel_weight == 0.0 && self.feature_weight == 0.0 {
            bail!("--pixel-weight and --feature-weight are both 0: the student would learn nothing");
        }
        if self.photos.is_empty() {
            bail!("--photos: give at least one photo folder");
        }
        Ok(())
    }
}

/// The teacher's output for each picture of a batch `[N, 3, H, W]` in [-1, 1] (same shape, no graph).
pub fn teacher_outputs(teacher: &dyn Filter, photos: &Tensor) -> candle_core::Result<Tensor> {
    let outputs = tensor_to_images(photos)
        .map_err(candle_core::Error::wrap)?
        .iter()
        .map(|img| {
            let y = teacher.apply(img).map_err(candle_core::Error::wrap)?;
            image_to_tensor(&y, photos.device()).map_err(candle_core::Error::wrap)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&outputs, 0)
}

/// Most bytes of teacher outputs [`TeacherCache`] keeps (f32 tensors): 512 MiB, a few thousand 120 px pictures.
const TEACHER_CACHE_BYTES: usize = 512 << 20;

/// The teacher's outputs for pictures it has seen, keyed by a hash of the picture's values: a distillation set
/// of a few hundred pictures comes back every epoch (each also flipped), and the teacher is the heavy network
/// (matta is ~40 % of a step at 120 px). The teacher is deterministic, so cached and fresh outputs are the same
/// and a resumed run stays exact. Full at [`TEACHER_CACHE_BYTES`]: later pictures are computed every time.
#[derive(Default)]
struct TeacherCache {
    outputs: std::collections::HashMap<u64, Tensor>,
    bytes: usize,
}

impl TeacherCache {
    fn key(picture: &Tensor) -> candle_core::Result<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        picture.dims().hash(&mut h);
        for v in picture.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()? {
            v.to_bits().hash(&mut h);
        }
        Ok(h.finish())
    }

    /// The teacher's output for each picture of `photos [N, 3, H, W]` (in [-1, 1]), from the cache where it can.
    fn outputs(&mut self, teacher: &dyn Filter, photos: &Tensor) -> candle_core::Result<Tensor> {
        let outputs = (0..photos.dim(0)?)
            .map(|i| {
                let picture = photos.narrow(0, i, 1)?;
                let key = Self::key(&picture)?;
                if let Some(y) = self.outputs.get(&key) {
                    return y.to_device(photos.device());
                }
                let y = teacher_outputs(teacher, &picture)?;
                let size = y.elem_count() * 4;
                if self.bytes + size <= TEACHER_CACHE_BYTES {
                    // Kept in host memory, whatever device the student trains on.
                    self.bytes += size;
                    self.outputs.insert(key, y.to_device(&Device::Cpu)?);
                }
                Ok(y)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&outputs, 0)
    }
}

pub struct DistillTask {
    pub config: DistillConfig,
    teacher: Box<dyn Filter>,
    cache: TeacherCache,
    pub student: Student,
    vars: VarMap,
    vgg: Vgg,
    /// Fixed photos for the sample grid and their teacher outputs.
    fixed: (Tensor, Tensor),
    pending: Option<Tensor>,
}

impl DistillTask {
    pub fn new(config: &DistillConfig, seed: u64, fixed: Tensor, device: &Device) -> Result<Self> {
        let teacher = crate::filters::open(&config.teacher).with_context(|| format!("--teacher {}", config.teacher))?;
        let mut vars = VarMap::new();
        let student = Student::new(&config.student, seeded_var_builder(&vars, seed.wrapping_mul(2).wrapping_add(1), DType::F32, device))?;
        if config.student_from_teacher {
            // On --resume the checkpoint's weights replace these, as they replace a random start.
            let StudentConfig::TfTransformerNet { tf_transformer_net } = &config.student else {
                bail!("--student-from-teacher needs a TensorFlow fast-style student (--student tf-transformer-net)");
            };
            let Some(weights) = crate::filters::tf_style::tf_style_weights(&config.teacher)? else {
                bail!(
                    "--student-from-teacher: the teacher {} is not a TensorFlow fast-style transformer (`matta`, `matta-live` or `tfstyle:PATH`)",
                    config.teacher
                );
            };
            let cut = narrowed(&weights, tf_transformer_net, &config.teacher)
                .context("--student-from-teacher: the student (--width, --residual-blocks) must fit inside the teacher")?;
            for (key, value) in cut {
                vars.set_one(&key, value.to_device(device)?).with_context(|| format!("student variable {key}"))?;
            }
        }
        let vgg = Vgg::load(&config.vgg, &[&config.feature_layer], crate::models::vgg::VggOptions::default(), DType::F32, device)
            .with_context(|| format!("--vgg {}: cannot load the perceptual network", config.vgg.display()))?;
        let fixed_teacher = teacher_outputs(teacher.as_ref(), &fixed)?;
        Ok(Self { config: config.clone(), teacher, cache: TeacherCache::default(), student, vars, vgg, fixed: (fixed, fixed_teacher), pending: None })
    }

    fn features(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        let mut f = self.vgg.features_signed(images, &[&self.config.feature_layer]).map_err(candle_core::Error::wrap)?;
        f.remove(0) * FEATURE_SCALE
    }
}

impl GanTask for DistillTask {
    fn groups(&self) -> Vec<(&'static str, &VarMap)> {
        vec![("G", &self.vars)]
    }

    fn critic_groups(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn trains_critic(&self, _step: u64) -> bool {
        false
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["pixel", "feature"]
    }

    /// No critic: keeps the batch for the student's step.
    fn d_loss(&mut self, real: &[Tensor], _ctx: &mut StepContext, _stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let photo = real.first().ok_or_else(|| candle_core::Error::Msg("distillation needs a photo stream".into()))?;
        self.pending = Some(photo.clone());
        Tensor::zeros((), DType::F32, photo.device())
    }

    fn g_loss(&mut self, _ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let photo = self.pending.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let target = self.cache.outputs(self.teacher.as_ref(), &photo)?;
        let out = self.student.forward(&photo)?;
        let pixel = (l1(&out, &target)? * self.config.pixel_weight)?;
        let feature = if self.config.feature_weight > 0.0 {
            let n = out.dim(0)?;
            let both = self.features(&Tensor::cat(&[&out, &target], 0)?)?;
            (l1(&both.narrow(0, 0, n)?, &both.narrow(0, n, n)?.detach())? * self.config.feature_weight)?
        } else {
            Tensor::zeros((), DType::F32, out.device())?
        };
        stats.terms = Tensor::stack(&[&pixel, &feature], 0)?.to_dtype(DType::F64)?.to_vec1()?;
        pixel + feature
    }

    /// Triplets of photo, teacher, student; two per row.
    fn samples(&self) -> candle_core::Result<Tensor> {
        let (photos, teacher) = &self.fixed;
        let student = self.student.forward(photos)?;
        super::task::interleave(&[photos, teacher, &student])
    }

    fn sample_columns(&self) -> Option<usize> {
        Some(6)
    }
}

/// Starts a distillation run in `out` (`start` = model and trainer config), or resumes the one there.
/// `total_steps` may raise the target on resume. Writes [`STUDENT_FILE`] at the end.
pub fn train_distill(start: Option<(DistillConfig, TrainConfig)>, out: &Path, device: &Device, run: RunControl) -> Result<TrainSummary> {
    let (model, config, ckpt) = start_or_resume(start, out, CHECKPOINT_KIND, "a distillation run", device)?;
    model.validate()?;
    let photos = ConcatDataset::open(&model.photos, "--photos")?;
    let fixed = crate::data::spread_samples(photos.as_ref(), &config.image, 6, device)?;
    let task = DistillTask::new(&model, config.seed, fixed, device)?;
    let options = TrainOptions::default();
    let mut trainer =
        Trainer::new_or_resumed(task, options, CHECKPOINT_KIND, serde_json::to_value(&model)?, config, ckpt.as_ref(), out, device, run)?;
    if !run.quiet {
        eprintln!("distilling {} into {} on {} -> {}", model.teacher, model.student.describe(), photos.describe(), out.display());
    }
    let summary = trainer.run_streams(vec![photos])?;
    let ckpt = Checkpoint::read(out, &Device::Cpu)?;
    crate::generate::export_generator(&ckpt, &out.join(STUDENT_FILE), DType::F32, &format!("distilled from {}", model.teacher), false)?;
    Ok(summary)
}

/// How closely a student reproduces its teacher on held-out pictures.
#[derive(Clone, Debug, Serialize)]
pub struct Fidelity {
    pub images: usize,
    /// Over all pixels of all pictures (8-bit RGB).
    pub psnr_db: f64,
    /// Mean |VGG(student) − VGG(teacher)| ÷ mean |VGG(teacher)| at the feature layer: 0 is identical.
    pub relative_feature_distance: f64,
}

/// Teacher and student (both opened as `stylize --filter` specs, with the same processing options) applied to
/// up to `max_images` pictures of `folder`, spread over it.
pub fn fidelity(teacher: &dyn Filter, student: &dyn Filter, folder: &Path, max_images: usize, vgg: &Vgg, feature_layer: &str) -> Result<Fidelity> {
    let set = ImageFolder::open(folder).with_context(|| format!("--eval-photos {}", folder.display()))?;
    let paths = set.paths();
    if paths.is_empty() {
        bail!("--eval-photos {}: no pictures", folder.display());
    }
    let k = paths.len().min(max_images.max(1));
    let (mut squared, mut count, mut diff, mut norm) = (0f64, 0f64, 0f64, 0f64);
    for i in 0..k {
        let path = &paths[i * paths.len() / k];
        let img = image::open(path).with_context(|| format!("cannot decode {}", path.display()))?.to_rgb8();
        let (t, s) = (teacher.apply(&img)?, student.apply(&img)?);
        for (a, b) in t.as_raw().iter().zip(s.as_raw()) {
            let d = *a as f64 - *b as f64;
            squared += d * d;
        }
        count += t.as_raw().len() as f64;
        let device = Device::Cpu;
        let both = Tensor::cat(&[image_to_tensor(&t, &device)?, image_to_tensor(&s, &device)?], 0)?;
        let f = vgg.features_signed(&both, &[feature_layer])?.remove(0);
        let (ft, fs) = (f.narrow(0, 0, 1)?, f.narrow(0, 1, 1)?);
        diff += (&fs - &ft)?.abs()?.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        norm += ft.abs()?.mean_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    }
    let mse = squared / count;
    Ok(Fidelity { images: k, psnr_db: 10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10(), relative_feature_distance: diff / norm.max(1e-12) })
}

/// Frames per second of `filter` on a 320×240 frame (median of `runs` after one warm-up).
pub fn frames_per_second(filter: &dyn Filter, runs: usize) -> Result<f64> {
    let frame = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]));
    filter.apply(&frame)?;
    let mut times: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            filter.apply(&frame).map(|_| t.elapsed().as_secs_f64())
        })
        .collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    Ok(1.0 / times[times.len() / 2])
}

/// The training spec of a distillation run: square pictures of `size`, centre-cropped.
pub fn image_spec(size: usize) -> ImageSpec {
    ImageSpec { size, channels: 3, fit: Fit::CenterCrop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Inverts the picture and counts its calls.
    struct Counting(AtomicUsize);

    impl Filter for Counting {
        fn name(&self) -> String {
            "counting".into()
        }
        fn apply(&self, frame: &image::RgbImage) -> anyhow::Result<image::RgbImage> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let mut out = frame.clone();
            out.pixels_mut().for_each(|p| p.0 = p.0.map(|v| 255 - v));
            Ok(out)
        }
    }

    /// Cached outputs are the teacher's, and a picture seen before does not run the teacher again.
    #[test]
    fn teacher_cache_returns_the_teachers_outputs_once_computed() -> Result<()> {
        let teacher = Counting(AtomicUsize::new(0));
        let photos = ((crate::nn::gradcheck::seeded(&[3, 3, 8, 6], 1)?.to_dtype(DType::F32)? * 0.5)?.clamp(-1.0, 1.0))?;
        let mut cache = TeacherCache::default();
        let first = cache.outputs(&teacher, &photos)?;
        assert_eq!(teacher.0.load(Ordering::SeqCst), 3);
        let direct = teacher_outputs(&teacher, &photos)?;
        assert_eq!(first.flatten_all()?.to_vec1::<f32>()?, direct.flatten_all()?.to_vec1::<f32>()?);
        // The same pictures in another order and one new one: one more teacher call.
        let again = Tensor::cat(&[&photos.narrow(0, 2, 1)?, &photos.narrow(0, 0, 1)?, &photos.narrow(0, 1, 1)?.neg()?], 0)?;
        let before = teacher.0.load(Ordering::SeqCst);
        let second = cache.outputs(&teacher, &again)?;
        assert_eq!(teacher.0.load(Ordering::SeqCst), before + 1);
        assert_eq!(second.narrow(0, 0, 1)?.flatten_all()?.to_vec1::<f32>()?, direct.narrow(0, 2, 1)?.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
