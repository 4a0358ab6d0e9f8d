//! A safe Rust host for ganime plug-ins: opens the library with libloading, checks the ABI version and the
//! table size, and wraps the table in owned types (`Plugin`, `Model`, `Image`) whose methods return
//! `Result<_, PluginError>` carrying the plug-in's status and message.

use crate::*;
use libloading::Library;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::Arc;

/// A failure reported by a plug-in (status and its last-error message) or by the loader itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// A `GANIME_ERR_*` code, or `GANIME_ERR_LOAD_FAILED` for loader failures (missing file, missing symbol,
    /// version mismatch).
    pub status: GanimeStatus,
    pub message: String,
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (status {})", self.message, self.status)
    }
}

impl std::error::Error for PluginError {}

fn loader_error(message: String) -> PluginError {
    PluginError { status: GANIME_ERR_LOAD_FAILED, message }
}

/// An owned, tightly packed (or host-chosen stride) pixel buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: GanimePixelFormat,
    pub data: Vec<u8>,
}

impl Image {
    /// A zeroed image with rows `stride` bytes apart (`None`: tightly packed).
    pub fn new(width: u32, height: u32, format: GanimePixelFormat, stride: Option<usize>) -> Result<Image, PluginError> {
        let bpp = bytes_per_pixel(format)
            .ok_or_else(|| PluginError { status: GANIME_ERR_UNKNOWN_FORMAT, message: format!("unknown pixel format {format}") })?;
        let stride = stride.unwrap_or(width as usize * bpp);
        let len = required_len(width, height, stride, format).map_err(|message| PluginError { status: GANIME_ERR_INVALID_ARGUMENT, message })?;
        Ok(Image { width, height, stride, format, data: vec![0; len] })
    }

    /// Pixel `(x, y)`'s bytes.
    pub fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let bpp = bytes_per_pixel(self.format).unwrap_or(1);
        let start = y as usize * self.stride + x as usize * bpp;
        &self.data[start..start + bpp]
    }

    /// Rows without the stride padding.
    pub fn packed(&self) -> Vec<u8> {
        let row = self.width as usize * bytes_per_pixel(self.format).unwrap_or(1);
        (0..self.height as usize).flat_map(|y| self.data[y * self.stride..y * self.stride + row].iter().copied()).collect()
    }

    fn raw(&mut self) -> GanimeImage {
        GanimeImage { data: self.data.as_mut_ptr(), width: self.width, height: self.height, stride: self.stride, format: self.format }
    }
}

/// A loaded plug-in library. Cheap to clone; models keep it loaded.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Loaded>,
}

struct Loaded {
    table: *const GanimePluginV1,
    /// The ABI version the table was asked for (2 gives `GanimePluginV2` around `table`).
    version: u32,
    // Dropped last: the table and all function pointers point into it.
    _library: Library,
}

// The ABI lets every table function be called from any thread (see `GanimePluginV1`).
unsafe impl Send for Loaded {}
unsafe impl Sync for Loaded {}

impl Plugin {
    /// Opens the library at `path` and asks it for ABI `GANIME_ABI_VERSION`.
    pub fn open(path: &Path) -> Result<Plugin, PluginError> {
        Self::open_version(path, GANIME_ABI_VERSION)
    }

