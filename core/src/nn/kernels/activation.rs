//! LeakyReLU (slope >= 0) and tanh in one pass forward and one pass backward. Candle's `leaky_relu` is
//! `max(x, 0) + min(x, 0)·slope`: four tensors forward and their autograd backward, on the D side of every
//! DCGAN layer. The backward multiplies by a mask from the input: one fused pass normally; with second-order
//! gradients on (WGAN-GP), `grad × mask` as Candle ops so that it stays differentiable in `grad` (the mask is
//! piecewise constant, so its own derivative is zero).

use super::{contiguous, second_order_gradients, select_positive_by};
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor, WithDType};

const CHUNK: usize = 1 << 14;

fn map<T: WithDType>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    // SAFETY: each chunk of the output is zipped with the input from the same index, which is as long.
    unsafe { super::filled(x.len(), CHUNK, |start, d| d.iter_mut().zip(&x[start..]).for_each(|(d, &v)| _ = d.write(f(v)))) }
}

/// `f(a[i], b[i])` for every i, in parallel chunks (the backwards: a gradient and the input or output).
fn zip_map<T: WithDType>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    assert_eq!(a.len(), b.len(), "zip_map: operands of different lengths");
    // SAFETY: each chunk of the output is zipped with both operands from the same index, which are as long.
    unsafe {
        super::filled(a.len(), CHUNK, |start, d| {
            for ((d, &a), &b) in d.iter_mut().zip(&a[start..]).zip(&b[start..]) {
                d.write(f(a, b));
            }
        })
    }
}

/// `y = x` for x > 0, else `slope·x`.
pub struct LeakyRelu(pub f64);

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky-relu"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = match s {
            CpuStorage::F32(_) => {
                let k = self.0 as f32;
                CpuStorage::F32(map(contiguous::<f32>(self.name(), s, l)?, move |v| select_positive_by(v, v, v * k)))
            }
            CpuStorage::F64(_) => {
                let k = self.0;
                CpuStorage::F64(map(contiguous::<f64>(self.name(), s, l)?, move |v| select_positive_by(v, v, v * k)))
            }
            other => candle_core::bail!("leaky relu kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((y, l.shape().clone()))
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let x = x.contiguous()?;
        if second_order_gradients() {
            let mask = x.apply_op1_no_bwd(&SlopeMask(self.0))?.detach();
            return Ok(Some(grad.mul(&mask)?));
        }
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(&x, &MaskedGrad(self.0))?))
    }
}

/// 1 where x > 0, else the slope.
struct SlopeMask(f64);

impl CustomOp1 for SlopeMask {
    fn name(&self) -> &'static str {
        "leaky-relu-mask"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = match s {
            CpuStorage::F32(_) => {
                let k = self.0 as f32;
                CpuStorage::F32(map(contiguous::<f32>(self.name(), s, l)?, move |v| select_positive_by(v, 1., k)))
            }
            CpuStorage::F64(_) => {
                let k = self.0;
                CpuStorage::F64(map(contiguous::<f64>(self.name(), s, l)?, move |v| select_positive_by(v, 1., k)))
            }
            other => candle_core::bail!("leaky relu kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((y, l.shape().clone()))
    }
}

/// `grad` where x > 0, else `slope·grad`.
struct MaskedGrad(f64);

impl MaskedGrad {
    fn run<T: WithDType>(&self, g: &[T], x: &[T]) -> Vec<T> {
        let k = T::from_f64(self.0);
        zip_map(g, x, move |g, x| select_positive_by(x, g, g * k))
    }
}

impl CustomOp2 for MaskedGrad {
    fn name(&self) -> &'static str {
        "leaky-relu-backward"
    }
    fn cpu_fwd(&self, sg: &CpuStorage, lg: &Layout, sx: &CpuStorage, lx: &Layout) -> Result<(CpuStorage, Shape)> {
        if lg.shape() != lx.shape() {
            candle_core::bail!("leaky relu backward: gradient {:?} vs input {:?}", lg.shape(), lx.shape());
        }
        let out = super::on_slices(self.name(), (sg, lg), (sx, lx), |g, x| self.run(g, x), |g, x| self.run(g, x))?;
        Ok((out, lg.shape().clone()))
    }
}

/// LeakyReLU through the kernel on CPU f32/f64 tensors with slope >= 0, else Candle's op.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    let kernel = x.device().is_cpu() && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64) && slope >= 0.0;
    if kernel {
        x.contiguous()?.apply_op1(LeakyRelu(slope))
    } else {
        candle_nn::ops::leaky_relu(x, slope)
    }
}

/// ReLU through the same kernel (slope 0): one pass each way, where Candle's backward builds a zero tensor, a
/// comparison, a cast and a product.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    leaky_relu(x, 0.0)
}

/// `tanh`, the last layer of every generator, in one parallel pass each way: Candle maps it on one thread, and
/// its backward is three element-wise tensors (`y²`, `− 1`, `× grad`). The backward is `grad·(1 − y²)` from the
/// output.
struct Tanh;

