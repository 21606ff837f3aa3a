//! The core actor: owns the peer set, the RIB, every peer's Adj-RIB-Out and the route
//! subscribers. Peer tasks, listeners and the handle talk to it over one channel; it never
//! waits on a peer, so it cannot deadlock with them.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

use brindle_bgp_core::{AdjRibOut, ExportTarget, PeerId, PeerInfo, Rib, RouteChange, export};
use brindle_bgp_wire::notification::cease_sub;
use brindle_bgp_wire::{Ctx, Message, OutMessage, UpdateMsg, header};
use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{PeerConfig, SpeakerConfig};
use crate::error::Error;
use crate::md5;
use crate::peer::{PeerCmd, PeerEvent, PeerTask, Snapshot};
use crate::status::{PeerStatus, Route, RouteEvent, RouteSubscription};

pub(crate) enum CoreMsg {
    SetPeers(Vec<PeerConfig>, oneshot::Sender<Result<(), Error>>),
    SetOriginated(Vec<IpNet>, oneshot::Sender<()>),
    Subscribe(oneshot::Sender<RouteSubscription>),
    Status(oneshot::Sender<Vec<PeerStatus>>),
    Accepted(TcpStream, SocketAddr),
    Peer {
        addr: IpAddr,
        epoch: u64,
        event: PeerEvent,
    },
    Shutdown(oneshot::Sender<()>),
}

struct PeerEntry {
    cfg: PeerConfig,
    epoch: u64,
    cmd: mpsc::UnboundedSender<PeerCmd>,
    status: watch::Receiver<Snapshot>,
    rib_id: Option<PeerId>,
    out: AdjRibOut,
    target: Option<ExportTarget>,
    ctx: Ctx,
}

pub(crate) struct Listener {
    pub fd: RawFd,
    pub v6: bool,
    pub task: JoinHandle<()>,
}

pub(crate) struct Core {
    cfg: SpeakerConfig,
    tx: mpsc::Sender<CoreMsg>,
    peers: HashMap<IpAddr, PeerEntry>,
    rib: Rib,
    originated: BTreeSet<IpNet>,
    subscribers: Vec<mpsc::UnboundedSender<RouteEvent>>,
    listeners: Vec<Listener>,
    next_epoch: u64,
}

