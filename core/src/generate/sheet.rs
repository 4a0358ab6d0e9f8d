//! Inspiration sheets: a printable page of generated characters with captions, plus rows of variations,
//! interpolations and attribute moves. Every cell's latent recipe, the model's identity and the settings go into
//! the PNG's text metadata, so any cell can be regenerated exactly (a plain "seed N" cell is
//! `ganime generate --seed N --count 1`).

use super::attributes::{axes_for, classifier_from, AttributeAxes};
use super::guide::{guide_until_predicted, value_index, DEFAULT_MAX_STEPS};
use super::recipe::Recipe;
use super::Generator;
use crate::io::image::tensor_to_images;
use crate::io::text::{draw_text, draw_text_fitted};
use crate::io::write_atomic;
use crate::models::attribute_classifier::AttributeClassifier;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Row {
    /// One character per seed (latent = first vector of the seed).
    Seeds(Vec<u64>),
    /// `count` variations around a seed: its latent plus `strength` × N(0, I) noise.
    Variations { seed: u64, count: usize, strength: f64 },
    /// Spherical interpolation from one seed to another in `steps` cells.
    Interpolate { from: u64, to: u64, steps: usize },
    /// One seed moved along an attribute axis from `-range` to `+range` in `steps` cells.
    Attribute { seed: u64, axis: String, range: f64, steps: usize },
    /// One seed moved toward an attribute value by classifier-guided steps (`guide.rs`): `steps` cells from the
    /// seed to the first step at which the classifier sees the value (`guide::SEEN_PROBABILITY`), or `max_steps`.
    Guided { seed: u64, axis: String, steps: usize, max_steps: usize },
}

/// How attribute rows move a character.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttributeMode {
    /// Steps guided by the attribute classifier, until it sees the value: the row ends where the attribute is.
    #[default]
    Guided,
    /// Straight along the TL-GAN axis from -range to +range (needs axes fit for the generator).
    Linear,
}
crate::named_values!(AttributeMode { Guided => "guided", Linear => "linear" });

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SheetSpec {
    pub title: String,
    pub columns: usize,
    /// Side of each character in pixels on the page (the generator's output is enlarged by
    /// [`super::upscale::Upscaling::best`]: the built-in learned upscaler where one ships, else Lanczos3).
    pub cell: u32,
    pub rows: Vec<Row>,
}

/// What `ganime sheet` is asked for: its flags, and the editors' sheet request (JSON with the same names, every
/// field optional). [`make`] turns it into rows exactly as the CLI does.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SheetRequest {
    /// Characters on the main grid (seeds `seed`, `seed + 1`, …) unless `seeds` is given.
    pub count: usize,
    pub seed: u64,
    pub seeds: Vec<u64>,
    pub columns: usize,
    /// Side of each character on the page, in pixels.
    pub cell: u32,
    pub title: String,
    /// A row of variations around each of these seeds.
    pub variations: Vec<u64>,
    /// Noise per variation (default: the strength measured for the generator's axes; 0.5 without axes).
    pub variation_strength: Option<f64>,
    /// Rows interpolating between two seeds, `A:B`.
    pub interpolate: Vec<String>,
    /// Rows moving one attribute of a seed, `SEED:ATTRIBUTE=VALUE`.
    pub attribute: Vec<String>,
    /// How attribute rows move: `guided` (default) or `linear`.
    pub attribute_mode: AttributeMode,
    /// Linear attribute rows go from -range to +range.
    pub attribute_range: f64,
    /// Attribute classifier for captions (default: the built-in one).
    pub classifier: Option<PathBuf>,
    /// Attribute axes fit for the generator (default: the built-in model's, which match only it).
    pub axes: Option<PathBuf>,
    /// No attribute captions.
    pub no_attributes: bool,
}

impl Default for SheetRequest {
    fn default() -> Self {
        SheetRequest {
            count: 12,
            seed: 0,
            seeds: Vec::new(),
            columns: 6,
            cell: 160,
            title: "Character inspiration sheet".into(),
            variations: Vec::new(),
            variation_strength: None,
            interpolate: Vec::new(),
            attribute: Vec::new(),
            attribute_mode: AttributeMode::Guided,
            attribute_range: 2.5,
            classifier: None,
            axes: None,
            no_attributes: false,
        }
    }
}

/// A sheet is a page: more characters than this belong in `generate --out-dir`.
pub const MAX_SHEET_CELLS: usize = 10_000;

