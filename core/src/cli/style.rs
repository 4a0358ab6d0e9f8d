//! `ganime style transfer` (Gatys optimisation) and `ganime style train` (feed-forward style network).

use crate::io::image::save_image;
use crate::io::image::{image_to_tensor_in, tensor_to_image_in, PixelRange};
use crate::models::transformer_net::TransformerNetConfig;
use crate::models::vgg::{detect_arch, InputConvention, Pooling, Vgg, VggArch, VggOptions};
use crate::style::gatys::{GatysLoss, GatysWeights};
use crate::style::train::{StyleTrainConfig, StyleTrainer};
use crate::style::transfer::{initial_image, transfer, Optimizer, StartFrom, TransferOptions};
use crate::style::{open_rgb, progress_bar, resize_max_side};
use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

/// Where the shared real VGG16 lies when ganime runs from the project root.
const DEFAULT_VGG: &str = "../shared/weights/vgg16_keras_imagenet/vgg16_caffe_bgr_conv1_1-conv4_1.safetensors";

#[derive(Subcommand)]
pub enum StyleCommand {
    /// Gatys et al. neural style transfer: optimise an image to match one photo's content and the style of
    /// one or more paintings.
    Transfer(TransferArgs),
    /// Train a feed-forward style network (pytorch/examples TransformerNet) for one style image.
    Train(TrainArgs),
}

fn split_list(s: &Option<String>) -> Option<Vec<String>> {
    s.as_ref().map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
}

fn parse_numbers(s: &str, what: &str) -> Result<Vec<f64>> {
    s.split(',').map(|x| x.trim().parse::<f64>().with_context(|| format!("{what}: `{x}` is not a number"))).collect()
}

#[derive(Args)]
pub struct TransferArgs {
    /// Content photo.
    #[arg(long)]
    content: PathBuf,
    /// Style image; repeat for several styles (blended, see --style-blend).
    #[arg(long = "style", required = true)]
    styles: Vec<PathBuf>,
    /// Blend weights of the style images, comma separated (default: equal).
    #[arg(long)]
    style_blend: Option<String>,
    /// Output image (PNG or JPEG by extension).
    #[arg(long)]
    out: PathBuf,
    /// Longer side of the output in pixels (the content photo is resized to it).
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Style images are resized to this fraction of the output's longer side.
    #[arg(long, default_value_t = 1.0)]
    style_scale: f64,
    /// VGG weights: torchvision `vgg16/vgg19-*.pth` or the shared Caffe VGG16 safetensors.
    #[arg(long, default_value = DEFAULT_VGG)]
    vgg: PathBuf,
    /// vgg16 or vgg19 (default: from the file's keys).
    #[arg(long)]
    vgg_arch: Option<VggArch>,
    /// Input convention of the VGG weights (default: torchvision for `features.N` keys, caffe otherwise).
    #[arg(long)]
    convention: Option<InputConvention>,
    /// max or avg.
    #[arg(long, default_value = "max")]
    pooling: Pooling,
    /// Content layers, comma separated (default: relu4_2 for VGG19, relu3_3 for VGG16).
    #[arg(long)]
    content_layers: Option<String>,
    /// Style layers (default: relu1_1,relu2_1,relu3_1,relu4_1[,relu5_1 for VGG19]).
    #[arg(long)]
    style_layers: Option<String>,
    /// Weights of the style layers (default: 1/number of layers each).
    #[arg(long)]
    style_layer_weights: Option<String>,
    /// alpha.
    #[arg(long, default_value_t = 1.0)]
    content_weight: f64,
    /// beta.
    #[arg(long, default_value_t = 1e3)]
    style_weight: f64,
    /// Total-variation weight (smooths the result).
    #[arg(long, default_value_t = 0.0)]
    tv_weight: f64,
    #[arg(long, value_enum, default_value = "lbfgs")]
    optimizer: Optimizer,
    /// Adam learning rate (pixels in [0, 1]).
    #[arg(long, default_value_t = 0.02)]
    lr: f64,
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    #[arg(long, value_enum, default_value = "content")]
    init: StartFrom,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also save the image every N iterations as OUT_STEM-iterNNNN.EXT (0: only the final one).
    #[arg(long, default_value_t = 0)]
    save_every: usize,
    /// Keep the content photo's colours (luminance-only transfer).
    #[arg(long)]
    preserve_colors: bool,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Default content and style layers of each VGG.
fn default_layers(arch: VggArch) -> (Vec<String>, Vec<String>) {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match arch {
        VggArch::Vgg19 => (s(&["relu4_2"]), s(&["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"])),
        VggArch::Vgg16 => (s(&["relu3_3"]), s(&["relu1_1", "relu2_1", "relu3_1", "relu4_1"])),
    }
}

fn iteration_path(out: &Path, i: usize) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let ext = out.extension().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "png".into());
    out.with_file_name(format!("{stem}-iter{i:04}.{ext}"))
}

