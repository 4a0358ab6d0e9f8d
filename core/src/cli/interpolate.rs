//! `ganime interpolate`: latent-space figures.

use super::generate::upscale;
use crate::device::parse_device;
use crate::generate::{self, load_generator, LatentPath};
use crate::io::image::{grid, save_image, tensor_to_images};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InterpolateArgs {
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Seed of the start latent.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Seed of the end latent.
    #[arg(long, default_value_t = 1)]
    to: u64,
    /// Images along the path.
    #[arg(long, default_value_t = 8)]
    steps: usize,
    #[arg(long, default_value_t = LatentPath::Slerp)]
    path: LatentPath,
    /// Instead of interpolating, sweep this latent dimension of the --from latent over [-range, range].
    #[arg(long)]
    walk_dim: Option<usize>,
    #[arg(long, default_value_t = 3.0)]
    range: f64,
    /// Number of rows: each row uses seeds from+row and to+row (a grid of interpolations).
    #[arg(long, default_value_t = 1)]
    rows: usize,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    scale: u32,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn interpolate(a: InterpolateArgs) -> Result<()> {
    if a.rows == 0 || a.steps == 0 || a.scale == 0 {
        bail!("--rows, --steps and --scale must be at least 1");
    }
    let device = parse_device(&a.device)?;
    let g = load_generator(a.checkpoint.as_deref(), &device)?;
    let mut images = Vec::new();
    // Every picture is held for the grid: check the whole before making any.
    let side = tensor_to_images(&g.generate(&g.latents(a.from, 1, &device)?)?)?[0].dimensions();
    crate::io::limits::check_rgb(
        "--rows/--steps/--scale",
        2 * (a.rows as u64).saturating_mul(a.steps as u64),
        side.0 as u64 * a.scale as u64,
        side.1 as u64 * a.scale as u64,
    )?;
    for row in 0..a.rows as u64 {
        let start = g.latents(a.from + row, 1, &device)?.get(0)?;
        let z = match a.walk_dim {
            Some(d) => generate::walk(&start, d, a.steps, a.range)?,
            None => generate::interpolate(&start, &g.latents(a.to + row, 1, &device)?.get(0)?, a.steps, a.path)?,
        };
        images.extend(tensor_to_images(&g.generate(&z)?)?);
    }
    save_image(&grid(&upscale(images, a.scale), a.steps, 2)?, &a.out)?;
    eprintln!("wrote {} ({} rows x {} steps)", a.out.display(), a.rows, a.steps);
    Ok(())
}
