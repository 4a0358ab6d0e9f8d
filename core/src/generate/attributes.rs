//! TL-GAN attribute control (Guan 2018, "transparent latent-space GAN"): train a classifier on labelled real
//! images, label many generated samples with it, regress each attribute value's probability on the latent to get
//! a direction per value, and move latents along those directions, orthogonalised against locked attributes so
//! that moving one attribute changes the others as little as possible.

use crate::data::{Dataset, Fit, ImageFolder, ImageSpec, Labels};
use crate::generate::{latents, Generator};
use crate::io::checkpoint::{Checkpoint, Header};
use crate::io::weights::{save_safetensors, varmap_tensors};
use crate::models::attribute_classifier::{Attribute, AttributeClassifier, ClassifierConfig};
use crate::nn::adam::{Adam, AdamParams};
use crate::nn::Mode;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

// ---------------------------------------------------------------------------------------------- classifier

pub struct ClassifierReport {
    pub train_images: usize,
    pub held_out: usize,
    /// Held-out accuracy per attribute (name, accuracy), and the majority-class baseline beside it.
    pub accuracy: Vec<(String, f64, f64)>,
}

/// Trains the attribute classifier on an image folder with a labels CSV; 10 % of the images (seeded) are held
/// out and the accuracy on them is reported.
pub fn train_classifier(
    data: &Path,
    labels_file: &Path,
    image_size: usize,
    width: usize,
    epochs: usize,
    seed: u64,
    device: &Device,
    log: &dyn Fn(&str),
) -> Result<(AttributeClassifier, ClassifierReport)> {
    let folder = ImageFolder::open(data)?;
    let labels = Labels::read(labels_file)?;
    let attributes: Vec<Attribute> = labels.attributes.iter().map(|a| Attribute { name: a.clone(), values: labels.values(a) }).collect();
    // Images with labels only; each label as a class index per attribute.
    let spec = ImageSpec { size: image_size, channels: 3, fit: Fit::CenterCrop };
    let items: Vec<(usize, Vec<u32>)> = (0..folder.len())
        .filter_map(|i| {
            let row = labels.get(&folder.name(i)?)?;
            let idx = attributes.iter().zip(row).map(|(a, v)| a.values.iter().position(|x| x == v).map(|p| p as u32)).collect::<Option<Vec<_>>>()?;
            Some((i, idx))
        })
        .collect();
    if items.len() < 20 {
        bail!("only {} images of {} have labels in {}; need at least 20", items.len(), data.display(), labels_file.display());
    }
    log(&format!("decoding {} labelled images at {image_size}x{image_size}", items.len()));
    let pixels: Vec<Option<Vec<f32>>> = items.par_iter().map(|(i, _)| folder.load(*i, &spec).ok()).collect();
    let mut samples: Vec<(Vec<f32>, Vec<u32>)> = items.into_iter().zip(pixels).filter_map(|((_, y), x)| Some((x?, y))).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    samples.shuffle(&mut rng);
    let held_out = (samples.len() / 10).max(1);
    let (test, train) = samples.split_at(held_out);

    let config = ClassifierConfig { image_size, width, attributes };
    let clf = AttributeClassifier::new(&config, seed, device)?;
    let mut opt = Adam::new(&clf.vars, AdamParams { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 })?;
    let batch = 64;
    let mut order: Vec<usize> = (0..train.len()).collect();
    for epoch in 0..epochs {
        order.shuffle(&mut rng);
        let mut total = 0.0;
        let mut steps = 0;
        for chunk in order.chunks(batch).filter(|c| c.len() == batch) {
            let flips: Vec<bool> = chunk.iter().map(|_| rng.random()).collect();
            let (x, ys) = stack(chunk.iter().map(|&i| &train[i]), &spec, Some(&flips), device)?;
            let logits = clf.forward(&x, Mode::Train { seed: rng.random() })?;
            let mut loss = Tensor::zeros((), DType::F32, device)?;
            for (l, y) in logits.iter().zip(&ys) {
                loss = (loss + candle_nn::loss::cross_entropy(l, y)?)?;
            }
            total += loss.to_scalar::<f32>()? as f64;
            steps += 1;
            opt.step(&loss.backward()?)?;
        }
        log(&format!("epoch {}/{epochs}: loss {:.3}", epoch + 1, total / steps.max(1) as f64));
    }
    let accuracy = evaluate(&clf, test, &spec, device)?;
    Ok((clf, ClassifierReport { train_images: train.len(), held_out, accuracy }))
}

