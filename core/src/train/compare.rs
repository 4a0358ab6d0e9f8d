//! A short side-by-side comparison of adversarial objectives on the same data, model, seed and step count
//! (the seed paper's GAN-vs-WGAN figures): one DCGAN run per objective, then one image with each run's final
//! sample grid under its name, and plots of every run's D and G losses.

use super::dcgan::train_dcgan;
use super::log::{line_plot, LogRow};
use super::objective::ObjectiveSpec;
use super::optimizer::OptimizerKind;
use super::trainer::{TrainConfig, TrainOptions};
use crate::io::image::save_image;
use crate::io::text::draw_text_centered;
use crate::models::dcgan::DcganConfig;
use anyhow::{Context, Result};
use candle_core::Device;
use image::{Rgb, RgbImage};
use plotters::style::{RGBColor, BLUE, GREEN, MAGENTA, RED};
use std::path::{Path, PathBuf};

/// The optimiser settings each objective's paper recommends, given the base run's Adam settings for BCE/LSGAN:
/// WGAN: RMSProp 5e-5; WGAN-GP: Adam 1e-4, betas (0.5, 0.9).
pub fn recommended(objective: ObjectiveSpec, base: &TrainConfig) -> (TrainConfig, OptimizerKind) {
    let mut config = base.clone();
    let kind = match objective {
        ObjectiveSpec::Wgan { .. } => {
            config.adam.lr = 5e-5;
            OptimizerKind::Rmsprop
        }
        ObjectiveSpec::WganGp { .. } => {
            config.adam.lr = 1e-4;
            config.adam.beta1 = 0.5;
            config.adam.beta2 = 0.9;
            OptimizerKind::Adam
        }
        _ => OptimizerKind::Adam,
    };
    (config, kind)
}

pub struct Comparison {
    pub runs: Vec<(String, PathBuf)>,
    pub grid: PathBuf,
    pub plots: Vec<PathBuf>,
}

fn name(o: &ObjectiveSpec) -> &'static str {
    o.build().name()
}

/// Trains `model` once per objective into `out/<objective>/`, then writes `out/comparison.png`,
/// `out/d_loss.png` and `out/g_loss.png`.
pub fn compare_objectives(
    model: &DcganConfig,
    base: &TrainConfig,
    objectives: &[ObjectiveSpec],
    out: &Path,
    device: &Device,
    quiet: bool,
) -> Result<Comparison> {
    if objectives.is_empty() {
        anyhow::bail!("no objectives to compare");
    }
    if objectives.iter().any(|o| o.build().gradient_penalty().is_some()) {
        // Before any backward of this thread (see enable_second_order_gradients).
        super::objective::enable_second_order_gradients()?;
    }
    let mut runs = Vec::new();
    for objective in objectives {
        let dir = out.join(name(objective));
        let (config, optimizer) = recommended(*objective, base);
        let options = TrainOptions { objective: *objective, optimizer, ..TrainOptions::default() };
        if !quiet {
            eprintln!("{}: {} steps -> {}", name(objective), config.steps, dir.display());
        }
        train_dcgan(
            Some((model.clone(), config, options)),
            &dir,
            None,
            device,
            super::trainer::RunControl { quiet: true, ..Default::default() },
            crate::metrics::TrainingEvalRequest::NONE,
        )
        .with_context(|| format!("the {} run", name(objective)))?;
        runs.push((name(objective).to_string(), dir));
    }
    let grid = out.join("comparison.png");
    save_image(&side_by_side(&runs, base.steps)?, &grid)?;
    let plots = plot_losses(&runs, out)?;
    Ok(Comparison { runs, grid, plots })
}

/// Each run's last sample grid, with its objective's name above it.
fn side_by_side(runs: &[(String, PathBuf)], steps: u64) -> Result<RgbImage> {
    let grids = runs
        .iter()
        .map(|(_, dir)| {
            let p = dir.join("samples").join(format!("step_{steps:07}.png"));
            Ok(image::open(&p).with_context(|| format!("cannot read {}", p.display()))?.to_rgb8())
        })
        .collect::<Result<Vec<_>>>()?;
    let (gw, gh) = grids.iter().fold((0, 0), |(w, h), g| (w.max(g.width()), h.max(g.height())));
    let (title, gap) = (28u32, 8u32);
    let mut page = RgbImage::from_pixel(runs.len() as u32 * (gw + gap) + gap, gh + title + gap, Rgb([255, 255, 255]));
    for (i, ((label, _), g)) in runs.iter().zip(&grids).enumerate() {
        let x = gap + i as u32 * (gw + gap);
        draw_text_centered(&mut page, label, x as i32, gw, 4, 20.0, Rgb([0, 0, 0]));
        image::imageops::replace(&mut page, g, x as i64, title as i64);
    }
    Ok(page)
}

fn plot_losses(runs: &[(String, PathBuf)], out: &Path) -> Result<Vec<PathBuf>> {
    let colors: [RGBColor; 4] = [RED, BLUE, GREEN, MAGENTA];
    let logs = runs
        .iter()
        .map(|(_, dir)| {
            let p = dir.join("log.csv");
            let mut r = csv::Reader::from_path(&p).with_context(|| format!("cannot read {}", p.display()))?;
            r.deserialize().collect::<std::result::Result<Vec<LogRow>, _>>().with_context(|| format!("malformed {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let steps: Vec<f64> = logs[0].iter().map(|r| r.step as f64).collect();
    let mut paths = Vec::new();
    for (file, title, pick) in [
        ("d_loss.png", "Discriminator / critic loss", (|r: &LogRow| r.d_loss) as fn(&LogRow) -> f64),
        ("g_loss.png", "Generator loss", |r: &LogRow| r.g_loss),
    ] {
        let series: Vec<(&str, Vec<f64>, RGBColor)> = runs
            .iter()
            .zip(&logs)
            .enumerate()
            .map(|(i, ((label, _), rows))| (label.as_str(), rows.iter().map(pick).take(steps.len()).collect(), colors[i % colors.len()]))
            .collect();
        let path = out.join(file);
        if steps.len() >= 2 {
            line_plot(&path, title, &steps, &series)?;
            paths.push(path);
        }
    }
    Ok(paths)
}
