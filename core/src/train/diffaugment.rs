//! Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
//! Training", `DiffAugment_pytorch.py`): the same random colour, translation and cutout are applied to every
//! image D sees, real and fake, in D's step and in G's. Because the ops are differentiable G still learns
//! through them, while D can no longer memorise the few thousand real images: it is what makes 7,140 faces
//! enough. Randomness comes from the run's generator, so a resumed run draws the same augmentations.

use anyhow::{bail, Result};
use candle_core::Tensor;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which transforms to apply, in the reference's order (colour, then translation, then cutout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffAugment {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

impl DiffAugment {
    /// A comma-separated policy, as the reference's `--DiffAugment color,translation,cutout`.
    pub fn parse(policy: &str) -> Result<Self> {
        let mut a = Self::default();
        for part in policy.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "color" | "colour" => a.color = true,
                "translation" => a.translation = true,
                "cutout" => a.cutout = true,
                other => bail!("unknown DiffAugment transform '{other}' in '{policy}': use color, translation and/or cutout"),
            }
        }
        if a == Self::default() {
            bail!("empty DiffAugment policy '{policy}': name at least one of color, translation, cutout");
        }
        Ok(a)
    }

    /// Augments a batch `[N, C, H, W]` in [-1, 1]; each image draws its own parameters from `rng`.
    pub fn apply(&self, x: &Tensor, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        if self.color {
            x = color(&x, rng)?;
        }
        if self.translation {
            x = translation(&x, 0.125, rng)?;
        }
        if self.cutout {
            x = cutout(&x, 0.5, rng)?;
        }
        Ok(x)
    }
}

/// One value per image, `[N, 1, 1, 1]`, from `f(u)` with `u ~ U(0, 1)`.
fn per_image(x: &Tensor, rng: &mut impl Rng, f: impl Fn(f32) -> f32) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    let v: Vec<f32> = (0..n).map(|_| f(rng.random::<f32>())).collect();
    Tensor::from_vec(v, (n, 1, 1, 1), x.device())?.to_dtype(x.dtype())
}

/// Brightness `+U(-0.5, 0.5)`, saturation `×U(0, 2)` around the pixel's channel mean, contrast `×U(0.5, 1.5)`
/// around the image mean (the reference's `rand_brightness`, `rand_saturation`, `rand_contrast`).
fn color(x: &Tensor, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
    let x = x.broadcast_add(&per_image(x, rng, |u| u - 0.5)?)?;
    let mean = x.mean_keepdim(1)?;
    let x = x.broadcast_sub(&mean)?.broadcast_mul(&per_image(&x, rng, |u| u * 2.0)?)?.broadcast_add(&mean)?;
    let mean = x.mean_keepdim(1)?.mean_keepdim(2)?.mean_keepdim(3)?;
    x.broadcast_sub(&mean)?.broadcast_mul(&per_image(&x, rng, |u| u + 0.5)?)?.broadcast_add(&mean)
}

