//! `brindle node run`: startup, then the main loop — syncer → calculation → dataplane thread
//! (and the BGP speaker), with the control socket and the health/metrics server answering from
//! the loop's state. A datastore that cannot be reached does not stop the agent: startup is
//! retried with backoff on a thread of its own while the loop answers (not ready, saying why) and
//! the kernel keeps the routes it has; the syncer and the dataplane start once it succeeds. The
//! channels are bounded and coalesce (`channels`); docs/ARCHITECTURE.md draws them. SIGTERM/SIGINT shut down cleanly: the kernel state is left in place (the
//! next agent adopts it), BGP sessions close for a graceful restart (RFC 4724: peers keep our
//! routes meanwhile) and the control socket is removed. An agent that starts over kernel state
//! an earlier one left (after SIGTERM or SIGKILL) is a restarting speaker and removes nothing
//! it has not relearned before BGP's initial convergence.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brindle_dataplane::{DataplaneConfig, DesiredState};
use brindle_datastore::Datastore;
use brindle_model::resources::{FelixConfigurationSpec, IPPool, Node, WorkloadEndpoint};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::sync::{mpsc, watch};

use crate::bgp::{self, RouteMsg};
use crate::bgpthread::{self, SpeakerState};
use crate::cache::Cache;
use crate::calc::{self, CalcSettings};
use crate::channels::{Mailbox, SyncBatch, SyncQueue};
use crate::config::{AgentConfig, Backend};
use crate::dpthread::{self, DpInput, DpReport};
use crate::error::{Error, Result};
use crate::metrics::Counters;
use crate::policy::{self, PolicyFeed};
use crate::routeq;
use crate::server::{self, CtlGuard, Query};
use crate::startup::{self, DatastoreChoice, Progress, Ready};
use crate::syncer;
use brindle_ctl::status::{AgentStatus, BgpStatus, DataplaneStatus, unix_now};

