//! Interned attribute sets: every route holds a 4-byte [`AttrId`]; identical sets (all the
//! prefixes of one UPDATE, and every UPDATE that repeats them) share one `Arc<RouteAttrs>`.
//! Reference counts free a set when its last route goes.
//!
//! The index is keyed by a hash computed once per lookup ([`attrs_hash`], a direct fold over
//! the fields that is several times cheaper than the derived `Hash`), with slots chained per
//! hash, so an UPDATE whose set is new costs one hash, not one for the lookup and one for the
//! insert.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use brindle_bgp_wire::PathAttrs;

use crate::prefix_key::FastBuild;

/// A route's attributes with its next hop resolved for its family (NEXT_HOP for IPv4 unicast,
/// MP_REACH's for the others).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub attrs: PathAttrs,
    pub next_hop: IpAddr,
    /// IPv6 link-local next hop (RFC 2545), when the peer sent one.
    pub link_local: Option<Ipv6Addr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttrId(pub(crate) u32);

const NONE: u32 = u32::MAX;

struct Slot {
    attrs: Option<Arc<RouteAttrs>>,
    refs: u32,
    /// The next slot with the same hash (`NONE` ends the chain).
    next: u32,
    hash: u64,
}

#[derive(Default)]
pub(crate) struct AttrStore {
    slots: Vec<Slot>,
    /// Hash → first slot of its chain.
    index: HashMap<u64, u32, FastBuild>,
    free: Vec<u32>,
    live: usize,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn mix(h: u64, v: u64) -> u64 {
    (h ^ v).wrapping_mul(K).rotate_left(29)
}

fn ip_bits(a: IpAddr) -> (u64, u64) {
    match a {
        IpAddr::V4(a) => (u64::from(u32::from(a)), 4),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64 ^ (v >> 64) as u64, 6)
        }
    }
}

/// A hash of everything equality looks at (so equal sets hash equal), folded field by field.
pub(crate) fn attrs_hash(r: &RouteAttrs) -> u64 {
    let a = &r.attrs;
    let (nh, fam) = ip_bits(r.next_hop);
    let mut h = mix(K, nh);
    h = mix(h, fam | u64::from(r.link_local.is_some()) << 8);
    h = mix(h, a.med.map_or(u64::MAX, u64::from));
    h = mix(h, a.local_pref.map_or(u64::MAX, u64::from));
    h = mix(
        h,
        a.origin.map_or(7, |o| o as u64)
            | u64::from(a.atomic_aggregate) << 4
            | a.next_hop.map_or(0, |n| u64::from(u32::from(n)) << 8),
    );
    if let Some(p) = &a.as_path {
        h = mix(h, 1 + p.segments.len() as u64);
        for s in &p.segments {
            h = mix(h, u64::from(s.kind) << 32 | s.asns.len() as u64);
            for asn in &s.asns {
                h = mix(h, u64::from(*asn));
            }
        }
    }
    if let Some((asn, addr)) = a.aggregator {
        h = mix(h, u64::from(asn) << 32 | u64::from(u32::from(addr)));
    }
    h = mix(h, a.communities.len() as u64);
    for c in &a.communities {
        h = mix(h, u64::from(*c));
    }
    h = mix(
        h,
        a.originator_id.map_or(0, |o| u64::from(u32::from(o)) | 1 << 32),
    );
    h = mix(h, a.cluster_list.len() as u64);
    for c in &a.cluster_list {
        h = mix(h, u64::from(u32::from(*c)));
    }
    h = mix(h, a.large_communities.len() as u64);
    for c in &a.large_communities {
        h = mix(h, u64::from(c[0]) << 32 | u64::from(c[1]));
        h = mix(h, u64::from(c[2]));
    }
    h = mix(h, a.unknown.len() as u64);
    for u in &a.unknown {
        h = mix(
            h,
            u64::from(u.flags) << 8 | u64::from(u.type_code) | (u.value.len() as u64) << 16,
        );
        for c in u.value.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            h = mix(h, u64::from_le_bytes(b));
        }
    }
    // Final avalanche: the map's bucket comes from the low bits.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

