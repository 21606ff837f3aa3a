//! The dataplane thread: owns the node's netlink socket and brindle-dataplane's reconcilers,
//! applies each new desired state (the latest wins when several queue up) and resyncs
//! periodically. Netlink is synchronous and stays off the tokio workers.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use brindle_dataplane::{ApplyOptions, Dataplane, DataplaneConfig, DesiredState};
use brindle_netlink::Handle;
use tokio::sync::watch;

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
}

/// Starts the thread. It ends when the sender is dropped.
pub fn spawn(
    cfg: DataplaneConfig,
    rx: Receiver<DpInput>,
    report: watch::Sender<DpReport>,
    resync: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || run(cfg, rx, report, resync))
        .expect("spawn dataplane thread")
}

fn latest(rx: &Receiver<DpInput>, first: DpInput) -> DpInput {
    let mut cur = first;
    while let Ok(next) = rx.try_recv() {
        cur = next;
    }
    cur
}

fn run(cfg: DataplaneConfig, rx: Receiver<DpInput>, report: watch::Sender<DpReport>, resync: Duration) {
    let mut rep = DpReport::default();
    // Wait for the first desired state, then start the reconcilers with it.
    let Ok(first) = rx.recv() else { return };
    let mut input = latest(&rx, first);
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
    let mut next_full = Instant::now() + resync;
    loop {
        let timeout = next_full.saturating_duration_since(Instant::now());
        let full = match rx.recv_timeout(timeout) {
            Ok(i) => {
                input = latest(&rx, i);
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
        rep.errors = r.errors;
        record(&mut rep, &input, t.elapsed());
    }
}
