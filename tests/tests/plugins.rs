//! The editor plug-in end to end: the cdylib driven by a C host (compiled here with the system C compiler) and by
//! the Rust host loader, each generating and stylising and compared pixel for pixel with the CLI / library, and
//! each feeding bad input; the inspiration workflow of ABI version 2 (sheets, recipes, axes) against `ganime sheet`
//! and `ganime generate --recipe`, and a host built for version 1. The GIMP and Krita tests run the real editors
//! headless, the basic operations and the inspiration loop (pick, variations, attribute move, place); they skip when the editor is
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
    assert!(err.message.contains("implements ABI versions 1 to 2, not 3"), "{err}");
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
    let gimp_dir = install_gimp(dir.path());
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
    let log = run_gimp(&gimp_dir, &[&script, failing]);
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
    let pykrita = install_krita(dir.path());
    let log = run_kritarunner(dir.path(), &pykrita, "ganime_krita_e2e", &[generator.as_os_str(), filter_spec().as_ref(), dir.path().as_os_str()]);
    let result = std::fs::read_to_string(dir.path().join("krita-result.txt")).unwrap_or_default();
    assert_eq!(result.trim(), "ok", "the Krita script did not finish:\n{log}");

    let r = reference(&generator, dir.path());
    assert_same("Krita generate vs `ganime generate --out`", &read_rgb(&dir.path().join("krita-generated.png")), &r.sheet);
    assert_same(&format!("Krita stylize {} vs the library", filter_spec()), &read_rgb(&dir.path().join("krita-styled.png")), &r.styled);
}

/// `ganime sheet ARGS --no-attributes? --title "" --out` on the built-in model: a reference page.
fn cli_sheet(dir: &Path, name: &str, args: &[&str]) -> RgbImage {
    let out = dir.join(name);
    ganime_ok(&[&["sheet", "--title", ""], args, &["--out", p(&out)]].concat());
    read_rgb(&out)
}

/// `ganime generate --recipe RECIPE --size SIZE` on the built-in model.
fn cli_character(dir: &Path, recipe: &str, size: u32) -> RgbImage {
    let out = dir.join(format!("cli-character-{}.png", recipe.replace(['=', ' ', ':', '@', '+'], "_")));
    ganime_ok(&["generate", "--recipe", recipe, "--size", &size.to_string(), "--out", p(&out)]);
    read_rgb(&out)
}

fn rgb_of(image: &Image) -> RgbImage {
    let bpp = bytes_per_pixel(image.format).unwrap() as u32;
    assert!(bpp >= 3, "not a colour image");
    RgbImage::from_fn(image.width, image.height, |x, y| image::Rgb(image.pixel(x, y)[..3].try_into().unwrap()))
}

