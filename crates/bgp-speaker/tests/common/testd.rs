//! `brindle-bgp-testd` (the speaker as a process) in a namespace, and a watcher that samples a
//! namespace's kernel routes, so tests can `kill -9` a speaker and see what its peers kept.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brindle_testkit::{Daemon, Netns, TempDir};

use super::daemons::nscmd;

/// One run of the speaker process; `restart` starts a new one with other arguments.
pub struct Testd {
    ns: String,
    dir: TempDir,
    daemon: Option<Daemon>,
    runs: usize,
}

impl Testd {
    pub fn start(ns: &Netns, args: &[&str]) -> Testd {
        let mut t = Testd {
            ns: ns.name().to_string(),
            dir: TempDir::new("testd"),
            daemon: None,
            runs: 0,
        };
        t.launch(args);
        t
    }

    fn ctl_path(&self) -> PathBuf {
        self.dir.join("ctl")
    }

    fn launch(&mut self, args: &[&str]) {
        self.runs += 1;
        let _ = std::fs::remove_file(self.ctl_path());
        let mut c = nscmd(&self.ns, env!("CARGO_BIN_EXE_brindle-bgp-testd"));
        c.args(args)
            .arg("--ctl")
            .arg(self.ctl_path())
            .env("RUST_LOG", "info");
        let log = self.dir.join(&format!("testd-{}.log", self.runs));
        let mut d = Daemon::spawn("brindle-bgp-testd", c, &log);
        let ctl = self.ctl_path();
        d.wait_until("control socket", Duration::from_secs(10), || ctl.exists());
        self.daemon = Some(d);
    }

    /// SIGKILL: the kernel closes its sockets (a FIN to each peer), nothing else is sent.
    pub fn kill9(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
    }

    /// A new process with `args` (after `kill9`).
    pub fn restart(&mut self, args: &[&str]) {
        self.kill9();
        self.launch(args);
    }

    pub fn pid(&self) -> u32 {
        self.daemon.as_ref().map_or(0, Daemon::pid)
    }

    pub fn ctl(&self, cmd: &str) -> String {
        let Ok(mut s) = UnixStream::connect(self.ctl_path()) else {
            return String::new();
        };
        let _ = s.write_all(format!("{cmd}\n").as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    pub fn converged(&self) -> bool {
        self.ctl("converged").trim() == "yes"
    }

    pub fn established(&self) -> bool {
        self.ctl("status").contains("Established")
    }

    pub fn has_route(&self, prefix: &str, via: &str) -> bool {
        self.ctl("routes")
            .lines()
            .any(|l| l.starts_with(&format!("{prefix} via {via} ")))
    }

    /// The current process's log (stderr: tracing at RUST_LOG=info).
    pub fn log(&self) -> String {
        self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
    }

    pub fn dump(&self) -> String {
        format!(
            "testd status:\n{}routes:\n{}log:\n{}",
            self.ctl("status"),
            self.ctl("routes"),
            self.daemon.as_ref().map(Daemon::log).unwrap_or_default()
        )
    }
}

/// Kernel table samples: when, and the destinations present.
type Samples = Arc<Mutex<Vec<(Instant, BTreeSet<String>)>>>;

/// Samples `ip -4 route` (or `ip -6 route`) of a namespace every 10 ms on a thread: for each
/// watched prefix, when it was first seen and every gap in which it was missing.
pub struct KernelWatch {
    stop: Arc<AtomicBool>,
    samples: Samples,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KernelWatch {
    pub fn start(ns: &Netns) -> KernelWatch {
        KernelWatch::start_family(ns, "-4")
    }

    /// `family`: `-4` or `-6`.
    pub fn start_family(ns: &Netns, family: &'static str) -> KernelWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Samples = Arc::new(Mutex::new(Vec::new()));
        let (st, sa, name) = (stop.clone(), samples.clone(), ns.name().to_string());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let out = nscmd(&name, "ip")
                    .args([family, "route", "show"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                let set = out
                    .lines()
                    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                    .collect();
                sa.lock().unwrap().push((Instant::now(), set));
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        KernelWatch {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// True if the latest sample has `prefix`.
    pub fn has(&self, prefix: &str) -> bool {
        self.samples
            .lock()
            .unwrap()
            .last()
            .is_some_and(|(_, s)| s.contains(prefix))
    }

    /// Samples taken so far, and how many of those after the first one with `prefix` lack it.
    pub fn missing_after_first(&self, prefix: &str) -> (usize, usize) {
        let s = self.samples.lock().unwrap();
        let first = s.iter().position(|(_, set)| set.contains(prefix));
        let missing = first.map_or(0, |i| {
            s[i..].iter().filter(|(_, set)| !set.contains(prefix)).count()
        });
        (s.len(), missing)
    }

    /// When `prefix` was last seen.
    pub fn last_seen(&self, prefix: &str) -> Option<Instant> {
        let s = self.samples.lock().unwrap();
        s.iter()
            .rev()
            .find(|(_, set)| set.contains(prefix))
            .map(|(t, _)| *t)
    }
}

impl Drop for KernelWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
