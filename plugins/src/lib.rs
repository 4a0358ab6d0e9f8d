//! The ganime editor plug-in: a cdylib implementing the C ABI of `ganime-plugin-abi` over the core library.
//! Generation goes through `ganime::generate` (the same latents and batching as `ganime generate`, so the
//! pixels match the CLI's), stylisation through `ganime::filters::open`, so every filter the registry knows is
//! available to every editor. ABI version 2 adds the inspiration workflow over the same library code as the CLI:
//! `render_sheet` is `generate::sheet::make` (what `ganime sheet` runs), `generate_character` is
//! `generate::recipe::character` (what `ganime generate --recipe` runs). Host scripts for GIMP and Krita live in
//! `gimp/` and `krita/`.
//!
//! Every exported function runs inside `guard`: errors and caught panics become a status code plus a
//! per-thread message; nothing unwinds into the host.

mod pixels;

use candle_core::{Device, Tensor};
use ganime::filter::{apply_with_strength, Filter};
use ganime::generate::attributes::{axes_for, classifier_from, AttributeAxes};
use ganime::generate::guide::value_index;
use ganime::generate::recipe::{character, Recipe};
use ganime::generate::sheet::{self, SheetRequest};
use ganime::generate::{load_generator, Generator};
use ganime::io::image::{grid, tensor_to_images};
use ganime_plugin_abi::*;
use image::RgbImage;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use ganime_plugin_abi::GANIME_ABI_VERSION;

// The same allocator as the `ganime` binary (see core/src/main.rs): with the system malloc every forward pass
// pays mmap/munmap and page faults for its large tensors, which halved generation speed in the plug-in. It only
// serves the plug-in's own Rust allocations; host memory is never freed here, nor plug-in memory by the host.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A failed call: the status the host gets and the message `last_error` returns.
#[derive(Debug)]
pub struct Failure {
    pub status: GanimeStatus,
    pub message: String,
}

fn fail<T>(status: GanimeStatus, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { status, message: message.into() })
}

/// Wraps a core-library error with the status it maps to (the message keeps the whole anyhow chain).
fn with_status(status: GanimeStatus) -> impl Fn(anyhow::Error) -> Failure {
    move |e| Failure { status, message: format!("{e:#}") }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// Where the last panic on this thread happened (the panic hook records it instead of printing).
    static PANIC_AT: RefCell<String> = const { RefCell::new(String::new()) };
    /// Inside an ABI call (`guard`): panics here are the host's business only through `last_error`.
    static IN_CALL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The handles this plug-in gave out and has not taken back: models (handle -> model) and the image buffers of
/// `generate_sheet` (address -> length). A handle not in them (freed already, or never ours) is refused with a
/// status instead of being dereferenced or freed: a host's use after free or double free cannot crash it.
///
/// A model handle is a number from [`NEXT_MODEL_HANDLE`], not an address: an address freed and reused by a
/// later `load_model` would make a stale handle reach the new model, a number is never given out twice. The
/// table holds an `Arc`, so a call in flight keeps its model alive while another thread frees the handle:
/// `free_model` only removes the entry, and the last call to finish drops the model.
static LIVE_MODELS: std::sync::Mutex<BTreeMap<usize, Arc<Model>>> = std::sync::Mutex::new(BTreeMap::new());
static NEXT_MODEL_HANDLE: AtomicUsize = AtomicUsize::new(1);
static LIVE_IMAGES: std::sync::Mutex<Vec<(usize, usize)>> = std::sync::Mutex::new(Vec::new());

fn live_models() -> std::sync::MutexGuard<'static, BTreeMap<usize, Arc<Model>>> {
    LIVE_MODELS.lock().unwrap_or_else(|e| e.into_inner())
}

fn live_images() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    LIVE_IMAGES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Panics inside an ABI call are caught at the boundary and reported through `last_error`; the hook keeps
/// them off the host's stderr (no message, no backtrace) and remembers where they happened for that message.
/// Panics elsewhere (none in a host; a failing test) go to the previous hook.
fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CALL.with(|c| c.get()) {
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                PANIC_AT.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }))
    });
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string; show them instead.
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs one ABI call: success clears nothing (the last error is the last *failure*), a failure or a panic
/// sets the thread's message and returns its status.
pub fn guard(call: impl FnOnce() -> Result<(), Failure>) -> GanimeStatus {
    install_quiet_panic_hook();
    let outer = IN_CALL.with(|c| c.replace(true));
    let result = catch_unwind(AssertUnwindSafe(call));
    IN_CALL.with(|c| c.set(outer));
    match result {
        Ok(Ok(())) => GANIME_OK,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            let at = PANIC_AT.with(|p| std::mem::take(&mut *p.borrow_mut()));
            set_last_error(&format!("internal error in the ganime plug-in (please report): {what}{at}"));
            GANIME_ERR_INTERNAL
        }
    }
}

