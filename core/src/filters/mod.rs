//! The filter registry: turns a filter spec from the command line, a config file or the plug-in ABI into a
//! `Box<dyn Filter>`. `stylize`, `ganime-camera` and the editor plug-in all open filters here, so a filter
//! added once is available everywhere.
//!
//! A spec is `NAME` for a built-in filter, or `KIND:PATH` for a model file (`KIND` names the architecture).

pub mod anime;
pub mod builtin;
mod options;
mod passthrough;
mod resolution;
mod temporal;
pub mod toon;

pub use options::{open_with_options, read_filter_list, ConfiguredFilter};
pub use passthrough::Passthrough;
pub use resolution::{AtResolution, ProcessingSize};
pub use temporal::TemporalSmoothing;
pub use toon::Toon;

use crate::filter::Filter;
use anyhow::{bail, Result};

/// Built-in filters `open` knows by name, for help texts and error messages.
pub fn builtin_names() -> Vec<&'static str> {
    let mut names = vec!["toon", "passthrough"];
    names.extend(builtin::names());
    names
}

/// Model kinds `open` accepts as `KIND:PATH`.
pub fn model_kinds() -> Vec<&'static str> {
    vec!["style", "multistyle", "tfstyle", "animegan", "cyclegan"]
}

/// Opens the filter a spec names; an unknown name or kind is an error that lists the known ones.
pub fn open(spec: &str) -> Result<Box<dyn Filter>> {
    let spec = spec.trim();
    if let Some(filter) = builtin::open(spec)? {
        return Ok(filter);
    }
    if let Some((kind, path)) = spec.split_once(':') {
        match kind {
            "style" => return Ok(Box::new(crate::style::filter::StyleNetFilter::open(std::path::Path::new(path), &candle_core::Device::Cpu)?)),
            "multistyle" => return Ok(Box::new(crate::style::filter::MultiStyleFilter::open(path, &candle_core::Device::Cpu)?)),
            "tfstyle" => return Ok(Box::new(crate::style::tf_style_filter::TfStyleFilter::open(std::path::Path::new(path), &candle_core::Device::Cpu)?)),
            "animegan" => return anime::open_animegan(path),
            "cyclegan" => return anime::open_cyclegan(path),
            // Learned filters register their `KIND:PATH` arm here.
            _ => bail!("unknown filter kind '{kind}' in '{spec}'; known kinds: {}", list(&model_kinds())),
        }
    }
    match spec {
        "passthrough" => Ok(Box::new(Passthrough)),
        "toon" => Ok(Box::new(Toon::default())),
        _ => bail!("unknown filter '{spec}'; built-in filters: {}; model files: KIND:PATH with KIND one of {}",
            list(&builtin_names()), list(&model_kinds())),
    }
}

fn list(names: &[&str]) -> String {
    if names.is_empty() { "(none yet)".into() } else { names.join(", ") }
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
