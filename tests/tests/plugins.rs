//! The editor plug-in end to end: the cdylib driven by a C host (compiled here with the system C compiler) and by
//! the Rust host loader, each generating and stylising and compared pixel for pixel with the CLI / library, and
//! each feeding bad input. The GIMP and Krita tests run the real editors headless; they skip when the editor is
//! not installed, except in CI (`CI=true`, or `GANIME_REQUIRE_SHARED=1` as .ci/run sets) or with `GANIME_REQUIRE_EDITORS=1`, where that is a failure.
//!
//! The generator is the pytorch/examples DCGAN golden (`golden/dcgan-netG.pth`, 64x64): a real checkpoint that
//! needs no training here. The filter is the AnimeGANv2 golden network (see `filter_spec`).

use ganime_e2e::*;
use ganime_plugin_abi::host::{Image, Plugin};
use ganime_plugin_abi::*;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `target/<profile>/libganime_plugin.so`, built on first use (cargo is a no-op when it is up to date).
fn plugin_lib() -> PathBuf {
    static LIB: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "ganime-plugins", "--lib"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        assert!(cmd.current_dir(workspace_root()).status().unwrap().success(), "building the plug-in failed");
        let lib = profile_dir.join(format!("{}ganime_plugin{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
        assert!(lib.exists(), "{} missing after build", lib.display());
        lib
    })
    .clone()
}

fn golden_generator() -> Option<PathBuf> {
    shared_path("golden/dcgan-netG.pth")
}

/// A learned filter when the registry and the shared data have one (AnimeGANv2 at the golden's reduced width),
/// else `toon`, else `passthrough`.
fn filter_spec() -> String {
    let golden = shared_path("golden/animeganv2-net.pt");
    match golden {
        Some(path) if ganime::filters::model_kinds().contains(&"animegan") => format!("animegan:{}", path.display()),
        _ if ganime::filters::builtin_names().contains(&"toon") => "toon".into(),
        _ => "passthrough".into(),
    }
}

/// Whether an editor test must run: a missing editor skips, except in CI or when required explicitly.
fn editor_available(program: &str) -> bool {
    let found = Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success());
    let required = ["CI", "GANIME_REQUIRE_EDITORS", "GANIME_REQUIRE_SHARED"].iter().any(|k| std::env::var(k).is_ok_and(|v| v == "true" || v == "1"));
    assert!(
        found || !required,
        "{program} is not installed, and editor tests are required here (apt-get install gimp libgimp2.0-dev krita python3-pyqt5)"
    );
    if !found {
        eprintln!("skipping: {program} is not installed");
    }
    found
}

fn read_ppm(path: &Path) -> RgbImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // "P6\n<w> <h>\n255\n" then packed RGB.
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(std::str::from_utf8(&bytes[start..pos]).unwrap().to_string());
    }
    assert_eq!((fields[0].as_str(), fields[3].as_str()), ("P6", "255"), "{}", path.display());
    let (w, h): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    RgbImage::from_raw(w, h, bytes[pos + 1..].to_vec()).unwrap_or_else(|| panic!("{}: short pixel data", path.display()))
}

fn read_rgb(path: &Path) -> RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

