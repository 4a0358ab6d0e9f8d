//! The model files compiled into the binary (from `models/` at the repository root), in one place: the
//! filters (`filters::builtin`), the generator side (`generate::builtin`) and the catalog (`models list`) all
//! read them from here. Provenance and licences: `models/README.md`.

/// Dumoulin et al.'s 26-style conditional-instance-norm network (f32).
pub static MULTISTYLE26: &[u8] = include_bytes!("../../models/multistyle26.safetensors");
/// ml5's TensorFlow fast-style transformer "matta" (f16).
pub static MATTA: &[u8] = include_bytes!("../../models/matta.safetensors");
/// ganime's real-time student of matta (`ganime distill --student transformer-net`, f16; `models/README.md`).
pub static MATTA_LIVE: &[u8] = include_bytes!("../../models/matta-live.safetensors");
/// Magenta's arbitrary-style predictor and transformer (int8 ONNX).
pub static MAGENTA_PREDICT: &[u8] = include_bytes!("../../models/magenta_arbitrary_predict.onnx");
pub static MAGENTA_TRANSFORM: &[u8] = include_bytes!("../../models/magenta_arbitrary_transform.onnx");
/// ganime's own anime-face generator, attribute classifier and TL-GAN axes.
pub static ANIME_FACES: &[u8] = include_bytes!("../../models/anime-faces-dcgan.safetensors");
pub static CLASSIFIER: &[u8] = include_bytes!("../../models/anime-faces-classifier.safetensors");
pub static AXES: &[u8] = include_bytes!("../../models/anime-faces-axes.safetensors");

/// The learned 2× upscaler for generated characters (`ganime train upscaler`; see `models/README.md`), when
/// this build ships one: it is shipped only if it measured better than Lanczos on held-out anime pictures.
pub static ANIME_UPSCALER: Option<&[u8]> = Some(include_bytes!("../../models/anime-upscaler-2x.safetensors"));