pub fn transfer_cmd(a: TransferArgs) -> Result<()> {
    let device = crate::device::parse_device(&a.device)?;
    if a.size < 16 {
        bail!("--size must be at least 16 pixels, got {}", a.size);
    }
    if !(a.style_scale > 0.0) {
        bail!("--style-scale must be positive, got {}", a.style_scale);
    }
    if !a.vgg.exists() {
        bail!("VGG weights {} not found; pass --vgg FILE (a torchvision vgg16/vgg19 .pth or the shared VGG16 safetensors)", a.vgg.display());
    }
    let blend = match &a.style_blend {
        None => vec![1.0; a.styles.len()],
        Some(s) => parse_numbers(s, "--style-blend")?,
    };
    if blend.len() != a.styles.len() {
        bail!("--style-blend has {} weights for {} --style images", blend.len(), a.styles.len());
    }
    let tensors = crate::io::weights::read_tensors(&a.vgg, &candle_core::Device::Cpu)?;
    let options = VggOptions { arch: a.vgg_arch, convention: a.convention, pooling: a.pooling };
    let source = a.vgg.display().to_string();
    let (default_content, default_style) = default_layers(detect_arch(&tensors, options, &source)?);
    let content_layers = split_list(&a.content_layers).unwrap_or(default_content);
    let style_layers = split_list(&a.style_layers).unwrap_or(default_style);
    let style_layer_weights = match &a.style_layer_weights {
        None => vec![],
        Some(s) => parse_numbers(s, "--style-layer-weights")?,
    };
    let all: Vec<&str> = content_layers.iter().chain(&style_layers).map(String::as_str).collect();
    let vgg = Vgg::from_tensors(&tensors, &all, options, DType::F32, &device, &source)?;

    let content_img = resize_max_side(&open_rgb(&a.content)?, a.size);
    let content = image_to_tensor_in(&content_img, PixelRange::Unit, &device)?;
    let style_side = ((a.size as f64 * a.style_scale).round() as u32).max(16);
    let styles = a
        .styles
        .iter()
        .zip(&blend)
        .map(|(p, w)| Ok((image_to_tensor_in(&resize_max_side(&open_rgb(p)?, style_side), PixelRange::Unit, &device)?, *w)))
        .collect::<Result<Vec<_>>>()?;
    let weights =
        GatysWeights { content_layers, style_layers, style_layer_weights, alpha: a.content_weight, beta: a.style_weight, tv_weight: a.tv_weight };
    let loss = GatysLoss::new(&vgg, weights, &content, &styles)?;
    let start = initial_image(&content, a.init, a.seed)?;
    let options = TransferOptions { iterations: a.iterations, optimizer: a.optimizer, lr: a.lr, start: a.init, seed: a.seed };
    let finish = |x: &candle_core::Tensor| -> Result<image::RgbImage> {
        let img = tensor_to_image_in(x, PixelRange::Unit)?;
        if a.preserve_colors {
            crate::style::color::preserve_colors(&img, &content_img)
        } else {
            Ok(img)
        }
    };
    let bar = progress_bar(a.iterations as u64, 0, false);
    let mut first: Option<f64> = None;
    let mut last_values = None;
    let result = transfer(&loss, &start, &options, |i, v, x| {
        first.get_or_insert(v.style);
        bar.set_position(i as u64);
        bar.set_message(format!("total {:.4e} content {:.4e} style {:.4e}", v.total, v.content, v.style));
        if a.save_every > 0 && i % a.save_every == 0 {
            save_image(&finish(&x.clamp(0.0, 1.0)?)?, &iteration_path(&a.out, i))?;
        }
        last_values = Some(v.clone());
        Ok(())
    })?;
    bar.finish();
    save_image(&finish(&result)?, &a.out)?;
    if let Some(v) = last_values {
        eprintln!(
            "wrote {} ({}x{}): total {:.4e}, content {:.4e}, style {:.4e} (first iteration {:.4e})",
            a.out.display(),
            content_img.width(),
            content_img.height(),
            v.total,
            v.content,
            v.style,
            first.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

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
    #[arg(long, default_value_t = 100)]
    sample_every: u64,
    #[arg(long, default_value_t = 200)]
    checkpoint_every: u64,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn train_cmd(a: TrainArgs) -> Result<()> {
    let device = crate::device::parse_device(&a.device)?;
    let mut trainer = if let Some(run) = &a.resume {
        StyleTrainer::resume(run, a.steps, &device)?
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
            sample_every: a.sample_every,
            checkpoint_every: a.checkpoint_every,
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
