//! `nn.BatchNorm2d` (also after a Linear layer: any `[N, C, ...]`) with an optional ReLU / LeakyReLU fused in.
//! On CPU f32/f64 it runs the fused kernel of `kernels::batch_norm`; elsewhere (CUDA, f16, or when
//! second-order gradients are on) Candle's BatchNorm followed by the activation. Both update the running
//! statistics the same way (PyTorch's momentum 0.1, unbiased running variance).

use super::kernels::batch_norm::{channel_stats, BatchNormAct};
use super::kernels::{activation::leaky_relu, second_order_gradients, Activation};
use super::norm::batch_norm2d;
use candle_core::{DType, ModuleT, Result, Tensor, Var};
use candle_nn::{BatchNorm, VarBuilder};

#[derive(Clone, Debug)]
pub struct BatchNorm2d {
    /// Candle's layer over the same variables: the fallback, and the owner of the running statistics.
    candle: BatchNorm,
    running_mean: Var,
    running_var: Var,
}

impl BatchNorm2d {
    /// Keys `weight`, `bias`, `running_mean`, `running_var`; DCGAN init (weight ~ N(1, 0.02), bias 0).
    pub fn new(channels: usize, vb: VarBuilder) -> Result<Self> {
        let candle = batch_norm2d(channels, vb)?;
        // `Var::from_tensor` of a variable shares its storage, so updates land in the VarMap.
        let running_mean = Var::from_tensor(candle.running_mean())?;
        let running_var = Var::from_tensor(candle.running_var())?;
        Ok(Self { candle, running_mean, running_var })
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_act(x, train, Activation::Identity)
    }

    /// BatchNorm then `act`; `train` uses (and folds into the running statistics) the batch statistics.
    pub fn forward_act(&self, x: &Tensor, train: bool, act: Activation) -> Result<Tensor> {
        let Some((weight, bias)) = self.candle.weight_and_bias() else { candle_core::bail!("batch norm without affine parameters") };
        let kernel = x.device().is_cpu()
            && matches!(x.dtype(), DType::F32 | DType::F64)
            && weight.dtype() == x.dtype()
            && act.slope() >= 0.0
            && !second_order_gradients();
        if !kernel {
            let y = self.candle.forward_t(x, train)?;
            return match act {
                Activation::Identity => Ok(y),
                Activation::Relu => y.relu(),
                Activation::LeakyRelu(s) => leaky_relu(&y, s),
            };
        }
        let eps = self.candle.eps();
        let x = x.contiguous()?;
        let (mean, var) = if train {
            let (mean, var) = channel_stats(&x)?;
            self.update_running_stats(&mean, &var, x.elem_count() / x.dim(1)?)?;
            (mean, var)
        } else {
            let f64s = |t: &Tensor| t.to_dtype(DType::F64)?.to_vec1::<f64>();
            (f64s(self.running_mean.as_tensor())?, f64s(self.running_var.as_tensor())?)
        };
        let inv_std = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
        x.apply_op3(weight, bias, BatchNormAct { mean, inv_std, batch_stats: train, act })
    }

    /// `running = (1 − m)·running + m·batch`, the variance unbiased by count/(count − 1), as PyTorch.
    fn update_running_stats(&self, mean: &[f64], var: &[f64], count: usize) -> Result<()> {
        let m = self.candle.momentum();
        let unbias = count as f64 / (count as f64 - 1.0).max(1.0);
        let blend = |running: &Var, batch: Vec<f64>| -> Result<()> {
            let r = running.as_tensor();
            let batch = Tensor::from_vec(batch, r.shape(), r.device())?.to_dtype(r.dtype())?;
            running.set(&((r * (1.0 - m))? + (batch * m)?)?)
        };
        blend(&self.running_mean, mean.to_vec())?;
        blend(&self.running_var, var.iter().map(|v| v * unbias).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::seeded;
    use candle_core::Device;
    use candle_nn::VarMap;

    /// Two identically initialised layers: ours and Candle's, over separate VarMaps.
    fn pair(c: usize, dtype: DType) -> Result<(BatchNorm2d, BatchNorm, VarMap, VarMap)> {
        let (vm1, vm2) = (VarMap::new(), VarMap::new());
        let ours = BatchNorm2d::new(c, VarBuilder::from_varmap(&vm1, dtype, &Device::Cpu))?;
        let theirs = batch_norm2d(c, VarBuilder::from_varmap(&vm2, dtype, &Device::Cpu))?;
        for (name, var) in vm1.data().lock().unwrap().iter() {
            vm2.data().lock().unwrap()[name].set(var.as_tensor())?;
        }
        Ok((ours, theirs, vm1, vm2))
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
        (a - b)?.abs()?.flatten_all()?.max(0)?.to_dtype(DType::F64)?.to_scalar::<f64>()
    }

    #[test]
    fn train_and_eval_match_candle_including_running_stats() -> Result<()> {
        for dtype in [DType::F64, DType::F32] {
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            let (ours, theirs, vm1, vm2) = pair(5, dtype)?;
            for step in 0..3 {
                let x = (seeded(&[4, 5, 3, 7], step)?.to_dtype(dtype)? * 2.0)?;
                let a = ours.forward_act(&x, true, Activation::LeakyRelu(0.2))?;
                let b = candle_nn::ops::leaky_relu(&theirs.forward_t(&x, true)?, 0.2)?;
                assert!(max_diff(&a, &b)? < tol);
            }
            for key in ["running_mean", "running_var"] {
                let d = max_diff(vm1.data().lock().unwrap()[key].as_tensor(), vm2.data().lock().unwrap()[key].as_tensor())?;
                assert!(d < tol, "{key}: {d}");
            }
            let x = seeded(&[2, 5, 4, 4], 9)?.to_dtype(dtype)?;
            assert!(max_diff(&ours.forward_act(&x, false, Activation::Relu)?, &theirs.forward_t(&x, false)?.relu()?)? < tol);
            // Rank 2 (BatchNorm1d after a Linear layer).
            let x = seeded(&[6, 5], 10)?.to_dtype(dtype)?;
            assert!(max_diff(&ours.forward_t(&x, true)?, &theirs.forward_t(&x, true)?)? < tol);
        }
        Ok(())
    }
}
