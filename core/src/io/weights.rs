//! Reading weight files into named tensors, and loading named tensors into a model's `VarMap`.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::path::Path;

/// All tensors of a `.pth`/`.pt` (PyTorch zip format `state_dict`) or `.safetensors` file, by name.
pub fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        bail!("weights file {} does not exist", path.display());
    }
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let tensors = if ext == "safetensors" {
        candle_core::safetensors::load(path, device)
            .with_context(|| format!("{} is not a readable safetensors file", path.display()))?
    } else {
        // Candle's zip reader first; the legacy format, and zip files its `zip` dependency rejects, go through
        // io::pth (see there).
        let candle = if super::pth::is_legacy(path) { None } else { candle_core::pickle::read_all(path).ok() };
        let list: Vec<(String, Tensor)> = match candle {
            Some(list) => list,
            None => super::pth::read_pth(path)
                .with_context(|| format!("{} is not a readable PyTorch state_dict (.pth/.pt, zip or legacy format)", path.display()))?
                .into_iter()
                .collect(),
        };
        list.into_iter().map(|(k, t)| Ok((k, t.to_device(device)?))).collect::<Result<HashMap<_, _>>>()?
    };
    if tensors.is_empty() {
        bail!("{} holds no tensors", path.display());
    }
    Ok(tensors)
}

/// Sets every variable of `varmap` from `tensors[prefix + name]`. Extra tensors in the file are fine (e.g.
/// BatchNorm's `num_batches_tracked`); a missing tensor or a shape mismatch is an error naming both.
pub fn load_varmap(varmap: &VarMap, tensors: &HashMap<String, Tensor>, prefix: &str, source: &str) -> Result<()> {
    let vars = varmap.data().lock().unwrap();
    for (name, var) in vars.iter() {
        let key = format!("{prefix}{name}");
        let t = tensors.get(&key).with_context(|| format!("{source}: tensor `{key}` is missing"))?;
        if t.dims() != var.dims() {
            bail!("{source}: tensor `{key}` has shape {:?}, the model expects {:?}", t.dims(), var.dims());
        }
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?)
            .with_context(|| format!("{source}: cannot set `{key}`"))?;
    }
    Ok(())
}

/// The variables of `varmap` as named tensors (prefixed), converted to `dtype`, for saving.
pub fn varmap_tensors(varmap: &VarMap, prefix: &str, dtype: DType) -> Result<Vec<(String, Tensor)>> {
    let vars = varmap.data().lock().unwrap();
    let mut out = vars
        .iter()
        .map(|(k, v)| Ok((format!("{prefix}{k}"), v.as_tensor().to_dtype(dtype)?.to_device(&Device::Cpu)?)))
        .collect::<Result<Vec<_>>>()?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes named tensors plus string metadata as a safetensors file, atomically.
pub fn save_safetensors(path: &Path, tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<()> {
    super::write_atomic(path, |tmp| {
        let data = tensors.iter().map(|(k, t)| (k.as_str(), t));
        safetensors::tensor::serialize_to_file(data, Some(metadata), tmp)?;
        Ok(())
    })
}

/// The string metadata of a safetensors file (empty for other formats).
pub fn safetensors_metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)?;
    Ok(meta.metadata().clone().unwrap_or_default())
}
