//! Spectral normalisation of a convolution (Miyato et al. 2018; PyTorch's `torch.nn.utils.spectral_norm`):
//! the layer uses `W / σ(W)`, σ estimated by one power iteration per training forward on the weight viewed
//! as a `[c_out, c_in·k·k]` matrix. It keeps a discriminator 1-Lipschitz per layer, which is what lets a
//! hinge-loss GAN train without BatchNorm in D.
//!
//! Keys as PyTorch's hook writes them: `weight` (PyTorch's `weight_orig`) and `weight_u` (the left singular
//! vector estimate, `[c_out]`). `u` is a variable of the layer's `VarMap`, so checkpoints keep it and a resumed
//! run continues the same iteration; it never receives a gradient (it only enters detached), so optimisers
//! leave it alone.

use super::conv::{add_bias, conv2d_no_bias, Conv2d};
use candle_core::{Result, Tensor, Var};
use candle_nn::{Init, VarBuilder};

/// PyTorch's `eps` in `normalize(·, eps=1e-12)`.
const EPS: f64 = 1e-12;

pub struct SpectralNormConv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    u: Var,
    stride: usize,
    padding: usize,
}

impl SpectralNormConv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn new(c_in: usize, c_out: usize, k: usize, stride: usize, padding: usize, bias: bool, init: Init, vb: VarBuilder) -> Result<Self> {
        let conv = Conv2d::new(c_in, c_out, k, stride, padding, bias, Some(init), vb.clone())?;
        let u = Var::from_tensor(&vb.get_with_hints(c_out, "weight_u", Init::Randn { mean: 0.0, stdev: 1.0 })?)?;
        // A fresh u is a random unit vector (as PyTorch initialises it); a loaded one is already normalised.
        u.set(&normalize(u.as_tensor())?)?;
        Ok(Self { weight: conv.weight, bias: conv.bias, u, stride, padding })
    }

    /// `W / σ(W)`. With `train`, first one power-iteration step updates `u` (PyTorch's training mode); σ is
    /// `uᵀ W v` with `u`, `v` held constant, so the gradient flows through `W` in both places, as in PyTorch.
    pub fn normalized_weight(&self, train: bool) -> Result<Tensor> {
        self.weight.broadcast_div(&self.sigma_tensor(train)?)
    }

    /// The current estimate of the largest singular value (no update).
    pub fn sigma(&self) -> Result<f64> {
        self.sigma_tensor(false)?.detach().to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()
    }

    /// `σ = uᵀ W v` as a scalar tensor, `v = normalize(Wᵀu)`; with `update`, first `u ← normalize(W v)` (stored).
    fn sigma_tensor(&self, update: bool) -> Result<Tensor> {
        let w = self.weight.reshape((self.weight.dim(0)?, ()))?;
        let w_const = w.detach();
        let mut u = self.u.as_tensor().detach().unsqueeze(1)?;
        let v = normalize(&w_const.t()?.matmul(&u)?)?;
        if update {
            u = normalize(&w_const.matmul(&v)?)?;
            self.u.set(&u.squeeze(1)?)?;
        }
        u.t()?.matmul(&w.matmul(&v)?)?.reshape(())
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        add_bias(conv2d_no_bias(x, &self.normalized_weight(train)?, self.stride, self.padding)?, self.bias.as_ref())
    }
}

