//! Turning latents into pictures: the `Generator` trait, loading one from a file (or the built-in model),
//! seeded latents, interpolation and latent walks.

pub mod attributes;
pub mod builtin;
pub mod guide;
pub mod latent;
pub mod recipe;
pub mod seed_grid;
pub mod sheet;
pub mod upscale;

use crate::io::checkpoint::Checkpoint;
use crate::models::dcgan::{DcganConfig, Generator as Dcgan};
use crate::nn::Mode;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use std::path::Path;

pub use crate::nn::init::Prior;
pub use latent::{interpolate, latents, prior_latents, walk, Path as LatentPath};

/// Latent vectors -> images. Used by `generate`, `interpolate`, sheets, attribute control and the plug-in
/// (`Send + Sync`: the plug-in's hosts may call one model from several threads).
pub trait Generator: Send + Sync {
    fn latent_dim(&self) -> usize;
    /// `z [N, latent_dim]` -> `[N, C, H, W]` in [-1, 1] (inference mode).
    fn generate(&self, z: &Tensor) -> Result<Tensor>;
    fn describe(&self) -> String;
    /// A short hash of the weights: which model made an image (sheets record it; attribute axes check it).
    fn identity(&self) -> String;
    /// The distribution the generator was trained to take its latents from.
    fn prior(&self) -> Prior {
        Prior::Normal
    }
    /// `count` latents from `seed`, drawn from the generator's prior: image i of a seed is always the same.
    fn latents(&self, seed: u64, count: usize, device: &Device) -> Result<Tensor> {
        prior_latents(self.prior(), seed, count, self.latent_dim(), device)
    }
}

impl Generator for Dcgan {
    fn latent_dim(&self) -> usize {
        self.config.nz
    }
    fn generate(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.forward(z, Mode::Eval)?)
    }
    fn describe(&self) -> String {
        let c = &self.config;
        let prior = if c.prior == Prior::Normal { String::new() } else { format!(" prior={}", c.prior) };
        format!("DCGAN {:?} {}x{}x{} nz={} ngf={}{prior}", c.preset, c.image_size, c.image_size, c.channels, c.nz, c.ngf)
    }
    fn identity(&self) -> String {
        weights_hash(&self.vars)
    }
    fn prior(&self) -> Prior {
        self.config.prior
    }
}

/// Loads a generator: `None` is the built-in anime-face model; a run folder or `.safetensors` is a ganime
/// checkpoint or exported model; a `.pth`/`.pt` is a pytorch/examples `netG` state_dict.
pub fn load_generator(path: Option<&Path>, device: &Device) -> Result<Box<dyn Generator>> {
    let Some(path) = path else { return builtin::anime_faces(device) };
    if !path.exists() {
        bail!("checkpoint {} does not exist", path.display());
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "pth" || ext == "pt" {
        let tensors = crate::io::weights::read_tensors(path, device)?;
        let source = path.display().to_string();
        let config = DcganConfig::infer_from_generator(&tensors, &source)?;
        return Ok(Box::new(Dcgan::from_tensors(&config, &tensors, "", &source, device)?));
    }
    from_checkpoint(&Checkpoint::read(path, device)?, device)
}

pub fn from_checkpoint(ckpt: &Checkpoint, device: &Device) -> Result<Box<dyn Generator>> {
    match ckpt.header.kind.as_str() {
        "dcgan" => {
            let config: DcganConfig =
                serde_json::from_value(ckpt.header.model.clone()).with_context(|| format!("{}: malformed DCGAN config", ckpt.path.display()))?;
            let source = ckpt.path.display().to_string();
            // A run that kept a moving average of G samples from the average.
            let prefix = crate::models::dcgan::generator_prefix(&ckpt.tensors);
            Ok(Box::new(Dcgan::from_tensors(&config, &ckpt.tensors, prefix, &source, device)?))
        }
        other => bail!("{} holds a `{other}` model, which is not a generator", ckpt.path.display()),
    }
}

/// Writes the generator of `ckpt` alone (no D, no optimiser state) as a small safetensors model, e.g. f16 for
/// shipping. `note` says how it was trained.
pub fn export_generator(ckpt: &Checkpoint, out: &Path, dtype: candle_core::DType, note: &str, cyclegan_b2a: bool) -> Result<()> {
    // DCGAN files keep the `G.` prefix (`generate` reads them like checkpoints); AnimeGAN and CycleGAN
    // generators are written in their PyTorch layouts, so `animegan:FILE` / `cyclegan:FILE` and other tools read them.
    let (prefix, strip) = match ckpt.header.kind.as_str() {
        // A run's moving average of G is what it ships (renamed to the `G.` keys below).
        "dcgan" => (crate::models::dcgan::generator_prefix(&ckpt.tensors), false),
        "animegan" | "distill" | "upscaler" => ("G.", true),
        "cyclegan" if cyclegan_b2a => ("G_B.", true),
        "cyclegan" => ("G_A.", true),
        other => bail!("{} holds a `{other}` model; DCGAN, AnimeGAN, distilled and CycleGAN generators can be exported", ckpt.path.display()),
    };
    let tensors: Vec<(String, Tensor)> = ckpt
        .tensors
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, t)| {
            let name = if strip { k[prefix.len()..].to_string() } else { format!("G.{}", &k[prefix.len()..]) };
            Ok((name, t.to_dtype(dtype)?))
        })
        .collect::<Result<_>>()?;
    if ckpt.header.kind != "dcgan" {
        let mut meta = std::collections::HashMap::new();
        meta.insert("ganime.kind".to_string(), ckpt.header.kind.clone());
        meta.insert("ganime.trained".to_string(), serde_json::to_string(&ckpt.header.model)?);
        meta.insert("ganime.note".to_string(), note.to_string());
        let mut sorted = tensors;
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        return crate::io::weights::save_safetensors(out, &sorted, meta);
    }
    let header = crate::io::checkpoint::Header { kind: "dcgan".into(), model: ckpt.header.model.clone(), state: None, note: Some(note.into()) };
    let mut meta = std::collections::HashMap::new();
    meta.insert("ganime".to_string(), serde_json::to_string(&header)?);
    let mut sorted = tensors;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    crate::io::weights::save_safetensors(out, &sorted, meta)
}

/// SHA-256 over the sorted variable names and their f32 values, first 16 hex digits.
pub fn weights_hash(vars: &candle_nn::VarMap) -> String {
    use sha2::{Digest, Sha256};
    let data = vars.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut h = Sha256::new();
    for n in names {
        h.update(n.as_bytes());
        let v: Vec<f32> =
            data[n].as_tensor().flatten_all().and_then(|t| t.to_dtype(candle_core::DType::F32)).and_then(|t| t.to_vec1()).unwrap_or_default();
        for x in v {
            h.update(x.to_le_bytes());
        }
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}
