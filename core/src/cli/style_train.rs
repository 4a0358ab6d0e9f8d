//! `ganime style train`: a feed-forward style network trained with a perceptual loss.

use super::style::{parse_numbers, split_list, DEFAULT_VGG};
use crate::models::transformer_net::TransformerNetConfig;
use crate::style::train::{StyleTrainConfig, StyleTrainer};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

/// Where the shared real VGG16 lies when ganime runs from the project root.

#[derive(Args)]
pub struct TrainArgs {
    /// Style image (required unless --resume).
    #[arg(long)]
    style: Option<PathBuf>,
    /// Folder of content photos (required unless --resume).
    #[arg(long)]
    content_dir: Option<PathBuf>,
    /// Run folder: checkpoint.safetensors, style-net.safetensors, samples/, log.csv, loss.png.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this folder (its saved settings are used; --steps may raise the target).
    #[arg(long)]
    resume: Option<PathBuf>,
    #[arg(long, default_value = DEFAULT_VGG)]
    vgg: PathBuf,
    /// The slim network (16/32/64 channels, 3 residual blocks) for real-time CPU use.
    #[arg(long)]
    slim: bool,
    /// Channel widths after conv1..conv3, comma separated (overrides --slim).
    #[arg(long)]
    widths: Option<String>,
    /// Residual blocks (overrides --slim).
    #[arg(long)]
    residual_blocks: Option<usize>,
    #[arg(long, default_value_t = 256)]
    image_size: usize,
    /// Longer side of the style image (default: --image-size).
    #[arg(long)]
    style_size: Option<u32>,
    #[arg(long, default_value_t = 4)]
    batch_size: usize,
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value = "relu2_2")]
    content_layer: String,
    #[arg(long, default_value = "relu1_2,relu2_2,relu3_3,relu4_1")]
    style_layers: String,
    /// Defaults suit the Caffe-scale VGG16 features (0..255 inputs): at the start of training the weighted
    /// style term is about 10x the content term.
    #[arg(long, default_value_t = 1.0)]
    content_weight: f64,
    #[arg(long, default_value_t = 1.0)]
    style_weight: f64,
    #[arg(long, default_value_t = 0.0)]
    tv_weight: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Steps between sample pictures [default: 100]; with --resume it replaces the run's own interval.
    #[arg(long)]
    sample_every: Option<u64>,
    /// Steps between checkpoints [default: 200]; with --resume it replaces the run's own interval.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn train_cmd(a: TrainArgs) -> Result<()> {
    let device = crate::device::parse_device(&a.device)?;
    let cadence = crate::train::trainer::Cadence::given(a.sample_every, a.checkpoint_every, None)?;
    let mut trainer = if let Some(run) = &a.resume {
        StyleTrainer::resume(run, a.steps, cadence, &device)?
    } else {
        let (Some(style), Some(content_dir), Some(out)) = (&a.style, &a.content_dir, &a.out) else {
            bail!("style train needs --style IMAGE, --content-dir DIR and --out DIR (or --resume RUN_DIR)");
        };
        if !a.vgg.exists() {
            bail!("VGG weights {} not found; pass --vgg FILE", a.vgg.display());
        }
        let mut net = if a.slim { TransformerNetConfig::slim() } else { TransformerNetConfig::standard() };
        if let Some(w) = &a.widths {
            let v = parse_numbers(w, "--widths")?;
            if v.len() != 3 || v.iter().any(|x| *x < 1.0 || x.fract() != 0.0) {
                bail!("--widths needs three positive integers, got `{w}`");
            }
            net.widths = [v[0] as usize, v[1] as usize, v[2] as usize];
        }
        if let Some(r) = a.residual_blocks {
            net.residual_blocks = r;
        }
        let config = StyleTrainConfig {
            content_dir: content_dir.clone(),
            style_image: style.clone(),
            vgg: a.vgg.clone(),
            net,
            image_size: a.image_size,
            style_size: a.style_size,
            batch_size: a.batch_size,
            steps: a.steps.unwrap_or(2000),
            lr: a.lr,
            content_layer: a.content_layer.clone(),
            style_layers: split_list(&Some(a.style_layers.clone())).unwrap_or_default(),
            content_weight: a.content_weight,
            style_weight: a.style_weight,
            tv_weight: a.tv_weight,
            seed: a.seed,
            sample_every: a.sample_every.unwrap_or(100),
            checkpoint_every: a.checkpoint_every.unwrap_or(200),
        };
        StyleTrainer::new(config, out, &device)?
    };
    let s = trainer.run()?;
    eprintln!(
        "trained {} steps in {:.1} s; last losses: content {:.4e}, style {:.4e}, total {:.4e}; model {}",
        s.steps,
        s.seconds,
        s.last.content,
        s.last.style,
        s.last.total,
        s.model.display()
    );
    Ok(())
}
