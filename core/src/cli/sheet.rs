//! `ganime sheet`: a character inspiration sheet.

use crate::device::parse_device;
use crate::generate::load_generator;
use crate::generate::sheet::{self, AttributeMode, SheetRequest};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct SheetArgs {
    /// Generator (default: the built-in anime-face model).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Characters on the main grid (seeds --seed, --seed+1, …) unless --seeds is given.
    #[arg(long, default_value_t = SheetRequest::default().count)]
    count: usize,
    #[arg(long, default_value_t = SheetRequest::default().seed)]
    seed: u64,
    /// Explicit seeds for the main grid, comma-separated.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    #[arg(long, default_value_t = SheetRequest::default().columns)]
    columns: usize,
    /// Side of each character on the page, in pixels.
    #[arg(long, default_value_t = SheetRequest::default().cell)]
    cell: u32,
    #[arg(long, default_value_t = SheetRequest::default().title)]
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
    /// How attribute rows move the character: `guided` (steps guided by the attribute classifier, from the seed
    /// to where the classifier sees the value) or `linear` (straight along the TL-GAN axis, -range to +range).
    #[arg(long, default_value = "guided")]
    attribute_mode: AttributeMode,
    /// Linear attribute rows go from -range to +range.
    #[arg(long, default_value_t = SheetRequest::default().attribute_range)]
    attribute_range: f64,
    /// Attribute classifier for captions and guided rows (default: the built-in one).
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

pub fn sheet(a: SheetArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let g = load_generator(a.checkpoint.as_deref(), &device)?;
    let request = SheetRequest {
        count: a.count,
        seed: a.seed,
        seeds: a.seeds,
        columns: a.columns,
        cell: a.cell,
        title: a.title,
        variations: a.variations,
        variation_strength: a.variation_strength,
        interpolate: a.interpolate,
        attribute: a.attribute,
        attribute_mode: a.attribute_mode,
        attribute_range: a.attribute_range,
        classifier: a.classifier,
        axes: a.axes,
        no_attributes: a.no_attributes,
    };
    let (page, meta) = sheet::make(g.as_ref(), &request, &device)?;
    sheet::save_png_with_metadata(&page, &meta, &a.out)?;
    eprintln!("wrote {} ({}x{}, {})", a.out.display(), page.width(), page.height(), g.describe());
    Ok(())
}
