//! The dataplane thread: owns the node's netlink socket and brindle-dataplane's reconcilers,
//! applies each new desired state and resyncs periodically. Netlink is synchronous and stays off
//! the tokio workers.
//!
//! Input comes through a [`Mailbox`] (the latest desired state wins; see `channels`). A kernel
//! monitor thread reads the namespace's notifications and asks for a repair only for those that
//! disagree with what the last apply left ([`Expected`]): the echoes of the thread's own writes
//! are recognised and ignored, so a change is reconciled once, not twice. The monitor waits
//! while an apply runs, so it judges every echo against the state that apply produced.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use brindle_dataplane::echo::Expected;
use brindle_dataplane::{ApplyOptions, Dataplane, DataplaneConfig, DesiredState};
use brindle_netlink::{Handle, Monitor};
use tokio::sync::watch;

use crate::channels::Mailbox;

/// A new desired state, and whether stale routes may be pruned yet (not while a restarted agent
/// is still re-learning its routes, so nothing working is flushed).
#[derive(Debug, Clone)]
pub struct DpInput {
    pub desired: DesiredState,
    pub prune: bool,
}

/// What the thread reports after each apply.
#[derive(Debug, Clone, Default)]
pub struct DpReport {
    pub started: bool,
    pub ipip: Option<String>,
    pub routes: usize,
    pub workloads: usize,
    pub errors: Vec<String>,
    pub applies: u64,
    pub last_apply: Duration,
    pub apply_seconds_total: f64,
    /// A fatal startup error (the kernel cannot do what the pools demand).
    pub fatal: Option<String>,
    /// Counters for `/metrics`.
    pub metrics: crate::metrics::DataplaneMetrics,
}

/// Kernel notifications the monitor judged, live (for `/metrics`).
#[derive(Debug, Default)]
pub struct KernelCounters {
    /// Echoes of the dataplane's own writes (ignored).
    pub echoes: AtomicU64,
    /// Changes made by someone else (repaired).
    pub repairs: AtomicU64,
}

/// Starts the thread. It ends on [`Mailbox::stop`].
pub fn spawn(
    cfg: DataplaneConfig,
    mailbox: Arc<Mailbox<DpInput>>,
    report: watch::Sender<DpReport>,
    counters: Arc<KernelCounters>,
    resync: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || run(cfg, &mailbox, report, counters, resync))
        .expect("spawn dataplane thread")
}

/// Shared by the dataplane thread and its kernel monitor.
struct Echo {
    state: Mutex<EchoState>,
    applied: Condvar,
    counters: Arc<KernelCounters>,
    stop: AtomicBool,
}

#[derive(Default)]
struct EchoState {
    applying: bool,
    expected: Arc<Expected>,
}

impl Echo {
    fn begin(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).applying = true;
    }

    fn end(&self, expected: Arc<Expected>) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.applying = false;
        s.expected = expected;
        self.applied.notify_all();
    }

    /// The last apply's expectations, once no apply is running.
    fn expected(&self) -> Arc<Expected> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.applying && !self.stop.load(Ordering::Relaxed) {
            s = self
                .applied
                .wait_timeout(s, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        s.expected.clone()
    }
}

/// Reads the namespace's notifications until told to stop; asks for a repair when one disagrees
/// with the last apply.
fn watch_kernel(mut monitor: Monitor, mailbox: Arc<Mailbox<DpInput>>, echo: Arc<Echo>) {
    let mut changes = Vec::new();
    while !echo.stop.load(Ordering::Relaxed) {
        changes.clear();
        if !monitor.changes(Duration::from_secs(1), &mut changes) {
            continue;
        }
        let expected = echo.expected();
        let repairs = changes.iter().filter(|c| expected.needs_repair(c)).count();
        let c = &echo.counters;
        c.echoes
            .fetch_add((changes.len() - repairs) as u64, Ordering::Relaxed);
        if repairs > 0 {
            c.repairs.fetch_add(repairs as u64, Ordering::Relaxed);
            if let Some(c) = changes.iter().find(|c| expected.needs_repair(c)) {
                tracing::debug!(change = ?c, "kernel changed behind the agent: repairing");
            }
            mailbox.kernel_changed();
        }
    }
}

