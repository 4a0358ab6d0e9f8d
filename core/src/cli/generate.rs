//! `ganime generate`: images from a generator (the built-in model unless --checkpoint), as a grid or files.

use crate::device::parse_device;
use crate::generate::attributes::{axes_for, classifier_from, AttributeAxes};
use crate::generate::guide;
use crate::generate::recipe::{character, Recipe};
use crate::generate::{load_generator, Generator};
use crate::io::image::{grid, save_image, tensor_to_images};
use crate::models::attribute_classifier::AttributeClassifier;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct GenerateArgs {
    /// A ganime checkpoint (run folder or .safetensors) or a pytorch/examples netG .pth; default: built-in model.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// An N×N grid with numbered rows and columns whose cell (row, column) is seed --seed + (row-1)·N +
    /// (column-1), one seed per picture: `--grid 1 --seed S` (or `sheet --seeds S`) makes that cell again.
    /// Prints the cell -> seed table.
    #[arg(long, conflicts_with_all = ["count", "columns", "out_dir"], requires = "out")]
    grid: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// One grid image (PNG).
    #[arg(long, required_unless_present = "out_dir")]
    out: Option<PathBuf>,
    /// One PNG per image in this folder (written as they are made: any --count).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Images per grid row (default: square-ish).
    #[arg(long)]
    columns: Option<usize>,
    /// Upscale each image by this integer factor (nearest) for viewing.
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Move along a TL-GAN attribute axis, ATTRIBUTE=VALUE:AMOUNT (repeatable), e.g. hair=blonde:+1.5.
    #[arg(long)]
    set: Vec<String>,
    /// Attribute axes for --set (default: the built-in model's).
    #[arg(long)]
    axes: Option<PathBuf>,
    /// Move toward an attribute value guided by the attribute classifier, ATTRIBUTE=VALUE[:STEPS] (repeatable,
    /// applied after --set, in order), e.g. hair=blonde:12; without STEPS each character moves until the
    /// classifier predicts the value (at most 32 steps of 0.25). Holds the other attributes; needs no axes.
    #[arg(long)]
    guide: Vec<String>,
    /// Attribute classifier for --guide and guided recipes (default: the built-in one).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Attributes kept fixed while moving (default: all others); `none` locks nothing.
    #[arg(long, value_delimiter = ',')]
    lock: Vec<String>,
    /// One character from a recipe, as sheet cells and the editors record it, e.g.
    /// "seed=3 variation=2@0.75 set=hair=blonde:+1.5" (needs --out).
    #[arg(long, conflicts_with_all = ["count", "seed", "set", "guide", "lock", "out_dir", "columns"], requires = "out")]
    recipe: Option<String>,
    /// Resize each image to SIZE x SIZE pixels with Lanczos3, as sheet cells and the editors' placed characters are.
    #[arg(long, conflicts_with = "scale")]
    size: Option<u32>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub(super) fn upscale(images: Vec<image::RgbImage>, scale: u32) -> Vec<image::RgbImage> {
    if scale <= 1 {
        return images;
    }
    images.into_iter().map(|i| image::imageops::resize(&i, i.width() * scale, i.height() * scale, image::imageops::FilterType::Nearest)).collect()
}

fn axes_required(path: Option<&Path>, g: &dyn Generator, device: &Device) -> Result<AttributeAxes> {
    axes_for(path, &g.identity(), device)?.context("--set needs attribute axes fit for this generator: run `ganime attributes fit` and pass --axes")
}

/// `--set` moves along attribute axes (with `--axes` and `--lock`), then `--guide` moves (with `--classifier`).
struct AttributeMoves<'g> {
    g: &'g dyn Generator,
    axes: Option<AttributeAxes>,
    moves: Vec<(String, f64)>,
    lock: Option<Vec<String>>,
    classifier: Option<AttributeClassifier>,
    /// (axis, steps; None: until the classifier predicts the value).
    guides: Vec<(String, Option<usize>)>,
}

