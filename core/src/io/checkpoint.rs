//! A checkpoint is one safetensors file: every network's variables (`G.main.0.weight`, BatchNorm running stats
//! included), every optimiser's moments (`opt.G.m.…`), and a JSON header (`ganime` metadata key) with the run's
//! config, step, epoch, position in the epoch and RNG state. Written atomically.

use crate::io::weights::{read_tensors, safetensors_metadata, save_safetensors, varmap_tensors};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "checkpoint.safetensors";
const META_KEY: &str = "ganime";

/// The JSON header. `model` is the model config (kind-specific), `state` the trainer's resumable state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub kind: String,
    pub model: serde_json::Value,
    #[serde(default)]
    pub state: Option<serde_json::Value>,
    #[serde(default)]
    pub note: Option<String>,
}

pub struct Checkpoint {
    pub path: PathBuf,
    pub header: Header,
    pub tensors: HashMap<String, Tensor>,
}

/// `path` itself if it is a file, else `path/checkpoint.safetensors`.
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(FILE_NAME)
    } else {
        path.to_path_buf()
    }
}

impl Checkpoint {
    /// Reads a ganime checkpoint (a file or a run folder).
    pub fn read(path: &Path, device: &Device) -> Result<Self> {
        let path = resolve(path);
        crate::io::weights::check_model_file(&path, "checkpoint")?;
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        Self::from_bytes(&bytes, &path, device)
    }

    pub fn from_bytes(bytes: &[u8], path: &Path, device: &Device) -> Result<Self> {
        let meta = safetensors_metadata(bytes).with_context(|| format!("{} is not a safetensors checkpoint", path.display()))?;
        let Some(json) = meta.get(META_KEY) else {
            bail!("{} has no ganime header: not a checkpoint written by ganime", path.display());
        };
        let header: Header = serde_json::from_str(json).with_context(|| format!("{}: malformed ganime header", path.display()))?;
        let tensors = candle_core::safetensors::load_buffer(bytes, device).with_context(|| format!("{}: cannot read tensors", path.display()))?;
        Ok(Self { path: path.to_path_buf(), header, tensors })
    }

    /// Writes `groups` (name, VarMap) as `{name}.{var}`, plus `extra` tensors, with `header`.
    pub fn write(path: &Path, header: &Header, groups: &[(&str, &candle_nn::VarMap)], extra: Vec<(String, Tensor)>, dtype: DType) -> Result<()> {
        let mut tensors = Vec::new();
        for (name, vars) in groups {
            tensors.extend(varmap_tensors(vars, &format!("{name}."), dtype)?);
        }
        for (k, t) in extra {
            tensors.push((k, t.to_device(&Device::Cpu)?));
        }
        let mut meta = HashMap::new();
        meta.insert(META_KEY.to_string(), serde_json::to_string(header)?);
        save_safetensors(path, &tensors, meta)
    }
}

/// Reads tensors from any supported weights file, for importers that accept both formats.
pub fn read_any(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    read_tensors(path, device)
}