/// Stacks samples into `[N, 3, S, S]` and one label tensor per attribute.
fn stack<'a>(
    items: impl Iterator<Item = &'a (Vec<f32>, Vec<u32>)>,
    spec: &ImageSpec,
    flips: Option<&[bool]>,
    device: &Device,
) -> Result<(Tensor, Vec<Tensor>)> {
    let mut xs = Vec::new();
    let mut ys: Vec<Vec<u32>> = Vec::new();
    let mut n = 0;
    for (i, (x, y)) in items.enumerate() {
        let mut x = x.clone();
        if flips.is_some_and(|f| f[i]) {
            crate::data::flip_horizontal(&mut x, spec);
        }
        xs.extend(x);
        if ys.is_empty() {
            ys = vec![Vec::new(); y.len()];
        }
        for (k, v) in y.iter().enumerate() {
            ys[k].push(*v);
        }
        n += 1;
    }
    let x = Tensor::from_vec(xs, (n, 3, spec.size, spec.size), device)?;
    let ys = ys.into_iter().map(|y| Tensor::from_vec(y, n, device)).collect::<candle_core::Result<Vec<_>>>()?;
    Ok((x, ys))
}

fn evaluate(clf: &AttributeClassifier, test: &[(Vec<f32>, Vec<u32>)], spec: &ImageSpec, device: &Device) -> Result<Vec<(String, f64, f64)>> {
    let k = clf.config.attributes.len();
    let mut correct = vec![0usize; k];
    let mut counts: Vec<HashMap<u32, usize>> = vec![HashMap::new(); k];
    for chunk in test.chunks(128) {
        let (x, ys) = stack(chunk.iter(), spec, None, device)?;
        let probs = clf.probabilities(&x)?;
        for a in 0..k {
            let pred: Vec<u32> = probs[a].argmax(1)?.to_vec1()?;
            let truth: Vec<u32> = ys[a].to_vec1()?;
            correct[a] += pred.iter().zip(&truth).filter(|(p, t)| p == t).count();
            for t in truth {
                *counts[a].entry(t).or_default() += 1;
            }
        }
    }
    Ok(clf
        .config
        .attributes
        .iter()
        .enumerate()
        .map(|(a, attr)| {
            let majority = counts[a].values().max().copied().unwrap_or(0);
            (attr.name.clone(), correct[a] as f64 / test.len() as f64, majority as f64 / test.len() as f64)
        })
        .collect())
}

pub fn save_classifier(clf: &AttributeClassifier, path: &Path, dtype: DType, note: &str) -> Result<()> {
    let header = Header { kind: "attribute-classifier".into(), model: serde_json::to_value(&clf.config)?, state: None, note: Some(note.into()) };
    let mut meta = HashMap::new();
    meta.insert("ganime".to_string(), serde_json::to_string(&header)?);
    save_safetensors(path, &varmap_tensors(&clf.vars, "", dtype)?, meta)
}

pub fn load_classifier(ckpt: &Checkpoint, device: &Device) -> Result<AttributeClassifier> {
    if ckpt.header.kind != "attribute-classifier" {
        bail!("{} holds a `{}` model, not an attribute classifier", ckpt.path.display(), ckpt.header.kind);
    }
    let config: ClassifierConfig =
        serde_json::from_value(ckpt.header.model.clone()).with_context(|| format!("{}: malformed classifier config", ckpt.path.display()))?;
    let clf = AttributeClassifier::new(&config, 0, device)?;
    crate::io::weights::load_varmap(&clf.vars, &ckpt.tensors, "", &ckpt.path.display().to_string())?;
    Ok(clf)
}

// ---------------------------------------------------------------------------------------------- axes

