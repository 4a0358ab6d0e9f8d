//! The versioned C ABI between ganime and image-editor plug-ins, and a safe Rust host for it.
//!
//! A plug-in library exports one symbol, [`ENTRY_SYMBOL`] (`ganime_plugin_entry`): the host passes the ABI
//! version it was built for and gets a pointer to a static table of function pointers, or NULL when the plug-in
//! does not speak that version (the reason is then in `ganime_plugin_last_error()`). Everything else goes through
//! the table. Version 2 ([`GanimePluginV2`]) is version 1's table ([`GanimePluginV1`], its first member) with
//! the inspiration workflow appended; a plug-in answers both, so hosts built for version 1 keep working. `include/ganime_plugin.h` is generated from this file by cbindgen
//! (`tests/header.rs` fails when it is stale; `GANIME_BLESS=1 cargo test -p ganime-plugin-abi` rewrites it).
//!
//! Plain integers (not Rust enums) carry statuses, pixel formats and roles across the boundary: a C caller may
//! pass any value, and a Rust enum holding an undeclared value would be undefined behaviour.

use std::ffi::{c_char, c_void};

pub mod host;

/// The ABI version this header describes, bumped whenever the table changes. Plug-ins also answer every
/// older version still listed in [`GANIME_ABI_OLDEST_SUPPORTED`], with that version's table.
pub const GANIME_ABI_VERSION: u32 = 2;
/// The oldest ABI version a plug-in still answers.
pub const GANIME_ABI_OLDEST_SUPPORTED: u32 = 1;

/// Name of the one exported entry point: `const GanimePluginV1 *ganime_plugin_entry(uint32_t abi_version)` (for
/// version 2, the pointer is to a `GanimePluginV2` whose first member is that `GanimePluginV1`).
pub const ENTRY_SYMBOL: &[u8] = b"ganime_plugin_entry\0";
/// Name of the exported `const char *ganime_plugin_last_error(void)`, for errors before a table exists.
pub const LAST_ERROR_SYMBOL: &[u8] = b"ganime_plugin_last_error\0";

/// Status codes returned by every table function that can fail.
pub type GanimeStatus = i32;
/// Success.
pub const GANIME_OK: GanimeStatus = 0;
/// A required pointer argument was NULL.
pub const GANIME_ERR_NULL_POINTER: GanimeStatus = 1;
/// An argument is out of range: zero or too large a size or count, a stride shorter than a row, a NaN strength,
/// mismatched source and destination sizes, a string that is not UTF-8.
pub const GANIME_ERR_INVALID_ARGUMENT: GanimeStatus = 2;
/// The pixel format is not one of `GANIME_FORMAT_*`.
pub const GANIME_ERR_UNKNOWN_FORMAT: GanimeStatus = 3;
/// The model cannot do this: generating with a filter, stylising with a generator.
pub const GANIME_ERR_WRONG_MODEL_KIND: GanimeStatus = 4;
/// The model could not be loaded (missing file, unknown kind, malformed weights).
pub const GANIME_ERR_LOAD_FAILED: GanimeStatus = 5;
/// The computation itself failed.
pub const GANIME_ERR_COMPUTE_FAILED: GanimeStatus = 6;
/// The progress callback asked to stop.
pub const GANIME_ERR_CANCELLED: GanimeStatus = 7;
/// A bug in the plug-in: a Rust panic was caught at the boundary. The plug-in stays usable.
pub const GANIME_ERR_INTERNAL: GanimeStatus = 8;

/// Pixel formats: 8 bits per channel, channels interleaved in this order, sRGB-encoded.
pub type GanimePixelFormat = u32;
/// Red, green, blue, alpha; 4 bytes per pixel. Generated pixels get alpha 255; stylising keeps alpha.
pub const GANIME_FORMAT_RGBA8: GanimePixelFormat = 1;
/// Red, green, blue; 3 bytes per pixel.
pub const GANIME_FORMAT_RGB8: GanimePixelFormat = 2;
/// Gray; 1 byte per pixel. Read as R = G = B; written as Rec. 601 luma of the RGB result.
pub const GANIME_FORMAT_GRAY8: GanimePixelFormat = 3;
/// Gray, alpha; 2 bytes per pixel.
pub const GANIME_FORMAT_GRAYA8: GanimePixelFormat = 4;