/// Version 2 through the Rust host on the built-in model: the axes it lists, sheets with every row kind equal
/// to `ganime sheet`, characters from recipes equal to `ganime generate --recipe`, and bad input refused.
#[test]
fn rust_host_runs_the_inspiration_workflow_like_the_cli() {
    let plugin = Plugin::open(&plugin_lib()).unwrap();
    assert!(plugin.describe().contains("\"render_sheet\"") && plugin.describe().contains("\"abi_versions\":[1,2]"), "{}", plugin.describe());
    let mut g = plugin.load("", GANIME_ROLE_GENERATOR).unwrap();
    let axes: serde_json::Value = serde_json::from_str(&g.axes().unwrap()).unwrap();
    let names: Vec<&str> = axes["axes"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(names.contains(&"hair=blonde") && names.contains(&"eyes=red"), "{axes}");
    assert_eq!(axes["attributes"], serde_json::json!(["hair", "eyes"]));
    assert!(axes["variation_strength"].as_f64().is_some(), "{axes}");

    let dir = tempfile::tempdir().unwrap();
    let request = r#"{"seed": 3, "count": 4, "columns": 4, "cell": 48, "title": "", "variations": [3], "interpolate": ["3:5"],
                      "attribute": ["4:hair=blonde"]}"#;
    let (page, meta) = g.render_sheet(request, GANIME_FORMAT_RGBA8).unwrap();
    let args = [
        "--seed",
        "3",
        "--count",
        "4",
        "--columns",
        "4",
        "--cell",
        "48",
        "--variations",
        "3",
        "--interpolate",
        "3:5",
        "--attribute",
        "4:hair=blonde",
    ];
    assert_same("render_sheet vs `ganime sheet`", &rgb_of(&page), &cli_sheet(dir.path(), "rows.png", &args));
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    let recipes: Vec<&str> = meta["cells"].as_array().unwrap().iter().map(|c| c["recipe"].as_str().unwrap()).collect();
    // The guided attribute row has up to 4 cells (fewer when the classifier sees blonde within 2 steps).
    assert!((14..=16).contains(&recipes.len()), "{recipes:?}");
    assert!(
        recipes[4].starts_with("seed=3 variation=0@")
            && recipes[8] == "seed=3 toward=5@0"
            && recipes[12] == "seed=4"
            && recipes.last().unwrap().starts_with("seed=4 guide=hair=blonde:"),
        "{recipes:?}"
    );

    // A character: a variation moved along an axis, upscaled, and a plain seed at the generator's size.
    let recipe = format!("{}  set=hair=blonde:1.5", recipes[5]);
    let (picture, canonical) = g.character(&recipe, 96, 96, GANIME_FORMAT_RGB8).unwrap();
    assert_eq!(canonical, format!("{} set=hair=blonde:+1.5", recipes[5]));
    assert_same("generate_character vs `ganime generate --recipe --size 96`", &rgb_of(&picture), &cli_character(dir.path(), &canonical, 96));
    // A guided move (the built-in classifier), as `generate --recipe` makes it.
    let (guided, canonical) = g.character("seed=3 guide=eyes=red:6", 64, 64, GANIME_FORMAT_RGB8).unwrap();
    assert_eq!(canonical, "seed=3 guide=eyes=red:6");
    assert_same("generate_character (guided) vs `ganime generate --recipe`", &rgb_of(&guided), &cli_character(dir.path(), &canonical, 64));
    let (plain, _) = g.character("seed=7", 64, 64, GANIME_FORMAT_RGBA8).unwrap();
    assert_eq!(plain.data, g.generate(7, 1, None, GANIME_FORMAT_RGBA8, None).unwrap()[0].data, "recipe seed=7 vs generate seed 7");

    // Bad input: named, with a status; the model stays usable.
    let err = g.render_sheet(r#"{"sed": 3}"#, GANIME_FORMAT_RGB8).unwrap_err();
    assert!(err.status == GANIME_ERR_INVALID_ARGUMENT && err.message.contains("request_json") && err.message.contains("sed"), "{err}");
    let err = g.render_sheet(r#"{"interpolate": ["3-5"]}"#, GANIME_FORMAT_RGB8).unwrap_err();
    assert!(err.status == GANIME_ERR_INVALID_ARGUMENT && err.message.contains("3-5"), "{err}");
    let err = g.render_sheet(r#"{"attribute": ["1:hair=plaid"]}"#, GANIME_FORMAT_RGB8).unwrap_err();
    assert!(err.message.contains("plaid"), "{err}");
    assert_eq!(g.render_sheet("{}", 9).unwrap_err().status, GANIME_ERR_UNKNOWN_FORMAT);
    let err = g.character("seed=1 set=hair=plaid:+1", 64, 64, GANIME_FORMAT_RGB8).unwrap_err();
    assert!(err.status == GANIME_ERR_INVALID_ARGUMENT && err.message.contains("plaid") && err.message.contains("hair=blonde"), "{err}");
    let err = g.character("seed=1 guide=hair=plaid:3", 64, 64, GANIME_FORMAT_RGB8).unwrap_err();
    assert!(err.status == GANIME_ERR_INVALID_ARGUMENT && err.message.contains("plaid") && err.message.contains("hair=blonde"), "{err}");
    let err = g.character("variation=1@0.5", 64, 64, GANIME_FORMAT_RGB8).unwrap_err();
    assert!(err.status == GANIME_ERR_INVALID_ARGUMENT && err.message.contains("seed=N"), "{err}");
    let v2 = plugin.table_v2("test").unwrap();
    let mut json = std::ptr::null();
    assert_eq!(unsafe { (v2.model_axes)(std::ptr::null_mut(), &mut json) }, GANIME_ERR_NULL_POINTER);
    let mut pass = plugin.load("passthrough", GANIME_ROLE_FILTER).unwrap();
    assert_eq!(pass.axes().unwrap_err().status, GANIME_ERR_WRONG_MODEL_KIND);
    assert_eq!(pass.character("seed=1", 8, 8, GANIME_FORMAT_RGB8).unwrap_err().status, GANIME_ERR_WRONG_MODEL_KIND);
    assert_eq!(g.character("seed=1", 64, 64, GANIME_FORMAT_RGB8).unwrap().0, g.character("seed=1", 64, 64, GANIME_FORMAT_RGB8).unwrap().0);
    // A generator without axes lists none and refuses moves.
    if let Some(golden) = golden_generator() {
        let mut other = plugin.load(p(&golden), GANIME_ROLE_GENERATOR).unwrap();
        assert!(other.axes().unwrap().contains("\"axes\":[]"));
        let err = other.character("seed=1 set=hair=blonde:+1", 64, 64, GANIME_FORMAT_RGB8).unwrap_err();
        assert!(err.message.contains("no attribute axes"), "{err}");
    }
}

/// A host built for ABI version 1 (it asks for 1 and knows only `GanimePluginV1`) still loads this plug-in and
/// generates the same pixels; the version-2 functions are not offered to it.
#[test]
fn version_1_host_still_loads_and_works() {
    let lib = plugin_lib();
    let old = Plugin::open_version(&lib, 1).unwrap();
    assert_eq!((old.table().abi_version, old.table().struct_size as usize), (1, std::mem::size_of::<GanimePluginV1>()));
    let current = Plugin::open(&lib).unwrap();
    assert_eq!(current.table().abi_version, GANIME_ABI_VERSION);
    let mut g_old = old.load("", GANIME_ROLE_GENERATOR).unwrap();
    let mut g_new = current.load("", GANIME_ROLE_GENERATOR).unwrap();
    assert_eq!(g_old.sheet(5, 4, 2, GANIME_FORMAT_RGB8, None).unwrap(), g_new.sheet(5, 4, 2, GANIME_FORMAT_RGB8, None).unwrap());
    assert_eq!(g_old.generate(5, 2, None, GANIME_FORMAT_RGBA8, None).unwrap(), g_new.generate(5, 2, None, GANIME_FORMAT_RGBA8, None).unwrap());
    let err = g_old.axes().unwrap_err();
    assert!(err.message.contains("opened as version 1"), "{err}");
}

/// The Krita docker driven headless through pick -> variations -> attribute move -> place on the built-in model;
/// the pages it showed and the placed layer are compared with `ganime sheet` and `ganime generate --recipe`.
#[test]
fn krita_docker_runs_the_inspiration_loop_like_the_cli() {
    if !editor_available("kritarunner") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The plug-in as users get it: the packaged zip, imported by Krita's own importer.
    let pykrita = import_krita_zip(dir.path());
    let log = run_kritarunner(dir.path(), &pykrita, "ganime_krita_inspiration", &[dir.path().as_os_str()]);
    let result = std::fs::read_to_string(dir.path().join("krita-inspiration.txt")).unwrap_or_default();
    assert_eq!(result.trim(), "ok", "the Krita inspiration script did not finish:\n{log}");

    let d = dir.path();
    let cells = ["--columns", "3", "--cell", "64"];
    let candidates = cli_sheet(d, "cli-candidates.png", &[&["--seed", "3", "--count", "6"][..], &cells].concat());
    assert_same("Krita candidates vs `ganime sheet`", &read_rgb(&d.join("krita-candidates.png")), &candidates);
    let variations = cli_sheet(d, "cli-variations.png", &[&["--count", "0", "--variations", "4", "--interpolate", "4:9"][..], &cells].concat());
    assert_same("Krita variations vs `ganime sheet --variations --interpolate`", &read_rgb(&d.join("krita-variations.png")), &variations);
    let name = std::fs::read_to_string(d.join("krita-layer-name.txt")).unwrap();
    let recipe = name.strip_prefix("ganime ").and_then(|n| n.strip_suffix(" | 96px")).unwrap_or_else(|| panic!("layer name `{name}`"));
    assert!(recipe.starts_with("seed=4 variation=1@") && recipe.ends_with(" set=hair=blonde:+1.5"), "{recipe}");
    assert_same("Krita placed layer vs `ganime generate --recipe --size 96`", &read_rgb(&d.join("krita-placed.png")), &cli_character(d, recipe, 96));
}

/// Packs the plug-in with plugins/krita/package.sh, checks the zip's layout, imports it with the importer of the
/// installed Krita (Tools > Scripts > Import Python Plugin from File... runs the same code) into DIR/resources,
/// and adds the test scripts; returns the pykrita folder.
fn import_krita_zip(dir: &Path) -> PathBuf {
    let zip = dir.join("ganime-krita.zip");
    let pack = Command::new("sh").arg(workspace_root().join("plugins/krita/package.sh")).arg(plugin_lib()).arg(&zip).output().unwrap();
    assert!(pack.status.success(), "plugins/krita/package.sh failed:\n{}", String::from_utf8_lossy(&pack.stderr));
    let list = Command::new("python3")
        .args(["-c", "import sys, zipfile; print('\\n'.join(sorted(zipfile.ZipFile(sys.argv[1]).namelist())))"])
        .arg(&zip)
        .output()
        .unwrap();
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout).lines().map(String::from).collect();
    let module = ["__init__.py", "abi.py", "docker.py", "extension.py", "inspiration.py", "operations.py", "qt_compat.py", "Manual.html"];
    let mut want: Vec<String> = ["ganime.desktop", "ganime/", "ganime/libganime_plugin.so"].map(String::from).to_vec();
    want.extend(module.iter().map(|m| format!("ganime/{m}")));
    want.sort();
    assert_eq!(names, want, "the zip's entries");

    let kritarunner = String::from_utf8(Command::new("sh").args(["-c", "command -v kritarunner"]).output().unwrap().stdout).unwrap();
    let prefix = Path::new(kritarunner.trim()).parent().and_then(Path::parent).unwrap();
    let importer = prefix.join("share/krita/pykrita/plugin_importer/plugin_importer.py");
    let resources = dir.join("resources");
    std::fs::create_dir_all(&resources).unwrap();
    let imported = Command::new("python3").arg(&importer).arg(&zip).arg(&resources).output().unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&imported.stdout), String::from_utf8_lossy(&imported.stderr));
    assert!(
        imported.status.success() && log.contains("Imported plugin: ganime"),
        "Krita's importer ({}) refused the zip:\n{log}",
        importer.display()
    );
    let pykrita = resources.join("pykrita");
    for file in ["ganime.desktop", "ganime/__init__.py", "ganime/libganime_plugin.so"] {
        assert!(pykrita.join(file).exists(), "{file} missing after the import");
    }
    add_krita_test_scripts(&pykrita);
    pykrita
}

