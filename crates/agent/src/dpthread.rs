//! The dataplane thread: owns the node's netlink socket and brindle-dataplane's reconcilers,
//! applies each new desired state (the latest wins when several queue up) and resyncs
//! periodically. Netlink is synchronous and stays off the tokio workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use brindle_dataplane::{ApplyOptions, Dataplane, DataplaneConfig, DesiredState};
use brindle_netlink::Handle;
use tokio::sync::watch;

/// What the dataplane thread is told.
#[derive(Debug, Clone)]
pub enum DpMsg {
    /// A new desired state.
    Desired(Box<DpInput>),
    /// The kernel changed (a netlink notification): re-apply so a route deleted behind the
    /// agent's back comes back at once, not at the next periodic resync.
    KernelChanged,
    /// The agent is shutting down: stop, leaving the kernel as it is.
    Stop,
}

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

/// Starts the thread. It ends on [`DpMsg::Stop`] (or when every sender is gone); `notify` is
/// the sender its kernel monitor uses.
pub fn spawn(
    cfg: DataplaneConfig,
    rx: Receiver<DpMsg>,
    notify: Sender<DpMsg>,
    report: watch::Sender<DpReport>,
    resync: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || run(cfg, rx, notify, report, resync))
        .expect("spawn dataplane thread")
}

/// What the queued messages add up to.
struct Drained {
    /// The latest desired state, if one came.
    input: Option<DpInput>,
    stop: bool,
}

/// Takes every queued message (kernel notifications just mean "apply again").
fn drain(rx: &Receiver<DpMsg>, first: DpMsg) -> Drained {
    let mut d = Drained {
        input: None,
        stop: false,
    };
    let mut take = |m: DpMsg| match m {
        DpMsg::Desired(i) => d.input = Some(*i),
        DpMsg::KernelChanged => {}
        DpMsg::Stop => d.stop = true,
    };
    take(first);
    while let Ok(next) = rx.try_recv() {
        take(next);
    }
    d
}

/// Forwards kernel change notifications of the dataplane's namespace to the thread, until
/// `stop` is set.
fn watch_kernel(mut monitor: brindle_netlink::Monitor, notify: Sender<DpMsg>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if monitor.wait(Duration::from_secs(1)) && notify.send(DpMsg::KernelChanged).is_err() {
            return;
        }
    }
}

fn run(
    cfg: DataplaneConfig,
    rx: Receiver<DpMsg>,
    notify: Sender<DpMsg>,
    report: watch::Sender<DpReport>,
    resync: Duration,
) {
    let mut rep = DpReport::default();
    // Wait for the first desired state, then start the reconcilers with it.
    let mut input = loop {
        let Ok(first) = rx.recv() else { return };
        let d = drain(&rx, first);
        if d.stop {
            return;
        }
        if let Some(i) = d.input {
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
    let stop = Arc::new(AtomicBool::new(false));
    let _stop_monitor = StopOnDrop(stop.clone());
    match dp.monitor() {
        Ok(m) => {
            let stop = stop.clone();
            let spawned = std::thread::Builder::new()
                .name("kernel-monitor".into())
                .spawn(move || watch_kernel(m, notify, stop));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no kernel monitor thread: repairs wait for the periodic resync");
            }
        }
        Err(e) => tracing::warn!(error = %e, "no kernel monitor: repairs wait for the periodic resync"),
    }
    let mut next_full = Instant::now() + resync;
    loop {
        let timeout = next_full.saturating_duration_since(Instant::now());
        let full = match rx.recv_timeout(timeout) {
            Ok(m) => {
                let d = drain(&rx, m);
                if d.stop {
                    return;
                }
                if let Some(i) = d.input {
                    input = i;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if full {
            next_full = Instant::now() + resync;
        }
        let t = Instant::now();
        let r = dp.apply(
            &input.desired,
            ApplyOptions {
                prune: input.prune,
                full,
            },
        );
        for e in &r.errors {
            tracing::warn!(error = %e, "dataplane");
        }
        rep.ipip = r.ipip.map(|p| p.to_string()).or(rep.ipip.take());
        rep.metrics.record(&r, t.elapsed(), dp.status().bpf);
        rep.errors = r.errors;
        record(&mut rep, &input, t.elapsed());
    }
}

/// Sets the flag when dropped (the dataplane thread ending stops its monitor thread).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
