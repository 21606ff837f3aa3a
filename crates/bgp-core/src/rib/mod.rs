//! The RIB: Adj-RIB-In of every peer and the Loc-RIB in one table, as BIRD keeps them: each
//! destination holds its candidate paths (one per peer and ADD-PATH id), best first. A path is
//! 12 bytes (peer with a stale bit, attribute set, path id); attribute sets are interned.
//! Changes of the best route are queued for the dataplane and for export
//! ([`Rib::drain_changes`], [`Rib::drain_changed_prefixes`]).
//!
//! Graceful restart's stale marking and sweeping (RFC 4724 §4.2) are in `stale`; reading the
//! table (best routes, snapshots, change queues) in `view`; UPDATEs and local origination in
//! `ingest`; import filtering (BGPFilter) and the
//! routes it rejected (the rest of the Adj-RIB-In, kept so a filter change is applied without
//! asking the peer again) in `import`; the reflector loop check run again after a cluster id
//! change in `loops`.

mod import;
mod ingest;
mod loops;
mod stale;
mod view;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use brindle_bgp_wire::{Origin, PathAttrs};
use ipnet::IpNet;

use crate::attr_store::{AttrId, AttrStore, RouteAttrs};
use crate::communities::CommunitySet;
use crate::decision::{Source, compare};
use crate::filter::BgpFilter;
use crate::prefix_key::{FastBuild, Key, V4Key, V6Key};

/// A peer's index in the RIB. `PeerId::LOCAL` is this node's own origination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl PeerId {
    pub const LOCAL: PeerId = PeerId(0);
}

/// What the RIB knows of a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub addr: IpAddr,
    pub router_id: Ipv4Addr,
    pub remote_as: u32,
    /// Our AS on this session (Calico's per-peer `localASNumber` may differ from the node's).
    pub local_as: u32,
    /// A route-reflector client (RFC 4456 §6): its routes are reflected to every iBGP peer.
    pub rr_client: bool,
    /// Our AS may appear this many times in a received AS_PATH (BIRD `allow local as`,
    /// Calico `numAllowedLocalASNumbers`).
    pub allow_local_as: u8,
    /// The interface the session runs on: the interface of the peer's routes for BGPFilter's
    /// `interface` match (BIRD's `ifname` of a route through a directly connected next hop).
    pub interface: Option<Arc<str>>,
}

impl PeerInfo {
    /// An iBGP or eBGP peer that is no reflector client and allows no own AS in paths.
    pub fn new(addr: IpAddr, router_id: Ipv4Addr, remote_as: u32, local_as: u32) -> PeerInfo {
        PeerInfo {
            addr,
            router_id,
            remote_as,
            local_as,
            rr_client: false,
            allow_local_as: 0,
            interface: None,
        }
    }

    pub fn ibgp(&self) -> bool {
        self.remote_as == self.local_as
    }
}

/// One candidate path. The top bit of `peer` is graceful restart's stale mark (RFC 4724 §4.2),
/// so a path stays 12 bytes; equality ignores it (a refreshed path is the same route).
#[derive(Clone, Copy, Debug)]
struct Path {
    peer: u32,
    attrs: AttrId,
    path_id: u32,
}

const STALE: u32 = 1 << 31;

impl Path {
    fn new(peer: PeerId, attrs: AttrId, path_id: u32) -> Path {
        Path {
            peer: peer.0,
            attrs,
            path_id,
        }
    }
    fn peer(&self) -> PeerId {
        PeerId(self.peer & !STALE)
    }
    fn stale(&self) -> bool {
        self.peer & STALE != 0
    }
}

impl PartialEq for Path {
    fn eq(&self, o: &Path) -> bool {
        self.peer() == o.peer() && self.attrs == o.attrs && self.path_id == o.path_id
    }
}

/// Candidate paths, best first. One path (the common case) stays inline.
#[derive(Debug)]
enum Dest {
    One(Path),
    // Boxed so a destination is 16 bytes (a bare Vec would make it 32): the one-path case is
    // what memory per route is made of.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Path>>),
}

impl Dest {
    fn paths(&self) -> &[Path] {
        match self {
            Dest::One(p) => std::slice::from_ref(p),
            Dest::Many(v) => v,
        }
    }
    fn paths_mut(&mut self) -> &mut [Path] {
        match self {
            Dest::One(p) => std::slice::from_mut(p),
            Dest::Many(v) => v,
        }
    }
    fn best(&self) -> Path {
        self.paths()[0]
    }
}

