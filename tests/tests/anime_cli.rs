//! `ganime train cyclegan`, `translate`, `train dcgan --objective …` and `train compare` end to end on small
//! copies of the shared data (tiny networks, a few steps).

use candle_core::Device;
use ganime::io::checkpoint::Checkpoint;
use ganime_e2e::*;
use std::path::{Path, PathBuf};

/// The first `n` images of `../shared/data/<rel>` copied into a temp folder.
fn subset(rel: &str, n: usize) -> Option<tempfile::TempDir> {
    let src = shared_path(rel)?;
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    for f in files.iter().take(n) {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    Some(dir)
}

fn assert_same_tensors(a: &Path, b: &Path) {
    let a = Checkpoint::read(a, &Device::Cpu).unwrap();
    let b = Checkpoint::read(b, &Device::Cpu).unwrap();
    let mut keys: Vec<&String> = a.tensors.keys().collect();
    keys.sort();
    assert_eq!(keys.len(), b.tensors.len());
    for k in keys {
        let x: Vec<f32> = a.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b.tensors[k].flatten_all().unwrap().to_vec1().unwrap();
        assert!(x == y, "tensor {k} differs between the straight and the resumed run");
    }
    assert_eq!(a.header.state.unwrap()["rng"], b.header.state.unwrap()["rng"]);
}

fn log_rows(dir: &Path) -> Vec<Vec<f64>> {
    let csv = std::fs::read_to_string(dir.join("log.csv")).unwrap();
    csv.lines().skip(1).map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect()).collect()
}

fn cyclegan_args<'a>(a: &'a str, b: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "cyclegan",
        "--a",
        a,
        "--b",
        b,
        "--out",
        out,
        "--crop",
        "64",
        "--load-size",
        "72",
        "--ngf",
        "4",
        "--n-blocks",
        "2",
        "--ndf",
        "4",
        "--steps",
        steps,
        "--constant-steps",
        "2",
        "--decay-steps",
        "2",
        "--pool-size",
        "3",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
        "--seed",
        "5",
        "--quiet",
    ]
}

#[test]
fn cyclegan_trains_resumes_exactly_and_translates() {
    let (Some(a), Some(b)) = (subset("data/face2anime/trainA", 6), subset("data/face2anime/trainB", 6)) else { return };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    let (pa, pb) = (p(a.path()), p(b.path()));
    ganime_ok(&cyclegan_args(pa, pb, p(&straight), "4"));

    let ckpt = Checkpoint::read(&straight, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.kind, "cyclegan");
    for key in ["G_A.model.1.weight", "G_B.model.11.conv_block.5.bias", "D_A.model.11.weight", "opt.D_B.m.model.0.weight", "task.pool_a"] {
        assert!(ckpt.tensors.contains_key(key), "checkpoint lacks {key}");
    }
    // 4 steps of batch 1: the pool holds its capacity of 3 fakes.
    assert_eq!(ckpt.tensors["task.pool_b"].dims(), [3, 3, 64, 64]);
    // Rows of A, G_A(A), G_B(G_A(A)), B, G_B(B), G_A(G_B(B)) for 4 fixed images, 64px with 2px borders.
    assert_eq!(image_size(&straight.join("samples/step_0000004.png")), (6 * 66 + 2, 4 * 66 + 2));
    let rows = log_rows(&straight);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        // step, epoch, D loss (two LSGAN critics), G loss (adversarial + 10·cycle + 5·identity), scores
        assert!(r[2..6].iter().all(|v| v.is_finite()), "{r:?}");
        assert!(r[2] > 0.0 && r[2] < 4.0 && r[3] > 1.0, "implausible losses {r:?}");
    }

    ganime_ok(&cyclegan_args(pa, pb, p(&split), "2"));
    ganime_ok(&["train", "cyclegan", "--resume", p(&split), "--steps", "4", "--quiet"]);
    assert_same_tensors(&straight, &split);

    // translate: a folder and a single image, both directions; outputs keep the input size (128).
    let out = runs.path().join("translated");
    ganime_ok(&["translate", "--checkpoint", p(&straight), "--direction", "a2b", "--in", pa, "--out", p(&out)]);
    let outputs: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(outputs.len(), 6);
    let first = std::fs::read_dir(a.path()).unwrap().next().unwrap().unwrap().path();
    let single = runs.path().join("one.png");
    ganime_ok(&[
        "translate",
        "--checkpoint",
        p(&straight.join("checkpoint.safetensors")),
        "--direction",
        "b2a",
        "--in",
        p(&first),
        "--out",
        p(&single),
    ]);
    assert_eq!(image_size(&single), image_size(&first));
    let err = ganime_err(&["translate", "--checkpoint", p(&straight), "--in", p(&runs.path().join("nope.png")), "--out", p(&single)]);
    assert!(err.contains("nope.png"), "{err}");

    // `export` writes one generator in the reference layout (`model.1.weight` …), which opens as a filter.
    let g_b = runs.path().join("g_b.safetensors");
    ganime_ok(&["export", "--checkpoint", p(&straight), "--out", p(&g_b), "--b2a"]);
    let exported = ganime::io::weights::read_tensors(&g_b, &Device::Cpu).unwrap();
    assert!(exported.contains_key("model.1.weight") && !exported.keys().any(|k| k.starts_with("G_") || k.starts_with("D_")));
    assert!(ganime::filters::open(&format!("cyclegan:{}", g_b.display())).is_ok());

    // The same checkpoint as a filter.
    let filter = ganime::filters::open(&format!("cyclegan:{}#b2a", straight.display())).unwrap();
    let frame = image::RgbImage::from_pixel(30, 22, image::Rgb([200, 120, 40]));
    assert_eq!(filter.apply(&frame).unwrap().dimensions(), (30, 22));
}

