//! One file per network. Each model is a struct built from a `VarBuilder` whose keys are the reference
//! project's weight keys, so the same struct trains, infers and imports.

pub mod attribute_classifier;
pub mod catalog;
pub mod dcgan;
pub mod magenta_arbitrary;
pub mod multistyle;
pub mod progressive;
pub mod tf_transformer_net;
pub mod transformer_net;
pub mod upscaler;
pub mod vgg;

pub use dcgan::{DcganConfig, Discriminator, Generator as DcganGenerator, Preset};
pub mod animegan;
pub mod animegan_discriminator;
pub mod cyclegan;

/// `‖a − b‖ / ‖b‖` in f64: the relative error every parity test compares against its golden's tolerance.
#[cfg(test)]
pub(crate) fn rel_err(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f64 {
    use candle_core::DType;
    let a = a.to_dtype(DType::F64).unwrap();
    let b = b.to_dtype(DType::F64).unwrap();
    let num = (&a - &b).unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap().sqrt();
    num / b.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap().sqrt()
}
