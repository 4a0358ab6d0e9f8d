//! SLIC superpixels (Achanta et al. 2012, as `skimage.segmentation.slic` runs them: CIELAB colour, grid seeds,
//! search windows of ±2S around each seed; without skimage's Gaussian pre-blur and its final merging of
//! disconnected fragments, which change little for a mean-colour picture) and the picture they make when every
//! superpixel takes its mean colour: the
//! "structure representation" of White-box Cartoonization (Wang & Yu 2020, `simple_superpixel`). Pulling a
//! stylisation's VGG features toward those of its own flattened copy rewards flat, cel-shaded regions with
//! sharp borders, which an adversarial term alone learns slowly.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

/// How a picture is cut into superpixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slic {
    /// Pixels per superpixel (White-box: 200 segments on 256 × 256, ~330 px each).
    pub pixels_per_segment: usize,
    /// Weight of distance in the grid's units against CIELAB distance (skimage's `compactness`, 10).
    pub compactness: f32,
    pub iterations: usize,
}

impl Default for Slic {
    fn default() -> Self {
        Self { pixels_per_segment: 330, compactness: 10.0, iterations: 10 }
    }
}

/// sRGB in [0, 1] to CIELAB (D65).
fn lab(rgb: [f32; 3]) -> [f32; 3] {
    let linear = rgb.map(|c| if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) });
    let [r, g, b] = linear;
    let xyz = [
        (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / 0.950_47,
        0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b,
        (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / 1.088_83,
    ];
    let f = xyz.map(|t| if t > 0.008_856 { t.cbrt() } else { 7.787 * t + 16.0 / 116.0 });
    [116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])]
}

