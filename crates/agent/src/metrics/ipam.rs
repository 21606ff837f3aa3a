//! IPAM series as Calico's kube-controllers exports them (`ipam_ippool_size{ippool}`,
//! `ipam_allocations_in_use{ippool,node}`, `ipam_allocations_borrowed{ippool,node}`,
//! `ipam_blocks{ippool,node}`, `ipam_allocations_gc_candidates{ippool,node}`,
//! `ipam_allocations_gc_reclamations{ippool,node}`).
//!
//! kube-controllers is one process exporting every node; Brindle has no controller, so each
//! agent exports its own node's series (`node` = itself). Summed over the agents they are the
//! cluster's figures, with the same names and labels; `ipam_ippool_size` is the same on every
//! agent (aggregate it with `max`).

use std::collections::BTreeMap;
use std::fmt;

use brindle_ipam::block::attr;
use brindle_ipam::gc::GcMetrics;
use brindle_ipam::{AllocationBlock, AttributeOps, BlockOps, Pool};

use super::encode::{Families, Labels};

/// kube-controllers' label for allocations in no pool.
pub const UNKNOWN_POOL: &str = "no_ippool";

/// This node's figures in one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeIpam {
    /// Addresses allocated to this node (its `node` attribute), tunnel addresses included.
    pub in_use: u64,
    /// Of those, addresses in blocks affine to another node.
    pub borrowed: u64,
    /// Blocks affine to this node.
    pub blocks: u64,
}

/// The IPAM garbage collector's figures (`brindle_ipam::gc`). Its leader has kube-controllers'
/// per-pool, per-node gauges for the whole cluster (candidates to reclaim, reclamations); every
/// agent that takes part has Brindle's own `brindle_ipam_gc_*` series (leadership, passes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamGc {
    /// (pool, node) → allocations the collector suspects are leaked.
    pub candidates: BTreeMap<(String, String), u64>,
    /// (pool, node) → allocations it reclaimed so far.
    pub reclamations: BTreeMap<(String, String), u64>,
    /// `brindle_ipam_gc_*`: name, Prometheus type, help, value.
    pub own: Vec<(String, String, String, f64)>,
}

impl IpamGc {
    /// Reads the collector's figures from its exposition text ([`GcMetrics::render`], the one
    /// view of them its crate offers).
    pub fn from_gc(gc: &GcMetrics) -> IpamGc {
        let mut text = String::new();
        gc.render(&mut text);
        IpamGc::parse(&text)
    }

    pub(super) fn parse(text: &str) -> IpamGc {
        let mut out = IpamGc::default();
        let mut help: BTreeMap<&str, &str> = BTreeMap::new();
        let mut kind: BTreeMap<&str, &str> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                if let Some((n, h)) = rest.split_once(' ') {
                    help.insert(n, h);
                }
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                if let Some((n, k)) = rest.split_once(' ') {
                    kind.insert(n, k);
                }
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(v) = value.parse::<f64>() else { continue };
            let (name, labels) = match series.split_once('{') {
                Some((n, l)) => (n, l.strip_suffix('}').unwrap_or(l)),
                None => (series, ""),
            };
            let map = match name {
                "ipam_allocations_gc_candidates" => &mut out.candidates,
                "ipam_allocations_gc_reclamations" => &mut out.reclamations,
                n if n.starts_with("brindle_ipam_gc_") => {
                    out.own.push((
                        n.to_string(),
                        kind.get(n).copied().unwrap_or("gauge").to_string(),
                        help.get(n).copied().unwrap_or("").to_string(),
                        v,
                    ));
                    continue;
                }
                _ => continue,
            };
            let (pool, node) = (label_value(labels, "ippool"), label_value(labels, "node"));
            if let (Some(pool), Some(node)) = (pool, node) {
                map.insert((pool, node), v as u64);
            }
        }
        out
    }

    pub(super) fn write(&self, f: &mut Families<'_>) -> fmt::Result {
        for (name, kind, help, v) in &self.own {
            match kind.as_str() {
                "counter" => f.counter(
                    name.strip_suffix("_total").unwrap_or(name),
                    help,
                    &[(Vec::new(), *v)],
                )?,
                _ => f.one(name, help, *v)?,
            }
        }
        Ok(())
    }
}

/// The unescaped value of `key` in a label list `a="x",b="y"`.
fn label_value(labels: &str, key: &str) -> Option<String> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let mut out = String::new();
    let mut chars = labels[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

/// What one scrape shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IpamStats {
    pub node: String,
    /// Pool name → its size in addresses.
    pub pool_sizes: BTreeMap<String, f64>,
    /// Pool name (or [`UNKNOWN_POOL`]) → this node's figures. Every pool has an entry (zeros
    /// included, as kube-controllers seeds them, so ratios are 0 rather than missing).
    pub by_pool: BTreeMap<String, NodeIpam>,
    pub gc: IpamGc,
}

/// The host of a `host:<node>` affinity.
fn affine_host(b: &AllocationBlock) -> Option<String> {
    b.affinity_str()
        .and_then(|a| a.strip_prefix("host:").map(str::to_string))
}