/// What a `GanimeModel*` handle stands for.
struct Model {
    kind: Loaded,
    name: CString,
    /// Generators: size of one image (found by generating one at load time).
    width: u32,
    height: u32,
    /// Generators: their attribute axes (`None`: none fit for them), read on first use. A model may serve
    /// several threads at once, so what it fills in later sits behind locks.
    axes: Mutex<Option<Option<Arc<AttributeAxes>>>>,
    /// The last string returned through an `out` argument to each thread (valid until that thread's next one
    /// on this model, per the ABI).
    returned: Mutex<HashMap<std::thread::ThreadId, CString>>,
}

impl Model {
    fn generator(&self, operation: &str) -> Result<&dyn Generator, Failure> {
        generator(self, operation)
    }

    /// The built-in axes when they were fit for this generator.
    fn axes(&self, operation: &str) -> Result<Option<Arc<AttributeAxes>>, Failure> {
        let mut slot = self.axes.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let identity = self.generator(operation)?.identity();
            *slot = Some(axes_for(None, &identity, &Device::Cpu).map_err(with_status(GANIME_ERR_LOAD_FAILED))?.map(Arc::new));
        }
        Ok(slot.clone().flatten())
    }

    /// Keeps `text` as the string returned to this thread and gives its address (the heap buffer stays put
    /// until this thread's next string from this model replaces it).
    fn keep(&self, text: String) -> *const c_char {
        let text = CString::new(text.replace('\0', "\\0")).unwrap_or_default();
        let mut returned = self.returned.lock().unwrap_or_else(|e| e.into_inner());
        let slot = returned.entry(std::thread::current().id()).or_default();
        *slot = text;
        slot.as_ptr()
    }
}

enum Loaded {
    Generator(Box<dyn Generator>),
    Filter(Box<dyn Filter>),
}

/// Reads a NUL-terminated UTF-8 argument.
unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if p.is_null() {
        return fail(GANIME_ERR_NULL_POINTER, format!("{what} is NULL"));
    }
    CStr::from_ptr(p).to_str().or_else(|_| fail(GANIME_ERR_INVALID_ARGUMENT, format!("{what} is not valid UTF-8")))
}

/// The model behind a live handle; the `Arc` keeps it alive for the call even if another thread frees the handle.
fn live_model(model: *const GanimeModel) -> Result<Arc<Model>, Failure> {
    if model.is_null() {
        return fail(GANIME_ERR_NULL_POINTER, "model is NULL");
    }
    match live_models().get(&(model as usize)) {
        Some(m) => Ok(Arc::clone(m)),
        None => fail(GANIME_ERR_INVALID_ARGUMENT, "model is not a live handle (freed already, or not made by load_model)"),
    }
}

fn load(spec: &str, role: GanimeRole) -> Result<Model, Failure> {
    match role {
        GANIME_ROLE_GENERATOR => load_generator_model(spec),
        GANIME_ROLE_FILTER => load_filter_model(spec),
        // An existing file is most often a generator; a style network or other filter file may still load
        // through the filter registry.
        GANIME_ROLE_AUTO if spec.is_empty() => load_generator_model(spec),
        GANIME_ROLE_AUTO if Path::new(spec).exists() => load_generator_model(spec).or_else(|as_generator| {
            load_filter_model(spec).map_err(|as_filter| Failure {
                status: GANIME_ERR_LOAD_FAILED,
                message: format!("{spec} is neither a generator ({}) nor a filter ({})", as_generator.message, as_filter.message),
            })
        }),
        GANIME_ROLE_AUTO => load_filter_model(spec),
        other => fail(GANIME_ERR_INVALID_ARGUMENT, format!("unknown model role {other} (expected 0 = auto, 1 = generator, 2 = filter)")),
    }
}

fn load_filter_model(spec: &str) -> Result<Model, Failure> {
    // The same spec as the CLI and the camera: `NAME|KIND:PATH [size=…] [smooth=…] [strength=…]`.
    let filter = ganime::filters::open_with_options(spec).map_err(with_status(GANIME_ERR_LOAD_FAILED))?.into_filter();
    let name = CString::new(filter.name()).unwrap_or_default();
    Ok(Model { kind: Loaded::Filter(filter), name, width: 0, height: 0, axes: Mutex::new(None), returned: Mutex::default() })
}

