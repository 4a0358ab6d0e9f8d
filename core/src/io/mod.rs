//! File formats: weight files (PyTorch `.pth`, safetensors), checkpoints, images, atomic writes.

pub mod atomic;
pub mod checkpoint;
pub mod image;
pub mod limits;
pub mod pth;
pub mod text;
pub mod weights;
pub mod y4m;

pub use atomic::write_atomic;