fn dcgan_args<'a>(data: &'a str, out: &'a str, steps: &'a str, objective: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "dcgan",
        "--data",
        data,
        "--out",
        out,
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "8",
        "--steps",
        steps,
        "--objective",
        objective,
        "--sample-every",
        "2",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--seed",
        "3",
        "--quiet",
    ]
}

#[test]
fn dcgan_objectives_train_and_wgan_gp_resumes_exactly() {
    let Some(data) = anime_subset(48) else { return };
    let runs = tempfile::tempdir().unwrap();
    let d = p(data.path());
    for objective in ["lsgan", "wgan", "wgan-gp"] {
        let dir = runs.path().join(objective);
        ganime_ok(&dcgan_args(d, p(&dir), "2", objective));
        let ckpt = Checkpoint::read(&dir, &Device::Cpu).unwrap();
        let state = ckpt.header.state.as_ref().unwrap();
        assert_eq!(state["objective"], objective);
        assert_eq!(state["options"]["objective"]["kind"], objective);
        // 5 critic steps of 8 images per step: 2 steps use 10 of the 6 batches per epoch.
        if objective != "lsgan" {
            assert_eq!(state["epoch"], 1, "{state}");
        }
        match objective {
            "wgan" => {
                assert!(ckpt.tensors.contains_key("opt.D.sq.main.0.weight"), "WGAN trains with RMSProp");
                let w: Vec<f32> = ckpt.tensors["D.main.2.weight"].flatten_all().unwrap().to_vec1().unwrap();
                assert!(w.iter().all(|v| v.abs() <= 0.01), "critic weights are clipped");
            }
            "wgan-gp" => {
                assert!(ckpt.tensors.contains_key("D.main.3.weight") && !ckpt.tensors.contains_key("D.main.3.running_var"), "layer-norm critic");
                assert!(ckpt.tensors.contains_key("opt.D.m.main.0.weight"));
            }
            _ => {}
        }
        assert!(log_rows(&dir).iter().all(|r| r[2].is_finite() && r[3].is_finite()));
    }
    let split = runs.path().join("split");
    ganime_ok(&dcgan_args(d, p(&split), "1", "wgan-gp"));
    ganime_ok(&["train", "dcgan", "--resume", p(&split), "--steps", "2", "--quiet"]);
    assert_same_tensors(&runs.path().join("wgan-gp"), &split);
    let err = ganime_err(&dcgan_args(d, p(&runs.path().join("x")), "1", "relativistic"));
    assert!(err.contains("relativistic") && err.contains("hinge") && err.contains("wgan-gp"), "{err}");
}

