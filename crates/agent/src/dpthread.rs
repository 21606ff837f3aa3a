//! The dataplane thread: owns the node's netlink socket and brindle-dataplane's reconcilers,
//! applies each new desired state and resyncs periodically. Netlink is synchronous and stays off
//! the tokio workers.
//!
//! Input comes through a [`Mailbox`] (the latest desired state wins; see `channels`). A kernel
//! monitor thread reads the namespace's notifications and asks for a repair only for those that
//! disagree with what the last apply left ([`Expected`]): the echoes of the thread's own writes
//! are recognised and ignored, so a change is reconciled once, not twice. The monitor waits
//! while an apply runs, so it judges every echo against the state that apply produced.
//!
//! Network policy: the calculation's work ([`PolicyWork`]) arrives in the same mailbox. A full
//! state is handed to `PolicyDataplane::resync` (the tables are read back and whatever differs
//! is changed, in one transaction: a restarted agent replaces the previous agent's rules
//! atomically, never leaving a window without them), the deltas to
//! `PolicyDataplane::apply_all` (one transaction). One piece of policy work is in flight at a
//! time ([`PolicyGate`]): the main loop flushes the calculation again only once the thread
//! applied the last, so a burst of changes goes in a few large transactions. An nf_tables monitor thread reports changes to Brindle's tables
//! by anyone else, and the thread puts them back (`PolicyDataplane::check`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use brindle_dataplane::echo::Expected;
use brindle_dataplane::{ApplyOptions, Dataplane, DataplaneConfig, DesiredState};
use brindle_netlink::{Handle, Monitor};
use tokio::sync::watch;

use crate::channels::{Mailbox, PolicyWork};

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
    /// Policy is enforced from the calculation's full state (or policy is off).
    pub policy_ready: bool,
    /// Policy transactions (resyncs and deltas) and the time they took.
    pub policy_applies: u64,
    pub policy_resyncs: u64,
    pub policy_seconds_total: f64,
    pub policy_last_seconds: f64,
    /// Repairs of Brindle's tables after someone else changed them.
    pub policy_repairs: u64,
    /// The last policy error (cleared by the next success).
    pub policy_error: Option<String>,
}

/// Paces the calculation's policy work to the dataplane thread: while a piece of work is in
/// flight (posted, not yet applied), the main loop holds its next flush back, and the thread
/// says when it is done. Whatever changed meanwhile then goes as one delta, one transaction:
/// nf_tables re-validates the whole table per transaction (every chain's jumps), so under a
/// burst the number of transactions, not their size, is what costs, and the deltas never pile
/// up into a read-back resync. A lone change goes at once (nothing is in flight).
#[derive(Debug, Default)]
pub struct PolicyGate {
    busy: AtomicBool,
    done: tokio::sync::Notify,
}

impl PolicyGate {
    /// True when no policy work is in flight; the caller then posts some and marks it.
    pub fn is_free(&self) -> bool {
        !self.busy.load(Ordering::Acquire)
    }

    /// Work was posted to the mailbox.
    pub fn posted(&self) {
        self.busy.store(true, Ordering::Release);
    }

    /// Resolves once the thread applied the work in flight (or at once, if it already did).
    pub async fn done(&self) {
        self.done.notified().await
    }

