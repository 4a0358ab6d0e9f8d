//! `ganime-fuzz [--seconds N] [--cases N] [--seed S] [--corpus DIR] [--findings DIR] [TARGET…]`: fuzzes each
//! target (all by default) for N seconds or N cases, one after another, and prints cases, cases per second and
//! findings per target. Exit status 1 when anything was found. `ganime-fuzz --write-seeds DIR` regenerates the
//! generated part of the seed corpus. `scripts/fuzz.sh` wraps it with a memory limit and crash capture.

use anyhow::{bail, Context, Result};
use ganime_fuzz::{corpus, fuzz, seeds, targets, Budget};
use std::path::PathBuf;
use std::time::Duration;

/// The stack of the thread the cases run on: Rust's default for spawned threads, which is what plug-in hosts and
/// the camera's threads give ganime (the main thread's 8 MiB would hide deep recursion).
const CASE_STACK: usize = 2 << 20;

fn main() {
    let worker = std::thread::Builder::new().stack_size(CASE_STACK).spawn(run).expect("cannot start the fuzzing thread");
    match worker.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the fuzzing thread panicked"))) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn run() -> Result<bool> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (mut seconds, mut cases, mut seed) = (None, None, 1u64);
    let (mut corpus_dir, mut findings) = (root.join("corpus"), root.join("findings"));
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--seconds" => seconds = Some(value("a number of seconds")?.parse::<f64>().context("--seconds")?),
            "--cases" => cases = Some(value("a number of cases")?.parse::<u64>().context("--cases")?),
            "--seed" => seed = value("a number")?.parse().context("--seed")?,
            "--corpus" => corpus_dir = PathBuf::from(value("a folder")?),
            "--findings" => findings = PathBuf::from(value("a folder")?),
            "--write-seeds" => {
                seeds::write_all(&PathBuf::from(value("a folder")?))?;
                return Ok(true);
            }
            "-h" | "--help" => {
                println!("ganime-fuzz [--seconds N] [--cases N] [--seed S] [--corpus DIR] [--findings DIR] [TARGET…]");
                println!("targets: {}", targets::ALL.iter().map(|t| t.name).collect::<Vec<_>>().join(", "));
                return Ok(true);
            }
            name if !name.starts_with('-') => names.push(name.to_string()),
            other => bail!("unknown option {other}"),
        }
    }
    let chosen: Vec<_> = if names.is_empty() {
        targets::ALL.iter().collect()
    } else {
        names.iter().map(|n| targets::by_name(n).with_context(|| format!("unknown target {n}"))).collect::<Result<_>>()?
    };
    if seconds.is_none() && cases.is_none() {
        cases = Some(1000);
    }
    // The time is shared out between the targets.
    let per_target = seconds.map(|s| Duration::from_secs_f64(s / chosen.len() as f64));
    let mut clean = true;
    for target in chosen {
        let seeds = corpus(&corpus_dir, target.name)?;
        let report = fuzz(target, &seeds, &Budget { seed, max_cases: cases, max_time: per_target }, &findings)?;
        println!(
            "{:12} {:>9} cases in {:>7.1} s = {:>8.1} cases/s, {} finding(s)",
            target.name,
            report.cases,
            report.seconds,
            report.cases as f64 / report.seconds.max(1e-9),
            report.findings.len()
        );
        for (path, message) in &report.findings {
            println!("  {}: {message}", path.display());
        }
        clean &= report.findings.is_empty();
    }
    Ok(clean)
}
