//! Training a feed-forward style network (Johnson et al. 2016, as pytorch/examples `fast_neural_style`):
//! a `TransformerNet` maps content photos to stylised images; the perceptual loss compares VGG features of
//! the output with those of the photo (content, one layer) and Gram matrices with the style image's
//! (style, several layers), plus total variation. Adam; content images centre-cropped and resized to a square.
//!
//! Reused from `train`: the background `Loader` (deterministic order, resumable position), `Adam` with its
//! saved moments, the atomic `Checkpoint` format and `line_plot`. Not the GAN `Trainer`: there is no
//! discriminator and the step is a single loss, so its D/G loop does not apply.
//!
//! Pytorch/examples' Gram is `F F^T / (C H W)` and its losses are MSE (means); the same here.

use super::gatys::total_variation;
use crate::data::{open_dataset, Fit, ImageSpec, Loader, LoaderConfig};
use crate::io::checkpoint::{Checkpoint, Header, FILE_NAME};
use crate::io::image::{grid, save_image};
use crate::io::weights::{load_varmap, save_safetensors, varmap_tensors};
use crate::models::transformer_net::{TransformerNet, TransformerNetConfig};
use crate::models::vgg::{Vgg, VggOptions};
use crate::nn::adam::{Adam, AdamParams};
use crate::nn::seeded_var_builder;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const CHECKPOINT_KIND: &str = "style-net";
/// The trained network alone (pytorch/examples keys), written next to the checkpoint.
pub const MODEL_FILE: &str = "style-net.safetensors";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StyleTrainConfig {
    pub content_dir: PathBuf,
    pub style_image: PathBuf,
    pub vgg: PathBuf,
    pub net: TransformerNetConfig,
    /// Content crops are `image_size` squared.
    pub image_size: usize,
    /// The style image is resized so its longer side is this (None: `image_size`).
    pub style_size: Option<u32>,
    pub batch_size: usize,
    pub steps: u64,
    pub lr: f64,
    pub content_layer: String,
    pub style_layers: Vec<String>,
    pub content_weight: f64,
    pub style_weight: f64,
    pub tv_weight: f64,
    pub seed: u64,
    pub sample_every: u64,
    pub checkpoint_every: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RunState {
    step: u64,
    epoch: usize,
    batch: usize,
    seconds: f64,
}

#[derive(Clone, Debug, Default)]
pub struct StepLosses {
    pub content: f64,
    pub style: f64,
    pub tv: f64,
    pub total: f64,
}

/// Pytorch/examples' `gram_matrix`: `F F^T / (C H W)`, `[B, C, C]`.
fn normalised_gram(f: &Tensor) -> candle_core::Result<Tensor> {
    let (_, c, h, w) = f.dims4()?;
    super::gatys::gram(f)? / (c * h * w) as f64
}

/// The perceptual loss with its style targets.
pub struct PerceptualLoss {
    vgg: Vgg,
    content_layer: String,
    style_layers: Vec<String>,
    style_grams: Vec<Tensor>,
    weights: (f64, f64, f64),
}

impl PerceptualLoss {
    pub fn new(cfg: &StyleTrainConfig, device: &Device) -> Result<Self> {
        let mut layers: Vec<&str> = cfg.style_layers.iter().map(String::as_str).collect();
        layers.push(&cfg.content_layer);
        let vgg = Vgg::load(&cfg.vgg, &layers, VggOptions::default(), DType::F32, device)?;
        let style = super::open_rgb(&cfg.style_image)?;
        let style = super::resize_max_side(&style, cfg.style_size.unwrap_or(cfg.image_size as u32));
        let style = crate::io::image::image_to_tensor_in(&style, crate::io::image::PixelRange::Unit, device)?;
        let names: Vec<&str> = cfg.style_layers.iter().map(String::as_str).collect();
        let style_grams = vgg.features(&style, &names)?.iter().map(|f| Ok(normalised_gram(f)?.detach())).collect::<Result<_>>()?;
        Ok(Self {
            vgg,
            content_layer: cfg.content_layer.clone(),
            style_layers: cfg.style_layers.clone(),
            style_grams,
            weights: (cfg.content_weight, cfg.style_weight, cfg.tv_weight),
        })
    }

    /// Loss of stylised `y` for content photos `x`, both RGB 0..255 `[B, 3, S, S]`.
    pub fn loss(&self, y: &Tensor, x: &Tensor) -> Result<(Tensor, StepLosses)> {
        let (cw, sw, tw) = self.weights;
        let mut names: Vec<&str> = self.style_layers.iter().map(String::as_str).collect();
        names.push(&self.content_layer);
        let fy = self.vgg.features(&(y / 255.0)?, &names)?;
        let fx = self.vgg.features(&(x / 255.0)?, &[&self.content_layer])?;
        let content = candle_nn::loss::mse(&fy[names.len() - 1], &fx[0].detach())?.to_dtype(DType::F64)?;
        let mut style = Tensor::zeros((), DType::F64, y.device())?;
        for (f, target) in fy.iter().zip(&self.style_grams) {
            let g = normalised_gram(f)?;
            let diff = g.broadcast_sub(target)?;
            style = (style + diff.sqr()?.to_dtype(DType::F64)?.mean_all()?)?;
        }
        let tv = if tw > 0.0 { (total_variation(&(y / 255.0)?)? / y.dim(0)? as f64)? } else { Tensor::zeros((), DType::F64, y.device())? };
        let total = (((&content * cw)? + (&style * sw)?)? + (&tv * tw)?)?;
        let parts = StepLosses { content: content.to_scalar()?, style: style.to_scalar()?, tv: tv.to_scalar()?, total: total.to_scalar()? };
        Ok((total, parts))
    }
}

pub struct StyleTrainer {
    pub config: StyleTrainConfig,
    vars: VarMap,
    net: TransformerNet,
    adam: Adam,
    loss: PerceptualLoss,
    state: RunState,
    out: PathBuf,
    device: Device,
    pub quiet: bool,
}

pub struct StyleTrainSummary {
    pub steps: u64,
    pub seconds: f64,
    pub last: StepLosses,
    pub model: PathBuf,
}

impl StyleTrainer {
    pub fn new(config: StyleTrainConfig, out: &Path, device: &Device) -> Result<Self> {
        if config.image_size < 16 || config.batch_size == 0 || config.style_layers.is_empty() {
            bail!("style training needs an image size >= 16, a positive batch size and at least one style layer");
        }
        let vars = VarMap::new();
        let net = TransformerNet::new(&config.net, seeded_var_builder(&vars, config.seed, DType::F32, device))?;
        let adam = Adam::new(&vars, AdamParams { lr: config.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 })?;
        let loss = PerceptualLoss::new(&config, device)?;
        Ok(Self { config, vars, net, adam, loss, state: RunState::default(), out: out.to_path_buf(), device: device.clone(), quiet: false })
    }

    /// Continues the run in `out` (its checkpoint); `steps` replaces the target step count and `cadence` the
    /// sample and checkpoint intervals where given.
    pub fn resume(out: &Path, steps: Option<u64>, cadence: crate::train::trainer::Cadence, device: &Device) -> Result<Self> {
        let ckpt = Checkpoint::read(out, device)?;
        if ckpt.header.kind != CHECKPOINT_KIND {
            bail!("{} is a `{}` checkpoint, not a style-network training run", ckpt.path.display(), ckpt.header.kind);
        }
        let state_json = ckpt.header.state.clone().with_context(|| format!("{}: no training state", ckpt.path.display()))?;
        let (mut config, state): (StyleTrainConfig, RunState) =
            serde_json::from_value(state_json).with_context(|| format!("{}: malformed training state", ckpt.path.display()))?;
        if let Some(s) = steps {
            config.steps = s;
        }
        config.sample_every = cadence.sample_every.unwrap_or(config.sample_every);
        config.checkpoint_every = cadence.checkpoint_every.unwrap_or(config.checkpoint_every);
        let run_dir = if out.is_dir() { out.to_path_buf() } else { out.parent().unwrap_or(Path::new(".")).to_path_buf() };
        let mut trainer = Self::new(config, &run_dir, device)?;
        let source = ckpt.path.display().to_string();
        load_varmap(&trainer.vars, &ckpt.tensors, "net.", &source)?;
        trainer.adam.load_state(&ckpt.tensors, "opt.", state.step)?;
        trainer.state = state;
        Ok(trainer)
    }

    pub fn step(&self) -> u64 {
        self.state.step
    }

    fn save_checkpoint(&self) -> Result<()> {
        let header = Header {
            kind: CHECKPOINT_KIND.into(),
            model: serde_json::to_value(&self.config.net)?,
            state: Some(serde_json::to_value((&self.config, &self.state))?),
            note: None,
        };
        Checkpoint::write(&self.out.join(FILE_NAME), &header, &[("net", &self.vars)], self.adam.state_tensors("opt."), DType::F32)?;
        let mut meta = std::collections::HashMap::new();
        meta.insert(
            "ganime".into(),
            serde_json::json!({"kind": CHECKPOINT_KIND, "net": self.config.net, "style": self.config.style_image, "step": self.state.step})
                .to_string(),
        );
        save_safetensors(&self.out.join(MODEL_FILE), &varmap_tensors(&self.vars, "", DType::F32)?, meta)
    }

    fn save_samples(&self, fixed: &Tensor) -> Result<()> {
        let y = self.net.forward(fixed)?;
        let images = (0..fixed.dim(0)?)
            .flat_map(|i| [fixed.narrow(0, i, 1), y.narrow(0, i, 1)])
            .map(|t| crate::io::image::tensor_to_image_in(&t?, crate::io::image::PixelRange::Byte))
            .collect::<Result<Vec<_>>>()?;
        save_image(&grid(&images, 2, 2)?, &self.out.join("samples").join(format!("step_{:07}.png", self.state.step)))
    }

    /// Trains to `config.steps`, writing `checkpoint.safetensors`, `style-net.safetensors`, `samples/` and
    /// `log.csv` / `loss.png` in the run folder.
    pub fn run(&mut self) -> Result<StyleTrainSummary> {
        let cfg = self.config.clone();
        std::fs::create_dir_all(self.out.join("samples")).with_context(|| format!("cannot create {}", self.out.display()))?;
        let dataset = open_dataset(&cfg.content_dir)?;
        let spec = ImageSpec { size: cfg.image_size, channels: 3, fit: Fit::CenterCrop };
        let mut loader = Loader::start(
            dataset.clone(),
            spec,
            LoaderConfig { batch_size: cfg.batch_size, seed: cfg.seed, flip: false, prefetch: 2 },
            self.state.epoch,
            self.state.batch,
        )?;
        // Fixed sample photos: the first two of the set.
        let fixed: Vec<f32> = (0..2.min(dataset.len())).map(|i| dataset.load(i, &spec)).collect::<Result<Vec<_>>>()?.concat();
        let n_fixed = fixed.len() / spec.sample_len();
        let fixed = ((Tensor::from_vec(fixed, (n_fixed, 3, spec.size, spec.size), &self.device)? + 1.0)? * 127.5)?;
        let log_path = self.out.join("log.csv");
        let mut log = StyleLog::open(&log_path, self.state.step)?;
        let bar = super::progress_bar(cfg.steps, self.state.step, self.quiet);
        let (started, seconds_before) = (Instant::now(), self.state.seconds);
        let mut last = StepLosses::default();
        while self.state.step < cfg.steps {
            let batch = loader.next_batch()?;
            let x = ((batch.to_tensor(&spec, &self.device)? + 1.0)? * 127.5)?;
            let y = self.net.forward(&x)?;
            let (total, parts) = self.loss.loss(&y, &x)?;
            if !parts.total.is_finite() {
                bail!(
                    "loss became {} at step {}; the last good checkpoint is {}",
                    parts.total,
                    self.state.step + 1,
                    self.out.join(FILE_NAME).display()
                );
            }
            self.adam.step(&total.backward()?)?;
            self.state.epoch = batch.epoch + (batch.index + 1) / batch.batches_per_epoch;
            self.state.batch = (batch.index + 1) % batch.batches_per_epoch;
            self.state.step += 1;
            self.state.seconds = seconds_before + started.elapsed().as_secs_f64();
            let (step, done) = (self.state.step, self.state.step == cfg.steps);
            log.append(step, batch.epoch, &parts, self.state.seconds)?;
            if step % cfg.sample_every.max(1) == 0 || done {
                self.save_samples(&fixed)?;
                log.plot(&self.out)?;
            }
            if step % cfg.checkpoint_every.max(1) == 0 || done {
                self.save_checkpoint()?;
            }
            bar.set_position(step);
            bar.set_message(format!("content {:.3e} style {:.3e} tv {:.3e}", parts.content, parts.style, parts.tv));
            last = parts;
        }
        bar.finish();
        Ok(StyleTrainSummary { steps: self.state.step, seconds: self.state.seconds, last, model: self.out.join(MODEL_FILE) })
    }
}

/// `log.csv`: step, epoch, content, style, tv, total, seconds; rows past a resume point are dropped.
struct StyleLog {
    path: PathBuf,
    rows: Vec<[f64; 7]>,
}

impl StyleLog {
    const HEADER: &'static str = "step,epoch,content,style,tv,total,seconds";

    fn open(path: &Path, resume_step: u64) -> Result<Self> {
        let mut rows = Vec::new();
        if resume_step > 0 && path.exists() {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            for line in text.lines().skip(1) {
                let v: Vec<f64> = line
                    .split(',')
                    .map(|s| s.parse::<f64>())
                    .collect::<std::result::Result<_, _>>()
                    .with_context(|| format!("malformed row in {}: {line}", path.display()))?;
                if v.len() == 7 && v[0] as u64 <= resume_step {
                    rows.push([v[0], v[1], v[2], v[3], v[4], v[5], v[6]]);
                }
            }
        }
        let log = Self { path: path.to_path_buf(), rows };
        crate::io::write_atomic(&log.path, |tmp| {
            let mut text = format!("{}\n", Self::HEADER);
            for r in &log.rows {
                text.push_str(&Self::line(r));
            }
            Ok(std::fs::write(tmp, text)?)
        })?;
        Ok(log)
    }

    fn line(r: &[f64; 7]) -> String {
        format!("{},{},{:e},{:e},{:e},{:e},{:.3}\n", r[0], r[1], r[2], r[3], r[4], r[5], r[6])
    }

    fn append(&mut self, step: u64, epoch: usize, l: &StepLosses, seconds: f64) -> Result<()> {
        let row = [step as f64, epoch as f64, l.content, l.style, l.tv, l.total, seconds];
        let mut f = std::fs::OpenOptions::new().append(true).open(&self.path).with_context(|| format!("cannot append to {}", self.path.display()))?;
        f.write_all(Self::line(&row).as_bytes())?;
        self.rows.push(row);
        Ok(())
    }

    fn plot(&self, dir: &Path) -> Result<()> {
        if self.rows.len() < 2 {
            return Ok(());
        }
        let x: Vec<f64> = self.rows.iter().map(|r| r[0]).collect();
        let log10 = |i: usize| self.rows.iter().map(|r| r[i].max(1e-30).log10()).collect::<Vec<_>>();
        crate::train::log::line_plot(
            &dir.join("loss.png"),
            "log10 loss",
            &x,
            &[("content", log10(2), plotters::style::RED), ("style", log10(3), plotters::style::BLUE), ("total", log10(5), plotters::style::BLACK)],
        )
    }
}