/// `""` is the built-in model.
fn load_generator_model(spec: &str) -> Result<Model, Failure> {
    let path = (!spec.is_empty()).then(|| Path::new(spec));
    let g = load_generator(path, &Device::Cpu).map_err(with_status(GANIME_ERR_LOAD_FAILED))?;
    // The image size is not part of the Generator trait: one image from a zero latent tells it.
    let probe = || -> anyhow::Result<(usize, usize)> {
        let (_, _, h, w) = g.generate(&Tensor::zeros((1, g.latent_dim()), candle_core::DType::F32, &Device::Cpu)?)?.dims4()?;
        Ok((w, h))
    };
    let (w, h) = probe().map_err(with_status(GANIME_ERR_LOAD_FAILED))?;
    let name = CString::new(g.describe()).unwrap_or_default();
    Ok(Model { kind: Loaded::Generator(g), name, width: w as u32, height: h as u32, axes: Mutex::new(None), returned: Mutex::default() })
}

/// Calls the host's progress callback; `Err(cancelled)` when it asks to stop.
unsafe fn report(progress: *const GanimeProgress, done: u32, total: u32) -> Result<(), Failure> {
    if let Some(p) = progress.as_ref() {
        if let Some(cb) = p.callback {
            if cb(p.user_data, done, total) != 0 {
                return fail(GANIME_ERR_CANCELLED, format!("cancelled by the host after {done} of {total}"));
            }
        }
    }
    Ok(())
}

/// `count` images from `seed` or the host's latents, in batches of 64 like `ganime generate` (same batches,
/// same pixels), reporting progress per batch.
unsafe fn generate_images(
    g: &dyn Generator,
    seed: u64,
    count: u32,
    z: *const f32,
    progress: *const GanimeProgress,
) -> Result<Vec<RgbImage>, Failure> {
    if count == 0 || count > GANIME_MAX_COUNT {
        return fail(GANIME_ERR_INVALID_ARGUMENT, format!("count {count} is outside 1..={GANIME_MAX_COUNT}"));
    }
    let (n, dim) = (count as usize, g.latent_dim());
    let z = if z.is_null() {
        g.latents(seed, n, &Device::Cpu).map_err(with_status(GANIME_ERR_COMPUTE_FAILED))?
    } else {
        let values = std::slice::from_raw_parts(z, n * dim).to_vec();
        Tensor::from_vec(values, (n, dim), &Device::Cpu).map_err(|e| with_status(GANIME_ERR_COMPUTE_FAILED)(e.into()))?
    };
    let mut images = Vec::with_capacity(n);
    report(progress, 0, count)?;
    for start in (0..n).step_by(64) {
        let batch = 64.min(n - start);
        let run = || -> anyhow::Result<Vec<RgbImage>> { tensor_to_images(&g.generate(&z.narrow(0, start, batch)?)?) };
        images.extend(run().map_err(with_status(GANIME_ERR_COMPUTE_FAILED))?);
        report(progress, images.len() as u32, count)?;
    }
    Ok(images)
}

fn generator<'a>(model: &'a Model, operation: &str) -> Result<&'a dyn Generator, Failure> {
    match &model.kind {
        Loaded::Generator(g) => Ok(g.as_ref()),
        Loaded::Filter(f) => fail(GANIME_ERR_WRONG_MODEL_KIND, format!("{operation} needs a generator, but this model is the filter '{}'", f.name())),
    }
}

unsafe extern "C" fn describe() -> *const c_char {
    static DESCRIPTION: std::sync::OnceLock<CString> = std::sync::OnceLock::new();
    DESCRIPTION
        .get_or_init(|| {
            let json = serde_json::json!({
                "name": "ganime",
                "version": env!("CARGO_PKG_VERSION"),
                "abi_version": GANIME_ABI_VERSION,
                "formats": ["RGBA8", "RGB8", "GRAY8", "GRAYA8"],
                "filters": ganime::filters::builtin_names(),
                "filter_kinds": ganime::filters::model_kinds(),
                "abi_versions": (GANIME_ABI_OLDEST_SUPPORTED..=GANIME_ABI_VERSION).collect::<Vec<_>>(),
                "operations": ["load_model", "model_info", "generate", "generate_sheet", "stylize", "model_axes", "render_sheet", "generate_character"],
                "max_dimension": GANIME_MAX_DIMENSION,
                "max_count": GANIME_MAX_COUNT,
            });
            CString::new(json.to_string()).unwrap_or_default()
        })
        .as_ptr()
}