/// Shifts each image by up to `ratio` of its size in x and y (integers in `[-s, s]`, `s = round(ratio·size)`),
/// filling with zeros.
fn translation(x: &Tensor, ratio: f64, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
    let (n, _, h, w) = x.dims4()?;
    let (sy, sx) = ((h as f64 * ratio + 0.5) as usize, (w as f64 * ratio + 0.5) as usize);
    if sy == 0 && sx == 0 {
        return Ok(x.clone());
    }
    let padded = x.pad_with_zeros(2, sy, sy)?.pad_with_zeros(3, sx, sx)?;
    let shifted = (0..n)
        .map(|i| {
            // Output pixel (r, c) of image i shows input pixel (r + dy, c + dx).
            let dy = rng.random_range(0..=2 * sy);
            let dx = rng.random_range(0..=2 * sx);
            padded.narrow(0, i, 1)?.narrow(2, dy, h)?.narrow(3, dx, w)
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::cat(&shifted, 0)
}

/// Zeroes one square per image of side `round(ratio·size)`, centred anywhere (clipped at the borders).
fn cutout(x: &Tensor, ratio: f64, rng: &mut impl Rng) -> candle_core::Result<Tensor> {
    let (n, _, h, w) = x.dims4()?;
    let (ch, cw) = ((h as f64 * ratio + 0.5) as usize, (w as f64 * ratio + 0.5) as usize);
    let mut mask = vec![1f32; n * h * w];
    for i in 0..n {
        // The reference's offsets: centre in [0, size + (1 - cut % 2)), box from centre - cut/2.
        let cy = rng.random_range(0..h + (1 - ch % 2)) as isize - (ch / 2) as isize;
        let cx = rng.random_range(0..w + (1 - cw % 2)) as isize - (cw / 2) as isize;
        for r in cy.max(0)..(cy + ch as isize).min(h as isize) {
            for c in cx.max(0)..(cx + cw as isize).min(w as isize) {
                mask[i * h * w + r as usize * w + c as usize] = 0.0;
            }
        }
    }
    let mask = Tensor::from_vec(mask, (n, 1, h, w), x.device())?.to_dtype(x.dtype())?;
    x.broadcast_mul(&mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ramp(n: usize, h: usize, w: usize) -> candle_core::Result<Tensor> {
        let v: Vec<f32> = (0..n * 3 * h * w).map(|i| ((i % 97) as f32 / 48.0) - 1.0).collect();
        Tensor::from_vec(v, (n, 3, h, w), &Device::Cpu)
    }

    #[test]
    fn parses_policies_and_refuses_unknown_names() {
        assert_eq!(DiffAugment::parse("color,translation,cutout").unwrap(), DiffAugment { color: true, translation: true, cutout: true });
        assert_eq!(DiffAugment::parse("translation").unwrap(), DiffAugment { translation: true, ..Default::default() });
        let err = DiffAugment::parse("color,flip").unwrap_err().to_string();
        assert!(err.contains("flip"), "{err}");
        assert!(DiffAugment::parse("").is_err());
    }

    #[test]
    fn translation_moves_content_by_at_most_an_eighth_and_fills_zeros() -> anyhow::Result<()> {
        // One bright pixel per image in the middle of 16×16: it lands within ±2 pixels, nothing else is lit.
        let (n, h, w) = (32, 16, 16);
        let mut v = vec![0f32; n * h * w];
        for i in 0..n {
            v[i * h * w + 8 * w + 8] = 1.0;
        }
        let x = Tensor::from_vec(v, (n, 1, h, w), &Device::Cpu)?;
        let y = translation(&x, 0.125, &mut ChaCha8Rng::seed_from_u64(1))?;
        let mut moved = std::collections::HashSet::new();
        for i in 0..n {
            let img: Vec<f32> = y.get(i)?.flatten_all()?.to_vec1()?;
            let lit: Vec<usize> = (0..h * w).filter(|&k| img[k] != 0.0).collect();
            assert_eq!(lit.len(), 1, "image {i}");
            let (r, c) = (lit[0] / w, lit[0] % w);
            assert!((6..=10).contains(&r) && (6..=10).contains(&c), "({r},{c})");
            moved.insert((r, c));
        }
        assert!(moved.len() > 5, "shifts vary: {moved:?}");
        Ok(())
    }

    #[test]
    fn cutout_zeroes_one_square_of_half_the_side() -> anyhow::Result<()> {
        let x = (Tensor::ones((16, 3, 8, 8), candle_core::DType::F32, &Device::Cpu)? * 0.5)?;
        let y = cutout(&x, 0.5, &mut ChaCha8Rng::seed_from_u64(2))?;
        let mut full = 0;
        for i in 0..16 {
            let zeros = y.get(i)?.get(0)?.flatten_all()?.to_vec1::<f32>()?.iter().filter(|&&v| v == 0.0).count();
            // A 4×4 box, clipped at the border: 1..=16 pixels, all channels alike.
            assert!((1..=16).contains(&zeros), "image {i}: {zeros}");
            full += usize::from(zeros == 16);
            assert_eq!(y.get(i)?.get(2)?.flatten_all()?.to_vec1::<f32>()?.iter().filter(|&&v| v == 0.0).count(), zeros);
        }
        assert!(full > 0);
        Ok(())
    }

    #[test]
    fn color_changes_each_image_and_gradients_flow_through_everything() -> anyhow::Result<()> {
        let x = Var::from_tensor(&ramp(4, 8, 8)?)?;
        let all = DiffAugment::parse("color,translation,cutout")?;
        let y = all.apply(x.as_tensor(), &mut ChaCha8Rng::seed_from_u64(3))?;
        assert_eq!(y.dims(), x.dims());
        let colour = color(x.as_tensor(), &mut ChaCha8Rng::seed_from_u64(3))?;
        for i in 0..4 {
            let d = (colour.get(i)? - x.as_tensor().get(i)?)?.abs()?.mean_all()?.to_scalar::<f32>()?;
            assert!(d > 1e-3, "image {i} unchanged by colour");
        }
        let grads = y.sqr()?.sum_all()?.backward()?;
        let g = grads.get(x.as_tensor()).expect("gradient reaches the input");
        assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
        // The same generator state gives the same augmentation (exact resume).
        let again = all.apply(x.as_tensor(), &mut ChaCha8Rng::seed_from_u64(3))?;
        assert_eq!((y - again)?.abs()?.max_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}
