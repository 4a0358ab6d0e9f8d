//! Building blocks Candle lacks or gets wrong (see `../shared/CANDLE-NOTES.md`), each in one place and each
//! with a finite-difference gradient test in f64.

pub mod adam;
pub mod batch_norm;
pub mod bilinear;
pub mod conv;
pub mod depthwise;
pub mod fused;
#[cfg(test)]
pub(crate) mod gradcheck;
pub mod init;
pub mod kernels;
pub mod layer_norm;
pub mod loss;
pub mod norm;
pub mod pad;
pub mod resample;
pub mod sequential;
pub mod spectral_norm;
pub mod summary;

pub use batch_norm::BatchNorm2d;
pub use conv::{Conv2d, ConvTranspose2d};
pub use init::seeded_var_builder;
pub use loss::{bce_with_logits, l1_loss, mse_loss};
pub use norm::{batch_norm2d, instance_norm, instance_norm_act, InstanceNorm2d};
pub use pad::reflection_pad2d;
pub use resample::{max_pool2d, upsample_nearest2d};
pub use sequential::{LayerSpec, Mode, Sequential};
