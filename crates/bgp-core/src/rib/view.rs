//! Reading the table: best routes and paths, full snapshots, the change queues.

use std::sync::Arc;

use ipnet::IpNet;

use super::{BestRoute, Dest, Path, PeerId, Rib, RouteChange};
use crate::attr_store::RouteAttrs;
use crate::prefix_key::Key;

impl Rib {
    /// Prefixes this node originates.
    pub fn originated(&self) -> Vec<IpNet> {
        let local = |d: &Dest| d.paths().iter().any(|p| p.peer() == PeerId::LOCAL);
        let mut v: Vec<IpNet> = self
            .v4
            .iter()
            .filter(|(_, d)| local(d))
            .map(|(k, _)| IpNet::V4(k.net()))
            .chain(
                self.v6
                    .iter()
                    .filter(|(_, d)| local(d))
                    .map(|(k, _)| IpNet::V6(k.net())),
            )
            .collect();
        v.sort();
        v
    }

    fn best_route(&self, key: Key, p: Path) -> Option<BestRoute> {
        let info = self.peer(p.peer())?;
        let attrs = self.attrs.get(p.attrs).clone();
        Some(BestRoute {
            prefix: key.net(),
            next_hop: attrs.next_hop,
            peer: info.addr,
            attrs,
        })
    }

    /// The best learned route for `prefix` (None if none, or if this node originates it).
    pub fn best(&self, prefix: IpNet) -> Option<BestRoute> {
        let key = Key::new(prefix.trunc());
        self.best_route(key, self.dest(key)?.best())
    }

    /// The best path for `prefix`, learned or local: where it comes from and its attributes
    /// (what export decides on).
    pub fn best_path(&self, prefix: IpNet) -> Option<(PeerId, &Arc<RouteAttrs>)> {
        let p = self.dest(Key::new(prefix.trunc()))?.best();
        Some((p.peer(), self.attrs.get(p.attrs)))
    }

    /// Every prefix with its best path (unordered), for a full export.
    pub fn for_each_best(&self, mut f: impl FnMut(IpNet, PeerId, &Arc<RouteAttrs>)) {
        for (k, d) in &self.v4 {
            let p = d.best();
            f(IpNet::V4(k.net()), p.peer(), self.attrs.get(p.attrs));
        }
        for (k, d) in &self.v6 {
            let p = d.best();
            f(IpNet::V6(k.net()), p.peer(), self.attrs.get(p.attrs));
        }
    }

    /// Every best learned route, sorted by prefix (the full snapshot for a new subscriber).
    pub fn best_routes(&self) -> Vec<BestRoute> {
        let mut v: Vec<BestRoute> = self
            .v4
            .iter()
            .filter_map(|(k, d)| self.best_route(Key::V4(*k), d.best()))
            .chain(
                self.v6
                    .iter()
                    .filter_map(|(k, d)| self.best_route(Key::V6(*k), d.best())),
            )
            .collect();
        v.sort_by_key(|r| r.prefix);
        v
    }

    /// The best-route changes since the last call, in order (a prefix may appear twice).
    pub fn drain_changes(&mut self) -> Vec<RouteChange> {
        let changes = std::mem::take(&mut self.changes);
        changes
            .into_iter()
            .map(|(k, p, had)| RouteChange {
                prefix: k.net(),
                best: p.and_then(|p| self.best_route(k, p)),
                had_learned: had,
            })
            .collect()
    }

    /// The prefixes whose best path changed since the last call, each once (for export when
    /// nobody subscribes to the route stream).
    pub fn drain_changed_prefixes(&mut self) -> Vec<IpNet> {
        let mut keys: Vec<Key> = self.changes.drain(..).map(|(k, _, _)| k).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().map(Key::net).collect()
    }

    /// Drops queued changes without resolving them (when nobody listens).
    pub fn discard_changes(&mut self) {
        self.changes.clear();
    }

    /// Number of queued changes.
    pub fn pending_changes(&self) -> usize {
        self.changes.len()
    }
}