/// The sheet `ganime sheet` makes for `request`: the page and its JSON metadata (every cell's caption, recipe and
/// place on the page).
pub fn make(g: &dyn Generator, request: &SheetRequest, device: &Device) -> Result<(RgbImage, String)> {
    let a = request;
    if a.count.max(a.seeds.len()) > MAX_SHEET_CELLS || a.columns > MAX_SHEET_CELLS {
        bail!("--count/--seeds/--columns: at most {MAX_SHEET_CELLS} characters on a sheet (use `ganime generate --out-dir` for more)");
    }
    if a.variations.len() + a.interpolate.len() + a.attribute.len() > MAX_SHEET_CELLS {
        bail!("--variations/--interpolate/--attribute: at most {MAX_SHEET_CELLS} rows on a sheet");
    }
    let seeds: Vec<u64> = if a.seeds.is_empty() { (a.seed..a.seed.saturating_add(a.count as u64)).collect() } else { a.seeds.clone() };
    // The generator's axes (read once): attribute rows move along them, and they carry the variation strength
    // measured for this generator.
    let linear = a.attribute_mode == AttributeMode::Linear;
    let needs_axes = (linear && !a.attribute.is_empty()) || (!a.variations.is_empty() && a.variation_strength.is_none());
    let axes = if needs_axes { axes_for(a.axes.as_deref(), &g.identity(), device)? } else { None };
    if linear && !a.attribute.is_empty() && axes.is_none() {
        bail!("linear attribute rows need axes fit for this generator: run `ganime attributes fit --checkpoint ...` and pass --axes (or use guided rows)");
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
        let (axis, steps) = (axis.to_string(), a.columns.max(2));
        rows.push(match a.attribute_mode {
            AttributeMode::Linear => Row::Attribute { seed, axis, range: a.attribute_range, steps },
            AttributeMode::Guided => Row::Guided { seed, axis, steps, max_steps: DEFAULT_MAX_STEPS },
        });
    }
    let guided = rows.iter().any(|r| matches!(r, Row::Guided { .. }));
    let clf = if a.no_attributes && !guided { None } else { Some(classifier_from(a.classifier.as_deref(), device)?) };
    if let (Some(clf), true) = (&clf, guided) {
        for row in &rows {
            if let Row::Guided { axis, .. } = row {
                value_index(clf, axis).with_context(|| format!("--attribute {axis}"))?;
            }
        }
    }
    let spec = SheetSpec { title: a.title.clone(), columns: a.columns, cell: a.cell, rows };
    let models = Models { axes: axes.as_ref(), classifier: clf.as_ref(), captions: !a.no_attributes };
    render(g, &spec, &models, device)
}

/// What the metadata records for one cell.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellRecord {
    pub caption: String,
    pub recipe: String,
    /// Where the cell's picture is on the page (top-left corner, side in pixels).
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

const MARGIN: u32 = 32;
const GAP: u32 = 12;
const CAPTION: f32 = 14.0;
const HEADING: f32 = 16.0;
const TITLE: f32 = 28.0;

struct Cell {
    z: Vec<f32>,
    caption: String,
    recipe: String,
}

/// What a sheet draws with besides the generator.
pub struct Models<'a> {
    /// Axes for linear attribute rows and the measured variation strength.
    pub axes: Option<&'a AttributeAxes>,
    /// The attribute classifier: guided rows, and captions when `captions`.
    pub classifier: Option<&'a AttributeClassifier>,
    pub captions: bool,
}