/// One latent direction per attribute value ("hair=blonde"), unit length, fit for one generator.
#[derive(Clone, Debug)]
pub struct AttributeAxes {
    pub info: AxesInfo,
    /// `[K, latent_dim]`, rows in the order of `info.names`.
    pub axes: Tensor,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AxesInfo {
    /// "attribute=value" per axis.
    pub names: Vec<String>,
    /// `Generator::identity()` of the generator the axes were fit for.
    pub generator: String,
    pub samples: usize,
    /// Per axis: how often a +step move raised the classifier's probability of the value, how often it made the
    /// value the prediction, and how often it changed another attribute's prediction (with other attributes locked).
    pub report: Vec<AxisReport>,
    /// How far sheet variations move at each tried strength, and the strength chosen from it (see
    /// [`measure_variations`]); absent in axes files fit before it was measured.
    #[serde(default)]
    pub variations: Vec<VariationReport>,
    #[serde(default)]
    pub variation_strength: Option<f64>,
}

/// One tried variation strength: the mean classifier-embedding distance between a character and its
/// variations, as a fraction of the mean distance between two unrelated characters, and how often a variation
/// has another predicted hair or eye colour.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VariationReport {
    pub strength: f64,
    pub distance_ratio: f64,
    pub attribute_changed: f64,
}

/// Variations should look like siblings: clearly different pictures of recognisably the same character. The
/// chosen strength is the smallest tried one whose variations are at least this far apart, as a fraction of
/// two unrelated characters' distance.
pub const VARIATION_DISTANCE_TARGET: f64 = 0.5;

/// The strengths [`measure_variations`] tries.
pub const VARIATION_STRENGTHS: [f64; 7] = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AxisReport {
    pub axis: String,
    pub raised: f64,
    pub became_prediction: f64,
    pub others_changed: f64,
}

pub(crate) fn attribute_of(name: &str) -> &str {
    name.split('=').next().unwrap_or(name)
}

impl AttributeAxes {
    pub fn index(&self, name: &str) -> Result<usize> {
        self.info.names.iter().position(|n| n == name).with_context(|| format!("no attribute axis `{name}`; known: {}", self.info.names.join(", ")))
    }

    /// The direction for `name`, with the axes of `locked` attributes projected out (Gram-Schmidt), unit length.
    pub fn direction(&self, name: &str, locked: &[String]) -> Result<Vec<f64>> {
        let rows: Vec<Vec<f32>> = self.axes.to_vec2()?;
        let mut d: Vec<f64> = rows[self.index(name)?].iter().map(|&x| x as f64).collect();
        let mut basis: Vec<Vec<f64>> = Vec::new();
        for (i, n) in self.info.names.iter().enumerate() {
            if !locked.iter().any(|l| l == attribute_of(n)) || attribute_of(n) == attribute_of(name) {
                continue;
            }
            let mut v: Vec<f64> = rows[i].iter().map(|&x| x as f64).collect();
            for b in &basis {
                let p = dot(&v, b);
                v.iter_mut().zip(b).for_each(|(x, y)| *x -= p * y);
            }
            let nv = dot(&v, &v).sqrt();
            if nv > 1e-6 {
                v.iter_mut().for_each(|x| *x /= nv);
                basis.push(v);
            }
        }
        for b in &basis {
            let p = dot(&d, b);
            d.iter_mut().zip(b).for_each(|(x, y)| *x -= p * y);
        }
        let n = dot(&d, &d).sqrt();
        if n < 1e-6 {
            bail!("the `{name}` axis lies in the span of the locked attributes; unlock some");
        }
        Ok(d.into_iter().map(|x| x / n).collect())
    }

    /// `z [N, dim]` moved by `amount` along each `(name, amount)`, other attributes locked by default.
    pub fn apply(&self, z: &Tensor, moves: &[(String, f64)], locked: Option<&[String]>) -> Result<Tensor> {
        let mut z = z.clone();
        for (name, amount) in moves {
            let default_lock: Vec<String> = self.attributes().into_iter().filter(|a| a != attribute_of(name)).collect();
            let d = self.direction(name, locked.unwrap_or(&default_lock))?;
            let d = Tensor::from_vec(d.iter().map(|&x| (x * amount) as f32).collect::<Vec<_>>(), (1, d.len()), z.device())?;
            z = z.broadcast_add(&d)?;
        }
        Ok(z)
    }