impl AttrStore {
    /// The id of `attrs`, adding it (with no references yet) if new.
    pub fn intern(&mut self, attrs: RouteAttrs) -> AttrId {
        let hash = attrs_hash(&attrs);
        let head = self.index.get(&hash).copied().unwrap_or(NONE);
        let mut i = head;
        while i != NONE {
            let s = &self.slots[i as usize];
            if s.attrs.as_deref() == Some(&attrs) {
                return AttrId(i);
            }
            i = s.next;
        }
        let slot = Slot {
            attrs: Some(Arc::new(attrs)),
            refs: 0,
            next: head,
            hash,
        };
        let id = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(hash, id);
        self.live += 1;
        AttrId(id)
    }

    pub fn get(&self, id: AttrId) -> &Arc<RouteAttrs> {
        self.slots[id.0 as usize]
            .attrs
            .as_ref()
            .expect("attribute id of a live route")
    }

    pub fn incref(&mut self, id: AttrId) {
        self.slots[id.0 as usize].refs += 1;
    }

    pub fn decref(&mut self, id: AttrId) {
        let s = &mut self.slots[id.0 as usize];
        s.refs -= 1;
        if s.refs == 0 {
            self.release(id);
        }
    }

    fn release(&mut self, id: AttrId) {
        let (hash, next) = {
            let s = &mut self.slots[id.0 as usize];
            if s.attrs.take().is_none() {
                return;
            }
            (s.hash, std::mem::replace(&mut s.next, NONE))
        };
        // Unlink from its chain.
        let head = self.index.get(&hash).copied().unwrap_or(NONE);
        if head == id.0 {
            if next == NONE {
                self.index.remove(&hash);
            } else {
                self.index.insert(hash, next);
            }
        } else {
            let mut i = head;
            while i != NONE {
                let n = self.slots[i as usize].next;
                if n == id.0 {
                    self.slots[i as usize].next = next;
                    break;
                }
                i = n;
            }
        }
        self.free.push(id.0);
        self.live -= 1;
    }

    /// Live attribute sets.
    pub fn len(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_bgp_wire::{AsPath, Origin};
    use std::net::Ipv4Addr;

    fn set(med: u32) -> RouteAttrs {
        RouteAttrs {
            attrs: PathAttrs {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::sequence(vec![65000, 65001])),
                med: Some(med),
                ..PathAttrs::default()
            },
            next_hop: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            link_local: None,
        }
    }

    #[test]
    fn interning_shares_and_frees() {
        let mut st = AttrStore::default();
        let a = st.intern(set(1));
        assert_eq!(st.intern(set(1)), a);
        let b = st.intern(set(2));
        assert_ne!(a, b);
        st.incref(a);
        st.incref(b);
        assert_eq!(st.len(), 2);
        st.decref(a);
        assert_eq!(st.len(), 1);
        // The freed slot is reused, and b still resolves.
        let c = st.intern(set(3));
        assert_eq!(c, a);
        assert_eq!(st.get(b).attrs.med, Some(2));
        // A set nobody referenced goes with its only (temporary) reference.
        st.incref(c);
        st.decref(c);
        st.decref(b);
        assert_eq!(st.len(), 0);
        assert!(st.index.is_empty());
    }

    #[test]
    fn colliding_hashes_chain() {
        // Force every set into one chain: unlinking from the head, middle and tail.
        let mut st = AttrStore::default();
        let ids: Vec<AttrId> = (0..5)
            .map(|m| {
                let mut r = set(m);
                r.attrs.med = Some(m);
                let hash = 42;
                let head = st.index.get(&hash).copied().unwrap_or(NONE);
                st.slots.push(Slot {
                    attrs: Some(Arc::new(r)),
                    refs: 1,
                    next: head,
                    hash,
                });
                let id = (st.slots.len() - 1) as u32;
                st.index.insert(hash, id);
                st.live += 1;
                AttrId(id)
            })
            .collect();
        for i in [2usize, 4, 0, 3, 1] {
            st.decref(ids[i]);
            let left: Vec<u32> = {
                let mut v = Vec::new();
                let mut j = st.index.get(&42).copied().unwrap_or(NONE);
                while j != NONE {
                    v.push(st.slots[j as usize].attrs.as_ref().unwrap().attrs.med.unwrap());
                    j = st.slots[j as usize].next;
                }
                v
            };
            assert!(!left.contains(&(i as u32)), "{left:?}");
        }
        assert!(st.index.is_empty());
    }

    #[test]
    fn equal_sets_hash_equal() {
        assert_eq!(attrs_hash(&set(5)), attrs_hash(&set(5)));
        assert_ne!(attrs_hash(&set(5)), attrs_hash(&set(6)));
    }
}
