//! `ipam check`: cross-checks the IPAM data against what uses addresses (WorkloadEndpoints and Node
//! tunnel addresses), as calicoctl's `ipam/check.go` does, plus two Brindle checks (blocks affine
//! to deleted nodes; blocks that are internally inconsistent). The text is calicoctl's, line for
//! line; the JSON report has calicoctl's keys so `ipam release --from-report` can act on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::block::{AllocationAttribute, AttributeOps, BlockOps, attr};
use crate::error::Result;
use crate::ipam::Ipam;
use crate::resources::{self, ClusterInfo};

/// One allocation in the report (calicoctl's `Allocation`, same JSON keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAllocation {
    pub ip: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub handle: String,
    #[serde(rename = "sequenceNumber", default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(
        rename = "creationTimestamp",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub creation_timestamp: String,
    #[serde(rename = "inUse", default)]
    pub in_use: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub borrowed: bool,
    #[serde(default)]
    pub owners: Option<Vec<String>>,
    /// Not in the JSON: the attribute text for `--show-*-ips` lines.
    #[serde(skip)]
    pub attr_text: String,
}

/// A handle with no addresses (calicoctl's `HandleInfo`: Go field names as keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "UID", default)]
    pub uid: Option<String>,
    #[serde(rename = "Revision")]
    pub revision: String,
}

/// The `-o FILE` report (calicoctl's `Report`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub version: String,
    #[serde(rename = "clusterGUID")]
    pub cluster_guid: String,
    #[serde(rename = "datastoreLocked")]
    pub datastore_locked: bool,
    #[serde(rename = "clusterInformationRevision")]
    pub cluster_information_revision: String,
    #[serde(rename = "clusterType")]
    pub cluster_type: String,
    pub allocations: BTreeMap<String, Vec<ReportAllocation>>,
    #[serde(rename = "leakedHandles", default, skip_serializing_if = "Vec::is_empty")]
    pub leaked_handles: Vec<HandleInfo>,
}

impl Report {
    /// `json.MarshalIndent(r, "", "  ")`: two-space indent, no trailing newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }

    /// The addresses the report marks as leaked (allocated, not in use).
    pub fn leaked(&self) -> Vec<&ReportAllocation> {
        self.allocations
            .values()
            .flatten()
            .filter(|a| !a.in_use)
            .collect()
    }
}

/// Everything `ipam check` found.
#[derive(Debug, Clone)]
pub struct Check {
    pub cluster: ClusterInfo,
    /// (cidr, affinity text) per block, in key order.
    pub blocks: Vec<(String, String)>,
    pub num_allocations: usize,
    pub active_pools: Vec<String>,
    /// (address, owner) for node tunnel addresses and workload addresses.
    pub node_ips: Vec<(IpAddr, String)>,
    pub workload_ips: Vec<(IpAddr, String)>,
    pub allocations: BTreeMap<String, Vec<ReportAllocation>>,
    /// Node → allocations, most first.
    pub top_nodes: Vec<(String, usize)>,
    pub median: usize,
    pub leaked: Vec<String>,
    pub multiple_owners: Vec<String>,
    pub not_in_pools: Vec<(String, String)>,
    pub no_allocation: Vec<(String, String)>,
    pub leaked_handles: Vec<HandleInfo>,
    pub good_handles: usize,
    pub missing_handles: Vec<String>,
    /// (block, node) for blocks affine to nodes that do not exist.
    pub deleted_node_blocks: Vec<(String, String)>,
    pub inconsistencies: Vec<String>,
}

fn attr_text(a: Option<&AllocationAttribute>) -> String {
    let Some(a) = a else {
        return "<missing>".into();
    };
    let primary = a.handle_id.as_deref().unwrap_or("<none>");
    let kvs: Vec<String> = a
        .active_owner_attrs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("Main:{primary} Extra:{}", kvs.join(","))
}

fn sort_ips(v: &mut [String]) {
    v.sort_by_key(|s| s.parse::<IpAddr>().ok());
}