    pub fn attributes(&self) -> Vec<String> {
        let mut a: Vec<String> = self.info.names.iter().map(|n| attribute_of(n).to_string()).collect();
        a.dedup();
        a
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let header = Header { kind: "attribute-axes".into(), model: serde_json::to_value(&self.info)?, state: None, note: None };
        let mut meta = HashMap::new();
        meta.insert("ganime".to_string(), serde_json::to_string(&header)?);
        save_safetensors(path, &[("axes".to_string(), self.axes.to_device(&Device::Cpu)?)], meta)
    }

    pub fn from_checkpoint(ckpt: &Checkpoint, device: &Device) -> Result<Self> {
        if ckpt.header.kind != "attribute-axes" {
            bail!("{} holds a `{}` model, not attribute axes", ckpt.path.display(), ckpt.header.kind);
        }
        let info: AxesInfo =
            serde_json::from_value(ckpt.header.model.clone()).with_context(|| format!("{}: malformed axes header", ckpt.path.display()))?;
        let axes = ckpt.tensors.get("axes").with_context(|| format!("{}: no `axes` tensor", ckpt.path.display()))?.to_device(device)?;
        Ok(Self { info, axes })
    }
}

/// Axes for the generator `generator_identity`: from `path`, or the built-in ones when they were fit for this
/// very generator (`None` otherwise).
pub fn axes_for(path: Option<&Path>, generator_identity: &str, device: &Device) -> Result<Option<AttributeAxes>> {
    let axes = match path {
        Some(p) => AttributeAxes::from_checkpoint(&Checkpoint::read(p, device)?, device)?,
        None => super::builtin::axes(device)?,
    };
    if axes.info.generator != generator_identity {
        if let Some(p) = path {
            bail!("{} was fit for generator {}, not this one ({generator_identity}); run `ganime attributes fit`", p.display(), axes.info.generator);
        }
        return Ok(None);
    }
    Ok(Some(axes))
}