/// What a model is loaded as.
pub type GanimeRole = u32;
/// Detect: a path to an existing file or folder is a generator; anything else is a filter spec.
pub const GANIME_ROLE_AUTO: GanimeRole = 0;
/// Latents -> images (DCGAN family). Spec: a checkpoint or exported model path, or "" for the built-in model.
pub const GANIME_ROLE_GENERATOR: GanimeRole = 1;
/// Image -> image. Spec: a filter name ("passthrough", "toon", ...) or `KIND:PATH` (see `describe`).
pub const GANIME_ROLE_FILTER: GanimeRole = 2;

/// Largest width or height the plug-in accepts, in pixels.
pub const GANIME_MAX_DIMENSION: u32 = 16384;
/// Largest number of images one `generate` or `generate_sheet` call makes.
pub const GANIME_MAX_COUNT: u32 = 1024;

/// Bytes per pixel of a format, or `None` for an unknown one.
pub fn bytes_per_pixel(format: GanimePixelFormat) -> Option<usize> {
    match format {
        GANIME_FORMAT_RGBA8 => Some(4),
        GANIME_FORMAT_RGB8 => Some(3),
        GANIME_FORMAT_GRAY8 => Some(1),
        GANIME_FORMAT_GRAYA8 => Some(2),
        _ => None,
    }
}

/// A pixel buffer described by its owner. Row `y` starts at `data + y * stride`; only the first
/// `width * bytes_per_pixel` bytes of each row are read or written. The buffer must hold at least
/// `(height - 1) * stride + width * bytes_per_pixel` bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GanimeImage {
    pub data: *mut u8,
    pub width: u32,
    pub height: u32,
    /// Bytes from one row to the next; at least `width * bytes_per_pixel`.
    pub stride: usize,
    /// One of `GANIME_FORMAT_*`.
    pub format: GanimePixelFormat,
}

/// Called between steps of a long operation with the steps done so far and the total; returning non-zero
/// cancels the operation, which then returns `GANIME_ERR_CANCELLED`. Called on the caller's thread.
pub type GanimeProgressFn = Option<unsafe extern "C" fn(user_data: *mut c_void, done: u32, total: u32) -> i32>;

/// A progress callback and the pointer passed back to it. A NULL `GanimeProgress*` or NULL `callback` means
/// no reporting.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GanimeProgress {
    pub callback: GanimeProgressFn,
    pub user_data: *mut c_void,
}

/// An opaque loaded model, created by `load_model`, released by `free_model`.
// Not `repr(C)`, so cbindgen declares it as an incomplete struct: C hosts cannot look inside.
pub struct GanimeModel {
    _private: [u8; 0],
}

/// What a loaded model is, filled by `model_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GanimeModelInfo {
    /// `GANIME_ROLE_GENERATOR` or `GANIME_ROLE_FILTER`.
    pub role: GanimeRole,
    /// Generators: size of one generated image. Filters: 0 (any size).
    pub width: u32,
    pub height: u32,
    /// Generators: length of one latent vector. Filters: 0.
    pub latent_dim: u32,
    /// Human-readable description, NUL-terminated, owned by the model: valid until `free_model`.
    pub name: *const c_char,
}

