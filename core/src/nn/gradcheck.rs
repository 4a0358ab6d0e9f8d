//! Finite-difference gradient checks in f64 for the `nn` building blocks.

use candle_core::{DType, Device, Result, Tensor, Var};

/// Checks d(sum(f(x) * r))/dx from autograd against central differences, for a seeded random `x` and a fixed
/// random projection `r` (so every output element matters).
pub fn check_gradient(shape: &[usize], f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<()> {
    check_gradient_at(&seeded(shape, 7)?, f)
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