/// `x / max(‖x‖, eps)`.
fn normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_all()?.sqrt()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
    x / norm.max(EPS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::seeded_var_builder;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// The largest singular value by many power iterations in f64, independent of the layer's code.
    fn top_singular_value(w: &[f64], rows: usize, cols: usize) -> f64 {
        let mut v = vec![1.0; cols];
        let mut s = 0.0;
        for _ in 0..500 {
            let u: Vec<f64> = (0..rows).map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum()).collect();
            let nu = u.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nv: Vec<f64> = (0..cols).map(|c| (0..rows).map(|r| w[r * cols + c] * u[r] / nu).sum()).collect();
            s = nv.iter().map(|x| x * x).sum::<f64>().sqrt();
            v = nv.iter().map(|x| x / s).collect();
        }
        s
    }

    #[test]
    fn power_iteration_finds_the_spectral_norm_and_the_layer_divides_by_it() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, 7, DType::F64, &dev);
        let layer = SpectralNormConv2d::new(3, 5, 3, 1, 1, true, Init::Randn { mean: 0.0, stdev: 0.5 }, vb)?;
        let w: Vec<f64> = layer.weight.flatten_all()?.to_vec1()?;
        let expected = top_singular_value(&w, 5, 27);
        // One step per training forward: after enough forwards the estimate has converged.
        let x = Tensor::randn(0f64, 1.0, (2, 3, 6, 6), &dev)?;
        for _ in 0..50 {
            layer.forward(&x, true)?;
        }
        assert!((layer.sigma()? - expected).abs() < 1e-9 * expected, "{} vs {expected}", layer.sigma()?);
        // The forward is the plain conv with W / σ.
        let y = layer.forward(&x, false)?;
        let plain = (x.conv2d(&(&layer.weight / expected)?, 1, 1, 1, 1)?
            + layer.bias.as_ref().unwrap().reshape((1, 5, 1, 1))?.broadcast_as((2, 5, 6, 6))?)?;
        let diff = (y - plain)?.abs()?.max_all()?.to_scalar::<f64>()?;
        assert!(diff < 1e-9, "{diff}");
        // Eval forwards leave u alone; u is a variable of the map (checkpointed) with no gradient.
        let u_before: Vec<f64> = layer.u.as_tensor().to_vec1()?;
        layer.forward(&x, false)?;
        assert_eq!(u_before, layer.u.as_tensor().to_vec1::<f64>()?);
        assert!(vars.data().lock().unwrap().contains_key("weight_u"));
        let grads = layer.forward(&x, true)?.sqr()?.sum_all()?.backward()?;
        assert!(grads.get(layer.u.as_tensor()).is_none());
        assert!(grads.get(&layer.weight).is_some());
        Ok(())
    }

    #[test]
    fn gradient_flows_through_sigma_like_pytorch() -> anyhow::Result<()> {
        // With u and v held constant (as PyTorch does), d/dW of sum(W/σ), σ = uᵀWv, is 1/σ - sum(W)·u vᵀ/σ².
        let dev = Device::Cpu;
        let vars = VarMap::new();
        let vb = seeded_var_builder(&vars, 3, DType::F64, &dev);
        let layer = SpectralNormConv2d::new(2, 3, 1, 1, 0, false, Init::Randn { mean: 0.0, stdev: 1.0 }, vb)?;
        let wn = layer.normalized_weight(false)?;
        let grads = wn.sum_all()?.backward()?;
        let g: Vec<f64> = grads.get(&layer.weight).unwrap().flatten_all()?.to_vec1()?;
        let w: Vec<f64> = layer.weight.flatten_all()?.to_vec1()?;
        let u: Vec<f64> = layer.u.as_tensor().to_vec1()?;
        let wt_u: Vec<f64> = (0..2).map(|c| (0..3).map(|r| w[r * 2 + c] * u[r]).sum()).collect();
        let nv = wt_u.iter().map(|x| x * x).sum::<f64>().sqrt();
        let v: Vec<f64> = wt_u.iter().map(|x| x / nv).collect();
        let sigma: f64 = (0..3).map(|r| u[r] * (0..2).map(|c| w[r * 2 + c] * v[c]).sum::<f64>()).sum();
        let total: f64 = w.iter().sum();
        for r in 0..3 {
            for c in 0..2 {
                let expected = 1.0 / sigma - total * u[r] * v[c] / (sigma * sigma);
                assert!((g[r * 2 + c] - expected).abs() < 1e-9, "({r},{c}) {} vs {expected}", g[r * 2 + c]);
            }
        }
        Ok(())
    }
}
