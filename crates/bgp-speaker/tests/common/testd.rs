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
use super::wait_for;

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

/// A kill -9 and restart of the speaker process with a graceful-restart peer watching.
pub struct RestartCase<'a> {
    /// Announced before and after the restart.
    pub kept: &'a str,
    /// Announced before only.
    pub dropped: &'a str,
    /// The restarted process's arguments (announcing `kept`, `--restarting`).
    pub restart_args: &'a [&'a str],
    /// The peer's route the restarted speaker must learn again, and its next hop.
    pub theirs: &'a str,
    pub their_next_hop: &'a str,
}

impl RestartCase<'_> {
    /// Kills the speaker and restarts it, checking in the peer's kernel (`kernel`) that both
    /// routes stay while it is gone, that the dropped one goes at our End-of-RIB (within 20 s,
    /// well before the restart time), that the kept one never left, and that the restarted
    /// speaker learns the peer's route again and converges on its End-of-RIB.
    pub fn run(&self, testd: &mut Testd, kernel: &KernelWatch, peer_dump: &dyn Fn() -> String) {
        const T: Duration = Duration::from_secs(30);
        let (kept, dropped) = (self.kept, self.dropped);
        wait_for(
            "our routes in the peer's kernel",
            T,
            || kernel.has(kept) && kernel.has(dropped),
            || format!("{}\n{}", testd.dump(), peer_dump()),
        );
        let pid = testd.pid();
        testd.kill9();
        // The peer noticed (FIN) and keeps the routes while we are gone.
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            kernel.has(kept) && kernel.has(dropped),
            "routes kept while down: {}",
            peer_dump()
        );
        let restarted = Instant::now();
        testd.restart(self.restart_args);
        assert_ne!(pid, testd.pid());
        let dump = || format!("{}\n{}", testd.dump(), peer_dump());
        wait_for(
            "the restarted speaker is Established",
            T,
            || testd.established(),
            dump,
        );
        // The route no longer announced goes after our End-of-RIB, not after the restart time.
        wait_for(
            "the dropped route swept",
            Duration::from_secs(20),
            || !kernel.has(dropped),
            dump,
        );
        let swept_after = kernel
            .last_seen(dropped)
            .map(|t| t.saturating_duration_since(restarted));
        assert!(swept_after < Some(Duration::from_secs(20)), "{swept_after:?}");
        // The restarted speaker relearned the peer's block and converged on its End-of-RIB.
        wait_for(
            "the peer's block relearned",
            T,
            || testd.has_route(self.theirs, self.their_next_hop),
            dump,
        );
        wait_for("initial convergence", T, || testd.converged(), dump);
        std::thread::sleep(Duration::from_millis(500));
        let (samples, missing) = kernel.missing_after_first(kept);
        assert_eq!(
            missing, 0,
            "{kept} missing from the peer's kernel in {missing} of {samples} samples"
        );
        // Enough samples to have watched the whole restart (each is an `ip route` run, slower
        // on a loaded machine; the restart spans seconds).
        assert!(samples > 30, "only {samples} kernel samples");
    }
}