/// The classifier at `path`, or the built-in one.
pub fn classifier_from(path: Option<&Path>, device: &Device) -> Result<AttributeClassifier> {
    match path {
        Some(p) => load_classifier(&Checkpoint::read(p, device)?, device),
        None => super::builtin::classifier(device),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Generates `samples` images (seeded), labels them with `clf`, and regresses every attribute value's probability
/// on the latent (ridge least squares) to get one unit direction per value. Then measures each axis on 128 fresh
/// latents moved by `step` with the other attributes locked.
pub fn fit_axes(g: &dyn Generator, clf: &AttributeClassifier, samples: usize, seed: u64, step: f64, device: &Device) -> Result<AttributeAxes> {
    if samples < 2 * g.latent_dim() {
        bail!("--samples {samples} is too few to fit {}-dimensional directions (use at least {})", g.latent_dim(), 2 * g.latent_dim());
    }
    let z = g.latents(seed, samples, device)?;
    let probs = classify(g, clf, &z)?; // per attribute [N, values]
    let zs: Vec<Vec<f32>> = z.to_vec2()?;
    let dim = g.latent_dim();
    let zm = nalgebra::DMatrix::<f64>::from_fn(samples, dim, |i, j| zs[i][j] as f64);
    // (ZᵀZ + λI)⁻¹ Zᵀ is shared by every attribute value.
    let gram = zm.transpose() * &zm + nalgebra::DMatrix::<f64>::identity(dim, dim) * (samples as f64 * 1e-3);
    let chol = gram.cholesky().context("latent Gram matrix is not positive definite")?;
    let mut names = Vec::new();
    let mut rows = Vec::new();
    for (attr, p) in clf.config.attributes.iter().zip(&probs) {
        let p: Vec<Vec<f32>> = p.to_vec2()?;
        for (v, value) in attr.values.iter().enumerate() {
            let mean = p.iter().map(|r| r[v] as f64).sum::<f64>() / samples as f64;
            let y = nalgebra::DVector::<f64>::from_fn(samples, |i, _| p[i][v] as f64 - mean);
            let w = chol.solve(&(zm.transpose() * y));
            let n = w.norm().max(1e-12);
            rows.extend(w.iter().map(|x| (x / n) as f32));
            names.push(format!("{}={}", attr.name, value));
        }
    }
    let axes = Tensor::from_vec(rows, (names.len(), dim), device)?;
    let mut result = AttributeAxes {
        info: AxesInfo { names, generator: g.identity(), samples, report: Vec::new(), variations: Vec::new(), variation_strength: None },
        axes,
    };
    result.info.report = measure(g, clf, &result, seed.wrapping_add(1_000_003), step, device)?;
    let (variations, chosen) = measure_variations(g, clf, seed.wrapping_add(2_000_003), device)?;
    result.info.variations = variations;
    result.info.variation_strength = Some(chosen);
    Ok(result)
}

/// Measures sheet variations (a seed's latent plus `strength` × N(0, I)) at each of [`VARIATION_STRENGTHS`]: 64
/// characters with 4 variations each, distances in the attribute classifier's embedding. Returns the table
/// and the chosen strength (the first reaching [`VARIATION_DISTANCE_TARGET`], else the largest tried).
pub fn measure_variations(g: &dyn Generator, clf: &AttributeClassifier, seed: u64, device: &Device) -> Result<(Vec<VariationReport>, f64)> {
    let (n, per) = (64usize, 4usize);
    let dim = g.latent_dim();
    let base = g.latents(seed, n, device)?;
    // Each set of latents is generated once, then embedded and classified.
    let look = |z: &Tensor| -> Result<(Vec<Vec<f32>>, Vec<Vec<String>>)> {
        let images = g.generate(z)?;
        Ok((clf.embedding(&images)?.to_vec2()?, clf.predict(&images)?))
    };
    let (e0, p0) = look(&base)?;
    let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
    // Unrelated characters: each base against the next one.
    let unrelated = (0..n).map(|i| dist(&e0[i], &e0[(i + 1) % n])).sum::<f64>() / n as f64;
    let noise = latents(seed ^ 0x7a7a_7a7a, n * per, dim, device)?;
    let repeated = base.unsqueeze(1)?.broadcast_as((n, per, dim))?.reshape((n * per, dim))?;
    let mut table = Vec::new();
    for &strength in &VARIATION_STRENGTHS {
        let z = (&repeated + noise.affine(strength, 0.0)?)?;
        let (e, p) = look(&z)?;
        let mut d = 0.0;
        let mut changed = 0usize;
        for k in 0..n * per {
            d += dist(&e[k], &e0[k / per]);
            changed += usize::from(p[k] != p0[k / per]);
        }
        table.push(VariationReport {
            strength,
            distance_ratio: d / (n * per) as f64 / unrelated.max(1e-12),
            attribute_changed: changed as f64 / (n * per) as f64,
        });
    }
    let chosen = table.iter().find(|r| r.distance_ratio >= VARIATION_DISTANCE_TARGET).unwrap_or(table.last().unwrap()).strength;
    Ok((table, chosen))
}

pub(crate) fn classify(g: &dyn Generator, clf: &AttributeClassifier, z: &Tensor) -> Result<Vec<Tensor>> {
    let n = z.dim(0)?;
    let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); clf.config.attributes.len()];
    for start in (0..n).step_by(128) {
        let len = 128.min(n - start);
        let p = clf.probabilities(&g.generate(&z.narrow(0, start, len)?)?)?;
        for (a, t) in p.into_iter().enumerate() {
            parts[a].push(t);
        }
    }
    Ok(parts.iter().map(|p| Tensor::cat(p, 0)).collect::<candle_core::Result<Vec<_>>>()?)
}

fn measure(g: &dyn Generator, clf: &AttributeClassifier, axes: &AttributeAxes, seed: u64, step: f64, device: &Device) -> Result<Vec<AxisReport>> {
    let n = 128;
    let z = g.latents(seed, n, device)?;
    let before = classify(g, clf, &z)?;
    let before_pred: Vec<Vec<u32>> = before.iter().map(|p| p.argmax(D::Minus1)?.to_vec1()).collect::<candle_core::Result<_>>()?;
    let mut reports = Vec::new();
    for name in &axes.info.names {
        let attr = attribute_of(name);
        let a = clf.config.attributes.iter().position(|x| x.name == attr).context("axis attribute unknown to the classifier")?;
        let v = clf.config.attributes[a].values.iter().position(|x| name.ends_with(&format!("={x}"))).context("axis value unknown")?;
        let moved = axes.apply(&z, &[(name.clone(), step)], None)?;
        let after = classify(g, clf, &moved)?;
        let pb: Vec<Vec<f32>> = before[a].to_vec2()?;
        let pa: Vec<Vec<f32>> = after[a].to_vec2()?;
        let raised = (0..n).filter(|&i| pa[i][v] > pb[i][v]).count() as f64 / n as f64;
        reports.push(AxisReport {
            axis: name.clone(),
            raised,
            became_prediction: super::guide::became(&after[a], v)?,
            others_changed: super::guide::others_changed(&after, &before_pred, a)?,
        });
    }
    Ok(reports)
}

