//! Interned attribute sets: every route holds a 4-byte [`AttrId`]; identical sets (all the
//! prefixes of one UPDATE, and every UPDATE that repeats them) share one `Arc<RouteAttrs>`.
//! Reference counts free a set when its last route goes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use brindle_bgp_wire::PathAttrs;

use crate::prefix_key::MixBuild;

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

struct Slot {
    attrs: Option<Arc<RouteAttrs>>,
    refs: u32,
}

#[derive(Default)]
pub(crate) struct AttrStore {
    slots: Vec<Slot>,
    index: HashMap<Arc<RouteAttrs>, u32, MixBuild>,
    free: Vec<u32>,
}

impl AttrStore {
    /// The id of `attrs`, adding it (with no references yet) if new.
    pub fn intern(&mut self, attrs: RouteAttrs) -> AttrId {
        if let Some(&i) = self.index.get(&attrs) {
            return AttrId(i);
        }
        let a = Arc::new(attrs);
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Slot {
                    attrs: Some(a.clone()),
                    refs: 0,
                };
                i
            }
            None => {
                self.slots.push(Slot {
                    attrs: Some(a.clone()),
                    refs: 0,
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(a, i);
        AttrId(i)
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

    /// Frees a set no route uses (e.g. an UPDATE whose prefixes were all ignored).
    pub fn release_if_unused(&mut self, id: AttrId) {
        if self.slots[id.0 as usize].refs == 0 && self.slots[id.0 as usize].attrs.is_some() {
            self.release(id);
        }
    }

    fn release(&mut self, id: AttrId) {
        if let Some(a) = self.slots[id.0 as usize].attrs.take() {
            self.index.remove(&a);
            self.free.push(id.0);
        }
    }

    /// Live attribute sets.
    pub fn len(&self) -> usize {
        self.index.len()
    }
}
