//! Routes through the core: originated prefixes, UPDATEs from peers into the RIB, best-route
//! events to subscribers, and export to peers (a full Adj-RIB-Out when a session comes up,
//! incremental after RIB changes), with End-of-RIB once our initial advertisement is complete.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use brindle_bgp_core::{
    BgpFilter, ExportTarget, Exporter, LocalRoute, PeerId, PeerInfo, RouteChange, export,
};
use brindle_bgp_wire::{OutMessage, UpdateMsg};
use ipnet::IpNet;
use tokio::sync::mpsc;

use super::{Core, canonical};
use crate::config::Originated;
use crate::iface;
use crate::peer::{PeerCmd, PeerEvent};
use crate::status::{Route, RouteEvent, RouteSubscription};

impl Core {
    pub(super) fn set_originated(&mut self, list: Vec<Originated>) {
        let new: BTreeMap<IpNet, LocalRoute> = list
            .into_iter()
            .map(|o| {
                let route = LocalRoute {
                    communities: o.communities,
                    interface: o.interface.map(Arc::from),
                };
                (o.prefix.trunc(), route)
            })
            .collect();
        for p in self.originated.keys().filter(|p| !new.contains_key(p)) {
            self.rib.withdraw_local(*p);
        }
        for (p, route) in &new {
            if self.originated.get(p) != Some(route) {
                self.rib.originate_with(*p, route);
            }
        }
        self.originated = new;
        self.local_changed = true;
        self.propagate();
        if !self.originated_known {
            // The initial advertisement is known now: End-of-RIB can follow it (RFC 4724 §4).
            self.originated_known = true;
            let all: Vec<IpAddr> = self.peers.keys().copied().collect();
            for a in all {
                self.maybe_end_of_rib(a);
            }
        }
    }