impl<'g> AttributeMoves<'g> {
    /// None when neither --set nor --guide was given.
    fn requested(a: &GenerateArgs, g: &'g dyn Generator, device: &Device) -> Result<Option<Self>> {
        let moves = a.set.iter().map(|s| crate::generate::attributes::parse_move(s)).collect::<Result<Vec<_>>>()?;
        let guides = a.guide.iter().map(|s| guide::parse_guide(s).with_context(|| format!("--guide {s}"))).collect::<Result<Vec<_>>>()?;
        if moves.is_empty() && guides.is_empty() {
            return Ok(None);
        }
        let axes = if moves.is_empty() { None } else { Some(axes_required(a.axes.as_deref(), g, device)?) };
        let classifier = if guides.is_empty() { None } else { Some(classifier_from(a.classifier.as_deref(), device)?) };
        if let Some(clf) = &classifier {
            for (axis, _) in &guides {
                guide::value_index(clf, axis).with_context(|| format!("--guide {axis}"))?;
            }
        }
        let lock = match a.lock.as_slice() {
            [] => None,
            [none] if none == "none" => Some(Vec::new()),
            l => Some(l.to_vec()),
        };
        Ok(Some(Self { g, axes, moves, lock, classifier, guides }))
    }

    fn apply(&self, z: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        let mut z = match &self.axes {
            Some(axes) => axes.apply(z, &self.moves, self.lock.as_deref())?,
            None => z.clone(),
        };
        let Some(clf) = &self.classifier else { return Ok(z) };
        for (axis, steps) in &self.guides {
            z = match steps {
                Some(0) => z,
                Some(n) => guide::guided_path(self.g, clf, &z, axis, *n)?.pop().context("no guided step")?,
                None => {
                    let (moved, reached, _) = guide::guide_until_predicted(self.g, clf, &z, axis, guide::DEFAULT_MAX_STEPS)?;
                    let hit = reached.iter().flatten().count();
                    eprintln!(
                        "--guide {axis}: {hit} of {} characters reached it (median {} steps); {} not within {} steps",
                        reached.len(),
                        guide::median_steps(&reached).map_or("-".into(), |m| m.to_string()),
                        reached.len() - hit,
                        guide::DEFAULT_MAX_STEPS
                    );
                    moved
                }
            };
        }
        Ok(z)
    }
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    if a.scale == 0 {
        bail!("--scale must be at least 1");
    }
    if a.size == Some(0) {
        bail!("--size must be at least 1");
    }
    let device = parse_device(&a.device)?;
    let g = load_generator(a.checkpoint.as_deref(), &device)?;
    if let Some(n) = a.grid {
        return seed_grid(&a, n, g.as_ref(), &device);
    }
    let size = a.size.map(|s| (s, s));
    if let (Some(text), Some(out)) = (&a.recipe, &a.out) {
        let recipe: Recipe = text.parse().context("--recipe")?;
        let axes = if recipe.needs_axes() { Some(axes_required(a.axes.as_deref(), g.as_ref(), &device)?) } else { None };
        let clf = if recipe.guides.is_empty() { None } else { Some(classifier_from(a.classifier.as_deref(), &device)?) };
        save_image(&character(g.as_ref(), &recipe, axes.as_ref(), clf.as_ref(), size, &device)?, out)?;
        eprintln!("wrote {} ({recipe}, {})", out.display(), g.describe());
        return Ok(());
    }
    let moves = AttributeMoves::requested(&a, g.as_ref(), &device)?;
    if let Some(dir) = &a.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create --out-dir {}", dir.display()))?;
    }
    // Batches of 64, latents drawn batch by batch from the seed's one stream (the same values as drawing all at
    // once), written to --out-dir as they are made: memory stays flat whatever --count is. Only the --out grid
    // holds every picture, and is checked against the memory limit first.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut kept = Vec::new();
    for start in (0..a.count).step_by(64) {
        let n = 64.min(a.count - start);
        let mut z = g.prior().sample(&mut rng, &[n, g.latent_dim()], &device)?;
        if let Some(moves) = &moves {
            z = moves.apply(&z)?;
        }
        let images = tensor_to_images(&g.generate(&z)?)?;
        if start == 0 {
            // Before upscaling: the grid holds every picture (and its copy on the page); --out-dir one batch.
            let (w, h) = images[0].dimensions();
            let (w, h) = match size {
                Some((w, h)) => (w as u64, h as u64),
                None => (w as u64 * a.scale as u64, h as u64 * a.scale as u64),
            };
            match a.out {
                Some(_) => crate::io::limits::check_rgb("--count/--scale/--size of the --out grid", 2 * a.count as u64, w, h)?,
                None => crate::io::limits::check_rgb("--scale/--size", n as u64, w, h)?,
            }
        }
        let images = match size {
            Some((w, h)) => {
                let upscaling = crate::generate::upscale::Upscaling::best();
                images.iter().map(|i| upscaling.resize(i, w, h)).collect::<Result<Vec<_>>>()?
            }
            None => upscale(images, a.scale),
        };
        if let Some(dir) = &a.out_dir {
            for (i, img) in images.iter().enumerate() {
                save_image(img, &dir.join(format!("seed{}_{:04}.png", a.seed, start + i)))?;
            }
        }
        if a.out.is_some() {
            kept.extend(images);
        }
    }
    if let Some(dir) = &a.out_dir {
        eprintln!("wrote {} images to {} ({})", a.count, dir.display(), g.describe());
    }
    let images = kept;
    if let Some(out) = &a.out {
        // A single image is saved as it is (no grid border), so it can be compared with a sheet's cell.
        if let [only] = images.as_slice() {
            save_image(only, out)?;
        } else {
            let cols = a.columns.unwrap_or_else(|| (images.len() as f64).sqrt().ceil() as usize);
            save_image(&grid(&images, cols, 2)?, out)?;
        }
        eprintln!("wrote {} ({} images, {})", out.display(), images.len(), g.describe());
    }
    Ok(())
}

