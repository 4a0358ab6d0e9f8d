//! `ganime style transfer`: Gatys et al.'s optimisation of an image.

use super::style::{parse_numbers, split_list, DEFAULT_VGG};
use crate::io::image::save_image;
use crate::io::image::{image_to_tensor_in, tensor_to_image_in, PixelRange};
use crate::models::vgg::{detect_arch, InputConvention, Pooling, Vgg, VggArch, VggOptions};
use crate::style::gatys::{GatysLoss, GatysWeights};
use crate::style::transfer::{initial_image, transfer, Optimizer, StartFrom, TransferOptions};
use crate::style::{open_rgb, progress_bar, resize_max_side};
use anyhow::{bail, Result};
use candle_core::DType;
use clap::Args;
use std::path::{Path, PathBuf};

/// Where the shared real VGG16 lies when ganime runs from the project root.

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
