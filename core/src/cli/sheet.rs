use crate::device::parse_device;
use crate::generate::attributes::{self, AttributeAxes};
use crate::generate::sheet::{self, Row, SheetSpec};
use crate::generate::{builtin, load_generator};
use crate::io::checkpoint::Checkpoint;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SheetArgs {
    /// Generator (default: the built-in anime-face model).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Characters on the main grid (seeds --seed, --seed+1, …) unless --seeds is given.
    #[arg(long, default_value_t = 12)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Explicit seeds for the main grid, comma-separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    #[arg(long, default_value_t = 6)]
    columns: usize,
    /// Side of each character on the page, in pixels.
    #[arg(long, default_value_t = 160)]
    cell: u32,
    #[arg(long, default_value = "Character inspiration sheet")]
    title: String,
    /// A row of variations around this seed (repeatable).
    #[arg(long)]
    variations: Vec<u64>,
    /// Noise added to the seed's latent for each variation (default: the strength measured for this generator
    /// by `ganime attributes fit`, stored with its axes; 0.5 without axes).
    #[arg(long)]
    variation_strength: Option<f64>,
    /// A row interpolating between two seeds, A:B (repeatable).
    #[arg(long)]
    interpolate: Vec<String>,
    /// A row moving one attribute of a seed, SEED:ATTRIBUTE=VALUE (repeatable), e.g. 3:hair=blonde.
    #[arg(long)]
    attribute: Vec<String>,
    /// Attribute rows go from -range to +range.
    #[arg(long, default_value_t = 2.5)]
    attribute_range: f64,
    /// Attribute classifier for captions (default: the built-in one).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Attribute axes fit for this generator (default: the built-in model's, which match only it).
    #[arg(long)]
    axes: Option<PathBuf>,
    /// No attribute captions.
    #[arg(long)]
    no_attributes: bool,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
}

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

fn classifier_from(path: Option<&Path>, device: &Device) -> Result<crate::models::attribute_classifier::AttributeClassifier> {
    match path {
        Some(p) => attributes::load_classifier(&Checkpoint::read(p, device)?, device),
        None => builtin::classifier(device),
    }
}

/// Axes for `generator`: from `path`, or the built-in ones when they were fit for this very generator.
pub fn axes_for(path: Option<&Path>, generator_identity: &str, device: &Device) -> Result<Option<AttributeAxes>> {
    let axes = match path {
        Some(p) => AttributeAxes::from_checkpoint(&Checkpoint::read(p, device)?, device)?,
        None => builtin::axes(device)?,
    };
    if axes.info.generator != generator_identity {
        if let Some(p) = path {
            bail!("{} was fit for generator {}, not this one ({generator_identity}); run `ganime attributes fit`", p.display(), axes.info.generator);
        }
        return Ok(None);
    }
    Ok(Some(axes))
}

/// A sheet is a page: more characters than this belong in `generate --out-dir`.
const MAX_SHEET_CELLS: usize = 10_000;

pub fn sheet(a: SheetArgs) -> Result<()> {
    if a.count.max(a.seeds.len()) > MAX_SHEET_CELLS || a.columns > MAX_SHEET_CELLS {
        bail!("--count/--seeds/--columns: at most {MAX_SHEET_CELLS} characters on a sheet (use `ganime generate --out-dir` for more)");
    }
    let device = parse_device(&a.device)?;
    let g = load_generator(a.checkpoint.as_deref(), &device)?;
    let seeds = if a.seeds.is_empty() { (a.seed..a.seed + a.count as u64).collect() } else { a.seeds.clone() };
    // The generator's axes (read once): attribute rows move along them, and they carry the variation strength
    // measured for this generator.
    let needs_axes = !a.attribute.is_empty() || (!a.variations.is_empty() && a.variation_strength.is_none());
    let axes = if needs_axes { axes_for(a.axes.as_deref(), &g.identity(), &device)? } else { None };
    if !a.attribute.is_empty() && axes.is_none() {
        bail!("attribute rows need axes fit for this generator: run `ganime attributes fit --checkpoint ...` and pass --axes");
    }
    let mut rows = Vec::new();
    if !seeds.is_empty() {
        rows.push(Row::Seeds(seeds));
    }
    if !a.variations.is_empty() {
        let strength = match a.variation_strength {
            Some(s) if s.is_finite() && s >= 0.0 => s,
            Some(s) => bail!("--variation-strength must be a finite number >= 0, not {s}"),
            None => axes.as_ref().and_then(|x| x.info.variation_strength).unwrap_or(0.5),
        };
        for &seed in &a.variations {
            rows.push(Row::Variations { seed, count: a.columns, strength });
        }
    }
    for s in &a.interpolate {
        let (from, to) = s.split_once(':').with_context(|| format!("--interpolate {s}: expected A:B (two seeds)"))?;
        let parse = |x: &str| x.parse::<u64>().with_context(|| format!("--interpolate {s}: `{x}` is not a seed"));
        rows.push(Row::Interpolate { from: parse(from)?, to: parse(to)?, steps: a.columns.max(2) });
    }
    for s in &a.attribute {
        let (seed, axis) = s.split_once(':').with_context(|| format!("--attribute {s}: expected SEED:ATTRIBUTE=VALUE, e.g. 3:hair=blonde"))?;
        let seed = seed.parse::<u64>().with_context(|| format!("--attribute {s}: `{seed}` is not a seed"))?;
        rows.push(Row::Attribute { seed, axis: axis.to_string(), range: a.attribute_range, steps: a.columns.max(2) });
    }
    let clf = if a.no_attributes { None } else { Some(classifier_from(a.classifier.as_deref(), &device)?) };
    let spec = SheetSpec { title: a.title, columns: a.columns, cell: a.cell, rows };
    let (page, meta) = sheet::render(g.as_ref(), &spec, clf.as_ref(), axes.as_ref(), &device)?;
    sheet::save_png_with_metadata(&page, &meta, &a.out)?;
    eprintln!("wrote {} ({}x{}, {})", a.out.display(), page.width(), page.height(), g.describe());
    Ok(())
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
            let clf = classifier_from(a.classifier.as_deref(), &device)?;
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