fn assert_same(what: &str, got: &RgbImage, want: &RgbImage) {
    assert_eq!(got.dimensions(), want.dimensions(), "{what}: size");
    let differing = got.pixels().zip(want.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{what}: {differing} pixels differ from the reference");
}

/// The CLI's sheet (seed 3, 6 images, 3 columns) and its first two images, and the library's stylisation of
/// the sheet: the references every host is compared with.
struct Reference {
    sheet: RgbImage,
    singles: Vec<RgbImage>,
    styled: RgbImage,
}

fn reference(generator: &Path, dir: &Path) -> Reference {
    let sheet_png = dir.join("cli-sheet.png");
    ganime_ok(&["generate", "--checkpoint", p(generator), "--count", "6", "--seed", "3", "--columns", "3", "--out", p(&sheet_png)]);
    let singles_dir = dir.join("cli-singles");
    ganime_ok(&["generate", "--checkpoint", p(generator), "--count", "2", "--seed", "3", "--out-dir", p(&singles_dir)]);
    let sheet = read_rgb(&sheet_png);
    let singles = (0..2).map(|i| read_rgb(&singles_dir.join(format!("seed3_{i:04}.png")))).collect();
    let styled = ganime::filters::open(&filter_spec()).unwrap().apply(&sheet).unwrap();
    Reference { sheet, singles, styled }
}

#[test]
fn c_host_generates_stylises_like_the_cli_and_rejects_bad_input() {
    let Some(generator) = golden_generator() else { return };
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("test_host");
    let root = workspace_root();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&cc)
        .args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("plugin-abi/include"))
        .arg(root.join("plugins/c/test_host.c"))
        .arg("-o")
        .arg(&exe)
        .args(["-ldl", "-lpthread", "-lm"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(compiled.status.success(), "compiling the C host failed:\n{}", String::from_utf8_lossy(&compiled.stderr));

    let out = Command::new(&exe).arg(plugin_lib()).arg(&generator).arg(filter_spec()).arg(dir.path()).env("RAYON_NUM_THREADS", "2").output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "C host failed:\n{log}");
    assert!(log.contains(", 0 failed"), "{log}");
    eprintln!("{log}");

    let r = reference(&generator, dir.path());
    assert_same("C host sheet vs `ganime generate --out`", &read_ppm(&dir.path().join("sheet.ppm")), &r.sheet);
    for (i, want) in r.singles.iter().enumerate() {
        assert_same(&format!("C host image {i} vs `ganime generate --out-dir`"), &read_ppm(&dir.path().join(format!("single{i}.ppm"))), want);
    }
    assert_same(&format!("C host {} vs the library", filter_spec()), &read_ppm(&dir.path().join("styled.ppm")), &r.styled);
}

