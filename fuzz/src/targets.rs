//! The readers under test. Each runs with ganime's own limits (file sizes, config bounds, the plug-in's
//! dimension and count limits) and discards the result: an error is a correct answer to bad input.

use crate::Target;
use candle_core::Device;
use ganime_plugin_abi::*;
use std::ffi::CString;
use std::io::Cursor;
use std::path::Path;

pub const ALL: [Target; 7] = [
    Target { name: "pth", extension: "pth", run: pth },
    Target { name: "safetensors", extension: "safetensors", run: safetensors },
    Target { name: "checkpoint", extension: "safetensors", run: checkpoint },
    Target { name: "y4m", extension: "y4m", run: y4m },
    Target { name: "filter-spec", extension: "txt", run: filter_spec },
    Target { name: "onnx", extension: "onnx", run: onnx },
    Target { name: "plugin", extension: "bin", run: plugin },
];

pub fn by_name(name: &str) -> Option<&'static Target> {
    ALL.iter().find(|t| t.name == name)
}

/// `.pth` files, zip and legacy, as every `style:`/`animegan:`/generator path reads them.
fn pth(_: &[u8], path: &Path) {
    let _ = ganime::io::weights::read_tensors(path, &Device::Cpu);
}

/// Plain safetensors weights.
fn safetensors(_: &[u8], path: &Path) {
    let _ = ganime::io::weights::read_tensors(path, &Device::Cpu);
}

/// A ganime checkpoint (safetensors with a JSON header) loaded as a generator: header, config bounds, tensors.
fn checkpoint(bytes: &[u8], path: &Path) {
    if let Ok(ckpt) = ganime::io::checkpoint::Checkpoint::from_bytes(bytes, path, &Device::Cpu) {
        let _ = ganime::generate::from_checkpoint(&ckpt, &Device::Cpu);
    }
}

/// The camera's Y4M reader: the header, then up to four frames.
fn y4m(bytes: &[u8], _: &Path) {
    if let Ok(mut reader) = ganime::io::y4m::Y4mReader::new(Cursor::new(bytes)) {
        for _ in 0..4 {
            if !matches!(reader.next_frame(), Ok(Some(_))) {
                break;
            }
        }
    }
}

/// Filter specs as the CLI, the camera's filter lists and the plug-in take them: each line opened (a filter is
/// built but not run), and the text as a filter list file.
fn filter_spec(bytes: &[u8], path: &Path) {
    for line in String::from_utf8_lossy(bytes).lines().take(8) {
        let _ = ganime::filters::open_with_options(line);
    }
    let _ = ganime::filters::read_filter_list(path);
}

/// The ONNX reader of the arbitrary-style networks: parse, fold constants, and run the graph on a small input
/// when it declares one.
fn onnx(bytes: &[u8], _: &Path) {
    let Ok(graph) = ganime::onnx::QdqGraph::from_bytes(bytes, "fuzz input") else { return };
    let Some((name, shape)) = graph.inputs.first() else { return };
    let dims: Option<Vec<usize>> = shape.iter().map(|d| d.and_then(|d| usize::try_from(d).ok()).filter(|&d| (1..=64).contains(&d))).collect();
    if let Some(dims) = dims.filter(|d| d.iter().product::<usize>() <= 1 << 16) {
        if let Ok(x) = candle_core::Tensor::ones(dims, candle_core::DType::F32, &Device::Cpu) {
            let _ = graph.run(&[(name.as_str(), x)]);
        }
    }
}

/// The plug-in's C ABI as a host drives it. The input is `SPEC \0 ROLE W H FORMAT STRENGTH COUNT SEED…`: a
/// model is loaded from the spec, described, asked to stylise a `W x H` buffer (allocated here at the size the
/// descriptor says, as a host must) or to generate, then freed twice. `GANIME_ERR_INTERNAL` (a panic caught at
/// the boundary) is a finding like a panic here.
fn plugin(bytes: &[u8], _: &Path) {
    let t = ganime_plugin::table();
    let (spec, rest) = match bytes.iter().position(|&b| b == 0) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[][..]),
    };
    let byte = |i: usize| rest.get(i).copied().unwrap_or(0);
    let Ok(spec) = CString::new(&spec[..spec.len().min(256)]) else { return };
    let check = |status: GanimeStatus, call: &str| assert_ne!(status, GANIME_ERR_INTERNAL, "{call} hit an internal error: {}", last_error());
    let mut model = std::ptr::null_mut();
    let status = unsafe { (t.load_model)(spec.as_ptr(), (byte(0) % 4) as u32, &mut model) };
    check(status, "load_model");
    if status != GANIME_OK {
        return;
    }
    let mut info = unsafe { std::mem::zeroed::<GanimeModelInfo>() };
    check(unsafe { (t.model_info)(model, &mut info) }, "model_info");
    let (w, h, format) = (byte(1) as u32 % 80, byte(2) as u32 % 80, byte(3) as u32 % 6);
    let strength = [0.0, 0.5, 1.0, -1.0, f32::NAN, f32::INFINITY, 2.0, 1e-30][byte(4) as usize % 8];
    if info.role == GANIME_ROLE_FILTER {
        let stride = w as usize * bytes_per_pixel(format).unwrap_or(1) + byte(5) as usize % 8;
        let mut pixels: Vec<u8> = (0..stride * h as usize).map(|i| (i * 31 + byte(6) as usize) as u8).collect();
        let src = GanimeImage { data: pixels.as_mut_ptr(), width: w, height: h, stride, format };
        let mut dst = src;
        check(unsafe { (t.stylize)(model, &src, &mut dst, strength, std::ptr::null()) }, "stylize");
    } else {
        let count = byte(5) as u32 % 3;
        let (iw, ih) = (info.width, info.height);
        let mut buffers: Vec<Vec<u8>> = (0..count).map(|_| vec![0u8; (iw * ih * 4) as usize]).collect();
        let mut images: Vec<GanimeImage> = buffers
            .iter_mut()
            .map(|b| GanimeImage { data: b.as_mut_ptr(), width: iw, height: ih, stride: iw as usize * 4, format: GANIME_FORMAT_RGBA8 })
            .collect();
        let seed = u64::from_le_bytes(std::array::from_fn(|i| byte(6 + i)));
        check(unsafe { (t.generate)(model, seed, count, std::ptr::null(), images.as_mut_ptr(), std::ptr::null()) }, "generate");
        let mut sheet = unsafe { std::mem::zeroed::<GanimeImage>() };
        if unsafe { (t.generate_sheet)(model, seed, count, byte(14) as u32 % 4, std::ptr::null(), format, &mut sheet, std::ptr::null()) } == GANIME_OK
        {
            unsafe { (t.free_image)(&mut sheet) };
        }
    }
    unsafe {
        (t.free_model)(model);
        (t.free_model)(model);
        check((t.model_info)(model, &mut info), "model_info after free");
    }
}

fn last_error() -> String {
    unsafe { std::ffi::CStr::from_ptr(ganime_plugin::ganime_plugin_last_error()) }.to_string_lossy().into_owned()
}
