//! Quality measured during training: every N steps the trainer asks a [`Monitor`] for numbers (e.g. the kernel
//! distance of fixed generated samples to real images), logs them to `metrics.csv` and plots `metrics.png`
//! beside the loss plots.

use super::animegan::AnimeGanTask;
use super::log::line_plot;
use super::DcganTask;
use crate::data::{Dataset, ImageSpec};
use crate::io::write_atomic;
use crate::metrics::{dataset_images, embed_all, frechet_distance, kernel_distance, ClassifierFeatures, TrainingEval, VggFeatures, BATCH};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use plotters::style::{BLACK, BLUE, CYAN, GREEN, MAGENTA, RED};
use std::path::{Path, PathBuf};

type Measure<T> = Box<dyn FnMut(&T) -> Result<Vec<f64>>>;

pub struct Monitor<T> {
    pub every: u64,
    /// One name per number `measure` returns.
    pub names: Vec<String>,
    pub measure: Measure<T>,
}

impl<T> Monitor<T> {
    pub fn new(every: u64, names: &[&str], measure: impl FnMut(&T) -> Result<Vec<f64>> + 'static) -> Result<Self> {
        if every == 0 {
            bail!("the metric interval must be at least 1 step");
        }
        Ok(Self { every, names: names.iter().map(|s| s.to_string()).collect(), measure: Box::new(measure) })
    }
}

/// A CSV of named series, `step,<name>…`, with its plot: `metrics.csv` (quality) or `loss-terms.csv`; on resume
/// rows past the checkpoint's step are dropped.
pub struct MetricsLog {
    path: PathBuf,
    names: Vec<String>,
    rows: Vec<(u64, Vec<f64>)>,
    /// The plot's file name (beside the CSV) and title.
    plot: (&'static str, &'static str),
}

impl MetricsLog {
    /// `metrics.csv` and `metrics.png`.
    pub fn open(path: &Path, names: &[String], resume_step: Option<u64>) -> Result<Self> {
        Self::open_with_plot(path, names, resume_step, ("metrics.png", "Quality of fixed samples (lower is better)"))
    }

    pub fn open_with_plot(path: &Path, names: &[String], resume_step: Option<u64>, plot: (&'static str, &'static str)) -> Result<Self> {
        let mut rows = Vec::new();
        if let (Some(last), true) = (resume_step, path.exists()) {
            // Flexible: a row cut short (a crash mid-write) is skipped below rather than failing the resume.
            let mut r = csv::ReaderBuilder::new().flexible(true).from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
            // Columns are matched by name, so a run resumed by a build that logs more (or fewer) series keeps
            // its history: a series the file lacks reads NaN (its line in the plot starts where its values do).
            let header: Vec<String> =
                r.headers().with_context(|| format!("malformed header in {}", path.display()))?.iter().map(str::to_string).collect();
            let columns: Vec<Option<usize>> = names.iter().map(|n| header.iter().position(|h| h == n)).collect();
            for rec in r.records() {
                let rec = rec.with_context(|| format!("malformed row in {}", path.display()))?;
                let values: Vec<f64> = rec.iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect();
                if values.len() != header.len() || values.is_empty() || !(values[0] >= 0.0 && values[0] as u64 <= last) {
                    continue;
                }
                rows.push((values[0] as u64, columns.iter().map(|c| c.map_or(f64::NAN, |c| values[c])).collect()));
            }
        }
        let log = Self { path: path.to_path_buf(), names: names.to_vec(), rows, plot };
        log.write()?;
        Ok(log)
    }

    fn write(&self) -> Result<()> {
        write_atomic(&self.path, |tmp| {
            let mut w = csv::Writer::from_path(tmp)?;
            w.write_record(std::iter::once("step").chain(self.names.iter().map(String::as_str)))?;
            for (step, values) in &self.rows {
                w.write_record(std::iter::once(step.to_string()).chain(values.iter().map(|v| v.to_string())))?;
            }
            w.flush()?;
            Ok(())
        })
    }

    /// Records a row and redraws the plot in `dir`.
    pub fn append(&mut self, step: u64, values: Vec<f64>, dir: &Path) -> Result<()> {
        self.record(step, values)?;
        self.plot(dir)
    }

    /// Records a row (the CSV only).
    pub fn record(&mut self, step: u64, values: Vec<f64>) -> Result<()> {
        self.rows.push((step, values));
        self.write()
    }

    /// Every recorded value of the first series whose name starts with `prefix`, oldest first.
    pub fn series(&self, prefix: &str) -> Option<Vec<f64>> {
        let i = self.names.iter().position(|n| n.starts_with(prefix))?;
        Some(self.rows.iter().map(|r| r.1[i]).collect())
    }

    /// Redraws the plot in `dir`.
    pub fn plot(&self, dir: &Path) -> Result<()> {
        if self.rows.len() < 2 {
            return Ok(());
        }
        let x: Vec<f64> = self.rows.iter().map(|r| r.0 as f64).collect();
        let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
        let series: Vec<(&str, Vec<f64>, _)> =
            self.names.iter().enumerate().map(|(i, n)| (n.as_str(), self.rows.iter().map(|r| r.1[i]).collect(), colors[i % colors.len()])).collect();
        line_plot(&dir.join(self.plot.0), self.plot.1, &x, &series)
    }
}