/// This node's figures from the pools and every block (pure).
pub fn compute(pools: &[Pool], blocks: &[AllocationBlock], node: &str, gc: IpamGc) -> IpamStats {
    let mut s = IpamStats {
        node: node.to_string(),
        gc,
        ..Default::default()
    };
    for p in pools {
        s.pool_sizes.insert(p.name.clone(), p.size() as f64);
        s.by_pool.insert(p.name.clone(), NodeIpam::default());
    }
    for b in blocks {
        let pool = pools
            .iter()
            .find(|p| p.cidr.contains(&b.cidr.network()))
            .map_or(UNKNOWN_POOL, |p| p.name.as_str());
        let host = affine_host(b);
        let affine_here = host.as_deref() == Some(node);
        let mut here = NodeIpam {
            blocks: u64::from(affine_here),
            ..Default::default()
        };
        for (_, _, a) in b.allocated() {
            // kube-controllers attributes an allocation without a node to the block's host.
            let owner = a
                .and_then(|a| a.get(attr::NODE))
                .map(str::to_string)
                .or_else(|| host.clone());
            if owner.as_deref() == Some(node) {
                here.in_use += 1;
                if !affine_here {
                    here.borrowed += 1;
                }
            }
        }
        if here != NodeIpam::default() || pool != UNKNOWN_POOL {
            let e = s.by_pool.entry(pool.to_string()).or_default();
            e.in_use += here.in_use;
            e.borrowed += here.borrowed;
            e.blocks += here.blocks;
        }
    }
    s
}

impl IpamStats {
    pub(super) fn write(&self, f: &mut Families<'_>) -> fmt::Result {
        let sizes: Vec<(Labels, f64)> = self
            .pool_sizes
            .iter()
            .map(|(p, n)| (vec![("ippool", p.clone())], *n))
            .collect();
        f.gauge(
            "ipam_ippool_size",
            "Total number of addresses in the IP Pool.",
            &sizes,
        )?;
        let per = |v: &dyn Fn(&NodeIpam, &str) -> f64| -> Vec<(Labels, f64)> {
            self.by_pool
                .iter()
                .map(|(p, n)| (vec![("ippool", p.clone()), ("node", self.node.clone())], v(n, p)))
                .collect()
        };
        f.gauge(
            "ipam_allocations_in_use",
            "IPs currently allocated in IPAM to a workload or tunnel endpoint.",
            &per(&|n, _| n.in_use as f64),
        )?;
        f.gauge(
            "ipam_allocations_borrowed",
            "IPs currently allocated in IPAM to a workload or tunnel endpoint, where the allocation was borrowed from a block affine to another node.",
            &per(&|n, _| n.borrowed as f64),
        )?;
        f.gauge(
            "ipam_blocks",
            "IPAM blocks currently allocated for the IP pool.",
            &per(&|n, _| n.blocks as f64),
        )?;
        // The collector's (pool, node) figures, with this node's pools at zero when it has none
        // for them (the collector runs on one agent at a time).
        let gc_series = |m: &BTreeMap<(String, String), u64>| -> Vec<(Labels, f64)> {
            let mut all: BTreeMap<(String, String), u64> = self
                .by_pool
                .keys()
                .map(|p| ((p.clone(), self.node.clone()), 0))
                .collect();
            all.extend(m.iter().map(|(k, v)| (k.clone(), *v)));
            all.into_iter()
                .map(|((p, n), v)| (vec![("ippool", p), ("node", n)], v as f64))
                .collect()
        };
        f.gauge(
            "ipam_allocations_gc_candidates",
            "Allocations that are currently marked by the garbage collector as potential candidates to reclaim.",
            &gc_series(&self.gc.candidates),
        )?;
        f.untyped(
            "ipam_allocations_gc_reclamations",
            "The total allocations that have been reclaimed by the garbage collector over time.",
            &gc_series(&self.gc.reclamations),
        )?;
        self.gc.write(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn block(cidr: &str, host: &str, owners: &[&str]) -> AllocationBlock {
        let net: ipnet::IpNet = cidr.parse().unwrap();
        let size = 1usize << (32 - net.prefix_len());
        let mut b: AllocationBlock = serde_json::from_value(serde_json::json!({
            "cidr": cidr, "affinity": format!("host:{host}"),
            "allocations": vec![serde_json::Value::Null; size],
            "unallocated": (0..size).collect::<Vec<_>>(), "attributes": [],
        }))
        .unwrap();
        for o in owners {
            let attrs: BTreeMap<String, String> = [("node".to_string(), o.to_string())].into();
            b.auto_assign(1, Some("h"), &attrs);
        }
        b
    }

    fn pool(name: &str, cidr: &str) -> Pool {
        Pool {
            name: name.into(),
            cidr: cidr.parse().unwrap(),
            block_size: 24,
            disabled: false,
            node_selector: "all()".into(),
            allowed_uses: Vec::new(),
            ipip: false,
            vxlan: false,
            manual: false,
        }
    }

    #[test]
    fn this_nodes_share_of_every_pool() {
        let pools = [
            pool("default-pool", "10.233.64.0/18"),
            pool("other", "10.9.0.0/16"),
        ];
        let blocks = [
            block("10.233.94.0/24", "n1", &["n1", "n1", "n1"]),
            block("10.233.87.0/24", "n2", &["n2", "n1"]),
            block("192.168.0.0/30", "n1", &["n1"]),
        ];
        let s = compute(&pools, &blocks, "n1", IpamGc::default());
        assert_eq!(s.pool_sizes["default-pool"], 16384.0);
        assert_eq!(
            s.by_pool["default-pool"],
            NodeIpam {
                in_use: 4,
                borrowed: 1,
                blocks: 1
            }
        );
        assert_eq!(s.by_pool["other"], NodeIpam::default());
        assert_eq!(
            s.by_pool[UNKNOWN_POOL],
            NodeIpam {
                in_use: 1,
                borrowed: 0,
                blocks: 1
            }
        );
    }
}
