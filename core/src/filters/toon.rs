//! The built-in cartoon filter (no model): edge-preserving smoothing, luminance quantisation into flat bands, and
//! dark outlines. Fast enough for live video on a CPU: the smoothing runs at half resolution, every pass is
//! parallel over rows (rayon), and the per-pixel work is table lookups and a handful of multiply-adds.

use crate::filter::Filter;
use anyhow::{bail, Result};
use image::RgbImage;
use rayon::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub struct ToonParams {
    /// Number of luminance bands (>= 2).
    pub levels: u32,
    /// Bilateral smoothing passes (at half resolution).
    pub smoothing_passes: usize,
    /// Range sigma of the bilateral filter (0..255 scale): colour differences well above it are edges to keep.
    pub range_sigma: f32,
    /// Gradient magnitude (0..255 scale, Sobel / 4) where outlines start.
    pub edge_threshold: f32,
    /// How dark outlines get: 0 none, 1 black.
    pub edge_darkness: f32,
}

impl Default for ToonParams {
    fn default() -> Self {
        ToonParams { levels: 8, smoothing_passes: 2, range_sigma: 24.0, edge_threshold: 10.0, edge_darkness: 0.85 }
    }
}

#[derive(Default)]
pub struct Toon {
    params: ToonParams,
}

impl Toon {
    pub fn new(params: ToonParams) -> Result<Self> {
        if params.levels < 2 || params.levels > 64 {
            bail!("toon: levels must be 2..=64, got {}", params.levels);
        }
        if !(params.range_sigma > 0.0) || !(params.edge_threshold > 0.0) || !(0.0..=1.0).contains(&params.edge_darkness) {
            bail!("toon: range_sigma and edge_threshold must be > 0 and edge_darkness in [0, 1]: {params:?}");
        }
        Ok(Toon { params })
    }
}

impl Filter for Toon {
    fn name(&self) -> String {
        "toon".into()
    }

    fn apply(&self, frame: &RgbImage) -> Result<RgbImage> {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        if w == 0 || h == 0 {
            return Ok(frame.clone());
        }
        let p = &self.params;
        let full = Planar::from_image(frame);
        // Very small images are smoothed at full size; halving them would leave nothing to smooth.
        let half = w >= 16 && h >= 16;
        let mut smooth = if half { full.half() } else { full };
        let lut = BilateralLut::new(p.range_sigma);
        for _ in 0..p.smoothing_passes {
            smooth = lut.pass(&smooth);
        }
        let smooth = if half { smooth.upsample(w, h) } else { smooth };
        let luma = smooth.luma();
        let edges = sobel_magnitude(&luma, w, h);
        let step = 255.0 / p.levels as f32;
        let (t, dark) = (p.edge_threshold, p.edge_darkness);
        let mut out = vec![0u8; w * h * 3];
        out.par_chunks_mut(w * 3).enumerate().for_each(|(y, row)| {
            for x in 0..w {
                let i = y * w + x;
                // Shift the colour so that its luminance lands in the middle of its band: flat shading, same hue.
                let yq = ((luma[i] / step).floor().min(p.levels as f32 - 1.0) + 0.5) * step;
                let shift = yq - luma[i];
                // Outlines fade in over [t, 2t] of gradient magnitude so they do not shimmer on/off.
                let ink = ((edges[i] - t) / t).clamp(0.0, 1.0) * dark;
                let keep = 1.0 - ink;
                for k in 0..3 {
                    row[x * 3 + k] = ((smooth.c[k][i] + shift) * keep).round().clamp(0.0, 255.0) as u8;
                }
            }
        });
        Ok(RgbImage::from_raw(w as u32, h as u32, out).expect("buffer has the frame's size"))
    }
}

/// An image as three f32 planes (0..255), the layout the passes below read fastest.
struct Planar {
    w: usize,
    h: usize,
    c: [Vec<f32>; 3],
}

impl Planar {
    fn from_image(img: &RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let raw = img.as_raw();
        let c = std::array::from_fn(|k| raw.iter().skip(k).step_by(3).map(|&v| v as f32).collect());
        Planar { w, h, c }
    }

