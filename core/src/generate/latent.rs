//! Seeded latents and the latent-space figures of the seed papers: interpolation (linear / spherical) and
//! walks along one dimension.

use crate::nn::init::{randn, Prior};
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use rand::SeedableRng;

/// `count` standard-normal latents from `seed`: the same seed always gives the same vectors (and a larger count
/// extends the list, so image i of a seed is stable).
pub fn latents(seed: u64, count: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Ok(randn(&mut rng, &[count, dim], device)?)
}

/// As [`latents`], drawn from `prior` (a generator's own: [`super::Generator::latents`]).
pub fn prior_latents(prior: Prior, seed: u64, count: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    Ok(prior.sample(&mut rng, &[count, dim], device)?)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Linear,
    /// Spherical (slerp): keeps the latent norm, as recommended for Gaussian latents (White 2016).
    Slerp,
}

crate::named_values!(Path { Linear => "linear", Slerp => "slerp" });

/// `steps` latents from `a` to `b` inclusive (`a`, `b`: `[dim]`).
pub fn interpolate(a: &Tensor, b: &Tensor, steps: usize, path: Path) -> Result<Tensor> {
    if steps < 2 {
        bail!("--steps must be at least 2");
    }
    let (av, bv): (Vec<f32>, Vec<f32>) = (a.to_vec1()?, b.to_vec1()?);
    let mut rows = Vec::with_capacity(steps * av.len());
    for i in 0..steps {
        rows.extend(mix(&av, &bv, i as f64 / (steps - 1) as f64, path));
    }
    Ok(Tensor::from_vec(rows, (steps, av.len()), a.device())?)
}

/// The point at `t` in [0, 1] on the spherical path from `a` to `b` (`[dim]`): the same values as that step of
/// [`interpolate`].
pub fn slerp(a: &Tensor, b: &Tensor, t: f64) -> Result<Tensor> {
    let (av, bv): (Vec<f32>, Vec<f32>) = (a.to_vec1()?, b.to_vec1()?);
    Ok(Tensor::from_vec(mix(&av, &bv, t, Path::Slerp), av.len(), a.device())?)
}

fn mix(av: &[f32], bv: &[f32], t: f64, path: Path) -> Vec<f32> {
    let dot: f64 = av.iter().zip(bv).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
    let omega = (dot / (norm(av) * norm(bv))).clamp(-1.0, 1.0).acos();
    let (wa, wb) = match path {
        Path::Slerp if omega.sin().abs() > 1e-6 => (((1.0 - t) * omega).sin() / omega.sin(), (t * omega).sin() / omega.sin()),
        _ => (1.0 - t, t),
    };
    av.iter().zip(bv).map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32).collect()
}

/// `steps` copies of `z` with dimension `dim` swept linearly over `[-range, range]`.
pub fn walk(z: &Tensor, dim: usize, steps: usize, range: f64) -> Result<Tensor> {
    let v: Vec<f32> = z.to_vec1()?;
    if dim >= v.len() {
        bail!("--walk-dim {dim} is out of range: the latent has {} dimensions", v.len());
    }
    if steps < 2 {
        bail!("--steps must be at least 2");
    }
    let mut rows = Vec::with_capacity(steps * v.len());
    for i in 0..steps {
        let mut r = v.clone();
        r[dim] = (-range + 2.0 * range * i as f64 / (steps - 1) as f64) as f32;
        rows.extend(r);
    }
    Ok(Tensor::from_vec(rows, (steps, v.len()), z.device())?)
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latents_are_seeded_and_prefix_stable() -> Result<()> {
        let a: Vec<Vec<f32>> = latents(5, 3, 4, &Device::Cpu)?.to_vec2()?;
        let b: Vec<Vec<f32>> = latents(5, 5, 4, &Device::Cpu)?.to_vec2()?;
        let c: Vec<Vec<f32>> = latents(6, 3, 4, &Device::Cpu)?.to_vec2()?;
        assert_eq!(a[..], b[..3]);
        assert_ne!(a, c);
        Ok(())
    }

    #[test]
    fn interpolation_endpoints_and_slerp_norm() -> Result<()> {
        let z = latents(1, 2, 64, &Device::Cpu)?;
        let (a, b) = (z.get(0)?, z.get(1)?);
        for path in [Path::Linear, Path::Slerp] {
            let p: Vec<Vec<f32>> = interpolate(&a, &b, 5, path)?.to_vec2()?;
            let (av, bv): (Vec<f32>, Vec<f32>) = (a.to_vec1()?, b.to_vec1()?);
            assert!(p[0].iter().zip(&av).all(|(x, y)| (x - y).abs() < 1e-5));
            assert!(p[4].iter().zip(&bv).all(|(x, y)| (x - y).abs() < 1e-5));
        }
        // Slerp between equal-norm vectors keeps the norm; linear shrinks it in the middle.
        let b2 = ((&b / norm(&b.to_vec1()?))? * norm(&a.to_vec1()?))?;
        let mid_s: Vec<Vec<f32>> = interpolate(&a, &b2, 3, Path::Slerp)?.to_vec2()?;
        let mid_l: Vec<Vec<f32>> = interpolate(&a, &b2, 3, Path::Linear)?.to_vec2()?;
        let na = norm(&a.to_vec1()?);
        assert!((norm(&mid_s[1]) - na).abs() < 1e-3 * na);
        assert!(norm(&mid_l[1]) < 0.9 * na);
        Ok(())
    }

    #[test]
    fn walk_sweeps_one_dimension() -> Result<()> {
        let z = latents(2, 1, 8, &Device::Cpu)?.get(0)?;
        let w: Vec<Vec<f32>> = walk(&z, 3, 3, 2.0)?.to_vec2()?;
        assert_eq!((w[0][3], w[1][3], w[2][3]), (-2.0, 0.0, 2.0));
        assert_eq!(w[0][2], w[2][2]);
        assert!(walk(&z, 8, 3, 2.0).is_err());
        Ok(())
    }
}
