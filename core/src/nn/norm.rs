//! Normalisation layers: instance norm (Candle has none) and the BatchNorm the DCGAN family uses.

use super::fused::{instance_norm_affine_act, NormActivation};
use super::kernels::Activation;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, Init, VarBuilder};

/// `F.instance_norm`: per-(sample, channel) mean and *biased* variance over H×W. For f16/bf16 inputs the
/// statistics are computed in f32 (sums over a frame overflow f16) and the result is cast back. In training on
/// the CPU: the fused kernel of [`instance_norm_act`].
pub fn instance_norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    instance_norm_act(x, eps, Activation::Identity)
}

/// `act(instance_norm(x))` (`act`: identity, ReLU or LeakyReLU with a non-negative slope). In training on the
/// CPU one fused kernel each way (`kernels::batch_norm::instance_norm_act`); Candle's ops otherwise (inference
/// keeps them: its fused path is [`instance_norm_affine`]).
pub fn instance_norm_act(x: &Tensor, eps: f64, act: Activation) -> Result<Tensor> {
    if is_half(x.dtype()) {
        return instance_norm_act(&x.to_dtype(DType::F32)?, eps, act)?.to_dtype(x.dtype());
    }
    if x.track_op() {
        if let Some(y) = super::kernels::batch_norm::instance_norm_act(x, eps, act)? {
            return Ok(y);
        }
    }
    let y = instance_norm_ops(x, eps)?;
    match act {
        Activation::Identity => Ok(y),
        Activation::Relu => y.relu(),
        Activation::LeakyRelu(slope) => candle_nn::ops::leaky_relu(&y, slope),
    }
}

/// Instance norm from Candle's ops (differentiable, and twice so).
fn instance_norm_ops(x: &Tensor, eps: f64) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let xf = x.reshape((b, c, h * w))?;
    let mean = xf.mean_keepdim(2)?;
    let centred = xf.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(2)?;
    centred.broadcast_div(&(var + eps)?.sqrt()?)?.reshape((b, c, h, w))
}

/// f16 or bf16: the types whose normalisation statistics are taken in f32.
pub fn is_half(dtype: DType) -> bool {
    matches!(dtype, DType::F16 | DType::BF16)
}

/// `nn.InstanceNorm2d(c, affine)`; keys `weight`, `bias` when affine (running stats are never used).
#[derive(Clone, Debug)]
pub struct InstanceNorm2d {
    affine: Option<(Tensor, Tensor)>,
    eps: f64,
}

impl InstanceNorm2d {
    pub fn new(channels: usize, affine: bool, vb: VarBuilder) -> Result<Self> {
        let affine = if affine {
            Some((vb.get_with_hints(channels, "weight", Init::Const(1.0))?, vb.get_with_hints(channels, "bias", Init::Const(0.0))?))
        } else {
            None
        };
        Ok(Self { affine, eps: 1e-5 })
    }
}

impl InstanceNorm2d {
    /// The norm followed by `act` (see [`instance_norm_affine`]).
    pub fn forward_act(&self, x: &Tensor, act: NormActivation) -> Result<Tensor> {
        match &self.affine {
            Some((w, b)) => instance_norm_affine(x, w, b, self.eps, act),
            None if !x.track_op() => {
                let c = x.dim(1)?;
                instance_norm_affine(x, &Tensor::ones(c, x.dtype(), x.device())?, &Tensor::zeros(c, x.dtype(), x.device())?, self.eps, act)
            }
            None => act.apply(instance_norm(x, self.eps)?),
        }
    }
}

/// `act(instance_norm(x) · gamma[c] + beta[c])` for `[N, C, H, W]` (`gamma`, `beta` of C values in any shape):
/// one fused kernel for inference on the CPU (nothing tracked for autograd), Candle's differentiable
/// composition otherwise.
pub fn instance_norm_affine(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64, act: NormActivation) -> Result<Tensor> {
    if !(x.track_op() || gamma.track_op() || beta.track_op()) {
        if let Some(y) = instance_norm_affine_act(x, gamma, beta, eps, act)? {
            return Ok(y);
        }
    }
    let shape = (1, x.dim(1)?, 1, 1);
    act.apply(instance_norm(x, eps)?.broadcast_mul(&gamma.reshape(shape)?)?.broadcast_add(&beta.reshape(shape)?)?)
}

impl Module for InstanceNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = instance_norm(x, self.eps)?;
        match &self.affine {
            None => Ok(y),
            Some((w, b)) => {
                let c = w.dim(0)?;
                y.broadcast_mul(&w.reshape((1, c, 1, 1))?)?.broadcast_add(&b.reshape((1, c, 1, 1))?)
            }
        }
    }
}

