//! `ganime models list` / `ganime models inspect FILE` / `ganime models summary --preset P`.

use crate::models::catalog::{builtin_models, inspect_file, user_model_files, user_models_dir};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// Every built-in model, then the user's model files, with kind, size, licence and source.
    List {
        /// The user's models folder (default: $GANIME_MODELS_DIR).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// What a weights file is: the architecture it matches, tensor count, dtypes, parameters (or, for an
    /// unknown file, what its keys look like).
    Inspect { file: PathBuf },
    /// A Keras-style summary of a DCGAN's G and D: each layer, its output shape and parameter count, then total,
    /// trainable and non-trainable parameters (BatchNorm's moving statistics count as non-trainable).
    Summary(super::train_dcgan::DcganModelArgs),
}

pub fn run(cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List { dir } => list(dir),
        ModelsCommand::Summary(model) => super::train_dcgan::print_summaries(&model.config()?),
        ModelsCommand::Inspect { file } => {
            print!("{}", inspect_file(&file)?.report());
            Ok(())
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn list(dir: Option<PathBuf>) -> Result<()> {
    println!("built-in (embedded in this binary):");
    for m in builtin_models() {
        println!("  {}  {}  {}", m.file, mib(m.bytes.len() as u64), m.kind);
        println!("      use: {}\n      licence: {}\n      source: {}", m.usage, m.licence, m.source);
    }
    println!("  toon, passthrough: non-learned filters (no weights)");
    let Some(dir) = user_models_dir(dir.as_deref()) else {
        println!("user models: none (give --dir DIR or set GANIME_MODELS_DIR)");
        return Ok(());
    };
    let files = user_model_files(&dir)?;
    println!("user models in {} ({} file(s)):", dir.display(), files.len());
    for f in files {
        match inspect_file(&f) {
            Ok(i) => {
                println!(
                    "  {}  {}  {}",
                    f.file_name().unwrap_or_default().to_string_lossy(),
                    mib(i.bytes),
                    i.architecture.as_deref().unwrap_or("unknown architecture")
                );
                let meta = |k: &str| i.metadata.get(k).cloned().unwrap_or_else(|| "not stated in the file".into());
                println!("      licence: {}\n      source: {}", meta("licence"), meta("source"));
            }
            Err(e) => println!("  {}  unreadable: {e:#}", f.file_name().unwrap_or_default().to_string_lossy()),
        }
    }
    Ok(())
}