    /// Opens asking for a given ABI version: 1 as a host built for version 1 does (the version-2 functions then
    /// fail with a message), or an unknown one to check that it is refused.
    pub fn open_version(path: &Path, abi_version: u32) -> Result<Plugin, PluginError> {
        // SAFETY: loading a library runs its initialisers; a ganime plug-in has none beyond Rust's.
        let library = unsafe { Library::new(path) }.map_err(|e| loader_error(format!("cannot load plug-in {}: {e}", path.display())))?;
        let table = unsafe {
            let entry = library
                .get::<GanimePluginEntryFn>(ENTRY_SYMBOL)
                .map_err(|e| loader_error(format!("{} is not a ganime plug-in (no ganime_plugin_entry): {e}", path.display())))?;
            entry(abi_version)
        };
        if table.is_null() {
            let why = unsafe {
                library
                    .get::<GanimeLastErrorFn>(LAST_ERROR_SYMBOL)
                    .ok()
                    .map(|f| f())
                    .filter(|p| !p.is_null())
                    .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned())
            };
            return Err(loader_error(format!(
                "plug-in {} refused ABI version {abi_version}: {}",
                path.display(),
                why.unwrap_or_else(|| "no reason given".into())
            )));
        }
        // SAFETY: non-null tables are static in the library, which `Loaded` keeps alive.
        let (version, size) = unsafe { ((*table).abi_version, (*table).struct_size) };
        let needed = if abi_version >= 2 { std::mem::size_of::<GanimePluginV2>() } else { std::mem::size_of::<GanimePluginV1>() };
        if version != abi_version || (size as usize) < needed {
            return Err(loader_error(format!(
                "plug-in {} answered with ABI version {version} (table of {size} bytes); this host needs version {abi_version} ({needed} bytes)",
                path.display(),
            )));
        }
        Ok(Plugin { inner: Arc::new(Loaded { table, version: abi_version, _library: library }) })
    }

    /// The raw table, for hosts (and tests) that need to call it directly.
    pub fn table(&self) -> &GanimePluginV1 {
        // SAFETY: checked non-null in `open`, alive as long as `self`.
        unsafe { &*self.inner.table }
    }

    /// The version-2 table, or an error naming `operation` when the plug-in was opened as version 1.
    pub fn table_v2(&self, operation: &str) -> Result<&GanimePluginV2, PluginError> {
        if self.inner.version < 2 {
            return Err(PluginError {
                status: GANIME_ERR_INVALID_ARGUMENT,
                message: format!("{operation} is ABI version 2; this plug-in was opened as version {}", self.inner.version),
            });
        }
        // SAFETY: `open` checked that the table is a whole `GanimePluginV2` (its first member is `table`).
        Ok(unsafe { &*(self.inner.table as *const GanimePluginV2) })
    }

    /// The plug-in's JSON self-description.
    pub fn describe(&self) -> String {
        unsafe { cstr((self.table().describe)()) }
    }

    /// This thread's last error message.
    pub fn last_error(&self) -> String {
        unsafe { cstr((self.table().last_error)()) }
    }

    fn check(&self, status: GanimeStatus) -> Result<(), PluginError> {
        if status == GANIME_OK {
            Ok(())
        } else {
            Err(PluginError { status, message: self.last_error() })
        }
    }

    /// Loads a model (see `GANIME_ROLE_*` for what `spec` may be).
    pub fn load(&self, spec: &str, role: GanimeRole) -> Result<Model, PluginError> {
        let spec = c_string(spec, "model spec")?;
        let mut handle = std::ptr::null_mut();
        self.check(unsafe { (self.table().load_model)(spec.as_ptr(), role, &mut handle) })?;
        Ok(Model { plugin: self.clone(), handle })
    }
}

fn c_string(text: &str, what: &str) -> Result<CString, PluginError> {
    CString::new(text).map_err(|_| PluginError { status: GANIME_ERR_INVALID_ARGUMENT, message: format!("{what} contains a NUL byte") })
}

/// Reads a plug-in owned string ("" for NULL).
unsafe fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// What a model is (see `GanimeModelInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    pub role: GanimeRole,
    pub width: u32,
    pub height: u32,
    pub latent_dim: u32,
    pub name: String,
}

/// A loaded model; released when dropped. Calls take `&mut self` because the ABI allows one call per model at
/// a time.
pub struct Model {
    plugin: Plugin,
    handle: *mut GanimeModel,
}

// A model may move between threads; `&mut self` on every call keeps use serial, as the ABI requires.
unsafe impl Send for Model {}

/// Progress closure: `(done, total)`, return `false` to cancel.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u32, u32) -> bool;

unsafe extern "C" fn progress_trampoline(user_data: *mut std::ffi::c_void, done: u32, total: u32) -> i32 {
    // A panicking closure must not unwind into the plug-in's frames.
    let f = &mut *(user_data as *mut ProgressFn);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(done, total))) {
        Ok(true) => 0,
        _ => 1,
    }
}

fn with_progress<R>(progress: Option<ProgressFn>, call: impl FnOnce(*const GanimeProgress) -> R) -> R {
    match progress {
        None => call(std::ptr::null()),
        Some(mut f) => {
            let p = GanimeProgress { callback: Some(progress_trampoline), user_data: &mut f as *mut ProgressFn as *mut _ };
            call(&p)
        }
    }
}

impl Model {
    pub fn info(&self) -> Result<ModelInfo, PluginError> {
        let mut info = GanimeModelInfo { role: 0, width: 0, height: 0, latent_dim: 0, name: std::ptr::null() };
        self.plugin.check(unsafe { (self.plugin.table().model_info)(self.handle, &mut info) })?;
        Ok(ModelInfo { role: info.role, width: info.width, height: info.height, latent_dim: info.latent_dim, name: unsafe { cstr(info.name) } })
    }

    /// `count` images of the model's size in `format`, from `seed` or explicit `latents`.
    pub fn generate(
        &mut self,
        seed: u64,
        count: u32,
        latents: Option<&[f32]>,
        format: GanimePixelFormat,
        progress: Option<ProgressFn>,
    ) -> Result<Vec<Image>, PluginError> {
        let info = self.info()?;
        if info.role != GANIME_ROLE_GENERATOR {
            return Err(PluginError {
                status: GANIME_ERR_WRONG_MODEL_KIND,
                message: format!("generate needs a generator, but this model is the filter '{}'", info.name),
            });
        }
        if let Some(z) = latents {
            if z.len() != count as usize * info.latent_dim as usize {
                return Err(PluginError {
                    status: GANIME_ERR_INVALID_ARGUMENT,
                    message: format!(
                        "{} latent values given; {count} images of latent_dim {} need {}",
                        z.len(),
                        info.latent_dim,
                        count as usize * info.latent_dim as usize
                    ),
                });
            }
        }
        let mut images = (0..count).map(|_| Image::new(info.width, info.height, format, None)).collect::<Result<Vec<_>, _>>()?;
        let mut raw: Vec<GanimeImage> = images.iter_mut().map(Image::raw).collect();
        let z = latents.map_or(std::ptr::null(), |z| z.as_ptr());
        let status = with_progress(progress, |p| unsafe { (self.plugin.table().generate)(self.handle, seed, count, z, raw.as_mut_ptr(), p) });
        self.plugin.check(status)?;
        Ok(images)
    }

