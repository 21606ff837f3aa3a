//! Export policy and Adj-RIB-Out (RFC 4271 §9.1.3, §9.2; RFC 4456 §6 route reflection) with
//! Calico's rules (confd's `bird.cfg.template`, `bird_ipam.cfg.template`,
//! `bird_aggr.cfg.template`):
//! - a node announces what it originates (its blocks, borrowed /32s, service prefixes) to
//!   every peer, with itself as next hop;
//! - iBGP-learned routes never go to iBGP peers (RFC 4271 §9.2), unless this node is a route
//!   reflector: a client's routes go to every iBGP peer, a non-client's to clients only, with
//!   ORIGINATOR_ID and CLUSTER_LIST set and the next hop unchanged (RFC 4456 §6, §8);
//! - learned routes inside the exported pools go to eBGP peers (BIRD's
//!   `calico_export_to_bgp_peers` accepts any route inside a pool), and eBGP-learned ones in
//!   the pools to iBGP peers;
//! - eBGP: our AS prepended, no LOCAL_PREF, no MED from elsewhere, next hop self unless
//!   `next hop keep` (Calico's `keepOriginalNextHop` / `nextHopMode: Keep`); iBGP: LOCAL_PREF
//!   100 unless the route has one, next hop unchanged for learned routes unless `next hop
//!   self`.
//!
//! - a peer's export BGPFilters come first ([`crate::filter`]): `Reject` drops the route,
//!   `Accept` sends it whatever Calico's rules say (without the prefix-advertisement
//!   communities, which BIRD adds inside those rules), no match leaves it to Calico's rules;
//! - what we originate carries its prefix-advertisement communities.
//!
//! [`export_route`] decides one prefix for one peer (incremental export after RIB changes);
//! [`desired`] the whole set (a session comes up); [`AdjRibOut`] remembers what was sent and
//! packs the difference into UPDATEs.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use brindle_bgp_wire::{AsPath, Ctx, Family, MpNextHop, Origin, PathAttrs, UpdatePacker};
use ipnet::IpNet;

use crate::attr_store::RouteAttrs;
use crate::filter::{self, Action, BgpFilter, Direction, RouteFacts, Verdict};
use crate::rib::{PeerId, PeerInfo, Rib};

/// Which next hop a peer gets (Calico's BGPPeer `nextHopMode`, BIRD `next hop self|keep`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum NextHopMode {
    /// Self for eBGP peers and for what we originate; unchanged for learned routes to iBGP
    /// peers (BIRD's default).
    #[default]
    Auto,
    /// Always our address (`next hop self`).
    SetSelf,
    /// Unchanged for learned routes, eBGP too (`next hop keep`, `keepOriginalNextHop`).
    Keep,
}

/// Who a route is exported to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportTarget {
    pub peer_addr: IpAddr,
    pub local_as: u32,
    pub remote_as: u32,
    /// Our address on the session, used as next hop for its family.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Our IPv6 address, for IPv6 routes (MP_REACH next hop).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Our link-local address on the peer's link, sent after the global one when we are the
    /// next hop (RFC 2545 §3: the peer shares a subnet with us); `None` for a peer reached
    /// through a router.
    pub next_hop_v6_link_local: Option<Ipv6Addr>,
    /// Families negotiated with the peer.
    pub families: Vec<Family>,
    /// The peer is our route-reflector client (RFC 4456); needs a cluster id on the RIB.
    pub rr_client: bool,
    pub next_hop: NextHopMode,
    /// The peer's BGPFilters, in order (their export rules apply here).
    pub filters: Arc<[BgpFilter]>,
}

impl ExportTarget {
    pub fn ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }

    /// True if learned routes may reach this peer at all (so RIB changes of learned routes
    /// need looking at for it).
    pub fn takes_learned(&self, rib: &Rib, policy: &ExportPolicy) -> bool {
        !policy.learned_to_ebgp.is_empty()
            || (self.ibgp() && rib.cluster_id().is_some())
            || self.filters.iter().any(|f| {
                f.export_v4
                    .iter()
                    .chain(&f.export_v6)
                    .any(|r| r.action == Action::Accept)
            })
    }
}

