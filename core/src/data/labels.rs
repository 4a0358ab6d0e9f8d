//! Per-image attribute labels from a CSV `file,<attr1>,<attr2>...`, for conditional models.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// Attribute values keyed by file name (relative to the dataset root, as `Dataset::name` returns).
pub struct Labels {
    /// Column names after `file`, in CSV order.
    pub attributes: Vec<String>,
    rows: HashMap<String, Vec<String>>,
}

impl Labels {
    /// Reads the CSV; errors name the file and, for bad rows, the line.
    pub fn read(path: &Path) -> Result<Self> {
        let shown = path.display();
        let mut reader =
            csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).with_context(|| format!("cannot open labels file {shown}"))?;
        let header = reader.headers().map_err(|e| anyhow!("{shown}: {e}"))?.clone();
        let first = header.get(0).map(|f| f.trim_start_matches('\u{feff}'));
        if first != Some("file") {
            bail!("{shown}: line 1: header must start with `file`, found {:?}", header.as_slice());
        }
        if header.len() < 2 {
            bail!("{shown}: line 1: no attribute columns after `file`");
        }
        let attributes = header.iter().skip(1).map(str::to_string).collect();
        let mut rows = HashMap::new();
        for record in reader.records() {
            // csv's own errors (e.g. a row with the wrong number of fields) already include the line.
            let record = record.map_err(|e| anyhow!("{shown}: {e}"))?;
            let line = record.position().map_or(0, |p| p.line());
            let file = &record[0];
            if file.is_empty() {
                bail!("{shown}: line {line}: empty file name");
            }
            let values = record.iter().skip(1).map(str::to_string).collect();
            if rows.insert(file.to_string(), values).is_some() {
                bail!("{shown}: line {line}: duplicate row for {file}");
            }
        }
        Ok(Self { attributes, rows })
    }

    /// The attribute values of `file`, in `attributes` order.
    pub fn get(&self, file: &str) -> Option<&[String]> {
        self.rows.get(file).map(Vec::as_slice)
    }

    /// Sorted distinct values of one attribute (empty for an unknown attribute); sorted so that class
    /// indices derived from them are stable.
    pub fn values(&self, attribute: &str) -> Vec<String> {
        let Some(col) = self.attributes.iter().position(|a| a == attribute) else {
            return Vec::new();
        };
        let distinct: BTreeSet<&String> = self.rows.values().map(|v| &v[col]).collect();
        distinct.into_iter().cloned().collect()
    }

    /// Number of labelled files.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;

    #[test]
    fn anime_faces_labels() {
        let Some(path) = shared_path("data/anime-faces/labels.csv") else { return };
        let labels = Labels::read(&path).unwrap();
        assert_eq!(labels.len(), 7140);
        assert_eq!(labels.attributes, ["hair", "eyes"]);
        assert_eq!(labels.values("hair").len(), 12);
        assert_eq!(labels.values("eyes").len(), 10);
        assert!(labels.values("nose").is_empty());
        assert_eq!(labels.get("000001.jpg").unwrap(), ["aqua", "aqua"]);
        assert!(labels.get("missing.jpg").is_none());
    }

    #[test]
    fn malformed_csv_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.csv");
        let read_err = |text: &str| {
            std::fs::write(&path, text).unwrap();
            format!("{:#}", Labels::read(&path).err().expect("should fail"))
        };
        let err = read_err("file,hair\na.jpg,red\nb.jpg,red,extra\n");
        assert!(err.contains("labels.csv") && err.contains("line: 3"), "{err}");
        let err = read_err("name,hair\na.jpg,red\n");
        assert!(err.contains("labels.csv") && err.contains("must start with `file`"), "{err}");
        let err = read_err("file,hair\na.jpg,red\na.jpg,blue\n");
        assert!(err.contains("line 3") && err.contains("duplicate"), "{err}");
        let err = read_err("");
        assert!(err.contains("labels.csv"), "{err}");
    }
}