#[no_mangle]
pub extern "C" fn ganime_plugin_last_error() -> *const c_char {
    // The pointer stays valid until this thread's next failure replaces the string.
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

unsafe extern "C" fn load_model(spec: *const c_char, role: GanimeRole, out: *mut *mut GanimeModel) -> GanimeStatus {
    guard(|| {
        if out.is_null() {
            return fail(GANIME_ERR_NULL_POINTER, "out (GanimeModel**) is NULL");
        }
        *out = std::ptr::null_mut();
        let model = load(str_arg(spec, "spec")?, role)?;
        let handle = NEXT_MODEL_HANDLE.fetch_add(1, Ordering::Relaxed);
        live_models().insert(handle, Arc::new(model));
        *out = handle as *mut GanimeModel;
        Ok(())
    })
}

unsafe extern "C" fn model_info(model: *const GanimeModel, out: *mut GanimeModelInfo) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        let out = out.as_mut().ok_or(Failure { status: GANIME_ERR_NULL_POINTER, message: "out (GanimeModelInfo*) is NULL".into() })?;
        let (role, latent_dim) = match &m.kind {
            Loaded::Generator(g) => (GANIME_ROLE_GENERATOR, g.latent_dim() as u32),
            Loaded::Filter(_) => (GANIME_ROLE_FILTER, 0),
        };
        *out = GanimeModelInfo { role, width: m.width, height: m.height, latent_dim, name: m.name.as_ptr() };
        Ok(())
    })
}

unsafe extern "C" fn generate(
    model: *mut GanimeModel,
    seed: u64,
    count: u32,
    z: *const f32,
    images: *mut GanimeImage,
    progress: *const GanimeProgress,
) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        let g = generator(&m, "generate")?;
        if images.is_null() {
            return fail(GANIME_ERR_NULL_POINTER, "images is NULL");
        }
        if count == 0 || count > GANIME_MAX_COUNT {
            return fail(GANIME_ERR_INVALID_ARGUMENT, format!("count {count} is outside 1..={GANIME_MAX_COUNT}"));
        }
        // Check every destination before computing anything.
        let targets = std::slice::from_raw_parts(images, count as usize);
        for (i, t) in targets.iter().enumerate() {
            pixels::check(t, &format!("images[{i}]"))?;
            if (t.width, t.height) != (m.width, m.height) {
                return fail(
                    GANIME_ERR_INVALID_ARGUMENT,
                    format!("images[{i}] is {}x{}, but this generator makes {}x{} images", t.width, t.height, m.width, m.height),
                );
            }
        }
        let made = generate_images(g, seed, count, z, progress)?;
        for (t, img) in targets.iter().zip(&made) {
            pixels::write(img, None, t)?;
        }
        Ok(())
    })
}

unsafe extern "C" fn generate_sheet(
    model: *mut GanimeModel,
    seed: u64,
    count: u32,
    columns: u32,
    z: *const f32,
    format: GanimePixelFormat,
    out: *mut GanimeImage,
    progress: *const GanimeProgress,
) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        let g = generator(&m, "generate_sheet")?;
        let out = out.as_mut().ok_or(Failure { status: GANIME_ERR_NULL_POINTER, message: "out (GanimeImage*) is NULL".into() })?;
        let bpp = bytes_per_pixel(format).ok_or(Failure { status: GANIME_ERR_UNKNOWN_FORMAT, message: format!("unknown pixel format {format}") })?;
        if count == 0 || count > GANIME_MAX_COUNT {
            return fail(GANIME_ERR_INVALID_ARGUMENT, format!("count {count} is outside 1..={GANIME_MAX_COUNT}"));
        }
        // The layout of `ganime generate --out` (square-ish by default, 2-pixel borders), checked before any work.
        let cols = if columns == 0 { (count as f64).sqrt().ceil() as u64 } else { columns as u64 }.min(count as u64);
        let rows = (count as u64).div_ceil(cols);
        let (sheet_w, sheet_h) = (cols * (m.width as u64 + 2) + 2, rows * (m.height as u64 + 2) + 2);
        if sheet_w > GANIME_MAX_DIMENSION as u64 || sheet_h > GANIME_MAX_DIMENSION as u64 {
            return fail(
                GANIME_ERR_INVALID_ARGUMENT,
                format!("a sheet of {count} images in {cols} columns would be {sheet_w}x{sheet_h}, over the {GANIME_MAX_DIMENSION}-pixel limit"),
            );
        }
        let images = generate_images(g, seed, count, z, progress)?;
        let sheet = grid(&images, cols as usize, 2).map_err(with_status(GANIME_ERR_COMPUTE_FAILED))?;
        *out = plugin_image(&sheet, format, bpp)?;
        Ok(())
    })
}