/// Node-wide export policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportPolicy {
    /// Learned routes inside these prefixes (the IP pools with BGP export on) are re-advertised
    /// to eBGP peers, and eBGP-learned ones to iBGP peers, as Calico's
    /// `if (net ~ <pool>) then accept` does for them.
    pub learned_to_ebgp: Vec<IpNet>,
}

/// The attributes of one exported route, with the family and MP next hop it needs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OutAttrs {
    pub family: Family,
    pub attrs: PathAttrs,
    pub mp_next_hop: Option<MpNextHop>,
}

fn family_of(p: &IpNet) -> Family {
    match p {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}

/// How a route leaves: ours (with or without its prefix-advertisement communities), learned
/// as is (eBGP-learned to iBGP, or to eBGP), or reflected.
enum Out<'a> {
    Local(&'a RouteAttrs, bool),
    Plain(&'a RouteAttrs),
    Reflected(&'a RouteAttrs, &'a PeerInfo, Ipv4Addr),
}

/// Attributes for a route we send (`None`: the family is not negotiated or we have no next
/// hop of that family).
fn out_attrs(t: &ExportTarget, prefix: &IpNet, out: Out<'_>) -> Option<OutAttrs> {
    let family = family_of(prefix);
    if !t.families.contains(&family) {
        return None;
    }
    let (mut a, original_nh) = match &out {
        Out::Plain(r) | Out::Reflected(r, ..) => (
            PathAttrs {
                originator_id: None,
                cluster_list: Vec::new(),
                ..r.attrs.clone()
            },
            Some((r.next_hop, r.link_local)),
        ),
        Out::Local(r, communities) => (
            PathAttrs {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::default()),
                communities: if *communities {
                    r.attrs.communities.clone()
                } else {
                    Vec::new()
                },
                large_communities: if *communities {
                    r.attrs.large_communities.clone()
                } else {
                    Vec::new()
                },
                ..PathAttrs::default()
            },
            None,
        ),
    };
    if t.ibgp() {
        a.local_pref = Some(a.local_pref.unwrap_or(100));
        if let Out::Reflected(r, from, cluster) = &out {
            // RFC 4456 §8: ORIGINATOR_ID names the route's originator in the AS (kept if
            // set); our cluster id goes in front of the CLUSTER_LIST.
            a.originator_id = Some(r.attrs.originator_id.unwrap_or(from.router_id));
            a.cluster_list = std::iter::once(*cluster)
                .chain(r.attrs.cluster_list.iter().copied())
                .collect();
        }
    } else {
        a.as_path = Some(a.as_path.unwrap_or_default().prepend(t.local_as));
        // RFC 4271 §5.1.4/§5.1.5: MED from elsewhere and LOCAL_PREF stay in the AS.
        a.local_pref = None;
        a.med = None;
    }
    let keep = match t.next_hop {
        NextHopMode::Keep => true,
        NextHopMode::SetSelf => false,
        NextHopMode::Auto => t.ibgp(),
    };
    let nh = original_nh.filter(|_| keep);
    let mp_next_hop = match family {
        Family::IPV4_UNICAST => {
            a.next_hop = Some(match nh {
                Some((IpAddr::V4(orig), _)) => orig,
                _ => t.next_hop_v4?,
            });
            None
        }
        _ => {
            a.next_hop = None;
            Some(match nh {
                // Someone else's next hop: its link-local address is of no use on our link.
                Some((IpAddr::V6(global), _)) => MpNextHop::V6 {
                    global,
                    link_local: None,
                },
                _ => MpNextHop::V6 {
                    global: t.next_hop_v6?,
                    link_local: t.next_hop_v6_link_local,
                },
            })
        }
    };
    Some(OutAttrs {
        family,
        attrs: a,
        mp_next_hop,
    })
}

/// What `t` should hold for `prefix` whose best path is `source`'s with `attrs`.
fn route_for(
    rib: &Rib,
    t: &ExportTarget,
    policy: &ExportPolicy,
    prefix: &IpNet,
    source: PeerId,
    attrs: &RouteAttrs,
) -> Option<OutAttrs> {
    let verdict = |learned: bool, interface: Option<&str>| {
        if t.filters.is_empty() {
            return None;
        }
        let facts = RouteFacts {
            prefix: *prefix,
            learned,
            interface,
        };
        filter::evaluate(&t.filters, Direction::Export, &facts)
    };
    if source == PeerId::LOCAL {
        return match verdict(false, rib.local_interface(prefix).map(|i| &**i)) {
            Some(Verdict::Accept) => out_attrs(t, prefix, Out::Local(attrs, false)),
            Some(_) => None,
            None => out_attrs(t, prefix, Out::Local(attrs, true)),
        };
    }
    let from = rib.peer(source)?;
    if from.addr == t.peer_addr {
        return None;
    }
    // BGP's rules before any filter (BIRD checks them before running the export filter).
    let out = match (t.ibgp(), from.ibgp()) {
        (true, true) => {
            let cluster = rib.cluster_id()?;
            // RFC 4456 §6: a client's routes go to everyone, a non-client's to clients.
            if !(from.rr_client || t.rr_client) {
                return None;
            }
            Out::Reflected(attrs, from, cluster)
        }
        _ => Out::Plain(attrs),
    };
    match verdict(true, from.interface.as_deref()) {
        Some(Verdict::Accept) => out_attrs(t, prefix, out),
        Some(_) => None,
        None => {
            let in_pool = || policy.learned_to_ebgp.iter().any(|p| p.contains(prefix));
            if matches!(out, Out::Reflected(..)) || in_pool() {
                out_attrs(t, prefix, out)
            } else {
                None
            }
        }
    }
}

/// What `t` should hold for `prefix` now (`None`: nothing, withdraw if sent).
pub fn export_route(rib: &Rib, t: &ExportTarget, policy: &ExportPolicy, prefix: IpNet) -> Option<OutAttrs> {
    let (source, attrs) = rib.best_path(prefix)?;
    route_for(rib, t, policy, &prefix, source, attrs)
}

/// Computes exports for one peer over many prefixes, sharing one `Arc<OutAttrs>` per
/// attribute set and source (every prefix of a learned UPDATE exports the same attributes).
pub struct Exporter<'a> {
    rib: &'a Rib,
    t: &'a ExportTarget,
    policy: &'a ExportPolicy,
    cache: HashMap<(usize, PeerId, Family), Option<Arc<OutAttrs>>>,
}

