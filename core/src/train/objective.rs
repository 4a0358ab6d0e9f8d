//! Adversarial objectives: what D and G minimise, given D's raw outputs. The trainer and the tasks only talk
//! to this trait, so WGAN/LSGAN variants plug in without touching the loop.

use crate::nn::{bce_with_logits, mse_loss};
use candle_core::{Result, Tensor, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};

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
    /// D (critic) updates per G update.
    fn critic_steps(&self) -> usize {
        1
    }
    /// Clamp every critic weight to [-c, c] after each critic update (WGAN).
    fn weight_clip(&self) -> Option<f64> {
        None
    }
    /// Weight λ of the gradient penalty the task adds to D's loss (WGAN-GP), if any.
    fn gradient_penalty(&self) -> Option<f64> {
        None
    }
}

/// Per-sample targets `[N]` broadcast to D's output shape (`[N]` for DCGAN, `[N, 1, h, w]` for a PatchGAN).
fn expand(targets: &Tensor, d_out: &Tensor) -> Result<Tensor> {
    if targets.dims() == d_out.dims() {
        return Ok(targets.clone());
    }
    let n = d_out.dim(0)?;
    let mut shape = vec![1usize; d_out.rank()];
    shape[0] = n;
    targets.reshape(shape)?.broadcast_as(d_out.shape())?.contiguous()
}

/// Which objective a run uses, with its parameters; stored in checkpoints so a resumed run uses the same.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ObjectiveSpec {
    #[default]
    Bce,
    Lsgan,
    Hinge,
    Wgan {
        clip: f64,
        n_critic: usize,
    },
    WganGp {
        lambda: f64,
        n_critic: usize,
    },
}

impl ObjectiveSpec {
    /// `bce`, `lsgan`, `hinge`, `wgan` (clip 0.01, 5 critic steps), `wgan-gp` (λ 10, 5 critic steps).
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "bce" => Self::Bce,
            "lsgan" => Self::Lsgan,
            "hinge" => Self::Hinge,
            "wgan" => Self::Wgan { clip: 0.01, n_critic: 5 },
            "wgan-gp" => Self::WganGp { lambda: 10.0, n_critic: 5 },
            other => anyhow::bail!("unknown objective '{other}': use bce, lsgan, hinge, wgan or wgan-gp"),
        })
    }

    pub fn build(&self) -> Box<dyn Objective> {
        match *self {
            Self::Bce => Box::new(Bce),
            Self::Lsgan => Box::new(Lsgan),
            Self::Hinge => Box::new(Hinge),
            Self::Wgan { clip, n_critic } => Box::new(Wgan { clip: Some(clip), penalty: None, n_critic }),
            Self::WganGp { lambda, n_critic } => Box::new(Wgan { clip: None, penalty: Some(lambda), n_critic }),
        }
    }
}

/// The original GAN objective: binary cross-entropy on logits, G with the non-saturating loss.
pub struct Bce;

impl Objective for Bce {
    fn name(&self) -> &'static str {
        "bce"
    }
    fn d_loss(&self, d_real: &Tensor, d_fake: &Tensor, t: &Targets) -> Result<Tensor> {
        // Two means summed, as pytorch/examples' errD = errD_real + errD_fake.
        bce_with_logits(d_real, &expand(&t.real, d_real)?)? + bce_with_logits(d_fake, &expand(&t.fake, d_fake)?)?
    }
    fn g_loss(&self, d_fake: &Tensor) -> Result<Tensor> {
        bce_with_logits(d_fake, &d_fake.ones_like()?)
    }
    fn score(&self, d_out: &Tensor) -> Result<Tensor> {
        candle_nn::ops::sigmoid(d_out)
    }
}

/// Least squares GAN (Mao et al.), as CycleGAN uses it: D regresses real to 1 and fake to 0 (the two halves
/// averaged), G pushes D(G(z)) to 1.
pub struct Lsgan;

