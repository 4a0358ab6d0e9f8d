//! The seed corpus, written by ganime's own writers (`ganime-fuzz --write-seeds fuzz/corpus`) so that the seeds
//! are real files of each format, a few KiB each. The `.pth` seeds come from PyTorch itself
//! (`fuzz/corpus/make_pth_seeds.py`).

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use ganime::onnx::proto::*;
use prost::Message;
use std::path::Path;

/// Writes every generated seed under `dir/TARGET/`.
pub fn write_all(dir: &Path) -> Result<()> {
    let write = |target: &str, name: &str, bytes: &[u8]| -> Result<()> {
        std::fs::create_dir_all(dir.join(target))?;
        std::fs::write(dir.join(target).join(name), bytes)?;
        Ok(())
    };
    let scratch = tempfile_dir(dir)?;

    // Safetensors weights with metadata, as `ganime export` writes them.
    let tensors = vec![
        ("conv.weight".to_string(), Tensor::arange(0f32, 54.0, &Device::Cpu)?.reshape((2, 3, 3, 3))?),
        ("conv.bias".to_string(), Tensor::new(&[0.5f32, -0.5], &Device::Cpu)?),
        ("steps".to_string(), Tensor::new(&[7i64], &Device::Cpu)?),
    ];
    let file = scratch.join("w.safetensors");
    ganime::io::weights::save_safetensors(&file, &tensors, [("note".to_string(), "fuzz seed".to_string())].into())?;
    write("safetensors", "weights.safetensors", &std::fs::read(&file)?)?;

    // A checkpoint of the smallest DCGAN generator (f16), as training writes it.
    let config = ganime::models::dcgan::DcganConfig {
        image_size: 16,
        nz: 4,
        ngf: 1,
        ..ganime::models::dcgan::DcganConfig::preset(ganime::models::dcgan::Preset::Radford64)
    };
    let g = ganime::models::dcgan::Generator::new(&config, 1, &Device::Cpu)?;
    let header = ganime::io::checkpoint::Header { kind: "dcgan".into(), model: serde_json::to_value(&config)?, state: None, note: None };
    let file = scratch.join("c.safetensors");
    ganime::io::checkpoint::Checkpoint::write(&file, &header, &[("G", &g.vars)], vec![], DType::F16)?;
    write("checkpoint", "dcgan16.safetensors", &std::fs::read(&file)?)?;

    // Y4M: a 4:2:0 stream of two 8x6 frames, and a 4:4:4 full-range one.
    let frame = image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, 200]));
    let mut w = ganime::io::y4m::Y4mWriter::new(Vec::new(), 8, 6, (30, 1))?;
    w.write_frame(&frame)?;
    w.write_frame(&frame)?;
    write("y4m", "c420.y4m", &w.into_inner())?;
    let mut full = b"YUV4MPEG2 W4 H2 F25:1 Ip A1:1 C444 XCOLORRANGE=FULL\nFRAME\n".to_vec();
    full.extend((0..24).map(|i| (i * 10) as u8));
    write("y4m", "c444.y4m", &full)?;

    // Filter specs and a filter list.
    write("filter-spec", "builtin.txt", b"toon size=32 strength=0.5\npassthrough smooth=0.3\n")?;
    write("filter-spec", "models.txt", b"matta size=64x48\nmultistyle26#3:0.5,12:0.5 strength=1\nstyle:missing.pth\n# a comment\n")?;

    // ONNX: input x[1,2,4,4] -> Conv(w, b, pads 1) -> Relu -> Mul(scale) -> y, with float and int64 initialisers.
    write("onnx", "conv-relu.onnx", &tiny_onnx().encode_to_vec())?;

    // The plug-in: `SPEC \0 ROLE W H FORMAT STRENGTH …` (see targets::plugin).
    write("plugin", "toon.bin", b"toon size=16\x00\x02\x0b\x07\x01\x01\x03\x05")?;
    write("plugin", "passthrough.bin", b"passthrough strength=0.5\x00\x00\x05\x05\x02\x02\x00\x00")?;
    write("plugin", "generator.bin", b"\x00\x01\x04\x04\x01\x02\x01\x07\x00\x00\x00\x00\x00\x00\x00\x02")?;
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

fn tempfile_dir(dir: &Path) -> Result<std::path::PathBuf> {
    let scratch = dir.join(".scratch");
    std::fs::create_dir_all(&scratch)?;
    Ok(scratch)
}

fn floats(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims.iter().map(|&d| Dimension { dim_value: Some(d), dim_param: None }).collect();
    let tensor_type = TypeProtoTensor { elem_type: data_type::FLOAT, shape: Some(TensorShapeProto { dim }) };
    ValueInfoProto { name: name.into(), r#type: Some(TypeProto { tensor_type: Some(tensor_type) }) }
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: values.to_vec(), r#type: 7, ..Default::default() }
}

fn tiny_onnx() -> ModelProto {
    let weights: Vec<f32> = (0..2 * 2 * 3 * 3).map(|i| (i as f32 - 17.0) / 20.0).collect();
    let graph = GraphProto {
        name: "seed".into(),
        node: vec![
            node("Conv", &["x", "w", "b"], "c", vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[1, 1]), ints("kernel_shape", &[3, 3])]),
            node("Relu", &["c"], "r", vec![]),
            node("Mul", &["r", "scale"], "y", vec![]),
        ],
        initializer: vec![
            floats("w", &[2, 2, 3, 3], &weights),
            floats("b", &[2], &[0.1, -0.1]),
            floats("scale", &[1], &[2.0]),
            TensorProto { name: "shape".into(), dims: vec![2], data_type: data_type::INT64, int64_data: vec![1, -1], ..Default::default() },
        ],
        input: vec![value_info("x", &[1, 2, 4, 4])],
        output: vec![value_info("y", &[1, 2, 4, 4])],
    };
    ModelProto {
        ir_version: 7,
        producer_name: "ganime-fuzz".into(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 13 }],
    }
}