#[test]
fn dcgan_small_data_recipe_resumes_exactly_and_ships_the_moving_average() {
    let Some(data) = anime_subset(48) else { return };
    let runs = tempfile::tempdir().unwrap();
    let d = p(data.path());
    let with_recipe = |out: &Path, steps: &str| -> Vec<String> {
        let mut args: Vec<String> = dcgan_args(d, p(out), steps, "bce").into_iter().map(String::from).collect();
        args.extend(["--recipe", "small-data", "--r1", "0.1"].map(String::from));
        args
    };
    let straight = runs.path().join("straight");
    let args = with_recipe(&straight, "3");
    ganime_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let ckpt = Checkpoint::read(&straight, &Device::Cpu).unwrap();
    let state = ckpt.header.state.as_ref().unwrap();
    // The recipe: hinge, SN-D without BatchNorm, DiffAugment, EMA, D at twice G's rate.
    assert_eq!(state["objective"], "hinge");
    let recipe = &state["options"]["recipe"];
    assert_eq!(
        (recipe["spectral_norm"].as_bool(), recipe["ema"].as_f64(), recipe["lr_d"].as_f64()),
        (Some(true), Some(0.999), Some(4e-4)),
        "{recipe}"
    );
    assert_eq!(recipe["diffaugment"]["cutout"], true);
    assert!(ckpt.tensors.contains_key("D.main.0.weight_u") && !ckpt.tensors.keys().any(|k| k.starts_with("D.") && k.contains("running")));
    let (g, avg) = (&ckpt.tensors["G.main.0.weight"], &ckpt.tensors["task.ema.main.0.weight"]);
    assert!((g - avg).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0, "the average lags G");
    assert!(log_rows(&straight).iter().all(|r| r[2].is_finite() && r[3].is_finite()));

    // Stopped after one step and resumed: the same weights, average, u vectors, moments and generator state.
    let split = runs.path().join("split");
    let args = with_recipe(&split, "1");
    ganime_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ganime_ok(&["train", "dcgan", "--resume", p(&split), "--steps", "3", "--quiet"]);
    assert_same_tensors(&straight, &split);

    // export ships the average under G's keys; generate on the run folder uses it too.
    let small = runs.path().join("g.safetensors");
    ganime_ok(&["export", "--checkpoint", p(&straight), "--out", p(&small), "--dtype", "f32"]);
    let exported = Checkpoint::read(&small, &Device::Cpu).unwrap();
    assert!(exported.tensors.keys().all(|k| k.starts_with("G.")));
    let shipped: Vec<f32> = exported.tensors["G.main.0.weight"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(shipped, avg.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    let from_run = ganime::generate::load_generator(Some(&straight), &Device::Cpu).unwrap();
    let from_file = ganime::generate::load_generator(Some(&small), &Device::Cpu).unwrap();
    assert_eq!(from_run.identity(), from_file.identity());

    // Bad recipe values name the flag and the value.
    let bad_dir = runs.path().join("bad");
    let mut bad = dcgan_args(d, p(&bad_dir), "1", "bce");
    bad.extend(["--diffaugment", "color,flip"]);
    let err = ganime_err(&bad);
    assert!(err.contains("--diffaugment") && err.contains("flip"), "{err}");
    let mut bad = dcgan_args(d, p(&bad_dir), "1", "bce");
    bad.extend(["--ema", "1.5"]);
    let err = ganime_err(&bad);
    assert!(err.contains("--ema") && err.contains("1.5"), "{err}");
}

#[test]
fn compare_writes_side_by_side_grids_and_loss_plots() {
    let Some(data) = anime_subset(16) else { return };
    let out = tempfile::tempdir().unwrap();
    ganime_ok(&[
        "train",
        "compare",
        "--data",
        p(data.path()),
        "--out",
        p(out.path()),
        "--objectives",
        "bce,wgan-gp",
        "--steps",
        "2",
        "--image-size",
        "16",
        "--ngf",
        "4",
        "--ndf",
        "4",
        "--batch-size",
        "8",
        "--quiet",
    ]);
    let (w, h) = image_size(&out.path().join("comparison.png"));
    // Two grids of 8x8 16px samples (8*18+2 = 146 px) side by side under a title band.
    assert_eq!((w, h), (2 * (146 + 8) + 8, 146 + 28 + 8));
    for f in ["d_loss.png", "g_loss.png", "bce/checkpoint.safetensors", "wgan-gp/checkpoint.safetensors"] {
        assert!(out.path().join(f).exists(), "{f} missing");
    }
}

fn animegan_args<'a>(photos: &'a str, anime: &'a str, vgg: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "animegan",
        "--photos",
        photos,
        "--anime",
        anime,
        "--vgg",
        vgg,
        "--out",
        out,
        "--image-size",
        "32",
        "--width",
        "4",
        "--d-channels",
        "8",
        "--batch-size",
        "2",
        "--steps",
        steps,
        "--init-steps",
        "2",
        "--feature-layer",
        "conv3_1",
        "--sample-every",
        "2",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--seed",
        "7",
        "--quiet",
    ]
}

/// `n` face photos, `n` anime portraits (temporary subsets) and the shared VGG16, or None without shared data.
fn animegan_inputs(n: usize) -> Option<(tempfile::TempDir, tempfile::TempDir, PathBuf)> {
    Some((subset("data/face2anime/trainA", n)?, subset("data/face2anime/trainB", n)?, shared_path(ganime::models::vgg::VGG16_IMAGENET_SHARED)?))
}

