//! File formats: weight files (PyTorch `.pth`, safetensors), images, atomic writes.

pub mod atomic;
pub mod image;
pub mod pth;
pub mod text;
pub mod weights;

pub use atomic::write_atomic;
