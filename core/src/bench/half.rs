//! `ganime bench WORKLOAD --dtype f16|bf16`: the inference workloads (`style-320x240`, `style-640x480`,
//! `animegan-256`) with the same seeded full-width weights as the f32 workloads, cast to the half type, and
//! the input cast too: what the camera path runs on a GPU with `--dtype`. Timed like every workload.

use super::{time_it, BenchResult};
use crate::models::animegan::{AnimeGanV2, AnimeGanWidths};
use crate::models::transformer_net::{TransformerNet, TransformerNetConfig};
use crate::nn::bilinear::ResizeConvention;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use std::collections::HashMap;

pub const WORKLOADS: &[&str] = &["style-320x240", "style-640x480", "animegan-256"];

/// The f32 weights a seeded model drew into `vars`, cast to `dtype`.
fn cast_vars(vars: &VarMap, dtype: DType) -> Result<HashMap<String, Tensor>> {
    let data = vars.data().lock().map_err(|_| anyhow::anyhow!("variable map lock poisoned"))?;
    data.iter().map(|(k, v)| Ok((k.clone(), v.as_tensor().to_dtype(dtype)?))).collect()
}

pub fn run(workload: &str, seconds: f64, min_runs: usize, device: &Device, dtype: DType) -> Result<BenchResult> {
    if !WORKLOADS.contains(&workload) {
        bail!("--dtype {dtype:?} applies to the inference workloads {} only, not `{workload}` (training runs in f32)", WORKLOADS.join(", "));
    }
    let timed = |forward: &dyn Fn() -> Result<Tensor>| {
        time_it(
            || {
                let y = forward()?;
                device.synchronize()?;
                drop(y);
                Ok(())
            },
            seconds,
            min_runs,
        )
    };
    let (median, runs, warmup) = if workload == "animegan-256" {
        let vars = VarMap::new();
        AnimeGanV2::new(AnimeGanWidths::RELEASED, crate::nn::seeded_var_builder(&vars, 0, DType::F32, device))?;
        let g = AnimeGanV2::from_tensors_as(cast_vars(&vars, dtype)?, dtype, "seeded AnimeGANv2", device)?;
        let x = ((Tensor::rand(0f32, 1., (1, 3, 256, 256), device)? * 2.0)? - 1.0)?.to_dtype(dtype)?;
        timed(&|| g.forward(&x, ResizeConvention::AlignCorners))?
    } else {
        let (h, w) = if workload == "style-320x240" { (240, 320) } else { (480, 640) };
        let vars = VarMap::new();
        TransformerNet::new(&TransformerNetConfig::standard(), crate::nn::seeded_var_builder(&vars, 0, DType::F32, device))?;
        let net = TransformerNet::from_tensors(&cast_vars(&vars, dtype)?, dtype, device, "seeded TransformerNet")?;
        let x = (Tensor::rand(0f32, 1., (1, 3, h, w), device)? * 255.0)?.to_dtype(dtype)?;
        timed(&|| net.forward(&x))?
    };
    Ok(BenchResult { workload: workload.into(), unit: "frames/s", value: 1.0 / median, median_ms: median * 1e3, runs, warmup_runs: warmup })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_workloads_refuse_half() {
        let err = run("dcgan64-train", 0.1, 1, &Device::Cpu, DType::F16).err().expect("refused").to_string();
        assert!(err.contains("inference workloads"), "{err}");
    }
}
