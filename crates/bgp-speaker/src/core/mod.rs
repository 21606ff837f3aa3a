//! The core actor: owns the peer set, the RIB, every peer's Adj-RIB-Out, graceful restart
//! state and the route subscribers. Peer tasks, listeners and the handle talk to it over one
//! channel; it never waits on a peer, so it cannot deadlock with them.
//!
//! - this file: the actor loop, the peer set, status;
//! - `routes`: UPDATE ingest, route events, export to peers, End-of-RIB;
//! - `graceful`: graceful restart in both roles (stale routes of restarting peers, our own
//!   restart's deferral) and the timers they need;
//! - `reconfig`: new settings and peers applied in place (export policy, cluster id, per-peer
//!   options), re-exporting only what changed.

mod graceful;
mod reconfig;
mod routes;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Instant;

use brindle_bgp_core::{AdjRibOut, Deferral, ExportTarget, Helper, LocalRoute, Negotiated, PeerId, Rib};
use brindle_bgp_wire::Ctx;
use brindle_bgp_wire::notification::cease_sub;
use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{Originated, PeerConfig, SpeakerConfig};
use crate::error::Error;
use crate::md5;
use crate::peer::{PeerCmd, PeerEvent, PeerTask, Snapshot};
use crate::refused::Refused;
use crate::status::{PeerStatus, RouteEvent, RouteSubscription};

pub(crate) enum CoreMsg {
    SetPeers(Vec<PeerConfig>, oneshot::Sender<Result<(), Error>>),
    // Boxed: every message in the channel pays for the largest variant.
    Reconfigure(
        Box<SpeakerConfig>,
        Vec<PeerConfig>,
        oneshot::Sender<Result<(), Error>>,
    ),
    SetOriginated(Vec<Originated>, oneshot::Sender<()>),
    Subscribe(oneshot::Sender<RouteSubscription>),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    Accepted(TcpStream, SocketAddr),
    Peer {
        addr: IpAddr,
        epoch: u64,
        event: PeerEvent,
    },
    /// `graceful`: close without NOTIFICATION so peers keep our routes (a planned restart).
    Shutdown {
        graceful: bool,
        reply: oneshot::Sender<()>,
    },
}

struct PeerEntry {
    cfg: PeerConfig,
    epoch: u64,
    cmd: mpsc::UnboundedSender<PeerCmd>,
    status: watch::Receiver<Snapshot>,
    /// The peer's routes in the RIB: while Established, and while a graceful restart keeps
    /// them after it.
    rib_id: Option<PeerId>,
    out: AdjRibOut,
    /// Set while Established.
    target: Option<ExportTarget>,
    ctx: Ctx,
    /// What the last Established session negotiated (its graceful restart capability decides
    /// what a drop keeps).
    negotiated: Option<Box<Negotiated>>,
    helper: Helper,
    /// End-of-RIB went out on this session.
    eor_sent: bool,
    /// Times an Established session with this peer went down (the exporter's flap count).
    flaps: u64,
}

pub(crate) struct Listener {
    pub fd: RawFd,
    pub v6: bool,
    pub task: JoinHandle<()>,
}

/// Something due at an instant; stale entries (the deadline moved) are skipped when popped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Helper(IpAddr, u64),
    Deferral,
    /// Sum up the connections refused since the last summary.
    RefusedSummary,
}

pub(crate) struct Core {
    cfg: SpeakerConfig,
    tx: mpsc::Sender<CoreMsg>,
    peers: HashMap<IpAddr, PeerEntry>,
    rib: Rib,
    originated: BTreeMap<IpNet, LocalRoute>,
    /// `set_originated` was called once: what we announce is known, End-of-RIB may go.
    originated_known: bool,
    /// What we originate changed since the last export (so peers that take only our own
    /// routes need looking at).
    local_changed: bool,
    subscribers: Vec<mpsc::UnboundedSender<RouteEvent>>,
    listeners: Vec<Listener>,
    next_epoch: u64,
    deferral: Deferral<IpAddr>,
    converged: watch::Sender<bool>,
    timers: BinaryHeap<Reverse<(Instant, Due)>>,
    refused: Refused,
}

