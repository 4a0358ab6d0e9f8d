//! Folder-per-class datasets (the Simpsons paper's character folders): which classes a run uses (`--class`,
//! `--min-class-size`) and a held-out part for evaluation (`--holdout`). The selection is stored with a run,
//! so `eval` finds the same held-out images.

use super::{open_dataset, Dataset, ImageSpec};
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Which images of a dataset a run uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSelection {
    /// Keep only these classes (first-level subfolders); empty: every class.
    #[serde(default)]
    pub classes: Vec<String>,
    /// Keep only classes with at least this many images.
    #[serde(default)]
    pub min_class_size: Option<usize>,
    /// Fraction of every kept class held out of training (the same images every time).
    #[serde(default)]
    pub holdout: Option<f64>,
}

/// Which side of the held-out split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Train,
    Holdout,
    /// Both (every image of the kept classes).
    All,
}

crate::named_values!(Part { Train => "train", Holdout => "holdout", All => "all" });

/// The seed of the held-out split: fixed, so a run, its resume and `eval` agree.
const HOLDOUT_SEED: u64 = 0x401d_0075;

impl DataSelection {
    pub fn is_everything(&self) -> bool {
        self.classes.is_empty() && self.min_class_size.is_none() && self.holdout.is_none()
    }

    fn validate(&self) -> Result<()> {
        if let Some(f) = self.holdout {
            if !(f > 0.0 && f < 1.0) {
                bail!("--holdout {f}: the held-out fraction must be between 0 and 1");
            }
        }
        if self.min_class_size == Some(0) {
            bail!("--min-class-size must be at least 1");
        }
        Ok(())
    }
}

/// Some images of another dataset, by index.
pub struct Subset {
    inner: Arc<dyn Dataset>,
    indices: Vec<usize>,
    what: String,
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn load(&self, index: usize, spec: &ImageSpec) -> Result<Vec<f32>> {
        self.inner.load(self.indices[index], spec)
    }
    fn describe(&self) -> String {
        format!("{} of {}", self.what, self.inner.describe())
    }
    fn name(&self, index: usize) -> Option<String> {
        self.inner.name(self.indices[index])
    }
}

/// The class of an image: its first-level folder under the dataset root.
pub fn class_of(name: &str) -> Option<&str> {
    name.split_once('/').map(|(class, _)| class)
}

/// A selected dataset: the images, the class of each, and what was kept and dropped.
pub struct Selected {
    pub data: Arc<dyn Dataset>,
    /// Class name of every image in `data` (empty strings when the selection uses no classes).
    pub classes: Vec<String>,
    /// Images per class before the split, kept and dropped.
    pub kept: BTreeMap<String, usize>,
    pub dropped: BTreeMap<String, usize>,
}

impl Selected {
    /// `kept 3 classes (>= 800 images): a 900, b 1200, …; dropped: …` for the log.
    pub fn report(&self) -> String {
        if let Some(n) = self.kept.get("").filter(|_| self.kept.len() == 1) {
            return format!("{n} images (no classes)");
        }
        let list = |m: &BTreeMap<String, usize>| m.iter().map(|(c, n)| format!("{c} {n}")).collect::<Vec<_>>().join(", ");
        let mut s = format!("kept {} class(es): {}", self.kept.len(), list(&self.kept));
        if !self.dropped.is_empty() {
            s.push_str(&format!("; dropped {}: {}", self.dropped.len(), list(&self.dropped)));
        }
        s
    }
}

/// Opens `path` and applies `selection`, returning `part` of it.
pub fn open_selected(path: &Path, selection: &DataSelection, part: Part) -> Result<Selected> {
    select(open_dataset(path)?, selection, part)
}

