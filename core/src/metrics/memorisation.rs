//! Does a generator copy its training images? (The TL-GAN paper's stated limitation.) Each generated image's
//! nearest training image in feature space, compared with how close unseen real images come to the training
//! set: a generator that memorises lands much closer to its training images than new real pictures do.

use super::stats::Features;
use anyhow::{bail, Result};
use serde::Serialize;

/// One image's nearest training image.
#[derive(Clone, Debug, Serialize)]
pub struct Nearest {
    /// Index of the query image in its set.
    pub index: usize,
    /// Index of the nearest training image (in the training features).
    pub train_index: usize,
    pub distance: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MemorisationReport {
    /// Per generated image, sorted closest first.
    pub generated: Vec<Nearest>,
    /// Median distance from a generated image to its nearest training image …
    pub generated_median: f64,
    /// … and from a real image the generator did not train on to its nearest training image.
    pub real_median: f64,
    /// `generated_median / real_median`: about 1 for a generator that makes new pictures, well below 1 for one
    /// that reproduces its training images.
    pub score: f64,
    /// The 5th percentile of the real images' nearest distances: generated images closer than this are
    /// counted as near-copies.
    pub copy_threshold: f64,
    /// Fraction of generated images below `copy_threshold` (about 0.05 expected without memorisation).
    pub near_copy_fraction: f64,
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// For every row of `query`, the nearest row of `train` (Euclidean), skipping pairs `skip(query, train)` says
/// are the same picture.
pub fn nearest(train: &Features, query: &Features, skip: &dyn Fn(usize, usize) -> bool) -> Result<Vec<Nearest>> {
    if train.dim != query.dim {
        bail!("feature sizes differ: {} and {}", train.dim, query.dim);
    }
    if train.rows == 0 {
        bail!("no training images to compare with");
    }
    let mut out = Vec::with_capacity(query.rows);
    for q in 0..query.rows {
        let row = query.row(q);
        let best = (0..train.rows).filter(|&t| !skip(q, t)).map(|t| (t, squared_distance(row, train.row(t)))).min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((t, d)) = best {
            out.push(Nearest { index: q, train_index: t, distance: d.sqrt() });
        }
    }
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// The memorisation check. `same_real_image(real, train)` marks a real image that is also in the training
/// features (when the real set is the training folder itself), so it is not its own nearest neighbour.
pub fn memorisation(
    train: &Features,
    generated: &Features,
    real: &Features,
    same_real_image: &dyn Fn(usize, usize) -> bool,
) -> Result<MemorisationReport> {
    let mut generated_nn = nearest(train, generated, &|_, _| false)?;
    let real_nn = nearest(train, real, same_real_image)?;
    if real_nn.is_empty() || generated_nn.is_empty() {
        bail!("the memorisation check needs real and generated images");
    }
    let mut real_d: Vec<f64> = real_nn.iter().map(|n| n.distance).collect();
    real_d.sort_by(f64::total_cmp);
    let copy_threshold = real_d[(real_d.len() as f64 * 0.05) as usize];
    let real_median = median(real_d);
    let generated_median = median(generated_nn.iter().map(|n| n.distance).collect());
    let near = generated_nn.iter().filter(|n| n.distance < copy_threshold).count();
    generated_nn.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    Ok(MemorisationReport {
        near_copy_fraction: near as f64 / generated_nn.len() as f64,
        generated: generated_nn,
        generated_median,
        real_median,
        score: generated_median / real_median.max(1e-12),
        copy_threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(rows: usize, dim: usize, seed: u64) -> Features {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Features::new(rows, dim, (0..rows * dim).map(|_| rng.random::<f64>()).collect()).unwrap()
    }

    /// A "generator" that returns slightly perturbed training images scores far below 1 with most samples
    /// flagged; one that draws new samples from the same distribution scores about 1.
    #[test]
    fn copies_are_caught_and_new_samples_are_not() -> Result<()> {
        let (dim, n) = (16, 300);
        let train = random(n, dim, 1);
        let real = random(100, dim, 2);
        let fresh = random(100, dim, 3);
        let copies = Features::new(100, dim, (0..100).flat_map(|i| train.row(i * 3).iter().map(|x| x + 0.001).collect::<Vec<_>>()).collect())?;
        let none = |_: usize, _: usize| false;
        let honest = memorisation(&train, &fresh, &real, &none)?;
        assert!((0.8..1.25).contains(&honest.score), "new samples score {}", honest.score);
        assert!(honest.near_copy_fraction < 0.2, "{}", honest.near_copy_fraction);
        let copier = memorisation(&train, &copies, &real, &none)?;
        assert!(copier.score < 0.05, "copies score {}", copier.score);
        assert!(copier.near_copy_fraction > 0.95);
        assert_eq!(copier.generated[0].distance, copier.generated.iter().map(|n| n.distance).fold(f64::INFINITY, f64::min));
        assert_eq!(copier.generated.iter().find(|n| n.index == 5).unwrap().train_index, 15);
        // The real set being the training set itself: each real image skips itself.
        let itself = memorisation(&train, &fresh, &train, &|r, t| r == t)?;
        assert!(itself.real_median > 0.0);
        Ok(())
    }
}
