//! Reading weight files into named tensors, and loading named tensors into a model's `VarMap`.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;
use std::path::Path;

/// The largest model or checkpoint file ganime reads (8 GiB; `GANIME_MAX_MODEL_BYTES` changes it): the
/// biggest public networks it runs are a few hundred MiB, and a file is read whole.
pub fn max_model_bytes() -> u64 {
    std::env::var("GANIME_MAX_MODEL_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(8 << 30)
}

/// Checks that `path` is a regular file (not a folder, FIFO or device such as `/dev/zero`, which would be read
/// without end) of at most [`max_model_bytes`], before anything reads it; returns its size.
pub fn check_model_file(path: &Path, what: &str) -> Result<u64> {
    check_file_size(path, what, max_model_bytes())
}

fn check_file_size(path: &Path, what: &str, limit: u64) -> Result<u64> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("{what} {} does not exist", path.display()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {what} {}", path.display())),
    };
    if !meta.is_file() {
        bail!("{what} {} is not a regular file", path.display());
    }
    if meta.len() > limit {
        bail!("{what} {} is {} bytes, more than the {limit} ganime reads (set GANIME_MAX_MODEL_BYTES to allow more)", path.display(), meta.len());
    }
    Ok(meta.len())
}

/// All tensors of a `.pth`/`.pt` (PyTorch zip format `state_dict`) or `.safetensors` file, by name.
pub fn read_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    check_model_file(path, "weights file")?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let other_format = match ext.as_str() {
        "onnx" => Some("an ONNX model"),
        "h5" | "keras" => Some("a Keras model"),
        "pb" | "tflite" => Some("a TensorFlow model"),
        "ckpt" if !super::pth::is_legacy(path) && !is_zip(path) => Some("a TensorFlow checkpoint"),
        _ => None,
    };
    if let Some(what) = other_format {
        bail!("{} is {what}; ganime reads weights from PyTorch files (.pth/.pt) and safetensors (convert it to one of those)", path.display());
    }
    let tensors = if ext == "safetensors" {
        candle_core::safetensors::load(path, device).with_context(|| format!("{} is not a readable safetensors file", path.display()))?
    } else {
        // io::pth, not Candle's `pickle::read_all`: Candle's reader allocates what a tensor's shape asks for before
        // checking it against the file (a crafted shape aborts the process), panics on short argument tuples and
        // prints skipped tensors to stderr (a plug-in host's); io::pth checks every count first.
        super::pth::read_pth(path)
            .with_context(|| format!("{} is not a readable PyTorch state_dict (.pth/.pt, zip or legacy format)", path.display()))?
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_device(device)?)))
            .collect::<Result<HashMap<_, _>>>()?
    };
    if tensors.is_empty() {
        bail!("{} holds no tensors", path.display());
    }
    Ok(tensors)
}

/// True when `path` starts like a zip archive (the PyTorch format since 1.6).
fn is_zip(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"PK\x03\x04"
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
        var.set(&t.to_dtype(var.dtype())?.to_device(var.device())?).with_context(|| format!("{source}: cannot set `{key}`"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.safetensors");
        std::fs::write(&file, [0u8; 100]).unwrap();
        assert_eq!(check_file_size(&file, "weights file", 100).unwrap(), 100);
        let err = check_file_size(&file, "weights file", 99).unwrap_err().to_string();
        assert!(err.contains("w.safetensors") && err.contains("100 bytes") && err.contains("GANIME_MAX_MODEL_BYTES"), "{err}");
        let err = check_model_file(dir.path(), "checkpoint").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = read_tensors(Path::new("/dev/zero"), &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("/dev/zero") && err.contains("not a regular file"), "{err}");
        let err = crate::io::checkpoint::Checkpoint::read(Path::new("/dev/zero"), &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = read_tensors(&dir.path().join("missing.pth"), &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        let onnx = dir.path().join("style.onnx");
        std::fs::write(&onnx, [8u8, 7, 18, 4]).unwrap();
        let err = read_tensors(&onnx, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("style.onnx is an ONNX model") && !err.contains("state_dict"), "{err}");
    }
}