/// Fréchet and kernel distance between `count` fixed generated samples and `count` training images (their
/// features computed once), on the built-in attribute classifier's features.
pub fn dcgan_monitor(data: &dyn Dataset, spec: &ImageSpec, eval: TrainingEval, device: &Device) -> Result<Monitor<DcganTask>> {
    if spec.channels != 3 {
        bail!("--eval-every needs RGB images (the feature network takes colour); this model makes {}-channel ones", spec.channels);
    }
    if eval.count < 10 {
        bail!("--eval-count {}: the metrics need at least 10 images", eval.count);
    }
    let clf = crate::generate::builtin::classifier(device)?;
    let real = embed_all(&ClassifierFeatures(&clf), &dataset_images(data, eval.count, spec.size, device)?)?;
    let count = real.rows;
    // The same latents every time, drawn once, so the curve shows the generator changing and nothing else.
    let mut z: Option<Tensor> = None;
    let device = device.clone();
    Monitor::new(eval.every, &["Fréchet distance", "kernel distance ×100"], move |task: &DcganTask| {
        let z = match &z {
            Some(z) => z.clone(),
            None => z.insert(crate::generate::prior_latents(task.g.config.prior, 0x5eed, count, task.g.config.nz, &device)?).clone(),
        };
        let mut parts = Vec::new();
        for start in (0..count).step_by(BATCH) {
            parts.push(task.g.forward(&z.narrow(0, start, BATCH.min(count - start))?, crate::nn::Mode::Eval)?);
        }
        let fake = embed_all(&ClassifierFeatures(&clf), &Tensor::cat(&parts, 0)?)?;
        let (kid, _) = kernel_distance(&real, &fake, 5, 1000, 0)?;
        Ok(vec![frechet_distance(&real, &fake)?, 100.0 * kid])
    })
}

/// Fréchet and kernel distance between `count` fixed photos stylised by the current generator and `count`
/// pictures of the anime set, whole and at the training size, on VGG16 relu3_3 features (mean-pooled, as
/// `ganime eval --features vgg16` measures a filter). The photos are training photos: the number follows how
/// far the rendering has moved toward the anime set, not generalisation.
pub fn animegan_monitor(
    photos: &dyn Dataset,
    anime: &dyn Dataset,
    spec: &ImageSpec,
    vgg16: &Path,
    eval: TrainingEval,
    device: &Device,
) -> Result<Monitor<AnimeGanTask>> {
    if eval.count < 10 {
        bail!("--eval-count {}: the metrics need at least 10 images", eval.count);
    }
    let vgg =
        VggFeatures::load(vgg16, "relu3_3", device).with_context(|| format!("--eval-every measures on VGG16 features from {}", vgg16.display()))?;
    let anime = embed_all(&vgg, &crate::data::spread_samples(anime, spec, eval.count, device)?)?;
    let photos = crate::data::spread_samples(photos, spec, eval.count, device)?;
    // Small batches: the generator runs at the training size on the CPU beside the training's own buffers.
    const STYLISE_BATCH: usize = 8;
    Monitor::new(eval.every, &["Fréchet distance", "kernel distance"], move |task: &AnimeGanTask| {
        let n = photos.dim(0)?;
        let mut parts = Vec::new();
        for start in (0..n).step_by(STYLISE_BATCH) {
            parts.push(task.generate(&photos.narrow(0, start, STYLISE_BATCH.min(n - start))?)?.detach());
        }
        let stylised = embed_all(&vgg, &Tensor::cat(&parts, 0)?)?;
        let (kid, _) = kernel_distance(&anime, &stylised, 5, 1000, 0)?;
        Ok(vec![frechet_distance(&anime, &stylised)?, kid])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On resume, rows past the checkpoint go, and the rest keep their values by column name when the resuming
    /// build logs other series (a new loss term): a series the file lacks reads NaN, one it has no more is dropped.
    #[test]
    fn resumed_log_matches_columns_by_name() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("loss-terms.csv");
        let old = MetricsLog::open(&path, &["a".into(), "b".into()], None)?;
        let mut old = old;
        old.record(10, vec![1.0, 2.0])?;
        old.record(20, vec![3.0, 4.0])?;
        old.record(30, vec![5.0, 6.0])?;
        let mut new = MetricsLog::open(&path, &["b".into(), "c".into()], Some(20))?;
        assert_eq!(new.rows.len(), 2);
        assert_eq!(new.rows[1].0, 20);
        assert_eq!(new.rows[1].1[0], 4.0);
        assert!(new.rows[1].1[1].is_nan());
        new.append(21, vec![7.0, 8.0], dir.path())?;
        let text = std::fs::read_to_string(&path)?;
        assert!(text.starts_with("step,b,c\n10,2,NaN\n20,4,NaN\n21,7,8"), "{text}");
        assert!(dir.path().join("metrics.png").exists(), "the plot is drawn over the gap");
        // A row cut short is dropped, not an error.
        std::fs::write(&path, "step,b,c\n10,2,3\n20,4\n")?;
        let log = MetricsLog::open(&path, &["b".into(), "c".into()], Some(30))?;
        assert_eq!(log.rows, vec![(10, vec![2.0, 3.0])]);
        Ok(())
    }
}
