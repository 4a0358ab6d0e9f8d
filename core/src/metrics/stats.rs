//! The statistics behind `ganime eval`, on feature matrices (one row per image), in f64.
//!
//! Written by hand on nalgebra because no maintained Rust crate computes FID/KID/precision-recall; the formulas
//! follow the papers that define them (Heusel et al. 2017, Bińkowski et al. 2018, Kynkäänniemi et al. 2019).

use anyhow::{bail, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

/// Row-major features: `rows` images × `dim` values.
#[derive(Clone, Debug)]
pub struct Features {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f64>,
}

impl Features {
    pub fn new(rows: usize, dim: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * dim {
            bail!("feature matrix of {rows}×{dim} needs {} values, got {}", rows * dim, data.len());
        }
        Ok(Self { rows, dim, data })
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    fn matrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.rows, self.dim, &self.data)
    }

    /// A subset of rows.
    pub fn select(&self, idx: &[usize]) -> Features {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Features { rows: idx.len(), dim: self.dim, data }
    }
}

fn same_dim(a: &Features, b: &Features) -> Result<()> {
    if a.dim != b.dim {
        bail!("feature sets differ in width ({} vs {})", a.dim, b.dim);
    }
    Ok(())
}

fn mean_and_covariance(f: &Features) -> (DVector<f64>, DMatrix<f64>) {
    let m = f.matrix();
    let mean = DVector::from_iterator(f.dim, (0..f.dim).map(|j| m.column(j).mean()));
    let centered = DMatrix::from_fn(f.rows, f.dim, |i, j| m[(i, j)] - mean[j]);
    let cov = centered.transpose() * &centered / (f.rows as f64 - 1.0).max(1.0);
    (mean, cov)
}

/// Symmetric positive semi-definite square root (negative eigenvalues from rounding clamp to 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let eig = SymmetricEigen::new(sym);
    let d = DMatrix::from_diagonal(&eig.eigenvalues.map(|v| v.max(0.0).sqrt()));
    &eig.eigenvectors * d * eig.eigenvectors.transpose()
}

/// Fréchet distance between Gaussians fitted to the two sets:
/// ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½). The inner product is symmetric, so its square root is the
/// PSD one and tr((ΣaΣb)^½) = tr((Σa^½ Σb Σa^½)^½) with no complex arithmetic.
pub fn frechet_distance(a: &Features, b: &Features) -> Result<f64> {
    same_dim(a, b)?;
    if a.rows < 2 || b.rows < 2 {
        bail!("the Fréchet distance needs at least 2 images per set");
    }
    let (ma, ca) = mean_and_covariance(a);
    let (mb, cb) = mean_and_covariance(b);
    let sa = sqrt_psd(&ca);
    let cross = sqrt_psd(&(&sa * &cb * &sa));
    let d = (&ma - &mb).norm_squared() + ca.trace() + cb.trace() - 2.0 * cross.trace();
    Ok(d.max(0.0))
}

/// Kernel inception distance: unbiased MMD² with the cubic polynomial kernel k(x,y) = (x·y/d + 1)³, averaged
/// over `subsets` random subsets of `subset_size` images from each set; returns (mean, standard error).
/// With several subsets each holds at most half of the smaller set: subsets as large as the set would all be
/// the whole set, and the standard error would always read 0.
pub fn kernel_distance(a: &Features, b: &Features, subsets: usize, subset_size: usize, seed: u64) -> Result<(f64, f64)> {
    same_dim(a, b)?;
    let smaller = a.rows.min(b.rows);
    let m = subset_size.min(if subsets > 1 { smaller / 2 } else { smaller });
    if m < 2 {
        bail!("the kernel distance needs at least 2 images per set");
    }
    let kernel = |x: &[f64], y: &[f64]| (x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>() / a.dim as f64 + 1.0).powi(3);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets.max(1) {
        let mut ia: Vec<usize> = (0..a.rows).collect();
        let mut ib: Vec<usize> = (0..b.rows).collect();
        ia.shuffle(&mut rng);
        ib.shuffle(&mut rng);
        let (x, y) = (a.select(&ia[..m]), b.select(&ib[..m]));
        let (mut kxx, mut kyy, mut kxy) = (0.0, 0.0, 0.0);
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    kxx += kernel(x.row(i), x.row(j));
                    kyy += kernel(y.row(i), y.row(j));
                }
                kxy += kernel(x.row(i), y.row(j));
            }
        }
        let mf = m as f64;
        values.push((kxx + kyy) / (mf * (mf - 1.0)) - 2.0 * kxy / (mf * mf));
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    Ok((mean, (var / n).sqrt()))
}

fn distances(a: &Features, b: &Features) -> DMatrix<f64> {
    DMatrix::from_fn(a.rows, b.rows, |i, j| a.row(i).iter().zip(b.row(j)).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt())
}

/// Distance from each row to its k-th nearest other row of the same set.
fn knn_radii(f: &Features, k: usize) -> Vec<f64> {
    let d = distances(f, f);
    (0..f.rows)
        .map(|i| {
            let mut row: Vec<f64> = (0..f.rows).filter(|&j| j != i).map(|j| d[(i, j)]).collect();
            row.sort_by(f64::total_cmp);
            row[(k - 1).min(row.len() - 1)]
        })
        .collect()
}

