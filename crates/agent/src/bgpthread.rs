//! The BGP thread: a thread of its own with a single-threaded tokio runtime that runs the
//! speaker (listeners, every session, the RIB) and its driver, so a long calculation on the
//! main loop never delays a keepalive and a burst of UPDATEs never delays the calculation.
//!
//! The driver plays BIRD's `configure` and confd. Each new [`DesiredBgp`] (latest wins) is
//! applied to the running speaker in place ([`SpeakerHandle::reconfigure`]): new and removed
//! peers, export pools, the route-reflector cluster id and per-peer options change without
//! touching the sessions they do not concern. Only what a running speaker cannot take (router
//! id, AS, listen address or port: [`SpeakerConfig::fixed_difference`]) restarts it, gracefully
//! when the router stays the same. A start that fails (the port still bound, say) is retried
//! on a timer with backoff, and [`SpeakerState`] says meanwhile that no speaker runs and why,
//! which `/readiness`, `node status` and `/metrics` report. Learned routes go to the main loop
//! through the coalescing [`crate::routeq`] channel.

use std::time::Duration;

use brindle_bgp_speaker::{
    Error as SpeakerError, Originated, PeerConfig, RouteEvent, RouteSubscription, Speaker, SpeakerConfig,
    SpeakerHandle,
};
use tokio::sync::{oneshot, watch};

use crate::bgp::{self, SECRETS_RECHECK, Secrets};
use crate::calc::DesiredBgp;
use crate::error::{Error, Result};
use crate::routeq::{RouteMsg, RouteSender};

/// First wait before a failed start is tried again; it doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(250);
/// Longest wait between start attempts: a speaker that can start again is up within this.
pub const RETRY_MAX: Duration = Duration::from_secs(2);

/// The speaker as the rest of the agent sees it.
#[derive(Clone, Default)]
pub struct SpeakerState {
    /// The running speaker (`None` while none runs).
    pub handle: Option<SpeakerHandle>,
    /// A BGP configuration was received: a speaker should be running.
    pub wanted: bool,
    /// Why no speaker runs while one is wanted: the last start error (retried with
    /// backoff), or a restart in progress.
    pub down_reason: Option<String>,
    /// Starts that failed since the agent started.
    pub start_failures: u64,
    /// Speaker restarts inside this agent (router id, AS or listen address changed).
    pub restarts: u64,
    /// Changes applied to the running speaker in place (settings or peers).
    pub reconfigurations: u64,
}

impl SpeakerState {
    /// Why the speaker is not running although it should be; `None` when all is well (or no
    /// BGP is wanted).
    pub fn down(&self) -> Option<String> {
        (self.wanted && self.handle.is_none())
            .then(|| self.down_reason.clone().unwrap_or_else(|| "starting".into()))
    }
}

/// The running BGP thread.
pub struct BgpThread {
    thread: std::thread::JoinHandle<()>,
    done: oneshot::Receiver<()>,
}

/// What the driver needs besides its channels.
pub struct DriverConfig {
    /// `BRINDLE_BGP_PORT`, over BGPConfiguration's `listenPort`.
    pub port_override: Option<u16>,
    /// The kernel holds what an earlier agent programmed: the first start is a graceful
    /// restart (RFC 4724, calico-node's `bird -R`).
    pub restarting: bool,
    pub secrets: Secrets,
}

/// Starts the BGP thread. It runs until `desired` closes, then closes every session without a
/// NOTIFICATION (a planned restart, as `birdc graceful restart`): peers keep this node's routes
/// as stale for the restart time while the kernel keeps forwarding, and the next agent
/// re-announces them. Sockets are created in the calling process's network namespace.
pub fn spawn(
    desired: watch::Receiver<Option<DesiredBgp>>,
    cfg: DriverConfig,
    state: watch::Sender<SpeakerState>,
    routes: RouteSender,
) -> Result<BgpThread> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("BGP thread runtime", e))?;
    let (done_tx, done) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("brindle-bgp".into())
        .spawn(move || {
            let driver = Driver {
                cfg,
                state,
                routes,
                running: None,
                retry_delay: RETRY_FIRST,
                retry_at: None,
                failing: 0,
            };
            rt.block_on(drive(desired, driver));
            // Whatever the speaker still held closes with the runtime.
            drop(rt);
            let _ = done_tx.send(());
        })
        .map_err(|e| Error::io("BGP thread", e))?;
    Ok(BgpThread { thread, done })
}

impl BgpThread {
    /// Waits up to `timeout` for the thread to end (after `desired` closed).
    pub async fn join(self, timeout: Duration) {
        match tokio::time::timeout(timeout, self.done).await {
            Ok(_) => {
                let _ = self.thread.join();
            }
            Err(_) => tracing::warn!("the BGP thread did not stop within {timeout:?}"),
        }
    }
}

