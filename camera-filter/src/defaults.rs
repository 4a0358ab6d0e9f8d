//! The camera's own policy: which filters it offers when none is given, and at what processing size. (The
//! filter registry in the library knows every filter; choosing among them for live video is the camera's job.)

/// Processing size (long side) of the learned filters in the camera's default list: the frame is filtered at
/// this size and scaled back up, to trade detail for frame rate on a CPU.
pub const CAMERA_SIZE: u32 = 160;

/// The camera's default filter list: toon, the 26 styles, matta, then an arbitrary-style filter per style image
/// given (each learned one at [`CAMERA_SIZE`]).
pub fn camera_default_specs(style_images: &[std::path::PathBuf]) -> Vec<String> {
    let mut specs = vec!["toon".to_string()];
    specs.extend(ganime::filters::builtin::names().iter().map(|n| format!("{n} size={CAMERA_SIZE}")));
    specs.extend(style_images.iter().map(|p| arbitrary_spec(p)));
    specs
}

/// The camera spec of the arbitrary-style filter for `style_image`.
pub fn arbitrary_spec(style_image: &std::path::Path) -> String {
    format!("arbitrary:{} size={CAMERA_SIZE}", style_image.display())
}
