//! Adversarial objectives: what D and G minimise, given D's raw outputs. The trainer and the tasks only talk
//! to this trait, so WGAN/LSGAN variants plug in without touching the loop.

use crate::nn::bce_with_logits;
use candle_core::{Result, Tensor};

/// D's targets for one step (after smoothing / flipping), as tensors shaped like D's output.
pub struct Targets {
    pub real: Tensor,
    pub fake: Tensor,
}

pub trait Objective: Send + Sync {
    fn name(&self) -> &'static str;
    /// D's loss on its outputs for real and for (detached) fake images.
    fn d_loss(&self, d_real: &Tensor, d_fake: &Tensor, targets: &Targets) -> Result<Tensor>;
    /// G's loss on D's output for fake images.
    fn g_loss(&self, d_fake: &Tensor) -> Result<Tensor>;
    /// D's output as a "probability of real" for the logs (D(x), D(G(z))).
    fn score(&self, d_out: &Tensor) -> Result<Tensor>;
}

/// The original GAN objective: binary cross-entropy on logits, G with the non-saturating loss.
pub struct Bce;

impl Objective for Bce {
    fn name(&self) -> &'static str {
        "bce"
    }
    fn d_loss(&self, d_real: &Tensor, d_fake: &Tensor, t: &Targets) -> Result<Tensor> {
        // Two means summed, as pytorch/examples' errD = errD_real + errD_fake.
        bce_with_logits(d_real, &t.real)? + bce_with_logits(d_fake, &t.fake)?
    }
    fn g_loss(&self, d_fake: &Tensor) -> Result<Tensor> {
        bce_with_logits(d_fake, &d_fake.ones_like()?)
    }
    fn score(&self, d_out: &Tensor) -> Result<Tensor> {
        candle_nn::ops::sigmoid(d_out)
    }
}