fn row_cells(row: &Row, g: &dyn Generator, models: &Models, device: &Device) -> Result<(String, Vec<Cell>)> {
    let (prior, dim, axes) = (g.prior(), g.latent_dim(), models.axes);
    // Every cell is a recipe: its latent is computed the one way `ganime generate --recipe` and the editors do.
    let cells = |recipes: Vec<Recipe>, caption: &dyn Fn(usize) -> String| -> Result<Vec<Cell>> {
        recipes
            .into_iter()
            .enumerate()
            .map(|(i, r)| Ok(Cell { z: r.latent(prior, dim, axes, device)?.flatten_all()?.to_vec1()?, caption: caption(i), recipe: r.to_string() }))
            .collect()
    };
    Ok(match row {
        Row::Seeds(seeds) => (String::new(), cells(seeds.iter().map(|&s| Recipe::seed(s)).collect(), &|i| format!("seed {}", seeds[i]))?),
        Row::Variations { seed, count, strength } => {
            let recipes = (0..*count).map(|i| Recipe { variation: Some((i, *strength)), ..Recipe::seed(*seed) }).collect();
            (format!("variations of seed {seed} (strength {strength})"), cells(recipes, &|i| format!("var {}", i + 1))?)
        }
        Row::Interpolate { from, to, steps } => {
            if *steps < 2 {
                bail!("an interpolation row needs at least 2 steps");
            }
            let t = |i: usize| i as f64 / (*steps - 1) as f64;
            let recipes = (0..*steps).map(|i| Recipe { toward: Some((*to, t(i))), ..Recipe::seed(*from) }).collect();
            (format!("seed {from} -> seed {to}"), cells(recipes, &|i| format!("t={:.2}", t(i)))?)
        }
        Row::Attribute { seed, axis, range, steps } => {
            if axes.is_none() {
                bail!("an attribute row needs attribute axes (--axes, or the built-in model's)");
            }
            if *steps < 2 {
                bail!("an attribute row needs at least 2 steps");
            }
            let amounts: Vec<f64> = (0..*steps).map(|i| -range + 2.0 * range * i as f64 / (*steps - 1) as f64).collect();
            let recipes = amounts.iter().map(|&a| Recipe { moves: vec![(axis.clone(), a)], ..Recipe::seed(*seed) }).collect();
            (format!("seed {seed}: {axis}"), cells(recipes, &|i| format!("{:+.1}", amounts[i]))?)
        }
        Row::Guided { seed, axis, steps, max_steps } => {
            let clf = models.classifier.context("a guided attribute row needs the attribute classifier")?;
            if *steps < 2 {
                bail!("an attribute row needs at least 2 steps");
            }
            // The path once, then the cells at evenly spaced steps up to where the classifier first sees the value.
            // Each cell's latent is the one its recipe (`seed=S guide=AXIS:K`) computes: the same K steps of the
            // same batch of one.
            let z0 = Recipe::seed(*seed).latent(prior, dim, None, device)?;
            let (_, reached, path) = guide_until_predicted(g, clf, &z0, axis, *max_steps)?;
            let end = reached[0].unwrap_or(*max_steps);
            // Fewer cells than asked where the value is seen within fewer steps: no cell twice.
            let cells = (*steps).min(end + 1);
            let at: Vec<usize> = if cells == 1 { vec![0] } else { (0..cells).map(|i| (i * end + (cells - 1) / 2) / (cells - 1)).collect() };
            let cells = at
                .iter()
                .map(|&k| {
                    let recipe = Recipe { guides: if k == 0 { Vec::new() } else { vec![(axis.clone(), k)] }, ..Recipe::seed(*seed) };
                    let z = if k == 0 { z0.clone() } else { path[k - 1].clone() };
                    Ok(Cell { z: z.flatten_all()?.to_vec1()?, caption: format!("step {k}"), recipe: recipe.to_string() })
                })
                .collect::<Result<Vec<_>>>()?;
            let heading = match reached[0] {
                Some(0) => format!("seed {seed} -> {axis} (already seen)"),
                Some(r) => format!("seed {seed} -> {axis} (seen at step {r})"),
                None => format!("seed {seed} -> {axis} (not seen in {max_steps} steps)"),
            };
            (heading, cells)
        }
    })
}