/// `picture` in a plug-in allocated buffer of `format` (`bpp` bytes per pixel), recorded for `free_image`.
unsafe fn plugin_image(picture: &RgbImage, format: GanimePixelFormat, bpp: usize) -> Result<GanimeImage, Failure> {
    let (w, h) = picture.dimensions();
    let stride = w as usize * bpp;
    let buffer: Box<[u8]> = vec![0u8; stride * h as usize].into_boxed_slice();
    let len = buffer.len();
    let data = Box::into_raw(buffer) as *mut u8;
    let image = GanimeImage { data, width: w, height: h, stride, format };
    if let Err(e) = pixels::write(picture, None, &image) {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, len)));
        return Err(e);
    }
    live_images().push((data as usize, len));
    Ok(image)
}

unsafe fn out_arg<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    p.as_mut().ok_or(Failure { status: GANIME_ERR_NULL_POINTER, message: format!("{what} is NULL") })
}

unsafe extern "C" fn model_axes(model: *mut GanimeModel, out_json: *mut *const c_char) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        let out = out_arg(out_json, "out_json (const char**)")?;
        let json = match m.axes("model_axes")? {
            Some(a) => serde_json::json!({"axes": a.info.names, "attributes": a.attributes(), "variation_strength": a.info.variation_strength}),
            None => serde_json::json!({"axes": [], "attributes": [], "variation_strength": null}),
        };
        *out = m.keep(json.to_string());
        Ok(())
    })
}

unsafe extern "C" fn render_sheet(
    model: *mut GanimeModel,
    request_json: *const c_char,
    format: GanimePixelFormat,
    out: *mut GanimeImage,
    out_metadata: *mut *const c_char,
    progress: *const GanimeProgress,
) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        let g = m.generator("render_sheet")?;
        let out = out_arg(out, "out (GanimeImage*)")?;
        let out_metadata = out_arg(out_metadata, "out_metadata (const char**)")?;
        let bpp = bytes_per_pixel(format).ok_or(Failure { status: GANIME_ERR_UNKNOWN_FORMAT, message: format!("unknown pixel format {format}") })?;
        let request: SheetRequest = serde_json::from_str(str_arg(request_json, "request_json")?)
            .map_err(|e| Failure { status: GANIME_ERR_INVALID_ARGUMENT, message: format!("request_json: {e}") })?;
        report(progress, 0, 1)?;
        // The request's errors (an unknown axis, a malformed row) are the caller's: they name the field.
        let (page, metadata) = sheet::make(g, &request, &Device::Cpu).map_err(with_status(GANIME_ERR_INVALID_ARGUMENT))?;
        if page.width() > GANIME_MAX_DIMENSION || page.height() > GANIME_MAX_DIMENSION {
            return fail(
                GANIME_ERR_INVALID_ARGUMENT,
                format!(
                    "the sheet would be {}x{}, over the {GANIME_MAX_DIMENSION}-pixel limit: fewer columns or a smaller cell",
                    page.width(),
                    page.height()
                ),
            );
        }
        *out = plugin_image(&page, format, bpp)?;
        *out_metadata = m.keep(metadata);
        report(progress, 1, 1)
    })
}

unsafe extern "C" fn generate_character(
    model: *mut GanimeModel,
    recipe: *const c_char,
    image: *mut GanimeImage,
    out_recipe: *mut *const c_char,
    progress: *const GanimeProgress,
) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        m.generator("generate_character")?;
        let target = *image.as_ref().ok_or(Failure { status: GANIME_ERR_NULL_POINTER, message: "image (GanimeImage*) is NULL".into() })?;
        pixels::check(&target, "image")?;
        let recipe: Recipe = str_arg(recipe, "recipe")?.parse().map_err(with_status(GANIME_ERR_INVALID_ARGUMENT))?;
        let axes = if recipe.needs_axes() { m.axes("generate_character")? } else { None };
        if recipe.needs_axes() && axes.is_none() {
            return fail(
                GANIME_ERR_INVALID_ARGUMENT,
                format!("recipe `{recipe}` moves attributes, but this generator has no attribute axes (only the built-in model ships them)"),
            );
        }
        let axes = axes.as_deref();
        // An unknown axis name is the caller's mistake; anything else failing is the computation's.
        if let Some(a) = axes {
            for (axis, _) in &recipe.moves {
                a.index(axis).map_err(|e| Failure { status: GANIME_ERR_INVALID_ARGUMENT, message: format!("recipe `{recipe}`: {e}") })?;
            }
        }
        // Guided moves use the built-in attribute classifier; an unknown value is the caller's mistake too.
        let classifier = if recipe.guides.is_empty() {
            None
        } else {
            let clf = classifier_from(None, &Device::Cpu).map_err(with_status(GANIME_ERR_COMPUTE_FAILED))?;
            for (axis, _) in &recipe.guides {
                value_index(&clf, axis).map_err(|e| Failure { status: GANIME_ERR_INVALID_ARGUMENT, message: format!("recipe `{recipe}`: {e}") })?;
            }
            Some(clf)
        };
        report(progress, 0, 1)?;
        let picture =
            character(generator(&m, "generate_character")?, &recipe, axes, classifier.as_ref(), Some((target.width, target.height)), &Device::Cpu)
                .map_err(with_status(GANIME_ERR_COMPUTE_FAILED))?;
        pixels::write(&picture, None, &target)?;
        if let Some(out) = out_recipe.as_mut() {
            *out = m.keep(recipe.to_string());
        }
        report(progress, 1, 1)
    })
}

