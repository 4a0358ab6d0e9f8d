//! The training log: one CSV row per logged step, and PNG plots of the losses and D's scores drawn from it.

use crate::io::write_atomic;
use anyhow::{Context, Result};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    pub step: u64,
    pub epoch: usize,
    pub d_loss: f64,
    pub g_loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub seconds: f64,
}

pub struct TrainLog {
    path: PathBuf,
    pub rows: Vec<LogRow>,
}

impl TrainLog {
    /// Opens `path`; on resume keeps the rows up to `resume_step` (a crashed run may have logged further).
    pub fn open(path: &Path, resume_step: Option<u64>) -> Result<Self> {
        let mut rows = Vec::new();
        if let (Some(last), true) = (resume_step, path.exists()) {
            let mut r = csv::Reader::from_path(path).with_context(|| format!("cannot read log {}", path.display()))?;
            for row in r.deserialize() {
                let row: LogRow = row.with_context(|| format!("malformed row in {}", path.display()))?;
                if row.step <= last {
                    rows.push(row);
                }
            }
        }
        let log = Self { path: path.to_path_buf(), rows };
        log.rewrite()?;
        Ok(log)
    }

    fn rewrite(&self) -> Result<()> {
        write_atomic(&self.path, |tmp| {
            let mut w = csv::Writer::from_path(tmp)?;
            if self.rows.is_empty() {
                w.write_record(["step", "epoch", "d_loss", "g_loss", "d_real", "d_fake", "seconds"])?;
            }
            for row in &self.rows {
                w.serialize(row)?;
            }
            w.flush()?;
            Ok(())
        })
    }

    pub fn append(&mut self, row: LogRow) -> Result<()> {
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).with_context(|| format!("cannot append to {}", self.path.display()))?;
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.serialize(&row)?;
        f.write_all(&w.into_inner()?)?;
        self.rows.push(row);
        Ok(())
    }

    /// `loss.png` (G and D loss) and `scores.png` (D(x), D(G(z))) against the step.
    pub fn plot(&self, dir: &Path) -> Result<()> {
        if self.rows.len() < 2 {
            return Ok(());
        }
        let steps: Vec<f64> = self.rows.iter().map(|r| r.step as f64).collect();
        let col = |f: fn(&LogRow) -> f64| self.rows.iter().map(f).collect::<Vec<f64>>();
        line_plot(
            &dir.join("loss.png"),
            "Generator and discriminator loss",
            &steps,
            &[("D loss", col(|r| r.d_loss), RED), ("G loss", col(|r| r.g_loss), BLUE)],
        )?;
        line_plot(
            &dir.join("scores.png"),
            "Discriminator scores",
            &steps,
            &[("D(x)", col(|r| r.d_real), GREEN), ("D(G(z))", col(|r| r.d_fake), MAGENTA)],
        )
    }
}

pub const PLOT_SIZE: (u32, u32) = (800, 480);

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // Embedded so plots have labels on machines without fontconfig (see assets/FONT-LICENSE.md).
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../../assets/DejaVuSansMono.ttf"));
    });
}

/// Draws series against `x` into an RGB buffer with plotters, then writes it as PNG atomically.
pub fn line_plot(path: &Path, title: &str, x: &[f64], series: &[(&str, Vec<f64>, RGBColor)]) -> Result<()> {
    register_font();
    let (w, h) = PLOT_SIZE;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let finite = series.iter().flat_map(|s| s.1.iter()).copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
        let margin = (hi - lo) * 0.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x[0]..x[x.len() - 1].max(x[0] + 1.0), (lo - margin)..(hi + margin))
            .map_err(plot_err)?;
        chart.configure_mesh().x_desc("iteration").label_style(("sans-serif", 14)).draw().map_err(plot_err)?;
        for (name, ys, color) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(x.iter().copied().zip(ys.iter().copied()).filter(|p| p.1.is_finite()), color.stroke_width(2)))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        root.present().map_err(plot_err)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).context("plot buffer size")?;
    write_atomic(path, |tmp| Ok(img.save_with_format(tmp, image::ImageFormat::Png)?))
}

fn plot_err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plotting failed: {e}")
}
