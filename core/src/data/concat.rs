//! Several datasets as one (AnimeGAN's photos: faces plus landscapes), indexed one after another.

use super::{Dataset, ImageSpec};
use anyhow::{Context, Result};
use std::sync::Arc;

pub struct ConcatDataset {
    parts: Vec<Arc<dyn Dataset>>,
}

impl ConcatDataset {
    /// The datasets at `paths` as one (errors name `option` and the path).
    pub fn open(paths: &[std::path::PathBuf], option: &str) -> Result<Arc<dyn Dataset>> {
        let parts = paths.iter().map(|p| super::open_dataset(p).with_context(|| format!("{option} {}", p.display()))).collect::<Result<_>>()?;
        Ok(Arc::new(Self::new(parts)))
    }

    pub fn new(parts: Vec<Arc<dyn Dataset>>) -> Self {
        Self { parts }
    }

    /// The part holding `index`, and the index within it.
    fn locate(&self, mut index: usize) -> Option<(&Arc<dyn Dataset>, usize)> {
        for p in &self.parts {
            if index < p.len() {
                return Some((p, index));
            }
            index -= p.len();
        }
        None
    }
}

impl Dataset for ConcatDataset {
    fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }
    fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>> {
        let (p, i) = self.locate(index).with_context(|| format!("image {index} is past the end of {}", self.describe()))?;
        p.load(i, spec)
    }
    fn describe(&self) -> String {
        self.parts.iter().map(|p| p.describe()).collect::<Vec<_>>().join(" + ")
    }
    fn name(&self, index: usize) -> Option<String> {
        let (p, i) = self.locate(index)?;
        p.name(i)
    }
}
