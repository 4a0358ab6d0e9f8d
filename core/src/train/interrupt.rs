//! Ctrl-C and SIGTERM during training: the trainer finishes the step it is in, writes a checkpoint (and the
//! exported generator, as at any end of a run) and stops, so nothing since the last `--checkpoint-every` is
//! lost and `--resume` continues exactly. A second signal, or one while nothing trains, ends the process at
//! once as usual.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static TRAINING: AtomicUsize = AtomicUsize::new(0);

/// Exit status of a run stopped by a signal (128 + SIGINT), after its checkpoint is written.
pub const INTERRUPTED_EXIT_CODE: i32 = 130;

/// Installs the handler (once per process; the front doors call it before training).
pub fn install() -> anyhow::Result<()> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = ctrlc::set_handler(|| {
            if TRAINING.load(Ordering::SeqCst) > 0 && !REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\nstopping after this step: writing a checkpoint (a second Ctrl-C quits at once)");
            } else {
                std::process::exit(INTERRUPTED_EXIT_CODE);
            }
        });
    });
    result.map_err(|e| anyhow::anyhow!("cannot install the Ctrl-C handler: {e}"))
}

/// Whether a stop was asked for (the trainer checks after each step; the CLI after the run).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Marks a training loop as running while it lives, so that a signal stops it instead of the process.
pub struct Training(());

impl Training {
    pub fn start() -> Self {
        TRAINING.fetch_add(1, Ordering::SeqCst);
        Training(())
    }
}

impl Drop for Training {
    fn drop(&mut self) {
        TRAINING.fetch_sub(1, Ordering::SeqCst);
    }
}
