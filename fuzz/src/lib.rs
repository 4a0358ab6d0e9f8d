//! A fuzzing harness on the stable toolchain (no libFuzzer): each target is a reader of untrusted input, fed
//! mutations of a small seed corpus (`fuzz/corpus/TARGET/`). A case that panics, or runs longer than
//! [`SLOW_CASE`], is a finding: its input is saved under the findings folder with a message. A crash the process
//! cannot survive (an abort, a stack overflow, an allocation failure under `ulimit -v`) leaves the case in
//! `TARGET/in-flight.EXT`, which `scripts/fuzz.sh` keeps as `crash-…`.
//!
//! The mutations are the usual blind ones: bit flips, random bytes, inserts, deletes, truncation, splices with
//! another seed, "interesting" integers (0, -1, 2^31, 2^53, 2^62, …) written over 1 to 8 bytes, and repeated
//! chunks (deep nesting). No coverage feedback: the seeds are real files, so most mutations reach deep code.

pub mod seeds;
pub mod targets;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A case slower than this is reported (a near-hang, or work out of proportion to the input).
pub const SLOW_CASE: Duration = Duration::from_secs(5);
/// Mutated inputs are cut to this size.
const MAX_INPUT: usize = 1 << 20;

/// One reader under test.
pub struct Target {
    pub name: &'static str,
    /// Extension of the file the input is written to (readers that go by it need the right one).
    pub extension: &'static str,
    /// Runs the reader on the input, which is also in the file at `path`. Errors are expected; panics are not.
    pub run: fn(bytes: &[u8], path: &Path),
}

/// What one run found.
#[derive(Debug, Default)]
pub struct Report {
    pub cases: u64,
    pub seconds: f64,
    /// (file the input was saved to, message)
    pub findings: Vec<(PathBuf, String)>,
}

/// How long and from where a run goes.
pub struct Budget {
    pub seed: u64,
    pub max_cases: Option<u64>,
    pub max_time: Option<Duration>,
}

/// The seed inputs of a target (every file in `corpus/TARGET/`).
pub fn corpus(dir: &Path, target: &str) -> Result<Vec<Vec<u8>>> {
    let dir = dir.join(target);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).with_context(|| format!("no seed corpus {}", dir.display()))?.map(|e| Ok(e?.path())).collect::<Result<_>>()?;
    files.sort();
    let seeds = files.iter().map(|f| std::fs::read(f).with_context(|| format!("cannot read seed {}", f.display()))).collect::<Result<Vec<_>>>()?;
    if seeds.is_empty() {
        anyhow::bail!("seed corpus {} is empty", dir.display());
    }
    Ok(seeds)
}

const INTERESTING: [u64; 16] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 53,
    1 << 62,
    i64::MAX as u64,
    u64::MAX,
    u64::MAX - 1,
];

