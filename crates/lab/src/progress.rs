//! Progress lines while a lab builds or tears down (to stderr in the CLI, silent in tests).

use std::time::Instant;

/// Receives one line per step.
pub trait Progress {
    fn step(&self, msg: &str);
}

/// Prints `[  1.23s] msg` lines to stderr.
pub struct Stderr {
    start: Instant,
}

impl Default for Stderr {
    fn default() -> Self {
        Stderr {
            start: Instant::now(),
        }
    }
}

impl Progress for Stderr {
    fn step(&self, msg: &str) {
        eprintln!("[{:6.2}s] {msg}", self.start.elapsed().as_secs_f64());
    }
}

/// Discards every line.
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _msg: &str) {}
}