struct Running {
    handle: SpeakerHandle,
    /// As computed from the desired state (`restarting` not set), for comparisons.
    cfg: SpeakerConfig,
    peers: Vec<PeerConfig>,
    forwarder: tokio::task::JoinHandle<()>,
}

struct Driver {
    cfg: DriverConfig,
    state: watch::Sender<SpeakerState>,
    routes: RouteSender,
    running: Option<Running>,
    retry_delay: Duration,
    retry_at: Option<tokio::time::Instant>,
    /// Failed starts since the last successful one.
    failing: u64,
}

async fn drive(mut desired: watch::Receiver<Option<DesiredBgp>>, mut d: Driver) {
    let mut recheck = tokio::time::interval(SECRETS_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let retry_at = d.retry_at;
        tokio::select! {
            r = desired.changed() => if r.is_err() { break },
            _ = recheck.tick() => {
                // A password file can appear or change without any datastore change (confd
                // watches its Secrets): read them again; unchanged peers are not disturbed.
                let with_password = desired
                    .borrow()
                    .as_ref()
                    .is_some_and(|d| d.peers.iter().any(|p| p.password.is_some()));
                if !with_password {
                    continue;
                }
            }
            _ = sleep_until(retry_at), if retry_at.is_some() => d.retry_at = None,
        }
        let Some(want) = desired.borrow_and_update().clone() else {
            continue;
        };
        d.apply(&want).await;
    }
    if let Some(r) = d.running.take() {
        r.forwarder.abort();
        let _ = r.handle.shutdown_graceful().await;
        tracing::info!("BGP sessions closed for a graceful restart (peers keep our routes)");
    }
    d.state.send_modify(|s| {
        s.handle = None;
        s.wanted = false;
    });
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn apply(&mut self, want: &DesiredBgp) {
        self.state
            .send_if_modified(|s| !std::mem::replace(&mut s.wanted, true));
        let port = self
            .cfg
            .port_override
            .or(want.listen_port)
            .unwrap_or(brindle_bgp_speaker::BGP_PORT);
        let cfg = bgp::speaker_config(want, port);
        // A peer whose node sets no listenPort listens on the standard port, whatever ours is.
        let peer_port = self.cfg.port_override.unwrap_or(brindle_bgp_speaker::BGP_PORT);
        let peers = bgp::peer_configs(want, peer_port, &self.cfg.secrets);
        let originate = bgp::originated(want);
        if let Some(r) = self.running.as_mut() {
            match in_place(r, &self.state, &cfg, &peers, &originate).await {
                InPlace::Done => return,
                InPlace::Restart { what, cease } => self.stop(what, cease).await,
                InPlace::Stopped => {
                    tracing::error!("BGP speaker stopped by itself: starting it again");
                    if let Some(r) = self.running.take() {
                        r.forwarder.abort();
                    }
                }
            }
        }
        self.start(cfg, peers, originate).await;
    }

    /// Stops the running speaker for a restart. Another router id or AS is another router:
    /// Cease, peers forget its routes. Otherwise (listen address or port) a graceful restart,
    /// so peers keep forwarding to this node while it comes back. Returns once its listeners
    /// are closed.
    async fn stop(&mut self, what: &str, cease: bool) {
        let Some(r) = self.running.take() else { return };
        self.state.send_modify(|s| {
            s.handle = None;
            s.down_reason = Some(format!("restarting: the {what} changed"));
            s.restarts += 1;
        });
        r.forwarder.abort();
        if cease {
            tracing::info!(
                changed = what,
                "BGP identity changed: restarting the speaker (Cease)"
            );
            let _ = r.handle.shutdown().await;
        } else {
            tracing::info!(
                changed = what,
                "BGP settings changed: restarting the speaker gracefully"
            );
            let _ = r.handle.shutdown_graceful().await;
        }
    }

    async fn start(&mut self, cfg: SpeakerConfig, peers: Vec<PeerConfig>, originate: Vec<Originated>) {
        let restarting = self.cfg.restarting;
        let started = Speaker::start(SpeakerConfig {
            restarting,
            ..cfg.clone()
        });
        let h = match started {
            Ok(h) => h,
            Err(e) => {
                let delay = self.retry_delay;
                self.retry_delay = (delay * 2).min(RETRY_MAX);
                self.retry_at = Some(tokio::time::Instant::now() + delay);
                self.failing += 1;
                // The first few, then about once a minute: status and metrics say the rest.
                if self.failing <= 3 || self.failing.is_multiple_of(30) {
                    tracing::error!(error = %e, attempt = self.failing,
                        retry_in_ms = delay.as_millis() as u64, "BGP speaker cannot start; retrying");
                }
                self.state.send_modify(|s| {
                    s.handle = None;
                    s.down_reason = Some(e.to_string());
                    s.start_failures += 1;
                });
                return;
            }
        };
        tracing::info!(router_id = %cfg.router_id, asn = cfg.local_as, listen = ?cfg.listen, restarting,
            cluster_id = ?cfg.cluster_id, "BGP speaker started");
        // Any later start inside this agent is a restart over a dataplane that kept forwarding.
        self.cfg.restarting = true;
        if self.failing > 0 {
            tracing::info!(
                failed_attempts = self.failing,
                "BGP speaker started after failed attempts"
            );
        }
        self.failing = 0;
        self.retry_delay = RETRY_FIRST;
        self.retry_at = None;
        let _ = self.routes.send(RouteMsg::Reset);
        let forwarder = match h.subscribe_routes().await {
            Ok(sub) => tokio::spawn(forward(sub, h.initial_convergence(), self.routes.clone())),
            Err(e) => {
                tracing::error!(error = %e, "BGP route subscription");
                tokio::spawn(async {})
            }
        };
        if let Err(e) = h.set_peers(peers.clone()).await {
            tracing::error!(error = %e, "BGP peers refused");
        }
        if let Err(e) = h.set_originated_routes(originate).await {
            tracing::error!(error = %e, "BGP originate");
        }
        self.state.send_modify(|s| {
            s.handle = Some(h.clone());
            s.down_reason = None;
        });
        self.running = Some(Running {
            handle: h,
            cfg,
            peers,
            forwarder,
        });
    }
}

