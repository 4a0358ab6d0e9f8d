//! ganime: GAN image generation, style transfer and anime stylisation on Candle.

pub mod assets;
pub mod bench;
pub mod cli;
pub mod compute;
pub mod data;
pub mod device;
pub mod filter;
pub mod filters;
pub mod generate;
pub mod io;
pub mod metrics;
pub mod models;
pub mod names;
pub mod nn;
pub mod onnx;
pub mod style;
pub mod train;

// The unit tests (and the kernels' ignored micro-benchmarks among them) use the binaries' allocator, so that
// timings are not dominated by fresh-page faults of the system allocator.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tells mimalloc (the binaries' global allocator) to keep freed memory instead of returning it to the OS at
/// once: numeric option ids of mimalloc v2's `mi_option_e` (4 = arena_eager_commit, 15 = purge_delay).
pub fn tune_allocator() {
    unsafe {
        libmimalloc_sys::mi_option_set(4, 1);
        libmimalloc_sys::mi_option_set(15, -1);
    }
}

/// The floor plan (docs/architecture.md) as a test: inference never imports training, and the inference
/// layers do not use the command-line library.
#[cfg(test)]
mod layering {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Code lines (comments dropped) of each file under `src/{layer}` that mention any of `needles`.
    fn offending_lines(layers: &[&str], needles: &[&str]) -> Vec<String> {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        for layer in layers {
            rust_files(&src.join(layer), &mut files);
        }
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if needles.iter().any(|n| code.contains(n)) {
                    found.push(format!("{}:{}: {}", file.strip_prefix(&src).unwrap().display(), i + 1, line.trim()));
                }
            }
        }
        found
    }

    #[test]
    fn inference_never_imports_training_or_the_cli() {
        let inference = ["filters", "generate", "models", "io", "nn"];
        let up = offending_lines(&inference, &["crate::train", "super::train", "super::super::train", "crate::cli", "clap::"]);
        assert!(up.is_empty(), "inference code reaching into train/ or the CLI:\n{}", up.join("\n"));
        // The check itself finds what it looks for.
        assert!(!offending_lines(&["train"], &["crate::io::checkpoint"]).is_empty());
    }
}
