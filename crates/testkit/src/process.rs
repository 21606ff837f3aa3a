//! Child processes that die with their guard.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process (a daemon under test, or a peer daemon) killed with SIGKILL by its PID and
/// reaped when the guard drops. Its stdout and stderr go to a log file, shown by [`Daemon::log`]
/// and printed when a test panics while it is alive.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `cmd` with stdout/stderr appended to `log`. `name` is for messages only.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Daemon {
        let out = File::create(log).unwrap_or_else(|e| panic!("create log {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log fd");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        Daemon {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The log so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `signal` to the process (by PID).
    pub fn signal(&self, signal: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's PID; the child is not reaped yet, so the PID is ours.
            unsafe {
                libc::kill(c.id() as i32, signal);
            }
        }
    }

    /// SIGKILL and reap now. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status, or `None` if
    /// it is still running (it is left running; the guard still kills it on drop).
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                self.child = None;
                return Some(st);
            }
            if self.child.is_none() || Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then wait up to `grace` for exit (SIGKILL after). Returns the exit status code if
    /// it exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<i32> {
        self.signal(libc::SIGTERM);
        match self.wait(grace) {
            Some(status) => status.code(),
            None => {
                self.kill();
                None
            }
        }
    }

    /// Waits until `ready()` is true, polling every 20 ms, or panics after `timeout` showing the
    /// daemon's log. Also panics at once if the daemon exits.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if ready() {
                return;
            }
            if !self.is_running() {
                panic!(
                    "{} exited while waiting for {what}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: timed out after {timeout:?} waiting for {what}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!(
                "--- log of {} ({}) ---\n{}",
                self.name,
                self.log.display(),
                self.log()
            );
        }
        self.kill();
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` in `/proc/PID/status`; 0 once it is gone),
/// what the benchmarks compare daemons by.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
