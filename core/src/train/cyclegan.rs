//! The CycleGAN task (Zhu et al.; junyanz/pytorch-CycleGAN-and-pix2pix `cycle_gan_model.py`) for the shared
//! trainer: two data streams (A, B), generators `G_A` (A→B) and `G_B` (B→A), PatchGAN critics `D_A` (judges
//! B-domain images) and `D_B`, cycle loss λ 10 per direction, identity loss 0.5·λ, a 50-image history pool
//! for each critic, random crops of slightly larger images plus flips.
//!
//! Order differs from the reference in one respect: the shared trainer updates the critics first (on fakes of
//! the current generators, through the pools) and then the generators against the updated critics; the
//! reference does G then D. Both are alternating updates of the same losses.

use super::task::{GanTask, StepContext, StepStats};
use super::trainer::{checkpoint_options, read_run, RunControl, TrainConfig, TrainOptions, TrainSummary, Trainer};
use crate::data::{open_dataset, Dataset, Fit, ImageSpec};
use crate::models::cyclegan::{DiscriminatorConfig, GeneratorConfig, PatchDiscriminator, ResnetGenerator};
use crate::nn::l1_loss;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The model part of a CycleGAN run (stored as the checkpoint's `model`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CycleGanConfig {
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
    /// Training crop size (images are loaded at `TrainConfig::image.size`, a little larger, then cropped).
    pub crop: usize,
    pub lambda_cycle: f64,
    /// Identity loss weight relative to `lambda_cycle` (the reference's `lambda_identity`).
    pub lambda_identity: f64,
    pub pool_size: usize,
}

impl CycleGanConfig {
    pub fn validate(&self, load_size: usize) -> Result<()> {
        if self.crop < 8 || self.crop % 4 != 0 {
            bail!("--crop must be a multiple of 4 and at least 8, not {}", self.crop);
        }
        if load_size < self.crop {
            bail!("--load-size ({load_size}) must be at least --crop ({})", self.crop);
        }
        // Bounded before anything is built: a run config read on --resume must not allocate without end.
        let (g, d) = (self.generator, self.discriminator);
        for (name, value, max) in [("ngf", g.ngf, 4096), ("n_blocks", g.n_blocks, 64), ("ndf", d.ndf, 4096), ("n_layers", d.n_layers, 8)] {
            if value > max {
                bail!("{name} {value} is larger than ganime builds ({max} at most)");
            }
        }
        if self.crop > 4096 || self.pool_size > 10_000 {
            bail!("--crop {} or --pool-size {} is larger than ganime trains with (4096, 10000 at most)", self.crop, self.pool_size);
        }
        // Upper bounds of the weights: G's 7x7 ends, two 3x3 stages each way around `n_blocks` pairs of 3x3 convs
        // at 4 ngf; D's 4x4 convs at most 8 ndf wide.
        let (ngf, blocks, ndf, layers) = (g.ngf as u128, g.n_blocks as u128, d.ndf as u128, d.n_layers as u128);
        crate::nn::sequential::check_parameters("the CycleGAN generator", Some(294 * ngf + 180 * ngf * ngf + 288 * blocks * ngf * ngf))?;
        crate::nn::sequential::check_parameters("the CycleGAN discriminator", Some(48 * ndf + 1024 * (layers + 2) * ndf * ndf))?;
        Ok(())
    }
}

/// The reference's `ImagePool`: until full it stores and returns each fake; then, with probability ½, returns
/// a stored fake in its place (and stores the new one), otherwise the new fake.
#[derive(Default)]
pub struct ImagePool {
    capacity: usize,
    images: Vec<Tensor>,
}

impl ImagePool {
    pub fn new(capacity: usize) -> Self {
        Self { capacity, images: Vec::new() }
    }

