//! `ganime attributes`: the TL-GAN attribute classifier and latent axes.

use crate::device::parse_device;
use crate::generate::attributes::{self};
use crate::generate::guide;
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
    /// Measure each attribute value's moves on generated characters: straight along its axis and guided by the
    /// classifier (how often the value becomes the prediction, how often the other attribute changes).
    Measure(MeasureArgs),
}

#[derive(Args)]
pub struct MeasureArgs {
    /// Generator (default: the built-in model).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Classifier (default: the built-in one).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Axes for the linear moves (default: the built-in model's; without axes only guided moves are measured).
    #[arg(long)]
    axes: Option<PathBuf>,
    /// Characters per attribute value.
    #[arg(long, default_value_t = 64)]
    count: usize,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Linear step measured (the end of a default sheet row).
    #[arg(long, default_value_t = 2.5)]
    linear_step: f64,
    /// Most guided steps (sheets and `generate --guide` use 32).
    #[arg(long, default_value_t = guide::DEFAULT_MAX_STEPS)]
    max_steps: usize,
    /// Only these values (comma-separated, e.g. hair=blonde,eyes=red; default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
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
        AttributesCommand::Measure(a) => {
            if a.count == 0 || a.max_steps == 0 || a.max_steps > guide::MAX_STEPS {
                anyhow::bail!("--count must be positive and --max-steps within 1..={}", guide::MAX_STEPS);
            }
            let device = parse_device(&a.device)?;
            let g = load_generator(a.checkpoint.as_deref(), &device)?;
            let clf = attributes::classifier_from(a.classifier.as_deref(), &device)?;
            let axes = attributes::axes_for(a.axes.as_deref(), &g.identity(), &device)?;
            let names: Vec<String> = if a.only.is_empty() { clf.config.value_names() } else { a.only.clone() };
            let reports = guide::measure(g.as_ref(), &clf, axes.as_ref(), &names, a.count, a.seed, a.linear_step, a.max_steps, &device)?;
            println!(
                "{} characters per value; linear: along the axis by {:+}; guided: until the classifier gives the value {:.0}% (at most {} steps of {})",
                a.count,
                a.linear_step,
                guide::SEEN_PROBABILITY * 100.0,
                a.max_steps,
                guide::GUIDE_STEP
            );
            println!(
                "{:<16} {:>16} {:>16} | {:>8} {:>8} {:>16} {:>16}",
                "value", "linear: became", "other changed", "seen", "median", "guided: became", "other changed"
            );
            let pct = |x: f64| format!("{:.1}%", x * 100.0);
            let (mut lin, mut gui, mut k) = ((0.0, 0.0), (0.0, 0.0), 0.0);
            for r in &reports {
                let (lb, lo) = r.linear.map_or(("-".into(), "-".into()), |(b, o)| (pct(b), pct(o)));
                let (seen, median, gb, go) = r.guided;
                println!(
                    "{:<16} {lb:>16} {lo:>16} | {:>8} {:>8} {:>16} {:>16}",
                    r.axis,
                    pct(seen),
                    median.map_or("-".into(), |m| m.to_string()),
                    pct(gb),
                    pct(go)
                );
                if let Some((b, o)) = r.linear {
                    lin = (lin.0 + b, lin.1 + o);
                }
                gui = (gui.0 + gb, gui.1 + go);
                k += 1.0;
            }
            if k > 0.0 {
                let lin = if axes.is_some() { (pct(lin.0 / k), pct(lin.1 / k)) } else { ("-".into(), "-".into()) };
                println!("{:<16} {:>16} {:>16} | {:>8} {:>8} {:>16} {:>16}", "mean", lin.0, lin.1, "", "", pct(gui.0 / k), pct(gui.1 / k));
            }
            Ok(())
        }
    }
}