    /// 2x2 box downscale (a trailing odd row/column is left out; the upsample covers it again).
    fn half(&self) -> Self {
        let (w2, h2) = (self.w / 2, self.h / 2);
        let c = std::array::from_fn(|k| {
            let src = &self.c[k];
            let mut dst = vec![0f32; w2 * h2];
            dst.par_chunks_mut(w2).enumerate().for_each(|(y, row)| {
                for (x, o) in row.iter_mut().enumerate() {
                    let (a, b) = ((2 * y) * self.w + 2 * x, (2 * y + 1) * self.w + 2 * x);
                    *o = 0.25 * (src[a] + src[a + 1] + src[b] + src[b + 1]);
                }
            });
            dst
        });
        Planar { w: w2, h: h2, c }
    }

    /// Bilinear upsample to `w x h` (pixel-centre aligned, like `align_corners=False`).
    fn upsample(&self, w: usize, h: usize) -> Self {
        let (sx, sy) = (self.w as f32 / w as f32, self.h as f32 / h as f32);
        let coord = |o: usize, s: f32, n: usize| {
            let f = ((o as f32 + 0.5) * s - 0.5).clamp(0.0, (n - 1) as f32);
            let i0 = f.floor() as usize;
            (i0, (i0 + 1).min(n - 1), f - i0 as f32)
        };
        let xs: Vec<_> = (0..w).map(|x| coord(x, sx, self.w)).collect();
        let c = std::array::from_fn(|k| {
            let src = &self.c[k];
            let mut dst = vec![0f32; w * h];
            dst.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
                let (y0, y1, fy) = coord(y, sy, self.h);
                let (r0, r1) = (&src[y0 * self.w..][..self.w], &src[y1 * self.w..][..self.w]);
                for (o, &(x0, x1, fx)) in row.iter_mut().zip(&xs) {
                    let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                    let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
                    *o = top + (bottom - top) * fy;
                }
            });
            dst
        });
        Planar { w, h, c }
    }

    fn luma(&self) -> Vec<f32> {
        (0..self.w * self.h).into_par_iter().map(|i| 0.299 * self.c[0][i] + 0.587 * self.c[1][i] + 0.114 * self.c[2][i]).collect()
    }
}

/// Weights of a 5x5 bilateral filter: spatial Gaussian (sigma 1.5 px) times a range Gaussian of the summed
/// absolute colour difference, looked up in a table instead of calling `exp` per tap.
struct BilateralLut {
    spatial: [f32; 25],
    range: Vec<f32>,
}

impl BilateralLut {
    const R: isize = 2;

    fn new(range_sigma: f32) -> Self {
        let spatial = std::array::from_fn(|i| {
            let (dx, dy) = ((i % 5) as f32 - 2.0, (i / 5) as f32 - 2.0);
            (-(dx * dx + dy * dy) / (2.0 * 1.5 * 1.5)).exp()
        });
        // Index: sum of |dr| + |dg| + |db|, 0..=765.
        let range = (0..=765).map(|d| (-(d as f32).powi(2) / (2.0 * (3.0 * range_sigma).powi(2))).exp()).collect();
        BilateralLut { spatial, range }
    }

    fn pass(&self, src: &Planar) -> Planar {
        let (w, h) = (src.w, src.h);
        let mut out: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0f32; w * h]);
        let [o0, o1, o2] = &mut out;
        o0.par_chunks_mut(w).zip(o1.par_chunks_mut(w)).zip(o2.par_chunks_mut(w)).enumerate().for_each(|(y, ((r0, r1), r2))| {
            // The 5 source rows of each channel (clamped at the border: replicate), sliced once per row.
            let rows: [[&[f32]; 5]; 3] = std::array::from_fn(|k| {
                std::array::from_fn(|t| {
                    let yy = (y as isize + t as isize - Self::R).clamp(0, h as isize - 1) as usize;
                    &src.c[k][yy * w..][..w]
                })
            });
            for x in 0..w {
                let xs: [usize; 5] = std::array::from_fn(|t| (x as isize + t as isize - Self::R).clamp(0, w as isize - 1) as usize);
                let centre = [rows[0][2][x], rows[1][2][x], rows[2][2][x]];
                let (mut acc, mut norm) = ([0f32; 3], 0f32);
                for ty in 0..5 {
                    let (a, b, c) = (rows[0][ty], rows[1][ty], rows[2][ty]);
                    for (tx, &j) in xs.iter().enumerate() {
                        let v = [a[j], b[j], c[j]];
                        let d = (v[0] - centre[0]).abs() + (v[1] - centre[1]).abs() + (v[2] - centre[2]).abs();
                        let wt = self.spatial[ty * 5 + tx] * self.range[(d as usize).min(765)];
                        acc[0] += wt * v[0];
                        acc[1] += wt * v[1];
                        acc[2] += wt * v[2];
                        norm += wt;
                    }
                }
                r0[x] = acc[0] / norm;
                r1[x] = acc[1] / norm;
                r2[x] = acc[2] / norm;
            }
        });
        Planar { w, h, c: out }
    }
}

