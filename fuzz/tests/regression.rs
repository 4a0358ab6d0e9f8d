//! The fuzzing harness's regression part, run by `cargo test`: every seed and every saved regression input
//! (`fuzz/regressions/TARGET/`, inputs that once crashed or panicked) replayed, then a short deterministic run
//! (fixed seed, a few hundred mutations per target). Any panic or slow case fails the test with its input saved.

use ganime_fuzz::{corpus, fuzz, run_case, targets, Budget};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn saved_regressions_and_a_short_deterministic_run_find_nothing() {
    let findings = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for target in &targets::ALL {
        let seeds = corpus(&root().join("corpus"), target.name).unwrap();
        let regressions = root().join("regressions").join(target.name);
        let mut saved = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&regressions) {
            for entry in entries {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e != "txt") {
                    saved.push(path);
                }
            }
        }
        let in_flight = findings.path().join(format!("replay.{}", target.extension));
        for path in &saved {
            if let Some(message) = run_case(target, &std::fs::read(path).unwrap(), &in_flight).unwrap() {
                failures.push(format!("{}: {message}", path.display()));
            }
        }
        let report = fuzz(target, &seeds, &Budget { seed: 22, max_cases: Some(300), max_time: None }, findings.path()).unwrap();
        assert_eq!(report.cases, 300);
        eprintln!("{}: {} saved regressions, {} cases in {:.1} s", target.name, saved.len(), report.cases, report.seconds);
        failures.extend(report.findings.iter().map(|(path, message)| format!("{}: {message}", path.display())));
    }
    assert!(failures.is_empty(), "findings:\n{}", failures.join("\n"));
}

/// The mutator changes inputs, stays deterministic for a seed, and can grow an input (deep nesting).
#[test]
fn mutations_are_deterministic_and_varied() {
    use rand::SeedableRng;
    let seed = b"\x80\x02]q\x00(K\x01K\x02e.".to_vec();
    let run = |s| {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
        (0..200).map(|_| ganime_fuzz::mutate(&mut rng, &seed, std::slice::from_ref(&seed))).collect::<Vec<_>>()
    };
    let (a, b) = (run(5), run(5));
    assert_eq!(a, b);
    assert_ne!(a, run(6));
    assert!(a.iter().filter(|m| **m != seed).count() > 150);
    assert!(a.iter().any(|m| m.len() > 1000), "no repeated chunk");
    assert!(a.iter().any(|m| m.len() < seed.len()), "no truncation or deletion");
}

/// The seeds are valid files of their formats (so mutations start deep inside each reader), and the generated
/// ones are what `ganime-fuzz --write-seeds` writes today.
#[test]
fn seeds_are_valid_inputs() {
    use candle_core::Device;
    let dir = root().join("corpus");
    for entry in std::fs::read_dir(dir.join("pth")).unwrap() {
        let path = entry.unwrap().path();
        let tensors = ganime::io::weights::read_tensors(&path, &Device::Cpu).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        assert!(tensors.len() >= 2, "{}", path.display());
    }
    assert_eq!(ganime::io::weights::read_tensors(&dir.join("safetensors/weights.safetensors"), &Device::Cpu).unwrap().len(), 3);
    let ckpt = ganime::io::checkpoint::Checkpoint::read(&dir.join("checkpoint/dcgan16.safetensors"), &Device::Cpu).unwrap();
    assert_eq!(ganime::generate::from_checkpoint(&ckpt, &Device::Cpu).unwrap().latent_dim(), 4);
    for (name, frames) in [("c420.y4m", 2), ("c444.y4m", 1)] {
        let mut reader = ganime::io::y4m::Y4mReader::new(std::io::BufReader::new(std::fs::File::open(dir.join("y4m").join(name)).unwrap())).unwrap();
        let mut n = 0;
        while reader.next_frame().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, frames, "{name}");
    }
    let graph = ganime::onnx::QdqGraph::from_bytes(&std::fs::read(dir.join("onnx/conv-relu.onnx")).unwrap(), "seed").unwrap();
    let x = candle_core::Tensor::ones((1, 2, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(graph.run(&[("x", x)]).unwrap().dims(), &[1, 2, 4, 4]);
    for line in std::fs::read_to_string(dir.join("filter-spec/builtin.txt")).unwrap().lines() {
        ganime::filters::open_with_options(line).unwrap();
    }
    let fresh = tempfile::tempdir().unwrap();
    ganime_fuzz::seeds::write_all(fresh.path()).unwrap();
    for target in ["filter-spec", "onnx", "plugin", "y4m", "safetensors"] {
        for entry in std::fs::read_dir(fresh.path().join(target)).unwrap() {
            let path = entry.unwrap().path();
            let committed = dir.join(target).join(path.file_name().unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&committed).unwrap(), "{} is stale", committed.display());
        }
    }
}
