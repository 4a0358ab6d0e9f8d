//! `ganime generate`: images from a generator (the built-in model unless --checkpoint), as a grid or files.

use crate::device::parse_device;
use crate::generate::attributes::{axes_for, AttributeAxes};
use crate::generate::recipe::{character, Recipe};
use crate::generate::{load_generator, Generator};
use crate::io::image::{grid, save_image, tensor_to_images};
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
    /// Attributes kept fixed while moving (default: all others); `none` locks nothing.
    #[arg(long, value_delimiter = ',')]
    lock: Vec<String>,
    /// One character from a recipe, as sheet cells and the editors record it, e.g.
    /// "seed=3 variation=2@0.75 set=hair=blonde:+1.5" (needs --out).
    #[arg(long, conflicts_with_all = ["count", "seed", "set", "lock", "out_dir", "columns"], requires = "out")]
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

/// `--set` moves along attribute axes, with `--axes` and `--lock`.
struct AttributeMoves {
    axes: AttributeAxes,
    moves: Vec<(String, f64)>,
    lock: Option<Vec<String>>,
}

impl AttributeMoves {
    /// None when no --set was given.
    fn requested(a: &GenerateArgs, g: &dyn Generator, device: &Device) -> Result<Option<Self>> {
        let moves = a.set.iter().map(|s| crate::generate::attributes::parse_move(s)).collect::<Result<Vec<_>>>()?;
        if moves.is_empty() {
            return Ok(None);
        }
        let axes = axes_required(a.axes.as_deref(), g, device)?;
        let lock = match a.lock.as_slice() {
            [] => None,
            [none] if none == "none" => Some(Vec::new()),
            l => Some(l.to_vec()),
        };
        Ok(Some(Self { axes, moves, lock }))
    }

    fn apply(&self, z: &candle_core::Tensor) -> Result<candle_core::Tensor> {
        self.axes.apply(z, &self.moves, self.lock.as_deref())
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
        save_image(&character(g.as_ref(), &recipe, axes.as_ref(), size, &device)?, out)?;
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
