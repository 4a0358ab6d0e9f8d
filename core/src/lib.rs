//! ganime: GAN image generation, style transfer and anime stylisation on Candle.

pub mod data;
pub mod io;
pub mod models;
pub mod nn;
pub mod train;
