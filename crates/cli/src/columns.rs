//! The `get -o ps|wide|custom-columns=…` columns of each kind, as calicoctl's resource managers
//! define them (`calicoctl/resourcemgr/*.go`), and the table they make.
//!
//! The IPPool wide layout is the one of the Calico releases the seed was written with
//! (`NAME CIDR NAT IPIPMODE VXLANMODE DISABLED SELECTOR`); `DISABLEBGPEXPORT` and
//! `ASSIGNMENTMODE` remain available through `custom-columns`.

use brindle_model::numorstring::AsNumber;
use brindle_model::{Kind, Resource};

use crate::output::tabwriter;
use brindle_model::gofloat::format_g as go_format_float_g;

/// Values a cell may need from outside the resource (calicoctl's `config` template function).
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The global AS number (BGPConfiguration `default`, else 64512), for a Node's ASN column.
    pub global_as: Option<AsNumber>,
}

/// Default (`ps`) and `wide` headings of a kind.
pub fn headings(kind: Kind, wide: bool) -> &'static [&'static str] {
    match (kind, wide) {
        (Kind::IPPool, false) => &["NAME", "CIDR", "SELECTOR"],
        (Kind::IPPool, true) => &[
            "NAME",
            "CIDR",
            "NAT",
            "IPIPMODE",
            "VXLANMODE",
            "DISABLED",
            "SELECTOR",
        ],
        (Kind::BGPConfiguration, _) => &["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
        (Kind::BGPPeer, _) => &["NAME", "PEERIP", "NODE", "ASN"],
        (Kind::BGPFilter, _) => &["NAME", "NUMEXPORT", "NUMIMPORT"],
        (Kind::Node, false) => &["NAME"],
        (Kind::Node, true) => &["NAME", "ASN", "IPV4", "IPV6"],
        (Kind::FelixConfiguration, _) => &["NAME"],
        (Kind::WorkloadEndpoint, false) => &["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"],
        (Kind::WorkloadEndpoint, true) => &[
            "NAME",
            "WORKLOAD",
            "NODE",
            "NETWORKS",
            "INTERFACE",
            "PROFILES",
            "NATS",
        ],
        (Kind::ClusterInformation, _) => &[
            "NAME",
            "CLUSTERGUID",
            "CLUSTERTYPE",
            "CALICOVERSION",
            "DATASTOREREADY",
        ],
        (Kind::IPAMConfiguration, false) => &["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS"],
        (Kind::IPAMConfiguration, true) => {
            &["NAME", "STRICTAFFINITY", "AUTOALLOCATEBLOCKS", "MAXBLOCKSPERHOST"]
        }
        (Kind::Profile, false) => &["NAME"],
        (Kind::Profile, true) => &["NAME", "LABELS"],
        (Kind::KubeControllersConfiguration, _) => &["NAME"],
        (Kind::NetworkPolicy | Kind::GlobalNetworkPolicy, false) => &["NAME", "TIER"],
        (Kind::NetworkPolicy | Kind::GlobalNetworkPolicy, true) => &["NAME", "TIER", "ORDER", "SELECTOR"],
        (Kind::NetworkSet | Kind::GlobalNetworkSet, false) => &["NAME"],
        (Kind::NetworkSet | Kind::GlobalNetworkSet, true) => &["NAME", "NETS"],
        (Kind::Tier, _) => &["NAME", "ORDER"],
    }
}

/// Every heading a kind can print (for `custom-columns` and its error message).
pub fn all_headings(kind: Kind) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = headings(kind, true).to_vec();
    for h in headings(kind, false) {
        if !all.contains(h) {
            all.push(h);
        }
    }
    match kind {
        Kind::IPPool => all.extend(["DISABLEBGPEXPORT", "ASSIGNMENTMODE"]),
        Kind::WorkloadEndpoint => all.extend(["NAMESPACE", "ORCHESTRATOR"]),
        Kind::NetworkPolicy | Kind::NetworkSet => all.push("NAMESPACE"),
        _ => {}
    }
    all
}

