//! The optimisers a run can use (Adam, RMSProp), behind one type the trainer steps, schedules and checkpoints.

use crate::nn::adam::{Adam, AdamParams};
use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    #[default]
    Adam,
    /// PyTorch's `RMSprop` defaults (alpha 0.99, eps 1e-8, no momentum): the WGAN paper's optimiser.
    Rmsprop,
}

/// `torch.optim.RMSprop(lr, alpha=0.99, eps=1e-8)`: `v = alpha v + (1 - alpha) g²`, `p -= lr g / (sqrt(v) + eps)`.
/// Written by hand: candle-nn has only SGD and AdamW.
pub struct RmsProp {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub steps: u64,
    slots: Vec<(String, Var, Tensor)>,
}

/// BatchNorm running statistics live in the same `VarMap` but are not trained.
fn trainable(name: &str) -> bool {
    !name.ends_with("running_mean") && !name.ends_with("running_var")
}

impl RmsProp {
    pub fn new(vars: &VarMap, lr: f64) -> Result<Self> {
        let data = vars.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().filter(|k| trainable(k)).collect();
        names.sort();
        let slots = names.into_iter().map(|n| Ok((n.clone(), data[n].clone(), data[n].zeros_like()?))).collect::<Result<Vec<_>>>()?;
        Ok(Self { lr, alpha: 0.99, eps: 1e-8, steps: 0, slots })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        for (_, var, sq) in &mut self.slots {
            let Some(g) = grads.get(var) else { continue };
            // Detached, as in Adam: the squared-gradient average must not keep the step's graph alive.
            let g = &g.detach();
            *sq = ((&*sq * self.alpha)? + (g.sqr()? * (1.0 - self.alpha))?)?;
            let update = (g / (sq.sqrt()? + self.eps)?)? * self.lr;
            var.set(&(var.as_tensor() - update?)?)?;
        }
        Ok(())
    }
}

pub enum Optimizer {
    Adam(Adam),
    RmsProp(RmsProp),
}

impl Optimizer {
    /// `params.lr` is the learning rate of either kind; the betas only matter to Adam.
    pub fn new(kind: OptimizerKind, vars: &VarMap, params: AdamParams) -> Result<Self> {
        Ok(match kind {
            OptimizerKind::Adam => Optimizer::Adam(Adam::new(vars, params)?),
            OptimizerKind::Rmsprop => Optimizer::RmsProp(RmsProp::new(vars, params.lr)?),
        })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        match self {
            Optimizer::Adam(o) => o.step(grads),
            Optimizer::RmsProp(o) => o.step(grads),
        }
    }

    /// Forgets the moments and the step count (a fresh optimiser over the same variables).
    pub fn reset(&mut self) -> Result<()> {
        match self {
            Optimizer::Adam(o) => o.reset(),
            Optimizer::RmsProp(o) => {
                o.steps = 0;
                o.slots.iter_mut().try_for_each(|(_, _, sq)| -> Result<()> {
                    *sq = sq.zeros_like()?;
                    Ok(())
                })
            }
        }
    }

    pub fn steps(&self) -> u64 {
        match self {
            Optimizer::Adam(o) => o.steps,
            Optimizer::RmsProp(o) => o.steps,
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        match self {
            Optimizer::Adam(o) => o.params.lr = lr,
            Optimizer::RmsProp(o) => o.lr = lr,
        }
    }

    /// Moments as named tensors for a checkpoint (`{prefix}m.…`/`{prefix}v.…` for Adam, `{prefix}sq.…` for RMSProp).
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        match self {
            Optimizer::Adam(o) => o.state_tensors(prefix),
            Optimizer::RmsProp(o) => o.slots.iter().map(|(n, _, sq)| (format!("{prefix}sq.{n}"), sq.clone())).collect(),
        }
    }

    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, prefix: &str, steps: u64) -> Result<()> {
        match self {
            Optimizer::Adam(o) => o.load_state(tensors, prefix, steps),
            Optimizer::RmsProp(o) => {
                for (n, var, sq) in &mut o.slots {
                    let key = format!("{prefix}sq.{n}");
                    let t = tensors.get(&key).with_context(|| format!("checkpoint lacks optimiser state `{key}`"))?;
                    *sq = t.to_dtype(var.dtype())?.to_device(var.device())?;
                }
                o.steps = steps;
                Ok(())
            }
        }
    }
}

/// Constant learning rate for `constant_steps`, then linear decay to zero over `decay_steps` (CycleGAN's
/// `n_epochs` / `n_epochs_decay`, counted in steps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub constant_steps: u64,
    pub decay_steps: u64,
}

impl LrSchedule {
    /// The factor applied to the base learning rate for the update made at `step` (0-based).
    pub fn factor(&self, step: u64) -> f64 {
        if step < self.constant_steps || self.decay_steps == 0 {
            return if step < self.constant_steps { 1.0 } else { 0.0 };
        }
        // As the reference's lambda rule: the first decayed update already uses a slightly lower rate.
        (1.0 - (step - self.constant_steps + 1) as f64 / (self.decay_steps + 1) as f64).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn rmsprop_matches_hand_computation() -> Result<()> {
        let vm = VarMap::new();
        let w = vm.get(1, "w", candle_nn::Init::Const(1.0), DType::F64, &Device::Cpu)?;
        let mut opt = Optimizer::new(OptimizerKind::Rmsprop, &vm, AdamParams { lr: 0.01, ..AdamParams::default() })?;
        let var = vm.data().lock().unwrap()["w"].clone();
        opt.step(&(w.clone() * 2.0)?.sum_all()?.backward()?)?;
        let v1 = 0.01 * 4.0;
        let after = 1.0 - 0.01 * 2.0 / (f64::sqrt(v1) + 1e-8);
        let got: Vec<f64> = var.as_tensor().to_vec1()?;
        assert!((got[0] - after).abs() < 1e-12, "{} vs {after}", got[0]);
        let state = opt.state_tensors("opt.D.");
        assert_eq!(state[0].0, "opt.D.sq.w");
        Ok(())
    }

    #[test]
    fn schedule_is_constant_then_linear() {
        let s = LrSchedule { constant_steps: 3, decay_steps: 4 };
        let f: Vec<f64> = (0..8).map(|i| s.factor(i)).collect();
        assert_eq!(&f[..3], &[1.0, 1.0, 1.0]);
        assert!((f[3] - 0.8).abs() < 1e-12 && (f[6] - 0.2).abs() < 1e-12 && f[7] == 0.0, "{f:?}");
    }
}
