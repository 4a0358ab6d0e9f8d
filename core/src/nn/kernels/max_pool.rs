//! Max pooling with a k×k window and stride k (VGG's 2×2 pools), forward and backward in one parallel pass
//! each. Candle's version (a reshape and two `max` reductions) reduces on one thread, and its backward builds a
//! broadcast comparison mask, a cast and a product: ~28 % of the main thread's time in a Gatys step, serial
//! while the other core waited.
//!
//! The backward sends each window's gradient to its first largest input in row-major order (PyTorch's
//! convention; Candle's mask gives it to every tied input, which after a ReLU only differs on windows of equal
//! positive values). With second-order gradients on (WGAN-GP) the layer keeps Candle's differentiable ops.

use super::{contiguous, on_slices, second_order_gradients};
use candle_core::{backend::BackendStorage, CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

/// The geometry of one call: `planes` = B·C images of `h × w`, window and stride `k`.
#[derive(Clone, Copy, Debug)]
struct Pool {
    planes: usize,
    h: usize,
    w: usize,
    k: usize,
}

impl Pool {
    fn of(shape: &Shape, k: usize) -> Result<Self> {
        let (b, c, h, w) = shape.dims4()?;
        if k == 0 || h < k || w < k {
            candle_core::bail!("max_pool2d: window {k} does not fit a {h}×{w} input");
        }
        Ok(Self { planes: b * c, h, w, k })
    }

    fn out_hw(&self) -> (usize, usize) {
        (self.h / self.k, self.w / self.k)
    }

    /// The offset (in the plane) of the first largest input of output (oy, ox)'s window, and its value.
    #[inline]
    fn argmax<T: WithDType>(&self, x: &[T], oy: usize, ox: usize) -> (usize, T) {
        let mut best = (oy * self.k * self.w + ox * self.k, x[oy * self.k * self.w + ox * self.k]);
        for dy in 0..self.k {
            let start = (oy * self.k + dy) * self.w + ox * self.k;
            for (i, &v) in x[start..start + self.k].iter().enumerate() {
                if v > best.1 {
                    best = (start + i, v);
                }
            }
        }
        best
    }

    fn forward<T: WithDType>(&self, x: &[T]) -> Vec<T> {
        let (ho, wo) = self.out_hw();
        let mut y = super::zeroed(self.planes * ho * wo);
        y.par_chunks_mut(ho * wo).zip(x.par_chunks(self.h * self.w)).for_each(|(y, x)| {
            for oy in 0..ho {
                for ox in 0..wo {
                    y[oy * wo + ox] = self.argmax(x, oy, ox).1;
                }
            }
        });
        y
    }

    fn backward<T: WithDType>(&self, g: &[T], x: &[T]) -> Vec<T> {
        let (ho, wo) = self.out_hw();
        let mut dx = super::zeroed(x.len());
        dx.par_chunks_mut(self.h * self.w).zip(g.par_chunks(ho * wo).zip(x.par_chunks(self.h * self.w))).for_each(|(dx, (g, x))| {
            for oy in 0..ho {
                for ox in 0..wo {
                    dx[self.argmax(x, oy, ox).0] = g[oy * wo + ox];
                }
            }
        });
        dx
    }
}

struct MaxPool(usize);

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = Pool::of(l.shape(), self.0)?;
        let y = match s {
            CpuStorage::F32(_) => CpuStorage::F32(p.forward(contiguous::<f32>(self.name(), s, l)?)),
            CpuStorage::F64(_) => CpuStorage::F64(p.forward(contiguous::<f64>(self.name(), s, l)?)),
            other => candle_core::bail!("max pool kernel: unsupported dtype {:?}", other.dtype()),
        };
        let (b, c, _, _) = l.shape().dims4()?;
        let (ho, wo) = p.out_hw();
        Ok((y, Shape::from((b, c, ho, wo))))
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op2_no_bwd(x, &MaxPoolGrad(self.0))?))
    }
}