fn opt_bool(b: Option<bool>) -> String {
    b.map(|b| b.to_string()).unwrap_or_else(|| "<nil>".into())
}

/// A `*float64` through Go's text/template: `<nil>`, or `%v` (`1000`, `1e+06`, `100.5`).
fn opt_float(f: Option<f64>) -> String {
    f.map(go_format_float_g).unwrap_or_else(|| "<nil>".into())
}

/// calicoctl's `joinAndTruncate`: items joined, cut to `max` bytes ending in `...` when longer.
fn join_truncate(items: &[String], sep: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(item);
        if max > 0 && out.len() > max {
            let mut cut = max - "...".len();
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push_str("...");
            break;
        }
    }
    out
}

/// calicoctl's `join` of a map: `k=v` strings, sorted as strings.
fn join_map(m: &std::collections::BTreeMap<String, String>) -> String {
    let mut items: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    items.sort();
    items.join(",")
}

/// The text of one cell, or `None` for a heading the kind does not have.
pub fn cell(r: &Resource, heading: &str, ctx: Context) -> Option<String> {
    let name = r.name().to_string();
    Some(match (r, heading) {
        (_, "NAME") => name,
        (Resource::IPPool(p), h) => {
            let s = &p.spec;
            match h {
                "CIDR" => s.cidr.clone(),
                "NAT" => s.nat_outgoing.to_string(),
                "IPIPMODE" => s.ipip().as_str().into(),
                "VXLANMODE" => s.vxlan().as_str().into(),
                "DISABLED" => s.disabled.to_string(),
                "DISABLEBGPEXPORT" => s.disable_bgp_export.to_string(),
                "SELECTOR" => s.node_selector.clone(),
                "ASSIGNMENTMODE" => s
                    .assignment_mode
                    .map(|m| format!("{m:?}"))
                    .unwrap_or_else(|| "<nil>".into()),
                _ => return None,
            }
        }
        (Resource::BGPConfiguration(b), h) => {
            let s = &b.spec;
            match h {
                "LOGSEVERITY" => s.log_severity_screen.clone(),
                "MESHENABLED" => s
                    .node_to_node_mesh_enabled
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| "-".into()),
                "ASNUMBER" => s.as_number.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                _ => return None,
            }
        }
        (Resource::BGPPeer(p), h) => match h {
            "PEERIP" => p.spec.peer_ip.clone(),
            "NODE" => p.spec.node_column().into(),
            "ASN" => p.spec.as_number.to_string(),
            _ => return None,
        },
        (Resource::BGPFilter(f), h) => match h {
            "NUMEXPORT" => f.spec.export_rules().to_string(),
            "NUMIMPORT" => f.spec.import_rules().to_string(),
            _ => return None,
        },
        (Resource::Node(n), h) => {
            let bgp = n.spec.bgp.as_ref();
            match h {
                "ASN" => match bgp {
                    None => String::new(),
                    Some(b) => match b.as_number {
                        Some(a) => a.to_string(),
                        None => format!("({})", ctx.global_as.unwrap_or(AsNumber::DEFAULT)),
                    },
                },
                "IPV4" => bgp.map(|b| b.ipv4_address.clone()).unwrap_or_default(),
                "IPV6" => bgp.map(|b| b.ipv6_address.clone()).unwrap_or_default(),
                _ => return None,
            }
        }
        (Resource::WorkloadEndpoint(w), h) => {
            let s = &w.spec;
            match h {
                "NAMESPACE" => w.metadata.namespace.clone(),
                "NODE" => s.node.clone(),
                "ORCHESTRATOR" => s.orchestrator.clone(),
                "WORKLOAD" => {
                    if s.workload.is_empty() {
                        s.pod.clone()
                    } else {
                        s.workload.clone()
                    }
                }
                "NETWORKS" => s.ip_networks.join(","),
                "NATS" => s
                    .ip_nats
                    .iter()
                    .map(|n| format!("{{{} {}}}", n.internal_ip, n.external_ip))
                    .collect::<Vec<_>>()
                    .join(","),
                "PROFILES" => s.profiles.join(","),
                "INTERFACE" => s.interface_name.clone(),
                _ => return None,
            }
        }
        (Resource::ClusterInformation(c), h) => {
            let s = &c.spec;
            match h {
                "CLUSTERGUID" => s.cluster_guid.clone(),
                "CLUSTERTYPE" => s.cluster_type.clone(),
                "CALICOVERSION" => s.calico_version.clone(),
                "DATASTOREREADY" => opt_bool(s.datastore_ready),
                _ => return None,
            }
        }
        (Resource::IPAMConfiguration(i), h) => match h {
            "STRICTAFFINITY" => i.spec.strict_affinity.to_string(),
            "AUTOALLOCATEBLOCKS" => i.spec.auto_allocate_blocks.to_string(),
            "MAXBLOCKSPERHOST" => i.spec.max_blocks_per_host.to_string(),
            _ => return None,
        },
        (Resource::Profile(p), "LABELS") => join_map(&p.spec.labels_to_apply),
        (Resource::NetworkPolicy(p), h) => match h {
            "NAMESPACE" => p.metadata.namespace.clone(),
            "TIER" => p.spec.tier.clone(),
            "ORDER" => opt_float(p.spec.order),
            "SELECTOR" => p.spec.selector.clone(),
            _ => return None,
        },
        (Resource::GlobalNetworkPolicy(p), h) => match h {
            "TIER" => p.spec.tier.clone(),
            "ORDER" => opt_float(p.spec.order),
            "SELECTOR" => p.spec.selector.clone(),
            _ => return None,
        },
        (Resource::NetworkSet(s), h) => match h {
            "NAMESPACE" => s.metadata.namespace.clone(),
            "NETS" => join_truncate(&s.spec.nets, ",", 80),
            _ => return None,
        },
        (Resource::GlobalNetworkSet(s), "NETS") => join_truncate(&s.spec.nets, ",", 80),
        (Resource::Tier(t), "ORDER") => opt_float(t.spec.order),
        _ => return None,
    })
}