impl Objective for Lsgan {
    fn name(&self) -> &'static str {
        "lsgan"
    }
    fn d_loss(&self, d_real: &Tensor, d_fake: &Tensor, t: &Targets) -> Result<Tensor> {
        (mse_loss(d_real, &expand(&t.real, d_real)?)? + mse_loss(d_fake, &expand(&t.fake, d_fake)?)?)? * 0.5
    }
    fn g_loss(&self, d_fake: &Tensor) -> Result<Tensor> {
        mse_loss(d_fake, &d_fake.ones_like()?)
    }
    fn score(&self, d_out: &Tensor) -> Result<Tensor> {
        Ok(d_out.clone())
    }
}

/// The hinge loss of SN-GAN and BigGAN: D minimises `E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`, G minimises
/// `-E[D(G(z))]`. D stops pushing samples it already scores beyond the margin, which keeps it from
/// overconfidence on a small data set. Label smoothing and flips do not apply (the margins replace them).
pub struct Hinge;

impl Objective for Hinge {
    fn name(&self) -> &'static str {
        "hinge"
    }
    fn d_loss(&self, d_real: &Tensor, d_fake: &Tensor, _t: &Targets) -> Result<Tensor> {
        (d_real.neg()? + 1.0)?.relu()?.mean_all()? + (d_fake + 1.0)?.relu()?.mean_all()?
    }
    fn g_loss(&self, d_fake: &Tensor) -> Result<Tensor> {
        d_fake.mean_all()?.neg()
    }
    fn score(&self, d_out: &Tensor) -> Result<Tensor> {
        // For the logs only: the logistic of the margin, so D(x) / D(G(z)) read like the BCE runs'.
        candle_nn::ops::sigmoid(d_out)
    }
}

/// Wasserstein GAN: the critic maximises E[D(x)] - E[D(G(z))], kept Lipschitz by weight clipping (Arjovsky
/// et al.) or by a gradient penalty on interpolates (Gulrajani et al., see [`gradient_penalty`]). Labels
/// are not used.
pub struct Wgan {
    pub clip: Option<f64>,
    pub penalty: Option<f64>,
    pub n_critic: usize,
}

impl Objective for Wgan {
    fn name(&self) -> &'static str {
        if self.penalty.is_some() {
            "wgan-gp"
        } else {
            "wgan"
        }
    }
    fn d_loss(&self, d_real: &Tensor, d_fake: &Tensor, _t: &Targets) -> Result<Tensor> {
        d_fake.mean_all()? - d_real.mean_all()?
    }
    fn g_loss(&self, d_fake: &Tensor) -> Result<Tensor> {
        d_fake.mean_all()?.neg()
    }
    fn score(&self, d_out: &Tensor) -> Result<Tensor> {
        Ok(d_out.clone())
    }
    fn critic_steps(&self) -> usize {
        self.n_critic.max(1)
    }
    fn weight_clip(&self) -> Option<f64> {
        self.clip
    }
    fn gradient_penalty(&self) -> Option<f64> {
        self.penalty
    }
}

/// Makes `backward()` keep the graph of the gradients it returns, so they can be differentiated again (the
/// gradient penalty needs d/dθ of ‖∂D/∂x‖). Candle reads `CANDLE_GRAD_DO_NOT_DETACH` once per thread at the
/// thread's first backward, so this must run before any backward in the training thread; the check below
/// proves it took effect, since without it the penalty's gradient is silently wrong (see CANDLE-NOTES §2).
pub fn enable_second_order_gradients() -> anyhow::Result<()> {
    if std::env::var("CANDLE_GRAD_DO_NOT_DETACH").map(|v| v.is_empty() || v == "0").unwrap_or(true) {
        // Rust's env lock serialises this with Candle's reads (both use std::env).
        std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
    }
    let x = Var::new(&[2f64], &candle_core::Device::Cpu)?;
    let grads = x.as_tensor().powf(3.0)?.sum_all()?.backward()?;
    let dx = grads.get(&x).expect("gradient of x");
    let d2 = dx.sum_all()?.backward()?;
    match d2.get(&x) {
        Some(g) if (g.to_vec1::<f64>()?[0] - 12.0).abs() < 1e-9 => Ok(()),
        _ => anyhow::bail!("second-order gradients are unavailable in this thread (a backward ran before CANDLE_GRAD_DO_NOT_DETACH=1 was set); start the process with CANDLE_GRAD_DO_NOT_DETACH=1"),
    }
}

