//! `ganime attributes`: the TL-GAN attribute classifier and latent axes.

use crate::device::parse_device;
use crate::generate::attributes::{self};
use crate::generate::load_generator;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum AttributesCommand {
    /// Train the hair/eye attribute classifier on labelled real images; prints held-out accuracy.
    TrainClassifier(TrainClassifierArgs),
    /// Fit TL-GAN attribute axes for a generator; prints how well each axis works.
    Fit(FitArgs),
}

#[derive(Args)]
pub struct TrainClassifierArgs {
    #[arg(long)]
    data: PathBuf,
    /// CSV `file,<attribute>...` (default: DATA/labels.csv).
    #[arg(long)]
    labels: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    image_size: usize,
    #[arg(long, default_value_t = 32)]
    width: usize,
    #[arg(long, default_value_t = 6)]
    epochs: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(Args)]
pub struct FitArgs {
    /// Generator (default: the built-in model).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Classifier (default: the built-in one).
    #[arg(long)]
    classifier: Option<PathBuf>,
    #[arg(long, default_value_t = 4000)]
    samples: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Latent step used to measure each axis.
    #[arg(long, default_value_t = 2.0)]
    step: f64,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn attributes(cmd: AttributesCommand) -> Result<()> {
    match cmd {
        AttributesCommand::TrainClassifier(a) => {
            let device = parse_device(&a.device)?;
            let labels = a.labels.clone().unwrap_or_else(|| a.data.join("labels.csv"));
            let (clf, report) =
                attributes::train_classifier(&a.data, &labels, a.image_size, a.width, a.epochs, a.seed, &device, &|m| eprintln!("{m}"))?;
            let mut note = format!(
                "trained by `ganime attributes train-classifier` on {} ({} images, {} held out, {} epochs, seed {}); held-out accuracy:",
                a.data.display(),
                report.train_images,
                report.held_out,
                a.epochs,
                a.seed
            );
            for (name, acc, base) in &report.accuracy {
                let line = format!(" {name} {:.1}% (majority class {:.1}%)", acc * 100.0, base * 100.0);
                println!("held-out accuracy{line}");
                note.push_str(&line);
            }
            attributes::save_classifier(&clf, &a.out, candle_core::DType::F16, &note)?;
            eprintln!("wrote {}", a.out.display());
            Ok(())
        }
        AttributesCommand::Fit(a) => {
            let device = parse_device(&a.device)?;
            let g = load_generator(a.checkpoint.as_deref(), &device)?;
            let clf = attributes::classifier_from(a.classifier.as_deref(), &device)?;
            let axes = attributes::fit_axes(g.as_ref(), &clf, a.samples, a.seed, a.step, &device)?;
            println!("axis  raised-prob  became-prediction  other-attribute-changed   (step {}, other attributes locked)", a.step);
            for r in &axes.info.report {
                println!("{:<20} {:>6.1}% {:>8.1}% {:>8.1}%", r.axis, r.raised * 100.0, r.became_prediction * 100.0, r.others_changed * 100.0);
            }
            println!("variation strength  distance (x unrelated pair)  hair/eye prediction changed");
            for r in &axes.info.variations {
                println!("{:>8.2} {:>18.2} {:>18.1}%", r.strength, r.distance_ratio, r.attribute_changed * 100.0);
            }
            if let Some(s) = axes.info.variation_strength {
                println!(
                    "sheet variations default to strength {s} (the first reaching {} of an unrelated pair's distance)",
                    attributes::VARIATION_DISTANCE_TARGET
                );
            }
            axes.save(&a.out)?;
            eprintln!("wrote {} ({} axes for {})", a.out.display(), axes.info.names.len(), g.describe());
            Ok(())
        }
    }
}
