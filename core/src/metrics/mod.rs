//! Quality metrics for generators (`ganime eval`): Fréchet and kernel distances between real and generated
//! images on a pretrained network's features, precision/recall coverage, and a mode-collapse check.

pub mod memorisation;
pub mod stats;

pub use stats::{diversity, frechet_distance, kernel_distance, precision_recall, Diversity, Features};

use crate::data::{Dataset, Fit, ImageSpec};
use crate::generate::Generator;
use crate::models::attribute_classifier::AttributeClassifier;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use serde::Serialize;

/// A network that turns images `[N, 3, H, W]` in [-1, 1] into feature vectors `[N, D]`.
pub trait FeatureNet {
    fn name(&self) -> String;
    fn embed(&self, images: &Tensor) -> Result<Tensor>;
}

/// The attribute classifier's trunk, average-pooled over its last 4×4 map: features trained on anime faces,
/// so distances reflect what the classifier learned to tell apart (hair, eyes, shading).
pub struct ClassifierFeatures<'a>(pub &'a AttributeClassifier);

impl FeatureNet for ClassifierFeatures<'_> {
    fn name(&self) -> String {
        format!("attribute-classifier({}px, pooled)", self.0.config.image_size)
    }
    fn embed(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.0.embedding(images)?)
    }
}

/// ImageNet VGG16 features at one layer (relu3_3 by default), average-pooled over positions: the standard
/// perceptual embedding (the shared real VGG16 stands in for the Inception network FID was defined on).
pub struct VggFeatures {
    vgg: crate::models::vgg::Vgg,
    layer: String,
}

impl VggFeatures {
    pub fn load(path: &std::path::Path, layer: &str, device: &Device) -> Result<Self> {
        Ok(Self { vgg: crate::models::vgg::Vgg::vgg16_imagenet(path, &[layer], device)?, layer: layer.to_string() })
    }
}

impl FeatureNet for VggFeatures {
    fn name(&self) -> String {
        format!("vgg16-imagenet {} (mean-pooled)", self.layer)
    }
    fn embed(&self, images: &Tensor) -> Result<Tensor> {
        let f = self.vgg.features_signed(images, &[self.layer.as_str()])?.remove(0);
        Ok(f.mean(3)?.mean(2)?)
    }
}

/// Images per network call when embedding a set.
pub const BATCH: usize = 64;

/// Features of `images` ([N, C, H, W] in [-1, 1]; grayscale is repeated to RGB), in batches.
pub fn embed_all(net: &dyn FeatureNet, images: &Tensor) -> Result<Features> {
    let n = images.dim(0)?;
    let images = if images.dim(1)? == 1 { images.repeat((1, 3, 1, 1))? } else { images.clone() };
    let mut data = Vec::new();
    let mut dim = 0;
    for start in (0..n).step_by(BATCH) {
        let f = net.embed(&images.narrow(0, start, BATCH.min(n - start))?)?.to_dtype(DType::F64)?;
        dim = f.dim(1)?;
        data.extend(f.flatten_all()?.to_vec1::<f64>()?);
    }
    Features::new(n, dim, data)
}

/// `count` images of a dataset (evenly spaced through it, so a sorted folder is sampled across), as a tensor.
pub fn dataset_images(data: &dyn Dataset, count: usize, size: usize, device: &Device) -> Result<Tensor> {
    if data.is_empty() {
        bail!("{} holds no images", data.describe());
    }
    let indices = spread_indices(data.len(), count);
    let spec = ImageSpec { size, channels: 3, fit: Fit::CenterCrop };
    let mut values = Vec::with_capacity(indices.len() * spec.sample_len());
    for &i in &indices {
        values.extend(data.load(i, &spec)?);
    }
    Ok(Tensor::from_vec(values, (indices.len(), 3, size, size), device)?)
}

/// The dataset indices [`dataset_images`] takes: `count` (at most `len`) spread evenly.
pub fn spread_indices(len: usize, count: usize) -> Vec<usize> {
    let count = count.min(len);
    (0..count).map(|i| i * len / count).collect()
}

/// `count` generated images from seeds `seed, seed+1, …` (the same latents `ganime generate` uses).
pub fn generated_images(g: &dyn Generator, count: usize, seed: u64, device: &Device) -> Result<Tensor> {
    let z = g.latents(seed, count, device)?;
    let mut parts = Vec::new();
    for start in (0..count).step_by(BATCH) {
        parts.push(g.generate(&z.narrow(0, start, BATCH.min(count - start))?)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub features: String,
    pub real_images: usize,
    pub generated_images: usize,
    pub frechet_distance: f64,
    pub kernel_distance: f64,
    pub kernel_distance_std_error: f64,
    pub precision: f64,
    pub recall: f64,
    pub diversity: Diversity,
}

/// All metrics between two image sets.
pub fn evaluate(net: &dyn FeatureNet, real: &Tensor, generated: &Tensor, seed: u64) -> Result<EvalReport> {
    evaluate_features(net, &embed_all(net, real)?, &embed_all(net, generated)?, seed)
}

/// [`evaluate`] on features already computed.
pub fn evaluate_features(net: &dyn FeatureNet, r: &Features, g: &Features, seed: u64) -> Result<EvalReport> {
    let (kid, kid_se) = kernel_distance(r, g, 10, 1000, seed)?;
    let (precision, recall) = precision_recall(r, g, 3)?;
    Ok(EvalReport {
        features: net.name(),
        real_images: r.rows,
        generated_images: g.rows,
        frechet_distance: frechet_distance(r, g)?,
        kernel_distance: kid,
        kernel_distance_std_error: kid_se,
        precision,
        recall,
        diversity: diversity(r, g)?,
    })
}

/// `--eval-every`: how often and on how many images the trainer measures quality (kept in the run's
/// checkpoint, so `--resume` goes on measuring).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingEval {
    pub every: u64,
    pub count: usize,
}

/// `--eval-every` and `--eval-count` as given on the command line: each replaces its own part of what a resumed
/// run stored, and `every = Some(0)` turns the measurement off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingEvalRequest {
    pub every: Option<u64>,
    pub count: Option<usize>,
    /// The trainer's `--eval-count` when neither the command line nor the run gives one.
    pub default_count: usize,
}

impl TrainingEvalRequest {
    /// No measurement asked for (a resumed run keeps what it stored).
    pub const NONE: Self = Self { every: None, count: None, default_count: 0 };

    /// The measurement to run (and store) given what the run stored (`None` for a new run).
    pub fn merge(&self, stored: Option<TrainingEval>) -> anyhow::Result<Option<TrainingEval>> {
        let Some(every) = self.every.or(stored.map(|s| s.every)) else {
            if let Some(count) = self.count {
                anyhow::bail!("--eval-count {count}: the run measures nothing to count for; give --eval-every N too");
            }
            return Ok(None);
        };
        let count = self.count.or(stored.map(|s| s.count)).unwrap_or(self.default_count);
        Ok((every > 0).then_some(TrainingEval { every, count }))
    }
}
