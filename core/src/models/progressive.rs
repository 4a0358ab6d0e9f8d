//! Progressive growing (Karras et al. 2018) of the radford64 DCGAN: training starts at a small resolution and
//! doubles it stage by stage, fading each new block in. G and D stay the networks every front door loads; a
//! run adds 1×1 "to RGB" convs at each intermediate resolution of G (`grow.to_rgb.{res}`) and "from RGB"
//! convs into D (`grow.from_rgb.{res}`), and enters or leaves their layer stacks part-way.
//!
//! While resolution `r` fades in with weight α, G's picture is `(1 − α)·up2(rgb(r/2)) + α·rgb(r)` and D's
//! features after its `r`-block are `(1 − α)·from_rgb(r/2)(down2(x)) + α·block_r(from_rgb(r)(x))`.

use super::dcgan::{DcganConfig, Discriminator, Generator, Preset};
use crate::nn::summary::Summary;
use crate::nn::{seeded_var_builder, Conv2d, LayerSpec, Mode};
use anyhow::{bail, Result};
use candle_core::{DType, Tensor};
use candle_nn::{Init, VarMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which resolution trains at which step, and how far its fade-in is.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrowthSchedule {
    /// First resolution (8 or more, a power of two).
    pub start: usize,
    /// Steps of the first stage, of each fade-in and of each stable stage after it.
    pub stage_steps: u64,
}

impl GrowthSchedule {
    pub fn validate(&self, config: &DcganConfig) -> Result<()> {
        if config.preset != Preset::Radford64 {
            bail!("--progressive grows the radford64 preset, not {}", config.preset);
        }
        if !self.start.is_power_of_two() || self.start < 8 || self.start > config.image_size {
            bail!("--start-size {} must be a power of two from 8 to the image size {}", self.start, config.image_size);
        }
        if self.stage_steps == 0 {
            bail!("--stage-steps must be at least 1");
        }
        Ok(())
    }

    /// `(resolution, α)` at `step`: the first stage at `start`; then for each doubling a fade-in (α from 0 to 1)
    /// and a stable stage (α = 1); the final size stays once reached.
    pub fn at(&self, step: u64, final_size: usize) -> (usize, f64) {
        let n = self.stage_steps.max(1);
        let mut res = self.start.min(final_size);
        if step < n || res >= final_size {
            return (res, 1.0);
        }
        let mut t = step - n;
        loop {
            res *= 2;
            if t < n {
                return (res, t as f64 / n as f64);
            }
            t -= n;
            if res >= final_size || t < n {
                return (res, 1.0);
            }
            t -= n;
        }
    }
}

/// Where a layer stack can be entered or left: after each activation, the resolution and channels there.
fn cut_points(layers: &[LayerSpec], input: &[usize]) -> Result<BTreeMap<usize, (usize, usize)>> {
    let summary = Summary::of("network", layers, input, "main")?;
    let mut cuts = BTreeMap::new();
    for (i, (layer, row)) in layers.iter().zip(&summary.rows).enumerate() {
        if matches!(layer, LayerSpec::Relu | LayerSpec::LeakyRelu(_)) && row.output.len() == 3 {
            // The last cut at a resolution wins (one per resolution).
            cuts.insert(row.output[1], (i + 1, row.output[0]));
        }
    }
    Ok(cuts)
}

fn conv1x1(vars: &VarMap, name: &str, c_in: usize, c_out: usize, seed: u64, device: &candle_core::Device) -> Result<Conv2d> {
    let vb = seeded_var_builder(vars, seed, DType::F32, device);
    Ok(Conv2d::new(c_in, c_out, 1, 1, 0, true, Some(Init::Randn { mean: 0.0, stdev: 0.02 }), vb.pp(name))?)
}

/// G's extra outputs: a 1×1 conv to RGB at each resolution below the final one.
pub struct GrowingGenerator {
    /// resolution -> (end of G's layers there, to-RGB conv)
    heads: BTreeMap<usize, (usize, Conv2d)>,
    final_size: usize,
}

impl GrowingGenerator {
    /// Adds the heads to `g.vars` (so they train with G and are saved with it).
    pub fn new(g: &Generator, schedule: &GrowthSchedule, seed: u64) -> Result<Self> {
        let c = &g.config;
        schedule.validate(c)?;
        let device = g.vars.all_vars().first().map(|v| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
        let mut heads = BTreeMap::new();
        for (res, (end, channels)) in cut_points(&c.generator_layers(), &[c.nz, 1, 1])? {
            if res >= schedule.start && res < c.image_size {
                let conv = conv1x1(&g.vars, &format!("grow.to_rgb.{res}"), channels, c.channels, seed ^ res as u64, &device)?;
                heads.insert(res, (end, conv));
            }
        }
        Ok(Self { heads, final_size: c.image_size })
    }

    /// `z` -> pictures at `res` (`[N, C, res, res]`), the fade from `res/2` at weight `alpha`.
    pub fn forward(&self, g: &Generator, z: &Tensor, res: usize, alpha: f64, mode: Mode) -> candle_core::Result<Tensor> {
        let z = z.reshape((z.dim(0)?, g.config.nz, 1, 1))?;
        let fading = alpha < 1.0;
        let half = res / 2;
        let head = |r: usize| self.heads.get(&r).ok_or_else(|| candle_core::Error::Msg(format!("no to-RGB head at {r}x{r}")));
        // G's layers up to the half resolution (when fading), then on to `res`.
        let (h_half, start) = if fading {
            let (end, _) = head(half)?;
            (Some(g.main().forward_range(&z, 0..*end, mode)?), *end)
        } else {
            (None, 0)
        };
        let from = h_half.clone().unwrap_or(z);
        let new = if res == self.final_size {
            g.main().forward_range(&from, start..g.main().len(), mode)?
        } else {
            let (end, conv) = head(res)?;
            conv.forward(&g.main().forward_range(&from, start..*end, mode)?)?.tanh()?
        };
        match h_half {
            None => Ok(new),
            Some(h) => {
                let old = crate::nn::upsample_nearest2d(&head(half)?.1.forward(&h)?.tanh()?, 2)?;
                (old * (1.0 - alpha))? + (new * alpha)?
            }
        }
    }
}

/// D's extra inputs: a 1×1 conv from RGB (and D's activation) into each resolution below the final one.
pub struct GrowingDiscriminator {
    /// resolution -> (start of D's layers there, from-RGB conv)
    entries: BTreeMap<usize, (usize, Conv2d)>,
    final_size: usize,
    slope: f64,
}

impl GrowingDiscriminator {
    pub fn new(d: &Discriminator, layers: &[LayerSpec], schedule: &GrowthSchedule, seed: u64) -> Result<Self> {
        let c = &d.config;
        schedule.validate(c)?;
        let device = d.vars.all_vars().first().map(|v| v.device().clone()).unwrap_or(candle_core::Device::Cpu);
        let mut entries = BTreeMap::new();
        for (res, (start, channels)) in cut_points(layers, &[c.channels, c.image_size, c.image_size])? {
            if res >= schedule.start && res < c.image_size {
                let conv = conv1x1(&d.vars, &format!("grow.from_rgb.{res}"), c.channels, channels, seed ^ res as u64, &device)?;
                entries.insert(res, (start, conv));
            }
        }
        Ok(Self { entries, final_size: c.image_size, slope: c.d_leaky_slope })
    }

    /// Pictures at `res` -> one logit each, the fade from `res/2` at weight `alpha`.
    pub fn forward(&self, d: &Discriminator, x: &Tensor, res: usize, alpha: f64, mode: Mode) -> candle_core::Result<Tensor> {
        let entry = |r: usize| self.entries.get(&r).ok_or_else(|| candle_core::Error::Msg(format!("no from-RGB entry at {r}x{r}")));
        let enter = |r: usize, x: &Tensor| -> candle_core::Result<(usize, Tensor)> {
            if r == self.final_size {
                return Ok((0, x.clone()));
            }
            let (start, conv) = entry(r)?;
            Ok((*start, crate::nn::kernels::activation::leaky_relu(&conv.forward(x)?, self.slope)?))
        };
        let (start, h) = enter(res, x)?;
        let h = if alpha < 1.0 {
            let (half_start, old) = enter(res / 2, &x.avg_pool2d(2)?)?;
            let new = d.main().forward_range(&h, start..half_start, mode)?;
            let blended = ((old * (1.0 - alpha))? + (new * alpha)?)?;
            d.main().forward_range(&blended, half_start..d.main().len(), mode)?
        } else {
            d.main().forward_range(&h, start..d.main().len(), mode)?
        };
        h.flatten_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn schedule_grows_fades_and_stays() {
        let s = GrowthSchedule { start: 8, stage_steps: 10 };
        let at = |t| s.at(t, 32);
        assert_eq!(at(0), (8, 1.0));
        assert_eq!(at(9), (8, 1.0));
        assert_eq!(at(10), (16, 0.0));
        assert_eq!(at(15), (16, 0.5));
        assert_eq!(at(20), (16, 1.0));
        assert_eq!(at(29), (16, 1.0));
        assert_eq!(at(30), (32, 0.0));
        assert_eq!(at(40), (32, 1.0));
        assert_eq!(at(10_000), (32, 1.0));
        assert_eq!(GrowthSchedule { start: 32, stage_steps: 10 }.at(5, 32), (32, 1.0));
    }

    /// Shapes at every stage, and the fade's ends: at α = 0 the picture is the lower resolution's, enlarged; at
    /// α = 1 it is the new resolution's alone. Same for D's logits.
    #[test]
    fn fade_in_blends_between_resolutions() -> Result<()> {
        let dev = Device::Cpu;
        let cfg = DcganConfig { image_size: 32, ngf: 4, ndf: 4, ..DcganConfig::preset(Preset::Radford64) };
        let schedule = GrowthSchedule { start: 8, stage_steps: 4 };
        let g = Generator::new(&cfg, 1, &dev)?;
        let grow_g = GrowingGenerator::new(&g, &schedule, 3)?;
        let d = Discriminator::new(&cfg, 2, &dev)?;
        let grow_d = GrowingDiscriminator::new(&d, &cfg.discriminator_layers(), &schedule, 4)?;
        let z = Tensor::randn(0f32, 1., (2, cfg.nz), &dev)?;
        for res in [8, 16, 32] {
            let x = grow_g.forward(&g, &z, res, 1.0, Mode::Eval)?;
            assert_eq!(x.dims(), [2, 3, res, res]);
            assert_eq!(grow_d.forward(&d, &x, res, 1.0, Mode::Eval)?.dims(), [2]);
        }
        let max_diff = |a: &Tensor, b: &Tensor| -> Result<f32> { Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?) };
        let low = crate::nn::upsample_nearest2d(&grow_g.forward(&g, &z, 16, 1.0, Mode::Eval)?, 2)?;
        assert!(max_diff(&grow_g.forward(&g, &z, 32, 0.0, Mode::Eval)?, &low)? < 1e-6);
        assert!(max_diff(&grow_g.forward(&g, &z, 32, 1.0, Mode::Eval)?, &g.forward(&z, Mode::Eval)?)? < 1e-6, "α = 1 at full size is G");
        let half = grow_g.forward(&g, &z, 32, 0.5, Mode::Eval)?;
        let expected = ((low * 0.5)? + (g.forward(&z, Mode::Eval)? * 0.5)?)?;
        assert!(max_diff(&half, &expected)? < 1e-5);
        // D at α = 0 sees only the half-resolution path.
        let x = Tensor::randn(0f32, 1., (2, 3, 16, 16), &dev)?;
        let old = grow_d.forward(&d, &x.avg_pool2d(2)?, 8, 1.0, Mode::Eval)?;
        assert!(max_diff(&grow_d.forward(&d, &x, 16, 0.0, Mode::Eval)?, &old)? < 1e-5);
        // The heads live in G's and D's variables (trained and saved with them).
        assert!(g.vars.data().lock().unwrap().keys().any(|k| k.starts_with("grow.to_rgb.16")));
        assert!(d.vars.data().lock().unwrap().keys().any(|k| k.starts_with("grow.from_rgb.8")));
        assert!(GrowthSchedule { start: 12, stage_steps: 4 }.validate(&cfg).is_err());
        assert!(GrowthSchedule { start: 8, stage_steps: 4 }.validate(&DcganConfig::preset(Preset::Mnist28)).is_err());
        Ok(())
    }
}