unsafe extern "C" fn stylize(
    model: *mut GanimeModel,
    src: *const GanimeImage,
    dst: *mut GanimeImage,
    strength: f32,
    progress: *const GanimeProgress,
) -> GanimeStatus {
    guard(|| {
        let m = live_model(model)?;
        let filter = match &m.kind {
            Loaded::Filter(f) => f.as_ref(),
            Loaded::Generator(g) => {
                return fail(GANIME_ERR_WRONG_MODEL_KIND, format!("stylize needs a filter, but this model is a generator ({})", g.describe()))
            }
        };
        let src = src.as_ref().ok_or(Failure { status: GANIME_ERR_NULL_POINTER, message: "src is NULL".into() })?;
        // Copy the descriptor: `dst` may be the same struct as `src`.
        let dst_desc = *dst.as_ref().ok_or(Failure { status: GANIME_ERR_NULL_POINTER, message: "dst is NULL".into() })?;
        if !(0.0..=1.0).contains(&strength) {
            return fail(GANIME_ERR_INVALID_ARGUMENT, format!("strength {strength} is outside [0, 1]"));
        }
        pixels::check(src, "src")?;
        pixels::check(&dst_desc, "dst")?;
        if (src.width, src.height) != (dst_desc.width, dst_desc.height) {
            return fail(
                GANIME_ERR_INVALID_ARGUMENT,
                format!("src is {}x{} but dst is {}x{}", src.width, src.height, dst_desc.width, dst_desc.height),
            );
        }
        // Read everything from `src` before `dst` (possibly the same memory) is touched.
        let (rgb, alpha) = pixels::read(src)?;
        report(progress, 0, 1)?;
        let styled = apply_with_strength(filter, &rgb, strength).map_err(with_status(GANIME_ERR_COMPUTE_FAILED))?;
        if styled.dimensions() != rgb.dimensions() {
            return fail(
                GANIME_ERR_COMPUTE_FAILED,
                format!("filter '{}' returned a {:?} image for a {:?} input", filter.name(), styled.dimensions(), rgb.dimensions()),
            );
        }
        report(progress, 1, 1)?;
        pixels::write(&styled, alpha.as_deref(), &dst_desc)
    })
}

/// Frees an image `generate_sheet` made. Anything else (a host buffer, one freed already) is left alone, with a
/// message for `last_error`.
unsafe extern "C" fn free_image(image: *mut GanimeImage) {
    let _ = guard(|| {
        let Some(img) = image.as_mut() else { return Ok(()) };
        if !img.data.is_null() {
            let mut live = live_images();
            let Some(i) = live.iter().position(|&(at, _)| at == img.data as usize) else {
                return fail(
                    GANIME_ERR_INVALID_ARGUMENT,
                    "free_image: not an image made by this plug-in (a host buffer, or freed already); left alone",
                );
            };
            let (_, len) = live.swap_remove(i);
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(img.data, len)));
        }
        *img = GanimeImage { data: std::ptr::null_mut(), width: 0, height: 0, stride: 0, format: 0 };
        Ok(())
    });
}

/// Frees a model: its handle is dead from now on, and the model goes when no call on another thread uses it
/// any more. A handle that is not live (freed already, or never ours) is left alone, with a message.
unsafe extern "C" fn free_model(model: *mut GanimeModel) {
    let _ = guard(|| {
        if model.is_null() {
            return Ok(());
        }
        // Taken out of the table first, dropped after the lock: a model's drop may take a while.
        let removed = live_models().remove(&(model as usize));
        match removed {
            Some(m) => {
                drop(m);
                Ok(())
            }
            None => fail(GANIME_ERR_INVALID_ARGUMENT, "free_model: not a live model (freed already, or not made by load_model); left alone"),
        }
    });
}

/// The version-1 functions, in a table that says it is version `abi_version` of `struct_size` bytes.
const fn table_v1(abi_version: u32, struct_size: usize) -> GanimePluginV1 {
    GanimePluginV1 {
        abi_version,
        struct_size: struct_size as u32,
        describe,
        last_error: ganime_plugin_last_error,
        load_model,
        model_info,
        generate,
        generate_sheet,
        stylize,
        free_image,
        free_model,
    }
}

