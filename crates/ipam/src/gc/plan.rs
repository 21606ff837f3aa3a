//! The garbage collector's decisions, pure: what the IPAM data and the things that use addresses
//! look like now, what was seen in earlier passes (since when each suspect has been suspect),
//! and the time → what to release. The rules are kube-controllers' (`node/ipam.go`), with
//! WorkloadEndpoints standing in for Kubernetes pods (Brindle's datastores have no pods):
//!
//! - an allocation is *in use* when a WorkloadEndpoint lists its address, or, for a node's
//!   tunnel address (handle `ipip-tunnel-addr-<node>` etc.), while its Node exists;
//! - an allocation without a handle cannot be released by proof and is left alone; one without
//!   a `node` attribute (not made by the CNI plugin) is assumed in use;
//! - any other allocation is a *candidate leak*; it is *confirmed* once it has been a candidate
//!   for the whole grace period (`leakGracePeriod`), or at once when its node is gone too. A
//!   handle's addresses are released only when all of them are confirmed;
//! - an empty block affine to a node that holds another block is released after being empty for
//!   the grace period;
//! - a node that IPAM or a WorkloadEndpoint still names but whose Node resource is gone is
//!   cleaned up after being gone for the grace period (its endpoints' addresses released, its
//!   endpoints, peers and per-node configuration deleted, its affinities given up).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::block::{AllocationBlock, AttributeOps, BlockOps};
use crate::pools;
use crate::resources::{Endpoint, Pool};

/// What one pass reads (one consistent snapshot of the datastore).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub blocks: Vec<AllocationBlock>,
    pub endpoints: Vec<Endpoint>,
    /// The Nodes that exist.
    pub nodes: BTreeSet<String>,
    /// Host affinities: (node, block).
    pub affinities: Vec<(String, IpNet)>,
    pub pools: Vec<Pool>,
}

/// One allocation, with what proves it on release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allocation {
    pub addr: IpAddr,
    pub handle: String,
    pub sequence: u64,
    pub block: IpNet,
    /// The `node` attribute (the tunnel handle's node for tunnel addresses).
    pub node: String,
    /// The pool holding the address (`""` when none does any more).
    pub pool: String,
}

/// What earlier passes saw: since when each suspect has been one (in the controller's clock).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    candidates: BTreeMap<(IpAddr, String, u64), Duration>,
    empty_blocks: BTreeMap<IpNet, Duration>,
    missing_nodes: BTreeMap<String, Duration>,
}

/// What a pass decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Confirmed leaks to release, by address, handle and sequence number.
    pub release: Vec<Allocation>,
    /// Candidates not yet confirmed (for `ipam_allocations_gc_candidates`).
    pub candidates: Vec<Allocation>,
    /// Empty blocks whose node's affinity is no longer needed: (node, block, its sequence).
    pub release_affinities: Vec<(String, IpNet, u64)>,
    /// Nodes gone for the grace period, to clean up after.
    pub clean_nodes: Vec<String>,
    /// Allocations in use / borrowed, by (pool, node), and blocks by (pool, affine node), for
    /// kube-controllers' gauges.
    pub in_use: BTreeMap<(String, String), u64>,
    pub borrowed: BTreeMap<(String, String), u64>,
    pub blocks: BTreeMap<(String, String), u64>,
}

const TUNNEL_HANDLES: [&str; 3] = [
    "ipip-tunnel-addr-",
    "vxlan-tunnel-addr-",
    "wireguard-tunnel-addr-",
];

/// The node of a tunnel address's handle.
/// Since when `key` has been suspect: from an earlier pass, or from `now`.
fn since<K: Ord>(map: &mut BTreeMap<K, Duration>, key: K, now: Duration) -> Duration {
    *map.entry(key).or_insert(now)
}

fn tunnel_node(handle: &str) -> Option<&str> {
    TUNNEL_HANDLES.iter().find_map(|p| handle.strip_prefix(p))
}

