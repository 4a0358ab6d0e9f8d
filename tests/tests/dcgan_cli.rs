//! `ganime train dcgan`, `generate`, `interpolate`, `export` end to end on 64 shared anime faces.

use candle_core::Device;
use ganime::io::checkpoint::Checkpoint;
use ganime_e2e::*;
use std::path::Path;

/// A tiny 32×32 DCGAN, batch 16, `steps` steps: seconds on a CPU.
fn train_args<'a>(data: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "dcgan",
        "--data",
        data,
        "--out",
        out,
        "--image-size",
        "32",
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--batch-size",
        "16",
        "--steps",
        steps,
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
        "--label-smoothing",
        "0.1",
        "--label-flip",
        "0.05",
        "--instance-noise",
        "0.1",
        "--instance-noise-steps",
        "10",
        "--flip",
        "--seed",
        "7",
        "--quiet",
    ]
}

fn tensors_equal(a: &Path, b: &Path) {
    let a = Checkpoint::read(a, &Device::Cpu).unwrap();
    let b = Checkpoint::read(b, &Device::Cpu).unwrap();
    let mut keys: Vec<&String> = a.tensors.keys().collect();
    keys.sort();
    assert_eq!(keys.len(), b.tensors.len());
    assert!(keys.iter().any(|k| k.starts_with("opt.D.m.")) && keys.iter().any(|k| k.ends_with("running_var")));
    for k in keys {
        let x: Vec<f32> = a.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x == y, "tensor {k} differs between the straight and the resumed run");
    }
    let (sa, sb) = (a.header.state.unwrap(), b.header.state.unwrap());
    assert_eq!(sa["step"], sb["step"]);
    assert_eq!(sa["rng"], sb["rng"]);
}

