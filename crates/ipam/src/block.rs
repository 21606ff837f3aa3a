//! Calico's allocation block (`/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24`) and the
//! pure operations on it.
//!
//! The JSON is Calico's backend model, field for field: `allocations` has one slot per address
//! (null = free, else an index into `attributes`); `unallocated` lists the free ordinals in the
//! order they will be handed out; new addresses come from the **front** of that list and
//! released ones go to its **end**, so an address is reused only after the rest of the block
//! has been cycled. `sequenceNumber` starts at the creation time in nanoseconds and is bumped
//! on every write; each allocation records the block's number at the time it was made
//! (`sequenceNumberForAllocation`), which lets a release prove it is about the same allocation
//! and not a later one of the same address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub use brindle_model::ipam::{AllocationAttribute, AllocationBlock, attr};

use crate::cidr;
use crate::error::{IpamError, Result};

/// What IPAM reads of an allocation's attribute.
pub trait AttributeOps {
    /// The handle with anything from a `\r` on cut off (Calico's `sanitizeHandle`: old
    /// host-local migrations wrote handles with trailing `\r\n`).
    fn handle(&self) -> Option<&str>;
    /// One owner attribute (`node`, `pod`, …).
    fn get(&self, key: &str) -> Option<&str>;
}

impl AttributeOps for AllocationAttribute {
    fn handle(&self) -> Option<&str> {
        self.handle_id.as_deref().map(sanitize_handle)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.active_owner_attrs.get(key).map(String::as_str)
    }
}

/// Calico's `sanitizeHandle`.
pub fn sanitize_handle(h: &str) -> &str {
    h.split('\r').next().unwrap_or(h)
}

/// One address to release from a block, with the optional proofs a careful caller gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRequest {
    pub addr: IpAddr,
    /// Release only if the address is held by this handle.
    pub handle: Option<String>,
    /// Release only if the allocation has this sequence number.
    pub sequence: Option<u64>,
}

/// What a release did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Released {
    /// Addresses that were asked for but were not allocated.
    pub unallocated: Vec<IpAddr>,
    /// Addresses released, per handle (for decrementing the handles).
    pub by_handle: BTreeMap<String, usize>,
    /// How many addresses were released.
    pub count: usize,
}