/// What a host built for version 1 gets.
static TABLE_V1: GanimePluginV1 = table_v1(1, std::mem::size_of::<GanimePluginV1>());

static TABLE_V2: GanimePluginV2 =
    GanimePluginV2 { base: table_v1(2, std::mem::size_of::<GanimePluginV2>()), model_axes, render_sheet, generate_character };

/// The one entry point: the table for `abi_version` (a `GanimePluginV2` for 2, whose first member is returned),
/// or NULL (with a message for `ganime_plugin_last_error`) when this plug-in does not implement that version.
#[no_mangle]
pub extern "C" fn ganime_plugin_entry(abi_version: u32) -> *const GanimePluginV1 {
    static TUNE: std::sync::Once = std::sync::Once::new();
    TUNE.call_once(ganime::tune_allocator);
    match abi_version {
        1 => &TABLE_V1,
        2 => &TABLE_V2.base,
        _ => {
            set_last_error(&format!(
                "this ganime plug-in implements ABI versions {GANIME_ABI_OLDEST_SUPPORTED} to {GANIME_ABI_VERSION}, not {abi_version}"
            ));
            std::ptr::null()
        }
    }
}

/// The version-1 part of the current table, for Rust callers linking this crate directly (tests).
pub fn table() -> &'static GanimePluginV1 {
    &TABLE_V2.base
}