/// Runs the agent until SIGTERM/SIGINT. Call it on the main thread of a process in the node's
/// network namespace. The datastore is opened from `ds_cfg` (a [`brindle_datastore::DatastoreConfig`], or a
/// [`DatastoreChoice`] that also says where its settings came from, for the errors); while it
/// cannot be, or startup cannot read or write it, the agent runs not ready and retries (see the
/// module docs).
pub fn run(cfg: AgentConfig, ds_cfg: impl Into<DatastoreChoice>) -> Result<()> {
    let ds_cfg = ds_cfg.into();
    crate::limits::fix_mmap_threshold();
    match crate::limits::raise_nofile_limit() {
        Ok((soft, hard)) => tracing::info!(soft, hard, "open files limit"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    policy::fail_closed_at_start(&cfg);
    let name = startup::node_name(&cfg)?;
    // The first attempt on this thread: a healthy start looks as it always did, and an error
    // that retrying cannot fix (an address another node has) stops the agent before it binds
    // anything.
    let first = match startup::attempt(&cfg, &ds_cfg, &mut None, &name) {
        Ok(ready) => Ok(ready),
        Err(Error::Datastore(e)) => {
            tracing::warn!(error = %e, "startup: datastore unavailable; running not ready and retrying");
            Err(e)
        }
        Err(e) => return Err(e),
    };
    let kept = kept_dataplane()?;
    if kept {
        tracing::info!("kernel routes of an earlier agent found: graceful restart");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    rt.block_on(main_loop(cfg, ds_cfg, name, first, kept))
}

/// True when the main table holds routes an earlier agent programmed (`proto bird`): this start
/// is a restart over a dataplane that kept forwarding.
fn kept_dataplane() -> Result<bool> {
    let mut h = brindle_netlink::Handle::new()?;
    Ok(h.routes(Some(brindle_netlink::TABLE_MAIN))?
        .iter()
        .any(|r| r.protocol == brindle_netlink::proto::BIRD))
}

/// Starts the IPAM garbage collector (kube-controllers' IPAM controller) on its own thread:
/// every agent takes part, one at a time collects, under a lease in the datastore
/// (`brindle_ipam::gc`). `BRINDLE_IPAM_GC=false` keeps this agent out of it.
fn start_ipam_gc(ds: &Arc<dyn Datastore>, node: &str) -> Option<brindle_ipam::gc::GcHandle> {
    if matches!(
        std::env::var("BRINDLE_IPAM_GC").as_deref(),
        Ok("false" | "off" | "0" | "disabled")
    ) {
        tracing::info!("IPAM garbage collector disabled by BRINDLE_IPAM_GC");
        return None;
    }
    let started = brindle_ipam::gc::GcSettings::for_node(node)
        .and_then(|s| brindle_ipam::gc::spawn(ds.clone(), s).map_err(|e| e.to_string()));
    match started {
        Ok(h) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "cannot start the IPAM garbage collector");
            None
        }
    }
}

struct Loop {
    cfg: AgentConfig,
    /// `None` until startup is done.
    ds: Option<Arc<dyn Datastore>>,
    node: String,
    /// Why the datastore cannot be used (startup retrying, or the syncer cannot list).
    datastore_error: Option<String>,
    started_at: i64,
    settings: CalcSettings,
    cache: Cache,
    in_sync: bool,
    /// BGP's best routes, both families: prefix → next hop.
    learned: BTreeMap<IpNet, IpAddr>,
    sync: Arc<SyncQueue>,
    dp_tx: Arc<Mailbox<DpInput>>,
    bgp_tx: watch::Sender<Option<calc::DesiredBgp>>,
    speaker: watch::Receiver<SpeakerState>,
    boot: Instant,
    /// The prune flag last sent to the dataplane thread.
    pruning: bool,
    /// The calculation wants a BGP speaker (so pruning waits for its initial convergence).
    bgp_wanted: bool,
    /// The running speaker reached initial convergence (see [`RouteMsg::Converged`]).
    bgp_converged: bool,
    dp_report: watch::Receiver<DpReport>,
    kernel: Arc<dpthread::KernelCounters>,
    last_dp: Option<DesiredState>,
    last_bgp: Option<calc::DesiredBgp>,
    mtu_written: Option<u32>,
    pools_seen: Vec<String>,
    counters: Counters,
    ipv4: Option<Ipv4Net>,
    ipv6: Option<Ipv6Net>,
    /// Network policy's calculation ([`crate::policy`]).
    policy: PolicyFeed,
    /// A full listing came since the calculation was last rebuilt.
    policy_rebuild: bool,
    /// Policy work in flight to the dataplane thread (see [`dpthread::PolicyGate`]).
    gate: Arc<dpthread::PolicyGate>,
    /// A flush was held back while work was in flight: due when the gate opens.
    policy_held: bool,
    /// Something the route calculation reads changed since it last ran (see
    /// [`routes_read`]): a batch of policy objects alone does not recompute the routes.
    routes_dirty: bool,
    /// The IPAM garbage collector, started with the datastore.
    ipam_gc: Option<brindle_ipam::gc::GcHandle>,
}

/// Receives from an optional channel; pends forever without one.
async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn main_loop(
    cfg: AgentConfig,
    ds_cfg: DatastoreChoice,
    node: String,
    first: std::result::Result<Ready, String>,
    kept: bool,
) -> Result<()> {
    let ctl = server::bind_ctl(&cfg.ctl_socket)?;
    let _ctl_guard = CtlGuard(cfg.ctl_socket.clone());
    let (cni_reports, cni_path) = server::bind_cni_reports(&cfg.ctl_socket)?;
    let _cni_guard = CtlGuard(cni_path);
    let mut report_buf = [0u8; 256];
    let (query_tx, mut query_rx) = mpsc::channel::<Query>(64);
    let ctl_task = tokio::spawn(server::serve_ctl(ctl, query_tx.clone()));
    let mut http_tasks = Vec::new();
    for (l, routes) in crate::http::bind(cfg.felix.health, cfg.felix.metrics).await? {
        http_tasks.push(tokio::spawn(crate::http::serve(
            l,
            routes,
            query_tx.clone(),
            crate::http::Limits::default(),
        )));
    }
    drop(query_tx);

    let sync = Arc::new(SyncQueue::default());
    let dp_tx = Arc::new(Mailbox::default());
    let (rep_tx, dp_report) = watch::channel(DpReport::default());
    let kernel = Arc::new(dpthread::KernelCounters::default());
    let gate = Arc::new(dpthread::PolicyGate::default());
    let resync = Duration::from_secs(cfg.felix.route_refresh_secs.unwrap_or(90).max(1));
    let dp_thread = dpthread::spawn(
        DataplaneConfig {
            iface_prefixes: cfg.felix.interface_prefixes.clone(),
            policy: brindle_dataplane::PolicyConfig {
                enabled: cfg.felix.policy_enabled,
                ipv6: policy::ipv6_enabled(&cfg),
                ..Default::default()
            },
        },
        dp_tx.clone(),
        rep_tx,
        kernel.clone(),
        gate.clone(),
        resync,
    );
    let policy_gate = gate.clone();

    // The speaker runs on a thread of its own (bgpthread); routes come back coalesced.
    let (bgp_tx, bgp_rx) = watch::channel(None);
    let (state_tx, speaker) = watch::channel(SpeakerState::default());
    let (route_tx, mut route_rx) = routeq::channel();
    let bgp_thread = bgpthread::spawn(
        bgp_rx,
        bgpthread::DriverConfig {
            port_override: cfg.bgp_port,
            restarting: kept,
            secrets: bgp::Secrets::new(cfg.secrets_dir.clone()),
        },
        state_tx,
        route_tx,
    )?;
    let routes_from_datastore = cfg.felix.program_cluster_routes.unwrap_or(true);
    let settings = CalcSettings {
        backend: cfg.backend,
        host_mtu: 1500,
        ipip_mtu: cfg.felix.ipip_mtu,
        vxlan_mtu: cfg.felix.vxlan_mtu,
        vxlan_mtu_v6: cfg.felix.vxlan_mtu_v6,
        vxlan_vni: cfg.felix.vxlan_vni,
        vxlan_port: cfg.felix.vxlan_port,
        routes_from_datastore,
        router_id: cfg.router_id.clone(),
    };
    let policy = PolicyFeed::new(&node, policy::ipv6_enabled(&cfg));
    let mut lp = Loop {
        started_at: unix_now(),
        cfg,
        ds: None,
        node,
        datastore_error: None,
        settings,
        cache: Cache::default(),
        in_sync: false,
        learned: BTreeMap::new(),
        sync: sync.clone(),
        dp_tx,
        bgp_tx,
        speaker,
        boot: Instant::now(),
        pruning: false,
        bgp_wanted: false,
        bgp_converged: false,
        dp_report,
        kernel,
        last_dp: None,
        last_bgp: None,
        mtu_written: None,
        pools_seen: Vec::new(),
        counters: Counters::default(),
        ipv4: None,
        ipv6: None,
        policy,
        policy_rebuild: false,
        gate,
        policy_held: false,
        routes_dirty: true,
        ipam_gc: None,
    };
    let mut syncer = None;
    let mut startup_rx = None;
    let mut startup_thread = None;
    match first {
        Ok(ready) => syncer = Some(lp.start(ready)),
        Err(e) => {
            lp.datastore_error = Some(e);
            let (tx, rx) = mpsc::channel(4);
            startup_thread = Some(startup::spawn_retries(
                lp.cfg.clone(),
                ds_cfg,
                lp.node.clone(),
                tx,
            ));
            startup_rx = Some(rx);
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::io("SIGTERM handler", e))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::io("SIGINT handler", e))?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut outcome = Ok(());
    loop {
        tokio::select! {
            batch = sync.next() => {
                lp.on_sync(batch);
                lp.recompute();
            }
            p = recv_opt(&mut startup_rx) => match p {
                Some(Progress::Retrying(e)) => lp.datastore_error = Some(e),
                Some(Progress::Done(done)) => {
                    startup_rx = None;
                    match *done {
                        Ok(ready) => syncer = Some(lp.start(ready)),
                        Err(e) => {
                            tracing::error!(error = %e, "startup failed");
                            outcome = Err(e);
                            break;
                        }
                    }
                }
                None => startup_rx = None,
            },
            batch = route_rx.recv() => {
                if let Some(batch) = batch {
                    for m in batch {
                        lp.on_route(m);
                    }
                    lp.recompute();
                }
            }
            q = query_rx.recv() => {
                if let Some(q) = q {
                    lp.on_query(q);
                }
            }
            r = cni_reports.recv(&mut report_buf) => {
                if let Ok(n) = r
                    && let Some(rep) = brindle_ctl::report::Report::decode(&report_buf[..n])
                {
                    lp.counters.cni.observe(&rep);
                }
            }
            _ = gate_done(&policy_gate, lp.policy_held) => {
                lp.policy_held = false;
                lp.push_policy();
            }
            _ = tick.tick() => lp.on_tick(),
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
        }
    }
    ctl_task.abort();
    for t in http_tasks {
        t.abort();
    }
    // Closing the desired-BGP channel makes the driver close every session for a graceful
    // restart and stop.
    let (bgp_closed, _) = watch::channel(None);
    drop(std::mem::replace(&mut lp.bgp_tx, bgp_closed));
    bgp_thread.join(Duration::from_secs(5)).await;
    // Stop the threads; the kernel keeps its routes for the next agent.
    lp.dp_tx.stop();
    sync.close();
    drop(startup_rx);
    let ipam_gc = lp.ipam_gc.take();
    drop(lp);
    let _ = dp_thread.join();
    if let Some(t) = syncer {
        let _ = t.join();
    }
    if let Some(gc) = ipam_gc {
        gc.stop();
    }
    // The startup thread, if still retrying, ends at its next check of the closed channel;
    // it is not waited for (an attempt may block for the datastore's timeout).
    drop(startup_thread);
    match &outcome {
        Ok(()) => tracing::info!("stopped; kernel routes left in place"),
        Err(_) => tracing::info!("stopped after a failed startup; kernel routes left in place"),
    }
    outcome
}

impl Loop {
    /// Startup is done: the node's facts, then the syncer.
    fn start(&mut self, ready: Ready) -> std::thread::JoinHandle<()> {
        let s = ready.started;
        tracing::info!(node = %s.node, ipv4 = ?s.ipv4, ipv6 = ?s.ipv6, ipip_tunnel = ?s.ipip_tunnel,
            vxlan_tunnel = ?s.vxlan_tunnel, vxlan_v6_tunnel = ?s.vxlan_v6_tunnel, "startup complete");
        self.settings.host_mtu = ready.host_mtu;
        self.ipv4 = s.ipv4;
        self.ipv6 = s.ipv6;
        // bird-ready's clock: the nodename file's mtime (written last by startup).
        self.started_at = std::fs::metadata(self.cfg.nodename_file())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or_else(unix_now);
        self.datastore_error = None;
        self.counters.sync_state = crate::metrics::SyncState::ResyncInProgress;
        self.ds = Some(ready.ds.clone());
        if self.ipam_gc.is_none() {
            self.ipam_gc = start_ipam_gc(&ready.ds, &s.node);
            self.counters.ipam_gc = self.ipam_gc.as_ref().map(|g| g.metrics.clone());
        }
        syncer::spawn(ready.ds, self.sync.clone())
    }

    /// Applies what the syncer queued (coalesced per key) to the cache.
    fn on_sync(&mut self, batch: SyncBatch) {
        self.counters.datastore_updates += batch.events;
        if let Some(items) = batch.snapshot {
            self.counters.resyncs += 1;
            self.counters.sync_state = crate::metrics::SyncState::InSync;
            self.cache.clear();
            for (k, v) in items {
                self.cache.apply(&k, Some(&v));
            }
            self.in_sync = true;
            self.policy_rebuild = true;
            self.routes_dirty = true;
        }
        for (k, v) in batch.updates {
            if let Some(key) = self.cache.apply(&k, v.as_deref()) {
                self.routes_dirty |= routes_read(&key);
                if !self.policy_rebuild {
                    self.policy.changed(&self.cache, &key);
                }
            }
        }
        match batch.unavailable {
            Some(Some(e)) => {
                tracing::warn!(error = %e, "datastore unavailable");
                self.counters.sync_state = crate::metrics::SyncState::WaitForDatastore;
                self.datastore_error = Some(e);
            }
            Some(None) => self.datastore_error = None,
            None => {}
        }
    }

    /// The policy calculation's news for the dataplane thread: after a full listing the whole
    /// state (the calculation rebuilt from the cache), otherwise the delta since the last flush.
    fn push_policy(&mut self) {
        if !self.in_sync {
            return;
        }
        if !self.gate.is_free() {
            // The calculation keeps what changed; it goes as one delta once the work in
            // flight is applied.
            self.policy_held = true;
            return;
        }
        let settings = policy::settings(&self.cfg.felix, &self.cache, &self.node);
        if std::mem::take(&mut self.policy_rebuild) {
            let t = Instant::now();
            self.policy.rebuild(&self.cache, settings);
            let _ = self.policy.flush();
            self.gate.posted();
            self.dp_tx.policy_resync(self.policy.state());
            tracing::info!(took = ?t.elapsed(), "policy calculation rebuilt from a full listing");
        } else {
            self.policy.set_settings(settings);
            let delta = self.policy.flush();
            if !delta.is_empty() {
                let feed = &self.policy;
                self.gate.posted();
                self.dp_tx.policy_delta(delta, || feed.state());
            }
        }
        let st = self.policy.stats();
        self.counters.policy_active_policies = st.active_policies;
        self.counters.policy_rejected = self.policy.rejected.len();
    }

    fn recompute(&mut self) {
        if !self.in_sync {
            return;
        }
        self.push_policy();
        // Policy objects alone leave the routes as they are: computing them again for each
        // batch of a policy burst (1000 endpoints' worth) only delays the next delta.
        if !std::mem::take(&mut self.routes_dirty) {
            return;
        }
        let t = Instant::now();
        let learned: Vec<(IpNet, IpAddr)> = self.learned.iter().map(|(k, v)| (*k, *v)).collect();
        // Felix's precedence: environment, then the node's FelixConfiguration, then `default`
        // (Felix restarts itself to apply a change; the agent applies it in place).
        let from_store = self
            .cfg
            .felix
            .program_cluster_routes
            .or_else(|| self.cache.program_cluster_routes(&self.node))
            .unwrap_or(true);
        if from_store != self.settings.routes_from_datastore || self.counters.calc_runs == 0 {
            tracing::info!(
                program_cluster_routes = from_store,
                "routes to other nodes' blocks: {}",
                if from_store {
                    "from IPAM and BGP"
                } else {
                    "from BGP only"
                }
            );
        }
        self.settings.routes_from_datastore = from_store;
        let (env, node) = (&self.cfg.felix, self.node.as_str());
        let felix_u32 = |f: fn(&FelixConfigurationSpec) -> Option<i64>| {
            self.cache
                .felix(node, |c| f(c).and_then(|v| u32::try_from(v).ok()))
        };
        self.settings.ipip_mtu = env.ipip_mtu.or_else(|| felix_u32(|c| c.ipip_mtu));
        self.settings.vxlan_mtu = env.vxlan_mtu.or_else(|| felix_u32(|c| c.vxlan_mtu));
        self.settings.vxlan_mtu_v6 = env.vxlan_mtu_v6.or_else(|| felix_u32(|c| c.vxlan_mtu_v6));
        self.settings.vxlan_vni = env.vxlan_vni.or_else(|| felix_u32(|c| c.vxlan_vni));
        self.settings.vxlan_port = env
            .vxlan_port
            .or_else(|| felix_u32(|c| c.vxlan_port).and_then(|p| u16::try_from(p).ok()));
        let d = calc::compute(&self.cache, &self.node, &learned, &self.settings);
        self.counters.calc_done(t.elapsed().as_secs_f64());
        self.counters.nodes = self.cache.count::<Node>();
        self.counters.workloads_cluster = self.cache.count::<WorkloadEndpoint>();
        if let Some(n) = self.cache.node(&self.node) {
            self.ipv4 = n.bgp_ipv4();
            self.ipv6 = n.bgp_ipv6();
        }
        self.bgp_wanted = d.bgp.is_some();
        let prune = self.may_prune();
        self.check_pools();
        if let Some(dp) = d.dataplane
            && self.last_dp.as_ref() != Some(&dp)
        {
            self.counters.local_blocks = dp.local_blocks.len();
            self.counters.remote_blocks = dp.remote_blocks.len();
            self.counters.workloads = dp.workloads.len();
            let mtu = calc::pod_mtu(&dp, self.settings.host_mtu);
            if self.mtu_written != Some(mtu) {
                match crate::nodename::write_file(&self.cfg.mtu_file(), &format!("{mtu}\n")) {
                    Ok(()) => self.mtu_written = Some(mtu),
                    Err(e) => tracing::warn!(error = %e, "cannot write the MTU file"),
                }
            }
            self.dp_tx.send(DpInput {
                desired: dp.clone(),
                prune,
            });
            self.pruning = prune;
            self.last_dp = Some(dp);
        }
        if d.bgp != self.last_bgp {
            self.last_bgp = d.bgp.clone();
            let _ = self.bgp_tx.send(d.bgp);
        }
    }

    fn on_route(&mut self, r: RouteMsg) {
        self.routes_dirty = true;
        match r {
            RouteMsg::Reset => {
                // A new speaker relearns everything; nothing goes from the kernel meanwhile.
                self.learned.clear();
                self.bgp_converged = false;
            }
            RouteMsg::Converged => {
                tracing::info!(routes = self.learned.len(), "BGP initial convergence");
                self.bgp_converged = true;
            }
            RouteMsg::Add(p, nh) => {
                self.learned.insert(p, nh);
            }
            RouteMsg::Withdraw(p) => {
                self.learned.remove(&p);
            }
        }
    }

    /// Pools changed: the tunnel addresses may have to appear or go (allocate-tunnel-addrs
    /// keeps running in calico-node for the same reason).
    fn check_pools(&mut self) {
        let now: Vec<String> = self
            .cache
            .all::<IPPool>()
            .map(|p| {
                format!(
                    "{}/{:?}/{:?}/{}",
                    p.spec.cidr,
                    p.spec.ipip(),
                    p.spec.vxlan(),
                    p.spec.disabled
                )
            })
            .collect();
        if now == self.pools_seen {
            return;
        }
        let first = self.pools_seen.is_empty();
        self.pools_seen = now;
        if first {
            return;
        }
        let Some(ds) = self.ds.clone() else { return };
        let node = self.node.clone();
        // The families the node has an address of (as at startup).
        use brindle_ipam::tunnel::TunnelKind;
        let mut kinds = Vec::new();
        if self.ipv4.is_some() || self.ipv6.is_none() {
            kinds.extend([TunnelKind::Ipip, TunnelKind::Vxlan]);
        }
        if self.ipv6.is_some() {
            kinds.push(TunnelKind::VxlanV6);
        }
        tokio::task::spawn_blocking(move || {
            let ipam = brindle_ipam::Ipam::new(ds);
            for kind in kinds {
                if let Err(e) = ipam.ensure_tunnel_address(&node, kind) {
                    tracing::warn!(error = %e, ?kind, "tunnel address");
                }
            }
        });
    }

    /// Whether routes the desired state lacks may be removed from the kernel. With a speaker,
    /// only after its initial convergence: until then a restarted agent keeps what the last one
    /// programmed (RFC 4724's forwarding state; what felix#1592 and calico#7144 are about).
    /// Without one, the datastore is the whole truth (or, with nothing to learn from, 30 s on).
    fn may_prune(&self) -> bool {
        if self.bgp_wanted {
            self.bgp_converged
        } else {
            self.settings.routes_from_datastore || self.boot.elapsed() > Duration::from_secs(30)
        }
    }

    /// Sends the last desired state again when pruning became allowed since it was sent.
    fn update_pruning(&mut self) {
        let prune = self.may_prune();
        if prune
            && !self.pruning
            && let Some(dp) = &self.last_dp
        {
            self.dp_tx.send(DpInput {
                desired: dp.clone(),
                prune: true,
            });
            self.pruning = true;
        }
    }

    fn on_tick(&mut self) {
        self.update_pruning();
        let rep = self.dp_report.borrow().clone();
        self.counters.dataplane = rep.metrics;
        self.counters.policy_applies = rep.policy_applies;
        self.counters.policy_resyncs = rep.policy_resyncs;
        self.counters.policy_seconds_total = rep.policy_seconds_total;
        self.counters.policy_last_seconds = rep.policy_last_seconds;
        self.counters.policy_repairs = rep.policy_repairs;
        self.counters.kernel_echoes = self.kernel.echoes.load(std::sync::atomic::Ordering::Relaxed);
        self.counters.kernel_repairs = self.kernel.repairs.load(std::sync::atomic::Ordering::Relaxed);
        self.counters.datastore_available = self.datastore_error.is_none();
        // A batch queued while another branch ran is never left waiting (the queue's own
        // wake-up normally takes it at once).
        let batch = self.sync.take();
        if !batch.is_empty() {
            self.on_sync(batch);
            self.recompute();
        }
    }

    /// The status without BGP peers (filled in by [`complete_status`]).
    fn status(&self) -> AgentStatus {
        let rep = self.dp_report.borrow().clone();
        let bgp = match self.cfg.backend {
            Backend::Bird => Some(BgpStatus {
                routes_received: self.learned.len(),
                routes_advertised: self.last_bgp.as_ref().map(|b| b.originate.len()).unwrap_or(0),
                graceful_restart_in_progress: self.bgp_wanted && !self.bgp_converged,
                ..Default::default()
            }),
            _ => None,
        };
        let mut errors = rep.errors.clone();
        if let Some(f) = &rep.fatal {
            errors.insert(0, f.clone());
        }
        if let Some(e) = &rep.policy_error {
            errors.push(format!("policy: {e}"));
        }
        AgentStatus {
            node: self.node.clone(),
            version: startup::calico_version(),
            pid: std::process::id(),
            started: self.started_at,
            ipv4_address: self.ipv4.map(|n| n.to_string()),
            ipv6_address: self.ipv6.map(|n| n.to_string()),
            bgp,
            dataplane: DataplaneStatus {
                ipip: rep.ipip.clone(),
                routes: rep.routes,
                workloads: rep.workloads,
                last_errors: errors,
            },
            live: rep.fatal.is_none(),
            // Felix is ready once its dataplane is in sync, policy included.
            ready: rep.started && rep.fatal.is_none() && rep.policy_ready,
            ready_detail: String::new(),
            datastore_error: self.datastore_error.clone(),
        }
    }

    fn on_query(&mut self, q: Query) {
        self.on_tick();
        let base = self.status();
        let speaker = self.speaker.borrow().clone();
        let started = self.started_at;
        match q {
            Query::Status(tx) => {
                tokio::spawn(async move {
                    let _ = tx.send(complete_status(base, speaker, started).await);
                });
            }
            Query::Metrics(tx) => {
                let input = crate::metrics::scrape::Input {
                    status: base,
                    speaker,
                    started,
                    counters: self.counters.clone(),
                    ds: self.ds.clone(),
                };
                tokio::spawn(crate::metrics::scrape::answer(input, tx));
            }
            Query::View(tx) => {
                tokio::spawn(crate::view::answer(self.ds.clone(), base, speaker, started, tx));
            }
        }
    }
}

/// Resolves when `held` work may go to the dataplane thread; pends forever when nothing is held.
async fn gate_done(gate: &dpthread::PolicyGate, held: bool) {
    if held {
        gate.done().await
    } else {
        std::future::pending().await
    }
}

/// Whether the route calculation (`calc::compute`, `check_pools`, the pool/tunnel facts)
/// reads the object under `key`: everything the agent caches except the policy kinds, which
/// only the policy calculation reads.
fn routes_read(key: &brindle_model::Key) -> bool {
    use brindle_model::Kind;
    !matches!(
        key,
        brindle_model::Key::Resource {
            kind: Kind::NetworkPolicy
                | Kind::GlobalNetworkPolicy
                | Kind::NetworkSet
                | Kind::GlobalNetworkSet
                | Kind::Tier
                | Kind::Profile,
            ..
        }
    )
}

/// Adds the speaker's state and peers and the readiness verdict to a status.
pub(crate) async fn complete_status(mut st: AgentStatus, speaker: SpeakerState, started: i64) -> AgentStatus {
    if let Some(b) = st.bgp.as_mut() {
        b.speaker_down = speaker.down();
        b.speaker_start_failures = speaker.start_failures;
        b.speaker_restarts = speaker.restarts;
        b.reconfigurations = speaker.reconfigurations;
        if let Some(h) = speaker.handle
            && let Ok(Ok(peers)) = tokio::time::timeout(Duration::from_secs(2), h.status()).await
        {
            let (v4, v6) = bgp::peer_statuses(&peers);
            b.peers_v4 = v4;
            b.peers_v6 = v6;
        }
    }
    let dataplane_ready = st.ready;
    let (ready, detail) = crate::health::readiness(dataplane_ready, st.bgp.as_ref(), started, unix_now());
    st.ready = ready;
    st.ready_detail = detail;
    if let Some(e) = &st.datastore_error {
        // Felix's readiness while its datastore connection is down.
        st.ready = false;
        st.ready_detail = format!("calico/node is not ready: felix is not ready: datastore unavailable: {e}");
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_model::{Key, Kind};

    fn key(kind: Kind) -> Key {
        Key::Resource {
            kind,
            namespace: "ns".into(),
            name: "x".into(),
        }
    }

    #[test]
    fn only_policy_kinds_leave_the_routes_alone() {
        for k in [
            Kind::NetworkPolicy,
            Kind::GlobalNetworkPolicy,
            Kind::NetworkSet,
            Kind::GlobalNetworkSet,
            Kind::Tier,
            Kind::Profile,
        ] {
            assert!(!routes_read(&key(k)), "{k:?}");
        }
        for k in [
            Kind::Node,
            Kind::IPPool,
            Kind::WorkloadEndpoint,
            Kind::BGPPeer,
            Kind::BGPConfiguration,
            Kind::BGPFilter,
            Kind::FelixConfiguration,
        ] {
            assert!(routes_read(&key(k)), "{k:?}");
        }
        let affinity = Key::Affinity {
            affinity_type: brindle_model::keys::AffinityType::Host,
            host: "n1".into(),
            cidr: "10.0.0.0/26".parse().unwrap(),
        };
        assert!(routes_read(&affinity));
    }
}