/// `--grid N`: one picture per seed, laid out with numbered rows and columns.
fn seed_grid(a: &GenerateArgs, n: usize, g: &dyn crate::generate::Generator, device: &candle_core::Device) -> Result<()> {
    use crate::generate::seed_grid::{cell_seed, render, validate};
    validate(n)?;
    let Some(out) = &a.out else { bail!("--grid needs --out") };
    let moves = AttributeMoves::requested(a, g, device)?;
    let seeds: Vec<u64> = (1..=n).flat_map(|r| (1..=n).map(move |c| cell_seed(a.seed, n, r, c))).collect();
    let z = seeds.iter().map(|&s| Ok(g.latents(s, 1, device)?.get(0)?)).collect::<Result<Vec<_>>>()?;
    let mut z = candle_core::Tensor::stack(&z, 0)?;
    if let Some(moves) = &moves {
        z = moves.apply(&z)?;
    }
    let first = tensor_to_images(&g.generate(&z.narrow(0, 0, 1)?)?)?;
    let (w, h) = first[0].dimensions();
    crate::io::limits::check_rgb("--grid/--scale", 2 * (n * n) as u64, w as u64 * a.scale as u64, h as u64 * a.scale as u64)?;
    let mut images = Vec::with_capacity(n * n);
    for start in (0..n * n).step_by(64) {
        images.extend(tensor_to_images(&g.generate(&z.narrow(0, start, 64.min(n * n - start))?)?)?);
    }
    save_image(&render(&upscale(images, a.scale), n)?, out)?;
    for r in 1..=n {
        let row: Vec<String> = (1..=n).map(|c| format!("({r},{c})={}", cell_seed(a.seed, n, r, c))).collect();
        println!("{}", row.join("  "));
    }
    eprintln!("wrote {} ({n}x{n} grid, seeds {}..={}, {})", out.display(), seeds[0], seeds[seeds.len() - 1], g.describe());
    Ok(())
}
