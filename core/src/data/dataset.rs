//! The `Dataset` trait shared by image folders and MNIST, and picking one from a path.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::{ImageFolder, ImageSpec, Mnist};

/// A finite, indexable set of images; `Send + Sync` so the loader can decode samples in parallel.
pub trait Dataset: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Decode + preprocess sample `index`. Errors name the file.
    fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>>;
    /// e.g. "image folder ../shared/data/anime-faces (7140 files)"
    fn describe(&self) -> String;
    /// Key used to join with a labels CSV (file name relative to the root for folders), None for MNIST.
    fn name(&self, index: usize) -> Option<String>;
}

/// Up to `count` samples spread evenly over `data` as one `[k, C, S, S]` tensor (the fixed inputs of a run's
/// sample grids).
pub fn spread_samples(data: &dyn Dataset, spec: &ImageSpec, count: usize, device: &candle_core::Device) -> Result<candle_core::Tensor> {
    let k = data.len().min(count);
    let mut v = Vec::with_capacity(k * spec.sample_len());
    for i in 0..k {
        v.extend(data.load(i * data.len() / k, spec)?);
    }
    Ok(candle_core::Tensor::from_vec(v, (k, spec.channels, spec.size, spec.size), device)?)
}

/// A folder path -> [`ImageFolder`]; an IDX file (name contains "idx3" or ends in .idx/.gz) -> [`Mnist`].
pub fn open_dataset(path: &Path) -> Result<Arc<dyn Dataset>> {
    if path.is_dir() {
        return Ok(Arc::new(ImageFolder::open(path)?));
    }
    if !path.exists() {
        bail!("dataset path {} does not exist", path.display());
    }
    if looks_like_idx(path) {
        let mnist = Mnist::open(path).with_context(|| format!("{} is not a usable MNIST IDX image file", path.display()))?;
        return Ok(Arc::new(mnist));
    }
    bail!("{} is neither a folder of images nor an MNIST IDX images file (idx3, .idx or .gz)", path.display())
}

/// Name-based guess; the IDX magic itself is checked by `Mnist::open`.
fn looks_like_idx(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    name.contains("idx3") || name.ends_with(".idx") || name.ends_with(".gz")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;

    #[test]
    fn opens_folder_and_mnist_and_rejects_others() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, "hello").unwrap();
        let err = open_dataset(&other).err().unwrap().to_string();
        assert!(err.contains("notes.txt"), "{err}");
        let missing = dir.path().join("nope");
        let err = open_dataset(&missing).err().unwrap().to_string();
        assert!(err.contains("does not exist") && err.contains("nope"), "{err}");

        let Some(mnist) = shared_path("data/mnist/t10k-images-idx3-ubyte.gz") else { return };
        let ds = open_dataset(&mnist).unwrap();
        assert_eq!(ds.len(), 10_000);
        assert!(ds.describe().starts_with("MNIST"), "{}", ds.describe());
        let Some(faces) = shared_path("data/anime-faces") else { return };
        let ds = open_dataset(&faces).unwrap();
        assert_eq!(ds.len(), 7140);
        assert_eq!(ds.name(0).as_deref(), Some("000001.jpg"));
    }
}
