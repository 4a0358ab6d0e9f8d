//! `ganime export`: a checkpoint's generator as a small model file.

use crate::generate::{self};
use crate::io::checkpoint::Checkpoint;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long)]
    out: PathBuf,
    /// f16 halves the size; f32 keeps the weights exact.
    #[arg(long, default_value = "f16")]
    dtype: String,
    /// How the model was trained (stored in the file).
    #[arg(long, default_value = "")]
    note: String,
    /// CycleGAN checkpoints: export the B->A generator instead of A->B.
    #[arg(long)]
    b2a: bool,
}

pub fn export(a: ExportArgs) -> Result<()> {
    let dtype = match a.dtype.as_str() {
        "f16" => candle_core::DType::F16,
        "f32" => candle_core::DType::F32,
        other => bail!("--dtype must be f16 or f32, not {other}"),
    };
    let ckpt = Checkpoint::read(&a.checkpoint, &candle_core::Device::Cpu)?;
    generate::export_generator(&ckpt, &a.out, dtype, &a.note, a.b2a)?;
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