/// The pure operations on a block (the data type is the model's, Calico's JSON).
pub trait BlockOps {
    /// The affinity string, if any (`host:<node>`), taking old `hostAffinity` data into account.
    fn affinity_str(&self) -> Option<String>;
    /// Free addresses (the length of the free list, as Calico counts them).
    fn num_free(&self) -> usize;
    fn contains(&self, addr: IpAddr) -> bool;
    /// The address at `ordinal` (< the block size).
    fn addr_at(&self, ordinal: usize) -> IpAddr;
    /// The ordinal of `addr`, or [`IpamError::Invalid`] if it is not in this block.
    fn ordinal_of(&self, addr: IpAddr) -> Result<usize>;
    /// The attributes of an allocated address (`None` if free).
    fn attributes_of(&self, addr: IpAddr) -> Option<&AllocationAttribute>;
    /// The sequence number recorded for the allocation at `ordinal` (0 if none, as Calico).
    fn sequence_of(&self, ordinal: usize) -> u64;
    /// Every allocated address with its attributes, in ordinal order.
    fn allocated(&self) -> impl Iterator<Item = (usize, IpAddr, Option<&AllocationAttribute>)>;
    /// Must be called on every write of the block (Calico's `updateBlock`).
    fn bump_sequence(&mut self);
    /// Takes up to `num` addresses from the front of the free list.
    fn auto_assign(
        &mut self,
        num: usize,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Vec<usize>;
    /// Allocates one specific address.
    fn assign(
        &mut self,
        addr: IpAddr,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Result<usize>;
    /// Releases addresses, all proofs checked first.
    fn release(&mut self, reqs: &[ReleaseRequest]) -> Result<Released>;
    /// Releases every address held by `handle`.
    fn release_by_handle(&mut self, handle: &str, seq: Option<u64>) -> usize;
    /// The ordinals held by `handle`, in order.
    fn ordinals_of_handle(&self, handle: &str) -> Vec<usize>;
    /// Internal-consistency problems (empty when the block is sound).
    fn consistency_problems(&self) -> Vec<String>;
}

impl BlockOps for AllocationBlock {
    /// The affinity string, if any (`host:<node>`), taking old `hostAffinity` data into account.
    fn affinity_str(&self) -> Option<String> {
        self.affinity
            .clone()
            .or_else(|| self.host_affinity.as_ref().map(|h| format!("host:{h}")))
    }

    fn num_free(&self) -> usize {
        self.unallocated.len()
    }

    fn contains(&self, addr: IpAddr) -> bool {
        self.cidr.contains(&addr)
    }

    fn addr_at(&self, ordinal: usize) -> IpAddr {
        cidr::addr_at(&self.cidr, ordinal)
    }

    /// The ordinal of `addr`, or [`IpamError::Invalid`] if it is not in this block.
    fn ordinal_of(&self, addr: IpAddr) -> Result<usize> {
        cidr::ordinal(&self.cidr, addr)
            .filter(|o| *o < self.allocations.len())
            .ok_or_else(|| IpamError::Invalid(format!("IP {addr} is not in block {}", self.cidr)))
    }

    /// The attributes of an allocated address (`None` if free).
    fn attributes_of(&self, addr: IpAddr) -> Option<&AllocationAttribute> {
        let o = cidr::ordinal(&self.cidr, addr)?;
        let idx = (*self.allocations.get(o)?)?;
        self.attributes.get(idx)
    }

    /// The sequence number recorded for the allocation at `ordinal` (0 if none, as Calico).
    fn sequence_of(&self, ordinal: usize) -> u64 {
        self.sequence_number_for_allocation
            .get(&ordinal.to_string())
            .copied()
            .unwrap_or(0)
    }

    /// Every allocated address with its attributes, in ordinal order.
    fn allocated(&self) -> impl Iterator<Item = (usize, IpAddr, Option<&AllocationAttribute>)> {
        self.allocations
            .iter()
            .enumerate()
            .filter_map(|(o, a)| a.map(|idx| (o, self.addr_at(o), self.attributes.get(idx))))
    }

    /// Must be called on every write of the block (Calico's `updateBlock`): a CAS on the
    /// datastore revision protects the write, the bump makes every version distinguishable.
    fn bump_sequence(&mut self) {
        self.sequence_number = self.sequence_number.wrapping_add(1);
    }

    /// Takes up to `num` addresses from the front of the free list. Returns their ordinals in
    /// the order taken (fewer than `num` when the block runs out).
    fn auto_assign(
        &mut self,
        num: usize,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Vec<usize> {
        let take = num.min(self.unallocated.len());
        if take == 0 {
            return Vec::new();
        }
        let idx = find_or_add_attribute(self, handle, attrs);
        let taken: Vec<usize> = self.unallocated.drain(..take).collect();
        for &o in &taken {
            self.allocations[o] = Some(idx);
            self.sequence_number_for_allocation
                .insert(o.to_string(), self.sequence_number);
        }
        taken
    }

    /// Allocates one specific address.
    fn assign(
        &mut self,
        addr: IpAddr,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Result<usize> {
        let o = self.ordinal_of(addr)?;
        if let Some(idx) = self.allocations[o] {
            return Err(IpamError::AlreadyAssigned {
                addr,
                handle: self
                    .attributes
                    .get(idx)
                    .and_then(|a| a.handle().map(str::to_string)),
            });
        }
        let idx = find_or_add_attribute(self, handle, attrs);
        self.allocations[o] = Some(idx);
        self.unallocated.retain(|u| *u != o);
        self.sequence_number_for_allocation
            .insert(o.to_string(), self.sequence_number);
        Ok(o)
    }

    /// Releases addresses. Every proof (handle, sequence number) is checked first: if one does
    /// not hold, nothing is released and the error names the address. Addresses not allocated
    /// are reported in [`Released::unallocated`].
    fn release(&mut self, reqs: &[ReleaseRequest]) -> Result<Released> {
        let mut out = Released::default();
        let mut ordinals = BTreeSet::new();
        for r in reqs {
            let o = self.ordinal_of(r.addr)?;
            let Some(idx) = self.allocations[o] else {
                if !out.unallocated.contains(&r.addr) {
                    out.unallocated.push(r.addr);
                }
                continue;
            };
            if let Some(seq) = r.sequence {
                let actual = self.sequence_of(o);
                if seq != actual {
                    return Err(IpamError::StaleSequence {
                        addr: r.addr,
                        requested: seq,
                        actual,
                    });
                }
            }
            let held = self.attributes.get(idx).and_then(|a| a.handle()).unwrap_or("");
            if let Some(h) = r.handle.as_deref().map(sanitize_handle)
                && !h.is_empty()
                && h != held
            {
                return Err(IpamError::HandleMismatch {
                    addr: r.addr,
                    requested: h.to_string(),
                    actual: if held.is_empty() {
                        "<none>".into()
                    } else {
                        held.into()
                    },
                });
            }
            ordinals.insert(o);
        }
        for &o in &ordinals {
            let idx = self.allocations[o].expect("checked above");
            if let Some(h) = self.attributes.get(idx).and_then(|a| a.handle()) {
                *out.by_handle.entry(h.to_string()).or_default() += 1;
            }
        }
        let ordinals: Vec<usize> = ordinals.into_iter().collect();
        free_ordinals(self, &ordinals);
        out.count = ordinals.len();
        Ok(out)
    }

    /// Releases every address held by `handle` (optionally only the allocation with sequence
    /// number `seq`). Returns how many were released.
    fn release_by_handle(&mut self, handle: &str, seq: Option<u64>) -> usize {
        let handle = sanitize_handle(handle);
        let ords: Vec<usize> = self
            .ordinals_of_handle(handle)
            .into_iter()
            .filter(|o| seq.is_none_or(|s| s == self.sequence_of(*o)))
            .collect();
        free_ordinals(self, &ords);
        ords.len()
    }

    /// The ordinals held by `handle`, in order.
    fn ordinals_of_handle(&self, handle: &str) -> Vec<usize> {
        let handle = sanitize_handle(handle);
        let idxs: BTreeSet<usize> = self
            .attributes
            .iter()
            .enumerate()
            .filter(|(_, a)| a.handle() == Some(handle))
            .map(|(i, _)| i)
            .collect();
        self.allocations
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_some_and(|i| idxs.contains(&i)))
            .map(|(o, _)| o)
            .collect()
    }

    /// Internal-consistency problems (empty when the block is sound): every ordinal is either
    /// allocated or listed once as free, attribute indexes are valid and all used, sequence
    /// numbers are recorded exactly for allocated ordinals.
    fn consistency_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let len = cidr::block_len(&self.cidr);
        if self.allocations.len() != len {
            p.push(format!(
                "block {} has {} allocation slots, expected {len}",
                self.cidr,
                self.allocations.len()
            ));
            return p;
        }
        let mut seen = vec![false; len];
        for &u in &self.unallocated {
            if u >= len {
                p.push(format!("block {}: free ordinal {u} out of range", self.cidr));
            } else if seen[u] {
                p.push(format!("block {}: ordinal {u} listed twice as free", self.cidr));
            } else if self.allocations[u].is_some() {
                p.push(format!(
                    "block {}: ordinal {u} is both free and allocated",
                    self.cidr
                ));
            } else {
                seen[u] = true;
            }
        }
        for (o, a) in self.allocations.iter().enumerate() {
            match a {
                None if !seen[o] => p.push(format!(
                    "block {}: ordinal {o} ({}) is neither allocated nor free",
                    self.cidr,
                    self.addr_at(o)
                )),
                Some(i) if *i >= self.attributes.len() => p.push(format!(
                    "block {}: ordinal {o} refers to missing attribute {i}",
                    self.cidr
                )),
                Some(_) if !self.sequence_number_for_allocation.contains_key(&o.to_string()) => {
                    p.push(format!("block {}: ordinal {o} has no sequence number", self.cidr))
                }
                _ => {}
            }
        }
        let used: BTreeSet<usize> = self.allocations.iter().flatten().copied().collect();
        if used.len() != self.attributes.len() {
            p.push(format!(
                "block {}: {} attributes but {} in use",
                self.cidr,
                self.attributes.len(),
                used.len()
            ));
        }
        for k in self.sequence_number_for_allocation.keys() {
            if !k
                .parse::<usize>()
                .is_ok_and(|o| o < len && self.allocations[o].is_some())
            {
                p.push(format!(
                    "block {}: sequence number kept for free ordinal {k}",
                    self.cidr
                ));
            }
        }
        p
    }
}

fn find_or_add_attribute(
    b: &mut AllocationBlock,
    handle: Option<&str>,
    attrs: &BTreeMap<String, String>,
) -> usize {
    let want = AllocationAttribute {
        handle_id: handle.map(str::to_string),
        active_owner_attrs: attrs.clone(),
        alternate_owner_attrs: BTreeMap::new(),
    };
    if let Some(i) = b.attributes.iter().position(|a| *a == want) {
        return i;
    }
    b.attributes.push(want);
    b.attributes.len() - 1
}

/// Frees ordinals (appending them to the end of the free list in the given order) and drops
/// attributes nothing refers to any more, re-indexing the rest.
fn free_ordinals(b: &mut AllocationBlock, ords: &[usize]) {
    for &o in ords {
        if b.allocations[o].take().is_some() {
            b.unallocated.push(o);
            b.sequence_number_for_allocation.remove(&o.to_string());
        }
    }
    gc_attributes(b);
}

fn gc_attributes(b: &mut AllocationBlock) {
    let used: BTreeSet<usize> = b.allocations.iter().flatten().copied().collect();
    if used.len() == b.attributes.len() {
        return;
    }
    let mut remap = vec![None; b.attributes.len()];
    let mut kept = Vec::with_capacity(used.len());
    for (i, a) in std::mem::take(&mut b.attributes).into_iter().enumerate() {
        if used.contains(&i) {
            remap[i] = Some(kept.len());
            kept.push(a);
        }
    }
    b.attributes = kept;
    for a in b.allocations.iter_mut().flatten() {
        *a = remap[*a].expect("used attribute kept");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn seed_block() -> AllocationBlock {
        AllocationBlock::new(
            "10.233.94.0/24".parse().unwrap(),
            Some("host:node1".into()),
            None,
            1000,
        )
    }

    fn rel(addr: &str, handle: Option<&str>, seq: Option<u64>) -> ReleaseRequest {
        ReleaseRequest {
            addr: a(addr),
            handle: handle.map(str::to_string),
            sequence: seq,
        }
    }

    #[test]
    fn ordinals_in_order_tunnel_dot_zero_first() {
        // The seed: the node's tunnel address is the first allocation of its first block, so
        // tunl0 gets .0, and the first pod .1 (network and broadcast addresses are usable).
        let mut b = seed_block();
        let tun = b.auto_assign(
            1,
            Some("ipip-tunnel-addr-node1"),
            &attrs(&[("node", "node1"), ("type", "ipipTunnelAddress")]),
        );
        assert_eq!(
            tun.iter().map(|o| b.addr_at(*o)).collect::<Vec<_>>(),
            vec![a("10.233.94.0")]
        );
        let pod = b.auto_assign(
            1,
            Some("k8s-pod-network.c1"),
            &attrs(&[("node", "node1"), ("pod", "p1")]),
        );
        assert_eq!(b.addr_at(pod[0]), a("10.233.94.1"));
        let more = b.auto_assign(3, Some("k8s-pod-network.c2"), &attrs(&[]));
        assert_eq!(more, vec![2, 3, 4]);
        assert_eq!(b.num_free(), 256 - 5);
        assert_eq!(b.unallocated[0], 5);
        assert!(b.consistency_problems().is_empty());
    }

    #[test]
    fn released_ordinals_are_appended_to_the_end() {
        let mut b = seed_block();
        b.auto_assign(3, Some("h"), &attrs(&[]));
        let r = b.release(&[rel("10.233.94.1", None, None)]).unwrap();
        assert_eq!(r.count, 1);
        assert_eq!(r.by_handle.get("h"), Some(&1));
        assert_eq!(*b.unallocated.first().unwrap(), 3);
        assert_eq!(*b.unallocated.last().unwrap(), 1);
        // The next allocation takes .3, not the just-released .1.
        assert_eq!(b.auto_assign(1, Some("h2"), &attrs(&[])), vec![3]);
        assert!(b.consistency_problems().is_empty());
    }

    #[test]
    fn attributes_are_shared_and_collected_by_refcount() {
        let mut b = seed_block();
        let x = attrs(&[("pod", "x")]);
        b.auto_assign(2, Some("hx"), &x);
        b.auto_assign(1, Some("hy"), &attrs(&[("pod", "y")]));
        b.auto_assign(1, Some("hx"), &x); // identical attribute reused
        assert_eq!(b.attributes.len(), 2);
        b.release(&[rel("10.233.94.0", None, None), rel("10.233.94.1", None, None)])
            .unwrap();
        // hx still holds .3, so its attribute stays.
        assert_eq!(b.attributes.len(), 2);
        b.release(&[rel("10.233.94.3", None, None)]).unwrap();
        assert_eq!(b.attributes.len(), 1);
        assert_eq!(b.attributes[0].handle(), Some("hy"));
        // Indexes were rewritten: .2 now points at attribute 0.
        assert_eq!(b.allocations[2], Some(0));
        assert!(b.consistency_problems().is_empty());
    }

    #[test]
    fn stale_release_after_reuse_is_refused() {
        let mut b = AllocationBlock::new("10.0.0.0/30".parse().unwrap(), Some("host:n".into()), None, 7);
        // Allocate .0 and remember its sequence number, as `ipam check` would.
        let o = b.auto_assign(1, Some("old"), &attrs(&[]))[0];
        let old_seq = b.sequence_of(o);
        b.bump_sequence(); // the write
        // Released, the block cycles, and .0 is handed out again to a new owner.
        b.release(&[rel("10.0.0.0", None, None)]).unwrap();
        b.bump_sequence();
        b.auto_assign(3, Some("filler"), &attrs(&[]));
        b.bump_sequence();
        let again = b.auto_assign(1, Some("new"), &attrs(&[]));
        assert_eq!(again, vec![0]);
        b.bump_sequence();
        let before = b.clone();
        // A release based on the old report must not free the new owner's address.
        let err = b
            .release(&[rel("10.0.0.0", Some("old"), Some(old_seq))])
            .unwrap_err();
        assert!(
            matches!(err, IpamError::StaleSequence { requested, .. } if requested == old_seq),
            "{err}"
        );
        let err = b.release(&[rel("10.0.0.0", Some("old"), None)]).unwrap_err();
        assert!(matches!(err, IpamError::HandleMismatch { .. }), "{err}");
        assert_eq!(b, before, "a refused release changes nothing");
        // The current owner's proof works.
        let seq = b.sequence_of(0);
        let r = b.release(&[rel("10.0.0.0", Some("new"), Some(seq))]).unwrap();
        assert_eq!(r.count, 1);
    }

    #[test]
    fn a_refused_release_frees_nothing_even_in_a_batch() {
        let mut b = seed_block();
        b.auto_assign(2, Some("h"), &attrs(&[]));
        let before = b.clone();
        let err = b
            .release(&[
                rel("10.233.94.0", Some("h"), None),
                rel("10.233.94.1", Some("other"), None),
            ])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("10.233.94.1 is held by handle h, not other"),
            "{err}"
        );
        assert_eq!(b, before);
    }

    #[test]
    fn releasing_free_addresses_reports_them() {
        let mut b = seed_block();
        b.auto_assign(1, Some("h"), &attrs(&[]));
        let r = b
            .release(&[rel("10.233.94.0", None, None), rel("10.233.94.9", None, None)])
            .unwrap();
        assert_eq!(r.unallocated, vec![a("10.233.94.9")]);
        assert_eq!(r.count, 1);
        assert!(
            b.release(&[rel("10.233.95.1", None, None)]).is_err(),
            "outside the block"
        );
    }

    #[test]
    fn release_by_handle_frees_only_that_handle() {
        let mut b = seed_block();
        b.auto_assign(2, Some("a"), &attrs(&[]));
        b.auto_assign(1, Some("b"), &attrs(&[]));
        b.auto_assign(1, Some("a\r\n"), &attrs(&[("x", "y")])); // malformed old handle
        assert_eq!(b.release_by_handle("a", None), 3);
        assert_eq!(b.in_use_count(), 1);
        assert_eq!(b.attributes_of(a("10.233.94.2")).unwrap().handle(), Some("b"));
        assert_eq!(b.release_by_handle("a", None), 0);
        assert!(b.consistency_problems().is_empty());
    }

    #[test]
    fn assign_specific_address() {
        let mut b = seed_block();
        assert_eq!(b.assign(a("10.233.94.7"), Some("h"), &attrs(&[])).unwrap(), 7);
        assert!(!b.unallocated.contains(&7));
        let err = b.assign(a("10.233.94.7"), Some("h2"), &attrs(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "IP address 10.233.94.7 is already assigned (handle h)"
        );
        // Auto-assign skips it.
        assert_eq!(
            b.auto_assign(8, Some("h3"), &attrs(&[])),
            vec![0, 1, 2, 3, 4, 5, 6, 8]
        );
        assert!(b.consistency_problems().is_empty());
    }

    #[test]
    fn full_block_gives_what_it_has() {
        let mut b = AllocationBlock::new("10.0.0.0/30".parse().unwrap(), None, None, 1);
        assert_eq!(b.auto_assign(10, Some("h"), &attrs(&[])).len(), 4);
        assert!(b.auto_assign(1, Some("h"), &attrs(&[])).is_empty());
        assert_eq!(b.num_free(), 0);
        assert!(!b.is_empty());
    }

    #[test]
    fn ipv6_block_allocates_in_order() {
        let mut b = AllocationBlock::new(
            "fd00:10:233::40/122".parse().unwrap(),
            Some("host:n".into()),
            None,
            1,
        );
        assert_eq!(b.size(), 64);
        let o = b.auto_assign(2, Some("h"), &attrs(&[]));
        assert_eq!(b.addr_at(o[1]), a("fd00:10:233::41"));
        b.release(&[rel("fd00:10:233::40", Some("h"), Some(1))]).unwrap();
        assert_eq!(*b.unallocated.last().unwrap(), 0);
    }

    #[test]
    fn block_json_is_calicos_and_round_trips() {
        let mut b = AllocationBlock::new(
            "10.233.94.0/30".parse().unwrap(),
            Some("host:node1".into()),
            None,
            5,
        );
        b.auto_assign(
            1,
            Some("ipip-tunnel-addr-node1"),
            &attrs(&[("node", "node1"), ("type", "ipipTunnelAddress")]),
        );
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"cidr":"10.233.94.0/30","affinity":"host:node1","allocations":[0,null,null,null],"#,
                r#""unallocated":[1,2,3],"attributes":[{"handle_id":"ipip-tunnel-addr-node1","#,
                r#""secondary":{"node":"node1","type":"ipipTunnelAddress"}}],"sequenceNumber":5,"#,
                r#""sequenceNumberForAllocation":{"0":5},"deleted":false}"#
            )
        );
        let back: AllocationBlock = serde_json::from_str(&json).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn old_calico_block_json_loads() {
        // Pre-sequence-number data with hostAffinity and strictAffinity.
        let json = r#"{"cidr":"10.0.0.0/30","hostAffinity":"n1","strictAffinity":false,
            "allocations":[0,null,null,null],"unallocated":[1,2,3],
            "attributes":[{"handle_id":null,"secondary":null}]}"#;
        let b: AllocationBlock = serde_json::from_str(json).unwrap();
        assert_eq!(b.host(), Some("n1"));
        assert_eq!(b.affinity_str().as_deref(), Some("host:n1"));
        assert_eq!(b.sequence_of(0), 0);
    }

    #[test]
    fn consistency_problems_are_found() {
        let mut b = seed_block();
        b.auto_assign(2, Some("h"), &attrs(&[]));
        b.unallocated.push(1); // .1 both allocated and free
        b.unallocated.retain(|o| *o != 9); // .9 lost
        let p = b.consistency_problems();
        assert!(
            p.iter()
                .any(|m| m.contains("ordinal 1 is both free and allocated")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|m| m.contains("ordinal 9 (10.233.94.9) is neither allocated nor free")),
            "{p:?}"
        );
    }
}
