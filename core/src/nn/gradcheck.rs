//! Finite-difference gradient checks in f64 for the `nn` building blocks.

use candle_core::{DType, Device, Result, Tensor, Var};

/// Checks d(sum(f(x) * r))/dx from autograd against central differences, for a seeded random `x` and a fixed
/// random projection `r` (so every output element matters).
pub fn check_gradient(shape: &[usize], f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    check_gradient_at(&seeded(shape, 7)?, f)
}

/// The largest |a − b| over two tensors of one shape (any float dtypes), compared in f64: the parity tests' measure.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    let f64s = |t: &Tensor| t.to_dtype(DType::F64).expect("float tensor");
    (f64s(a) - f64s(b)).and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f64>()).expect("tensors of one shape")
}

pub fn seeded(shape: &[usize], seed: u64) -> Result<Tensor> {
    use rand::{Rng, SeedableRng};
    let n: usize = shape.iter().product();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

pub fn check_gradient_at(x0: &Tensor, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    let x0 = x0.to_dtype(DType::F64)?;
    let y0 = f(&x0)?;
    let r = seeded(y0.dims(), 11)?;
    let objective = |x: &Tensor| -> Result<f64> { (f(x)? * &r)?.sum_all()?.to_scalar::<f64>() };
    let var = Var::from_tensor(&x0)?;
    let loss = (f(var.as_tensor())? * &r)?.sum_all()?;
    let grads = loss.backward()?;
    let analytic: Vec<f64> = grads.get(&var).expect("no gradient reached the input").flatten_all()?.to_vec1()?;
    let base: Vec<f64> = x0.flatten_all()?.to_vec1()?;
    let eps = 1e-6;
    for i in 0..base.len() {
        let mut plus = base.clone();
        plus[i] += eps;
        let mut minus = base.clone();
        minus[i] -= eps;
        let fp = objective(&Tensor::from_vec(plus, x0.dims(), &Device::Cpu)?)?;
        let fm = objective(&Tensor::from_vec(minus, x0.dims(), &Device::Cpu)?)?;
        let numeric = (fp - fm) / (2.0 * eps);
        let err = (numeric - analytic[i]).abs();
        if err > 1e-6 * (1.0 + numeric.abs()) {
            candle_core::bail!("gradient mismatch at {i}: numeric {numeric}, autograd {}", analytic[i]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The gradient accumulation of the patched candle-core (vendor/README.md): first contributions are stored
    //! as is, later ones added. These graphs reuse tensors, subtract, broadcast, transpose and narrow, so every
    //! way a gradient can arrive (first, repeated, negated, strided) is checked against finite differences.
    use super::*;

    #[test]
    fn reused_and_strided_gradients_match_finite_differences() -> Result<()> {
        check_gradient(&[3, 4], |x| {
            let reused = ((x * x)? + x)?; // x reaches the same node twice, then once more below
            let negated = (x.transpose(0, 1)?.sqr()?.t()? - &reused)?; // a transposed and a subtracted path
            let row_sums = x.sum_keepdim(1)?.broadcast_as((3, 4))?; // a broadcast gradient
            let halves = Tensor::cat(&[&x.narrow(1, 0, 2)?.exp()?, &x.narrow(1, 2, 2)?.neg()?], 1)?;
            ((negated * row_sums)? + halves)? - x.tanh()?
        })
    }

    /// A per-channel parameter broadcast over batch and space: its gradient sums over [0, 2, 3], which the
    /// patched backward splits into the trailing [2, 3] and then [0].
    #[test]
    fn per_channel_broadcast_gradients_match_finite_differences() -> Result<()> {
        let x = seeded(&[2, 3, 4, 5], 9)?;
        check_gradient(&[1, 3, 1, 1], |scale| (&x * scale.broadcast_as((2, 3, 4, 5))?)?.sqr())?;
        check_gradient(&[3, 1, 1], |bias| x.broadcast_add(bias)?.tanh())
    }

    /// `backward_for` (the patched candle-core's gradients of chosen variables only, a GAN's generator step):
    /// the wanted gradient is bit for bit the full backward's, and the other variables get none.
    #[test]
    fn backward_for_gives_only_the_wanted_variables_gradients() -> Result<()> {
        use crate::nn::kernels::{conv2d::conv2d, patches::im2col};
        let g = Var::from_tensor(&seeded(&[4, 3, 3, 3], 1)?)?; // a "generator" weight
        let d1 = Var::from_tensor(&seeded(&[5, 4, 4, 4], 2)?)?; // "critic" weights: a tiled conv kernel ...
        let d2 = Var::from_tensor(&seeded(&[6, 80], 3)?)?; // ... and a matmul, as in the whole-batch conv path
        let x = seeded(&[2, 3, 16, 16], 4)?;
        let loss = || -> Result<Tensor> {
            let h = conv2d(&x, g.as_tensor(), 1, 1)?.tanh()?; // [2, 4, 16, 16]
            let h = conv2d(&h, d1.as_tensor(), 2, 1)?; // [2, 5, 8, 8]
            let rows = im2col(&h, 4, 4, 0)?.reshape((8, 80))?;
            rows.matmul(&d2.as_tensor().t()?)?.sqr()?.sum_all()
        };
        let all = loss()?.backward()?;
        let only_g = loss()?.backward_for([g.as_tensor()])?;
        assert_eq!(max_diff(all.get(&g).unwrap(), only_g.get(&g).unwrap()), 0.0);
        assert!(all.get(&d1).is_some() && all.get(&d2).is_some());
        assert!(only_g.get(&d1).is_none() && only_g.get(&d2).is_none(), "a critic weight got a gradient");
        Ok(())
    }

    /// A custom op's argument that leads to no wanted variable reaches its `bwd` detached, so the op can skip
    /// that gradient (the conv kernels skip the critic's weight gradients this way).
    #[test]
    fn backward_for_hands_custom_ops_unwanted_arguments_detached() -> Result<()> {
        use candle_core::{CpuStorage, CustomOp2, Layout, Shape};
        use std::sync::{Arc, Mutex};
        /// Passes its first argument through; its backward records whether the second one tracks gradients.
        struct Probe(Arc<Mutex<Vec<bool>>>);
        impl CustomOp2 for Probe {
            fn name(&self) -> &'static str {
                "probe"
            }
            fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
                let CpuStorage::F64(v) = s1 else { candle_core::bail!("probe: f64 only") };
                Ok((CpuStorage::F64(v[l1.start_offset()..][..l1.shape().elem_count()].to_vec()), l1.shape().clone()))
            }
            fn bwd(&self, _: &Tensor, w: &Tensor, _: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
                self.0.lock().unwrap().push(w.track_op());
                Ok((Some(grad.clone()), w.track_op().then(|| w.zeros_like()).transpose()?))
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let g = Var::from_tensor(&seeded(&[3, 4], 1)?)?;
        let d = Var::from_tensor(&seeded(&[2], 2)?)?;
        let loss = || g.as_tensor().tanh()?.apply_op2(d.as_tensor(), Probe(seen.clone()))?.sum_all();
        let only_g = loss()?.backward_for([g.as_tensor()])?;
        let all = loss()?.backward()?;
        assert_eq!(*seen.lock().unwrap(), [false, true]);
        assert!(only_g.get(&d).is_none() && all.get(&d).is_some());
        Ok(())
    }

    #[test]
    fn stored_gradients_are_dense() -> Result<()> {
        let x = Var::from_tensor(&seeded(&[3, 4], 3)?)?;
        let b = Var::from_tensor(&seeded(&[4], 5)?)?;
        // x's only gradient comes through a transpose and b's through a broadcast: both arrive strided.
        let y = (x.as_tensor().t()?.contiguous()?.t()?.broadcast_add(b.as_tensor())?.sum_all()? * 2.0)?;
        let grads = y.backward()?;
        for (name, var) in [("x", &x), ("b", &b)] {
            let g = grads.get(var).expect("gradient");
            assert!(g.is_contiguous(), "{name}'s gradient is strided");
            let expected = if name == "x" { 2.0 } else { 6.0 };
            assert!(g.flatten_all()?.to_vec1::<f64>()?.iter().all(|v| *v == expected), "{name}: {g}");
        }
        Ok(())
    }
}
