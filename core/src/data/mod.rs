//! Training data: image folders, MNIST IDX, labels CSV, preprocessing and a background batch loader.

pub mod concat;
mod dataset;
pub mod edge_smooth;
mod folder;
mod labels;
mod loader;
mod mnist;
mod preprocess;
pub mod selection;
pub mod shared;

pub use dataset::{open_dataset, spread_samples, Dataset};
pub use folder::ImageFolder;
pub use labels::Labels;
pub use loader::{Batch, Loader, LoaderConfig};
pub use mnist::Mnist;
pub use preprocess::{center_square, flip_horizontal, preprocess, Fit, ImageSpec};