impl<'a> Exporter<'a> {
    pub fn new(rib: &'a Rib, t: &'a ExportTarget, policy: &'a ExportPolicy) -> Exporter<'a> {
        Exporter {
            rib,
            t,
            policy,
            cache: HashMap::new(),
        }
    }

    fn route(&mut self, prefix: IpNet, source: PeerId, attrs: &Arc<RouteAttrs>) -> Option<Arc<OutAttrs>> {
        let (rib, t, policy) = (self.rib, self.t, self.policy);
        // Local routes and reflection do not depend on the prefix; pool membership does.
        let key = (Arc::as_ptr(attrs) as usize, source, family_of(&prefix));
        // Export filters look at the prefix.
        let prefix_free = t.filters.is_empty()
            && (source == PeerId::LOCAL || (t.ibgp() && rib.peer(source).is_some_and(|p| p.ibgp())));
        if prefix_free && let Some(hit) = self.cache.get(&key) {
            return hit.clone();
        }
        let out = route_for(rib, t, policy, &prefix, source, attrs).map(Arc::new);
        if prefix_free {
            self.cache.insert(key, out.clone());
        }
        out
    }

    /// What the peer should hold for `prefix`.
    pub fn prefix(&mut self, prefix: IpNet) -> Option<Arc<OutAttrs>> {
        let (source, attrs) = self.rib.best_path(prefix)?;
        let attrs = attrs.clone();
        self.route(prefix, source, &attrs)
    }

    /// Everything the peer should hold.
    pub fn all(&mut self) -> BTreeMap<IpNet, Arc<OutAttrs>> {
        let mut out = BTreeMap::new();
        let rib = self.rib;
        let learned_ok = self.t.takes_learned(rib, self.policy);
        let mut found: Vec<(IpNet, PeerId, Arc<RouteAttrs>)> = Vec::new();
        rib.for_each_best(|p, source, attrs| {
            if learned_ok || source == PeerId::LOCAL {
                found.push((p, source, attrs.clone()));
            }
        });
        for (p, source, attrs) in found {
            if let Some(a) = self.route(p, source, &attrs) {
                out.insert(p, a);
            }
        }
        out
    }
}

/// Everything `t` should hold from us right now.
pub fn desired(rib: &Rib, t: &ExportTarget, policy: &ExportPolicy) -> BTreeMap<IpNet, Arc<OutAttrs>> {
    Exporter::new(rib, t, policy).all()
}

/// What we have sent to one peer, changes queued for it, and the UPDATEs that carry them.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    sent: BTreeMap<IpNet, Arc<OutAttrs>>,
    pending: BTreeMap<IpNet, Option<Arc<OutAttrs>>>,
}