impl Slic {
    /// The superpixel label of each pixel of one planar RGB picture (`3 × h × w` values in [0, 1]), row major.
    /// Labels are the indices of the grid seeds; a seed that loses all its pixels leaves its label unused.
    pub fn labels(&self, rgb: &[f32], h: usize, w: usize) -> Vec<u32> {
        let plane = h * w;
        assert_eq!(rgb.len(), 3 * plane, "SLIC expects 3 × {h} × {w} values");
        let pixels: Vec<[f32; 3]> = (0..plane).map(|i| lab([rgb[i], rgb[plane + i], rgb[2 * plane + i]])).collect();
        let segments = (plane / self.pixels_per_segment.max(1)).max(1);
        let step = ((plane as f32 / segments as f32).sqrt()).max(1.0);
        // Seeds on a regular grid, at the centres of its cells: [y, x, L, a, b].
        let (rows, cols) = (((h as f32 / step).round() as usize).max(1), ((w as f32 / step).round() as usize).max(1));
        let mut centres: Vec<[f32; 5]> = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                let y = ((r as f32 + 0.5) * h as f32 / rows as f32) as usize;
                let x = ((c as f32 + 0.5) * w as f32 / cols as f32) as usize;
                let p = pixels[y.min(h - 1) * w + x.min(w - 1)];
                centres.push([y as f32, x as f32, p[0], p[1], p[2]]);
            }
        }
        let spatial = (self.compactness / step).powi(2);
        let window = (2.0 * step).ceil() as isize;
        let mut labels = vec![0u32; plane];
        let mut best = vec![f32::INFINITY; plane];
        for _ in 0..self.iterations {
            best.fill(f32::INFINITY);
            for (k, c) in centres.iter().enumerate() {
                let (cy, cx) = (c[0].round() as isize, c[1].round() as isize);
                for y in (cy - window).max(0)..(cy + window + 1).min(h as isize) {
                    for x in (cx - window).max(0)..(cx + window + 1).min(w as isize) {
                        let i = y as usize * w + x as usize;
                        let p = pixels[i];
                        let colour = (p[0] - c[2]).powi(2) + (p[1] - c[3]).powi(2) + (p[2] - c[4]).powi(2);
                        let place = (y as f32 - c[0]).powi(2) + (x as f32 - c[1]).powi(2);
                        let d = colour + spatial * place;
                        if d < best[i] {
                            best[i] = d;
                            labels[i] = k as u32;
                        }
                    }
                }
            }
            // Each seed moves to the mean place and colour of its pixels (an empty one stays).
            let mut sums = vec![[0f64; 6]; centres.len()];
            for (i, &l) in labels.iter().enumerate() {
                let (s, p) = (&mut sums[l as usize], pixels[i]);
                let v = [(i / w) as f64, (i % w) as f64, p[0] as f64, p[1] as f64, p[2] as f64, 1.0];
                s.iter_mut().zip(v).for_each(|(a, b)| *a += b);
            }
            for (c, s) in centres.iter_mut().zip(&sums) {
                if s[5] > 0.0 {
                    *c = [0, 1, 2, 3, 4].map(|j| (s[j] / s[5]) as f32);
                }
            }
        }
        labels
    }

    /// Each superpixel of one planar RGB picture painted with its mean colour (White-box's `label2rgb(...,
    /// kind='avg')`).
    pub fn flatten(&self, rgb: &[f32], h: usize, w: usize) -> Vec<f32> {
        let plane = h * w;
        let labels = self.labels(rgb, h, w);
        let n = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        let mut sums = vec![[0f64; 4]; n];
        for (i, &l) in labels.iter().enumerate() {
            let s = &mut sums[l as usize];
            for c in 0..3 {
                s[c] += rgb[c * plane + i] as f64;
            }
            s[3] += 1.0;
        }
        let mut out = vec![0f32; 3 * plane];
        for (i, &l) in labels.iter().enumerate() {
            let s = sums[l as usize];
            for c in 0..3 {
                out[c * plane + i] = (s[c] / s[3]) as f32;
            }
        }
        out
    }

    /// [`Slic::flatten`] of each picture of `[N, 3, H, W]` in [-1, 1] (no gradient flows through it).
    pub fn flatten_batch(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        if c != 3 {
            candle_core::bail!("superpixels need RGB pictures, got {c} channels");
        }
        let values: Vec<f32> = ((x.detach().to_dtype(candle_core::DType::F32)? + 1.0)? * 0.5)?.flatten_all()?.to_vec1()?;
        let size = 3 * h * w;
        let flat: Vec<f32> = values.par_chunks(size).flat_map_iter(|picture| self.flatten(picture, h, w)).collect();
        let flat = Tensor::from_vec(flat, (n, c, h, w), x.device())?;
        (flat * 2.0)? - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A picture of four flat quadrants plus noise: superpixels follow the quadrant borders (no superpixel
    /// straddles two quadrants), and flattening removes the noise inside them.
    #[test]
    fn superpixels_follow_colour_edges_and_flatten_noise() {
        let (h, w) = (32, 32);
        let quadrant = |y: usize, x: usize| [[0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.1, 0.2, 0.9], [0.9, 0.9, 0.2]][(y / 16) * 2 + x / 16];
        let mut rgb = vec![0f32; 3 * h * w];
        let mut noise = 0x2545_f491u32;
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    rgb[c * h * w + y * w + x] = quadrant(y, x)[c] + (noise % 1000) as f32 / 1000.0 * 0.08 - 0.04;
                }
            }
        }
        let slic = Slic { pixels_per_segment: 64, ..Slic::default() };
        let labels = slic.labels(&rgb, h, w);
        let mut quadrant_of = std::collections::HashMap::new();
        for y in 0..h {
            for x in 0..w {
                let q = (y / 16) * 2 + x / 16;
                assert_eq!(*quadrant_of.entry(labels[y * w + x]).or_insert(q), q, "superpixel {} straddles quadrants", labels[y * w + x]);
            }
        }
        assert!(quadrant_of.len() >= 8, "{} superpixels for 16 seeds", quadrant_of.len());
        let flat = slic.flatten(&rgb, h, w);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let (f, want) = (flat[c * h * w + y * w + x], quadrant(y, x)[c]);
                    assert!((f - want).abs() < 0.015, "flattened {f} at ({y}, {x}, {c}), quadrant colour {want}");
                }
            }
        }
    }

    /// The batch version flattens each picture on its own, in [-1, 1], and leaves a flat picture as it is.
    #[test]
    fn batch_flattening_keeps_flat_pictures_and_shapes() -> Result<()> {
        let flat = Tensor::full(0.25f32, (2, 3, 20, 24), &Device::Cpu)?;
        let out = Slic::default().flatten_batch(&flat)?;
        assert_eq!(out.dims(), &[2, 3, 20, 24]);
        assert!(crate::nn::gradcheck::max_diff(&out, &flat) < 1e-6);
        let noisy = crate::nn::gradcheck::seeded(&[2, 3, 20, 24], 5)?.to_dtype(candle_core::DType::F32)?.tanh()?;
        let out = Slic { pixels_per_segment: 40, ..Slic::default() }.flatten_batch(&noisy)?;
        // Mean colours cannot leave the range, and flattening lowers the variance.
        let (lo, hi) = (out.min_all()?.to_scalar::<f32>()?, out.max_all()?.to_scalar::<f32>()?);
        assert!(lo >= -1.0 - 1e-6 && hi <= 1.0 + 1e-6);
        let var = |t: &Tensor| -> Result<f32> { t.broadcast_sub(&t.mean_all()?)?.sqr()?.mean_all()?.to_scalar::<f32>() };
        assert!(var(&out)? < 0.8 * var(&noisy)?);
        Ok(())
    }
}
