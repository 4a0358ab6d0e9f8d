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
    /// Feature network: `classifier` (the anime attribute classifier, default) or `classifier:FILE`.
    #[arg(long, default_value = "classifier")]
    features: String,
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
    let clf = match a.features.split_once(':') {
        None if a.features == "classifier" => crate::generate::builtin::classifier(&device)?,
        Some(("classifier", file)) => crate::generate::attributes::load_classifier(&crate::train::checkpoint::Checkpoint::read(std::path::Path::new(file), &device)?, &device)?,
        _ => bail!("--features {}: expected `classifier` or `classifier:FILE`", a.features),
    };
    let net: &dyn FeatureNet = &ClassifierFeatures(&clf);
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
