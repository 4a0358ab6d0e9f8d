//! Filter specs with per-filter options, as written on a command line (`--filter "animegan:paprika.pt size=256"`)
//! or one per line in a filter list file. Every filter `open` knows gets the generic wrappers this way:
//!
//! ```text
//! SPEC [size=N|WxH] [smooth=A] [strength=S]
//! ```
//! - `size`: processing resolution ([`ProcessingSize`]: long side N, or exactly WxH),
//! - `smooth`: temporal smoothing in [0, 1) ([`TemporalSmoothing`]),
//! - `strength`: initial blend with the input in [0, 1] (applied by the caller with
//!   [`crate::filter::apply_with_strength`], so that it can change live).
//!
//! Options are taken from the end of the line, so a path containing spaces still works.

use super::{open_on, AtResolution, ProcessingSize, TemporalSmoothing};
use crate::compute::Compute;
use crate::filter::Filter;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// A filter opened from a spec line, with the strength it starts at.
pub struct ConfiguredFilter {
    pub filter: Box<dyn Filter>,
    pub strength: f32,
}

impl ConfiguredFilter {
    /// One filter with the strength built in (for hosts that apply a filter once, like the editor plug-in).
    pub fn into_filter(self) -> Box<dyn Filter> {
        if self.strength >= 1.0 {
            return self.filter;
        }
        Box::new(Blended(self))
    }
}

/// A filter blended with its input at a fixed strength.
struct Blended(ConfiguredFilter);

impl Filter for Blended {
    fn name(&self) -> String {
        format!("{} strength={}", self.0.filter.name(), self.0.strength)
    }
    fn apply(&self, frame: &image::RgbImage) -> Result<image::RgbImage> {
        crate::filter::apply_with_strength(self.0.filter.as_ref(), frame, self.0.strength)
    }
}

const KEYS: &[&str] = &["size", "smooth", "strength"];

/// Opens `SPEC [key=value]…` (see the module docs) on the CPU in f32.
pub fn open_with_options(line: &str) -> Result<ConfiguredFilter> {
    open_with_options_on(line, &Compute::cpu())
}

/// Opens `SPEC [key=value]…` with the network on `compute`'s device and dtype.
pub fn open_with_options_on(line: &str, compute: &Compute) -> Result<ConfiguredFilter> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let mut options = Vec::new();
    while let Some(word) = words.last() {
        match word.split_once('=') {
            Some((key, value)) if KEYS.contains(&key) => {
                // Once each: every `size=` would wrap the filter again (a line of 100,000 of them nested the
                // wrappers deep enough to overflow the stack).
                if options.iter().any(|(k, _)| *k == key) {
                    bail!("filter option '{key}' is given twice in '{}'", shorten(line));
                }
                options.push((key, value));
                words.pop();
            }
            Some((key, _)) if words.len() > 1 => {
                bail!("unknown filter option '{key}' in '{}'; options are {}", shorten(line), KEYS.join(", "))
            }
            _ => break,
        }
    }
    if words.is_empty() {
        bail!("filter line '{}' names no filter", shorten(line));
    }
    let spec = words.join(" ");
    let mut filter = open_on(&spec, compute)?;
    let mut strength = 1.0;
    // Size first, smoothing outside it: smoothing then sees full-size frames, where the motion test is exact.
    options.sort_by_key(|(k, _)| KEYS.iter().position(|x| x == k));
    for (key, value) in options {
        let bad = || format!("bad {key}='{value}' in filter line '{}'", shorten(line));
        match key {
            "size" => filter = Box::new(AtResolution::new(filter, ProcessingSize::parse(value).with_context(bad)?)),
            "smooth" => {
                let amount: f32 = value.parse().with_context(bad)?;
                filter = Box::new(TemporalSmoothing::new(filter, amount).with_context(bad)?);
            }
            "strength" => {
                strength = value.parse().with_context(bad)?;
                if !(0.0..=1.0).contains(&strength) {
                    bail!("{}: strength must be in [0, 1]", bad());
                }
            }
            _ => unreachable!("keys are checked above"),
        }
    }
    Ok(ConfiguredFilter { filter, strength })
}

/// The start of a long line, for messages.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// Reads a filter list file: one spec line per line; blank lines and `#` comments are skipped.
pub fn read_filter_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read filter list {}", path.display()))?;
    let lines: Vec<String> = text.lines().map(|l| l.split('#').next().unwrap_or("").trim().to_string()).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        bail!("filter list {} has no filters (one spec per line, e.g. 'toon')", path.display());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn options_wrap_the_filter() -> Result<()> {
        let c = open_with_options("toon size=64 smooth=0.5 strength=0.25")?;
        assert_eq!((c.filter.name().as_str(), c.strength), ("toon", 0.25));
        let frame = RgbImage::from_fn(128, 96, |x, y| Rgb([x as u8, y as u8, 90]));
        assert_eq!(c.filter.apply(&frame)?.dimensions(), (128, 96));
        assert_eq!(open_with_options("  passthrough ")?.strength, 1.0);
        Ok(())
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let err = |l: &str| format!("{:#}", open_with_options(l).err().unwrap());
        assert!(err("toon size=huge").contains("size='huge'"));
        assert!(err("toon smooth=1.5").contains("smooth"));
        assert!(err("toon strength=2").contains("[0, 1]"));
        assert!(err("toon colour=red").contains("unknown filter option 'colour'"));
        assert!(err("size=64").contains("names no filter"));
        assert!(err("sparkles").contains("unknown filter 'sparkles'"));
    }

    /// Found by the fuzzer: a line of 100,000 `size=` options nested as many wrappers and overflowed the stack.
    #[test]
    fn each_option_is_given_once() {
        let line = format!("toon{}", " size=8".repeat(100_000));
        let err = open_with_options(&line).err().expect("repeated options are refused").to_string();
        assert!(err.contains("'size' is given twice") && err.len() < 200, "{err}");
        assert!(open_with_options("toon size=8 smooth=0.5 strength=0.5").is_ok());
    }

    #[test]
    fn reads_list_files() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("filters.txt");
        std::fs::write(&p, "# my filters\ntoon\n\npassthrough strength=0.5  # the original\n")?;
        assert_eq!(read_filter_list(&p)?, ["toon", "passthrough strength=0.5"]);
        std::fs::write(&p, "# nothing\n")?;
        assert!(read_filter_list(&p).is_err());
        assert!(format!("{:#}", read_filter_list(&dir.path().join("missing.txt")).err().unwrap()).contains("missing.txt"));
        Ok(())
    }
}
