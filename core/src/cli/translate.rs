//! `ganime translate`: images through a CycleGAN generator.

use crate::data::ImageFolder;
use crate::device::parse_device;
use crate::filter::Filter;
use crate::filters::anime::CycleGanFilter;
use crate::models::cyclegan::Direction;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct TranslateArgs {
    /// A ganime CycleGAN checkpoint or run folder, or a reference generator file (`latest_net_G_A.pth`).
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long, default_value_t = Direction::A2b)]
    direction: Direction,
    /// An image or a folder of images.
    #[arg(long = "in")]
    input: PathBuf,
    /// The output image (for one input) or folder (for a folder; files keep their names, as PNG).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn translate(a: TranslateArgs) -> Result<()> {
    let device = parse_device(&a.device)?;
    let filter = CycleGanFilter::open(&a.checkpoint, a.direction, &device)?;
    let jobs: Vec<(PathBuf, PathBuf)> = if a.input.is_dir() {
        let folder = ImageFolder::open(&a.input)?;
        folder
            .paths()
            .iter()
            .map(|p| {
                let rel = p.strip_prefix(&a.input).unwrap_or(p);
                (p.clone(), a.out.join(rel).with_extension("png"))
            })
            .collect()
    } else if a.input.is_file() {
        vec![(a.input.clone(), a.out.clone())]
    } else {
        bail!("--in {} is neither an image nor a folder", a.input.display());
    };
    for (src, dst) in &jobs {
        translate_one(&filter, src, dst)?;
    }
    eprintln!("translated {} image(s) with {} -> {}", jobs.len(), a.direction.generator_name(), a.out.display());
    Ok(())
}

fn translate_one(filter: &dyn Filter, src: &Path, dst: &Path) -> Result<()> {
    let img = image::ImageReader::open(src)
        .and_then(|r| r.with_guessed_format())
        .with_context(|| format!("cannot open {}", src.display()))?
        .decode()
        .with_context(|| format!("cannot decode image {}", src.display()))?
        .to_rgb8();
    crate::io::image::save_image(&filter.apply(&img)?, dst)
}
