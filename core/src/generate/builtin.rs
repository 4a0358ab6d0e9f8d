//! The built-in anime-face generator shipped in `models/` and embedded in the binary, so `ganime generate`
//! works on a fresh machine with no file of the user's. See `models/README.md` for how it was trained.

use super::Generator;
use crate::train::checkpoint::Checkpoint;
use anyhow::Result;
use candle_core::Device;
use std::path::Path;

pub const ANIME_FACES_FILE: &str = "anime-faces-dcgan.safetensors";
static ANIME_FACES: &[u8] = include_bytes!("../../../models/anime-faces-dcgan.safetensors");

pub fn anime_faces(device: &Device) -> Result<Box<dyn Generator>> {
    let ckpt = Checkpoint::from_bytes(ANIME_FACES, Path::new(ANIME_FACES_FILE), device)?;
    super::from_checkpoint(&ckpt, device)
}