/// Applies `selection` to `data`, returning `part` of it.
pub fn select(data: Arc<dyn Dataset>, selection: &DataSelection, part: Part) -> Result<Selected> {
    selection.validate()?;
    let by_class = !selection.classes.is_empty() || selection.min_class_size.is_some();
    let names: Vec<String> = (0..data.len()).map(|i| data.name(i).unwrap_or_default()).collect();
    // Classes are the first-level folders when every picture is in one (labels for export even without a class
    // option); a class option on a folder with pictures at its top level is an error.
    let classes: Vec<String> = match names.iter().find(|n| class_of(n).is_none()) {
        None => names.iter().map(|n| class_of(n).unwrap_or_default().to_string()).collect(),
        Some(name) if by_class => {
            bail!("--class / --min-class-size need one subfolder per class; {} has `{name}` directly in it", data.describe())
        }
        Some(_) => vec![String::new(); names.len()],
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for c in &classes {
        *counts.entry(c.clone()).or_default() += 1;
    }
    for wanted in &selection.classes {
        if !counts.contains_key(wanted) {
            let known: Vec<&String> = counts.keys().collect();
            bail!("--class {wanted}: no such class folder in {} (classes: {known:?})", data.describe());
        }
    }
    let keep = |c: &str, n: usize| {
        (selection.classes.is_empty() || selection.classes.iter().any(|w| w == c)) && selection.min_class_size.is_none_or(|m| n >= m)
    };
    let (kept, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = counts.into_iter().partition(|(c, n)| keep(c, *n));
    if kept.is_empty() {
        bail!("no class of {} has at least {} images", data.describe(), selection.min_class_size.unwrap_or(0));
    }
    // Per kept class, a seeded shuffle of its images; the first round(f·n) are held out.
    let mut held_out = vec![false; names.len()];
    if let Some(f) = selection.holdout {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(HOLDOUT_SEED);
        for class in kept.keys() {
            let mut members: Vec<usize> = (0..names.len()).filter(|&i| &classes[i] == class).collect();
            members.shuffle(&mut rng);
            let n = ((members.len() as f64) * f).round() as usize;
            if n == 0 || n == members.len() {
                bail!("--holdout {f} leaves class `{class}` ({} images) with an empty training or held-out part", members.len());
            }
            for &i in &members[..n] {
                held_out[i] = true;
            }
        }
    }
    let indices: Vec<usize> = (0..names.len())
        .filter(|&i| kept.contains_key(&classes[i]))
        .filter(|&i| match part {
            Part::Train => !held_out[i],
            Part::Holdout => held_out[i],
            Part::All => true,
        })
        .collect();
    if part == Part::Holdout && selection.holdout.is_none() {
        bail!("this selection holds nothing out (no --holdout)");
    }
    let classes_out = indices.iter().map(|&i| classes[i].clone()).collect();
    let data: Arc<dyn Dataset> = if selection.is_everything() {
        data
    } else {
        let what = format!("{} {} image(s) of class(es) {}", indices.len(), part, kept.keys().cloned().collect::<Vec<_>>().join(","));
        Arc::new(Subset { inner: data, indices, what })
    };
    Ok(Selected { data, classes: classes_out, kept, dropped })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder with classes a (3 images), b (10) and c (6).
    fn classes() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (class, n) in [("a", 3), ("b", 10), ("c", 6)] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for i in 0..n {
                image::RgbImage::from_pixel(8, 8, image::Rgb([i as u8 * 20, 0, 0])).save(dir.path().join(class).join(format!("{i}.png"))).unwrap();
            }
        }
        dir
    }

    #[test]
    fn classes_min_size_and_a_stable_stratified_holdout() -> Result<()> {
        let dir = classes();
        let sel = DataSelection { min_class_size: Some(5), holdout: Some(0.2), ..Default::default() };
        let train = open_selected(dir.path(), &sel, Part::Train)?;
        let held = open_selected(dir.path(), &sel, Part::Holdout)?;
        assert_eq!(train.kept.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(train.dropped.get("a"), Some(&3));
        assert!(train.report().contains("dropped 1: a 3"), "{}", train.report());
        // round(0.2·10) + round(0.2·6) = 2 + 1 held out, the rest trained on; no image in both.
        assert_eq!((train.data.len(), held.data.len()), (13, 3));
        let names = |s: &Selected| (0..s.data.len()).map(|i| s.data.name(i).unwrap()).collect::<Vec<_>>();
        let (t, h) = (names(&train), names(&held));
        assert!(h.iter().all(|n| !t.contains(n)));
        assert_eq!(h, names(&open_selected(dir.path(), &sel, Part::Holdout)?), "the same images every time");
        assert_eq!(held.classes.iter().filter(|c| *c == "b").count(), 2);

        let one = open_selected(dir.path(), &DataSelection { classes: vec!["c".into()], ..Default::default() }, Part::All)?;
        assert_eq!(one.data.len(), 6);
        assert!(names(&one).iter().all(|n| n.starts_with("c/")));
        Ok(())
    }

    #[test]
    fn bad_selections_are_named() {
        let dir = classes();
        let err = |sel: DataSelection| open_selected(dir.path(), &sel, Part::Train).err().expect("refused").to_string();
        assert!(err(DataSelection { classes: vec!["zz".into()], ..Default::default() }).contains("--class zz"));
        assert!(err(DataSelection { min_class_size: Some(100), ..Default::default() }).contains("at least 100"));
        assert!(err(DataSelection { holdout: Some(1.5), ..Default::default() }).contains("--holdout 1.5"));
        assert!(err(DataSelection { holdout: Some(0.01), ..Default::default() }).contains("empty"));
        let flat = tempfile::tempdir().unwrap();
        image::RgbImage::new(4, 4).save(flat.path().join("x.png")).unwrap();
        let e = open_selected(flat.path(), &DataSelection { min_class_size: Some(1), ..Default::default() }, Part::Train).err().unwrap().to_string();
        assert!(e.contains("one subfolder per class"), "{e}");
    }
}
