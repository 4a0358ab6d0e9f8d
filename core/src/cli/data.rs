//! `ganime data export-csv`: a dataset as CSV for other tools (the Simpsons paper's x and y files).

use super::train_dcgan::SelectionArgs;
use crate::data::selection::{open_selected, Part};
use crate::data::{Fit, ImageSpec};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum DataCommand {
    /// One row per image: PREFIX-x.csv holds the pixels (0-255, row by row, channels interleaved as in an HxWxC
    /// array), PREFIX-y.csv the label (class index and class folder name). Unreadable images are skipped and
    /// counted.
    ExportCsv(ExportCsvArgs),
}

#[derive(clap::Args)]
pub struct ExportCsvArgs {
    /// Image folder (one subfolder per class for labels) or MNIST IDX file.
    #[arg(long)]
    data: PathBuf,
    #[command(flatten)]
    selection: SelectionArgs,
    /// Which part with --holdout: train, holdout or all.
    #[arg(long, default_value_t = Part::All)]
    part: Part,
    /// Side the images are centre-cropped and resized to.
    #[arg(long, default_value_t = 28)]
    size: usize,
    /// Grayscale (one value per pixel) instead of RGB.
    #[arg(long)]
    gray: bool,
    /// Output prefix: writes PREFIX-x.csv and PREFIX-y.csv.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing output files.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::ExportCsv(a) => export_csv(a),
    }
}

fn export_csv(a: ExportCsvArgs) -> Result<()> {
    if !(1..=512).contains(&a.size) {
        bail!("--size {}: must be 1..=512", a.size);
    }
    let selected = open_selected(&a.data, &a.selection.selection(), a.part)?;
    let spec = ImageSpec { size: a.size, channels: if a.gray { 1 } else { 3 }, fit: Fit::CenterCrop };
    let path = |suffix: &str| {
        let mut name = a.out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(suffix);
        a.out.with_file_name(name)
    };
    let (x_path, y_path) = (path("-x.csv"), path("-y.csv"));
    for p in [&x_path, &y_path] {
        if p.exists() && !a.overwrite {
            bail!("{} exists: pass --overwrite to replace it", p.display());
        }
    }
    // Class indices in name order; a dataset without class folders gets index 0 and an empty name.
    let names: Vec<&String> = selected.kept.keys().collect();
    let mut skipped = 0usize;
    let mut rows = 0usize;
    crate::io::atomic::write_atomic(&x_path, |x_tmp| {
        crate::io::atomic::write_atomic(&y_path, |y_tmp| {
            let mut x = std::io::BufWriter::new(std::fs::File::create(x_tmp)?);
            let mut y = std::io::BufWriter::new(std::fs::File::create(y_tmp)?);
            let values = spec.sample_len();
            writeln!(x, "{}", (0..values).map(|i| format!("p{i}")).collect::<Vec<_>>().join(","))?;
            writeln!(y, "label,class")?;
            let plane = a.size * a.size;
            for i in 0..selected.data.len() {
                let Ok(v) = selected.data.load(i, &spec) else {
                    skipped += 1;
                    continue;
                };
                // CHW in [-1, 1] -> HWC bytes.
                let mut line = String::with_capacity(values * 4);
                for p in 0..plane {
                    for c in 0..spec.channels {
                        if !line.is_empty() {
                            line.push(',');
                        }
                        line.push_str(&(((v[c * plane + p] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8).to_string());
                    }
                }
                writeln!(x, "{line}")?;
                let class = &selected.classes[i];
                let index = names.iter().position(|n| *n == class).unwrap_or(0);
                writeln!(y, "{index},{}", csv_field(class))?;
                rows += 1;
            }
            x.flush()?;
            y.flush()?;
            Ok(())
        })
    })
    .with_context(|| format!("writing {} and {}", x_path.display(), y_path.display()))?;
    eprintln!("{}", selected.report());
    eprintln!(
        "wrote {rows} rows to {} and {} ({}x{} {}){}",
        x_path.display(),
        y_path.display(),
        a.size,
        a.size,
        if a.gray { "gray" } else { "RGB" },
        if skipped > 0 { format!(", {skipped} unreadable images skipped") } else { String::new() }
    );
    Ok(())
}

/// A class name as a CSV field (quoted when it holds a comma or quote).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