    fn applied(&self) {
        self.busy.store(false, Ordering::Release);
        self.done.notify_one();
    }
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
    gate: Arc<PolicyGate>,
    resync: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("dataplane".into())
        .spawn(move || run(cfg, &mailbox, report, counters, &gate, resync))
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
    gate: &PolicyGate,
    resync: Duration,
) {
    let mut rep = DpReport::default();
    // Wait for the first desired state, then start the reconcilers with it.
    let mut policy: Option<PolicyWork> = None;
    let mut input = loop {
        let m = mailbox.wait_until(None);
        if m.stop {
            return;
        }
        policy = queue(policy, m.policy);
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
    rep.policy_ready = !dp.policy().config().enabled;
    if let Some(w) = policy.take() {
        apply_policy(&mut dp, w, &mut rep, &report);
        gate.applied();
        release_free_heap();
    }
    match dp.policy().monitor() {
        Ok(mut m) => {
            let (mailbox, echo) = (mailbox.clone(), echo.clone());
            let spawned = std::thread::Builder::new()
                .name("nft-monitor".into())
                .spawn(move || {
                    while !echo.stop.load(Ordering::Relaxed) {
                        if m.wait(Duration::from_secs(1)) {
                            mailbox.nft_changed();
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no nftables monitor thread: repairs wait for the periodic resync");
            }
        }
        Err(e) => tracing::warn!(error = %e, "no nftables monitor: repairs wait for the periodic resync"),
    }
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
    let mut trim = Trim::default();
    loop {
        let m = mailbox.wait_until(Some(trim.due().map_or(next_full, |t| t.min(next_full))));
        if m.stop {
            return;
        }
        if let Some(w) = m.policy {
            apply_policy(&mut dp, w, &mut rep, &report);
            gate.applied();
            trim.wanted();
        }
        trim.run_if_due();
        if m.nft_changed {
            match dp.policy().check(true) {
                Ok(w) if !w.changes.is_empty() => {
                    rep.policy_repairs += 1;
                    tracing::info!(took = ?w.took, "nftables: rules changed behind the agent put back");
                    let _ = report.send(rep.clone());
                }
                Ok(w) => {
                    tracing::debug!(read_back = w.read_back, took = ?w.took, "nftables: change notice checked, nothing to repair")
                }
                Err(e) => tracing::warn!(error = %e, "nftables: repair failed"),
            }
            // The check read the whole tables back (~10 MiB with 1000 policies).
            release_free_heap();
        }
        if m.latest.is_none() && !m.kernel_changed && Instant::now() < next_full {
            continue; // policy work only
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

/// `later` queued after `earlier`.
fn queue(earlier: Option<PolicyWork>, later: Option<PolicyWork>) -> Option<PolicyWork> {
    match (earlier, later) {
        (Some(a), Some(b)) => Some(a.then(b)),
        (a, b) => a.or(b),
    }
}

/// Applies policy work: a full state as one resync transaction, the deltas queued since the
/// last look as one transaction. After a failed transaction the next work is a resync from the
/// state the dataplane mirrors (the kernel is read back and repaired).
fn apply_policy(dp: &mut Dataplane, work: PolicyWork, rep: &mut DpReport, report: &watch::Sender<DpReport>) {
    let mut outcome = |r: Result<brindle_dataplane::firewall::Written, brindle_dataplane::Error>,
                       what: &str| match r {
        Ok(w) => {
            rep.policy_applies += 1;
            rep.policy_last_seconds = w.took.as_secs_f64();
            rep.policy_seconds_total += w.took.as_secs_f64();
            rep.policy_error = None;
            if let Some(refused) = &w.refused {
                tracing::warn!(refused = %refused, "nftables: a transaction was refused; repaired from a read-back");
            }
            tracing::debug!(what, took = ?w.took, "nftables: policy applied");
            true
        }
        Err(e) => {
            tracing::warn!(what, error = %e, "nftables: policy not applied");
            rep.policy_error = Some(format!("{what}: {e}"));
            false
        }
    };
    match work {
        PolicyWork::Resync(state) => {
            rep.policy_resyncs += 1;
            let r = dp.policy().resync(*state);
            outcome(r, "resync");
        }
        PolicyWork::Deltas(mut ds) => {
            ds.retain(|d| !d.is_empty());
            if !ds.is_empty() {
                // Everything queued since the last look, in order, as one transaction.
                let r = dp.policy().apply_all(&ds);
                drop(ds);
                if !outcome(r, "delta") {
                    // The mirror took the deltas; a resync from it repairs what was not written.
                    if let Some(state) = dp.policy().state().cloned() {
                        let r = dp.policy().resync(state);
                        outcome(r, "resync after a failed delta");
                    }
                }
            }
        }
    }
    rep.policy_ready = dp.policy().ready() || !dp.policy().config().enabled;
    let _ = report.send(rep.clone());
}

/// When to give the heap back ([`release_free_heap`]): after policy work, but at most once per
/// [`Trim::EVERY`]. Trimming after every transaction of a burst costs more than the
/// transactions (each one then page-faults its buffers back in: the profile of a 1000-policy
/// burst showed more dataplane time in page faults and `madvise` than in nf_tables); the last
/// work of a burst is still followed by a trim within `EVERY`.
#[derive(Default)]
struct Trim {
    last: Option<Instant>,
    pending: bool,
}

impl Trim {
    const EVERY: Duration = Duration::from_millis(250);

    fn wanted(&mut self) {
        self.pending = true;
    }

    /// When the thread must wake up to trim.
    fn due(&self) -> Option<Instant> {
        if !self.pending {
            return None;
        }
        Some(self.last.map_or_else(Instant::now, |l| l + Self::EVERY))
    }

    fn run_if_due(&mut self) {
        if self.due().is_some_and(|d| d <= Instant::now()) {
            release_free_heap();
            self.last = Some(Instant::now());
            self.pending = false;
        }
    }
}

/// Gives the pages malloc holds free back to the kernel. A resync, a burst of deltas or a
/// check allocates and frees tens of MiB on this thread (the rendered rules, the read-back of
/// the tables, the transaction); glibc keeps what a thread's arena freed for later instead of
/// returning it, which an agent's RSS would show for the rest of its life.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim(3) takes each arena's lock and only releases free memory; it has no
    // preconditions and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_holds_work_in_flight_and_wakes_the_held_flush() {
        let gate = Arc::new(PolicyGate::default());
        assert!(gate.is_free(), "nothing in flight: a change goes at once");
        gate.posted();
        assert!(!gate.is_free(), "work in flight: the next flush waits");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let g = gate.clone();
        let applier = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            g.applied();
        });
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), gate.done())
                .await
                .expect("the held flush is woken when the work is applied");
        });
        applier.join().unwrap();
        assert!(gate.is_free());
    }

    #[test]
    fn the_heap_is_trimmed_at_once_then_at_most_every_interval() {
        let mut t = Trim::default();
        assert_eq!(t.due(), None, "no policy work, no trim");
        t.wanted();
        assert!(
            t.due().is_some_and(|d| d <= Instant::now()),
            "the first trim is due at once"
        );
        t.run_if_due();
        assert_eq!(t.due(), None);
        t.wanted();
        let due = t.due().expect("trim wanted");
        assert!(due > Instant::now(), "a second trim waits for the interval");
        t.run_if_due();
        assert_eq!(t.due(), Some(due), "not run before it is due");
    }
}