impl AdjRibOut {
    pub fn new() -> AdjRibOut {
        AdjRibOut::default()
    }

    pub fn sent(&self) -> &BTreeMap<IpNet, Arc<OutAttrs>> {
        &self.sent
    }

    /// Queues `prefix` to become `want` (nothing queued if that is what was sent).
    pub fn set(&mut self, prefix: IpNet, want: Option<Arc<OutAttrs>>) {
        if self.sent.get(&prefix) == want.as_ref() {
            self.pending.remove(&prefix);
        } else {
            self.pending.insert(prefix, want);
        }
    }

    /// True if changes wait for [`AdjRibOut::flush`].
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Queues whatever turns what was sent into `desired`, then flushes.
    pub fn sync(&mut self, desired: BTreeMap<IpNet, Arc<OutAttrs>>, ctx: &Ctx) -> Vec<u8> {
        let gone: Vec<IpNet> = self
            .sent
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        for p in gone {
            self.set(p, None);
        }
        for (p, a) in desired {
            self.set(p, Some(a));
        }
        self.flush(ctx)
    }

    /// Encodes the queued withdrawals, then the announcements packed per attribute set;
    /// returns the messages back to back (empty if nothing changed).
    pub fn flush(&mut self, ctx: &Ctx) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut withdraw: BTreeMap<Family, Vec<IpNet>> = BTreeMap::new();
        let mut announce: HashMap<Arc<OutAttrs>, Vec<IpNet>> = HashMap::new();
        for (p, want) in std::mem::take(&mut self.pending) {
            match want {
                None => {
                    self.sent.remove(&p);
                    withdraw.entry(family_of(&p)).or_default().push(p);
                }
                Some(a) => {
                    self.sent.insert(p, a.clone());
                    announce.entry(a).or_default().push(p);
                }
            }
        }
        for (fam, list) in withdraw {
            let mut w = UpdatePacker::withdraw(ctx, fam);
            list.into_iter().for_each(|p| w.push_prefix(p));
            bytes.extend(w.finish());
        }
        let mut groups: Vec<_> = announce.into_iter().collect();
        groups.sort_by_key(|(_, v)| v[0]);
        for (a, list) in groups {
            let mut p = UpdatePacker::announce(ctx, a.family, &a.attrs, a.mp_next_hop);
            list.into_iter().for_each(|x| p.push_prefix(x));
            bytes.extend(p.finish());
        }
        bytes
    }

    /// Forgets what was sent and queued (session down): the next sync sends everything.
    pub fn reset(&mut self) {
        self.sent.clear();
        self.pending.clear();
    }
}