/// The current (version 2) table.
pub fn table_v2() -> &'static GanimePluginV2 {
    &TABLE_V2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_errors_and_panics_into_statuses() {
        assert_eq!(guard(|| Ok(())), GANIME_OK);
        assert_eq!(guard(|| fail(GANIME_ERR_INVALID_ARGUMENT, "bad width")), GANIME_ERR_INVALID_ARGUMENT);
        assert_eq!(unsafe { CStr::from_ptr(ganime_plugin_last_error()) }.to_str().unwrap(), "bad width");
        let status = guard(|| -> Result<(), Failure> { panic!("boom") });
        assert_eq!(status, GANIME_ERR_INTERNAL);
        let msg = unsafe { CStr::from_ptr(ganime_plugin_last_error()) }.to_str().unwrap().to_string();
        assert!(msg.contains("boom") && msg.contains("lib.rs:"), "{msg}");
    }

    /// Use after free, double free and freeing what is not ours are error statuses or no-ops, never a crash.
    #[test]
    fn stale_and_foreign_handles_are_refused() {
        let t = table();
        let last = || unsafe { CStr::from_ptr(ganime_plugin_last_error()) }.to_str().unwrap().to_string();
        unsafe {
            let mut model = std::ptr::null_mut();
            let spec = CString::new("toon").unwrap();
            assert_eq!((t.load_model)(spec.as_ptr(), GANIME_ROLE_FILTER, &mut model), GANIME_OK);
            let mut info = std::mem::zeroed::<GanimeModelInfo>();
            assert_eq!((t.model_info)(model, &mut info), GANIME_OK);
            (t.free_model)(model);
            assert_eq!((t.model_info)(model, &mut info), GANIME_ERR_INVALID_ARGUMENT, "use after free");
            assert!(last().contains("not a live handle"), "{}", last());
            (t.free_model)(model); // double free: left alone
            assert!(last().contains("freed already"), "{}", last());
            let mut bogus = 12345usize;
            assert_eq!((t.model_info)(&mut bogus as *mut usize as *mut GanimeModel, &mut info), GANIME_ERR_INVALID_ARGUMENT);
            // A host buffer handed to free_image stays the host's.
            let mut pixels = vec![7u8; 4 * 4 * 3];
            let mut image = GanimeImage { data: pixels.as_mut_ptr(), width: 4, height: 4, stride: 12, format: GANIME_FORMAT_RGB8 };
            (t.free_image)(&mut image);
            assert!(last().contains("not an image made by this plug-in"), "{}", last());
            assert!(pixels.iter().all(|&p| p == 7));
        }
    }

    /// Handles are never given out twice: with addresses, a model loaded after a free often got the freed
    /// address, and the stale handle reached it.
    #[test]
    fn stale_handles_never_reach_a_later_model() {
        let t = table();
        let spec = CString::new("toon").unwrap();
        let mut info = unsafe { std::mem::zeroed::<GanimeModelInfo>() };
        let mut seen = std::collections::HashSet::new();
        unsafe {
            let mut previous: *mut GanimeModel = std::ptr::null_mut();
            for _ in 0..20 {
                let mut model = std::ptr::null_mut();
                assert_eq!((t.load_model)(spec.as_ptr(), GANIME_ROLE_FILTER, &mut model), GANIME_OK);
                assert!(seen.insert(model as usize), "handle {model:?} given out twice");
                if !previous.is_null() {
                    assert_eq!((t.model_info)(previous, &mut info), GANIME_ERR_INVALID_ARGUMENT, "stale handle after free + reload");
                }
                assert_eq!((t.model_info)(model, &mut info), GANIME_OK);
                (t.free_model)(model);
                previous = model;
            }
        }
    }

    /// `free_model` on one thread while others stylise with the same model: every call either finishes with
    /// the model or is refused as a dead handle; nothing crashes, and the model goes when the last call ends.
    #[test]
    fn free_while_another_thread_calls_is_safe() {
        let t = table();
        let spec = CString::new("toon").unwrap();
        let (w, h) = (96u32, 64u32);
        for round in 0..8 {
            let mut model = std::ptr::null_mut();
            assert_eq!(unsafe { (t.load_model)(spec.as_ptr(), GANIME_ROLE_FILTER, &mut model) }, GANIME_OK);
            let weak = Arc::downgrade(&live_models()[&(model as usize)]);
            let handle = model as usize;
            let workers: Vec<_> = (0..3)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut pixels = vec![100u8; (w * h * 3) as usize];
                        let mut finished = 0;
                        loop {
                            let img =
                                GanimeImage { data: pixels.as_mut_ptr(), width: w, height: h, stride: (w * 3) as usize, format: GANIME_FORMAT_RGB8 };
                            match unsafe { (t.stylize)(handle as *mut GanimeModel, &img, &img as *const _ as *mut _, 1.0, std::ptr::null()) } {
                                GANIME_OK => finished += 1,
                                GANIME_ERR_INVALID_ARGUMENT => return finished,
                                other => panic!("status {other}"),
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(5 + round));
            unsafe { (t.free_model)(model) };
            let finished: Vec<usize> = workers.into_iter().map(|w| w.join().expect("a worker crashed")).collect();
            assert!(weak.upgrade().is_none(), "the model outlived every call (round {round}, {finished:?} calls)");
        }
    }

    /// A crafted model file (a pickle nested a million levels deep) reaches the host as a load failure naming
    /// the file, not a stack overflow that kills the editor.
    #[test]
    fn deeply_nested_model_files_are_load_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.pth");
        std::fs::write(&path, ganime::io::pth::nested_list_pickle_file(1_000_000)).unwrap();
        let spec = CString::new(format!("style:{}", path.display())).unwrap();
        let mut model = std::ptr::null_mut();
        let status = unsafe { (table().load_model)(spec.as_ptr(), GANIME_ROLE_FILTER, &mut model) };
        assert_eq!(status, GANIME_ERR_LOAD_FAILED);
        assert!(model.is_null());
        let msg = unsafe { CStr::from_ptr(ganime_plugin_last_error()) }.to_str().unwrap().to_string();
        assert!(msg.contains("deep.pth") && msg.contains("deeper than 200 levels"), "{msg}");
    }

    /// The plug-in takes the same filter spec as the CLI and the camera, options included.
    #[test]
    fn filter_specs_take_options() {
        let frame = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 90]));
        let apply = |spec: &str| match load_filter_model(spec).map(|m| m.kind) {
            Ok(Loaded::Filter(f)) => f.apply(&frame).unwrap(),
            Ok(_) => panic!("{spec} loaded as a generator"),
            Err(e) => panic!("{spec}: {}", e.message),
        };
        assert_eq!(apply("toon strength=0"), frame);
        assert_ne!(apply("toon size=20"), apply("toon"));
        assert_eq!(apply("toon size=20").dimensions(), (40, 30));
        let err = load_filter_model("toon sise=20").err().expect("an unknown option is refused");
        assert!(err.message.contains("sise") && err.status == GANIME_ERR_LOAD_FAILED, "{}", err.message);
    }

    #[test]
    fn entry_refuses_unknown_versions() {
        assert!(ganime_plugin_entry(GANIME_ABI_VERSION + 1).is_null());
        let msg = unsafe { CStr::from_ptr(ganime_plugin_last_error()) }.to_str().unwrap().to_string();
        assert!(msg.contains("versions 1 to 2, not 3"), "{msg}");
        assert_eq!(unsafe { (*ganime_plugin_entry(1)).abi_version }, 1);
        assert_eq!(unsafe { (*ganime_plugin_entry(1)).struct_size } as usize, std::mem::size_of::<GanimePluginV1>());
        assert!(ganime_plugin_entry(0).is_null());
        assert_eq!(unsafe { (*ganime_plugin_entry(GANIME_ABI_VERSION)).abi_version }, GANIME_ABI_VERSION);
    }
}
