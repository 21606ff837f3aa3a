//! `brindle lab down`: removes exactly what the state file lists, best-effort, newest first.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::netns;
use crate::progress::Progress;
use crate::state::{LabDir, LabState};

/// Tears down the lab whose state is `state`: stops its daemons (verified by PID and start
/// time), deletes its namespaces (by their recorded names, pods first), removes its directory.
/// Goes on after failures and reports them all at the end.
pub fn teardown(dir: &LabDir, state: &LabState, progress: &dyn Progress) -> Result<()> {
    let mut errors = Vec::new();
    let alive: Vec<_> = state.processes.iter().filter(|p| p.is_alive()).collect();
    if !alive.is_empty() {
        progress.step(&format!("stopping {} daemons", alive.len()));
    }
    // Ask every daemon to stop at once, then wait: 100 agents stop in one grace period.
    std::thread::scope(|s| {
        let handles: Vec<_> = alive
            .iter()
            .map(|p| s.spawn(move || p.stop(Duration::from_secs(10))))
            .collect();
        for h in handles {
            if let Ok(Err(e)) = h.join() {
                errors.push(e.to_string());
            }
        }
    });
    let present: Vec<&String> = state.namespaces.iter().filter(|n| netns::exists(n)).collect();
    if !present.is_empty() {
        progress.step(&format!("deleting {} namespaces", present.len()));
    }
    for ns in present.into_iter().rev() {
        if let Err(e) = netns::del(ns) {
            errors.push(e.to_string());
        }
    }
    if dir.dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir.dir)
    {
        errors.push(Error::io(&dir.dir, e).to_string());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Teardown {
            name: state.spec.name.clone(),
            errors,
        })
    }
}
