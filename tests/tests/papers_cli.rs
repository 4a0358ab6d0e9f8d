//! The papers' features end to end: model summaries (the Simpsons paper's Keras model), runs measured in
//! epochs with per-epoch lines and grids, the uniform latent prior, architecture options, real-vs-generated
//! panels, the first training images, and stop rules.

use candle_core::Device;
use ganime::generate::{load_generator, prior_latents, Prior};
use ganime::io::checkpoint::Checkpoint;
use ganime_e2e::*;
use std::path::Path;

#[test]
fn keras28_summary_prints_the_papers_counts() {
    let out = ganime_command().args(["models", "summary", "--preset", "keras28"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for line in ["Total params: 840,705", "Trainable params: 840,321", "Non-trainable params: 384", "Total params: 212,865", "(None, 6272)"] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    let err = ganime_err(&["models", "summary", "--preset", "radford64", "--upsample"]);
    assert!(err.contains("odd kernel"), "{err}");
}

/// A tiny 32×32 run, 32 images in batches of 8 (4 steps per epoch).
fn epoch_run<'a>(data: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "dcgan",
        "--data",
        data,
        "--out",
        out,
        "--image-size",
        "32",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "8",
        "--sample-every",
        "100",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn epochs_prior_panels_and_architecture_options() {
    let Some(data) = anime_subset(32) else { return };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("run");
    let extra = [
        "--epochs",
        "2",
        "--sample-epochs",
        "1,2",
        "--panel-steps",
        "3",
        "--prior",
        "uniform",
        "--g-leaky-slope",
        "0.01",
        "--d-leaky-slope",
        "0.1",
        "--upsample",
        "--kernel",
        "5",
        "--summary",
    ];
    let out = ganime_command().args(epoch_run(p(data.path()), p(&run), &extra)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The summary before training, one line per epoch with the time per step and the ETA.
    assert!(String::from_utf8_lossy(&out.stdout).contains("Upsample"));
    for epoch in ["epoch 1/2: step 4/8", "epoch 2/2: step 8/8"] {
        assert!(stderr.contains(epoch), "missing `{epoch}` in:\n{stderr}");
    }
    assert!(stderr.contains(" s/it, ETA "), "{stderr}");
    let ckpt = Checkpoint::read(&run, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.state.as_ref().unwrap()["step"], 8);
    let model = &ckpt.header.model;
    assert_eq!((model["prior"].as_str(), model["upsample"].as_bool(), model["g_leaky_slope"].as_f64()), (Some("uniform"), Some(true), Some(0.01)));
    // Grids at the chosen epochs, the first 25 training images (5×5 of 32 px with 2 px borders), the panel:
    // real and generated grids of equal size with a 4-pixel white line between.
    let grid = image_size(&run.join("samples/epoch_0002.png"));
    assert_eq!(image_size(&run.join("samples/epoch_0001.png")), grid);
    assert_eq!(image_size(&run.join("samples/training-images-25.png")), (5 * 34 + 2, 5 * 34 + 2));
    let panel = image::open(run.join("panels/step_0000003.png")).unwrap().to_rgb8();
    assert_eq!(panel.dimensions(), (2 * grid.0 + 4, grid.1));
    assert!((0..grid.1).all(|y| panel.get_pixel(grid.0 + 1, y).0 == [255, 255, 255]), "white dividing line");
    assert!(!run.join("panels/step_0000002.png").exists());

    // --resume with a new total in epochs.
    ganime_ok(&["train", "dcgan", "--resume", p(&run), "--epochs", "3", "--quiet"]);
    assert_eq!(Checkpoint::read(&run, &Device::Cpu).unwrap().header.state.unwrap()["step"], 12);

    // generate draws from the stored prior: the CLI's picture is the generator's output on uniform latents.
    let dir = runs.path().join("gen");
    ganime_ok(&["generate", "--checkpoint", p(&run), "--count", "2", "--seed", "5", "--out-dir", p(&dir)]);
    let g = load_generator(Some(&run), &Device::Cpu).unwrap();
    assert_eq!(g.prior(), Prior::Uniform);
    let z = prior_latents(Prior::Uniform, 5, 2, g.latent_dim(), &Device::Cpu).unwrap();
    let expected = ganime::io::image::tensor_to_images(&g.generate(&z).unwrap()).unwrap();
    let made = image::open(dir.join("seed5_0001.png")).unwrap().to_rgb8();
    assert_eq!(made, expected[1], "generate used the uniform prior");
}

fn last_logged_step(run: &Path) -> u64 {
    let csv = std::fs::read_to_string(run.join("log.csv")).unwrap();
    csv.lines().last().unwrap().split(',').next().unwrap().parse().unwrap()
}

#[test]
fn stop_rules_end_the_run_and_say_why() {
    let Some(data) = anime_subset(32) else { return };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("stopped");
    // D's score on real images is always above -1: the rule holds at every step and fires at the third.
    let stderr = ganime_ok(&epoch_run(p(data.path()), p(&run), &["--steps", "20", "--log-every", "1", "--stop-when", "d-real>-1@3"]));
    assert!(stderr.contains("stopped at step 3 by --stop-when"), "{stderr}");
    assert_eq!(last_logged_step(&run), 3);
    assert_eq!(Checkpoint::read(&run, &Device::Cpu).unwrap().header.state.unwrap()["step"], 3);
    let events = std::fs::read_to_string(run.join("events.log")).unwrap();
    assert!(events.contains("d-real>-1@3"), "{events}");
    // A rule that never holds leaves the run alone.
    let full = runs.path().join("full");
    ganime_ok(&epoch_run(p(data.path()), p(&full), &["--steps", "4", "--stop-when", "d-fake<-1@2"]));
    assert_eq!(last_logged_step(&full), 4);

    // The plateau rule on --eval-every's kernel distance: with a patience of one evaluation it fires at the first
    // evaluation that is not a new best, and that step is logged and checkpointed as the last.
    let plateau = runs.path().join("plateau");
    let stderr = ganime_ok(&epoch_run(
        p(data.path()),
        p(&plateau),
        &["--steps", "30", "--log-every", "1", "--eval-every", "1", "--eval-count", "16", "--stop-when", "kid-plateau@1"],
    ));
    assert!(stderr.contains("by --stop-when: kernel distance has not improved"), "{stderr}");
    let step = Checkpoint::read(&plateau, &Device::Cpu).unwrap().header.state.unwrap()["step"].as_u64().unwrap();
    assert!(step < 30 && last_logged_step(&plateau) == step, "stopped at {step}");
    assert!(std::fs::read_to_string(plateau.join("events.log")).unwrap().contains("kid-plateau@1"));
    let err = ganime_err(&epoch_run(p(data.path()), p(&runs.path().join("x")), &["--stop-when", "kid-plateau@2"]));
    assert!(err.contains("--eval-every"), "{err}");
    let err = ganime_err(&epoch_run(p(data.path()), p(&runs.path().join("y")), &["--stop-when", "dx<1@2"]));
    assert!(err.contains("dx<1@2"), "{err}");
    let err = ganime_err(&["train", "dcgan", "--resume", p(&full), "--stop-when", "d-fake<0.1@5"]);
    assert!(err.contains("when it starts"), "{err}");
}

/// Whether `needle` appears pixel for pixel somewhere in `page`.
fn contains_image(page: &image::RgbImage, needle: &image::RgbImage) -> Option<(u32, u32)> {
    let (w, h) = needle.dimensions();
    for y in 0..=page.height().saturating_sub(h) {
        for x in 0..=page.width().saturating_sub(w) {
            if (0..h).all(|j| (0..w).all(|i| page.get_pixel(x + i, y + j) == needle.get_pixel(i, j))) {
                return Some((x, y));
            }
        }
    }
    None
}

#[test]
fn numbered_grid_cells_are_their_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("grid.png");
    let out = ganime_command().args(["generate", "--grid", "2", "--seed", "7", "--out", p(&page)]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("(2,1)=9") && table.contains("(1,2)=8"), "{table}");
    // Cell (2, 1) is the picture of seed 9, below cell (1, 1), the picture of seed 7.
    let g = load_generator(None, &Device::Cpu).unwrap();
    let picture = |seed| ganime::io::image::tensor_to_images(&g.generate(&g.latents(seed, 1, &Device::Cpu).unwrap()).unwrap()).unwrap().remove(0);
    let page = image::open(&page).unwrap().to_rgb8();
    let (x7, y7) = contains_image(&page, &picture(7)).expect("seed 7 in the grid");
    let (x9, y9) = contains_image(&page, &picture(9)).expect("seed 9 in the grid");
    assert!(x9 == x7 && y9 > y7, "seed 9 at ({x9}, {y9}), seed 7 at ({x7}, {y7})");
    let err = ganime_err(&["generate", "--grid", "0", "--out", p(&dir.path().join("x.png"))]);
    assert!(err.contains("--grid 0"), "{err}");
}

/// A folder-per-class dataset from the shared faces: class `big` 24 images, `mid` 12, `small` 4.
fn class_folders() -> Option<tempfile::TempDir> {
    let faces = anime_subset(40)?;
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(faces.path()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for (i, f) in files.iter().enumerate() {
        let class = if i < 24 {
            "big"
        } else if i < 36 {
            "mid"
        } else {
            "small"
        };
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        std::fs::copy(f, dir.path().join(class).join(f.file_name().unwrap())).unwrap();
    }
    Some(dir)
}

#[test]
fn class_folders_holdout_eval_memorisation_and_csv_export() {
    let Some(data) = class_folders() else { return };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("classes");
    // Classes with >= 10 images (big, mid), a quarter of each held out: 18 + 9 trained on, 6 + 3 held out.
    let stderr = ganime_ok(&epoch_run(p(data.path()), p(&run), &["--steps", "2", "--min-class-size", "10", "--holdout", "0.25"]));
    assert!(stderr.contains("kept 2 class(es): big 24, mid 12; dropped 1: small 4"), "{stderr}");
    let options = &Checkpoint::read(&run, &Device::Cpu).unwrap().header.state.unwrap()["options"]["selection"];
    assert_eq!(options["holdout"].as_f64(), Some(0.25));

    // eval without --real compares against the run's held-out images; --memorisation against its training part.
    let pairs = runs.path().join("pairs.png");
    let csv = runs.path().join("nearest.csv");
    let stderr = ganime_ok(&[
        "eval",
        "--checkpoint",
        p(&run),
        "--count",
        "10",
        "--features",
        "classifier",
        "--memorisation",
        "--pairs-out",
        p(&pairs),
        "--nearest-csv",
        p(&csv),
    ]);
    assert!(stderr.contains("real images: 9 holdout image(s)"), "{stderr}");
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 11, "{rows}");
    // Nearest training images come from the training part only (never a held-out or dropped image).
    let held: Vec<String> = {
        let sel = ganime::data::selection::DataSelection { min_class_size: Some(10), holdout: Some(0.25), ..Default::default() };
        let h = ganime::data::selection::open_selected(data.path(), &sel, ganime::data::selection::Part::Holdout).unwrap();
        (0..h.data.len()).map(|i| h.data.name(i).unwrap()).collect()
    };
    for line in rows.lines().skip(1) {
        let name = line.split(',').nth(1).unwrap();
        assert!(!held.iter().any(|h| h == name) && !name.starts_with("small/"), "{name}");
    }
    assert!(image_size(&pairs).0 > 0);
    let err = ganime_err(&["eval", "--count", "10", "--features", "classifier"]);
    assert!(err.contains("--real is required"), "{err}");

    // export-csv: one row per image, label index and class name; 28×28 gray = 784 values.
    let prefix = runs.path().join("simpsons");
    let stderr = ganime_ok(&["data", "export-csv", "--data", p(data.path()), "--class", "mid", "--size", "28", "--gray", "--out", p(&prefix)]);
    assert!(stderr.contains("wrote 12 rows"), "{stderr}");
    let x = std::fs::read_to_string(runs.path().join("simpsons-x.csv")).unwrap();
    let y = std::fs::read_to_string(runs.path().join("simpsons-y.csv")).unwrap();
    assert_eq!((x.lines().count(), y.lines().count()), (13, 13));
    assert_eq!(x.lines().nth(1).unwrap().split(',').count(), 784);
    assert!(x.lines().nth(1).unwrap().split(',').all(|v| v.parse::<u8>().is_ok()));
    assert_eq!(y.lines().nth(1).unwrap(), "0,mid");
    let err = ganime_err(&["data", "export-csv", "--data", p(data.path()), "--out", p(&prefix)]);
    assert!(err.contains("--overwrite"), "{err}");
    ganime_ok(&["data", "export-csv", "--data", p(data.path()), "--min-class-size", "10", "--size", "8", "--out", p(&prefix), "--overwrite"]);
    let y = std::fs::read_to_string(runs.path().join("simpsons-y.csv")).unwrap();
    assert!(y.contains("0,big") && y.contains("1,mid") && !y.contains("small"), "{y}");
    let x = std::fs::read_to_string(runs.path().join("simpsons-x.csv")).unwrap();
    assert_eq!(x.lines().nth(1).unwrap().split(',').count(), 8 * 8 * 3);
    let err = ganime_err(&["data", "export-csv", "--data", p(data.path()), "--class", "nobody", "--out", p(&runs.path().join("n"))]);
    assert!(err.contains("--class nobody"), "{err}");
}

#[test]
fn upscaler_trains_resumes_enlarges_and_measures() {
    let Some(data) = anime_subset(32) else { return };
    let Some(held_out) = shared_path("data/face2anime/trainB") else { return };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("up");
    let train = |steps: &str| {
        let mut args = vec!["train", "upscaler", "--batch-size", "8", "--image-size", "32", "--steps", steps, "--quiet"];
        if run.exists() {
            args.extend(["--resume", p(&run)]);
        } else {
            args.extend(["--data", p(data.path()), "--out", p(&run)]);
        }
        ganime_ok(&args);
    };
    train("40");
    train("80");
    let ckpt = Checkpoint::read(&run, &Device::Cpu).unwrap();
    assert_eq!((ckpt.header.kind.as_str(), &ckpt.header.state.unwrap()["step"]), ("upscaler", &serde_json::json!(80)));
    let model = run.join("upscaler.safetensors");
    assert!(image_size(&run.join("samples/step_0000080.png")).0 > 0);

    // Enlarge one picture: 1.5× of 64 px through one learned pass and Lanczos down.
    let face = std::fs::read_dir(data.path()).unwrap().next().unwrap().unwrap().path();
    let big = runs.path().join("big.png");
    ganime_ok(&["upscale", "--model", p(&model), "--in", p(&face), "--out", p(&big), "--scale", "1.5"]);
    assert_eq!(image_size(&big), (96, 96));
    let err = ganime_err(&["upscale", "--model", p(&model), "--in", p(&face), "--out", p(&big)]);
    assert!(err.contains("--overwrite"), "{err}");
    let err = ganime_err(&["upscale", "--model", p(&face), "--in", p(&face), "--out", p(&runs.path().join("x.png"))]);
    assert!(err.contains("not a safetensors file") || err.contains("not an upscaler"), "{err}");

    // Measured on pictures it never saw: even 80 steps restore them better than bilinear.
    let out = ganime_command().args(["upscale", "--model", p(&model), "--measure", p(&held_out), "--count", "20"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let db = |name: &str| -> f64 {
        let line = text.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    assert!(db("learned") > db("bilinear"), "{text}");
    assert!(db("lanczos3") > 15.0, "{text}");
}

#[test]
fn progressive_growing_trains_and_resumes_mid_fade_exactly() {
    let Some(data) = anime_subset(32) else { return };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    // 16×16: two steps at 8×8, two fading 16×16 in, then stable; the small-data recipe (EMA, SN-D, DiffAugment).
    let train = |out: &Path, steps: &str| {
        ganime_ok(&[
            "train",
            "dcgan",
            "--data",
            p(data.path()),
            "--out",
            p(out),
            "--image-size",
            "16",
            "--ngf",
            "4",
            "--ndf",
            "4",
            "--batch-size",
            "8",
            "--recipe",
            "small-data",
            "--progressive",
            "--start-size",
            "8",
            "--stage-steps",
            "2",
            "--sample-every",
            "1",
            "--steps",
            steps,
            "--quiet",
        ]);
    };
    train(&straight, "6");
    train(&split, "3");
    ganime_ok(&["train", "dcgan", "--resume", p(&split), "--steps", "6", "--quiet"]);
    let (a, b) = (Checkpoint::read(&straight, &Device::Cpu).unwrap(), Checkpoint::read(&split, &Device::Cpu).unwrap());
    assert!(a.tensors.contains_key("G.grow.to_rgb.8.weight") && a.tensors.contains_key("D.grow.from_rgb.8.weight"));
    assert!(a.tensors.contains_key("task.ema.grow.to_rgb.8.weight"));
    for (k, t) in &a.tensors {
        let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x == y, "{k} differs between the straight run and the one resumed mid-fade");
    }
    // Grids at every step at the final size; the grown model generates at full size.
    assert_eq!(image_size(&straight.join("samples/step_0000001.png")), image_size(&straight.join("samples/step_0000006.png")));
    let out = runs.path().join("g.png");
    ganime_ok(&["generate", "--checkpoint", p(&straight), "--count", "1", "--out", p(&out)]);
    assert_eq!(image_size(&out), (16, 16));
    let err = ganime_err(&["train", "dcgan", "--data", p(data.path()), "--out", p(&runs.path().join("m")), "--preset", "mnist28", "--progressive"]);
    assert!(err.contains("radford64"), "{err}");
}

/// The shipped upscaler restores held-out anime portraits (never trained on) clearly better than Lanczos3.
#[test]
fn builtin_upscaler_beats_lanczos_on_held_out_pictures() {
    let Some(held_out) = shared_path("data/face2anime/trainB") else { return };
    let out = ganime_command().args(["upscale", "--measure", p(&held_out), "--count", "30"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let db =
        |name: &str| -> f64 { text.lines().find(|l| l.trim_start().starts_with(name)).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap() };
    assert!(text.contains("built-in"), "{text}");
    assert!(db("learned") > db("lanczos3") + 1.0, "{text}");
}

/// MNIST's labels file beside the images makes each digit a class: export with labels, one-digit runs.
#[test]
fn mnist_digits_are_classes() {
    let Some(mnist) = shared_path("data/mnist/t10k-images-idx3-ubyte.gz") else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("digits");
    let stderr = ganime_ok(&["data", "export-csv", "--data", p(&mnist), "--class", "7", "--size", "28", "--gray", "--out", p(&prefix)]);
    assert!(stderr.contains("wrote 1028 rows"), "{stderr}");
    let y = std::fs::read_to_string(dir.path().join("digits-y.csv")).unwrap();
    assert!(y.lines().skip(1).all(|l| l == "0,7"), "{}", &y[..60]);
    let stderr = ganime_ok(&[
        "train",
        "dcgan",
        "--preset",
        "keras28",
        "--data",
        p(&mnist),
        "--class",
        "7",
        "--out",
        p(&dir.path().join("m7")),
        "--steps",
        "1",
        "--quiet",
    ]);
    assert!(stderr.contains("kept 1 class(es): 7 1028"), "{stderr}");
}
