//! `--device cpu|cuda[:N]`.

use anyhow::{bail, Context, Result};
use candle_core::Device;

pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let Some(rest) = spec.strip_prefix("cuda") else {
        bail!("--device must be `cpu`, `cuda` or `cuda:N`, not `{spec}`");
    };
    let index = match rest.strip_prefix(':') {
        Some(n) => n.parse::<usize>().with_context(|| format!("--device {spec}: `{n}` is not a GPU index"))?,
        None if rest.is_empty() => 0,
        None => bail!("--device must be `cpu`, `cuda` or `cuda:N`, not `{spec}`"),
    };
    if !candle_core::utils::cuda_is_available() {
        bail!("--device {spec}: this ganime was built without CUDA; rebuild with `cargo build --release --features cuda` (needs the CUDA toolkit)");
    }
    Device::new_cuda(index).with_context(|| format!("--device {spec}: no usable CUDA GPU {index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert!(parse_device("cpu").unwrap().is_cpu());
        assert!(parse_device("gpu").unwrap_err().to_string().contains("--device"));
        assert!(parse_device("cuda:x").is_err());
        if !candle_core::utils::cuda_is_available() {
            assert!(parse_device("cuda:0").unwrap_err().to_string().contains("without CUDA"));
        }
    }
}