/// The headings for `custom-columns=A,B`, checked against the kind.
pub fn custom_headings(kind: Kind, spec: &str) -> Result<Vec<String>, String> {
    let all = all_headings(kind);
    spec.split(',')
        .map(|h| h.trim().to_uppercase())
        .map(|h| {
            if all.contains(&h.as_str()) {
                Ok(h)
            } else {
                Err(format!(
                    "unknown heading {h}, valid values are: {}",
                    all.join(", ")
                ))
            }
        })
        .collect()
}

/// One calicoctl table: the heading line and a row per resource, through Go's tabwriter with
/// calicoctl's settings, followed by the blank line calicoctl prints after every table.
/// `with_namespace` prepends calicoctl's NAMESPACE column (namespaced kinds with `-A`).
pub fn table(
    kind: Kind,
    headings: &[String],
    resources: &[Resource],
    with_namespace: bool,
    ctx: Context,
) -> String {
    let mut heads: Vec<String> = headings.to_vec();
    if with_namespace && kind.namespaced() && !heads.iter().any(|h| h == "NAMESPACE") {
        heads.insert(0, "NAMESPACE".into());
    }
    let mut text = String::new();
    for h in &heads {
        text.push_str(h);
        text.push('\t');
    }
    text.push('\n');
    for r in resources {
        for h in &heads {
            text.push_str(&cell(r, h, ctx).unwrap_or_default());
            text.push('\t');
        }
        text.push('\n');
    }
    let mut out = tabwriter::format(&text, tabwriter::CALICOCTL);
    out.push('\n');
    out
}