impl Ipam {
    /// Runs the check. Reads only.
    pub fn check(&self) -> Result<Check> {
        let ds = &*self.ds;
        let kv = self.kv();
        let cluster = resources::cluster_info(ds)?;
        let blocks = kv.list_all_blocks()?;
        let mut c = Check {
            cluster,
            blocks: Vec::new(),
            num_allocations: 0,
            active_pools: Vec::new(),
            node_ips: Vec::new(),
            workload_ips: Vec::new(),
            allocations: BTreeMap::new(),
            top_nodes: Vec::new(),
            median: 0,
            leaked: Vec::new(),
            multiple_owners: Vec::new(),
            not_in_pools: Vec::new(),
            no_allocation: Vec::new(),
            leaked_handles: Vec::new(),
            good_handles: 0,
            missing_handles: Vec::new(),
            deleted_node_blocks: Vec::new(),
            inconsistencies: Vec::new(),
        };
        let mut in_use_handles = BTreeSet::new();
        let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
        for b in &blocks {
            let b = &b.value;
            c.blocks.push((
                b.cidr.to_string(),
                b.affinity_str().unwrap_or_else(|| "<none>".into()),
            ));
            c.inconsistencies.extend(b.consistency_problems());
            let block_node = b.host().unwrap_or_default().to_string();
            for (o, addr, a) in b.allocated() {
                c.num_allocations += 1;
                let get = |k: &str| a.and_then(|a| a.get(k)).unwrap_or_default().to_string();
                let handle = a.and_then(|a| a.handle_id.clone()).unwrap_or_default();
                if !handle.is_empty() {
                    in_use_handles.insert(handle.clone());
                }
                let node = Some(get(attr::NODE))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| block_node.clone());
                *by_node.entry(node.clone()).or_default() += 1;
                c.allocations
                    .entry(addr.to_string())
                    .or_default()
                    .push(ReportAllocation {
                        ip: addr.to_string(),
                        handle,
                        sequence_number: Some(b.sequence_of(o)),
                        pod: get(attr::POD),
                        namespace: get(attr::NAMESPACE),
                        borrowed: node != block_node,
                        node,
                        kind: get(attr::TYPE),
                        creation_timestamp: get(attr::TIMESTAMP),
                        in_use: false,
                        owners: None,
                        attr_text: attr_text(a),
                    });
            }
        }
        let pools = resources::list_pools(ds)?;
        let active: Vec<_> = pools.iter().filter(|p| !p.disabled).collect();
        c.active_pools = active.iter().map(|p| p.cidr.to_string()).collect();
        let nodes = resources::list_nodes(ds)?;
        for n in &nodes {
            for ip in n.tunnel_addrs() {
                c.node_ips.push((ip, format!("Node({})", n.name)));
            }
        }
        for w in resources::list_endpoints(ds)? {
            for ip in &w.addrs {
                c.workload_ips
                    .push((*ip, format!("Workload({}/{})", w.namespace, w.name)));
            }
        }
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (ip, who) in c.node_ips.iter().chain(c.workload_ips.iter()) {
            owners.entry(ip.to_string()).or_default().push(who.clone());
            for a in c.allocations.get_mut(&ip.to_string()).into_iter().flatten() {
                a.in_use = true;
                a.owners.get_or_insert_with(Vec::new).push(who.clone());
            }
        }
        let mut top: Vec<(String, usize)> = by_node.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        c.median = top.get(top.len() / 2).map(|t| t.1).unwrap_or(0);
        c.top_nodes = top;
        c.leaked = c
            .allocations
            .keys()
            .filter(|ip| !owners.contains_key(*ip))
            .cloned()
            .collect();
        sort_ips(&mut c.leaked);
        for (ip, who) in &owners {
            if who.len() > 1 {
                c.multiple_owners.push(ip.clone());
            }
            if c.allocations.contains_key(ip) {
                continue;
            }
            let addr: IpAddr = ip.parse().expect("parsed above");
            let in_pool = active.iter().any(|p| p.cidr.contains(&addr));
            for w in who {
                if in_pool {
                    c.no_allocation.push((ip.clone(), w.clone()));
                } else {
                    c.not_in_pools.push((ip.clone(), w.clone()));
                }
            }
        }
        for (id, h) in kv.list_handles()? {
            if in_use_handles.contains(&id) {
                c.good_handles += 1;
            } else {
                c.leaked_handles.push(HandleInfo {
                    id,
                    uid: None,
                    revision: h.rev.to_string(),
                });
            }
        }
        let handle_ids: BTreeSet<String> = kv.list_handles()?.into_iter().map(|(id, _)| id).collect();
        c.missing_handles = in_use_handles.difference(&handle_ids).cloned().collect();
        let node_names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        for b in &blocks {
            if let Some(h) = b.value.host()
                && !node_names.contains(h)
            {
                c.deleted_node_blocks
                    .push((b.value.cidr.to_string(), h.to_string()));
            }
        }
        Ok(c)
    }
}

