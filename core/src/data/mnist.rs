//! MNIST-style IDX3 image files (`*-images-idx3-ubyte`, raw or gzipped) as a dataset.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use flate2::read::GzDecoder;
use image::{DynamicImage, GrayImage};

use super::{preprocess, Dataset, ImageSpec};

/// IDX magic for unsigned bytes with 3 dimensions (images x rows x cols).
const IDX3_UBYTE_MAGIC: u32 = 0x0000_0803;
const HEADER_LEN: usize = 16;

/// All images of one IDX3 file, held in memory (MNIST t10k is 7.8 MB).
pub struct Mnist {
    path: PathBuf,
    count: usize,
    rows: usize,
    cols: usize,
    pixels: Vec<u8>,
    /// The digit of each image, from the `*-labels-idx1-ubyte` file beside the images when there is one.
    labels: Option<Vec<u8>>,
}

/// IDX magic for unsigned bytes with 1 dimension (labels).
const IDX1_UBYTE_MAGIC: u32 = 0x0000_0801;

impl Mnist {
    /// Reads an IDX3 ubyte file; gzip is detected by its magic bytes, not the file name.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = read_maybe_gzip(path)?;
        let mut mnist = Self::parse(path, bytes).with_context(|| format!("invalid IDX3 image file {}", path.display()))?;
        if let Some(labels) = labels_path(path).filter(|p| p.is_file()) {
            let bytes = read_maybe_gzip(&labels)?;
            mnist.labels = Some(parse_labels(bytes, mnist.count).with_context(|| format!("invalid IDX1 label file {}", labels.display()))?);
        }
        Ok(mnist)
    }

    fn parse(path: &Path, mut bytes: Vec<u8>) -> Result<Self> {
        ensure!(bytes.len() >= HEADER_LEN, "file is {} bytes, shorter than the 16-byte IDX3 header", bytes.len());
        let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()) as usize;
        let magic = word(0) as u32;
        ensure!(magic == IDX3_UBYTE_MAGIC, "bad magic 0x{magic:08x}, expected 0x{IDX3_UBYTE_MAGIC:08x}");
        let (count, rows, cols) = (word(1), word(2), word(3));
        ensure!(rows > 0 && cols > 0, "image size {rows}x{cols} is empty");
        let expected = count.checked_mul(rows * cols).context("image count overflows")?;
        let actual = bytes.len() - HEADER_LEN;
        ensure!(actual == expected, "header says {count} images of {rows}x{cols} ({expected} bytes) but the file holds {actual} bytes");
        bytes.drain(..HEADER_LEN);
        Ok(Self { path: path.to_path_buf(), count, rows, cols, pixels: bytes, labels: None })
    }

    /// The raw grayscale image `index`.
    fn image(&self, index: usize) -> GrayImage {
        let len = self.rows * self.cols;
        let data = self.pixels[index * len..(index + 1) * len].to_vec();
        GrayImage::from_raw(self.cols as u32, self.rows as u32, data).expect("length checked in parse")
    }
}

/// `t10k-images-idx3-ubyte.gz` -> `t10k-labels-idx1-ubyte.gz` (MNIST's naming).
fn labels_path(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    name.contains("images-idx3").then(|| images.with_file_name(name.replace("images-idx3", "labels-idx1")))
}

fn parse_labels(bytes: Vec<u8>, count: usize) -> Result<Vec<u8>> {
    ensure!(bytes.len() >= 8, "file is {} bytes, shorter than the 8-byte IDX1 header", bytes.len());
    let magic = u32::from_be_bytes(bytes[..4].try_into().unwrap());
    ensure!(magic == IDX1_UBYTE_MAGIC, "bad magic 0x{magic:08x}, expected 0x{IDX1_UBYTE_MAGIC:08x}");
    let n = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
    ensure!(n == count && bytes.len() == 8 + n, "{n} labels in a {}-byte file for {count} images", bytes.len());
    Ok(bytes[8..].to_vec())
}

fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    GzDecoder::new(bytes.as_slice()).read_to_end(&mut out).with_context(|| format!("cannot decompress gzip file {}", path.display()))?;
    Ok(out)
}