/// The function table of ABI version 1, and the first member of every later version's table.
///
/// Ownership: the table and every string the plug-in returns are owned by the plug-in; host buffers passed as
/// `GanimeImage` stay owned by the host and are only accessed during the call. Images the plug-in allocates
/// (`generate_sheet`) are released with `free_image`, models with `free_model`; each exactly once. The plug-in
/// keeps a table of the handles it gave out: a freed or foreign model handle makes a call fail with
/// `GANIME_ERR_INVALID_ARGUMENT`, and `free_model`/`free_image` leave such handles alone (with a message for
/// `last_error`) instead of crashing the host. A model handle is never given out twice (it is not an address),
/// so a stale handle cannot reach a model loaded later.
///
/// Threading: every function may be called from any thread, and one model may be used by several calls at the
/// same time. `free_model` while another thread's call uses the model is safe: that call finishes normally,
/// later calls with the handle fail as above, and the model is released when the last call returns. The
/// last-error message is per thread.
///
/// Errors: a function returning `GanimeStatus` leaves a message for `last_error` on failure; output
/// buffers are then unspecified except where a function says otherwise. No Rust panic ever crosses this
/// boundary (it becomes `GANIME_ERR_INTERNAL`).
#[repr(C)]
pub struct GanimePluginV1 {
    /// The ABI version of the whole table (1 for a `GanimePluginV1`, 2 for the `GanimePluginV2` around it).
    pub abi_version: u32,
    /// `sizeof` the whole table in the plug-in (`GanimePluginV1` or `GanimePluginV2`).
    pub struct_size: u32,
    /// JSON describing the plug-in: `{"name", "version", "abi_version", "formats", "filters", "filter_kinds",
    /// "operations"}`. Static; valid while the library is loaded.
    pub describe: unsafe extern "C" fn() -> *const c_char,
    /// The message of the last failure on this thread ("" if none). Valid until the next call on this thread.
    pub last_error: unsafe extern "C" fn() -> *const c_char,
    /// Loads a model. `spec`: UTF-8, NUL-terminated (see `GANIME_ROLE_*`). On success `*out` is a new model.
    pub load_model: unsafe extern "C" fn(spec: *const c_char, role: GanimeRole, out: *mut *mut GanimeModel) -> GanimeStatus,
    /// Describes a model (see `GanimeModelInfo`).
    pub model_info: unsafe extern "C" fn(model: *const GanimeModel, out: *mut GanimeModelInfo) -> GanimeStatus,
    /// Generates `count` images into the host's `images[0..count]`, each exactly `model_info`'s width x height.
    /// Latents: `latents` (`count * latent_dim` floats, row-major) when not NULL, else drawn from `seed`
    /// exactly as `ganime generate --seed` does (image i of a seed is the same whatever the count).
    /// Progress counts images.
    pub generate: unsafe extern "C" fn(
        model: *mut GanimeModel,
        seed: u64,
        count: u32,
        latents: *const f32,
        images: *mut GanimeImage,
        progress: *const GanimeProgress,
    ) -> GanimeStatus,
    /// Generates `count` images from `seed` (or `latents`, as in `generate`) as one sheet of `columns` per row
    /// (0: square-ish) with 2-pixel borders, the same pixels as `ganime generate --out --columns`.
    /// On success `*out` is a plug-in allocated image (tightly packed, `format`) to release with `free_image`.
    pub generate_sheet: unsafe extern "C" fn(
        model: *mut GanimeModel,
        seed: u64,
        count: u32,
        columns: u32,
        latents: *const f32,
        format: GanimePixelFormat,
        out: *mut GanimeImage,
        progress: *const GanimeProgress,
    ) -> GanimeStatus,
    /// Stylises `src` into `dst` (same width and height; formats may differ; `dst == src` or the same `data`
    /// works in place). `strength` in [0, 1] blends with the input (0: unchanged, 1: fully stylised).
    /// Alpha is kept (or 255 when `src` has none). `dst` is written only on success.
    pub stylize: unsafe extern "C" fn(
        model: *mut GanimeModel,
        src: *const GanimeImage,
        dst: *mut GanimeImage,
        strength: f32,
        progress: *const GanimeProgress,
    ) -> GanimeStatus,
    /// Releases an image the plug-in allocated and zeroes `*image`. NULL, or an image with NULL data, is a no-op.
    pub free_image: unsafe extern "C" fn(image: *mut GanimeImage),
    /// Releases a model. NULL is a no-op.
    pub free_model: unsafe extern "C" fn(model: *mut GanimeModel),
}

