//! `ganime stylize`: any filter of the registry (`filters::open`) over an image or a folder of images.

use crate::filter::blend;
use crate::io::image::save_image;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct StylizeArgs {
    /// Filter spec: a built-in name, KIND:PATH for a model file (e.g. style:candy.pth), or arbitrary:STYLE_IMAGE
    /// for the style of any picture, with the options every front door takes: `size=N|WxH` (processing size),
    /// `smooth=A`, `strength=S` (e.g. "matta size=160").
    #[arg(long, conflicts_with = "model")]
    filter: Option<String>,
    /// Shorthand for --filter ARCH:FILE.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Architecture of --model.
    #[arg(long, default_value = "style", requires = "model")]
    arch: String,
    /// Input image, or a folder of images.
    #[arg(long = "in")]
    input: PathBuf,
    /// Output image (for an image input) or folder (for a folder input; files keep their names, as PNG).
    #[arg(long)]
    out: PathBuf,
    /// 0 keeps the original, 1 the fully stylised image; in between blends them (times a `strength=` option).
    #[arg(long, default_value_t = 1.0)]
    strength: f32,
    /// Keep the input's colours (luminance-only stylisation).
    #[arg(long)]
    preserve_colors: bool,
    /// Where the network runs: cpu, cuda or cuda:N (needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Weight and activation type of the network: f32, f16 or bf16 (half types are for the GPU).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Also run the filter in f32 on the first image and print how far the --dtype output is from it
    /// (one JSON line: relative error, largest difference in 8-bit levels, time per image in each type).
    #[arg(long)]
    check_f32: bool,
    /// Replace output files that already exist (and allow writing over an input). Without it, stylize refuses
    /// before touching anything.
    #[arg(long)]
    overwrite: bool,
}

fn is_image(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| ["jpg", "jpeg", "png", "webp", "bmp"].contains(&e.to_ascii_lowercase().as_str()))
}

pub fn stylize(a: StylizeArgs) -> Result<()> {
    let spec = match (&a.filter, &a.model) {
        (Some(f), None) => f.clone(),
        (None, Some(m)) => format!("{}:{}", a.arch, m.display()),
        _ => bail!("give --filter SPEC or --model FILE"),
    };
    if !(0.0..=1.0).contains(&a.strength) {
        bail!("--strength must be in [0, 1], got {}", a.strength);
    }
    let compute = crate::compute::Compute::parse(&a.device, &a.dtype)?;
    let configured = crate::filters::open_with_options_on(&spec, &compute)?;
    let strength = configured.strength * a.strength;
    let filter = configured.filter;
    let jobs: Vec<(PathBuf, PathBuf)> = if a.input.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&a.input)
            .with_context(|| format!("cannot list {}", a.input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("--in {} holds no images (jpg, png, webp, bmp)", a.input.display());
        }
        let names = output_names(&files);
        files.into_iter().zip(names).map(|(f, name)| (f, a.out.join(name))).collect()
    } else if a.input.is_file() {
        vec![(a.input.clone(), a.out.clone())]
    } else {
        match std::fs::metadata(&a.input) {
            Ok(_) => bail!("--in {} is neither an image file nor a folder", a.input.display()),
            Err(_) => bail!("--in {} does not exist", a.input.display()),
        }
    };
    check_outputs(&jobs, a.overwrite)?;
    if a.input.is_dir() {
        std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create --out folder {}", a.out.display()))?;
    }
    if a.check_f32 {
        let first = crate::style::open_rgb(&jobs[0].0)?;
        let parity = crate::filters::half_parity::compare(&spec, &compute, &first)?;
        println!("{}", parity.json(&spec, &compute));
    }
    let started = std::time::Instant::now();
    for (src, dst) in &jobs {
        let img = crate::style::open_rgb(src)?;
        let mut styled = filter.apply(&img).with_context(|| format!("filter `{}` failed on {}", filter.name(), src.display()))?;
        if a.preserve_colors {
            styled = crate::style::color::preserve_colors(&styled, &img)?;
        }
        // Strength last, so 0 really gives the original back.
        let out = if strength >= 1.0 { styled } else { blend(&img, &styled, strength)? };
        save_image(&out, dst)?;
    }
    eprintln!("stylised {} image(s) with `{}` in {:.2} s", jobs.len(), filter.name(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Output file names for a folder of inputs: `NAME.png`, except where several inputs share a name (`a.jpg`,
/// `a.png`): those become `NAME-EXT.png` each, so no output replaces another.
fn output_names(files: &[PathBuf]) -> Vec<String> {
    let stem = |f: &PathBuf| f.file_stem().unwrap_or_default().to_string_lossy().to_string();
    let mut count = std::collections::HashMap::new();
    for f in files {
        *count.entry(stem(f).to_lowercase()).or_insert(0) += 1;
    }
    files
        .iter()
        .map(|f| {
            let s = stem(f);
            if count[&s.to_lowercase()] > 1 {
                format!("{s}-{}.png", f.extension().unwrap_or_default().to_string_lossy().to_lowercase())
            } else {
                format!("{s}.png")
            }
        })
        .collect()
}

/// Refuses, before anything is written, outputs that would replace an input or an existing file (unless
/// `overwrite`).
fn check_outputs(jobs: &[(PathBuf, PathBuf)], overwrite: bool) -> Result<()> {
    if overwrite {
        return Ok(());
    }
    let inputs: std::collections::HashSet<PathBuf> = jobs.iter().filter_map(|(src, _)| src.canonicalize().ok()).collect();
    for (_, dst) in jobs {
        if dst.canonicalize().is_ok_and(|d| inputs.contains(&d)) {
            bail!("--out would write over the input {}; choose another --out, or add --overwrite to replace it", dst.display());
        }
    }
    let existing: Vec<&PathBuf> = jobs.iter().map(|(_, dst)| dst).filter(|d| d.exists()).collect();
    if let Some(first) = existing.first() {
        bail!(
            "{} output file(s) already exist ({}{}); add --overwrite to replace them",
            existing.len(),
            first.display(),
            if existing.len() > 1 { ", …" } else { "" }
        );
    }
    Ok(())
}