/// Installs the Krita plug-in and the test scripts into DIR/pykrita.
fn install_krita(dir: &Path) -> PathBuf {
    let pykrita = dir.join("pykrita");
    let install = Command::new("sh").arg(workspace_root().join("plugins/krita/install.sh")).arg(plugin_lib()).arg(&pykrita).output().unwrap();
    assert!(install.status.success(), "plugins/krita/install.sh failed:\n{}", String::from_utf8_lossy(&install.stderr));
    add_krita_test_scripts(&pykrita);
    pykrita
}

/// `kritarunner -s MODULE -f main ARGS` headless (offscreen, a private config); returns its output.
fn run_kritarunner(dir: &Path, pykrita: &Path, module: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new("kritarunner")
        .args(["-s", module, "-f", "main"])
        .args(args)
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONPATH", pykrita)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_RUNTIME_DIR", dir.join("runtime"))
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// GIMP driven headless through its PDB procedures on the built-in model: the candidates and variations sheets
/// (plug-in-ganime-sheet), the axes, then plug-in-ganime-inspiration picking candidate 2, its variation 2 and
/// hair=blonde +1.5, placed at 96 pixels, and the middle step toward seed 9; each compared with `ganime sheet` /
/// `ganime generate --recipe`.
#[test]
fn gimp_runs_the_inspiration_loop_like_the_cli() {
    if !editor_available("gimp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gimp_dir = install_gimp(d);
    let (candidates_png, variations_png, placed_png) = (d.join("gimp-candidates.png"), d.join("gimp-variations.png"), d.join("gimp-placed.png"));
    let step_png = d.join("gimp-step.png");
    let sheet = |request: &str, out: &Path| {
        format!(
            r#"(let* ((img (car (plug-in-ganime-sheet RUN-NONINTERACTIVE "" "{request}"))) (layer (car (gimp-image-get-active-layer img))))
                 (file-png-save RUN-NONINTERACTIVE img layer "{o}" "{o}" 0 9 0 0 0 0 0))"#,
            o = p(out)
        )
    };
    let cells = r#"\"columns\": 3, \"cell\": 64, \"title\": \"\""#;
    let candidates = sheet(&format!(r#"{{\"seed\": 3, \"count\": 6, {cells}}}"#), &candidates_png);
    let variations = sheet(&format!(r#"{{\"count\": 0, \"variations\": [4], {cells}}}"#), &variations_png);
    let place = format!(
        r#"(let* ((img (car (gimp-image-new 128 128 RGB)))
                  (bg (car (gimp-layer-new img 128 128 RGB-IMAGE "bg" 100 LAYER-MODE-NORMAL)))
                  (ignored (gimp-image-insert-layer img bg 0 0))
                  (layer (car (plug-in-ganime-inspiration RUN-NONINTERACTIVE img bg "" 3 6 3 2 2 "hair=blonde:+1.5" 96 -1))))
             (gimp-message (string-append "ganime-layer: " (car (gimp-item-get-name layer))))
             (gimp-message (string-append "ganime-axes: " (car (plug-in-ganime-axes RUN-NONINTERACTIVE ""))))
             (file-png-save RUN-NONINTERACTIVE img layer "{o}" "{o}" 0 9 0 0 0 0 0)
             (let ((step (car (plug-in-ganime-inspiration RUN-NONINTERACTIVE img bg "" 3 6 3 2 5 "" 64 9))))
               (gimp-message (string-append "ganime-step: " (car (gimp-item-get-name step))))
               (file-png-save RUN-NONINTERACTIVE img step "{t}" "{t}" 0 9 0 0 0 0 0))
             (plug-in-ganime-place RUN-NONINTERACTIVE img "" "seed=1 variation=x@1" 64))"#,
        o = p(&placed_png),
        t = p(&step_png)
    );
    let log = run_gimp(&gimp_dir, &[&candidates, &variations, &place]);
    assert!(candidates_png.exists() && variations_png.exists() && placed_png.exists(), "GIMP wrote no images:\n{log}");
    assert!(log.contains("ganime-axes: {") && log.contains("\"hair=blonde\""), "no axes listed:\n{log}");
    assert!(log.contains("variation index `x`"), "GIMP did not report the bad recipe:\n{log}");

    let cells = ["--columns", "3", "--cell", "64"];
    let want = cli_sheet(d, "cli-candidates.png", &[&["--seed", "3", "--count", "6"][..], &cells].concat());
    assert_same("GIMP plug-in-ganime-sheet candidates vs `ganime sheet`", &read_rgb(&candidates_png), &want);
    let want = cli_sheet(d, "cli-variations.png", &[&["--count", "0", "--variations", "4"][..], &cells].concat());
    assert_same("GIMP plug-in-ganime-sheet variations vs `ganime sheet --variations`", &read_rgb(&variations_png), &want);
    let name = log.split("ganime-layer: ganime ").nth(1).and_then(|l| l.split(" | 96px").next()).unwrap_or_else(|| panic!("no layer name:\n{log}"));
    assert!(name.starts_with("seed=4 variation=1@") && name.ends_with(" set=hair=blonde:+1.5"), "{name}");
    assert_same("GIMP placed layer vs `ganime generate --recipe --size 96`", &read_rgb(&placed_png), &cli_character(d, name, 96));
    // With a seed to go toward, the cells under the candidates continue with the interpolation steps.
    let step = log.split("ganime-step: ganime ").nth(1).and_then(|l| l.split(" | 64px").next()).unwrap_or_else(|| panic!("no step layer:\n{log}"));
    assert_eq!(step, "seed=4 toward=9@0.5");
    assert_same("GIMP interpolation step vs `ganime generate --recipe --size 64`", &read_rgb(&step_png), &cli_character(d, step, 64));
}

/// Builds and installs the GIMP plug-in into a private GIMP2_DIRECTORY under `dir`; returns that directory.
fn install_gimp(dir: &Path) -> PathBuf {
    let gimp_dir = dir.join("gimp");
    let install = Command::new("sh")
        .arg(workspace_root().join("plugins/gimp/install.sh"))
        .arg(plugin_lib())
        .arg(gimp_dir.join("plug-ins/ganime"))
        .output()
        .unwrap();
    assert!(install.status.success(), "plugins/gimp/install.sh failed:\n{}", String::from_utf8_lossy(&install.stderr));
    gimp_dir
}

/// Runs Script-Fu batch commands in GIMP without a display, then quits; returns its output.
fn run_gimp(gimp_dir: &Path, scripts: &[&str]) -> String {
    let mut cmd = Command::new("gimp");
    cmd.args(["-i", "-d", "-f", "--stack-trace-mode", "never"]);
    for script in scripts {
        cmd.args(["-b", script]);
    }
    let out = cmd.args(["-b", "(gimp-quit 0)"]).env("GIMP2_DIRECTORY", gimp_dir).env("RAYON_NUM_THREADS", "2").output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The Krita plug-in's code runs on PyQt6 (Krita 6) as well as PyQt5: checked with stand-in PyQt6 and krita
/// modules that only have PyQt6's scoped enums (plugins/krita/tests/qt6_compat_check.py).
#[test]
fn krita_plugin_code_runs_on_pyqt6() {
    if !editor_available("python3") {
        return;
    }
    let root = workspace_root();
    // No __pycache__ left in the source tree.
    let out = Command::new("python3")
        .arg(root.join("plugins/krita/tests/qt6_compat_check.py"))
        .arg(root.join("plugins/krita"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && log.trim() == "ok", "the plug-in does not run on PyQt6:\n{log}");
}

/// The kritarunner scripts of plugins/krita/tests (the inspiration one imports helpers from the e2e one).
fn add_krita_test_scripts(pykrita: &Path) {
    for script in ["ganime_krita_e2e.py", "ganime_krita_inspiration.py"] {
        std::fs::copy(workspace_root().join("plugins/krita/tests").join(script), pykrita.join(script)).unwrap();
    }
}

/// The ABI lets any thread call in: a plug-in opened by a thread that has since exited serves several threads
/// at once, each with its first allocation inside the plug-in (mimalloc 3.3 crashed exactly there).
#[test]
fn plugin_serves_threads_other_than_the_one_that_loaded_it() {
    let lib = plugin_lib();
    let plugin = std::thread::spawn(move || {
        let plugin = Plugin::open(&lib).unwrap();
        plugin.load("passthrough", GANIME_ROLE_FILTER).unwrap();
        plugin
    })
    .join()
    .unwrap();
    for round in 0..3u64 {
        let workers: Vec<_> = (0..4u64)
            .map(|i| {
                let plugin = plugin.clone();
                std::thread::spawn(move || {
                    let mut g = plugin.load("", GANIME_ROLE_GENERATOR).unwrap();
                    let (picture, _) = g.character(&format!("seed={}", round * 4 + i), 64, 64, GANIME_FORMAT_RGB8).unwrap();
                    let mut pass = plugin.load("passthrough", GANIME_ROLE_FILTER).unwrap();
                    let mut copy = picture.clone();
                    pass.stylize_in_place(&mut copy, 1.0, None).unwrap();
                    assert_eq!(copy, picture);
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
    }
}