/// IPv4-mapped IPv6 addresses (from a dual-stack accept) are IPv4 peers.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Core {
    pub fn new(cfg: SpeakerConfig, tx: mpsc::Sender<CoreMsg>, listeners: Vec<Listener>) -> Core {
        Core {
            rib: Rib::new(cfg.router_id, cfg.local_as),
            cfg,
            tx,
            peers: HashMap::new(),
            originated: BTreeSet::new(),
            subscribers: Vec::new(),
            listeners,
            next_epoch: 1,
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<CoreMsg>) {
        while let Some(msg) = rx.recv().await {
            match msg {
                CoreMsg::SetPeers(list, reply) => {
                    let _ = reply.send(self.set_peers(list));
                }
                CoreMsg::SetOriginated(list, reply) => {
                    self.set_originated(list);
                    let _ = reply.send(());
                }
                CoreMsg::Subscribe(reply) => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let snapshot = self.rib.best_routes().into_iter().map(Route::from).collect();
                    self.subscribers.push(tx);
                    let _ = reply.send(RouteSubscription { snapshot, events: rx });
                }
                CoreMsg::Status(reply) => {
                    let _ = reply.send(self.status());
                }
                CoreMsg::Accepted(stream, from) => match self.peers.get(&canonical(from.ip())) {
                    Some(p) => {
                        let _ = p.cmd.send(PeerCmd::Accepted(stream));
                    }
                    None => {
                        tracing::warn!(%from, "bgp connection from an unknown address closed");
                    }
                },
                CoreMsg::Peer { addr, epoch, event } => self.on_peer(addr, epoch, event),
                CoreMsg::Shutdown(reply) => {
                    for (_, p) in self.peers.drain() {
                        let _ = p.cmd.send(PeerCmd::Stop(cease_sub::ADMINISTRATIVE_SHUTDOWN));
                    }
                    for l in &self.listeners {
                        l.task.abort();
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

    /// Validates the whole list, sets listener MD5 keys (rolled back on failure), then stops
    /// removed and changed peers and starts new ones. Unchanged peers are not touched.
    fn set_peers(&mut self, list: Vec<PeerConfig>) -> Result<(), Error> {
        let mut seen = BTreeSet::new();
        for p in &list {
            p.validate()?;
            if !seen.insert(p.address) {
                return Err(Error::InvalidPeer {
                    peer: p.address,
                    what: "configured twice".into(),
                });
            }
        }
        let changed: Vec<&PeerConfig> = list
            .iter()
            .filter(|p| self.peers.get(&p.address).is_none_or(|e| e.cfg != **p))
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
            let (cmd, status) = PeerTask::spawn(p.clone(), &self.cfg, epoch, self.tx.clone());
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
                },
            );
        }
        Ok(())
    }

    fn stop_peer(&mut self, addr: IpAddr, subcode: u8) {
        if let Some(p) = self.peers.remove(&addr) {
            let _ = p.cmd.send(PeerCmd::Stop(subcode));
            if let Some(id) = p.rib_id {
                self.rib.remove_peer(id);
                self.after_rib_change();
            }
        }
    }

    fn set_originated(&mut self, list: Vec<IpNet>) {
        let new: BTreeSet<IpNet> = list.into_iter().map(|p| p.trunc()).collect();
        for p in self.originated.difference(&new) {
            self.rib.withdraw_local(*p);
        }
        for p in new.difference(&self.originated) {
            self.rib.originate(*p);
        }
        self.originated = new;
        let all: Vec<IpAddr> = self.peers.keys().copied().collect();
        for a in all {
            self.sync_out(a, false);
        }
        self.publish_changes();
    }

    /// Sends `addr` what its Adj-RIB-Out is missing; after (re)establishment or a route refresh
    /// also End-of-RIB for each family (RFC 4724 §2).
    fn sync_out(&mut self, addr: IpAddr, end_of_rib: bool) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let Some(t) = &p.target else { return };
        let desired = export::desired(&self.rib, t, &self.cfg.export);
        let mut bytes = p.out.sync(desired, &p.ctx);
        if end_of_rib {
            for f in &t.families {
                OutMessage::Update(UpdateMsg::end_of_rib(*f)).encode(&p.ctx, &mut bytes);
            }
        }
        if !bytes.is_empty() {
            let _ = p.cmd.send(PeerCmd::Send(bytes));
        }
    }

    fn on_peer(&mut self, addr: IpAddr, epoch: u64, event: PeerEvent) {
        let local_as = self.cfg.local_as;
        let (node_v4, node_v6) = (self.cfg.node_v4, self.cfg.node_v6);
        let Some(p) = self.peers.get_mut(&addr).filter(|p| p.epoch == epoch) else {
            return; // a stopped peer's last words
        };
        match event {
            PeerEvent::Established { local, negotiated } => {
                let peer_local_as = p.cfg.local_as.unwrap_or(local_as);
                if let Some(old) = p.rib_id.take() {
                    self.rib.remove_peer(old);
                }
                p.rib_id = Some(self.rib.add_peer(PeerInfo {
                    addr,
                    router_id: negotiated.remote_id,
                    remote_as: negotiated.remote_as,
                    local_as: peer_local_as,
                }));
                let local_ip = local.map(|l| canonical(l.ip()));
                p.target = Some(ExportTarget {
                    peer_addr: addr,
                    local_as: peer_local_as,
                    remote_as: negotiated.remote_as,
                    next_hop_v4: match local_ip {
                        Some(IpAddr::V4(a)) => Some(a),
                        _ => node_v4,
                    },
                    next_hop_v6: match local_ip {
                        Some(IpAddr::V6(a)) => Some(a),
                        _ => node_v6,
                    },
                    families: negotiated.families.clone(),
                    rr_client: false,
                });
                p.ctx = negotiated.ctx;
                p.out.reset();
                self.sync_out(addr, true);
            }
            PeerEvent::Down => {
                p.target = None;
                p.out.reset();
                if let Some(id) = p.rib_id.take() {
                    self.rib.remove_peer(id);
                    self.after_rib_change();
                }
            }
            PeerEvent::Updates(bytes, ctx) => {
                let Some(id) = p.rib_id else { return };
                let mut pos = 0;
                while pos < bytes.len() {
                    let Ok(Some(len)) = header::frame_len(&bytes[pos..], ctx.max_len) else {
                        break;
                    };
                    if let Ok(Message::Update(u)) = Message::decode(&bytes[pos..pos + len], &ctx) {
                        self.rib.apply_update(id, &u);
                    }
                    pos += len;
                }
                self.after_rib_change();
            }
            PeerEvent::RouteRefresh(_) => {
                // RFC 2918: send the Adj-RIB-Out again (no End-of-RIB: that marks the first
                // dump of a session, RFC 4724 §2).
                p.out.reset();
                self.sync_out(addr, false);
            }
        }
    }

    /// Learned routes changed: tell subscribers, and re-sync peers that receive learned routes
    /// (eBGP peers under a pool export policy).
    fn after_rib_change(&mut self) {
        self.publish_changes();
        if self.cfg.export.learned_to_ebgp.is_empty() {
            return;
        }
        let ebgp: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.target.as_ref().is_some_and(|t| !t.ibgp()))
            .map(|(a, _)| *a)
            .collect();
        for a in ebgp {
            self.sync_out(a, false);
        }
    }

    fn publish_changes(&mut self) {
        self.subscribers.retain(|s| !s.is_closed());
        if self.subscribers.is_empty() {
            self.rib.discard_changes();
            return;
        }
        let events: Vec<RouteEvent> = self
            .rib
            .drain_changes()
            .into_iter()
            .filter_map(|c: RouteChange| match (c.best, c.had_learned) {
                (Some(b), false) => Some(RouteEvent::Add(Route::from(b))),
                (Some(b), true) => Some(RouteEvent::Replace(Route::from(b))),
                (None, true) => Some(RouteEvent::Withdraw(c.prefix)),
                (None, false) => None,
            })
            .collect();
        for s in &self.subscribers {
            for e in &events {
                let _ = s.send(e.clone());
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
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}