/// `--eval-every`: the stylised photos' distance to the anime set in metrics.csv, the best checkpoint kept and
/// usable as a filter, and too few pictures refused.
#[test]
fn animegan_measures_quality_and_keeps_the_best_checkpoint() {
    let Some((photos, anime, vgg)) = animegan_inputs(10) else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let run = runs.path().join("run");
    let mut args = animegan_args(p(photos.path()), p(anime.path()), p(&vgg), p(&run), "4");
    args.extend(["--eval-every", "2", "--eval-count", "10"]);
    ganime_ok(&args);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    assert_eq!(lines.next(), Some("step,Fréchet distance,kernel distance"));
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.iter().map(|r| r[0]).collect::<Vec<_>>(), vec![2.0, 4.0], "{metrics}");
    assert!(rows.iter().all(|r| r[1].is_finite() && r[1] > 0.0 && r[2].is_finite()), "{metrics}");
    // The best of the two evaluations is the kept checkpoint, and it opens as a filter.
    let best_step = if rows[1][2] < rows[0][2] { 4 } else { 2 };
    let best = run.join("best.checkpoint.safetensors");
    assert_eq!(Checkpoint::read(&best, &Device::Cpu).unwrap().header.state.unwrap()["step"], best_step);
    let events = std::fs::read_to_string(run.join("events.log")).unwrap();
    assert!(events.contains(&format!("step {best_step}: new best kernel distance")), "{events}");
    assert!(ganime::filters::open(&format!("animegan:{}", best.display())).is_ok());
    assert!(run.join("metrics.png").is_file());
    // --resume goes on measuring (the run stored --eval-every) without being told again; --eval-every 0 turns
    // it off for later resumes too.
    let measured_steps = || {
        let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        metrics.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect::<Vec<_>>()
    };
    ganime_ok(&["train", "animegan", "--resume", p(&run), "--steps", "6", "--quiet"]);
    assert_eq!(measured_steps(), ["2", "4", "6"]);
    ganime_ok(&["train", "animegan", "--resume", p(&run), "--steps", "8", "--eval-every", "0", "--quiet"]);
    ganime_ok(&["train", "animegan", "--resume", p(&run), "--steps", "10", "--quiet"]);
    assert_eq!(measured_steps(), ["2", "4", "6"]);
    assert!(ganime_err(&["train", "animegan", "--resume", p(&run), "--steps", "12", "--eval-count", "10"]).contains("--eval-count 10"));

    let few = runs.path().join("few");
    let mut args = animegan_args(p(photos.path()), p(anime.path()), p(&vgg), p(&few), "2");
    args.extend(["--eval-every", "1", "--eval-count", "5"]);
    assert!(ganime_err(&args).contains("--eval-count 5"));
}

