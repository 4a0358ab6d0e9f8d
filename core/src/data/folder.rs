//! A folder of image files (searched recursively) as a dataset.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{preprocess, Dataset, ImageSpec};

/// File extensions treated as images (compared case-insensitively).
const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "webp", "bmp"];

/// Images under a root folder, in sorted path order so that sample indices are stable across runs.
pub struct ImageFolder {
    root: PathBuf,
    paths: Vec<PathBuf>,
}

impl ImageFolder {
    /// Scans `root` recursively for jpg/jpeg/png/webp/bmp files (hidden entries are ignored).
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            bail!("dataset folder {} does not exist", root.display());
        }
        let mut paths = Vec::new();
        scan(root, &mut paths)?;
        if paths.is_empty() {
            bail!("no images (jpg/png/webp/bmp) found under {}", root.display());
        }
        paths.sort();
        Ok(Self { root: root.to_path_buf(), paths })
    }

    /// All image paths, sorted.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.paths.len()
    }

    fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>> {
        let path = &self.paths[index];
        let img = decode(path).with_context(|| format!("cannot decode image {}", path.display()))?;
        Ok(preprocess(&img, spec))
    }

    fn describe(&self) -> String {
        format!("image folder {} ({} files)", self.root.display(), self.paths.len())
    }

    fn name(&self, index: usize) -> Option<String> {
        let rel = self.paths[index].strip_prefix(&self.root).ok()?;
        // '/' separators on every platform, as in labels CSVs.
        let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect();
        Some(parts.join("/"))
    }
}

/// Decodes by content rather than extension, so a PNG saved as .jpg still loads.
fn decode(path: &Path) -> Result<image::DynamicImage> {
    Ok(image::ImageReader::open(path)?.with_guessed_format()?.decode()?)
}

fn scan(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("cannot list folder {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list folder {}", dir.display()))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // DirEntry::file_type does not follow symlinks, so a symlink loop cannot recurse forever.
        if entry.file_type()?.is_dir() {
            scan(&path, out)?;
        } else if is_image_name(&path) && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn is_image_name(path: &Path) -> bool {
    path.extension().map(|e| e.to_string_lossy().to_lowercase()).is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Fit;
    use image::{Rgb, RgbImage};

    fn write_png(path: &Path, size: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = RgbImage::from_pixel(size, size, Rgb([10, 20, 30]));
        img.save_with_format(path, image::ImageFormat::Png).unwrap();
    }

    #[test]
    fn recursive_scan_sorted_mixed_case() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for rel in ["b/z.JPG", "a.png", "b/a/deep.Jpeg", "c.WebP", "d.bmp", "e.txt", ".hidden.png"] {
            write_png(&root.join(rel), 4);
        }
        let folder = ImageFolder::open(root).unwrap();
        let names: Vec<_> = (0..folder.len()).map(|i| folder.name(i).unwrap()).collect();
        assert_eq!(names, ["a.png", "b/a/deep.Jpeg", "b/z.JPG", "c.WebP", "d.bmp"]);
        assert_eq!(folder.paths()[0], root.join("a.png"));
        assert!(folder.describe().contains("(5 files)"), "{}", folder.describe());
        // Content-based decoding: these are PNGs whatever the extension says.
        let spec = ImageSpec { size: 2, channels: 3, fit: Fit::CenterCrop };
        let sample = folder.load(2, &spec).unwrap();
        assert_eq!(sample.len(), 12);
        assert!((sample[0] - (10.0 / 127.5 - 1.0)).abs() < 1e-6);
    }

    #[test]
    fn missing_and_empty_folder_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing-folder");
        let err = ImageFolder::open(&missing).err().unwrap().to_string();
        assert_eq!(err, format!("dataset folder {} does not exist", missing.display()));

        fs::write(dir.path().join("readme.txt"), "no images").unwrap();
        let err = ImageFolder::open(dir.path()).err().unwrap().to_string();
        assert_eq!(err, format!("no images (jpg/png/webp/bmp) found under {}", dir.path().display()));
    }

    #[test]
    fn corrupt_file_error_names_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x.jpg"), [1u8, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        let folder = ImageFolder::open(dir.path()).unwrap();
        let spec = ImageSpec { size: 4, channels: 3, fit: Fit::Pad };
        let err = format!("{:#}", folder.load(0, &spec).unwrap_err());
        assert!(err.contains("x.jpg"), "{err}");
    }
}
