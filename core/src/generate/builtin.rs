//! The built-in anime-face models shipped in `models/` and embedded in the binary, so `ganime generate`,
//! `ganime sheet` and attribute control work on a fresh machine with no file of the user's. See
//! `models/README.md` for how each was trained.

use super::attributes::{load_classifier, AttributeAxes};
use super::Generator;
use crate::io::checkpoint::Checkpoint;
use crate::models::attribute_classifier::AttributeClassifier;
use anyhow::Result;
use candle_core::Device;
use std::path::Path;

use crate::assets::{ANIME_FACES, AXES, CLASSIFIER};

pub fn anime_faces(device: &Device) -> Result<Box<dyn Generator>> {
    let ckpt = Checkpoint::from_bytes(ANIME_FACES, Path::new("built-in anime-faces-dcgan.safetensors"), device)?;
    super::from_checkpoint(&ckpt, device)
}

/// Hair/eye-colour classifier trained on the shared anime-faces labels.
pub fn classifier(device: &Device) -> Result<AttributeClassifier> {
    load_classifier(&Checkpoint::from_bytes(CLASSIFIER, Path::new("built-in anime-faces-classifier.safetensors"), device)?, device)
}

/// TL-GAN axes of the built-in generator.
pub fn axes(device: &Device) -> Result<AttributeAxes> {
    AttributeAxes::from_checkpoint(&Checkpoint::from_bytes(AXES, Path::new("built-in anime-faces-axes.safetensors"), device)?, device)
}