#[test]
fn animegan_trains_with_init_phase_resumes_exactly_and_filters() {
    let Some((photos, anime, vgg)) = animegan_inputs(4) else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    let (pp, pa, pv) = (p(photos.path()), p(anime.path()), p(&vgg));
    ganime_ok(&animegan_args(pp, pa, pv, p(&straight), "4"));

    let ckpt = Checkpoint::read(&straight, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.kind, "animegan");
    // D is spectrally normalised by default (its u vectors are kept).
    for key in [
        "G.block_a.0.1.weight",
        "G.out_layer.0.weight",
        "D.layers.0.conv.weight",
        "D.layers.0.conv.weight_u",
        "D.layers.2.norm.weight",
        "opt.D.m.layers.0.conv.weight",
    ] {
        assert!(ckpt.tensors.contains_key(key), "checkpoint lacks {key}");
    }
    // The recipe's defaults: caffe-scale features, random 24px crops of the 32px pictures, DiffAugment without
    // colour, the anime set's colour cast measured and stored.
    let model = &ckpt.header.model;
    assert_eq!(model["feature_scale"], 1.0);
    assert_eq!(model["crop"], 24);
    assert_eq!(model["diffaugment"], serde_json::json!({"color": false, "translation": true, "cutout": true}));
    assert_eq!(model["anime_color_offset"].as_array().map(Vec::len), Some(3));
    // The edge-smoothed anime pictures were made once at the training size, one per anime picture.
    let smoothed: Vec<_> = std::fs::read_dir(straight.join("anime-smoothed-32px")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(smoothed.len(), 4);
    assert!(smoothed.iter().all(|f| image_size(f) == (32, 32)));
    // Four (photo, stylisation) pairs, two per row, 32px with 2px borders.
    assert_eq!(image_size(&straight.join("samples/step_0000004.png")), (4 * 34 + 2, 2 * 34 + 2));
    let rows = log_rows(&straight);
    assert_eq!(rows.len(), 4);
    // Steps 1-2: content-only initialisation (D untouched, loss 0); steps 3-4: adversarial.
    assert!(rows[..2].iter().all(|r| r[2] == 0.0 && r[3] > 0.0), "{rows:?}");
    assert!(rows[2..].iter().all(|r| r[2] > 0.0 && r[3] > 0.0 && r[2..6].iter().all(|v| v.is_finite())), "{rows:?}");
    // Each weighted loss term per logged step: content (and the pixel term, 0 unless asked) in the
    // initialisation, then the terms of the adversarial phase, which sum to the logged G loss.
    let terms = std::fs::read_to_string(straight.join("loss-terms.csv")).unwrap();
    let mut lines = terms.lines();
    assert_eq!(
        lines.next(),
        Some("step,adversarial,content,style,colour,tv,chroma,init_pixel,structure,grad_adversarial,grad_content,grad_style,grad_colour,grad_tv,grad_chroma,grad_init_pixel,grad_structure")
    );
    let terms: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(terms.len(), 4);
    assert!(terms[..2].iter().all(|t| t[2] > 0.0 && [1, 3, 4, 5, 6, 7, 8].iter().all(|&i| t[i] == 0.0)), "{terms:?}");
    // Gradient norms at G's output, measured at every logged step here (--log-every 1): a term that is 0
    // has none, every other has one.
    for t in &terms {
        for i in 1..9 {
            assert_eq!(t[i] == 0.0, t[i + 8] == 0.0, "term {i} and its gradient norm: {t:?}");
        }
    }
    for (t, r) in terms[2..].iter().zip(&rows[2..]) {
        // --chroma-weight and --structure-weight are 0 here.
        assert!(t[1..6].iter().all(|&v| v > 0.0) && t[6] == 0.0 && t[7] == 0.0 && t[8] == 0.0, "{t:?}");
        let sum: f64 = t[1..9].iter().sum();
        assert!((sum - r[3]).abs() <= 1e-4 * r[3], "terms {t:?} sum to {sum}, G loss {}", r[3]);
    }
    assert!(straight.join("loss-terms.png").is_file());
    // D's optimiser only counted the adversarial steps.
    let state = ckpt.header.state.clone().unwrap();
    assert_eq!(state["adam_steps"]["D"], 2);
    // G's optimiser started afresh when the adversarial phase began (the initialisation has its own).
    assert_eq!(state["adam_steps"]["G"], 2);

    ganime_ok(&animegan_args(pp, pa, pv, p(&split), "2"));
    ganime_ok(&["train", "animegan", "--resume", p(&split), "--steps", "4", "--quiet"]);
    assert_same_tensors(&straight, &split);
    assert_eq!(std::fs::read_to_string(split.join("loss-terms.csv")).unwrap().lines().count(), 5, "resume keeps the term log's rows");

    // Loss weights given with --resume replace the stored ones from there on: the structure term (White-box
    // Cartoonization's superpixel loss) appears in the log with its gradient, and the checkpoint records it.
    ganime_ok(&[
        "train",
        "animegan",
        "--resume",
        p(&split),
        "--steps",
        "5",
        "--structure-weight",
        "2",
        "--chroma-weight",
        "3",
        "--keep-color-cast",
        "--photo-scale-min",
        "0.5",
        "--superpixel-size",
        "40",
        "--chroma-gain",
        "1.5",
        "--quiet",
    ]);
    let model = Checkpoint::read(&split, &Device::Cpu).unwrap().header.model;
    assert_eq!(model["anime_color_offset"], serde_json::json!([0.0, 0.0, 0.0]), "--keep-color-cast on resume keeps the cast from there on");
    assert_eq!((model["weights"]["structure"].clone(), model["weights"]["chroma"].clone()), (serde_json::json!(2.0), serde_json::json!(3.0)));
    assert_eq!(model["weights"]["content"], 1.5, "weights not given keep their stored values");
    assert_eq!((model["photo_scale_min"].clone(), model["superpixel_size"].clone()), (serde_json::json!(0.5), serde_json::json!(40)));
    assert_eq!(model["chroma_gain"], 1.5);
    let terms = std::fs::read_to_string(split.join("loss-terms.csv")).unwrap();
    let last: Vec<f64> = terms.lines().last().unwrap().split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(last[0], 5.0);
    assert!(last[6] > 0.0 && last[8] > 0.0 && last[16] > 0.0, "chroma and structure terms and the structure gradient: {last:?}");
    let err = ganime_err(&["train", "animegan", "--resume", p(&split), "--steps", "6", "--structure-weight=-1"]);
    assert!(err.contains("--structure-weight") && err.contains("not -1"), "{err}");
    let err = ganime_err(&["train", "animegan", "--resume", p(&split), "--steps", "6", "--photo-scale-min", "0.1"]);
    assert!(err.contains("--photo-scale-min") && err.contains("0.1"), "{err}");

    // The exported generator is an AnimeGANv2 file: a filter and `stylize --filter` take it.
    let generator = straight.join("generator.safetensors");
    let filter = ganime::filters::open(&format!("animegan:{}", generator.display())).unwrap();
    let frame = image::RgbImage::from_pixel(30, 22, image::Rgb([200, 120, 40]));
    assert_eq!(filter.apply(&frame).unwrap().dimensions(), (30, 22));

    // `export` writes the same generator from the checkpoint (here in f16); a run folder opens as a filter too.
    let exported = runs.path().join("exported.safetensors");
    ganime_ok(&["export", "--checkpoint", p(&straight), "--out", p(&exported)]);
    let a = ganime::io::weights::read_tensors(&generator, &Device::Cpu).unwrap();
    let b = ganime::io::weights::read_tensors(&exported, &Device::Cpu).unwrap();
    assert_eq!(a.len(), b.len());
    assert_eq!(b["out_layer.0.weight"].dtype(), candle_core::DType::F16);
    assert!(ganime::filters::open(&format!("animegan:{}", straight.display())).is_ok());

    // --max-minutes stops early with a checkpoint (here after the first step).
    let timed = runs.path().join("timed");
    let mut args = animegan_args(pp, pa, pv, p(&timed), "50");
    // ... with each part of the recipe turned off (the reference's plain D, whole pictures, the colour cast kept).
    args.extend(["--max-minutes", "0.0001", "--no-spectral-norm", "--diffaugment", "none", "--crop", "0", "--keep-color-cast"]);
    ganime_ok(&args);
    let timed_ckpt = Checkpoint::read(&timed, &Device::Cpu).unwrap();
    assert_eq!(timed_ckpt.header.state.clone().unwrap()["step"], 1);
    let model = &timed_ckpt.header.model;
    assert_eq!((model["crop"].clone(), model["diffaugment"].clone()), (serde_json::json!(0), serde_json::Value::Null));
    assert_eq!(model["anime_color_offset"], serde_json::json!([0.0, 0.0, 0.0]));
    assert!(!timed_ckpt.tensors.contains_key("D.layers.0.conv.weight_u"));
    assert!(timed.join("generator.safetensors").is_file());

    // Bad input names what was wrong.
    let err = ganime_err(&animegan_args(p(&runs.path().join("no-photos")), pa, pv, p(&runs.path().join("x")), "2"));
    assert!(err.contains("--photos") && err.contains("no-photos"), "{err}");
    let first_photo = std::fs::read_dir(photos.path()).unwrap().next().unwrap().unwrap().path();
    let err = ganime_err(&animegan_args(pp, pa, p(&first_photo), p(&runs.path().join("y")), "2"));
    assert!(err.contains("--vgg"), "{err}");
    let bad_weight = runs.path().join("z");
    let mut args = animegan_args(pp, pa, pv, p(&bad_weight), "2");
    args.push("--chroma-weight=-1");
    let err = ganime_err(&args);
    assert!(err.contains("--chroma-weight") && err.contains("not -1"), "{err}");
}

/// The structure loss and shrunk photos resume exactly too (the shrink factor is drawn from the run's RNG), and
/// the structure term is active in the adversarial steps.
#[test]
fn animegan_structure_loss_and_photo_scale_resume_exactly() {
    let Some((photos, anime, vgg)) = animegan_inputs(4) else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    let (pp, pa, pv) = (p(photos.path()), p(anime.path()), p(&vgg));
    fn with_recipe(mut args: Vec<&str>) -> Vec<&str> {
        args.extend(["--structure-weight", "1", "--superpixel-size", "40", "--photo-scale-min", "0.5"]);
        args
    }
    ganime_ok(&with_recipe(animegan_args(pp, pa, pv, p(&straight), "5")));
    ganime_ok(&with_recipe(animegan_args(pp, pa, pv, p(&split), "3")));
    ganime_ok(&["train", "animegan", "--resume", p(&split), "--steps", "5", "--quiet"]);
    assert_same_tensors(&straight, &split);
    let terms = std::fs::read_to_string(straight.join("loss-terms.csv")).unwrap();
    let rows: Vec<Vec<f64>> = terms.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 5);
    assert!(rows[..2].iter().all(|r| r[8] == 0.0) && rows[2..].iter().all(|r| r[8] > 0.0 && r[16] > 0.0), "{rows:?}");
}

