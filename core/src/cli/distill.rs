//! `ganime distill`: a thin wrapper over `train::distill`.

use super::train::UnpairedRunArgs;
use crate::device::parse_device;
use crate::models::animegan::AnimeGanWidths;
use crate::models::tf_transformer_net::TfTransformerNetConfig;
use crate::models::transformer_net::TransformerNetConfig;
use crate::train::distill::{fidelity, frames_per_second, image_spec, train_distill, DistillConfig, StudentConfig, STUDENT_FILE};
use crate::train::AdamParams;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct DistillArgs {
    /// The filter to reproduce: a built-in name (`matta`, `style07`, …) or `KIND:PATH` (e.g. a full-width
    /// `animegan:face_paint_512_v2.pt`), without processing options.
    #[arg(long, required_unless_present = "resume")]
    teacher: Option<String>,
    /// Folder of photos or video frames to train on (repeat for several).
    #[arg(long, required_unless_present = "resume")]
    photos: Vec<PathBuf>,
    /// Run folder: checkpoint.safetensors, student.safetensors, samples/ (photo, teacher, student), log.csv,
    /// loss-terms.csv, fidelity.json.
    #[arg(long, required_unless_present = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this folder exactly where its checkpoint stopped.
    #[arg(long, conflicts_with_all = ["teacher", "photos", "out"])]
    resume: Option<PathBuf>,
    /// Held-out pictures (never trained on) for the report at the end: PSNR and VGG feature distance of the
    /// student against the teacher, both run at --eval-size.
    #[arg(long)]
    eval_photos: Option<PathBuf>,
    /// Processing size (long side, like a filter's `size=`) of the report's fidelity and speed measurements.
    #[arg(long, default_value_t = 160)]
    eval_size: u32,
    /// At most this many held-out pictures, spread over the folder.
    #[arg(long, default_value_t = 50)]
    eval_count: usize,
    /// The student network: `animegan` (an AnimeGANv2 generator), `transformer-net` (a pytorch/examples
    /// fast-neural-style TransformerNet, the architecture of `style:` filters) or `tf-transformer-net` (the
    /// TensorFlow fast-style transformer of `matta` and `tfstyle:` filters).
    #[arg(long, default_value = "animegan", value_parser = ["animegan", "transformer-net", "tf-transformer-net"])]
    student: String,
    /// Student width: channels of the first stage (later stages 2x, 4x and, for AnimeGANv2, 8x). Default: 8 for
    /// `animegan`, 16 for the others.
    #[arg(long)]
    width: Option<usize>,
    /// Residual blocks of a `transformer-net` (default 3) or `tf-transformer-net` (default 5) student.
    #[arg(long)]
    residual_blocks: Option<usize>,
    /// Start a `tf-transformer-net` student as the teacher itself (`matta`, `matta-live` or `tfstyle:PATH`) cut to the
    /// student's widths, keeping the channels and residual blocks the teacher weighs most, instead of at random.
    #[arg(long)]
    student_from_teacher: bool,
    /// Training picture size (centre-cropped square). Train at the scale the student will run at: a 320×240
    /// frame filtered at `size=160` is 160×120.
    #[arg(long, default_value_t = 120)]
    image_size: usize,
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Total steps to reach (with --resume: the new total).
    #[arg(long)]
    steps: Option<u64>,
    /// Adam's learning rate [default: 5e-4]; with --resume it replaces the run's (lower it for the last steps).
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long, default_value_t = 1.0)]
    pixel_weight: f64,
    /// Weight of the VGG feature L1 (features ÷ 255).
    #[arg(long, default_value_t = 1.0)]
    feature_weight: f64,
    #[arg(long, default_value = "conv3_1")]
    feature_layer: String,
    /// VGG16/VGG19 weights for the feature term (default: the shared ImageNet VGG16).
    #[arg(long)]
    vgg: Option<PathBuf>,
    #[command(flatten)]
    run: UnpairedRunArgs,
}