    /// `fakes` `[N, C, H, W]` (detached) -> the batch D sees.
    pub fn query(&mut self, fakes: &Tensor, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
        if self.capacity == 0 {
            return Ok(fakes.clone());
        }
        let mut out = Vec::new();
        for i in 0..fakes.dim(0)? {
            let image = fakes.narrow(0, i, 1)?;
            if self.images.len() < self.capacity {
                self.images.push(image.clone());
                out.push(image);
            } else if rng.random::<f64>() > 0.5 {
                let j = rng.random_range(0..self.capacity);
                out.push(std::mem::replace(&mut self.images[j], image));
            } else {
                out.push(image);
            }
        }
        Tensor::cat(&out, 0)
    }

    fn tensor(&self) -> Option<Tensor> {
        (!self.images.is_empty()).then(|| Tensor::cat(&self.images, 0)).and_then(|t| t.ok())
    }

    fn restore(&mut self, t: &Tensor) -> candle_core::Result<()> {
        self.images = (0..t.dim(0)?).map(|i| t.narrow(0, i, 1)).collect::<candle_core::Result<_>>()?;
        Ok(())
    }
}

/// Tensors kept from the critic phase for the generator phase of the same step.
struct Forward {
    real_a: Tensor,
    real_b: Tensor,
    fake_a: Tensor,
    fake_b: Tensor,
}

pub struct CycleGanTask {
    pub config: CycleGanConfig,
    pub g_a: ResnetGenerator,
    pub g_b: ResnetGenerator,
    pub d_a: PatchDiscriminator,
    pub d_b: PatchDiscriminator,
    pool_a: ImagePool,
    pool_b: ImagePool,
    /// Fixed images for the sample grid: `[k, 3, crop, crop]` from A and from B.
    fixed: (Tensor, Tensor),
    forward: Option<Forward>,
}

impl CycleGanTask {
    pub fn new(config: &CycleGanConfig, seed: u64, fixed: (Tensor, Tensor), device: &Device) -> Result<Self> {
        let s = |i: u64| seed.wrapping_mul(4).wrapping_add(i);
        Ok(Self {
            g_a: ResnetGenerator::new(config.generator, s(1), device)?,
            g_b: ResnetGenerator::new(config.generator, s(2), device)?,
            d_a: PatchDiscriminator::new(config.discriminator, s(3), device)?,
            d_b: PatchDiscriminator::new(config.discriminator, s(4), device)?,
            pool_a: ImagePool::new(config.pool_size),
            pool_b: ImagePool::new(config.pool_size),
            config: config.clone(),
            fixed,
            forward: None,
        })
    }

    /// The same random `crop`×`crop` window of every image in the batch.
    fn random_crop(&self, x: &Tensor, ctx: &mut StepContext) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let c = self.config.crop;
        let (dy, dx) = (ctx.rng.random_range(0..=h - c), ctx.rng.random_range(0..=w - c));
        x.narrow(2, dy, c)?.narrow(3, dx, c)?.contiguous()
    }
}

fn mean_score(ctx: &StepContext, a: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    let s = |t: &Tensor| -> candle_core::Result<f64> { ctx.objective.score(t)?.mean_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>() };
    Ok(0.5 * (s(a)? + s(b)?))
}

impl GanTask for CycleGanTask {
    fn groups(&self) -> Vec<(&'static str, &VarMap)> {
        vec![("G_A", &self.g_a.vars), ("G_B", &self.g_b.vars), ("D_A", &self.d_a.vars), ("D_B", &self.d_b.vars)]
    }

