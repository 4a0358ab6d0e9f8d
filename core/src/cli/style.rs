//! `ganime style`: its subcommands (`style_transfer.rs`, `style_train.rs`) and what they share.

use anyhow::{Context, Result};
use clap::Subcommand;

/// Where the shared real VGG16 lies when ganime runs from the project root.
pub(super) const DEFAULT_VGG: &str = "../shared/weights/vgg16_keras_imagenet/vgg16_caffe_bgr_conv1_1-conv4_1.safetensors";

#[derive(Subcommand)]
pub enum StyleCommand {
    /// Gatys et al. neural style transfer: optimise an image to match one photo's content and the style of
    /// one or more paintings.
    Transfer(super::style_transfer::TransferArgs),
    /// Train a feed-forward style network (pytorch/examples TransformerNet) for one style image.
    Train(super::style_train::TrainArgs),
}

pub(super) fn split_list(s: &Option<String>) -> Option<Vec<String>> {
    s.as_ref().map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
}

pub(super) fn parse_numbers(s: &str, what: &str) -> Result<Vec<f64>> {
    s.split(',').map(|x| x.trim().parse::<f64>().with_context(|| format!("{what}: `{x}` is not a number"))).collect()
}