enum InPlace {
    Done,
    /// What changed needs a new speaker; `cease`: another router (id or AS).
    Restart {
        what: &'static str,
        cease: bool,
    },
    /// The speaker is gone.
    Stopped,
}

/// Applies a desired state to the running speaker if it can take it live.
async fn in_place(
    r: &mut Running,
    state: &watch::Sender<SpeakerState>,
    cfg: &SpeakerConfig,
    peers: &[PeerConfig],
    originate: &[Originated],
) -> InPlace {
    if let Some(what) = r.cfg.fixed_difference(cfg) {
        let cease = (r.cfg.router_id, r.cfg.local_as) != (cfg.router_id, cfg.local_as);
        return InPlace::Restart { what, cease };
    }
    if r.cfg != *cfg || r.peers != peers {
        match r.handle.reconfigure(cfg.clone(), peers.to_vec()).await {
            Ok(()) => {
                r.cfg = cfg.clone();
                r.peers = peers.to_vec();
                state.send_modify(|s| s.reconfigurations += 1);
            }
            Err(SpeakerError::Stopped) => return InPlace::Stopped,
            Err(e) => tracing::error!(error = %e, "BGP configuration refused: the last one stays"),
        }
    }
    match r.handle.set_originated_routes(originate.to_vec()).await {
        Err(SpeakerError::Stopped) => InPlace::Stopped,
        Err(e) => {
            tracing::error!(error = %e, "BGP originate");
            InPlace::Done
        }
        Ok(()) => InPlace::Done,
    }
}

/// Passes the speaker's best-route events (both families) on to the main loop, and its
/// initial convergence once every event of the converged table has gone before it.
async fn forward(sub: RouteSubscription, mut converged: watch::Receiver<bool>, tx: RouteSender) {
    let msg = |ev: RouteEvent| match ev {
        RouteEvent::Add(r) | RouteEvent::Replace(r) => Some(RouteMsg::Add(r.prefix, r.next_hop)),
        RouteEvent::Withdraw(p) => Some(RouteMsg::Withdraw(p)),
    };
    for r in sub.snapshot {
        if tx.send(RouteMsg::Add(r.prefix, r.next_hop)).is_err() {
            return;
        }
    }
    let mut events = sub.events;
    let mut told = false;
    loop {
        if !told && *converged.borrow_and_update() {
            // The speaker queued every event of the converged table before raising the flag:
            // pass those on first, so the main loop has the whole table when it may prune.
            while let Ok(ev) = events.try_recv() {
                if let Some(m) = msg(ev)
                    && tx.send(m).is_err()
                {
                    return;
                }
            }
            if tx.send(RouteMsg::Converged).is_err() {
                return;
            }
            told = true;
        }
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { return };
                if let Some(m) = msg(ev)
                    && tx.send(m).is_err()
                {
                    return;
                }
            }
            r = converged.changed(), if !told => {
                if r.is_err() {
                    // The speaker is gone; its events channel closes next.
                    told = true;
                }
            }
        }
    }
}
