//! What /proc says about a daemon: resident memory and CPU time of all its threads, as the anchors'
//! receiver runs read them (VmRSS, per-thread schedstat); and machine-wide busy time for the noise
//! column.

use std::time::{Duration, Instant};

pub use brindle_testkit::process::rss_kib;

/// CPU time of every thread, from schedstat (ns resolution).
pub fn cpu(pid: u32) -> Duration {
    let mut ns = 0u64;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// "CPU-quiet" completion, the anchors' method: the daemon's CPU is sampled while it works; it is
/// done at the first sample from which it used at most `quiet` CPU over the following `window`.
pub struct QuietWatch {
    pid: u32,
    samples: Vec<(Instant, Duration)>,
}

impl QuietWatch {
    pub fn new(pid: u32) -> QuietWatch {
        QuietWatch {
            pid,
            samples: Vec::new(),
        }
    }

    /// Takes a sample; returns the completion instant once the last `window` was quiet.
    pub fn sample(&mut self, window: Duration, quiet: Duration) -> Option<Instant> {
        let now = Instant::now();
        let c = cpu(self.pid);
        self.samples.push((now, c));
        let old = self.samples.iter().rev().find(|(t, _)| *t <= now - window)?;
        if c.saturating_sub(old.1) > quiet {
            return None;
        }
        // The first sample whose cumulative CPU was within `quiet` of the final value.
        self.samples
            .iter()
            .find(|(_, cc)| *cc + quiet >= c)
            .map(|(t, _)| *t)
    }
}