pub fn run(a: DistillArgs) -> Result<()> {
    let device = parse_device(&a.run.device)?;
    let out = match (&a.resume, &a.out) {
        (Some(dir), _) => dir.clone(),
        (None, Some(out)) => out.clone(),
        (None, None) => bail!("--out is required"),
    };
    if let Some(eval) = &a.eval_photos {
        if !eval.is_dir() {
            bail!("--eval-photos {} is not a folder", eval.display());
        }
        // The training folders: given now, or those of the run being resumed.
        let photos = match &a.resume {
            Some(dir) => {
                crate::train::trainer::read_run::<DistillConfig>(dir, crate::train::distill::CHECKPOINT_KIND, "a distillation run", &device)?.0.photos
            }
            None => a.photos.clone(),
        };
        let eval_real = eval.canonicalize().with_context(|| format!("--eval-photos {}", eval.display()))?;
        if photos.iter().any(|p| p.canonicalize().ok().as_ref() == Some(&eval_real)) {
            bail!("--eval-photos {} is also a --photos folder: the report needs pictures the student never trained on", eval.display());
        }
    }
    if a.eval_size < 8 {
        bail!("--eval-size must be at least 8, not {}", a.eval_size);
    }
    if let Some(lr) = a.lr.filter(|lr| !(*lr > 0.0 && lr.is_finite())) {
        bail!("--lr must be a positive number, not {lr}");
    }
    let summary = if a.resume.is_some() {
        let control = crate::train::trainer::RunControl { learning_rate: a.lr, ..a.run.control(a.steps)? };
        train_distill(None, &out, &device, control)?
    } else {
        let Some(teacher) = a.teacher.clone() else { bail!("--teacher is required") };
        if teacher.split_whitespace().count() > 1 {
            bail!("--teacher '{teacher}': give the filter without options (the teacher runs on each training picture as it is)");
        }
        let vgg = crate::models::vgg::default_vgg(a.vgg.clone())?;
        let w = a.width.unwrap_or(if a.student == "animegan" { 8 } else { 16 });
        if w == 0 || a.batch_size == 0 {
            bail!("--width and --batch-size must be positive");
        }
        if a.image_size < 16 || a.image_size % 4 != 0 {
            bail!("--image-size must be a multiple of 4 and at least 16, not {}", a.image_size);
        }
        if a.residual_blocks == Some(0) {
            bail!("--residual-blocks must be positive");
        }
        if a.residual_blocks.is_some() && a.student == "animegan" {
            bail!("--residual-blocks: the animegan student's blocks are fixed; it applies to transformer-net and tf-transformer-net");
        }
        if a.student_from_teacher && a.student != "tf-transformer-net" {
            bail!("--student-from-teacher needs --student tf-transformer-net (the architecture of the teachers it can cut down)");
        }
        let widths = [w, 2 * w, 4 * w];
        let student = match a.student.as_str() {
            "animegan" => StudentConfig::AnimeGan(AnimeGanWidths { c32: w, c64: 2 * w, c128: 4 * w, c256: 8 * w }),
            "transformer-net" => StudentConfig::TransformerNet(TransformerNetConfig { widths, residual_blocks: a.residual_blocks.unwrap_or(3) }),
            _ => StudentConfig::TfTransformerNet {
                tf_transformer_net: TfTransformerNetConfig { widths, residual_blocks: a.residual_blocks.unwrap_or(5) },
            },
        };
        let model = DistillConfig {
            teacher,
            student,
            photos: a.photos.clone(),
            vgg,
            feature_layer: a.feature_layer.clone(),
            pixel_weight: a.pixel_weight,
            feature_weight: a.feature_weight,
            student_from_teacher: a.student_from_teacher,
        };
        let Some(first) = a.photos.first().cloned() else { bail!("--photos: give at least one photo folder") };
        let adam = AdamParams { lr: a.lr.unwrap_or(5e-4), beta1: 0.9, ..AdamParams::default() };
        let config = a.run.train_config(first, image_spec(a.image_size), a.batch_size, a.steps.unwrap_or(2000), adam);
        train_distill(Some((model, config)), &out, &device, a.run.control(None)?)?
    };
    let student = out.join(STUDENT_FILE);
    if crate::train::interrupt::requested() {
        return Ok(());
    }
    let ckpt = crate::io::checkpoint::Checkpoint::read(&out, &candle_core::Device::Cpu)?;
    let model: DistillConfig = serde_json::from_value(ckpt.header.model.clone()).context("malformed distillation config")?;
    let spec = model.student.filter_spec(&student);
    eprintln!("done: {} steps, {:.1} s; student {} (use it as --filter {spec})", summary.steps, summary.seconds, student.display());
    let size = a.eval_size;
    let open = |spec: String| crate::filters::open_with_options(&spec).map(|c| c.filter);
    let student_filter = open(format!("{spec} size={size}"))?;
    let student_fps = frames_per_second(student_filter.as_ref(), 15)?;
    let mut report = serde_json::json!({ "teacher": model.teacher, "steps": summary.steps, "seconds": summary.seconds, "eval_size": size, "student_fps_320x240": student_fps });
    println!("student at size={size}: {student_fps:.1} frames/s on 320x240 frames");
    if let Some(eval) = &a.eval_photos {
        let teacher_filter = open(format!("{} size={size}", model.teacher))?;
        let vgg = crate::models::vgg::Vgg::load(
            &model.vgg,
            &[&model.feature_layer],
            Default::default(),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )?;
        let f = fidelity(teacher_filter.as_ref(), student_filter.as_ref(), eval, a.eval_count, &vgg, &model.feature_layer)?;
        println!(
            "fidelity on {} held-out pictures of {} (both at size={size}): PSNR {:.2} dB, relative {} feature distance {:.3}",
            f.images,
            eval.display(),
            f.psnr_db,
            model.feature_layer,
            f.relative_feature_distance
        );
        report["fidelity"] = serde_json::to_value(&f)?;
        report["eval_photos"] = serde_json::json!(eval.display().to_string());
    }
    crate::io::atomic::write_atomic(&out.join("fidelity.json"), |tmp| Ok(std::fs::write(tmp, serde_json::to_string_pretty(&report)? + "\n")?))?;
    Ok(())
}