impl CustomOp1 for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = match s {
            CpuStorage::F32(_) => CpuStorage::F32(map(contiguous::<f32>(self.name(), s, l)?, f32::tanh)),
            CpuStorage::F64(_) => CpuStorage::F64(map(contiguous::<f64>(self.name(), s, l)?, f64::tanh)),
            other => candle_core::bail!("tanh kernel: unsupported dtype {:?}", other.dtype()),
        };
        Ok((y, l.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(&y.contiguous()?, &TanhGrad)?))
    }
}

/// `grad·(1 − y²)`.
struct TanhGrad;

impl TanhGrad {
    fn run<T: WithDType>(g: &[T], y: &[T]) -> Vec<T> {
        zip_map(g, y, |g, y| g * (T::one() - y * y))
    }
}

impl CustomOp2 for TanhGrad {
    fn name(&self) -> &'static str {
        "tanh-backward"
    }
    fn cpu_fwd(&self, sg: &CpuStorage, lg: &Layout, sy: &CpuStorage, ly: &Layout) -> Result<(CpuStorage, Shape)> {
        if lg.shape() != ly.shape() {
            candle_core::bail!("tanh backward: gradient {:?} vs output {:?}", lg.shape(), ly.shape());
        }
        let out = super::on_slices(self.name(), (sg, lg), (sy, ly), Self::run, Self::run)?;
        Ok((out, lg.shape().clone()))
    }
}

/// `x.tanh()` through the kernel on CPU f32/f64 tensors without second-order gradients, else Candle's op.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64) && !second_order_gradients() {
        x.contiguous()?.apply_op1(Tanh)
    } else {
        x.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, seeded};
    use candle_core::{DType, Device, Var};

    #[test]
    fn matches_candle_forward_and_backward() -> Result<()> {
        for (shape, slope) in [(&[2usize, 3, 5, 7][..], 0.2), (&[17][..], 0.0), (&[3, 1, 4, 4][..], 0.01)] {
            let x = Var::from_tensor(&seeded(shape, 3)?)?;
            let ours = leaky_relu(&x, slope)?;
            let theirs = candle_nn::ops::leaky_relu(&x, slope)?;
            assert!((&ours - &theirs)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()? == 0.0);
            let r = seeded(shape, 4)?;
            let a = (ours * &r)?.sum_all()?.backward()?;
            let b = (theirs * &r)?.sum_all()?.backward()?;
            let d = (a.get(&x).unwrap() - b.get(&x).unwrap())?.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()?;
            assert!(d < 1e-15, "{d}");
        }
        check_gradient(&[2, 3, 4], |x| leaky_relu(x, 0.2))
    }

    /// Bit for bit Candle's tanh and its backward (f32 and f64), and finite differences.
    #[test]
    fn tanh_matches_candle() -> Result<()> {
        for dtype in [DType::F64, DType::F32] {
            let x = Var::from_tensor(&(seeded(&[2, 3, 5, 7], 5)? * 2.0)?.to_dtype(dtype)?)?;
            let ours = tanh(&x)?;
            let theirs = x.tanh()?;
            assert_eq!(crate::nn::gradcheck::max_diff(&ours, &theirs), 0.0, "{dtype:?}");
            let r = seeded(&[2, 3, 5, 7], 6)?.to_dtype(dtype)?;
            let a = (ours * &r)?.sum_all()?.backward()?;
            let b = (theirs * &r)?.sum_all()?.backward()?;
            assert_eq!(crate::nn::gradcheck::max_diff(a.get(&x).unwrap(), b.get(&x).unwrap()), 0.0, "{dtype:?}");
        }
        check_gradient(&[2, 3, 4], tanh)
    }

    #[test]
    fn f32_forward() -> Result<()> {
        let x = seeded(&[1000], 9)?.to_dtype(DType::F32)?;
        let d = (leaky_relu(&x, 0.2)? - candle_nn::ops::leaky_relu(&x, 0.2)?)?.abs()?.max(0)?.to_scalar::<f32>()?;
        assert_eq!(d, 0.0);
        let d = (relu(&x)? - x.relu()?)?.abs()?.max(0)?.to_scalar::<f32>()?;
        assert_eq!(d, 0.0);
        Ok(())
    }

    /// `cargo test --release -p ganime kernels::activation::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (64, 128, 16, 16), &Device::Cpu)?)?;
        for (name, kernel) in [("candle leaky_relu", false), ("kernel leaky_relu", true)] {
            crate::nn::kernels::bench_ms(&format!("{name}, fwd+bwd [64,128,16,16]"), &mut || {
                let y = if kernel { leaky_relu(&x, 0.2)? } else { candle_nn::ops::leaky_relu(&x, 0.2)? };
                y.sum_all()?.backward().map(|_| ())
            })?;
        }
        Ok(())
    }
}