fn distill_args<'a>(photos: &'a str, vgg: &'a str, out: &'a str, steps: &'a str) -> Vec<&'a str> {
    vec![
        "distill",
        "--teacher",
        "toon",
        "--photos",
        photos,
        "--vgg",
        vgg,
        "--out",
        out,
        "--image-size",
        "32",
        "--width",
        "4",
        "--batch-size",
        "2",
        "--steps",
        steps,
        "--sample-every",
        "2",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--seed",
        "3",
        "--quiet",
    ]
}

/// Four training photos, `held_out` other pictures for the fidelity report, and the VGG weights.
fn distill_inputs(held_out: usize) -> Option<(tempfile::TempDir, tempfile::TempDir, PathBuf)> {
    Some((subset("data/face2anime/trainA", 4)?, subset("data/photos/bsds500", held_out)?, shared_path(ganime::models::vgg::VGG16_IMAGENET_SHARED)?))
}

#[test]
fn distill_trains_a_student_resumes_exactly_and_reports_fidelity() {
    let Some((photos, held_out, vgg)) = distill_inputs(3) else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    let (pp, pv, pe) = (p(photos.path()), p(&vgg), p(held_out.path()));
    let mut args = distill_args(pp, pv, p(&straight), "4");
    args.extend(["--eval-photos", pe, "--eval-size", "64"]);
    let out = ganime(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("PSNR") && stdout.contains("frames/s"), "{stdout}");
    let ckpt = Checkpoint::read(&straight, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.kind, "distill");
    assert_eq!(ckpt.header.model["teacher"], "toon");
    // Photo, teacher, student triplets, two per row, 32 px with 2 px borders.
    assert_eq!(image_size(&straight.join("samples/step_0000004.png")), (6 * 34 + 2, 2 * 34 + 2));
    let terms = std::fs::read_to_string(straight.join("loss-terms.csv")).unwrap();
    assert!(terms.starts_with("step,pixel,feature\n") && terms.lines().count() == 5, "{terms}");
    // The report: the student against the teacher on the held-out pictures.
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(straight.join("fidelity.json")).unwrap()).unwrap();
    assert_eq!(report["fidelity"]["images"], 3);
    let psnr = report["fidelity"]["psnr_db"].as_f64().unwrap();
    assert!(psnr.is_finite() && psnr > 3.0 && psnr < 60.0, "{report}");
    assert!(report["student_fps_320x240"].as_f64().unwrap() > 0.0);

    // Resumed in two halves: the same weights, moments and RNG.
    ganime_ok(&distill_args(pp, pv, p(&split), "2"));
    ganime_ok(&["distill", "--resume", p(&split), "--steps", "4", "--quiet"]);
    assert_same_tensors(&straight, &split);

    // The student is an AnimeGANv2 generator: a filter opens it (and the run folder).
    let student = straight.join("student.safetensors");
    let filter = ganime::filters::open(&format!("animegan:{}", student.display())).unwrap();
    assert_eq!(filter.apply(&image::RgbImage::from_pixel(30, 22, image::Rgb([90, 140, 200]))).unwrap().dimensions(), (30, 22));
    assert!(ganime::filters::open(&format!("animegan:{}", straight.display())).is_ok());

    // Bad input names what was wrong.
    let (x, y) = (runs.path().join("x"), runs.path().join("y"));
    let mut args = distill_args(pp, pv, p(&x), "2");
    args.extend(["--eval-photos", pp]);
    let err = ganime_err(&args);
    assert!(err.contains("--eval-photos") && err.contains("never trained on"), "{err}");
    let mut args = distill_args(pp, pv, p(&y), "2");
    args[2] = "matta size=160";
    let err = ganime_err(&args);
    assert!(err.contains("--teacher") && err.contains("without options"), "{err}");
    args[2] = "nosuchfilter";
    let err = ganime_err(&args);
    assert!(err.contains("--teacher") && err.contains("nosuchfilter"), "{err}");
    assert!(!y.join("checkpoint.safetensors").exists());
}