/// The best learned route for a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestRoute {
    pub prefix: IpNet,
    pub next_hop: IpAddr,
    /// The peer it was learned from.
    pub peer: IpAddr,
    pub attrs: Arc<RouteAttrs>,
}

/// A change of the best learned route: `best == None` means "no learned route any more" (the
/// prefix was withdrawn, or this node now originates it itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteChange {
    pub prefix: IpNet,
    pub best: Option<BestRoute>,
    /// A learned route was the best before this change (so `best` replaces or withdraws it).
    pub had_learned: bool,
}

/// What one UPDATE did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateStats {
    pub announced: usize,
    pub withdrawn: usize,
    /// Announcements dropped by the RFC 4271 §9.1.2 / RFC 4456 §8 loop checks.
    pub ignored: usize,
    /// Announcements the peer's import filters rejected (kept aside, not candidates).
    pub filtered: usize,
    /// The UPDATE was malformed and its announcements withdrawn (RFC 7606 treat-as-withdraw).
    pub treated_as_withdraw: bool,
}

/// What this node originates a prefix with: communities (Calico's prefix advertisements) and
/// the interface BGPFilter sees (a borrowed /32's cali device; none for blocks and service
/// prefixes, which BIRD holds as blackholes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LocalRoute {
    pub communities: CommunitySet,
    pub interface: Option<Arc<str>>,
}

struct PeerSlot {
    info: PeerInfo,
    routes: usize,
    /// Paths still marked stale (graceful restart).
    stale: usize,
    /// Import filters (BGPFilter), in order; empty accepts everything.
    import: Arc<[BgpFilter]>,
    /// Announcements the import filters rejected, by (prefix, ADD-PATH id): the part of the
    /// Adj-RIB-In that is not in the table, so a filter change can take them back.
    filtered: HashMap<(IpNet, u32), AttrId>,
}

pub struct Rib {
    router_id: Ipv4Addr,
    local_as: u32,
    /// Set when this node is a route reflector (RFC 4456 §7): CLUSTER_LIST loop check.
    cluster_id: Option<Ipv4Addr>,
    peers: Vec<Option<PeerSlot>>,
    attrs: AttrStore,
    v4: HashMap<V4Key, Dest, FastBuild>,
    v6: HashMap<V6Key, Dest, FastBuild>,
    changes: Vec<(Key, Option<Path>, bool)>,
    local_attrs: AttrId,
    /// Interfaces of originated prefixes that have one (BGPFilter's `interface`).
    local_interfaces: HashMap<IpNet, Arc<str>>,
}

impl Rib {
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> Rib {
        let mut attrs = AttrStore::default();
        let local_attrs = attrs.intern(RouteAttrs {
            attrs: PathAttrs {
                origin: Some(Origin::Igp),
                ..PathAttrs::default()
            },
            next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            link_local: None,
        });
        // Pinned: the local set lives as long as the RIB.
        attrs.incref(local_attrs);
        Rib {
            router_id,
            local_as,
            cluster_id: None,
            peers: vec![None],
            attrs,
            v4: HashMap::default(),
            v6: HashMap::default(),
            changes: Vec::new(),
            local_attrs,
            local_interfaces: HashMap::new(),
        }
    }

    /// Makes this RIB a route reflector's (RFC 4456): routes carrying `cluster_id` in their
    /// CLUSTER_LIST are loops.
    pub fn set_cluster_id(&mut self, cluster_id: Option<Ipv4Addr>) {
        self.cluster_id = cluster_id;
    }

    pub fn cluster_id(&self) -> Option<Ipv4Addr> {
        self.cluster_id
    }

    pub fn router_id(&self) -> Ipv4Addr {
        self.router_id
    }

    /// The node's AS (sessions may override it per peer, see [`PeerInfo::local_as`]).
    pub fn local_as(&self) -> u32 {
        self.local_as
    }

    /// Registers an Established peer; its routes go in under the returned id.
    pub fn add_peer(&mut self, info: PeerInfo) -> PeerId {
        let slot = PeerSlot {
            info,
            routes: 0,
            stale: 0,
            import: Arc::from(Vec::new()),
            filtered: HashMap::new(),
        };
        if let Some(i) = self.peers.iter().skip(1).position(Option::is_none) {
            self.peers[i + 1] = Some(slot);
            PeerId(i as u32 + 1)
        } else {
            self.peers.push(Some(slot));
            PeerId(self.peers.len() as u32 - 1)
        }
    }

