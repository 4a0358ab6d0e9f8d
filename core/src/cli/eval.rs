//! `ganime eval`: quality metrics between real and generated images.

use crate::data::open_dataset;
use crate::device::parse_device;
use crate::generate::load_generator;
use crate::metrics::{self, ClassifierFeatures, FeatureNet};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of real images.
    #[arg(long)]
    real: PathBuf,
    /// Generator to evaluate (default: the built-in model) …
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// … or a folder of already generated images instead.
    #[arg(long, conflicts_with = "checkpoint")]
    fake: Option<PathBuf>,
    /// Images per set.
    #[arg(long, default_value_t = 500)]
    count: usize,
    /// First seed of the generated images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image size both sets are brought to (default: the generator's output size, or 64).
    #[arg(long)]
    size: Option<usize>,
    /// Feature network: `vgg16` (ImageNet VGG16, the shared weights unless --features-file), `classifier` (the
    /// built-in anime attribute classifier unless --features-file), or `auto`: vgg16 when its weights are found,
    /// else classifier.
    #[arg(long, default_value = "auto")]
    features: String,
    /// Weights for --features (a VGG16 .safetensors/.pth, or an attribute classifier).
    #[arg(long)]
    features_file: Option<PathBuf>,
    /// VGG layer for --features vgg16.
    #[arg(long, default_value = "relu3_3")]
    layer: String,
    /// Also write the report as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    if a.count < 10 {
        bail!("--count {}: the metrics need at least 10 images per set", a.count);
    }
    let shared_vgg = || crate::data::shared::shared_file(crate::models::vgg::VGG16_IMAGENET_SHARED);
    let kind = match a.features.as_str() {
        "auto" if a.features_file.is_some() => bail!("--features-file needs --features vgg16 or classifier"),
        "auto" => {
            if shared_vgg().is_some() {
                "vgg16"
            } else {
                "classifier"
            }
        }
        k @ ("vgg16" | "classifier") => k,
        other => bail!("--features {other}: expected auto, vgg16 or classifier"),
    };
    let clf;
    let vgg;
    let net: &dyn FeatureNet = if kind == "vgg16" {
        let path = match (&a.features_file, shared_vgg()) {
            (Some(f), _) => f.clone(),
            (None, Some(f)) => f,
            (None, None) => bail!(
                "--features vgg16 needs VGG16 weights: pass --features-file ({})",
                crate::data::shared::missing_hint(crate::models::vgg::VGG16_IMAGENET_SHARED)
            ),
        };
        vgg = metrics::VggFeatures::load(&path, &a.layer, &device)?;
        &vgg
    } else {
        clf = match &a.features_file {
            Some(f) => crate::generate::attributes::load_classifier(&crate::io::checkpoint::Checkpoint::read(f, &device)?, &device)?,
            None => crate::generate::builtin::classifier(&device)?,
        };
        &ClassifierFeatures(&clf)
    };
    let (generated, size) = match &a.fake {
        Some(dir) => {
            let size = a.size.unwrap_or(64);
            (metrics::dataset_images(open_dataset(dir)?.as_ref(), a.count, size, &device)?, size)
        }
        None => {
            let g = load_generator(a.checkpoint.as_deref(), &device)?;
            let images = metrics::generated_images(g.as_ref(), a.count, a.seed, &device)?;
            let size = images.dim(3)?;
            if images.dim(1)? != 3 {
                bail!("the feature networks take RGB images; this generator makes {}-channel ones", images.dim(1)?);
            }
            match a.size {
                Some(s) if s != size => (images.upsample_bilinear2d(s, s, false)?, s),
                _ => (images, size),
            }
        }
    };
    let real = metrics::dataset_images(open_dataset(&a.real)?.as_ref(), a.count, size, &device)?;
    let report = metrics::evaluate(net, &real, &generated, a.seed)?;
    println!("features            {}", report.features);
    println!("images              {} real, {} generated, {size}x{size}", report.real_images, report.generated_images);
    println!("Fréchet distance    {:.4}", report.frechet_distance);
    println!("kernel distance     {:.5} ± {:.5}", report.kernel_distance, report.kernel_distance_std_error);
    println!("precision / recall  {:.3} / {:.3}", report.precision, report.recall);
    println!(
        "diversity           {:.3} of the real set's, {:.1}% near-duplicate pairs{}",
        report.diversity.ratio,
        report.diversity.near_duplicate_pairs * 100.0,
        if report.diversity.collapsed { "  — MODE COLLAPSE" } else { "" }
    );
    if let Some(path) = &a.json {
        let json = serde_json::to_string_pretty(&report)?;
        crate::io::atomic::write_atomic(path, |tmp| Ok(std::fs::write(tmp, &json)?))?;
    }
    Ok(())
}