    /// A sheet of `count` images, `columns` per row (0: square-ish), like `ganime generate --out`.
    pub fn sheet(
        &mut self,
        seed: u64,
        count: u32,
        columns: u32,
        format: GanimePixelFormat,
        progress: Option<ProgressFn>,
    ) -> Result<Image, PluginError> {
        let mut out = GanimeImage { data: std::ptr::null_mut(), width: 0, height: 0, stride: 0, format: 0 };
        let status = with_progress(progress, |p| unsafe {
            (self.plugin.table().generate_sheet)(self.handle, seed, count, columns, std::ptr::null(), format, &mut out, p)
        });
        self.plugin.check(status)?;
        self.take_image(out)
    }

    /// The generator's attribute axes as the plug-in's JSON (`{"axes": [...], "attributes": [...], ...}`).
    pub fn axes(&mut self) -> Result<String, PluginError> {
        let table = self.plugin.table_v2("model_axes")?;
        let mut json = std::ptr::null();
        self.plugin.check(unsafe { (table.model_axes)(self.handle, &mut json) })?;
        Ok(unsafe { cstr(json) })
    }

    /// The page `ganime sheet` makes for `request_json` (its flags as a JSON object), and its metadata JSON.
    pub fn render_sheet(&mut self, request_json: &str, format: GanimePixelFormat) -> Result<(Image, String), PluginError> {
        let table = self.plugin.table_v2("render_sheet")?;
        let request = c_string(request_json, "request_json")?;
        let mut out = GanimeImage { data: std::ptr::null_mut(), width: 0, height: 0, stride: 0, format: 0 };
        let mut meta = std::ptr::null();
        self.plugin.check(unsafe { (table.render_sheet)(self.handle, request.as_ptr(), format, &mut out, &mut meta, std::ptr::null()) })?;
        let meta = unsafe { cstr(meta) };
        Ok((self.take_image(out)?, meta))
    }

    /// One character from `recipe` at `width` x `height`, and the recipe's canonical text.
    pub fn character(&mut self, recipe: &str, width: u32, height: u32, format: GanimePixelFormat) -> Result<(Image, String), PluginError> {
        let table = self.plugin.table_v2("generate_character")?;
        let recipe = c_string(recipe, "recipe")?;
        let mut image = Image::new(width, height, format, None)?;
        let mut raw = image.raw();
        let mut canonical = std::ptr::null();
        self.plugin.check(unsafe { (table.generate_character)(self.handle, recipe.as_ptr(), &mut raw, &mut canonical, std::ptr::null()) })?;
        Ok((image, unsafe { cstr(canonical) }))
    }

    /// Copies a plug-in allocated image into host memory and gives the plug-in's buffer back.
    fn take_image(&self, mut out: GanimeImage) -> Result<Image, PluginError> {
        let len =
            required_len(out.width, out.height, out.stride, out.format).map_err(|message| PluginError { status: GANIME_ERR_INTERNAL, message })?;
        let data = unsafe { std::slice::from_raw_parts(out.data, len) }.to_vec();
        let image = Image { width: out.width, height: out.height, stride: out.stride, format: out.format, data };
        unsafe { (self.plugin.table().free_image)(&mut out) };
        Ok(image)
    }

    /// Stylises `image` in place with `strength` in [0, 1].
    pub fn stylize_in_place(&mut self, image: &mut Image, strength: f32, progress: Option<ProgressFn>) -> Result<(), PluginError> {
        let mut raw = image.raw();
        let status = with_progress(progress, |p| unsafe { (self.plugin.table().stylize)(self.handle, &raw, &mut raw, strength, p) });
        self.plugin.check(status)
    }

    /// Stylises `src` into a new image of `format`.
    pub fn stylize(&mut self, src: &Image, strength: f32, format: GanimePixelFormat) -> Result<Image, PluginError> {
        let mut dst = Image::new(src.width, src.height, format, None)?;
        let mut src_copy = src.clone();
        let (s, mut d) = (src_copy.raw(), dst.raw());
        self.plugin.check(unsafe { (self.plugin.table().stylize)(self.handle, &s, &mut d, strength, std::ptr::null()) })?;
        Ok(dst)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { (self.plugin.table().free_model)(self.handle) };
    }
}