/// Improved precision and recall (Kynkäänniemi et al.): precision = share of generated images inside the real
/// set's k-NN manifold (realism), recall = share of real images inside the generated set's (coverage).
pub fn precision_recall(real: &Features, fake: &Features, k: usize) -> Result<(f64, f64)> {
    same_dim(real, fake)?;
    if real.rows <= k || fake.rows <= k {
        bail!("precision/recall with k = {k} needs more than {k} images per set");
    }
    let inside = |manifold: &Features, probes: &Features| {
        let radii = knn_radii(manifold, k);
        let d = distances(probes, manifold);
        (0..probes.rows).filter(|&i| (0..manifold.rows).any(|j| d[(i, j)] <= radii[j])).count() as f64 / probes.rows as f64
    };
    Ok((inside(real, fake), inside(fake, real)))
}

#[derive(Clone, Debug, Serialize)]
pub struct Diversity {
    /// Mean pairwise feature distance of the generated set ÷ that of the real set (≈1 for a healthy generator).
    pub ratio: f64,
    /// Share of generated pairs closer than 10% of the real set's median pairwise distance.
    pub near_duplicate_pairs: f64,
    /// Mode collapse: diversity ratio under 0.25 or over half of the pairs near-duplicates.
    pub collapsed: bool,
}

fn pairwise(f: &Features) -> Vec<f64> {
    let d = distances(f, f);
    let mut v = Vec::with_capacity(f.rows * (f.rows - 1) / 2);
    for i in 0..f.rows {
        for j in i + 1..f.rows {
            v.push(d[(i, j)]);
        }
    }
    v
}

/// Diversity of the generated set relative to the real one, and the mode-collapse flag.
pub fn diversity(real: &Features, fake: &Features) -> Result<Diversity> {
    same_dim(real, fake)?;
    if real.rows < 2 || fake.rows < 2 {
        bail!("diversity needs at least 2 images per set");
    }
    let mut r = pairwise(real);
    let f = pairwise(fake);
    r.sort_by(f64::total_cmp);
    let median = r[r.len() / 2];
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ratio = mean(&f) / mean(&r).max(1e-12);
    let near = f.iter().filter(|&&d| d < 0.1 * median).count() as f64 / f.len() as f64;
    Ok(Diversity { ratio, near_duplicate_pairs: near, collapsed: ratio < 0.25 || near > 0.5 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::StandardNormal;

    fn gaussian(rows: usize, dim: usize, shift: f64, scale: f64, seed: u64) -> Features {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let data = (0..rows * dim).map(|_| shift + scale * rng.sample::<f64, _>(StandardNormal)).collect();
        Features::new(rows, dim, data).unwrap()
    }

    #[test]
    fn frechet_matches_the_closed_form_for_known_gaussians() {
        // Identical distributions: ≈ 0. Shift every coordinate by 1: ‖Δμ‖² = dim. Scale by 2 in 1-D:
        // σa² + σb² − 2σaσb = (2 − 1)² = 1.
        let a = gaussian(4000, 4, 0.0, 1.0, 1);
        let b = gaussian(4000, 4, 0.0, 1.0, 2);
        assert!(frechet_distance(&a, &b).unwrap() < 0.02);
        let c = gaussian(4000, 4, 1.0, 1.0, 3);
        assert!((frechet_distance(&a, &c).unwrap() - 4.0).abs() < 0.2);
        let d = gaussian(4000, 1, 0.0, 2.0, 4);
        let e = gaussian(4000, 1, 0.0, 1.0, 5);
        assert!((frechet_distance(&d, &e).unwrap() - 1.0).abs() < 0.1);
    }

    #[test]
    fn kernel_distance_is_unbiased_near_zero_and_grows_with_shift() {
        let a = gaussian(300, 8, 0.0, 1.0, 1);
        let b = gaussian(300, 8, 0.0, 1.0, 2);
        let c = gaussian(300, 8, 0.7, 1.0, 3);
        let (same, se) = kernel_distance(&a, &b, 10, 100, 0).unwrap();
        // Subsets asked for larger than the sets still differ from one another: the error is not a constant 0.
        let (_, se_small) = kernel_distance(&a, &b, 10, 1000, 0).unwrap();
        assert!(se_small > 0.1 * se, "standard error {se_small} (subsets of 100: {se}) with subsets larger than the sets");
        let (shifted, _) = kernel_distance(&a, &c, 10, 100, 0).unwrap();
        assert!(same.abs() < 3.0 * se + 0.05, "{same} ± {se}");
        assert!(shifted > 10.0 * same.abs().max(se), "{shifted} vs {same} ± {se}");
    }

    #[test]
    fn precision_recall_and_collapse() {
        let real = gaussian(200, 4, 0.0, 1.0, 1);
        let good = gaussian(200, 4, 0.0, 1.0, 2);
        let (p, r) = precision_recall(&real, &good, 3).unwrap();
        assert!(p > 0.8 && r > 0.8, "{p} {r}");
        // A generator stuck near one point: realistic (inside the real manifold) but no coverage, and collapsed.
        let stuck = gaussian(200, 4, 0.0, 0.01, 3);
        let (p, r) = precision_recall(&real, &stuck, 3).unwrap();
        assert!(p > 0.9 && r < 0.2, "{p} {r}");
        assert!(diversity(&real, &stuck).unwrap().collapsed);
        assert!(!diversity(&real, &good).unwrap().collapsed);
        assert!(frechet_distance(&real, &gaussian(3, 5, 0.0, 1.0, 1)).is_err());
    }
}