/// WGAN-GP's penalty `E[(‖∇_x̂ D(x̂)‖₂ - 1)²]` on per-sample interpolates `x̂ = ε x + (1 - ε) G(z)`, ε ~ U(0, 1)
/// drawn from `rng`. Differentiable with respect to D's weights once [`enable_second_order_gradients`] ran.
/// `critic` must treat samples independently (no BatchNorm), so that ∂ΣD/∂x̂ holds each sample's gradient.
pub fn gradient_penalty(critic: impl Fn(&Tensor) -> Result<Tensor>, real: &Tensor, fake: &Tensor, rng: &mut impl Rng) -> Result<Tensor> {
    let n = real.dim(0)?;
    let eps: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    let mut shape = vec![1usize; real.rank()];
    shape[0] = n;
    let eps = Tensor::from_vec(eps, shape, real.device())?.to_dtype(real.dtype())?;
    let mixed = (real.broadcast_mul(&eps)? + fake.detach().broadcast_mul(&(1.0 - eps)?)?)?;
    let g = input_gradient(critic, &mixed)?;
    // A tiny epsilon keeps the norm's derivative finite at a zero gradient.
    let norm = (g.flatten_from(1)?.sqr()?.sum(1)? + 1e-12)?.sqrt()?;
    (norm - 1.0)?.sqr()?.mean_all()
}

/// The R1 penalty (Mescheder et al. 2018) `γ/2 · E‖∇ₓD(x)‖²` at the real inputs `x`: it keeps D flat on the
/// data, so it neither overshoots nor oscillates around it. Differentiable in D's weights once
/// [`enable_second_order_gradients`] ran.
pub fn r1_penalty(critic: impl Fn(&Tensor) -> Result<Tensor>, real: &Tensor, gamma: f64) -> Result<Tensor> {
    input_gradient(critic, real)?.flatten_from(1)?.sqr()?.sum(1)?.mean_all()? * (gamma / 2.0)
}

