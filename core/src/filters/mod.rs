//! The filter registry: turns a filter spec from the command line, a config file or the plug-in ABI into a
//! `Box<dyn Filter>`. `stylize`, `ganime-camera` and the editor plug-in all open filters here, so a filter
//! added once is available everywhere.
//!
//! A spec is `NAME` for a built-in filter, or `KIND:PATH` for a model file (`KIND` names the architecture).

pub mod anime;
pub mod arbitrary;
pub mod builtin;
pub mod half_parity;
pub mod network;
mod options;
mod passthrough;
mod resolution;
pub mod style;
mod temporal;
pub mod tf_style;
pub mod toon;

pub use options::{open_with_options, open_with_options_on, read_filter_list, ConfiguredFilter};
pub use passthrough::Passthrough;
pub use resolution::{AtResolution, ProcessingSize};
pub use temporal::TemporalSmoothing;
pub use toon::Toon;

use crate::compute::Compute;
use crate::filter::Filter;
use anyhow::{bail, Result};

/// Built-in filters `open` knows by name, for help texts and error messages.
pub fn builtin_names() -> Vec<&'static str> {
    let mut names = vec!["toon", "passthrough"];
    names.extend(builtin::names());
    names
}

/// Model kinds `open` accepts as `KIND:PATH` (for `arbitrary`, PATH is a style image).
pub fn model_kinds() -> Vec<&'static str> {
    vec!["style", "multistyle", "tfstyle", "animegan", "cyclegan", "arbitrary"]
}

/// Opens the filter a spec names, on the CPU in f32; an unknown name or kind is an error that lists the known ones.
pub fn open(spec: &str) -> Result<Box<dyn Filter>> {
    open_on(spec, &Compute::cpu())
}

/// Opens the filter a spec names with its network on `compute.device` in `compute.dtype` (the built-in,
/// non-learned filters run on the CPU whatever `compute` says).
pub fn open_on(spec: &str, compute: &Compute) -> Result<Box<dyn Filter>> {
    let spec = spec.trim();
    if let Some(filter) = builtin::open(spec)? {
        return Ok(filter);
    }
    if let Some((kind, path)) = spec.split_once(':') {
        match kind {
            "style" => return Ok(Box::new(crate::filters::style::StyleNetFilter::open_on(std::path::Path::new(path), compute)?)),
            "multistyle" => return Ok(Box::new(crate::filters::style::MultiStyleFilter::open_on(path, compute)?)),
            "tfstyle" => {
                if compute.dtype != candle_core::DType::F32 {
                    bail!("tfstyle:{path}: runs in f32 only; drop --dtype");
                }
                return Ok(Box::new(crate::filters::tf_style::TfStyleFilter::open(std::path::Path::new(path), &compute.device)?));
            }
            "animegan" => return anime::open_animegan(path, compute),
            "cyclegan" => return anime::open_cyclegan(path, compute),
            // PATH is a style image here: the built-in Magenta networks take their style from it.
            "arbitrary" => {
                if compute.dtype != candle_core::DType::F32 || !compute.device.is_cpu() {
                    bail!("arbitrary:{path}: runs on the CPU in f32 only; drop --device/--dtype");
                }
                return builtin::open_arbitrary(path);
            }
            // Learned filters register their `KIND:PATH` arm here.
            _ => bail!("unknown filter kind '{kind}' in '{spec}'; known kinds: {}", list(&model_kinds())),
        }
    }
    match spec {
        "passthrough" => Ok(Box::new(Passthrough)),
        "toon" => Ok(Box::new(Toon::default())),
        _ => bail!(
            "unknown filter '{spec}'; built-in filters: {}; model files: KIND:PATH with KIND one of {}",
            list(&builtin_names()),
            list(&model_kinds())
        ),
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "(none yet)".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_builtins_and_rejects_unknown_specs() {
        for name in builtin_names() {
            assert_eq!(open(name).unwrap().name(), name);
        }
        let err = open("sparkles").err().unwrap().to_string();
        assert!(err.contains("sparkles") && err.contains("passthrough"), "{err}");
        let err = open("nosuchkind:x.pth").err().unwrap().to_string();
        assert!(err.contains("nosuchkind"), "{err}");
    }
}