/// Parses `--set hair=blonde:+1.5` into ("hair=blonde", 1.5).
pub fn parse_move(s: &str) -> Result<(String, f64)> {
    let (name, amount) = s.rsplit_once(':').with_context(|| format!("--set {s}: expected ATTRIBUTE=VALUE:AMOUNT, e.g. hair=blonde:+1.5"))?;
    if !name.contains('=') {
        bail!("--set {s}: expected ATTRIBUTE=VALUE:AMOUNT, e.g. hair=blonde:+1.5");
    }
    let amount: f64 = amount.trim_start_matches('+').parse().with_context(|| format!("--set {s}: `{amount}` is not a number"))?;
    if !amount.is_finite() {
        bail!("--set {s}: the amount must be a finite number, not {amount}");
    }
    Ok((name.to_string(), amount))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_moves() {
        assert_eq!(parse_move("hair=blonde:+1.5").unwrap(), ("hair=blonde".into(), 1.5));
        assert_eq!(parse_move("eyes=red:-2").unwrap(), ("eyes=red".into(), -2.0));
        assert!(parse_move("hair:1").is_err());
        assert!(parse_move("hair=blonde:x").is_err());
        assert!(parse_move("hair=blonde:NaN").unwrap_err().to_string().contains("finite"));
        assert!(parse_move("hair=blonde:inf").is_err());
    }

    #[test]
    fn variation_distance_grows_with_strength_and_picks_the_first_reaching_the_target() -> Result<()> {
        let dev = Device::Cpu;
        let g = super::super::builtin::anime_faces(&dev)?;
        let clf = super::super::builtin::classifier(&dev)?;
        let (table, chosen) = measure_variations(g.as_ref(), &clf, 11, &dev)?;
        assert_eq!(table.iter().map(|r| r.strength).collect::<Vec<_>>(), VARIATION_STRENGTHS);
        for w in table.windows(2) {
            assert!(w[1].distance_ratio > w[0].distance_ratio, "{table:?}");
        }
        // Zero noise would be distance 0; the smallest step is already a visible but partial move.
        assert!(table[0].distance_ratio > 0.05 && table[0].distance_ratio < VARIATION_DISTANCE_TARGET, "{table:?}");
        let first = table.iter().find(|r| r.distance_ratio >= VARIATION_DISTANCE_TARGET).unwrap();
        assert_eq!(chosen, first.strength);
        Ok(())
    }

    #[test]
    fn locked_directions_are_orthogonal_to_locked_axes() -> Result<()> {
        let axes = Tensor::new(&[[1f32, 0., 0.], [0.6, 0.8, 0.], [0., 0.6, 0.8]], &Device::Cpu)?;
        let a = AttributeAxes {
            info: AxesInfo {
                names: vec!["hair=a".into(), "eyes=x".into(), "eyes=y".into()],
                generator: String::new(),
                samples: 0,
                report: vec![],
                variations: vec![],
                variation_strength: None,
            },
            axes,
        };
        let free = a.direction("eyes=x", &[])?;
        assert!((free[0] - 0.6).abs() < 1e-6);
        let locked = a.direction("eyes=x", &["hair".into()])?;
        assert!(locked[0].abs() < 1e-9 && (dot(&locked, &locked) - 1.0).abs() < 1e-9);
        // Locking its own attribute does nothing; unknown names are errors.
        assert_eq!(a.direction("eyes=x", &["eyes".into()])?, free);
        assert!(a.direction("hair=zzz", &[]).is_err());
        let z = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        let moved: Vec<Vec<f32>> = a.apply(&z, &[("eyes=x".into(), 2.0)], None)?.to_vec2()?;
        assert!(moved[1][0].abs() < 1e-6 && (moved[1][1] - 2.0).abs() < 1e-5);
        Ok(())
    }
}