impl Check {
    /// Problems found (as calicoctl counts them, plus Brindle's two extra checks).
    pub fn problems(&self) -> usize {
        self.leaked.len()
            + self
                .not_in_pools
                .iter()
                .map(|x| &x.0)
                .collect::<BTreeSet<_>>()
                .len()
            + self
                .no_allocation
                .iter()
                .map(|x| &x.0)
                .collect::<BTreeSet<_>>()
                .len()
            + self.leaked_handles.len()
            + self.deleted_node_blocks.len()
            + self.inconsistencies.len()
    }

    /// The report for `-o FILE`.
    pub fn report(&self, version: &str) -> Report {
        Report {
            version: version.to_string(),
            cluster_guid: self.cluster.guid.clone(),
            datastore_locked: self.cluster.datastore_ready == Some(false),
            cluster_information_revision: self.cluster.revision.clone(),
            cluster_type: self.cluster.cluster_type.clone(),
            allocations: self.allocations.clone(),
            leaked_handles: self.leaked_handles.clone(),
        }
    }

    /// calicoctl's text, in its order. `show_all` lists every address checked;
    /// `show_problems` the problem ones.
    pub fn text(&self, show_all: bool, show_problems: bool) -> String {
        let show_problems = show_problems || show_all;
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(w, "Checking IPAM for inconsistencies...\n");
        let _ = writeln!(w, "Loading all IPAM blocks...");
        let _ = writeln!(w, "Found {} IPAM blocks.", self.blocks.len());
        for (cidr, aff) in &self.blocks {
            let _ = writeln!(w, " IPAM block {cidr} affinity={aff}:");
            if show_all {
                let block: ipnet::IpNet = cidr.parse().expect("block cidr");
                for a in self.allocations.values().flatten() {
                    if a.ip.parse::<IpAddr>().is_ok_and(|ip| block.contains(&ip)) {
                        let _ = writeln!(w, "  {} allocated; attrs {}", a.ip, a.attr_text);
                    }
                }
            }
        }
        let _ = writeln!(w, "IPAM blocks record {} allocations.\n", self.num_allocations);
        let _ = writeln!(w, "Loading all IPAM pools...");
        for p in &self.active_pools {
            let _ = writeln!(w, "  {p}");
        }
        let _ = writeln!(w, "Found {} active IP pools.\n", self.active_pools.len());
        let _ = writeln!(w, "Loading all nodes.");
        for (ip, who) in self.node_ips.iter().filter(|_| show_all) {
            let _ = writeln!(w, "  {ip} belongs to {who}");
        }
        let _ = writeln!(w, "Found {} node tunnel IPs.\n", self.node_ips.len());
        let _ = writeln!(w, "Loading all service load balancer IPs.");
        let _ = writeln!(w, "Found 0 service load balancer.\n");
        let _ = writeln!(w, "Loading all workload endpoints.");
        for (ip, who) in self.workload_ips.iter().filter(|_| show_all) {
            let _ = writeln!(w, "  {ip} belongs to {who}");
        }
        let _ = writeln!(w, "Found {} workload IPs.", self.workload_ips.len());
        let in_use: BTreeSet<&IpAddr> = self
            .node_ips
            .iter()
            .chain(&self.workload_ips)
            .map(|x| &x.0)
            .collect();
        let _ = writeln!(w, "Workloads and nodes are using {} IPs.\n", in_use.len());
        let _ = writeln!(w, "Loading all handles");
        let _ = writeln!(w, "Looking for top (up to 20) nodes by allocations...");
        for (n, count) in self.top_nodes.iter().take(20) {
            let _ = writeln!(w, "  {n} has {count} allocations");
        }
        if let Some((_, max)) = self.top_nodes.first() {
            let _ = writeln!(
                w,
                "Node with most allocations has {max}; median is {}",
                self.median
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "Scanning for IPs that are allocated but not actually in use..."
        );
        for ip in self.leaked.iter().filter(|_| show_problems) {
            for a in &self.allocations[ip] {
                let _ = writeln!(w, "  {ip} leaked; attrs {}", a.attr_text);
            }
        }
        let _ = writeln!(
            w,
            "Found {} IPs that are allocated in IPAM but not actually in use.",
            self.leaked.len()
        );
        let _ = writeln!(
            w,
            "Scanning for IPs that are in use by a workload or node but not allocated in IPAM..."
        );
        if show_problems {
            for ip in &self.multiple_owners {
                let _ = writeln!(w, "  {ip} has multiple owners.");
            }
            for (ip, who) in &self.not_in_pools {
                let _ = writeln!(w, "  {ip} in use by {who} is not in any active IP pool.");
            }
            for (ip, who) in &self.no_allocation {
                let _ = writeln!(
                    w,
                    "  {ip} in use by {who} and in active IPAM pool but has no IPAM allocation."
                );
            }
        }
        let distinct = |v: &[(String, String)]| v.iter().map(|x| &x.0).collect::<BTreeSet<_>>().len();
        let _ = writeln!(
            w,
            "Found {} in-use IPs that are not in active IP pools.",
            distinct(&self.not_in_pools)
        );
        let _ = writeln!(
            w,
            "Found {} in-use IPs that are in active IP pools but have no corresponding IPAM allocation.\n",
            distinct(&self.no_allocation)
        );
        let _ = writeln!(w, "Scanning for IPAM handles with no matching IPs...");
        for h in self.leaked_handles.iter().filter(|_| show_all) {
            let _ = writeln!(w, "  {} doesn't have any active IPs.", h.id);
        }
        let _ = writeln!(
            w,
            "Found {} handles with no matching IPs (and {} handles with matches).",
            self.leaked_handles.len(),
            self.good_handles
        );
        let _ = writeln!(w, "Scanning for IPs with missing handle...");
        for h in self.missing_handles.iter().filter(|_| show_problems) {
            let _ = writeln!(w, "  {h} is in use in a block but doesn't exist.");
        }
        let _ = writeln!(
            w,
            "Found {} handles mentioned in blocks with no matching handle resource.",
            self.missing_handles.len()
        );
        let _ = writeln!(
            w,
            "Scanning for IPAM blocks affine to nodes that no longer exist..."
        );
        for (b, n) in self.deleted_node_blocks.iter().filter(|_| show_problems) {
            let _ = writeln!(w, "  {b} is affine to deleted node {n}.");
        }
        let _ = writeln!(
            w,
            "Found {} IPAM blocks affine to deleted nodes.",
            self.deleted_node_blocks.len()
        );
        let _ = writeln!(w, "Scanning IPAM blocks for internal consistency...");
        for p in self.inconsistencies.iter().filter(|_| show_problems) {
            let _ = writeln!(w, "  {p}");
        }
        let _ = writeln!(
            w,
            "Found {} IPAM block inconsistencies.",
            self.inconsistencies.len()
        );
        let _ = writeln!(w, "Check complete; found {} problems.", self.problems());
        o
    }
}
