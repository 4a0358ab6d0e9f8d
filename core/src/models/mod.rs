//! One file per network. Each model is a struct built from a `VarBuilder` whose keys are the reference
//! project's weight keys, so the same struct trains, infers and imports.

pub mod attribute_classifier;
pub mod dcgan;
pub mod multistyle;
pub mod transformer_net;
pub mod vgg;

pub use dcgan::{DcganConfig, Discriminator, Generator as DcganGenerator, Preset};
pub mod animegan;
pub mod cyclegan;