/// `--student transformer-net`: a TransformerNet learns the teacher (its pixel loss falls), resumes exactly, and
/// the exported student opens as a `style:` filter, which the report used.
#[test]
fn distill_into_a_transformer_net_student() {
    let Some((photos, held_out, vgg)) = distill_inputs(2) else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split) = (runs.path().join("straight"), runs.path().join("split"));
    let (pp, pv, pe) = (p(photos.path()), p(&vgg), p(held_out.path()));
    fn with_student(mut args: Vec<&str>) -> Vec<&str> {
        args.extend(["--student", "transformer-net"]);
        args
    }
    let mut args = with_student(distill_args(pp, pv, p(&straight), "12"));
    args.extend(["--eval-photos", pe, "--eval-size", "48", "--feature-weight", "0", "--lr", "2e-3"]);
    let out = ganime(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("style:"), "{}", String::from_utf8_lossy(&out.stderr));
    let ckpt = Checkpoint::read(&straight, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.model["student"]["widths"], serde_json::json!([4, 8, 16]));
    let pixel: Vec<f64> = std::fs::read_to_string(straight.join("loss-terms.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(pixel[9..].iter().sum::<f64>() < pixel[..3].iter().sum::<f64>(), "the pixel loss did not fall: {pixel:?}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(straight.join("fidelity.json")).unwrap()).unwrap();
    assert_eq!(report["fidelity"]["images"], 2);

    let mut args = with_student(distill_args(pp, pv, p(&split), "6"));
    args.extend(["--feature-weight", "0", "--lr", "2e-3"]);
    ganime_ok(&args);
    ganime_ok(&["distill", "--resume", p(&split), "--steps", "12", "--quiet"]);
    assert_same_tensors(&straight, &split);
    // A lower rate for the last steps replaces the stored one; a bad one is refused.
    ganime_ok(&["distill", "--resume", p(&split), "--steps", "13", "--lr", "1e-4", "--quiet"]);
    let state = Checkpoint::read(&split, &Device::Cpu).unwrap().header.state.unwrap();
    assert_eq!(state["config"]["adam"]["lr"], 1e-4);
    let err = ganime_err(&["distill", "--resume", p(&split), "--steps", "14", "--lr", "0"]);
    assert!(err.contains("--lr must be a positive number"), "{err}");

    let filter = ganime::filters::open(&format!("style:{}", straight.join("student.safetensors").display())).unwrap();
    assert_eq!(filter.apply(&image::RgbImage::from_pixel(30, 22, image::Rgb([90, 140, 200]))).unwrap().dimensions(), (30, 22));
}