/// Decides one pass at `now` (any monotonic clock), updating `tracker`. `grace` zero turns
/// leak collection off (Calico's `leakGracePeriod: 0`); empty blocks and deleted nodes are then
/// still handled, on their second sighting (never on the first).
pub fn plan(seen: &Observed, tracker: &mut Tracker, now: Duration, grace: Duration) -> Plan {
    let mut out = Plan::default();
    let in_use: BTreeSet<IpAddr> = seen
        .endpoints
        .iter()
        .flat_map(|e| e.addrs.iter().copied())
        .collect();
    let pool_name = |addr: IpAddr| {
        pools::containing(&seen.pools, addr)
            .map(|p| p.name.clone())
            .unwrap_or_default()
    };

    // Allocations: in use, candidate or confirmed.
    let mut candidates = BTreeMap::new();
    let mut confirmed: Vec<Allocation> = Vec::new();
    // A handle is released only when every address it holds is confirmed.
    let mut handle_blocked: BTreeSet<String> = BTreeSet::new();
    for b in &seen.blocks {
        let affine = b.host().map(str::to_string);
        let pool_of_block = pool_name(b.cidr.addr());
        *out.blocks
            .entry((
                pool_of_block,
                affine.clone().unwrap_or_else(|| "no_affinity".into()),
            ))
            .or_default() += 1;
        for (ord, addr, attr) in b.allocated() {
            let Some(handle) = attr.and_then(|a| a.handle()).map(str::to_string) else {
                continue;
            };
            let tunnel = tunnel_node(&handle).map(str::to_string);
            let node = tunnel
                .clone()
                .or_else(|| attr.and_then(|a| a.get("node")).map(str::to_string));
            let a = Allocation {
                addr,
                handle: handle.clone(),
                sequence: b.sequence_of(ord),
                block: b.cidr,
                node: node.clone().unwrap_or_default(),
                pool: pool_name(addr),
            };
            let key = (
                a.pool.clone(),
                if a.node.is_empty() {
                    "unknown_node".into()
                } else {
                    a.node.clone()
                },
            );
            *out.in_use.entry(key.clone()).or_default() += 1;
            if node.is_some() && affine.as_deref() != node.as_deref() {
                *out.borrowed.entry(key).or_default() += 1;
            }
            let node_exists = node.as_ref().is_some_and(|n| seen.nodes.contains(n));
            let valid = match (&tunnel, &node) {
                (Some(_), _) => node_exists,
                (None, None) => true,
                (None, Some(_)) => in_use.contains(&addr),
            };
            if valid || grace.is_zero() {
                handle_blocked.insert(handle);
                continue;
            }
            let id = (addr, handle.clone(), a.sequence);
            let first = since(&mut tracker.candidates, id.clone(), now);
            candidates.insert(id, first);
            if !node_exists || now.saturating_sub(first) >= grace {
                confirmed.push(a);
            } else {
                handle_blocked.insert(handle);
                out.candidates.push(a);
            }
        }
    }
    // Candidates seen before and not now are resurrected (or gone): forget them.
    tracker.candidates = candidates;
    for a in confirmed {
        if handle_blocked.contains(&a.handle) {
            out.candidates.push(a);
        } else {
            out.release.push(a);
        }
    }

    // Empty blocks of nodes holding more than one block.
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for (node, _) in &seen.affinities {
        *per_node.entry(node).or_default() += 1;
    }
    let mut empty = BTreeMap::new();
    for b in &seen.blocks {
        let Some(node) = b.host() else { continue };
        if b.allocated().next().is_some()
            || per_node.get(node).copied().unwrap_or(0) < 2
            || !seen.nodes.contains(node)
        {
            continue;
        }
        let first = since(&mut tracker.empty_blocks, b.cidr, now);
        empty.insert(b.cidr, first);
        if now.saturating_sub(first) >= grace.max(Duration::from_nanos(1)) {
            out.release_affinities
                .push((node.to_string(), b.cidr, b.sequence_number));
            // Never a node's last block in one pass.
            if let Some(n) = per_node.get_mut(node) {
                *n -= 1;
            }
        }
    }
    tracker.empty_blocks = empty;

    // Nodes that IPAM or endpoints name but that no longer exist.
    let mut named: BTreeSet<&str> = seen.affinities.iter().map(|(n, _)| n.as_str()).collect();
    named.extend(seen.endpoints.iter().map(|e| e.node.as_str()));
    named.extend(seen.blocks.iter().filter_map(|b| b.host()));
    let mut missing = BTreeMap::new();
    for node in named
        .into_iter()
        .filter(|n| !n.is_empty() && !seen.nodes.contains(*n))
    {
        let first = since(&mut tracker.missing_nodes, node.to_string(), now);
        missing.insert(node.to_string(), first);
        if now.saturating_sub(first) >= grace.max(Duration::from_nanos(1)) {
            out.clean_nodes.push(node.to_string());
        }
    }
    tracker.missing_nodes = missing;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockOps;

    const GRACE: Duration = Duration::from_secs(60);

    fn t(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn block(cidr: &str, node: Option<&str>) -> AllocationBlock {
        AllocationBlock::new(cidr.parse().unwrap(), node.map(|n| format!("host:{n}")), None, 1)
    }

    /// Allocates one address for `handle` on `node` in `b`.
    fn take(b: &mut AllocationBlock, handle: &str, node: Option<&str>) -> IpAddr {
        let mut attrs = BTreeMap::new();
        if let Some(n) = node {
            attrs.insert("node".to_string(), n.to_string());
        }
        let ord = b.auto_assign(1, Some(handle), &attrs)[0];
        b.bump_sequence();
        b.addr_at(ord)
    }

    fn endpoint(node: &str, addr: IpAddr) -> Endpoint {
        Endpoint {
            namespace: "default".into(),
            name: format!("{node}-{addr}"),
            node: node.into(),
            addrs: vec![addr],
        }
    }

    fn observed(blocks: Vec<AllocationBlock>, endpoints: Vec<Endpoint>, nodes: &[&str]) -> Observed {
        let affinities = blocks
            .iter()
            .filter_map(|b| Some((b.host()?.to_string(), b.cidr)))
            .collect();
        Observed {
            blocks,
            endpoints,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            affinities,
            pools: Vec::new(),
        }
    }

    fn released(p: &Plan) -> Vec<IpAddr> {
        p.release.iter().map(|a| a.addr).collect()
    }

    #[test]
    fn a_leak_is_released_after_the_grace_period_and_a_live_address_never() {
        let mut b = block("10.0.0.0/26", Some("n1"));
        let live = take(&mut b, "k8s-pod-network.live", Some("n1"));
        let leak = take(&mut b, "k8s-pod-network.leak", Some("n1"));
        let seen = observed(vec![b], vec![endpoint("n1", live)], &["n1"]);
        let mut tr = Tracker::default();
        let p = plan(&seen, &mut tr, t(100), GRACE);
        assert!(p.release.is_empty());
        assert_eq!(p.candidates.iter().map(|a| a.addr).collect::<Vec<_>>(), [leak]);
        assert!(plan(&seen, &mut tr, t(159), GRACE).release.is_empty());
        let p = plan(&seen, &mut tr, t(160), GRACE);
        assert_eq!(released(&p), [leak]);
        assert_eq!(p.release[0].handle, "k8s-pod-network.leak");
        assert_eq!(p.in_use[&(String::new(), "n1".to_string())], 2);
    }

    #[test]
    fn a_candidate_that_gets_its_endpoint_starts_over() {
        let mut b = block("10.0.0.0/26", Some("n1"));
        let a = take(&mut b, "h", Some("n1"));
        let mut tr = Tracker::default();
        plan(&observed(vec![b.clone()], vec![], &["n1"]), &mut tr, t(0), GRACE);
        plan(
            &observed(vec![b.clone()], vec![endpoint("n1", a)], &["n1"]),
            &mut tr,
            t(30),
            GRACE,
        );
        // Gone again: a new candidate, not confirmed by the first sighting.
        let p = plan(&observed(vec![b], vec![], &["n1"]), &mut tr, t(70), GRACE);
        assert!(p.release.is_empty());
        assert_eq!(p.candidates.len(), 1);
    }

    #[test]
    fn a_handle_is_released_only_when_all_its_addresses_are_leaks() {
        let mut b = block("10.0.0.0/26", Some("n1"));
        let used = take(&mut b, "two", Some("n1"));
        take(&mut b, "two", Some("n1"));
        let seen = observed(vec![b], vec![endpoint("n1", used)], &["n1"]);
        let mut tr = Tracker::default();
        plan(&seen, &mut tr, t(0), GRACE);
        let p = plan(&seen, &mut tr, t(600), GRACE);
        assert!(p.release.is_empty(), "{p:?}");
        assert_eq!(p.candidates.len(), 1);
    }

    #[test]
    fn without_a_node_attribute_or_handle_nothing_is_touched_and_zero_grace_is_off() {
        let mut b = block("10.0.0.0/26", Some("n1"));
        take(&mut b, "manual", None);
        let o = b.auto_assign(1, None, &BTreeMap::new());
        assert_eq!(o.len(), 1);
        let mut with_node = b.clone();
        take(&mut with_node, "h", Some("n1"));
        let mut tr = Tracker::default();
        for now in [0, 1000] {
            let p = plan(
                &observed(vec![b.clone()], vec![], &["n1"]),
                &mut tr,
                t(now),
                GRACE,
            );
            assert!(p.release.is_empty() && p.candidates.is_empty(), "{p:?}");
            let p = plan(
                &observed(vec![with_node.clone()], vec![], &["n1"]),
                &mut Tracker::default(),
                t(now),
                Duration::ZERO,
            );
            assert!(p.release.is_empty() && p.candidates.is_empty(), "{p:?}");
        }
    }

    #[test]
    fn a_gone_node_confirms_at_once_and_tunnel_addresses_follow_their_node() {
        let mut b = block("10.0.0.0/26", Some("n2"));
        let pod = take(&mut b, "k8s-pod-network.x", Some("n2"));
        let tunnel = take(&mut b, "ipip-tunnel-addr-n2", Some("n2"));
        let mut tr = Tracker::default();
        let p = plan(&observed(vec![b.clone()], vec![], &["n2"]), &mut tr, t(0), GRACE);
        assert_eq!(
            p.candidates.iter().map(|a| a.addr).collect::<Vec<_>>(),
            [pod],
            "the tunnel address is in use"
        );
        let p = plan(
            &observed(vec![b], vec![], &["n1"]),
            &mut Tracker::default(),
            t(0),
            GRACE,
        );
        let mut got = released(&p);
        got.sort();
        assert_eq!(got, [pod, tunnel]);
    }

    #[test]
    fn empty_blocks_go_after_the_grace_period_but_never_a_nodes_last() {
        let mut used = block("10.0.0.0/26", Some("n1"));
        let a = take(&mut used, "h", Some("n1"));
        let seen = observed(
            vec![
                used,
                block("10.0.0.64/26", Some("n1")),
                block("10.0.0.128/26", Some("n1")),
                block("10.0.1.0/26", Some("n3")),
            ],
            vec![endpoint("n1", a)],
            &["n1", "n3"],
        );
        let mut tr = Tracker::default();
        assert!(plan(&seen, &mut tr, t(0), GRACE).release_affinities.is_empty());
        let p = plan(&seen, &mut tr, t(60), GRACE);
        let blocks: Vec<String> = p
            .release_affinities
            .iter()
            .map(|(n, c, _)| format!("{n} {c}"))
            .collect();
        assert_eq!(blocks, ["n1 10.0.0.64/26", "n1 10.0.0.128/26"]);
        // All of n1's blocks empty: one stays.
        let seen = observed(
            vec![
                block("10.0.0.64/26", Some("n1")),
                block("10.0.0.128/26", Some("n1")),
            ],
            vec![],
            &["n1"],
        );
        let mut tr = Tracker::default();
        plan(&seen, &mut tr, t(0), GRACE);
        assert_eq!(plan(&seen, &mut tr, t(60), GRACE).release_affinities.len(), 1);
    }

    #[test]
    fn deleted_nodes_are_cleaned_after_the_grace_period() {
        let seen = observed(
            vec![block("10.0.0.0/26", Some("gone"))],
            vec![endpoint("also-gone", "10.0.9.9".parse().unwrap())],
            &["n1"],
        );
        let mut tr = Tracker::default();
        assert!(plan(&seen, &mut tr, t(0), GRACE).clean_nodes.is_empty());
        assert_eq!(
            plan(&seen, &mut tr, t(60), GRACE).clean_nodes,
            ["also-gone", "gone"]
        );
    }
}
