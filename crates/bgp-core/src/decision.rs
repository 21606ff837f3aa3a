//! The decision process of RFC 4271 §9.1.2.2 (with RFC 4456 §9 for reflected routes), as a
//! "is `a` better than `b`" comparison over two candidate paths.

use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr};

use crate::attr_store::RouteAttrs;

/// What the decision needs about the peer a path came from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Source {
    pub local: bool,
    pub ibgp: bool,
    pub router_id: Ipv4Addr,
    pub addr: IpAddr,
}

/// RFC 4271 §5.1.5: LOCAL_PREF of eBGP routes is set by local policy; BIRD's default is 100.
const DEFAULT_LOCAL_PREF: u32 = 100;

/// `Less` when `a` is preferred.
pub(crate) fn compare(a: (&RouteAttrs, Source, u32), b: (&RouteAttrs, Source, u32)) -> Ordering {
    let ((ra, sa, pa), (rb, sb, pb)) = (a, b);
    // Locally originated routes win, as BIRD's static protocol (preference 200) beats BGP (100).
    sb.local
        .cmp(&sa.local)
        // a) highest LOCAL_PREF
        .then_with(|| {
            let lp = |r: &RouteAttrs| r.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF);
            lp(rb).cmp(&lp(ra))
        })
        // b) shortest AS_PATH
        .then_with(|| {
            let len = |r: &RouteAttrs| r.attrs.as_path.as_ref().map_or(0, |p| p.route_len());
            len(ra).cmp(&len(rb))
        })
        // c) lowest ORIGIN
        .then_with(|| ra.attrs.origin.cmp(&rb.attrs.origin))
        // d) lowest MED, only between routes from the same neighbouring AS; missing = 0
        .then_with(|| {
            let first = |r: &RouteAttrs| r.attrs.as_path.as_ref().and_then(|p| p.first_as());
            if first(ra) == first(rb) {
                ra.attrs.med.unwrap_or(0).cmp(&rb.attrs.med.unwrap_or(0))
            } else {
                Ordering::Equal
            }
        })
        // e) eBGP over iBGP
        .then_with(|| sa.ibgp.cmp(&sb.ibgp))
        // f) IGP cost to the next hop: not tracked (Calico's next hops are directly connected)
        // g) lowest BGP identifier, ORIGINATOR_ID for reflected routes (RFC 4456 §9)
        .then_with(|| {
            let id = |r: &RouteAttrs, s: Source| u32::from(r.attrs.originator_id.unwrap_or(s.router_id));
            id(ra, sa).cmp(&id(rb, sb))
        })
        // RFC 4456 §9: shorter CLUSTER_LIST
        .then_with(|| ra.attrs.cluster_list.len().cmp(&rb.attrs.cluster_list.len()))
        // h) lowest peer address
        .then_with(|| sa.addr.cmp(&sb.addr))
        // ADD-PATH: several paths from one peer, lowest path identifier
        .then_with(|| pa.cmp(&pb))
}
