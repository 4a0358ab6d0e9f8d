//! Adam (PyTorch semantics: bias-corrected moments, eps added after the square root). Written here rather than
//! using candle-nn's `AdamW` because a checkpoint must hold the moments, which `AdamW` keeps private.

use crate::nn::kernels::adam::adam_step;
use anyhow::{Context, Result};
use candle_core::{backprop::GradStore, DType, Tensor, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamParams {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamParams {
    /// The DCGAN paper's setting.
    fn default() -> Self {
        Self { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 }
    }
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    /// On CPU (f32/f64): the `[2, n]` storage that `m` and `v` are views of, updated in place by the
    /// `nn::kernels::adam` kernel. None elsewhere: tensor arithmetic.
    fused: Option<Tensor>,
}

impl Slot {
    fn new(name: String, var: Var, m: Tensor, v: Tensor) -> Result<Self> {
        let t = var.as_tensor();
        let kernel = t.device().is_cpu() && matches!(t.dtype(), DType::F32 | DType::F64) && t.is_contiguous();
        if !kernel {
            return Ok(Self { name, var, m, v, fused: None });
        }
        let n = t.elem_count();
        let mv = Tensor::stack(&[m.flatten_all()?, v.flatten_all()?], 0)?.contiguous()?;
        let (m, v) = (mv.get(0)?.reshape(t.shape())?, mv.get(1)?.reshape(t.shape())?);
        debug_assert_eq!(mv.dims(), &[2, n]);
        Ok(Self { name, var, m, v, fused: Some(mv) })
    }
}

pub struct Adam {
    pub params: AdamParams,
    pub steps: u64,
    slots: Vec<Slot>,
}

/// BatchNorm running statistics live in the same `VarMap` but are not trained.
fn trainable(name: &str) -> bool {
    !name.ends_with("running_mean") && !name.ends_with("running_var")
}

impl Adam {
    pub fn new(vars: &VarMap, params: AdamParams) -> Result<Self> {
        let data = vars.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().filter(|k| trainable(k)).collect();
        names.sort();
        let slots = names
            .into_iter()
            .map(|name| {
                let var = data[name].clone();
                Slot::new(name.clone(), var.clone(), var.zeros_like()?, var.zeros_like()?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { params, steps: 0, slots })
    }

    /// Forgets the moments and the step count, as a fresh optimiser over the same variables would start.
    pub fn reset(&mut self) -> Result<()> {
        self.steps = 0;
        for s in &mut self.slots {
            let zeros = s.var.as_tensor().zeros_like()?;
            *s = Slot::new(std::mem::take(&mut s.name), s.var.clone(), zeros.clone(), zeros)?;
        }
        Ok(())
    }

    /// One update of every variable that has a gradient in `grads` (others, e.g. the other network's, are
    /// left untouched).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let p = self.params;
        let t = self.steps as i32;
        let (c1, c2) = (1.0 - p.beta1.powi(t), 1.0 - p.beta2.powi(t));
        for s in &mut self.slots {
            let Some(g) = grads.get(&s.var) else { continue };
            // Detached: with second-order gradients on (WGAN-GP) a gradient carries its graph, which the
            // moments would otherwise keep alive from step to step.
            let g = &g.detach();
            if let Some(mv) = &s.fused {
                adam_step(s.var.as_tensor(), mv, g, p.lr, p.beta1, p.beta2, p.eps, t)?;
                continue;
            }
            s.m = ((&s.m * p.beta1)? + (g * (1.0 - p.beta1))?)?;
            s.v = ((&s.v * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let denom = ((&s.v / c2)?.sqrt()? + p.eps)?;
            let update = ((&s.m / c1)? / denom)? * p.lr;
            s.var.set(&(s.var.as_tensor() - update?)?)?;
        }
        Ok(())
    }

    /// Moments as named tensors (`{prefix}m.{var}`, `{prefix}v.{var}`) for a checkpoint: copies, since the
    /// CPU kernel updates the moments in place.
    pub fn state_tensors(&self, prefix: &str) -> Vec<(String, Tensor)> {
        self.slots
            .iter()
            .flat_map(|s| [(format!("{prefix}m.{}", s.name), &s.m), (format!("{prefix}v.{}", s.name), &s.v)])
            .map(|(k, t)| (k, t.copy().unwrap_or_else(|_| t.clone())))
            .collect()
    }

    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, prefix: &str, steps: u64) -> Result<()> {
        for s in &mut self.slots {
            let get = |k: &str| -> Result<Tensor> {
                let key = format!("{prefix}{k}.{}", s.name);
                let t = tensors.get(&key).with_context(|| format!("checkpoint lacks optimiser state `{key}`"))?;
                Ok(t.to_dtype(s.var.dtype())?.to_device(s.var.device())?)
            };
            let (m, v) = (get("m")?, get("v")?);
            *s = Slot::new(std::mem::take(&mut s.name), s.var.clone(), m, v)?;
        }
        self.steps = steps;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn first_step_moves_by_lr_and_second_matches_hand_computation() -> Result<()> {
        let vm = VarMap::new();
        let w = vm.get(2, "w", candle_nn::Init::Const(1.0), DType::F64, &Device::Cpu)?;
        let mut opt = Adam::new(&vm, AdamParams::default())?;
        let var = vm.data().lock().unwrap()["w"].clone();
        let grads = (w.clone() * 3.0)?.sum_all()?.backward()?;
        opt.step(&grads)?;
        let after: Vec<f64> = var.as_tensor().to_vec1()?;
        assert!((after[0] - (1.0 - 2e-4)).abs() < 1e-12);
        // Second step with gradient 1: m = 0.5*3*0.5+0.5 = ..., checked against the closed form.
        let grads = var.as_tensor().sum_all()?.backward()?;
        opt.step(&grads)?;
        let (b1, b2): (f64, f64) = (0.5, 0.999);
        let m = b1 * (1.0 - b1) * 3.0 + (1.0 - b1) * 1.0;
        let v = b2 * (1.0 - b2) * 9.0 + (1.0 - b2) * 1.0;
        let expected = 1.0 - 2e-4 - 2e-4 * (m / (1.0 - b1 * b1)) / ((v / (1.0 - b2 * b2)).sqrt() + 1e-8);
        let got: Vec<f64> = var.as_tensor().to_vec1()?;
        assert!((got[1] - expected).abs() < 1e-12, "{} vs {expected}", got[1]);
        Ok(())
    }

    /// After a reset the next step is a first step again: it moves every weight by exactly the learning rate
    /// whatever the earlier gradients were (carried moments would scale it).
    #[test]
    fn reset_makes_the_next_step_a_first_step() -> Result<()> {
        let vm = VarMap::new();
        let w = vm.get(2, "w", candle_nn::Init::Const(1.0), DType::F32, &Device::Cpu)?;
        let mut opt = Adam::new(&vm, AdamParams::default())?;
        for _ in 0..5 {
            opt.step(&(w.clone() * 100.0)?.sum_all()?.backward()?)?;
        }
        opt.reset()?;
        assert_eq!(opt.steps, 0);
        assert!(opt.state_tensors("").iter().all(|(_, t)| t.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() == 0.0));
        let before: Vec<f32> = w.to_vec1()?;
        opt.step(&(w.clone() * -0.01)?.sum_all()?.backward()?)?;
        let after: Vec<f32> = w.to_vec1()?;
        for (b, a) in before.iter().zip(&after) {
            assert!((a - b - 2e-4).abs() < 1e-7, "{b} -> {a}");
        }
        Ok(())
    }
}
