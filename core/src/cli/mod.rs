//! The `ganime` command line: thin wrappers over the library.

mod attributes;
mod data;
mod distill;
mod eval;
mod export;
mod generate;
mod interpolate;
mod models;
mod sheet;
mod style;
mod style_train;
mod style_transfer;
mod stylize;
mod train;
mod train_animegan;
mod train_compare;
mod train_cyclegan;
mod train_dcgan;
mod translate;
mod upscale;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ganime", version, about = "GAN image generation, style transfer and anime stylisation")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a GAN.
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Generate images from a generator (the built-in anime-face model unless --checkpoint is given).
    Generate(generate::GenerateArgs),
    /// Latent-space figures: interpolate between two seeds, or walk one latent dimension.
    Interpolate(interpolate::InterpolateArgs),
    /// A printable sheet of generated characters with captions, variation, interpolation and attribute rows.
    Sheet(sheet::SheetArgs),
    /// TL-GAN attribute control: train the attribute classifier, fit latent axes.
    #[command(subcommand)]
    Attributes(attributes::AttributesCommand),
    /// Quality metrics: Fréchet/kernel distance, precision/recall and mode collapse, real vs generated.
    Eval(eval::EvalArgs),
    /// Export a checkpoint's generator as a small model file (e.g. f16).
    Export(export::ExportArgs),
    /// Neural style transfer: Gatys optimisation and feed-forward style-network training.
    #[command(subcommand)]
    Style(style::StyleCommand),
    /// Apply a filter (built-in or a model file) to an image or a folder of images.
    #[command(after_help = "Large images: where one pass of a network filter would need more memory than \
GANIME_MAX_NETWORK_BYTES (default 4294967296, 4 GiB), the image is stylised in overlapping tiles within that limit, blended \
across the overlaps.")]
    Stylize(stylize::StylizeArgs),
    /// Turn any filter (a built-in name or KIND:PATH) into a slim real-time one: train a small AnimeGANv2
    /// generator to reproduce it on photos or frames, then report its fidelity and speed.
    Distill(distill::DistillArgs),
    /// Translate images with a trained CycleGAN (checkpoint, run folder or reference `latest_net_G_A.pth`).
    Translate(translate::TranslateArgs),
    /// The built-in models and the user's model files; what a weights file is.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Enlarge a picture with the learned upscaler (or Lanczos), or measure an upscaler against Lanczos.
    Upscale(upscale::UpscaleArgs),
    /// Dataset tools: export a (folder-per-class) dataset as CSV.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Time a benchmark workload (../shared/bench/README.md) like pytorch_reference.py; prints one JSON line.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// dcgan64-train or dcgan64-generate.
    workload: String,
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    #[arg(long, default_value_t = 3)]
    min_runs: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// f32, or f16/bf16 for the inference workloads (style-*, animegan-256).
    #[arg(long, default_value = "f32")]
    dtype: String,
}

pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Train(cmd) => {
            crate::train::interrupt::install()?;
            train::run(cmd)
        }
        Command::Generate(args) => generate::generate(args),
        Command::Interpolate(args) => interpolate::interpolate(args),
        Command::Export(args) => export::export(args),
        Command::Distill(args) => {
            crate::train::interrupt::install()?;
            distill::run(args)
        }
        Command::Eval(args) => eval::eval(args),
        Command::Sheet(args) => sheet::sheet(args),
        Command::Attributes(cmd) => attributes::attributes(cmd),
        Command::Style(style::StyleCommand::Transfer(a)) => style_transfer::transfer_cmd(a),
        Command::Style(style::StyleCommand::Train(a)) => style_train::train_cmd(a),
        Command::Stylize(a) => stylize::stylize(a),
        Command::Translate(args) => translate::translate(args),
        Command::Models(cmd) => models::run(cmd),
        Command::Data(cmd) => data::run(cmd),
        Command::Upscale(a) => upscale::upscale(a),
        Command::Bench(a) => {
            let compute = crate::compute::Compute::parse(&a.device, &a.dtype)?;
            let result = if compute.dtype == candle_core::DType::F32 {
                crate::bench::run(&a.workload, a.seconds, a.min_runs, &compute.device)?
            } else {
                crate::bench::half::run(&a.workload, a.seconds, a.min_runs, &compute.device, compute.dtype)?
            };
            // The device and dtype ride along, so GPU and CPU lines in one file stay apart.
            let json = result.json();
            let dtype = format!("{:?}", compute.dtype).to_lowercase();
            println!(r#"{}, "device": {}, "dtype": "{dtype}"}}"#, json.trim_end_matches('}'), serde_json::Value::from(a.device.as_str()));
            Ok(())
        }
    }
}