/// `nn.BatchNorm2d(c)` (eps 1e-5, momentum 0.1) with the DCGAN init (weight ~ N(1, 0.02), bias 0).
/// Candle's BatchNorm matches PyTorch's train/eval semantics and running-stat update exactly; the running stats
/// are fetched through `vb`, so with a `VarMap` they are saved in checkpoints next to the weights.
pub fn batch_norm2d(channels: usize, vb: VarBuilder) -> Result<BatchNorm> {
    let weight = vb.get_with_hints(channels, "weight", Init::Randn { mean: 1.0, stdev: 0.02 })?;
    let bias = vb.get_with_hints(channels, "bias", Init::Const(0.0))?;
    let running_mean = vb.get_with_hints(channels, "running_mean", Init::Const(0.0))?;
    let running_var = vb.get_with_hints(channels, "running_var", Init::Const(1.0))?;
    let cfg = BatchNormConfig::default();
    BatchNorm::new_with_momentum(channels, running_mean, running_var, weight, bias, cfg.eps, cfg.momentum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::check_gradient;
    use candle_core::{DType, Device, ModuleT};
    use candle_nn::VarMap;

    #[test]
    fn instance_norm_normalises_each_channel() -> Result<()> {
        let x = crate::nn::gradcheck::seeded(&[2, 3, 4, 5], 3)?;
        let y = instance_norm(&x, 1e-5)?.reshape((6, 20))?;
        let mean: Vec<f64> = y.mean(1)?.to_vec1()?;
        let var: Vec<f64> = y.sqr()?.mean(1)?.to_vec1()?;
        assert!(mean.iter().all(|m| m.abs() < 1e-12));
        assert!(var.iter().all(|v| (v - 1.0).abs() < 1e-3));
        Ok(())
    }

    #[test]
    fn instance_norm_gradient() -> Result<()> {
        check_gradient(&[2, 2, 3, 3], |x| instance_norm(x, 1e-5))?;
        check_gradient(&[2, 3, 3, 2], |x| instance_norm_act(x, 1e-5, Activation::LeakyRelu(0.2)))
    }

    /// Training (a tracked input: the fused kernel) against Candle's ops, values and gradients, with each
    /// activation, in f64 and f32.
    #[test]
    fn training_kernel_matches_candle_ops() -> Result<()> {
        use crate::nn::gradcheck::{max_diff, seeded};
        for (i, act) in [Activation::Identity, Activation::Relu, Activation::LeakyRelu(0.2)].into_iter().enumerate() {
            let x = candle_core::Var::from_tensor(&(seeded(&[2, 3, 5, 7], 70 + i as u64)? * 3.0)?)?;
            let ours = instance_norm_act(&x, 1e-5, act)?;
            let y = instance_norm_ops(&x, 1e-5)?;
            let theirs = match act {
                Activation::Identity => y,
                Activation::Relu => y.relu()?,
                Activation::LeakyRelu(s) => candle_nn::ops::leaky_relu(&y, s)?,
            };
            assert!(max_diff(&ours, &theirs) < 1e-12, "forward {act:?}: {}", max_diff(&ours, &theirs));
            let r = seeded(&[2, 3, 5, 7], 80 + i as u64)?;
            let a = (ours * &r)?.sum_all()?.backward()?;
            let b = (theirs * &r)?.sum_all()?.backward()?;
            let d = max_diff(a.get(&x).unwrap(), b.get(&x).unwrap());
            assert!(d < 1e-10, "backward {act:?}: {d}");
            let x32 = candle_core::Var::from_tensor(&x.to_dtype(DType::F32)?)?;
            let d = max_diff(&instance_norm_act(&x32, 1e-5, act)?, &instance_norm_act(&x.detach(), 1e-5, act)?);
            assert!(d < 1e-5, "f32 {act:?}: {d}");
        }
        Ok(())
    }

    #[test]
    fn affine_instance_norm_gradient() -> Result<()> {
        let mut vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu);
        let norm = InstanceNorm2d::new(2, true, vb)?;
        vm.set_one("weight", Tensor::new(&[0.5f64, 2.0], &Device::Cpu)?)?;
        check_gradient(&[1, 2, 3, 4], |x| norm.forward(x))
    }

    #[test]
    fn batch_norm_train_mode_gradient() -> Result<()> {
        let vm = VarMap::new();
        let bn = batch_norm2d(3, VarBuilder::from_varmap(&vm, DType::F64, &Device::Cpu))?;
        check_gradient(&[4, 3, 2, 2], |x| bn.forward_t(x, true))
    }
}