#[test]
fn rust_host_checks_the_version_and_matches_the_library() {
    let Some(generator) = golden_generator() else { return };
    let lib = plugin_lib();
    let err = Plugin::open_version(&lib, GANIME_ABI_VERSION + 1).err().unwrap();
    assert!(err.message.contains("implements ABI version 1, not 2"), "{err}");
    assert!(Plugin::open(Path::new("/no/such/libganime_plugin.so")).err().unwrap().message.contains("cannot load"));
    // A real shared library that is not a ganime plug-in.
    let err = Plugin::open(Path::new("libm.so.6")).err().unwrap();
    assert!(err.message.contains("is not a ganime plug-in"), "{err}");

    let plugin = Plugin::open(&lib).unwrap();
    assert!(plugin.describe().contains("\"passthrough\""), "{}", plugin.describe());
    for builtin in ["\"matta\"", "\"style00\"", "\"style25\""] {
        assert!(plugin.describe().contains(builtin), "{builtin} missing from {}", plugin.describe());
    }
    let mut g = plugin.load(p(&generator), GANIME_ROLE_AUTO).unwrap();
    let info = g.info().unwrap();
    assert_eq!((info.role, info.width, info.height, info.latent_dim), (GANIME_ROLE_GENERATOR, 64, 64, 100));

    // Seeded images equal the library's; explicit latents equal seeded ones; progress reports and cancels.
    let device = candle_core::Device::Cpu;
    let lib_g = ganime::generate::load_generator(Some(&generator), &device).unwrap();
    let z = ganime::generate::latents(3, 2, 100, &device).unwrap();
    let want = ganime::io::image::tensor_to_images(&lib_g.generate(&z).unwrap()).unwrap();
    let mut calls = Vec::new();
    let got = g
        .generate(
            3,
            2,
            None,
            GANIME_FORMAT_RGB8,
            Some(&mut |d, t| {
                calls.push((d, t));
                true
            }),
        )
        .unwrap();
    assert_eq!(calls, [(0, 2), (2, 2)]);
    for (img, w) in got.iter().zip(&want) {
        assert_eq!(img.data, w.as_raw().as_slice());
    }
    let z_values: Vec<f32> = z.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(g.generate(99, 2, Some(&z_values), GANIME_FORMAT_RGB8, None).unwrap(), got);
    let err = g.generate(3, 1, None, GANIME_FORMAT_RGB8, Some(&mut |_, _| false)).unwrap_err();
    assert_eq!(err.status, GANIME_ERR_CANCELLED, "{err}");
    let gray = g.generate(3, 1, None, GANIME_FORMAT_GRAYA8, None).unwrap();
    assert!(gray[0].packed().chunks(2).all(|px| px[1] == 255));

    // Stylise: passthrough in place at any strength changes nothing; the filter matches the library's.
    let sheet = g.sheet(3, 4, 2, GANIME_FORMAT_RGBA8, None).unwrap();
    assert_eq!((sheet.width, sheet.height), (2 * 66 + 2, 2 * 66 + 2));
    let mut pass = plugin.load("passthrough", GANIME_ROLE_AUTO).unwrap();
    let mut copy = sheet.clone();
    pass.stylize_in_place(&mut copy, 0.5, None).unwrap();
    assert_eq!(copy, sheet);
    let mut filter = plugin.load(&filter_spec(), GANIME_ROLE_FILTER).unwrap();
    let styled = filter.stylize(&sheet, 1.0, GANIME_FORMAT_RGB8).unwrap();
    let sheet_rgb = RgbImage::from_fn(sheet.width, sheet.height, |x, y| image::Rgb(sheet.pixel(x, y)[..3].try_into().unwrap()));
    let want = ganime::filters::open(&filter_spec()).unwrap().apply(&sheet_rgb).unwrap();
    assert_eq!(styled.data, want.as_raw().as_slice());

    // Arbitrary style from a picture through the ABI, as the Krita/GIMP filter field takes it.
    assert!(plugin.describe().contains("\"arbitrary\""), "{}", plugin.describe());
    let dir = tempfile::tempdir().unwrap();
    let style = dir.path().join("stripes.png");
    RgbImage::from_fn(48, 48, |x, _| if (x / 4) % 2 == 0 { image::Rgb([230, 40, 30]) } else { image::Rgb([240, 210, 60]) }).save(&style).unwrap();
    let spec = format!("arbitrary:{}", p(&style));
    let styled = plugin.load(&spec, GANIME_ROLE_FILTER).unwrap().stylize(&sheet, 1.0, GANIME_FORMAT_RGB8).unwrap();
    let want = ganime::filters::open(&spec).unwrap().apply(&sheet_rgb).unwrap();
    assert_eq!(styled.data, want.as_raw().as_slice());
    let err = plugin.load("arbitrary:/no/such/painting.jpg", GANIME_ROLE_FILTER).err().unwrap();
    assert!(err.status == GANIME_ERR_LOAD_FAILED && err.message.contains("/no/such/painting.jpg"), "{err}");

    // Wrong kinds, unknown specs, bad buffers.
    assert_eq!(filter.generate(0, 1, None, GANIME_FORMAT_RGB8, None).unwrap_err().status, GANIME_ERR_WRONG_MODEL_KIND);
    let mut small = Image::new(8, 8, GANIME_FORMAT_RGB8, None).unwrap();
    let err = g.stylize_in_place(&mut small, 1.0, None).unwrap_err();
    assert_eq!(err.status, GANIME_ERR_WRONG_MODEL_KIND);
    assert!(err.message.contains("needs a filter"), "{err}");
    let err = plugin.load("sparkles", GANIME_ROLE_FILTER).err().unwrap();
    assert!(err.status == GANIME_ERR_LOAD_FAILED && err.message.contains("sparkles"), "{err}");
    assert_eq!(plugin.load("passthrough", GANIME_ROLE_GENERATOR).err().unwrap().status, GANIME_ERR_LOAD_FAILED);
    assert_eq!(g.generate(0, 1, Some(&[0.0; 3]), GANIME_FORMAT_RGB8, None).unwrap_err().status, GANIME_ERR_INVALID_ARGUMENT);
    assert_eq!(g.generate(0, GANIME_MAX_COUNT + 1, None, GANIME_FORMAT_RGB8, None).unwrap_err().status, GANIME_ERR_INVALID_ARGUMENT);
    let mut short = small.clone();
    let mut raw = GanimeImage { data: short.data.as_mut_ptr(), width: 8, height: 8, stride: 23, format: GANIME_FORMAT_RGB8 };
    let status = unsafe { (plugin.table().stylize)(std::ptr::null_mut(), &raw, &mut raw, 1.0, std::ptr::null()) };
    assert_eq!(status, GANIME_ERR_NULL_POINTER);
    let mut pass_raw = plugin.load("passthrough", GANIME_ROLE_FILTER).unwrap();
    let err = pass_raw.stylize_in_place(&mut Image { stride: 23, ..small.clone() }, 1.0, None).unwrap_err();
    assert!(err.status == GANIME_ERR_INVALID_ARGUMENT && err.message.contains("stride 23"), "{err}");
    let err = pass_raw.stylize_in_place(&mut Image { format: 42, ..small }, 1.0, None).unwrap_err();
    assert!(err.status == GANIME_ERR_UNKNOWN_FORMAT && err.message.contains("42"), "{err}");
}

