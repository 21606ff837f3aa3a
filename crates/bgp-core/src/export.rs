//! Export policy and Adj-RIB-Out (RFC 4271 §9.1.3, §9.2) with Calico's rules (calico.md §5.2):
//! a node announces what it originates (its blocks, borrowed /32s, configured static/service
//! prefixes) with itself as next hop; routes learned over iBGP are never sent to iBGP peers
//! (RFC 4271 §9.2); learned routes inside exported pools may go to eBGP peers (BIRD's
//! `calico_export_to_bgp_peers` accepts any route inside a pool). Route-reflector clients
//! (RFC 4456) get learned routes through [`ExportTarget::rr_client`], which the follow-up
//! implements; today it is refused loudly by the speaker's config validation.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use brindle_bgp_wire::{AsPath, Ctx, Family, MpNextHop, Origin, PathAttrs, UpdatePacker};
use ipnet::IpNet;

use crate::rib::Rib;

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
    /// Families negotiated with the peer.
    pub families: Vec<Family>,
    /// Reserved for route reflection (RFC 4456): iBGP-learned routes may go to clients.
    pub rr_client: bool,
}

impl ExportTarget {
    pub fn ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}

/// Node-wide export policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportPolicy {
    /// Learned routes inside these prefixes (the IP pools with BGP export on) are re-advertised
    /// to eBGP peers, as Calico's `if (net ~ <pool>) then accept` does for them.
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

/// Attributes for a route we send: next hop self; iBGP gets LOCAL_PREF 100 and the path as is,
/// eBGP gets our AS prepended and no LOCAL_PREF (RFC 4271 §5.1.2, §5.1.5).
fn out_attrs(t: &ExportTarget, prefix: &IpNet, learned: Option<&PathAttrs>) -> Option<OutAttrs> {
    let family = family_of(prefix);
    if !t.families.contains(&family) {
        return None;
    }
    let mut a = match learned {
        Some(l) => PathAttrs {
            local_pref: None,
            originator_id: None,
            cluster_list: Vec::new(),
            ..l.clone()
        },
        None => PathAttrs {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            ..PathAttrs::default()
        },
    };
    if t.ibgp() {
        a.local_pref = Some(learned.and_then(|l| l.local_pref).unwrap_or(100));
    } else {
        a.as_path = Some(a.as_path.unwrap_or_default().prepend(t.local_as));
        a.med = None;
    }
    let mp_next_hop = match family {
        Family::IPV4_UNICAST => {
            a.next_hop = Some(t.next_hop_v4?);
            None
        }
        _ => {
            a.next_hop = None;
            Some(MpNextHop::V6 {
                global: t.next_hop_v6?,
                link_local: None,
            })
        }
    };
    Some(OutAttrs {
        family,
        attrs: a,
        mp_next_hop,
    })
}

/// Everything `t` should hold from us right now.
pub fn desired(rib: &Rib, t: &ExportTarget, policy: &ExportPolicy) -> BTreeMap<IpNet, OutAttrs> {
    let mut out = BTreeMap::new();
    for p in rib.originated() {
        if let Some(a) = out_attrs(t, &p, None) {
            out.insert(p, a);
        }
    }
    let learned_ok = !t.ibgp() || t.rr_client;
    if learned_ok && (t.rr_client || !policy.learned_to_ebgp.is_empty()) {
        for r in rib.best_routes() {
            if r.peer == t.peer_addr || out.contains_key(&r.prefix) {
                continue;
            }
            let in_pool = policy.learned_to_ebgp.iter().any(|p| p.contains(&r.prefix));
            if !in_pool {
                continue;
            }
            if let Some(a) = out_attrs(t, &r.prefix, Some(&r.attrs.attrs)) {
                out.insert(r.prefix, a);
            }
        }
    }
    out
}

/// What we have sent to one peer, and the minimal UPDATEs to move it to a new desired set.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    sent: BTreeMap<IpNet, OutAttrs>,
}

impl AdjRibOut {
    pub fn new() -> AdjRibOut {
        AdjRibOut::default()
    }

    pub fn sent(&self) -> &BTreeMap<IpNet, OutAttrs> {
        &self.sent
    }

    /// Encodes withdrawals and announcements that turn what was sent into `desired`, packed per
    /// attribute set; returns the messages back to back (empty if nothing changed).
    pub fn sync(&mut self, desired: BTreeMap<IpNet, OutAttrs>, ctx: &Ctx) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut withdraw: HashMap<Family, Vec<IpNet>> = HashMap::new();
        for p in self.sent.keys() {
            if !desired.contains_key(p) {
                withdraw.entry(family_of(p)).or_default().push(*p);
            }
        }
        let mut announce: HashMap<&OutAttrs, Vec<IpNet>> = HashMap::new();
        for (p, a) in &desired {
            if self.sent.get(p) != Some(a) {
                announce.entry(a).or_default().push(*p);
            }
        }
        let mut fams: Vec<_> = withdraw.into_iter().collect();
        fams.sort_by_key(|(f, _)| *f);
        for (fam, list) in fams {
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
        self.sent = desired;
        bytes
    }

    /// Forgets what was sent (session down): the next sync sends everything.
    pub fn reset(&mut self) {
        self.sent.clear();
    }
}