/// `∂ Σ critic(x) / ∂x` at `x` (detached first), per sample when the critic scores samples independently.
fn input_gradient(critic: impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    let x = Var::from_tensor(&x.detach())?;
    let grads = critic(x.as_tensor())?.sum_all()?.backward()?;
    grads.get(&x).cloned().ok_or_else(|| candle_core::Error::Msg("the critic's output does not depend on its input".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Conv2d;
    use candle_core::{DType, Device};
    use rand::SeedableRng;

    #[test]
    fn r1_of_a_linear_critic_is_half_gamma_times_its_squared_weight_norm() -> anyhow::Result<()> {
        // D(x) = Σ w·x per sample: ∇ₓD = w for every sample, so R1 = γ/2 · ‖w‖².
        let dev = Device::Cpu;
        let w = Tensor::new(&[[1f64, -2.], [0.5, 3.]], &dev)?.reshape((1, 2, 2))?;
        let critic = |x: &Tensor| x.broadcast_mul(&w)?.flatten_from(1)?.sum(1);
        let real = Tensor::randn(0f64, 1.0, (3, 2, 2), &dev)?;
        let r1 = r1_penalty(critic, &real, 0.2)?.to_scalar::<f64>()?;
        assert!((r1 - 0.1 * (1.0 + 4.0 + 0.25 + 9.0)).abs() < 1e-12, "{r1}");
        Ok(())
    }

    #[test]
    fn losses_on_known_values() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let real = Tensor::new(&[1f32, 3.], &dev)?;
        let fake = Tensor::new(&[-1f32, 0.], &dev)?;
        let t = Targets { real: Tensor::new(&[1f32, 1.], &dev)?, fake: Tensor::new(&[0f32, 0.], &dev)? };
        let v = |x: Tensor| x.to_scalar::<f32>().unwrap();
        assert_eq!(v(Lsgan.d_loss(&real, &fake, &t)?), 0.5 * (2.0 + 0.5));
        assert_eq!(v(Lsgan.g_loss(&fake)?), 2.5);
        let w = ObjectiveSpec::parse("wgan")?.build();
        assert_eq!((w.name(), w.critic_steps(), w.weight_clip()), ("wgan", 5, Some(0.01)));
        assert_eq!(v(w.d_loss(&real, &fake, &t)?), -0.5 - 2.0);
        assert_eq!(v(w.g_loss(&fake)?), 0.5);
        assert_eq!(ObjectiveSpec::parse("wgan-gp")?.build().gradient_penalty(), Some(10.0));
        assert!(ObjectiveSpec::parse("hinge-loss").is_err());
        // Hinge: relu(1 - 1) + relu(1 - 3) = 0 for real, relu(1 - 1) + relu(1 + 0) = 1 for fake, halves averaged per term.
        let h = ObjectiveSpec::parse("hinge")?.build();
        assert_eq!(v(h.d_loss(&real, &fake, &t)?), 0.0 + 0.5);
        assert_eq!(v(h.d_loss(&fake, &real, &t)?), 1.5 + 3.0);
        assert_eq!(v(h.g_loss(&fake)?), 0.5);
        // PatchGAN-shaped outputs take per-sample targets.
        let patch = Tensor::ones((2, 1, 3, 3), DType::F32, &dev)?;
        assert_eq!(v(Lsgan.d_loss(&patch, &patch.zeros_like()?, &t)?), 0.0);
        Ok(())
    }

    /// The penalty's gradient with respect to a tiny critic's weights (conv, leaky ReLU, conv) against central
    /// differences of the penalty itself, in f64.
    #[test]
    fn gradient_penalty_gradient_matches_finite_differences() -> anyhow::Result<()> {
        // Its own thread, so the once-per-thread switch is read after it is set.
        std::thread::spawn(|| -> anyhow::Result<()> {
            enable_second_order_gradients()?;
            let dev = Device::Cpu;
            // 16×16 with a stride-1 first conv: 256 positions per image, where training convs take the tiled
            // kernels, whose backward is first-order only unless second-order gradients route around it (a
            // broken route leaves w1 without a gradient, measured).
            let real = crate::nn::gradcheck::seeded(&[2, 1, 16, 16], 1)?;
            let fake = crate::nn::gradcheck::seeded(&[2, 1, 16, 16], 2)?;
            let w1_0 = crate::nn::gradcheck::seeded(&[3, 1, 3, 3], 3)?;
            let w2_0 = (crate::nn::gradcheck::seeded(&[1, 3, 2, 2], 4)? * 0.5)?;
            let penalty = |w1: &Tensor, w2: &Tensor| -> Result<Tensor> {
                let critic = |x: &Tensor| -> Result<Tensor> {
                    let c1 = Conv2d { weight: w1.clone(), bias: None, stride: 1, padding: 1 };
                    let c2 = Conv2d { weight: w2.clone(), bias: None, stride: 1, padding: 0 };
                    let h = candle_nn::ops::leaky_relu(&c1.forward(x)?, 0.2)?;
                    c2.forward(&h)?.flatten_all()
                };
                gradient_penalty(critic, &real, &fake, &mut rand_chacha::ChaCha8Rng::seed_from_u64(9))
            };
            let (v1, v2) = (Var::from_tensor(&w1_0)?, Var::from_tensor(&w2_0)?);
            let grads = penalty(v1.as_tensor(), v2.as_tensor())?.backward()?;
            for (which, w0, var) in [(0, &w1_0, &v1), (1, &w2_0, &v2)] {
                let analytic: Vec<f64> = grads.get(var).expect("no gradient for a critic weight").flatten_all()?.to_vec1()?;
                let base: Vec<f64> = w0.flatten_all()?.to_vec1()?;
                for i in 0..base.len() {
                    let at = |d: f64| -> Result<f64> {
                        let mut v = base.clone();
                        v[i] += d;
                        let w = Tensor::from_vec(v, w0.dims(), &dev)?;
                        let p = if which == 0 { penalty(&w, &w2_0)? } else { penalty(&w1_0, &w)? };
                        p.to_scalar::<f64>()
                    };
                    let numeric = (at(1e-6)? - at(-1e-6)?) / 2e-6;
                    assert!(
                        (numeric - analytic[i]).abs() < 1e-5 * (1.0 + numeric.abs()),
                        "weight {which}[{i}]: numeric {numeric}, autograd {}",
                        analytic[i]
                    );
                }
            }
            Ok(())
        })
        .join()
        .expect("gradient penalty test thread panicked")
    }
}