/// |Sobel x| + |Sobel y| of the luminance, divided by 4 so that a step of `s` levels gives about `s`.
fn sobel_magnitude(luma: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let (ym, yp) = (y.saturating_sub(1), (y + 1).min(h - 1));
        let (a, b, c) = (&luma[ym * w..][..w], &luma[y * w..][..w], &luma[yp * w..][..w]);
        for x in 0..w {
            let (xm, xp) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let gx = (a[xp] + 2.0 * b[xp] + c[xp]) - (a[xm] + 2.0 * b[xm] + c[xm]);
            let gy = (c[xm] + 2.0 * c[x] + c[xp]) - (a[xm] + 2.0 * a[x] + a[xp]);
            row[x] = 0.25 * (gx.abs() + gy.abs());
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// A noisy two-colour image: left half blue-ish, right half orange, with +-8 noise.
    fn noisy_halves(w: u32, h: u32) -> RgbImage {
        let mut state = 12345u32;
        RgbImage::from_fn(w, h, |x, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = ((state >> 16) % 17) as i32 - 8;
            let base = if x < w / 2 { [40, 80, 160] } else { [230, 150, 60] };
            Rgb(base.map(|v: i32| (v + n).clamp(0, 255) as u8))
        })
    }

    #[test]
    fn flattens_noise_keeps_the_boundary_and_inks_it() -> Result<()> {
        let img = noisy_halves(64, 48);
        let out = Toon::default().apply(&img)?;
        assert_eq!(out.dimensions(), img.dimensions());
        // Inside each half the noise is gone: few distinct colours away from the boundary.
        let mut colours: Vec<_> = (4..28).flat_map(|x| (4..44).map(move |y| (x, y))).map(|(x, y)| out.get_pixel(x, y).0).collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() <= 4, "left half still noisy: {} colours", colours.len());
        // The hue of each side survives (blue stays blue, orange stays orange).
        let (l, r) = (out.get_pixel(10, 20), out.get_pixel(54, 20));
        assert!(l[2] > l[0] + 60 && r[0] > r[2] + 60, "{l:?} {r:?}");
        // A dark outline runs along the boundary.
        let boundary_luma = |y| {
            let p = out.get_pixel(32, y);
            p.0.iter().map(|&v| v as u32).sum::<u32>()
        };
        let mean_edge = (4..44).map(boundary_luma).sum::<u32>() / 40;
        assert!(mean_edge < 150, "no outline at the boundary: mean {mean_edge}");
        Ok(())
    }

    #[test]
    fn quantises_a_gradient_into_bands_and_handles_tiny_images() -> Result<()> {
        let ramp = RgbImage::from_fn(256, 32, |x, _| Rgb([x as u8; 3]));
        let params = ToonParams { levels: 4, edge_threshold: 200.0, ..ToonParams::default() };
        let out = Toon::new(params)?.apply(&ramp)?;
        let mut greys: Vec<u8> = (8..248).map(|x| out.get_pixel(x, 16)[0]).collect();
        greys.dedup();
        assert!(greys.len() <= 8, "{greys:?}");
        for tiny in [(1, 1), (3, 2), (15, 40)] {
            assert_eq!(Toon::default().apply(&RgbImage::new(tiny.0, tiny.1))?.dimensions(), tiny);
        }
        assert!(Toon::new(ToonParams { levels: 1, ..ToonParams::default() }).is_err());
        Ok(())
    }
}