#[test]
fn trains_writes_all_outputs_and_resumes_exactly() {
    let Some(data) = anime_subset(64) else { return };
    let runs = tempfile::tempdir().unwrap();
    let straight = runs.path().join("straight");
    let split = runs.path().join("split");
    let d = p(data.path());

    ganime_ok(&train_args(d, p(&straight), "4"));
    // Outputs: checkpoint, 8x8 grid of 32px samples with 2px borders, CSV with a row per step, two plots.
    let ckpt = Checkpoint::read(&straight, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.kind, "dcgan");
    assert_eq!(ckpt.header.state.as_ref().unwrap()["step"], 4);
    assert!(ckpt.tensors.contains_key("G.main.0.weight") && ckpt.tensors.contains_key("D.main.0.weight"));
    for s in ["step_0000002.png", "step_0000004.png"] {
        assert_eq!(image_size(&straight.join("samples").join(s)), (8 * 34 + 2, 8 * 34 + 2));
    }
    let csv = std::fs::read_to_string(straight.join("log.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "step,epoch,d_loss,g_loss,d_real,d_fake,seconds");
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[4].starts_with("4,0,"), "64 images / batch 16 = 4 steps in epoch 0: {csv}");
    for plot in ["loss.png", "scores.png"] {
        assert_eq!(image_size(&straight.join(plot)), (800, 480));
    }

    // 2 steps, then resume to 4: bit-identical to 4 straight (weights, BN stats, Adam moments, RNG).
    ganime_ok(&train_args(d, p(&split), "2"));
    ganime_ok(&["train", "dcgan", "--resume", p(&split), "--steps", "4", "--quiet"]);
    tensors_equal(&straight, &split);
    let csv = std::fs::read_to_string(split.join("log.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "resumed log continues without duplicates:\n{csv}");

    // Intervals given with --resume replace the run's stored ones (and are kept for later resumes).
    ganime_ok(&["train", "dcgan", "--resume", p(&split), "--steps", "6", "--sample-every", "1", "--quiet"]);
    assert!(split.join("samples/step_0000005.png").exists(), "--sample-every 1 given with --resume was ignored");
    let state = Checkpoint::read(&split, &Device::Cpu).unwrap().header.state.unwrap();
    assert_eq!(state["config"]["sample_every"], 1);
    let err = ganime_err(&["train", "dcgan", "--resume", p(&split), "--steps", "7", "--checkpoint-every", "0"]);
    assert!(err.contains("--checkpoint-every must be a positive"), "{err}");

    // A new run into a folder that holds one is refused rather than overwritten.
    let err = ganime_err(&train_args(d, p(&straight), "4"));
    assert!(err.contains("--resume"), "{err}");

    // generate / interpolate / export from the trained checkpoint.
    let out = runs.path().join("grid.png");
    ganime_ok(&["generate", "--checkpoint", p(&straight), "--count", "6", "--seed", "3", "--columns", "3", "--out", p(&out)]);
    assert_eq!(image_size(&out), (3 * 34 + 2, 2 * 34 + 2));
    let dir_a = runs.path().join("a");
    let dir_b = runs.path().join("b");
    ganime_ok(&["generate", "--checkpoint", p(&straight), "--count", "3", "--seed", "3", "--out-dir", p(&dir_a)]);
    ganime_ok(&["generate", "--checkpoint", p(&straight.join("checkpoint.safetensors")), "--count", "3", "--seed", "3", "--out-dir", p(&dir_b)]);
    let read = |d: &Path, i: usize| std::fs::read(d.join(format!("seed3_{i:04}.png"))).unwrap();
    assert_eq!(read(&dir_a, 0), read(&dir_b, 0), "same seed, same image");
    assert_ne!(read(&dir_a, 0), read(&dir_a, 1));

    let strip = runs.path().join("strip.png");
    for path in ["linear", "slerp"] {
        ganime_ok(&["interpolate", "--checkpoint", p(&straight), "--from", "1", "--to", "2", "--steps", "5", "--path", path, "--out", p(&strip)]);
        assert_eq!(image_size(&strip), (5 * 34 + 2, 34 + 2));
    }
    ganime_ok(&["interpolate", "--checkpoint", p(&straight), "--walk-dim", "7", "--steps", "4", "--rows", "2", "--out", p(&strip)]);
    assert_eq!(image_size(&strip), (4 * 34 + 2, 2 * 34 + 2));
    let err = ganime_err(&["interpolate", "--checkpoint", p(&straight), "--walk-dim", "100", "--out", p(&strip)]);
    assert!(err.contains("--walk-dim 100"), "{err}");

    let small = runs.path().join("g16.safetensors");
    ganime_ok(&["export", "--checkpoint", p(&straight), "--out", p(&small)]);
    let exported = Checkpoint::read(&small, &Device::Cpu).unwrap();
    assert!(exported.header.state.is_none() && exported.tensors.keys().all(|k| k.starts_with("G.")));
    let from_export = runs.path().join("e");
    ganime_ok(&["generate", "--checkpoint", p(&small), "--count", "3", "--seed", "3", "--out-dir", p(&from_export)]);
    let err = ganime_err(&["train", "dcgan", "--resume", p(&small)]);
    assert!(err.contains("cannot be resumed"), "{err}");
}

#[test]
fn generates_from_an_imported_pytorch_checkpoint() {
    let Some(net_g) = shared_path("golden/dcgan-netG.pth") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pt.png");
    let stderr = ganime_ok(&["generate", "--checkpoint", p(&net_g), "--count", "4", "--columns", "4", "--out", p(&out)]);
    assert!(stderr.contains("nz=100 ngf=16"), "{stderr}");
    assert_eq!(image_size(&out), (4 * 66 + 2, 66 + 2));
}

#[test]
fn builtin_model_makes_characters_without_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces.png");
    ganime_ok(&["generate", "--count", "16", "--seed", "1", "--out", p(&out)]);
    let (w, h) = image_size(&out);
    assert_eq!((w, h), (4 * 66 + 2, 4 * 66 + 2));
    // Not blank: the pixels vary.
    let img = image::open(&out).unwrap().to_luma8();
    let mean = img.pixels().map(|p| p[0] as f64).sum::<f64>() / (w * h) as f64;
    let var = img.pixels().map(|p| (p[0] as f64 - mean).powi(2)).sum::<f64>() / (w * h) as f64;
    assert!(var > 100.0, "the built-in grid looks blank (variance {var})");
}

#[test]
fn trains_the_mnist28_preset_from_idx() {
    let Some(mnist) = shared_path("data/mnist/t10k-images-idx3-ubyte.gz") else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mnist");
    ganime_ok(&[
        "train",
        "dcgan",
        "--preset",
        "mnist28",
        "--data",
        p(&mnist),
        "--out",
        p(&run),
        "--ngf",
        "8",
        "--ndf",
        "8",
        "--batch-size",
        "8",
        "--steps",
        "2",
        "--quiet",
    ]);
    assert_eq!(image_size(&run.join("samples/step_0000002.png")), (8 * 30 + 2, 8 * 30 + 2));
}

#[test]
fn bad_inputs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let missing = dir.path().join("no-such-folder");
    let err = ganime_err(&["train", "dcgan", "--data", p(&missing), "--out", p(&out), "--steps", "1"]);
    assert!(err.contains("no-such-folder") && err.contains("does not exist"), "{err}");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = ganime_err(&["train", "dcgan", "--data", p(&empty), "--out", p(&out), "--steps", "1"]);
    assert!(err.contains("empty") && err.contains("no images"), "{err}");

    let err = ganime_err(&["generate", "--checkpoint", p(&missing), "--out", p(&dir.path().join("x.png"))]);
    assert!(err.contains("no-such-folder"), "{err}");

    let not_a_model = dir.path().join("notes.safetensors");
    std::fs::write(&not_a_model, b"hello").unwrap();
    let err = ganime_err(&["generate", "--checkpoint", p(&not_a_model), "--out", p(&dir.path().join("x.png"))]);
    assert!(err.contains("notes.safetensors"), "{err}");

    let err = ganime_err(&["train", "dcgan", "--resume", p(&empty)]);
    assert!(err.contains("checkpoint"), "{err}");

    let err = ganime_err(&["generate", "--device", "tpu", "--out", p(&dir.path().join("x.png"))]);
    assert!(err.contains("--device"), "{err}");

    let err = ganime_err(&["train", "dcgan", "--data", p(&empty), "--out", p(&out), "--instance-noise", "0.1", "--steps", "5"]);
    assert!(err.contains("--instance-noise-steps"), "{err}");

    let err = ganime_err(&["train", "dcgan", "--data", p(&empty), "--out", p(&out), "--image-size", "48"]);
    assert!(err.contains("image size 48"), "{err}");
}

#[test]
fn corrupt_images_are_skipped_and_counted() {
    let Some(data) = anime_subset(16) else { return };
    std::fs::write(data.path().join("zz-broken.jpg"), b"not a jpeg at all").unwrap();
    let run = tempfile::tempdir().unwrap();
    let out = run.path().join("r");
    let stderr = ganime_ok(&[
        "train",
        "dcgan",
        "--data",
        p(data.path()),
        "--out",
        p(&out),
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "17",
        "--steps",
        "1",
        "--quiet",
    ]);
    assert!(stderr.contains("zz-broken.jpg"), "{stderr}");
    assert!(stderr.contains("1 unreadable files skipped"), "{stderr}");
}

/// SIGTERM (what Ctrl-C, `kill` and a session's end send) finishes the step, writes a checkpoint of it and
/// exits with 130; the run then resumes exactly, as if it had not been stopped.
#[test]
fn sigterm_writes_a_checkpoint_and_the_run_resumes_exactly() {
    let Some(data) = anime_subset(64) else { return };
    let runs = tempfile::tempdir().unwrap();
    let (stopped, straight) = (runs.path().join("stopped"), runs.path().join("straight"));
    let mut args = train_args(p(data.path()), p(&stopped), "100000");
    // No periodic checkpoint before the signal: all of it comes from the stop.
    let i = args.iter().position(|a| *a == "--checkpoint-every").unwrap();
    args[i + 1] = "100000";
    let mut child = ganime_command().args(&args).spawn().unwrap();
    let log = stopped.join("log.csv");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 3 {
        assert!(std::time::Instant::now() < deadline, "no training steps logged within 120 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!stopped.join("checkpoint.safetensors").exists());
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let ckpt = Checkpoint::read(&stopped, &Device::Cpu).unwrap();
    let step = ckpt.header.state.unwrap()["step"].as_u64().unwrap();
    let rows = std::fs::read_to_string(&log).unwrap().lines().count() as u64 - 1;
    assert_eq!(step, rows, "the checkpoint holds the last logged step");
    let target = (step + 2).to_string();
    ganime_ok(&["train", "dcgan", "--resume", p(&stopped), "--steps", &target, "--quiet"]);
    ganime_ok(&train_args(p(data.path()), p(&straight), &target));
    tensors_equal(&stopped, &straight);
}

/// Sizes beyond the memory limit are refused with the numbers before the pictures are made (the limit is set
/// low here, so a regression allocates megabytes, not the machine); --out-dir streams any --count.
#[test]
fn oversized_outputs_are_refused_and_out_dir_streams() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = ganime_command().args(args).env("GANIME_MAX_IMAGE_BYTES", "20000000").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let png = dir.path().join("x.png");
    for (args, what) in [
        (vec!["generate", "--count", "2000", "--out", p(&png)], "--count/--scale"),
        (vec!["generate", "--count", "4", "--scale", "40", "--out", p(&png)], "--count/--scale"),
        (vec!["interpolate", "--steps", "2000", "--out", p(&png)], "--rows/--steps/--scale"),
        (vec!["sheet", "--cell", "3000", "--out", p(&png)], "--cell/--columns"),
    ] {
        let (ok, err) = run(&args);
        assert!(!ok && err.contains(what) && err.contains("GiB") && err.contains("GANIME_MAX_IMAGE_BYTES"), "{args:?}: {err}");
        assert!(!png.exists());
    }
    let err = ganime_err(&["sheet", "--count", "100000000", "--out", p(&png)]);
    assert!(err.contains("at most 10000"), "{err}");
    // The same count to --out-dir is written batch by batch, with the pictures of the one-stream latents.
    let many = dir.path().join("many");
    let (ok, err) = run(&["generate", "--count", "2000", "--out-dir", p(&many)]);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read_dir(&many).unwrap().count(), 2000);
    ganime_ok(&["generate", "--count", "1", "--seed", "0", "--out", p(&png)]);
    assert_eq!(image::open(&png).unwrap().to_rgb8(), image::open(many.join("seed0_0000.png")).unwrap().to_rgb8());
}
