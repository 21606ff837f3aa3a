//! Into the table: a peer's UPDATEs (withdrawals, announcements under one interned attribute
//! set per NLRI field, RFC 7606 treat-as-withdraw, the loop checks, import filters) and what
//! this node originates.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use brindle_bgp_wire::{Family, MpNextHop, NlriIter, Origin, PathAttrs, Update};
use ipnet::IpNet;

use super::{LocalRoute, PeerId, Rib, UpdateStats};
use crate::attr_store::RouteAttrs;

impl Rib {
    /// Applies an UPDATE from `peer` (Established, already validated by the decoder). A
    /// treat-as-withdraw UPDATE (RFC 7606 §2) withdraws what it announces.
    pub fn apply_update(&mut self, peer: PeerId, u: &Update<'_>) -> UpdateStats {
        let mut st = UpdateStats::default();
        for n in u.withdrawn() {
            st.withdrawn += usize::from(self.withdraw(peer, n.prefix, n.path_id));
        }
        if let Some((_, it)) = u.mp_withdrawn() {
            for n in it {
                st.withdrawn += usize::from(self.withdraw(peer, n.prefix, n.path_id));
            }
        }
        if u.treat_as_withdraw() {
            st.treated_as_withdraw = true;
            let mp = u.mp_nlri().map(|(_, _, it)| it);
            for n in u.nlri().chain(mp.into_iter().flatten()) {
                st.withdrawn += usize::from(self.withdraw(peer, n.prefix, n.path_id));
            }
            return st;
        }
        let looped = self.is_loop(peer, &u.attrs);
        if let Some(nh) = u.attrs.next_hop
            && !u.nlri().is_empty()
        {
            let attrs = RouteAttrs {
                attrs: u.attrs.clone(),
                next_hop: IpAddr::V4(nh),
                link_local: None,
            };
            self.announce_all(peer, attrs, u.nlri(), looped, &mut st);
        }
        if let Some((family, nh, it)) = u.mp_nlri() {
            let (next_hop, link_local) = match nh {
                MpNextHop::V4(a) => (IpAddr::V4(a), None),
                MpNextHop::V6 { global, link_local } => (IpAddr::V6(global), link_local),
            };
            let mut attrs = u.attrs.clone();
            if family != Family::IPV4_UNICAST {
                attrs.next_hop = None;
            }
            let attrs = RouteAttrs {
                attrs,
                next_hop,
                link_local,
            };
            self.announce_all(peer, attrs, it, looped, &mut st);
        }
        st
    }

    /// Installs every prefix of one NLRI field under one interned attribute set.
    fn announce_all(
        &mut self,
        peer: PeerId,
        attrs: RouteAttrs,
        nlri: NlriIter<'_>,
        looped: bool,
        st: &mut UpdateStats,
    ) {
        let id = self.attrs.intern(attrs);
        // The UPDATE holds its own reference while it is applied: withdrawing what the peer
        // sent before for a prefix may drop the last other reference to this very set (the
        // same attributes sent again, now filtered), which would free the slot under us.
        self.attrs.incref(id);
        let import = self.import_check(peer);
        for n in nlri {
            if looped {
                st.ignored += 1;
                // RFC 4271 §9.1.2: a looped route is not installed, and replaces (withdraws)
                // what the peer sent before for the prefix.
                self.withdraw(peer, n.prefix, n.path_id);
            } else if import.as_ref().is_some_and(|c| !c.accepts(n.prefix)) {
                // Also replaces what the peer sent before; kept aside for a filter change.
                st.filtered += 1;
                self.withdraw(peer, n.prefix, n.path_id);
                self.filter_out(peer, n.prefix, n.path_id, id);
            } else {
                self.announce(peer, n.prefix, n.path_id, id);
                st.announced += 1;
            }
        }
        self.attrs.decref(id);
    }

    /// Loop checks: our AS in the path more often than the peer may send it (RFC 4271 §9.1.2,
    /// BIRD's `allow local as`); for iBGP, our router id as ORIGINATOR_ID or, on a reflector,
    /// our cluster id in CLUSTER_LIST (RFC 4456 §8).
    fn is_loop(&self, peer: PeerId, a: &PathAttrs) -> bool {
        let Some(info) = self.peer(peer) else {
            return false;
        };
        let own = a.as_path.as_ref().map_or(0, |p| p.count(info.local_as));
        if own > usize::from(info.allow_local_as) {
            return true;
        }
        info.ibgp()
            && (a.originator_id == Some(self.router_id)
                || self.cluster_id.is_some_and(|c| a.cluster_list.contains(&c)))
    }

    /// Adds a prefix this node originates (its blocks, borrowed /32s, static prefixes).
    pub fn originate(&mut self, prefix: IpNet) {
        self.originate_with(prefix, &LocalRoute::default());
    }

    /// Adds (or changes) a prefix this node originates, with communities and an interface.
    /// The interface is kept beside the table (only BGPFilter looks at it), so the attribute
    /// sets of learned routes do not carry a field for it.
    pub fn originate_with(&mut self, prefix: IpNet, route: &LocalRoute) {
        let prefix = prefix.trunc();
        match &route.interface {
            Some(i) => {
                self.local_interfaces.insert(prefix, i.clone());
            }
            None => {
                self.local_interfaces.remove(&prefix);
            }
        }
        if route.communities.is_empty() {
            let id = self.local_attrs;
            return self.announce(PeerId::LOCAL, prefix, 0, id);
        }
        let id = self.attrs.intern(RouteAttrs {
            attrs: PathAttrs {
                origin: Some(Origin::Igp),
                communities: route.communities.standard.clone(),
                large_communities: route.communities.large.clone(),
                ..PathAttrs::default()
            },
            next_hop: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            link_local: None,
        });
        self.announce(PeerId::LOCAL, prefix, 0, id);
    }

    /// Withdraws a prefix this node originated.
    pub fn withdraw_local(&mut self, prefix: IpNet) {
        self.local_interfaces.remove(&prefix.trunc());
        self.withdraw(PeerId::LOCAL, prefix.trunc(), 0);
    }

    /// The interface of a prefix this node originates, if it has one.
    pub fn local_interface(&self, prefix: &IpNet) -> Option<&Arc<str>> {
        self.local_interfaces.get(prefix)
    }
}