    /// Replaces what is known of a peer whose routes are kept (re-established after a graceful
    /// restart). Paths keep their place; the next decision for each prefix uses the new info.
    pub fn update_peer(&mut self, id: PeerId, info: PeerInfo) {
        if let Some(Some(s)) = self.peers.get_mut(id.0 as usize) {
            s.info = info;
        }
    }

    pub fn peer(&self, id: PeerId) -> Option<&PeerInfo> {
        self.peers.get(id.0 as usize)?.as_ref().map(|s| &s.info)
    }

    fn slot(&self, id: PeerId) -> Option<&PeerSlot> {
        self.peers.get(id.0 as usize)?.as_ref()
    }

    /// Routes currently held from `id` (BIRD's "Routes: N imported"), stale ones included.
    pub fn peer_route_count(&self, id: PeerId) -> usize {
        self.slot(id).map_or(0, |s| s.routes)
    }

    /// Routes of `id` still marked stale by graceful restart.
    pub fn peer_stale_count(&self, id: PeerId) -> usize {
        self.slot(id).map_or(0, |s| s.stale)
    }

    /// Drops every route of `id` (session down) and forgets the peer.
    pub fn remove_peer(&mut self, id: PeerId) {
        if id == PeerId::LOCAL {
            return;
        }
        self.remove_where(|p| p.peer() == id);
        self.drop_filtered(id);
        if let Some(s) = self.peers.get_mut(id.0 as usize) {
            *s = None;
        }
    }

    /// Keys holding a path that matches `pred`.
    fn keys_where(&self, pred: impl Fn(Key, &Path) -> bool) -> Vec<Key> {
        let mut keys: Vec<Key> = Vec::new();
        for (k, d) in &self.v4 {
            if d.paths().iter().any(|p| pred(Key::V4(*k), p)) {
                keys.push(Key::V4(*k));
            }
        }
        for (k, d) in &self.v6 {
            if d.paths().iter().any(|p| pred(Key::V6(*k), p)) {
                keys.push(Key::V6(*k));
            }
        }
        keys
    }

    /// Removes every path matching `pred`; returns how many went.
    fn remove_where(&mut self, pred: impl Fn(&Path) -> bool + Copy) -> usize {
        let keys = self.keys_where(|_, p| pred(p));
        let n = keys.len();
        for k in keys {
            self.remove_paths(k, pred);
        }
        n
    }

    /// Number of prefixes with at least one path.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live interned attribute sets.
    pub fn attr_sets(&self) -> usize {
        self.attrs.len()
    }

    fn source(&self, peer: PeerId) -> Source {
        match self.peer(peer) {
            Some(i) => Source {
                local: false,
                ibgp: i.ibgp(),
                router_id: i.router_id,
                addr: i.addr,
            },
            None => Source {
                local: true,
                ibgp: false,
                router_id: self.router_id,
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            },
        }
    }

    fn dest(&self, key: Key) -> Option<&Dest> {
        match key {
            Key::V4(k) => self.v4.get(&k),
            Key::V6(k) => self.v6.get(&k),
        }
    }

    fn dest_mut(&mut self, key: Key) -> Option<&mut Dest> {
        match key {
            Key::V4(k) => self.v4.get_mut(&k),
            Key::V6(k) => self.v6.get_mut(&k),
        }
    }

    fn slot_mut(&mut self, peer: PeerId) -> Option<&mut PeerSlot> {
        self.peers.get_mut(peer.0 as usize)?.as_mut()
    }

    fn count(&mut self, peer: PeerId, delta: isize) {
        if let Some(s) = self.slot_mut(peer) {
            s.routes = s.routes.saturating_add_signed(delta);
        }
    }