/// IPv4-mapped IPv6 addresses (from a dual-stack accept) are IPv4 peers.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Core {
    pub fn new(
        cfg: SpeakerConfig,
        tx: mpsc::Sender<CoreMsg>,
        listeners: Vec<Listener>,
        converged: watch::Sender<bool>,
    ) -> Core {
        let mut rib = Rib::new(cfg.router_id, cfg.local_as);
        rib.set_cluster_id(cfg.cluster_id);
        let deferral = if cfg.restarting {
            Deferral::new(Instant::now(), cfg.selection_deferral)
        } else {
            Deferral::converged()
        };
        let mut core = Core {
            rib,
            cfg,
            tx,
            peers: HashMap::new(),
            originated: BTreeMap::new(),
            originated_known: false,
            local_changed: false,
            subscribers: Vec::new(),
            listeners,
            next_epoch: 1,
            deferral,
            converged,
            timers: BinaryHeap::new(),
            refused: Refused::default(),
        };
        if let Some(t) = core.deferral.deadline() {
            core.timers.push(Reverse((t, Due::Deferral)));
        }
        core
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        loop {
            let next = self.timers.peek().map(|Reverse((t, _))| *t);
            let msg = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => m,
                    // Every handle is gone: stop the sessions too.
                    None => {
                        for (_, p) in self.peers.drain() {
                            let _ = p.cmd.send(PeerCmd::Stop(cease_sub::ADMINISTRATIVE_SHUTDOWN));
                        }
                        return;
                    }
                },
                _ = sleep_until(next), if next.is_some() => {
                    self.fire_timers(Instant::now());
                    continue;
                }
            };
            match msg {
                CoreMsg::SetPeers(list, reply) => {
                    let _ = reply.send(self.set_peers(list));
                }
                CoreMsg::Reconfigure(cfg, list, reply) => {
                    let _ = reply.send(self.reconfigure(*cfg, list));
                }
                CoreMsg::SetOriginated(list, reply) => {
                    self.set_originated(list);
                    let _ = reply.send(());
                }
                CoreMsg::Subscribe(reply) => {
                    let _ = reply.send(self.subscribe());
                }
                CoreMsg::Status(reply) => {
                    let _ = reply.send(self.status());
                }
                CoreMsg::Accepted(stream, from) => match self.peers.get(&canonical(from.ip())) {
                    Some(p) => {
                        let _ = p.cmd.send(PeerCmd::Accepted(stream));
                    }
                    None => {
                        drop(stream);
                        self.refuse(from);
                    }
                },
                CoreMsg::Peer { addr, epoch, event } => self.on_peer(addr, epoch, event),
                CoreMsg::Shutdown { graceful, reply } => {
                    for (_, p) in self.peers.drain() {
                        let _ = p.cmd.send(if graceful {
                            PeerCmd::Abort
                        } else {
                            PeerCmd::Stop(cease_sub::ADMINISTRATIVE_SHUTDOWN)
                        });
                    }
                    // The listening sockets are closed when their tasks are dropped: wait for
                    // that, so a speaker started next (a restart) can bind the same port.
                    for l in std::mem::take(&mut self.listeners) {
                        l.task.abort();
                        let _ = l.task.await;
                    }
                    let _ = reply.send(());
                    return;
                }
            }
        }
    }

    fn set_md5(&self, peer: IpAddr, key: Option<&str>) -> Result<(), Error> {
        for l in &self.listeners {
            if peer.is_ipv6() && !l.v6 || peer.is_ipv4() && l.v6 {
                continue;
            }
            md5::set_key(l.fd, peer, l.v6, key.map(str::as_bytes))
                .map_err(|source| Error::Md5 { peer, source })?;
        }
        Ok(())
    }

    /// Applies a new peer list: see [`crate::SpeakerHandle::set_peers`].
    fn set_peers(&mut self, list: Vec<PeerConfig>) -> Result<(), Error> {
        if self.apply_peers(list)? {
            self.resync_all();
        }
        Ok(())
    }

    /// Validates the whole list, sets listener MD5 keys (rolled back on failure), then stops
    /// removed and changed peers, starts new ones and updates in place the ones whose change a
    /// session takes live ([`PeerConfig::differs_only_live`]). Unchanged peers are not touched.
    /// Returns whether a live change was made (what peers are sent must then be redone).
    fn apply_peers(&mut self, list: Vec<PeerConfig>) -> Result<bool, Error> {
        check_peer_list(&list, &self.cfg)?;
        let live: Vec<&PeerConfig> = list
            .iter()
            .filter(|p| {
                self.peers
                    .get(&p.address)
                    .is_some_and(|e| e.cfg.differs_only_live(p))
            })
            .collect();
        let changed: Vec<&PeerConfig> = list
            .iter()
            .filter(|p| self.peers.get(&p.address).is_none_or(|e| e.cfg.restart_needed(p)))
            .collect();
        let mut done = Vec::new();
        for p in &changed {
            if let Err(e) = self.set_md5(p.address, p.password.as_deref()) {
                for d in done {
                    let old = self.peers.get(&d).and_then(|e| e.cfg.password.clone());
                    let _ = self.set_md5(d, old.as_deref());
                }
                return Err(e);
            }
            done.push(p.address);
        }
        let wanted: HashMap<IpAddr, &PeerConfig> = list.iter().map(|p| (p.address, p)).collect();
        let gone: Vec<IpAddr> = self
            .peers
            .keys()
            .filter(|a| !wanted.contains_key(a))
            .copied()
            .collect();
        for a in gone {
            self.stop_peer(a, cease_sub::PEER_DECONFIGURED);
            let _ = self.set_md5(a, None);
        }
        for p in changed {
            if self.peers.contains_key(&p.address) {
                self.stop_peer(p.address, cease_sub::OTHER_CONFIGURATION_CHANGE);
            }
            let epoch = self.next_epoch;
            self.next_epoch += 1;
            let restarting = !self.deferral.done();
            let (cmd, status) = PeerTask::spawn(p.clone(), &self.cfg, restarting, epoch, self.tx.clone());
            self.peers.insert(
                p.address,
                PeerEntry {
                    cfg: p.clone(),
                    epoch,
                    cmd,
                    status,
                    rib_id: None,
                    out: AdjRibOut::new(),
                    target: None,
                    ctx: Ctx::default(),
                    negotiated: None,
                    helper: Helper::new(),
                    eor_sent: false,
                    flaps: 0,
                },
            );
        }
        let live_changed = !live.is_empty();
        for p in live {
            self.update_live(p);
        }
        if self.deferral.set_peers(list.iter().map(|p| p.address)) {
            self.on_converged();
        }
        self.report_settled();
        self.propagate();
        Ok(live_changed)
    }

    /// A connection from an address that is no peer was closed: logged if it starts a burst,
    /// else counted for the burst's summary (see `refused`).
    fn refuse(&mut self, from: SocketAddr) {
        if let Some(due) = self.refused.refuse(from, Instant::now()) {
            tracing::warn!(%from, "bgp connection from an address that is no peer refused \
                (further ones are summed up every {} s)", crate::refused::SUMMARY_INTERVAL.as_secs());
            self.timers.push(Reverse((due, Due::RefusedSummary)));
        }
    }

    /// The refused-connection summary is due.
    fn summarize_refused(&mut self, now: Instant) {
        let (summary, next) = self.refused.summary(now);
        if let Some(s) = summary {
            tracing::warn!(
                count = s.count,
                distinct_sources = s.sources,
                distinct_sources_capped = s.sources_capped,
                first = %s.first,
                last = %s.last,
                over_s = s.span.as_secs_f64(),
                "bgp connections from addresses that are no peer refused"
            );
        }
        if let Some(t) = next {
            self.timers.push(Reverse((t, Due::RefusedSummary)));
        }
    }

    /// Stops a peer and drops its routes (also stale ones: it is gone or changed).
    fn stop_peer(&mut self, addr: IpAddr, subcode: u8) {
        if let Some(p) = self.peers.remove(&addr) {
            let _ = p.cmd.send(PeerCmd::Stop(subcode));
            if let Some(id) = p.rib_id {
                self.rib.remove_peer(id);
                self.propagate();
            }
        }
    }

    fn status(&self) -> Vec<PeerStatus> {
        let mut v: Vec<PeerStatus> = self
            .peers
            .values()
            .map(|p| {
                let snap = p.status.borrow().clone();
                PeerStatus {
                    name: p.cfg.name(),
                    address: p.cfg.address,
                    peer_type: p.cfg.peer_type,
                    state: snap.status.proto,
                    bgp_state: snap.status.state,
                    since: snap.since,
                    info: snap.status.info,
                    routes_imported: p.rib_id.map_or(0, |id| self.rib.peer_route_count(id)),
                    routes_stale: p.rib_id.map_or(0, |id| self.rib.peer_stale_count(id)),
                    routes_filtered: p.rib_id.map_or(0, |id| self.rib.peer_filtered_count(id)),
                    routes_exported: p.out.sent().len(),
                    flaps: p.flaps,
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

/// Every peer valid against `cfg`, none twice.
fn check_peer_list(list: &[PeerConfig], cfg: &SpeakerConfig) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for p in list {
        p.validate_with(cfg)?;
        if !seen.insert(p.address) {
            return Err(Error::InvalidPeer {
                peer: p.address,
                what: "configured twice".into(),
            });
        }
    }
    Ok(())
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