/// `--student tf-transformer-net --student-from-teacher`: the student starts as matta cut to its widths (the
/// library's `narrowed`), resumes exactly, and opens as a `tfstyle:` filter; teachers and students it cannot
/// cut are refused by name.
#[test]
fn distill_matta_into_a_narrowed_copy_of_itself() {
    let Some((photos, _, vgg)) = distill_inputs(0) else {
        return;
    };
    let runs = tempfile::tempdir().unwrap();
    let (straight, split, still) = (runs.path().join("straight"), runs.path().join("split"), runs.path().join("still"));
    let (pp, pv) = (p(photos.path()), p(&vgg));
    fn narrowed_matta(mut args: Vec<&str>) -> Vec<&str> {
        args[2] = "matta";
        args.extend(["--student", "tf-transformer-net", "--residual-blocks", "2", "--student-from-teacher"]);
        args
    }
    // At a rate too small to move any weight, the exported student is the narrowed teacher.
    let mut args = narrowed_matta(distill_args(pp, pv, p(&still), "1"));
    args.extend(["--lr", "1e-12"]);
    let out = ganime(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tfstyle:"), "{}", String::from_utf8_lossy(&out.stderr));
    let config = ganime::models::tf_transformer_net::TfTransformerNetConfig { widths: [4, 8, 16], residual_blocks: 2 };
    let teacher = candle_core::safetensors::load_buffer(ganime::filters::builtin::matta_bytes(), &Device::Cpu).unwrap();
    let expected = ganime::models::tf_transformer_net::narrowed(&teacher, &config, "matta").unwrap();
    let student = ganime::io::weights::read_tensors(&still.join("student.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(student.len(), expected.len());
    for (key, t) in &expected {
        let d = (&student[key].to_dtype(candle_core::DType::F32).unwrap() - t).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-6, "{key}: differs from the narrowed teacher by {d}");
    }
    let ckpt = Checkpoint::read(&still, &Device::Cpu).unwrap();
    assert_eq!(ckpt.header.model["student"]["tf_transformer_net"]["widths"], serde_json::json!([4, 8, 16]));
    assert_eq!(ckpt.header.model["student_from_teacher"], true);

    ganime_ok(&narrowed_matta(distill_args(pp, pv, p(&straight), "4")));
    ganime_ok(&narrowed_matta(distill_args(pp, pv, p(&split), "2")));
    ganime_ok(&["distill", "--resume", p(&split), "--steps", "4", "--quiet"]);
    assert_same_tensors(&straight, &split);
    let filter = ganime::filters::open(&format!("tfstyle:{}", straight.join("student.safetensors").display())).unwrap();
    assert_eq!(filter.apply(&image::RgbImage::from_pixel(30, 22, image::Rgb([90, 140, 200]))).unwrap().dimensions(), (30, 22));

    let bad = runs.path().join("bad");
    let mut args = narrowed_matta(distill_args(pp, pv, p(&bad), "1"));
    args[2] = "toon";
    let err = ganime_err(&args);
    assert!(err.contains("toon is not a TensorFlow fast-style transformer"), "{err}");
    let mut args = distill_args(pp, pv, p(&bad), "1");
    args.extend(["--student", "transformer-net", "--student-from-teacher"]);
    let err = ganime_err(&args);
    assert!(err.contains("--student-from-teacher needs --student tf-transformer-net"), "{err}");
    let mut args = narrowed_matta(distill_args(pp, pv, p(&bad), "1"));
    let width = args.iter().position(|a| *a == "--width").unwrap() + 1;
    args[width] = "64"; // matta's first stage has 32 channels
    let err = ganime_err(&args);
    assert!(err.contains("has 32 channels"), "{err}");
    assert!(!bad.join("checkpoint.safetensors").exists());
}