    fn announce(&mut self, peer: PeerId, prefix: IpNet, path_id: u32, attrs: AttrId) {
        let key = Key::new(prefix);
        let new = Path::new(peer, attrs, path_id);
        self.attrs.incref(attrs);
        // One lookup for the common case, a new prefix.
        let slot = match key {
            Key::V4(k) => match self.v4.entry(k) {
                Entry::Vacant(v) => {
                    v.insert(Dest::One(new));
                    None
                }
                Entry::Occupied(o) => Some(o.into_mut()),
            },
            Key::V6(k) => match self.v6.entry(k) {
                Entry::Vacant(v) => {
                    v.insert(Dest::One(new));
                    None
                }
                Entry::Occupied(o) => Some(o.into_mut()),
            },
        };
        let Some(dest) = slot else {
            self.count(peer, 1);
            self.changes.push((key, Some(new), false));
            return;
        };
        let old_best = dest.best();
        let same = |p: &Path| p.peer() == peer && p.path_id == path_id;
        let replaced = match dest {
            Dest::One(p) if same(p) => Some(std::mem::replace(p, new)),
            Dest::One(p) => {
                let first = *p;
                *dest = Dest::Many(Box::new(vec![first, new]));
                None
            }
            Dest::Many(v) => match v.iter_mut().find(|p| same(p)) {
                Some(p) => Some(std::mem::replace(p, new)),
                None => {
                    v.push(new);
                    None
                }
            },
        };
        match replaced {
            Some(old) => {
                self.attrs.decref(old.attrs);
                if old.stale()
                    && let Some(s) = self.slot_mut(peer)
                {
                    // Refreshed after a graceful restart (RFC 4724 §4.2).
                    s.stale -= 1;
                }
            }
            None => self.count(peer, 1),
        }
        self.reselect(key, old_best);
    }

    /// Removes `peer`'s path `path_id` for `prefix` (and what its import filters set aside
    /// for it); true if there was a path.
    fn withdraw(&mut self, peer: PeerId, prefix: IpNet, path_id: u32) -> bool {
        self.unfilter(peer, prefix, path_id);
        self.remove_paths(Key::new(prefix), |p| p.peer() == peer && p.path_id == path_id)
    }

    fn remove_paths(&mut self, key: Key, pred: impl Fn(&Path) -> bool) -> bool {
        let Some(dest) = self.dest_mut(key) else {
            return false;
        };
        let old_best = dest.best();
        let removed: Vec<Path> = match dest {
            Dest::One(p) if pred(p) => vec![*p],
            Dest::One(_) => Vec::new(),
            Dest::Many(v) => {
                let r = v.iter().copied().filter(|p| pred(p)).collect();
                v.retain(|p| !pred(p));
                r
            }
        };
        if removed.is_empty() {
            return false;
        }
        for p in &removed {
            self.attrs.decref(p.attrs);
            self.count(p.peer(), -1);
            if p.stale()
                && let Some(s) = self.slot_mut(p.peer())
            {
                s.stale -= 1;
            }
        }
        let empty = matches!(self.dest(key), Some(Dest::One(_)))
            || matches!(self.dest(key), Some(Dest::Many(v)) if v.is_empty());
        if empty {
            match key {
                Key::V4(k) => self.v4.remove(&k),
                Key::V6(k) => self.v6.remove(&k),
            };
            self.changes.push((key, None, old_best.peer() != PeerId::LOCAL));
            return true;
        }
        self.reselect(key, old_best);
        true
    }

    /// Runs the decision process for `key` and records a change if the best path moved.
    fn reselect(&mut self, key: Key, old_best: Path) {
        let mut paths: Vec<Path> = match self.dest_mut(key) {
            Some(Dest::Many(v)) => std::mem::take(&mut **v),
            Some(Dest::One(p)) => {
                let p = *p;
                if p != old_best {
                    self.changes
                        .push((key, Some(p), old_best.peer() != PeerId::LOCAL));
                }
                return;
            }
            None => return,
        };
        let mut best = 0;
        for i in 1..paths.len() {
            let (a, b) = (paths[i], paths[best]);
            let ca = (self.attrs.get(a.attrs).as_ref(), self.source(a.peer()), a.path_id);
            let cb = (self.attrs.get(b.attrs).as_ref(), self.source(b.peer()), b.path_id);
            if compare(ca, cb).is_lt() {
                best = i;
            }
        }
        paths.swap(0, best);
        let new_best = paths[0];
        let dest = self.dest_mut(key).expect("exists");
        *dest = if paths.len() == 1 {
            Dest::One(new_best)
        } else {
            Dest::Many(Box::new(paths))
        };
        if new_best != old_best {
            self.changes
                .push((key, Some(new_best), old_best.peer() != PeerId::LOCAL));
        }
    }
}
