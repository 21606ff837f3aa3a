//! The route-reflector loop check run again over the table (RFC 4456 §8): when a running
//! node's cluster id changes (Calico's `routeReflectorClusterID` edited), iBGP paths that carry
//! the new id in their CLUSTER_LIST are loops from then on.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::{PeerId, Rib};

impl Rib {
    /// Sets the cluster id (see [`Rib::set_cluster_id`]) on a RIB that holds routes, and drops
    /// the iBGP paths that loop under the new one. Returns how many paths went (their best-route
    /// changes are queued as usual). Paths refused under the old id were never stored: the
    /// speaker asks its iBGP peers for their routes again (route refresh) to get them back.
    pub fn change_cluster_id(&mut self, cluster_id: Option<Ipv4Addr>) -> usize {
        self.set_cluster_id(cluster_id);
        let Some(cluster) = cluster_id else { return 0 };
        let ibgp: HashSet<PeerId> = (1..self.peers.len() as u32)
            .map(PeerId)
            .filter(|id| self.peer(*id).is_some_and(|p| p.ibgp()))
            .collect();
        if ibgp.is_empty() {
            return 0;
        }
        let loops = |p: &super::Path, rib: &Rib| rib.attrs.get(p.attrs).attrs.cluster_list.contains(&cluster);
        let keys = self.keys_where(|_, p| ibgp.contains(&p.peer()) && loops(p, self));
        let looped: HashSet<_> = keys
            .iter()
            .filter_map(|k| self.dest(*k))
            .flat_map(|d| d.paths())
            .filter(|p| ibgp.contains(&p.peer()) && loops(p, self))
            .map(|p| p.attrs)
            .collect();
        let mut dropped = 0;
        for k in keys {
            let before = self.dest(k).map_or(0, |d| d.paths().len());
            self.remove_paths(k, |p| ibgp.contains(&p.peer()) && looped.contains(&p.attrs));
            dropped += before - self.dest(k).map_or(0, |d| d.paths().len());
        }
        dropped
    }
}
