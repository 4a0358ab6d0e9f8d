//! `ganime sheet`: a character inspiration sheet.

use crate::device::parse_device;
use crate::generate::attributes::AttributeAxes;
use crate::generate::sheet::{self, Row, SheetSpec};
use crate::generate::{builtin, load_generator};
use crate::io::checkpoint::Checkpoint;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;
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
    let clf = if a.no_attributes { None } else { Some(super::attributes::classifier_from(a.classifier.as_deref(), &device)?) };
    let spec = SheetSpec { title: a.title, columns: a.columns, cell: a.cell, rows };
    let (page, meta) = sheet::render(g.as_ref(), &spec, clf.as_ref(), axes.as_ref(), &device)?;
    sheet::save_png_with_metadata(&page, &meta, &a.out)?;
    eprintln!("wrote {} ({}x{}, {})", a.out.display(), page.width(), page.height(), g.describe());
    Ok(())
}