/// The function table of ABI version 2: version 1 (`base`, with `base.abi_version` 2) plus the inspiration
/// workflow of `ganime sheet` and `ganime generate --recipe`: sheets with rows and captions, one character from a
/// recipe (variations, interpolation, attribute moves), and the attribute axes a generator can move along.
///
/// A recipe is text: `seed=3 toward=5@0.25 variation=2@0.75 set=hair=blonde:+1.5`, every field but `seed`
/// optional (see `ganime generate --recipe`). Strings the plug-in returns through an `out` argument are owned by
/// the model: valid until the next call on that model from the same thread that returns a string, or
/// `free_model`.
#[repr(C)]
pub struct GanimePluginV2 {
    pub base: GanimePluginV1,
    /// The attribute axes of a generator, as JSON: `{"axes": ["hair=blonde", ...], "attributes": ["hair", "eyes"],
    /// "variation_strength": 0.75 or null}`. A generator without axes (other than the built-in model, whose axes
    /// ship with it) has `"axes": []`. `GANIME_ERR_WRONG_MODEL_KIND` for a filter.
    pub model_axes: unsafe extern "C" fn(model: *mut GanimeModel, out_json: *mut *const c_char) -> GanimeStatus,
    /// An inspiration sheet, the same page as `ganime sheet` for the same settings: `request_json` is an object
    /// with `ganime sheet`'s flag names, every field optional (`{"seed": 3, "count": 6, "columns": 3,
    /// "variations": [3], "interpolate": ["3:5"], "attribute": ["3:hair=blonde"], "cell": 96, ...}`); unknown
    /// names are refused. On success `*out` is a plug-in allocated image (tightly packed, `format`) to release
    /// with `free_image`, and `*out_metadata` the JSON `ganime sheet` embeds in its PNG: `cells` lists every
    /// cell's `caption`, `recipe` and place on the page (`x`, `y`, `size`). Progress: 0 of 1, then 1 of 1.
    pub render_sheet: unsafe extern "C" fn(
        model: *mut GanimeModel,
        request_json: *const c_char,
        format: GanimePixelFormat,
        out: *mut GanimeImage,
        out_metadata: *mut *const c_char,
        progress: *const GanimeProgress,
    ) -> GanimeStatus,
    /// One character from `recipe` into the host's `image`, resized to the image's width x height with Lanczos3
    /// when that is not the generator's size: the same pixels as `ganime generate --recipe RECIPE --size SIDE`.
    /// `out_recipe` (may be NULL) receives the recipe in its canonical text. Progress: 0 of 1, then 1 of 1.
    pub generate_character: unsafe extern "C" fn(
        model: *mut GanimeModel,
        recipe: *const c_char,
        image: *mut GanimeImage,
        out_recipe: *mut *const c_char,
        progress: *const GanimeProgress,
    ) -> GanimeStatus,
}

/// The exported entry point's type.
pub type GanimePluginEntryFn = unsafe extern "C" fn(abi_version: u32) -> *const GanimePluginV1;
/// The exported last-error function's type.
pub type GanimeLastErrorFn = unsafe extern "C" fn() -> *const c_char;

/// Bytes a buffer of this shape needs, checking the stride; `Err` names what is wrong.
pub fn required_len(width: u32, height: u32, stride: usize, format: GanimePixelFormat) -> Result<usize, String> {
    let bpp =
        bytes_per_pixel(format).ok_or_else(|| format!("unknown pixel format {format} (expected 1 = RGBA8, 2 = RGB8, 3 = GRAY8, 4 = GRAYA8)"))?;
    if width == 0 || height == 0 {
        return Err(format!("image size {width}x{height} is empty"));
    }
    if width > GANIME_MAX_DIMENSION || height > GANIME_MAX_DIMENSION {
        return Err(format!("image size {width}x{height} exceeds the limit of {GANIME_MAX_DIMENSION} pixels per side"));
    }
    let row = width as usize * bpp;
    if stride < row {
        return Err(format!("stride {stride} is shorter than a row of {width} pixels ({row} bytes)"));
    }
    (height as usize - 1)
        .checked_mul(stride)
        .and_then(|n| n.checked_add(row))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| format!("stride {stride} x height {height} overflows the address space"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-2 table starts with a complete version-1 table, so a version-1 host can read it as one.
    #[test]
    fn version_2_begins_with_version_1() {
        assert_eq!(std::mem::offset_of!(GanimePluginV2, base), 0);
        assert!(std::mem::size_of::<GanimePluginV2>() > std::mem::size_of::<GanimePluginV1>());
    }

    #[test]
    fn required_len_checks_every_field() {
        assert_eq!(required_len(3, 2, 12, GANIME_FORMAT_RGBA8), Ok(24));
        assert_eq!(required_len(3, 2, 10, GANIME_FORMAT_RGB8), Ok(19));
        assert!(required_len(3, 2, 8, GANIME_FORMAT_RGB8).unwrap_err().contains("stride 8"));
        assert!(required_len(0, 2, 8, GANIME_FORMAT_RGB8).unwrap_err().contains("empty"));
        assert!(required_len(3, 2, 12, 9).unwrap_err().contains("unknown pixel format 9"));
        assert!(required_len(GANIME_MAX_DIMENSION + 1, 1, usize::MAX, GANIME_FORMAT_GRAY8).unwrap_err().contains("limit"));
        assert!(required_len(4, 4, usize::MAX / 2, GANIME_FORMAT_GRAY8).unwrap_err().contains("overflow"));
    }
}