/// One to four stacked mutations of `input` (`others` for splicing).
pub fn mutate(rng: &mut ChaCha8Rng, input: &[u8], others: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let n = v.len();
        match rng.random_range(0..9) {
            0 if n > 0 => {
                let i = rng.random_range(0..n);
                v[i] ^= 1 << rng.random_range(0..8);
            }
            1 if n > 0 => {
                let i = rng.random_range(0..n);
                v[i] = rng.random();
            }
            2 => {
                let at = rng.random_range(0..=n);
                let len = rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                v.splice(at..at, bytes);
            }
            3 if n > 0 => {
                let at = rng.random_range(0..n);
                let len = rng.random_range(1..=(n - at).min(64));
                v.drain(at..at + len);
            }
            4 if n > 0 => v.truncate(rng.random_range(0..n)),
            5 if !others.is_empty() => {
                let other = &others[rng.random_range(0..others.len())];
                if !other.is_empty() {
                    let cut = rng.random_range(0..=n);
                    let from = rng.random_range(0..other.len());
                    v.truncate(cut);
                    v.extend_from_slice(&other[from..]);
                }
            }
            6 if n > 0 => {
                let value = INTERESTING[rng.random_range(0..INTERESTING.len())];
                let value = if rng.random::<bool>() { value } else { value.wrapping_neg() };
                let width = [1, 2, 4, 8][rng.random_range(0..4)].min(n);
                let at = rng.random_range(0..=n - width);
                // The value's low `width` bytes, little- or big-endian.
                let (le, be) = (value.to_le_bytes(), value.to_be_bytes());
                v[at..at + width].copy_from_slice(if rng.random::<bool>() { &le[..width] } else { &be[8 - width..] });
            }
            7 if n > 0 => {
                // A chunk repeated many times: deep nesting, long runs of one opcode or field.
                let at = rng.random_range(0..n);
                let len = rng.random_range(1..=(n - at).min(8));
                let chunk = v[at..at + len].to_vec();
                let times = [2, 16, 1000, 100_000][rng.random_range(0..4)];
                let repeated: Vec<u8> = chunk.iter().copied().cycle().take(len * times).collect();
                v.splice(at..at, repeated);
            }
            8 if n > 0 => {
                // An ASCII digit run: sizes in text formats (Y4M headers, JSON configs, filter options).
                let at = rng.random_range(0..n);
                let digits = ["0", "-1", "4294967296", "99999999999999999999", "1e308", "NaN", "inf"][rng.random_range(0..7)];
                v.splice(at..at, digits.bytes());
            }
            _ => {}
        }
        v.truncate(MAX_INPUT);
    }
    v
}

/// Fuzzes `target` from its seeds until the budget is spent; findings go to `findings/TARGET/`.
pub fn fuzz(target: &Target, seeds: &[Vec<u8>], budget: &Budget, findings: &Path) -> Result<Report> {
    let dir = findings.join(target.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let in_flight = dir.join(format!("in-flight.{}", target.extension));
    let mut rng = ChaCha8Rng::seed_from_u64(budget.seed);
    let mut report = Report::default();
    let start = Instant::now();
    quiet_panics();
    loop {
        if budget.max_cases.is_some_and(|n| report.cases >= n) || budget.max_time.is_some_and(|t| start.elapsed() >= t) {
            break;
        }
        // The seeds themselves first, then mutations.
        let input = match seeds.get(report.cases as usize) {
            Some(seed) => seed.clone(),
            None => {
                let parent = rng.random_range(0..seeds.len());
                mutate(&mut rng, &seeds[parent], seeds)
            }
        };
        if let Some(message) = run_case(target, &input, &in_flight)? {
            report.findings.push((save_finding(&dir, target, &input, &message)?, message));
        }
        report.cases += 1;
    }
    std::fs::remove_file(&in_flight).ok();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Runs one input; `Some(message)` when it panicked or was too slow.
pub fn run_case(target: &Target, input: &[u8], in_flight: &Path) -> Result<Option<String>> {
    std::fs::write(in_flight, input).with_context(|| format!("cannot write {}", in_flight.display()))?;
    let started = Instant::now();
    IN_CASE.with(|c| c.set(true));
    let outcome = std::panic::catch_unwind(|| (target.run)(input, in_flight));
    IN_CASE.with(|c| c.set(false));
    let took = started.elapsed();
    Ok(match outcome {
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            let at = LAST_PANIC.with(|p| std::mem::take(&mut *p.borrow_mut()));
            Some(format!("panic: {what}{at}"))
        }
        Ok(()) if took > SLOW_CASE => Some(format!("slow: {:.1} s", took.as_secs_f64())),
        Ok(()) => None,
    })
}

fn save_finding(dir: &Path, target: &Target, input: &[u8], message: &str) -> Result<PathBuf> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(input);
    let name: String = hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("finding-{name}.{}", target.extension));
    std::fs::write(&path, input)?;
    std::fs::write(path.with_extension("txt"), format!("{}: {message}\n", target.name))?;
    Ok(path)
}

thread_local! {
    static LAST_PANIC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    static IN_CASE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Panics in a case are findings, reported once with their location, not printed with a backtrace per case;
/// other panics (a failing test) go to the previous hook.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(|c| c.get()) {
                let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = at);
            } else {
                previous(info);
            }
        }))
    });
}
