//! Where and in which precision the learned filters run: `--device cpu|cuda[:N]` and `--dtype f32|f16|bf16`.
//! Weights are cast once when the filter is opened and each frame is cast on the way in (the output is read
//! back as f32). Half precision is meant for the GPU (the camera path): it halves memory traffic and uses the
//! tensor cores; instance and layer norms keep their statistics in f32 (`nn::norm`), the rest runs in the
//! chosen type. `filters::half_parity` measures what that costs against f32.

use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Compute {
    pub device: Device,
    pub dtype: DType,
}

impl Compute {
    /// f32 on the CPU: what `filters::open` uses.
    pub fn cpu() -> Self {
        Self { device: Device::Cpu, dtype: DType::F32 }
    }

    /// From the `--device` and `--dtype` option values.
    pub fn parse(device: &str, dtype: &str) -> Result<Self> {
        let dtype = parse_dtype(dtype)?;
        if dtype == DType::BF16 && device.trim().eq_ignore_ascii_case("cpu") {
            bail!("--dtype bf16 needs --device cuda: Candle's CPU matmul has no bf16 (f16 works on the CPU, but slower than f32)");
        }
        Ok(Self { device: crate::device::parse_device(device)?, dtype })
    }

    /// The floating-point tensors of a state dict in `self.dtype` (integer tensors, e.g. BatchNorm's
    /// `num_batches_tracked`, stay as they are).
    pub fn cast(&self, tensors: HashMap<String, Tensor>) -> Result<HashMap<String, Tensor>> {
        tensors
            .into_iter()
            .map(|(k, t)| {
                let t = if t.dtype().is_float() { t.to_dtype(self.dtype)? } else { t };
                Ok((k, t))
            })
            .collect()
    }
}

/// `f32`, `f16` or `bf16` (also `float32`, `half`, `bfloat16`).
pub fn parse_dtype(s: &str) -> Result<DType> {
    Ok(match s.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" | "float" => DType::F32,
        "f16" | "float16" | "half" => DType::F16,
        "bf16" | "bfloat16" => DType::BF16,
        other => bail!("--dtype must be f32, f16 or bf16, not `{other}`"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dtypes_and_casts_only_floats() -> Result<()> {
        assert_eq!(parse_dtype("F16")?, DType::F16);
        assert_eq!(parse_dtype("bfloat16")?, DType::BF16);
        assert!(parse_dtype("f8").unwrap_err().to_string().contains("--dtype"));
        assert!(Compute::parse("cpu", "bf16").unwrap_err().to_string().contains("needs --device cuda"));
        assert_eq!(Compute::parse("cpu", "f16")?.dtype, DType::F16);
        let c = Compute { device: Device::Cpu, dtype: DType::F16 };
        let t = HashMap::from([
            ("w".to_string(), Tensor::ones(3, DType::F32, &Device::Cpu)?),
            ("n".to_string(), Tensor::ones(1, DType::I64, &Device::Cpu)?),
        ]);
        let t = c.cast(t)?;
        assert_eq!((t["w"].dtype(), t["n"].dtype()), (DType::F16, DType::I64));
        Ok(())
    }
}
