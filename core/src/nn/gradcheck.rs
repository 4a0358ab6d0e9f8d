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