impl Dataset for Mnist {
    fn len(&self) -> usize {
        self.count
    }

    /// Grayscale source; `preprocess` replicates it for 3 channels and resizes when `spec.size` differs.
    fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>> {
        ensure!(index < self.count, "index {index} out of range for {}", self.describe());
        Ok(preprocess(&DynamicImage::ImageLuma8(self.image(index)), spec))
    }

    fn describe(&self) -> String {
        format!("MNIST {} ({} images, {}x{})", self.path.display(), self.count, self.rows, self.cols)
    }

    /// `DIGIT/INDEX` when the labels file is there (so the digit is the image's class, as a class folder is),
    /// else none.
    fn name(&self, index: usize) -> Option<String> {
        self.labels.as_ref().map(|l| format!("{}/{index:05}", l[index]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::data::Fit;

    const GZ: &str = "data/mnist/t10k-images-idx3-ubyte.gz";

    fn gray28() -> ImageSpec {
        ImageSpec { size: 28, channels: 1, fit: Fit::CenterCrop }
    }

    fn check_first_image(mnist: &Mnist) {
        assert_eq!(mnist.len(), 10_000);
        assert_eq!((mnist.rows, mnist.cols), (28, 28));
        let v = mnist.load(0, &gray28()).unwrap();
        assert_eq!(v.len(), 784);
        // A thin handwritten "7": mostly background (-1), some saturated ink strokes.
        let ink = v.iter().filter(|&&x| x > 0.0).count();
        assert!((40..300).contains(&ink), "{ink} ink pixels");
        assert_eq!(v.iter().cloned().fold(f32::INFINITY, f32::min), -1.0);
        assert!(v.iter().cloned().fold(f32::NEG_INFINITY, f32::max) > 0.9);
        assert_eq!(v[0], -1.0, "corner is background");
    }

    #[test]
    fn gzipped_shared_file() {
        let Some(path) = shared_path(GZ) else { return };
        let mnist = Mnist::open(&path).unwrap();
        check_first_image(&mnist);
        assert!(mnist.describe().contains("10000 images, 28x28"), "{}", mnist.describe());
        // The labels file beside it: t10k image 0 is a 7.
        assert_eq!(mnist.name(0).as_deref(), Some("7/00000"));
        let rgb = mnist.load(1, &ImageSpec { size: 32, channels: 3, fit: Fit::Pad }).unwrap();
        assert_eq!(rgb.len(), 3 * 32 * 32);
        assert_eq!(rgb[..1024], rgb[1024..2048]);
    }

    #[test]
    fn raw_copy_in_tempdir() {
        let Some(path) = shared_path(GZ) else { return };
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("t10k-images-idx3-ubyte");
        fs::write(&raw, read_maybe_gzip(&path).unwrap()).unwrap();
        let mnist = Mnist::open(&raw).unwrap();
        check_first_image(&mnist);
        assert_eq!(mnist.name(0), None, "no labels file beside the copy");
        fs::write(dir.path().join("t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 3, 4]).unwrap();
        let err = format!("{:#}", Mnist::open(&raw).err().unwrap());
        assert!(err.contains("t10k-labels-idx1-ubyte") && err.contains("2 labels"), "{err}");
    }

    #[test]
    fn bad_magic_and_truncation_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad-idx3-ubyte");
        let mut bytes = vec![0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2];
        bytes.extend([0u8; 4]);
        fs::write(&bad, &bytes).unwrap();
        let err = format!("{:#}", Mnist::open(&bad).err().unwrap());
        assert!(err.contains("bad-idx3-ubyte") && err.contains("bad magic 0x00000801"), "{err}");

        bytes[3] = 3;
        bytes.pop();
        fs::write(&bad, &bytes).unwrap();
        let err = format!("{:#}", Mnist::open(&bad).err().unwrap());
        assert!(err.contains("bad-idx3-ubyte") && err.contains("holds 3 bytes"), "{err}");
        bytes.push(7);
        fs::write(&bad, &bytes).unwrap();
        assert_eq!(Mnist::open(&bad).unwrap().len(), 1);
    }
}