/// The gradient of [`MaxPool`]: `(grad [B, C, Ho, Wo], x [B, C, H, W])` → `[B, C, H, W]`.
struct MaxPoolGrad(usize);

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "max-pool2d-backward"
    }
    fn cpu_fwd(&self, sg: &CpuStorage, lg: &Layout, sx: &CpuStorage, lx: &Layout) -> Result<(CpuStorage, Shape)> {
        let p = Pool::of(lx.shape(), self.0)?;
        let (b, c, _, _) = lx.shape().dims4()?;
        let (ho, wo) = p.out_hw();
        if lg.shape().dims() != [b, c, ho, wo] {
            candle_core::bail!("max pool backward: gradient {:?} for input {:?}", lg.shape(), lx.shape());
        }
        let dx = on_slices(self.name(), (sg, lg), (sx, lx), |g, x| p.backward(g, x), |g, x| p.backward(g, x))?;
        Ok((dx, lx.shape().clone()))
    }
}

/// `F.max_pool2d(x, k)` on the kernel for contiguous-able f32/f64 CPU tensors without second-order gradients;
/// None otherwise (the caller uses Candle's ops).
pub fn max_pool2d(x: &Tensor, k: usize) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) || second_order_gradients() {
        return Ok(None);
    }
    x.contiguous()?.apply_op1(MaxPool(k)).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{check_gradient, max_diff, seeded};
    use candle_core::{Device, Var};

    fn candle_pool(x: &Tensor, k: usize) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (ho, wo) = (h / k, w / k);
        x.narrow(2, 0, ho * k)?.narrow(3, 0, wo * k)?.reshape((b, c, ho, k, wo, k))?.max(5)?.max(3)
    }

    /// Values and gradients against Candle's reshape + max (distinct values, so no ties), odd sizes whose last
    /// row/column is dropped, k = 2 and 3, f64 and f32; finite differences.
    #[test]
    fn matches_candle_forward_and_backward() -> Result<()> {
        for (i, &(shape, k)) in [([2usize, 3, 6, 8], 2), ([1, 2, 7, 5], 2), ([1, 1, 9, 10], 3)].iter().enumerate() {
            let x = Var::from_tensor(&seeded(&shape, 30 + i as u64)?)?;
            let ours = max_pool2d(&x, k)?.unwrap();
            let theirs = candle_pool(&x, k)?;
            assert_eq!(max_diff(&ours, &theirs), 0.0, "forward case {i}");
            let r = seeded(ours.dims(), 40 + i as u64)?;
            let a = (ours * &r)?.sum_all()?.backward()?;
            let b = (theirs * &r)?.sum_all()?.backward()?;
            assert_eq!(max_diff(a.get(&x).unwrap(), b.get(&x).unwrap()), 0.0, "backward case {i}");
            let x32 = x.to_dtype(DType::F32)?;
            assert_eq!(max_diff(&max_pool2d(&x32, k)?.unwrap(), &candle_pool(&x32, k)?), 0.0, "f32 case {i}");
        }
        check_gradient(&[2, 2, 4, 6], |x| Ok(max_pool2d(x, 2)?.unwrap()))
    }

    /// A tie sends the gradient to the first largest input only (PyTorch's convention).
    #[test]
    fn ties_go_to_the_first_maximum() -> Result<()> {
        let x = Var::from_tensor(&Tensor::new(&[[[[1f32, 3.], [3., 0.]]]], &Device::Cpu)?)?;
        let grads = max_pool2d(&x, 2)?.unwrap().sum_all()?.backward()?;
        let g: Vec<f32> = grads.get(&x).unwrap().flatten_all()?.to_vec1()?;
        assert_eq!(g, vec![0., 1., 0., 0.]);
        Ok(())
    }

    #[test]
    fn window_larger_than_the_input_is_an_error() {
        let x = Tensor::zeros((1, 1, 1, 3), DType::F32, &Device::Cpu).unwrap();
        let err = max_pool2d(&x, 2).unwrap_err().to_string();
        assert!(err.contains("window 2") && err.contains("1×3"), "{err}");
    }

    /// `cargo test --release -p ganime kernels::max_pool::tests::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let x = Var::from_tensor(&Tensor::randn(0f32, 1., (1, 64, 256, 256), &Device::Cpu)?)?;
        for (name, kernel) in [("candle reshape+max", false), ("kernel", true)] {
            crate::nn::kernels::bench_ms(&format!("{name}, fwd+bwd [1,64,256,256]"), &mut || {
                let y = if kernel { max_pool2d(&x, 2)?.unwrap() } else { candle_pool(&x, 2)? };
                y.sum_all()?.backward().map(|_| ())
            })?;
        }
        Ok(())
    }
}