#[test]
fn gimp_runs_generate_and_stylize_in_batch_mode() {
    let Some(generator) = golden_generator() else { return };
    if !editor_available("gimp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gimp_dir = dir.path().join("gimp");
    let install = Command::new("sh")
        .arg(workspace_root().join("plugins/gimp/install.sh"))
        .arg(plugin_lib())
        .arg(gimp_dir.join("plug-ins/ganime"))
        .output()
        .unwrap();
    assert!(install.status.success(), "plugins/gimp/install.sh failed:\n{}", String::from_utf8_lossy(&install.stderr));

    let (gen_png, styled_png) = (dir.path().join("gimp-generated.png"), dir.path().join("gimp-styled.png"));
    let script = format!(
        r#"(let* ((img (car (plug-in-ganime-generate RUN-NONINTERACTIVE "{g}" 3 6 3)))
                 (layer (car (gimp-image-get-active-layer img))))
            (file-png-save RUN-NONINTERACTIVE img layer "{a}" "{a}" 0 9 0 0 0 0 0)
            (plug-in-ganime-stylize RUN-NONINTERACTIVE img layer "{f}" 1.0)
            (file-png-save RUN-NONINTERACTIVE img layer "{b}" "{b}" 0 9 0 0 0 0 0))"#,
        g = p(&generator),
        a = p(&gen_png),
        b = p(&styled_png),
        f = filter_spec()
    );
    let failing = r#"(plug-in-ganime-generate RUN-NONINTERACTIVE "/no/such/model.pth" 0 1 0)"#;
    let out = Command::new("gimp")
        .args(["-i", "-d", "-f", "--stack-trace-mode", "never", "-b", &script, "-b", failing, "-b", "(gimp-quit 0)"])
        .env("GIMP2_DIRECTORY", &gimp_dir)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // GIMP exits 0 even when a procedure fails: the files and their pixels are the test.
    assert!(gen_png.exists() && styled_png.exists(), "GIMP wrote no images:\n{log}");
    assert!(log.contains("/no/such/model.pth does not exist"), "GIMP did not report the plug-in's error:\n{log}");

    let r = reference(&generator, dir.path());
    assert_same("GIMP plug-in-ganime-generate vs `ganime generate --out`", &read_rgb(&gen_png), &r.sheet);
    assert_same(&format!("GIMP plug-in-ganime-stylize {} vs the library", filter_spec()), &read_rgb(&styled_png), &r.styled);
}

#[test]
fn krita_runs_generate_and_stylize_headless() {
    let Some(generator) = golden_generator() else { return };
    if !editor_available("kritarunner") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pykrita = dir.path().join("pykrita");
    let install = Command::new("sh").arg(workspace_root().join("plugins/krita/install.sh")).arg(plugin_lib()).arg(&pykrita).output().unwrap();
    assert!(install.status.success(), "plugins/krita/install.sh failed:\n{}", String::from_utf8_lossy(&install.stderr));
    std::fs::copy(workspace_root().join("plugins/krita/tests/ganime_krita_e2e.py"), pykrita.join("ganime_krita_e2e.py")).unwrap();

    let out = Command::new("kritarunner")
        .args(["-s", "ganime_krita_e2e", "-f", "main"])
        .arg(&generator)
        .arg(filter_spec())
        .arg(dir.path())
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONPATH", &pykrita)
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("XDG_RUNTIME_DIR", dir.path().join("runtime"))
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let result = std::fs::read_to_string(dir.path().join("krita-result.txt")).unwrap_or_default();
    assert_eq!(result.trim(), "ok", "the Krita script did not finish:\n{log}");

    let r = reference(&generator, dir.path());
    assert_same("Krita generate vs `ganime generate --out`", &read_rgb(&dir.path().join("krita-generated.png")), &r.sheet);
    assert_same(&format!("Krita stylize {} vs the library", filter_spec()), &read_rgb(&dir.path().join("krita-styled.png")), &r.styled);
}