    fn critic_groups(&self) -> Vec<&'static str> {
        vec!["D_A", "D_B"]
    }

    fn d_loss(&mut self, real: &[Tensor], ctx: &mut StepContext, stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let [a, b] = real else {
            candle_core::bail!("CycleGAN needs two data streams (A and B), got {}", real.len());
        };
        let real_a = self.random_crop(a, ctx)?;
        let real_b = self.random_crop(b, ctx)?;
        let fake_b = self.g_a.forward(&real_a)?;
        let fake_a = self.g_b.forward(&real_b)?;
        let n = real_a.dim(0)?;
        let pooled_b = self.pool_b.query(&fake_b.detach(), ctx.rng)?;
        let pooled_a = self.pool_a.query(&fake_a.detach(), ctx.rng)?;
        let targets = ctx.labels.targets(n, ctx.rng, ctx.device)?;
        // D_A judges domain B (real B vs G_A's fakes), D_B domain A.
        let (da_real, da_fake) = (self.d_a.forward(&real_b)?, self.d_a.forward(&pooled_b)?);
        let (db_real, db_fake) = (self.d_b.forward(&real_a)?, self.d_b.forward(&pooled_a)?);
        stats.real_score = mean_score(ctx, &da_real, &db_real)?;
        stats.fake_score = mean_score(ctx, &da_fake, &db_fake)?;
        let loss = (ctx.objective.d_loss(&da_real, &da_fake, &targets)? + ctx.objective.d_loss(&db_real, &db_fake, &targets)?)?;
        self.forward = Some(Forward { real_a, real_b, fake_a, fake_b });
        Ok(loss)
    }

    fn g_loss(&mut self, ctx: &mut StepContext, _stats: &mut StepStats) -> candle_core::Result<Tensor> {
        let f = self.forward.take().ok_or_else(|| candle_core::Error::Msg("g_loss before d_loss".into()))?;
        let lc = self.config.lambda_cycle;
        let adversarial = (ctx.objective.g_loss(&self.d_a.forward(&f.fake_b)?)? + ctx.objective.g_loss(&self.d_b.forward(&f.fake_a)?)?)?;
        let cycle = ((l1_loss(&self.g_b.forward(&f.fake_b)?, &f.real_a)? + l1_loss(&self.g_a.forward(&f.fake_a)?, &f.real_b)?)? * lc)?;
        let mut loss = (adversarial + cycle)?;
        if self.config.lambda_identity > 0.0 {
            let identity = (l1_loss(&self.g_a.forward(&f.real_b)?, &f.real_b)? + l1_loss(&self.g_b.forward(&f.real_a)?, &f.real_a)?)?;
            loss = (loss + (identity * (lc * self.config.lambda_identity))?)?;
        }
        Ok(loss)
    }

    /// Rows of A, G_A(A), G_B(G_A(A)), B, G_B(B), G_A(G_B(B)).
    fn samples(&self) -> candle_core::Result<Tensor> {
        let (a, b) = &self.fixed;
        let ab = self.g_a.forward(a)?;
        let aba = self.g_b.forward(&ab)?;
        let ba = self.g_b.forward(b)?;
        let bab = self.g_a.forward(&ba)?;
        super::task::interleave(&[a, &ab, &aba, b, &ba, &bab])
    }

    fn sample_columns(&self) -> Option<usize> {
        Some(6)
    }

    fn state_tensors(&self) -> candle_core::Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        if let Some(t) = self.pool_a.tensor() {
            out.push(("pool_a".to_string(), t));
        }
        if let Some(t) = self.pool_b.tensor() {
            out.push(("pool_b".to_string(), t));
        }
        Ok(out)
    }

    fn load_state(&mut self, tensors: &HashMap<String, Tensor>) -> candle_core::Result<()> {
        if let Some(t) = tensors.get("task.pool_a") {
            self.pool_a.restore(t)?;
        }
        if let Some(t) = tensors.get("task.pool_b") {
            self.pool_b.restore(t)?;
        }
        Ok(())
    }
}

/// Up to 4 centre-cropped images of each domain for the sample grid (the first files in sorted order).
fn fixed_images(a: &Arc<dyn Dataset>, b: &Arc<dyn Dataset>, crop: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let spec = ImageSpec { size: crop, channels: 3, fit: Fit::CenterCrop };
    let take = |d: &Arc<dyn Dataset>| -> Result<Tensor> {
        let k = d.len().min(4);
        let mut v = Vec::with_capacity(k * spec.sample_len());
        for i in 0..k {
            v.extend(d.load(i, &spec)?);
        }
        Ok(Tensor::from_vec(v, (k, 3, crop, crop), device)?)
    };
    Ok((take(a)?, take(b)?))
}