fn run(
    cfg: DataplaneConfig,
    mailbox: &Arc<Mailbox<DpInput>>,
    report: watch::Sender<DpReport>,
    counters: Arc<KernelCounters>,
    resync: Duration,
) {
    let mut rep = DpReport::default();
    // Wait for the first desired state, then start the reconcilers with it.
    let mut input = loop {
        let m = mailbox.wait_until(None);
        if m.stop {
            return;
        }
        if let Some(i) = m.latest {
            break i;
        }
    };
    let handle = match Handle::new() {
        Ok(h) => h,
        Err(e) => {
            rep.fatal = Some(format!("netlink socket: {e}"));
            let _ = report.send(rep);
            return;
        }
    };
    let echo = Arc::new(Echo {
        state: Mutex::default(),
        applied: Condvar::new(),
        counters,
        stop: AtomicBool::new(false),
    });
    let _stop_monitor = StopOnDrop(echo.clone());
    echo.begin();
    let t0 = Instant::now();
    let mut dp = match Dataplane::start(handle, cfg, &input.desired) {
        Ok((dp, r)) => {
            rep.metrics.record(&r, t0.elapsed(), dp.status().bpf);
            rep.started = true;
            rep.ipip = r.ipip.map(|p| p.to_string());
            rep.errors = r.errors;
            dp
        }
        Err(e) => {
            tracing::error!(error = %e, "dataplane cannot start");
            rep.fatal = Some(e.to_string());
            let _ = report.send(rep);
            return;
        }
    };
    echo.end(dp.expected());
    let record = |rep: &mut DpReport, input: &DpInput, took: Duration| {
        rep.applies += 1;
        rep.last_apply = took;
        rep.apply_seconds_total += took.as_secs_f64();
        rep.routes = input.desired.local_blocks.len()
            + input.desired.remote_blocks.len()
            + input.desired.workloads.len();
        rep.workloads = input.desired.workloads.len();
        let _ = report.send(rep.clone());
    };
    record(&mut rep, &input, t0.elapsed());
    match dp.monitor() {
        Ok(m) => {
            let (mailbox, echo) = (mailbox.clone(), echo.clone());
            let spawned = std::thread::Builder::new()
                .name("kernel-monitor".into())
                .spawn(move || watch_kernel(m, mailbox, echo));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no kernel monitor thread: repairs wait for the periodic resync");
            }
        }
        Err(e) => tracing::warn!(error = %e, "no kernel monitor: repairs wait for the periodic resync"),
    }
    let mut next_full = Instant::now() + resync;
    loop {
        let m = mailbox.wait_until(Some(next_full));
        if m.stop {
            return;
        }
        let full = m.latest.is_none() && !m.kernel_changed;
        if let Some(i) = m.latest {
            input = i;
        }
        if full {
            next_full = Instant::now() + resync;
        }
        echo.begin();
        let t = Instant::now();
        let r = dp.apply(
            &input.desired,
            ApplyOptions {
                prune: input.prune,
                full,
            },
        );
        echo.end(dp.expected());
        for e in &r.errors {
            tracing::warn!(error = %e, "dataplane");
        }
        rep.ipip = r.ipip.map(|p| p.to_string()).or(rep.ipip.take());
        rep.metrics.record(&r, t.elapsed(), dp.status().bpf);
        rep.errors = r.errors;
        record(&mut rep, &input, t.elapsed());
    }
}

/// Stops the kernel monitor when dropped (the dataplane thread ending).
struct StopOnDrop(Arc<Echo>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        self.0.applied.notify_all();
    }
}
