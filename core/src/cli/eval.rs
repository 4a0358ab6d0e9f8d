//! `ganime eval`: quality metrics between real and generated images.

use crate::data::selection::{open_selected, DataSelection, Part};
use crate::data::{open_dataset, Dataset};
use crate::device::parse_device;
use crate::generate::load_generator;
use crate::io::image::{grid, save_image, side_by_side, tensor_to_images};
use crate::metrics::memorisation::{memorisation, MemorisationReport};
use crate::metrics::Features;
use crate::metrics::{self, ClassifierFeatures, FeatureNet};
use anyhow::{bail, Result};
use candle_core::Tensor;
use clap::Args;
use image::RgbImage;
use std::path::Path;
use std::path::PathBuf;

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of real images (default, for a run trained with --holdout: its held-out images).
    #[arg(long)]
    real: Option<PathBuf>,
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
    /// Memorisation check: each generated image's nearest training image (feature distance), and how close
    /// generated images come to the training set compared with real images it did not train on.
    #[arg(long)]
    memorisation: bool,
    /// Training images for --memorisation (default: the run's training part, for a run folder).
    #[arg(long)]
    train: Option<PathBuf>,
    /// Training images compared against (spread evenly over the set).
    #[arg(long, default_value_t = 2000)]
    train_count: usize,
    /// With --memorisation: a grid of the 16 closest pairs (generated | nearest training image).
    #[arg(long)]
    pairs_out: Option<PathBuf>,
    /// With --memorisation: one CSV row per generated image (index, nearest training image, distance).
    #[arg(long)]
    nearest_csv: Option<PathBuf>,
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
    let run = a.checkpoint.as_deref().and_then(stored_run_data);
    let (real_path, real_data) = match (&a.real, &run) {
        (Some(dir), _) => (dir.clone(), open_dataset(dir)?),
        (None, Some((data, selection))) if selection.holdout.is_some() => (data.clone(), open_selected(data, selection, Part::Holdout)?.data),
        _ => bail!("--real is required (only a run trained with --holdout supplies its own held-out images)"),
    };
    eprintln!("real images: {}", real_data.describe());
    let real = metrics::dataset_images(real_data.as_ref(), a.count, size, &device)?;
    let real_features = metrics::embed_all(net, &real)?;
    let generated_features = metrics::embed_all(net, &generated)?;
    let report = metrics::evaluate_features(net, &real_features, &generated_features, a.seed)?;
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
    let memorisation = if a.memorisation {
        let (train_path, train_data) = match (&a.train, &run) {
            (Some(dir), _) => (dir.clone(), open_dataset(dir)?),
            (None, Some((data, selection))) => (data.clone(), open_selected(data, selection, Part::Train)?.data),
            _ => bail!("--memorisation needs --train DIR (the images the generator was trained on), or a run folder as --checkpoint"),
        };
        let check = Memorisation { real_path: &real_path, real_data: real_data.as_ref(), train_path: &train_path, train_data: train_data.as_ref() };
        Some(check.run(&a, net, &real_features, &generated_features, &generated, size, &device)?)
    } else {
        for (flag, given) in [("--pairs-out", a.pairs_out.is_some()), ("--nearest-csv", a.nearest_csv.is_some()), ("--train", a.train.is_some())] {
            if given {
                bail!("{flag} needs --memorisation");
            }
        }
        None
    };
    if let Some(path) = &a.json {
        let mut json = serde_json::to_value(&report)?;
        if let Some(m) = &memorisation {
            json["memorisation"] = serde_json::to_value(m)?;
        }
        let json = serde_json::to_string_pretty(&json)?;
        crate::io::atomic::write_atomic(path, |tmp| Ok(std::fs::write(tmp, &json)?))?;
    }
    Ok(())
}

/// The data folder and selection a run folder (or checkpoint with training state) was trained on.
fn stored_run_data(path: &Path) -> Option<(PathBuf, DataSelection)> {
    let ckpt = crate::io::checkpoint::Checkpoint::read(path, &candle_core::Device::Cpu).ok()?;
    let data = ckpt.header.state.as_ref()?["config"]["data"].as_str()?.into();
    let options = crate::train::trainer::checkpoint_options(&ckpt).ok()?;
    Some((data, options.selection))
}

struct Memorisation<'a> {
    real_path: &'a Path,
    real_data: &'a dyn Dataset,
    train_path: &'a Path,
    train_data: &'a dyn Dataset,
}

impl Memorisation<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        a: &EvalArgs,
        net: &dyn FeatureNet,
        real: &Features,
        generated: &Features,
        generated_images: &Tensor,
        size: usize,
        device: &candle_core::Device,
    ) -> Result<MemorisationReport> {
        let train_indices = metrics::spread_indices(self.train_data.len(), a.train_count);
        let train_images = metrics::dataset_images(self.train_data, a.train_count, size, device)?;
        let train = metrics::embed_all(net, &train_images)?;
        // When the real images come from the training folder itself, a real image must not count itself.
        let same_source = canonical(self.real_path) == canonical(self.train_path);
        let real_indices = metrics::spread_indices(self.real_data.len(), a.count);
        let real_names: Vec<Option<String>> = real_indices.iter().map(|&i| self.real_data.name(i)).collect();
        let train_names: Vec<Option<String>> = train_indices.iter().map(|&i| self.train_data.name(i)).collect();
        let same = |r: usize, t: usize| same_source && real_names[r].is_some() && real_names[r] == train_names[t];
        let report = memorisation(&train, generated, real, &same)?;
        println!(
            "memorisation        score {:.3} (median nearest-training distance: generated {:.4e}, unseen real {:.4e}; ~1 = new pictures, << 1 = copies)",
            report.score, report.generated_median, report.real_median
        );
        println!(
            "near-copies         {:.1}% of generated images closer to a training image than 95% of unseen real ones ({} training images compared)",
            report.near_copy_fraction * 100.0,
            train.rows
        );
        let name = |t: usize| train_names[t].clone().unwrap_or_else(|| format!("#{}", train_indices[t]));
        if let Some(path) = &a.nearest_csv {
            let mut rows = String::from("generated,nearest_training_image,distance\n");
            for n in &report.generated {
                rows.push_str(&format!("{},{},{}\n", n.index, name(n.train_index), n.distance));
            }
            crate::io::atomic::write_atomic(path, |tmp| Ok(std::fs::write(tmp, &rows)?))?;
        }
        if let Some(path) = &a.pairs_out {
            let generated = tensor_to_images(generated_images)?;
            let training = tensor_to_images(&train_images)?;
            let pairs: Vec<RgbImage> =
                report.generated.iter().take(16).map(|n| side_by_side(&generated[n.index], &training[n.train_index], 2)).collect();
            save_image(&grid(&pairs, 4, 6)?, path)?;
            eprintln!("wrote {} (closest pairs: generated | nearest training image)", path.display());
        }
        Ok(report)
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}