/// Renders the sheet; returns the page and the JSON metadata to embed.
pub fn render(g: &dyn Generator, spec: &SheetSpec, models: &Models, device: &Device) -> Result<(RgbImage, String)> {
    let classifier = models.classifier.filter(|_| models.captions);
    if spec.columns == 0 || spec.cell < 16 {
        bail!("--columns must be positive and --cell at least 16 pixels");
    }
    let dim = g.latent_dim();
    // Flatten the spec into visual rows of at most `columns` cells, each with an optional heading.
    let mut lines: Vec<(String, Vec<Cell>)> = Vec::new();
    for row in &spec.rows {
        let (heading, cells) = row_cells(row, g, models, device)?;
        let mut cells = cells.into_iter().peekable();
        let mut first = true;
        while cells.peek().is_some() {
            let chunk: Vec<Cell> = cells.by_ref().take(spec.columns).collect();
            lines.push((if first { heading.clone() } else { String::new() }, chunk));
            first = false;
        }
    }
    if lines.is_empty() {
        bail!("the sheet has no cells");
    }
    // The page, before anything is drawn: (columns × cell) by (rows × cell), with room for captions.
    let page_cols = lines.iter().map(|(_, c)| c.len()).max().unwrap_or(1) as u64;
    let cell = spec.cell as u64;
    crate::io::limits::check_rgb(
        "--cell/--columns/rows of the sheet",
        1,
        page_cols * (cell + GAP as u64) + 2 * MARGIN as u64,
        lines.len() as u64 * (2 * cell + 64),
    )?;
    let all: Vec<&Cell> = lines.iter().flat_map(|(_, c)| c.iter()).collect();
    let z = Tensor::from_vec(all.iter().flat_map(|c| c.z.clone()).collect::<Vec<_>>(), (all.len(), dim), device)?;
    let mut images = Vec::with_capacity(all.len());
    let mut attrs: Vec<Option<String>> = Vec::with_capacity(all.len());
    for start in (0..all.len()).step_by(64) {
        let n = 64.min(all.len() - start);
        let x = g.generate(&z.narrow(0, start, n)?)?;
        images.extend(tensor_to_images(&x)?);
        match classifier {
            Some(c) => attrs.extend(c.predict(&x)?.into_iter().map(|v| Some(describe_attributes(c, &v)))),
            None => attrs.extend(std::iter::repeat_n(None, n)),
        }
    }

    let cols = lines.iter().map(|(_, c)| c.len()).max().unwrap_or(1) as u32;
    let caption_lines = if classifier.is_some() { 2 } else { 1 };
    let caption_h = (CAPTION * 1.3) as u32 * caption_lines + 4;
    let heading_h = (HEADING * 1.6) as u32;
    let title_h = if spec.title.is_empty() { 0 } else { (TITLE * 1.6) as u32 };
    let width = 2 * MARGIN + cols * spec.cell + (cols - 1) * GAP;
    let mut height = 2 * MARGIN + title_h;
    for (heading, _) in &lines {
        height += spec.cell + caption_h + GAP + if heading.is_empty() { 0 } else { heading_h };
    }
    let mut page = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let ink = Rgb([30, 30, 30]);
    let grey = Rgb([110, 110, 110]);
    if !spec.title.is_empty() {
        draw_text_fitted(&mut page, &spec.title, 0, width, MARGIN as i32, TITLE, ink);
    }
    let mut y = MARGIN + title_h;
    let mut k = 0;
    let mut records = Vec::new();
    let upscaling = super::upscale::Upscaling::best();
    for (heading, cells) in &lines {
        if !heading.is_empty() {
            draw_text(&mut page, heading, MARGIN as i32, y as i32, HEADING, ink);
            y += heading_h;
        }
        for (c, cell) in cells.iter().enumerate() {
            let x = MARGIN + c as u32 * (spec.cell + GAP);
            let big = upscaling.resize(&images[k], spec.cell, spec.cell)?;
            image::imageops::replace(&mut page, &big, x as i64, y as i64);
            let cy = (y + spec.cell + 3) as i32;
            draw_text_fitted(&mut page, &cell.caption, x as i32, spec.cell, cy, CAPTION, ink);
            if let Some(a) = &attrs[k] {
                draw_text_fitted(&mut page, a, x as i32, spec.cell, cy + (CAPTION * 1.3) as i32, CAPTION * 0.85, grey);
            }
            records.push(CellRecord { caption: cell.caption.clone(), recipe: cell.recipe.clone(), x, y, size: spec.cell });
            k += 1;
        }
        y += spec.cell + caption_h + GAP;
    }
    let meta = serde_json::json!({
        "model": g.describe(),
        "model_identity": g.identity(),
        "upscaling": upscaling.name(),
        "spec": spec,
        "cells": records,
        "headings": lines.iter().map(|(h, _)| h.as_str()).filter(|h| !h.is_empty()).collect::<Vec<_>>(),
        "regenerate": "every cell is `ganime generate --recipe RECIPE` with the same model (a plain `seed=N` is also `--seed N --count 1`)",
    });
    Ok((page, meta.to_string()))
}

fn describe_attributes(c: &AttributeClassifier, values: &[String]) -> String {
    c.config.attributes.iter().zip(values).map(|(a, v)| format!("{v} {a}", a = a.name)).collect::<Vec<_>>().join(", ")
}

/// Writes the page as PNG with the metadata in a `ganime` tEXt chunk (plus Software), atomically.
pub fn save_png_with_metadata(page: &RgbImage, metadata: &str, path: &Path) -> Result<()> {
    write_atomic(path, |tmp| {
        let file = std::fs::File::create(tmp)?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), page.width(), page.height());
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.add_text_chunk("Software".into(), format!("ganime {}", env!("CARGO_PKG_VERSION")))?;
        enc.add_itxt_chunk("ganime".into(), metadata.into())?;
        let mut w = enc.write_header()?;
        w.write_image_data(page.as_raw())?;
        w.finish()?;
        Ok(())
    })
}

/// Reads the `ganime` metadata back from a sheet PNG.
pub fn read_png_metadata(path: &Path) -> Result<String> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?));
    let reader = decoder.read_info().with_context(|| format!("{} is not a PNG", path.display()))?;
    let info = reader.info();
    for t in &info.utf8_text {
        if t.keyword == "ganime" {
            return Ok(t.get_text()?);
        }
    }
    bail!("{} has no ganime metadata", path.display())
}