/// Starts a CycleGAN run in `out` (`start` = model, trainer config with `data` = domain A, options with
/// `extra_data` = [domain B]), or resumes the one there. `total_steps` may raise the target on resume.
pub fn train_cyclegan(
    start: Option<(CycleGanConfig, TrainConfig, TrainOptions)>,
    out: &Path,
    device: &Device,
    run: RunControl,
) -> Result<TrainSummary> {
    let (model, config, options, ckpt) = match start {
        Some((m, c, o)) => (m, c, o, None),
        None => {
            let (m, c, ckpt) = read_run::<CycleGanConfig>(out, "cyclegan", "a CycleGAN run", device)?;
            let options = checkpoint_options(&ckpt)?;
            (m, c, options, Some(ckpt))
        }
    };
    model.validate(config.image.size)?;
    let [b_path] = options.extra_data.as_slice() else { bail!("a CycleGAN run needs exactly one extra data stream (domain B)") };
    let a = open_dataset(&config.data).with_context(|| format!("domain A ({})", config.data.display()))?;
    let b = open_dataset(b_path).with_context(|| format!("domain B ({})", b_path.display()))?;
    let fixed = fixed_images(&a, &b, model.crop, device)?;
    let task = CycleGanTask::new(&model, config.seed, fixed, device)?;
    let mut trainer = Trainer::new_or_resumed(task, options, "cyclegan", serde_json::to_value(&model)?, config, ckpt.as_ref(), out, device, run)?;
    if !run.quiet {
        eprintln!("training CycleGAN on A = {}, B = {} -> {}", a.describe(), b.describe(), out.display());
    }
    trainer.run_streams(vec![a, b])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Sizes each within bounds whose product is far beyond memory (ngf 4096 with 64 blocks: 300 billion weights)
    /// are refused before anything is built; the reference's sizes pass.
    #[test]
    fn oversized_networks_are_refused() {
        let config = |ngf, n_blocks, ndf| CycleGanConfig {
            generator: GeneratorConfig { ngf, n_blocks },
            discriminator: DiscriminatorConfig { ndf, n_layers: 3 },
            crop: 256,
            lambda_cycle: 10.0,
            lambda_identity: 0.5,
            pool_size: 50,
        };
        assert!(config(64, 9, 64).validate(286).is_ok());
        let err = config(4096, 64, 64).validate(286).unwrap_err().to_string();
        assert!(err.contains("CycleGAN generator would hold"), "{err}");
        let err = config(64, 9, 4096).validate(286).unwrap_err().to_string();
        assert!(err.contains("CycleGAN discriminator would hold"), "{err}");
    }

    #[test]
    fn pool_fills_then_swaps_about_half() -> Result<()> {
        let mut pool = ImagePool::new(3);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let img = |v: f32| Tensor::full(v, (1, 1, 2, 2), &Device::Cpu).unwrap();
        for v in 0..3 {
            assert_eq!(pool.query(&img(v as f32), &mut rng)?.flatten_all()?.to_vec1::<f32>()?[0], v as f32);
        }
        let mut swapped = 0;
        for v in 3..203 {
            let out = pool.query(&img(v as f32), &mut rng)?.flatten_all()?.to_vec1::<f32>()?[0];
            swapped += (out != v as f32) as usize;
        }
        assert!((70..130).contains(&swapped), "{swapped} of 200 swapped");
        let saved = pool.tensor().unwrap();
        let mut restored = ImagePool::new(3);
        restored.restore(&saved)?;
        assert_eq!(restored.tensor().unwrap().flatten_all()?.to_vec1::<f32>()?, saved.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