    pub(super) fn subscribe(&mut self) -> RouteSubscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let snapshot = self.rib.best_routes().into_iter().map(Route::from).collect();
        self.subscribers.push(tx);
        RouteSubscription { snapshot, events: rx }
    }

    pub(super) fn on_peer(&mut self, addr: IpAddr, epoch: u64, event: PeerEvent) {
        if self.peers.get(&addr).is_none_or(|p| p.epoch != epoch) {
            return; // a stopped peer's last words
        }
        match event {
            PeerEvent::Established { local, negotiated } => self.on_established(addr, local, negotiated),
            PeerEvent::Down { graceful } => self.on_down(addr, graceful),
            PeerEvent::Updates(batch) => {
                let Some(id) = self.peers.get(&addr).and_then(|p| p.rib_id) else {
                    return;
                };
                // Decoded once, by the peer task: walked here without framing or decoding.
                for d in batch.updates {
                    let u = d.attach(&batch.buf);
                    match u.end_of_rib() {
                        Some(family) => self.on_end_of_rib(addr, family),
                        None => {
                            self.rib.apply_update(id, &u);
                        }
                    }
                }
                self.propagate();
            }
            PeerEvent::RouteRefresh(_) => {
                // RFC 2918: send the Adj-RIB-Out again (no End-of-RIB: that marks the first
                // dump of a session, RFC 4724 §2).
                if let Some(p) = self.peers.get_mut(&addr) {
                    p.out.reset();
                }
                self.sync_full(addr);
            }
        }
    }

    fn on_established(
        &mut self,
        addr: IpAddr,
        local: Option<std::net::SocketAddr>,
        negotiated: Box<brindle_bgp_core::Negotiated>,
    ) {
        let (node_v4, node_v6) = (self.cfg.node_v4, self.cfg.node_v6);
        let local_as = self.cfg.local_as;
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let peer_local_as = p.cfg.local_as.unwrap_or(local_as);
        let local_ip = local.map(|l| canonical(l.ip()));
        let link = local_ip.map_or_else(Default::default, |l| iface::session_link(l, addr));
        let info = PeerInfo {
            rr_client: p.cfg.rr_client,
            allow_local_as: p.cfg.allow_local_as,
            interface: link.interface.as_deref().map(Arc::from),
            ..PeerInfo::new(addr, negotiated.remote_id, negotiated.remote_as, peer_local_as)
        };
        // Routes kept through the peer's graceful restart stay under their id.
        let id = match p.rib_id {
            Some(id) => {
                self.rib.update_peer(id, info);
                id
            }
            None => *p.rib_id.insert(self.rib.add_peer(info)),
        };
        self.rib.set_import_filters(id, p.cfg.filters.clone());
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
            next_hop_v6_link_local: link.link_local,
            families: negotiated.families.clone(),
            rr_client: p.cfg.rr_client,
            next_hop: p.cfg.next_hop,
            filters: p.cfg.filters.clone(),
        });
        p.ctx = negotiated.ctx;
        p.out.reset();
        p.eor_sent = false;
        p.negotiated = Some(negotiated);
        self.gr_established(addr);
        self.sync_full(addr);
        self.maybe_end_of_rib(addr);
        self.propagate();
    }

    fn on_down(&mut self, addr: IpAddr, graceful: bool) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        if p.target.is_some() {
            p.flaps += 1;
        }
        p.target = None;
        p.out.reset();
        tracing::info!(peer = %addr, graceful, "bgp session down");
        self.gr_down(addr, graceful);
        self.propagate();
    }

    /// New BGPFilters for a peer, applied without touching its session: its routes go through
    /// the new import rules (those now rejected leave, those set aside and now accepted come
    /// back, without asking the peer), and it gets what the new export rules change.
    pub(super) fn set_filters(&mut self, addr: IpAddr, filters: Arc<[BgpFilter]>) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        p.cfg.filters = filters.clone();
        if let Some(t) = &mut p.target {
            t.filters = filters.clone();
        }
        if let Some(id) = p.rib_id {
            let (removed, restored) = self.rib.set_import_filters(id, filters);
            tracing::info!(peer = %addr, removed, restored, "bgp filters changed: routes re-evaluated");
        }
        self.sync_full(addr);
        self.propagate();
    }

    /// Sends `addr` its whole Adj-RIB-Out (what is missing from what was sent).
    pub(super) fn sync_full(&mut self, addr: IpAddr) {
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let Some(t) = &p.target else { return };
        let desired = export::desired(&self.rib, t, &self.cfg.export);
        let bytes = p.out.sync(desired, &p.ctx);
        if !bytes.is_empty() {
            let _ = p.cmd.send(PeerCmd::Send(bytes));
        }
    }

    /// Sends End-of-RIB for every family (RFC 4724 §2) once the initial advertisement is
    /// complete: what we originate is known, and for a peer that takes learned routes (a
    /// reflector client, an eBGP peer under a pool policy), our own restart deferral is over
    /// too, so the peer does not sweep routes we have not relearned yet.
    pub(super) fn maybe_end_of_rib(&mut self, addr: IpAddr) {
        if !self.originated_known {
            return;
        }
        let converged = self.deferral.done();
        let Some(p) = self.peers.get_mut(&addr) else {
            return;
        };
        let Some(t) = &p.target else { return };
        if p.eor_sent || (!converged && t.takes_learned(&self.rib, &self.cfg.export)) {
            return;
        }
        let mut bytes = p.out.flush(&p.ctx);
        for f in &t.families {
            OutMessage::Update(UpdateMsg::end_of_rib(*f)).encode(&p.ctx, &mut bytes);
        }
        p.eor_sent = true;
        let _ = p.cmd.send(PeerCmd::Send(bytes));
    }

    /// Takes the RIB's changes: route events to subscribers, exports to peers.
    pub(super) fn propagate(&mut self) {
        self.subscribers.retain(|s| !s.is_closed());
        let local_changed = std::mem::take(&mut self.local_changed);
        let learned_targets = self.peers.values().any(|p| {
            p.target
                .as_ref()
                .is_some_and(|t| t.takes_learned(&self.rib, &self.cfg.export))
        });
        if self.subscribers.is_empty() && !learned_targets && !local_changed {
            self.rib.discard_changes();
            return;
        }
        let changed: Vec<IpNet> = if self.subscribers.is_empty() {
            self.rib.drain_changed_prefixes()
        } else {
            let changes = self.rib.drain_changes();
            let mut prefixes: Vec<IpNet> = changes.iter().map(|c| c.prefix).collect();
            self.publish(changes);
            prefixes.sort_unstable();
            prefixes.dedup();
            prefixes
        };
        if changed.is_empty() || (!learned_targets && !local_changed) {
            return;
        }
        // What we originate is always best where it exists (local routes win the decision).
        let local: Vec<bool> = changed
            .iter()
            .map(|p| self.rib.best_path(*p).is_some_and(|(s, _)| s == PeerId::LOCAL))
            .collect();
        for p in self.peers.values_mut() {
            let Some(t) = &p.target else { continue };
            let learned = t.takes_learned(&self.rib, &self.cfg.export);
            if !learned && !local_changed {
                continue;
            }
            let mut ex = Exporter::new(&self.rib, t, &self.cfg.export);
            for (prefix, is_local) in changed.iter().zip(&local) {
                if !learned && !is_local && !p.out.sent().contains_key(prefix) {
                    continue;
                }
                p.out.set(*prefix, ex.prefix(*prefix));
            }
            if p.out.has_pending() {
                let bytes = p.out.flush(&p.ctx);
                let _ = p.cmd.send(PeerCmd::Send(bytes));
            }
        }
    }

    fn publish(&mut self, changes: Vec<RouteChange>) {
        let events: Vec<RouteEvent> = changes
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
}
