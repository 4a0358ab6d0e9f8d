//! Seeded weight initialisation. Candle's CPU random generator cannot be seeded (`set_seed` bails), so a model
//! built through a plain `VarMap` differs on every run; this backend draws every new variable from a ChaCha
//! stream instead, so the same seed gives the same initial weights (needed for reproducible, resumable runs).

use candle_core::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{init::NormalOrUniform, Init, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use std::sync::Mutex;

struct SeededVarMap {
    vars: VarMap,
    rng: Mutex<ChaCha8Rng>,
}

impl SeededVarMap {
    fn draw(&self, shape: &Shape, init: Init) -> Vec<f64> {
        let n = shape.elem_count();
        let mut rng = self.rng.lock().unwrap();
        let normal =
            |rng: &mut ChaCha8Rng, mean: f64, std: f64| -> Vec<f64> { (0..n).map(|_| mean + std * rng.sample::<f64, _>(StandardNormal)).collect() };
        let uniform = |rng: &mut ChaCha8Rng, lo: f64, up: f64| -> Vec<f64> { (0..n).map(|_| rng.random_range(lo..up)).collect() };
        match init {
            Init::Const(c) => vec![c; n],
            Init::Randn { mean, stdev } => normal(&mut rng, mean, stdev),
            Init::Uniform { lo, up } => uniform(&mut rng, lo, up),
            Init::Kaiming { dist, fan, non_linearity } => {
                let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => normal(&mut rng, 0.0, std),
                    NormalOrUniform::Uniform => uniform(&mut rng, -(3f64.sqrt()) * std, 3f64.sqrt() * std),
                }
            }
        }
    }
}

impl SimpleBackend for SeededVarMap {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut data = self.vars.data().lock().unwrap();
        if let Some(var) = data.get(name) {
            if var.shape() != &shape {
                candle_core::bail!("variable {name}: shape {shape:?} requested, {:?} exists", var.shape());
            }
            return Ok(var.as_tensor().clone());
        }
        let values = Tensor::from_vec(self.draw(&shape, init), shape, dev)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&values)?;
        let t = var.as_tensor().clone();
        data.insert(name.to_string(), var);
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("`get_unchecked` is not supported when building a model ({name})")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars.data().lock().unwrap().contains_key(name)
    }
}

/// A `VarBuilder` that creates the model's variables in `vars`, initialised from `seed`.
pub fn seeded_var_builder(vars: &VarMap, seed: u64, dtype: DType, device: &Device) -> VarBuilder<'static> {
    let backend = SeededVarMap { vars: vars.clone(), rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)) };
    VarBuilder::from_backend(Box::new(backend), dtype, device.clone())
}

/// A model with seeded random weights held as plain tensors, as a filter loads weights from a file: `build` runs
/// once on a seeded `VarMap` to create the weights, then again on detached copies of them. Inference benchmarks
/// use it so that the network runs its inference paths (nothing tracked for autograd), like PyTorch under
/// `no_grad`.
pub fn seeded_inference_model<T>(seed: u64, dtype: DType, device: &Device, build: impl Fn(VarBuilder) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let vars = VarMap::new();
    build(seeded_var_builder(&vars, seed, dtype, device))?;
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        vars.data().lock().expect("var map lock").iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect();
    build(VarBuilder::from_tensors(tensors, dtype, device))
}

/// A standard-normal f32 tensor of `shape` from a seeded generator (Candle's own CPU generator cannot be
/// seeded).
pub fn randn(rng: &mut impl Rng, shape: &[usize], device: &Device) -> Result<Tensor> {
    Prior::Normal.sample(rng, shape, device)
}

/// The distribution a generator's latent vectors are drawn from: part of the model (stored with its config),
/// since a generator trained on one prior makes poor pictures from the other's samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Prior {
    /// Standard normal (pytorch/examples DCGAN, most GANs).
    #[default]
    Normal,
    /// Uniform on [-1, 1] (Radford et al.'s DCGAN paper, the KTH DCGAN-128 paper).
    Uniform,
}

crate::named_values!(Prior { Normal => "normal", Uniform => "uniform" });

impl Prior {
    /// An f32 tensor of `shape` drawn from this prior with a seeded generator.
    pub fn sample(self, rng: &mut impl Rng, shape: &[usize], device: &Device) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = match self {
            Prior::Normal => (0..n).map(|_| rng.sample::<f32, _>(StandardNormal)).collect(),
            Prior::Uniform => (0..n).map(|_| rng.random_range(-1.0f32..=1.0)).collect(),
        };
        Tensor::from_vec(v, shape, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights() -> Result<()> {
        let draw = |seed| -> Result<Vec<f32>> {
            let vm = VarMap::new();
            let vb = seeded_var_builder(&vm, seed, DType::F32, &Device::Cpu);
            vb.get_with_hints((3, 4), "w", Init::Randn { mean: 0.0, stdev: 0.02 })?.flatten_all()?.to_vec1()
        };
        assert_eq!(draw(1)?, draw(1)?);
        assert_ne!(draw(1)?, draw(2)?);
        let std = (draw(3)?.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / 12.0).sqrt();
        assert!(std > 0.005 && std < 0.05, "{std}");
        Ok(())
    }

    #[test]
    fn priors_have_their_ranges_and_moments() -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let u: Vec<f32> = Prior::Uniform.sample(&mut rng, &[20_000], &Device::Cpu)?.to_vec1()?;
        assert!(u.iter().all(|x| (-1.0..=1.0).contains(x)));
        let var = u.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / u.len() as f64;
        assert!((var - 1.0 / 3.0).abs() < 0.02, "uniform variance {var}");
        let n: Vec<f32> = Prior::Normal.sample(&mut rng, &[20_000], &Device::Cpu)?.to_vec1()?;
        assert!(n.iter().any(|x| x.abs() > 1.5), "a standard normal leaves [-1, 1]");
        assert_eq!("uniform".parse::<Prior>().unwrap(), Prior::Uniform);
        assert_eq!(serde_json::to_string(&Prior::Uniform).unwrap(), "\"uniform\"");
        Ok(())
    }
}
