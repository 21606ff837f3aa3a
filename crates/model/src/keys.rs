//! Calico's etcd v3 key layout (`libcalico-go/lib/backend/model/*.go`), both directions.
//!
//! - v3 resources: `/calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>`
//! - blocks: `/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24` (the `/` of the CIDR as `-`)
//! - affinities: `/calico/ipam/v2/host/<node>/ipv4/block/10.233.94.0-24` (`virtual` for LB)
//! - handles: `/calico/ipam/v2/handle/<handle id>`
//! - IPAM config: `/calico/ipam/v2/config`

use std::fmt;

use ipnet::IpNet;

use crate::error::KeyError;
use crate::kind::Kind;

/// Prefix of every v3 resource key.
pub const RESOURCE_PREFIX: &str = "/calico/resources/v3/projectcalico.org/";
/// Prefix of every IPAM key.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";
/// Prefix of every block key (both families).
pub const BLOCK_PREFIX: &str = "/calico/ipam/v2/assignment/";
/// Prefix of every handle key.
pub const HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";
/// The IPAM configuration key.
pub const IPAM_CONFIG_KEY: &str = "/calico/ipam/v2/config";

/// IP family of an IPAM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    V4,
    V6,
}

impl IpVersion {
    pub fn of(cidr: &IpNet) -> IpVersion {
        match cidr {
            IpNet::V4(_) => IpVersion::V4,
            IpNet::V6(_) => IpVersion::V6,
        }
    }

    fn segment(self) -> &'static str {
        match self {
            IpVersion::V4 => "ipv4",
            IpVersion::V6 => "ipv6",
        }
    }
}

/// Who a block affinity is for: a host (`host`), or a LoadBalancer (`virtual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AffinityType {
    Host,
    Virtual,
}

impl AffinityType {
    fn segment(self) -> &'static str {
        match self {
            AffinityType::Host => "host",
            AffinityType::Virtual => "virtual",
        }
    }

    /// The prefix of a block's `affinity` field for this type (`host:`).
    pub fn affinity_prefix(self) -> &'static str {
        match self {
            AffinityType::Host => "host:",
            AffinityType::Virtual => "virtual:",
        }
    }
}

/// Any key Brindle stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Resource {
        kind: Kind,
        namespace: String,
        name: String,
    },
    Block(IpNet),
    Affinity {
        affinity_type: AffinityType,
        host: String,
        cidr: IpNet,
    },
    Handle(String),
    IpamConfig,
}

/// `10.233.94.0/24` → `10.233.94.0-24`.
fn cidr_segment(cidr: &IpNet) -> String {
    cidr.trunc().to_string().replacen('/', "-", 1)
}

fn parse_cidr_segment(key: &str, seg: &str) -> Result<IpNet, KeyError> {
    let (ip, len) = seg
        .rsplit_once('-')
        .ok_or_else(|| KeyError::new(key, "block CIDR segment has no '-'"))?;
    format!("{ip}/{len}")
        .parse()
        .map_err(|_| KeyError::new(key, format!("bad block CIDR {seg:?}")))
}

/// The key of a v3 resource. `namespace` is ignored for cluster-scoped kinds.
pub fn resource_key(kind: Kind, namespace: &str, name: &str) -> String {
    if kind.namespaced() {
        format!("{RESOURCE_PREFIX}{}/{namespace}/{name}", kind.plural())
    } else {
        format!("{RESOURCE_PREFIX}{}/{name}", kind.plural())
    }
}

/// The prefix listing every resource of a kind, or (for namespaced kinds with `Some(ns)`) every
/// resource of a kind in one namespace. Ends with `/`.
pub fn resource_prefix(kind: Kind, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if kind.namespaced() => format!("{RESOURCE_PREFIX}{}/{ns}/", kind.plural()),
        _ => format!("{RESOURCE_PREFIX}{}/", kind.plural()),
    }
}

/// The key of an IPAM block.
pub fn block_key(cidr: &IpNet) -> String {
    format!(
        "{BLOCK_PREFIX}{}/block/{}",
        IpVersion::of(cidr).segment(),
        cidr_segment(cidr)
    )
}

/// The prefix listing every block of a family.
pub fn block_prefix(version: IpVersion) -> String {
    format!("{BLOCK_PREFIX}{}/block/", version.segment())
}

/// The key of a host's affinity to a block.
pub fn affinity_key(host: &str, cidr: &IpNet) -> String {
    affinity_key_typed(AffinityType::Host, host, cidr)
}

/// The key of an affinity of any type.
pub fn affinity_key_typed(t: AffinityType, host: &str, cidr: &IpNet) -> String {
    format!(
        "{IPAM_PREFIX}{}/{host}/{}/block/{}",
        t.segment(),
        IpVersion::of(cidr).segment(),
        cidr_segment(cidr)
    )
}

/// The prefix listing a host's affinities of one family.
pub fn affinity_prefix(host: &str, version: IpVersion) -> String {
    format!("{IPAM_PREFIX}host/{host}/{}/block/", version.segment())
}

/// The prefix listing every host affinity (all hosts, both families).
pub fn all_affinities_prefix() -> &'static str {
    "/calico/ipam/v2/host/"
}

/// The key of an IPAM handle.
pub fn handle_key(handle_id: &str) -> String {
    format!("{HANDLE_PREFIX}{handle_id}")
}

/// Prefix of the Kubernetes objects Brindle plays the API server for (Brindle's own keys, not
/// Calico's; the format is in [`crate::k8s::stored`]).
pub const K8S_PREFIX: &str = "/brindle/k8s/v1/";

/// The key of stored Kubernetes pod `name` in `namespace` (the lab writes it before the CNI
/// ADD; the plugin reads it to write a complete WorkloadEndpoint).
pub fn k8s_pod_key(namespace: &str, name: &str) -> String {
    format!("{K8S_PREFIX}pods/{namespace}/{name}")
}

/// Prefix of the stored pods of `namespace` (`""`: of every namespace).
pub fn k8s_pods_prefix(namespace: &str) -> String {
    k8s_namespaced_prefix("pods", namespace)
}

/// The key of stored Kubernetes namespace `name`.
pub fn k8s_namespace_key(name: &str) -> String {
    format!("{K8S_PREFIX}namespaces/{name}")
}

/// Prefix of every stored namespace.
pub fn k8s_namespaces_prefix() -> String {
    format!("{K8S_PREFIX}namespaces/")
}

/// The key of stored Kubernetes service account `name` in `namespace`.
pub fn k8s_service_account_key(namespace: &str, name: &str) -> String {
    format!("{K8S_PREFIX}serviceaccounts/{namespace}/{name}")
}

/// Prefix of the stored service accounts of `namespace` (`""`: of every namespace).
pub fn k8s_service_accounts_prefix(namespace: &str) -> String {
    k8s_namespaced_prefix("serviceaccounts", namespace)
}

fn k8s_namespaced_prefix(plural: &str, namespace: &str) -> String {
    if namespace.is_empty() {
        format!("{K8S_PREFIX}{plural}/")
    } else {
        format!("{K8S_PREFIX}{plural}/{namespace}/")
    }
}

impl Key {
    /// The datastore key string.
    pub fn path(&self) -> String {
        match self {
            Key::Resource {
                kind,
                namespace,
                name,
            } => resource_key(*kind, namespace, name),
            Key::Block(c) => block_key(c),
            Key::Affinity {
                affinity_type,
                host,
                cidr,
            } => affinity_key_typed(*affinity_type, host, cidr),
            Key::Handle(h) => handle_key(h),
            Key::IpamConfig => IPAM_CONFIG_KEY.to_string(),
        }
    }

    /// Parses a datastore key back.
    pub fn parse(key: &str) -> Result<Key, KeyError> {
        if let Some(rest) = key.strip_prefix(RESOURCE_PREFIX) {
            let parts: Vec<&str> = rest.split('/').collect();
            let kind = Kind::from_plural(parts[0])
                .ok_or_else(|| KeyError::new(key, format!("unknown resource plural {:?}", parts[0])))?;
            let (namespace, name) = match (kind.namespaced(), parts.as_slice()) {
                (false, [_, name]) => (String::new(), *name),
                (true, [_, ns, name]) if !ns.is_empty() => (ns.to_string(), *name),
                _ => return Err(KeyError::new(key, "wrong number of segments for the kind")),
            };
            if name.is_empty() {
                return Err(KeyError::new(key, "empty resource name"));
            }
            return Ok(Key::Resource {
                kind,
                namespace,
                name: name.to_string(),
            });
        }
        if key == IPAM_CONFIG_KEY {
            return Ok(Key::IpamConfig);
        }
        if let Some(id) = key.strip_prefix(HANDLE_PREFIX) {
            if id.is_empty() {
                return Err(KeyError::new(key, "empty handle id"));
            }
            return Ok(Key::Handle(id.to_string()));
        }
        if let Some(rest) = key.strip_prefix(BLOCK_PREFIX) {
            return match rest.split('/').collect::<Vec<_>>().as_slice() {
                [fam, "block", seg] => {
                    let cidr = parse_cidr_segment(key, seg)?;
                    check_family(key, fam, &cidr)?;
                    Ok(Key::Block(cidr))
                }
                _ => Err(KeyError::new(key, "not a block key")),
            };
        }
        if let Some(rest) = key.strip_prefix(IPAM_PREFIX) {
            let parts: Vec<&str> = rest.split('/').collect();
            if let [t, host, fam, "block", seg] = parts.as_slice() {
                let affinity_type = match *t {
                    "host" => AffinityType::Host,
                    "virtual" => AffinityType::Virtual,
                    _ => return Err(KeyError::new(key, "unknown IPAM key")),
                };
                if host.is_empty() {
                    return Err(KeyError::new(key, "empty host in affinity key"));
                }
                let cidr = parse_cidr_segment(key, seg)?;
                check_family(key, fam, &cidr)?;
                return Ok(Key::Affinity {
                    affinity_type,
                    host: host.to_string(),
                    cidr,
                });
            }
        }
        Err(KeyError::new(key, "not a Calico key"))
    }
}

fn check_family(key: &str, fam: &str, cidr: &IpNet) -> Result<(), KeyError> {
    if fam == IpVersion::of(cidr).segment() {
        Ok(())
    } else {
        Err(KeyError::new(
            key,
            format!("family segment {fam:?} does not match {cidr}"),
        ))
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn calico_examples() {
        assert_eq!(
            resource_key(Kind::IPPool, "", "default-pool"),
            "/calico/resources/v3/projectcalico.org/ippools/default-pool"
        );
        assert_eq!(
            resource_key(Kind::FelixConfiguration, "", "node.node1"),
            "/calico/resources/v3/projectcalico.org/felixconfigurations/node.node1"
        );
        assert_eq!(
            resource_key(
                Kind::WorkloadEndpoint,
                "kube-system",
                "node1-k8s-coredns--xyz-eth0"
            ),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/kube-system/node1-k8s-coredns--xyz-eth0"
        );
        assert_eq!(
            block_key(&net("10.233.94.0/24")),
            "/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24"
        );
        assert_eq!(
            block_key(&net("fd00:1::/122")),
            "/calico/ipam/v2/assignment/ipv6/block/fd00:1::-122"
        );
        assert_eq!(
            affinity_key("node1", &net("10.233.94.0/24")),
            "/calico/ipam/v2/host/node1/ipv4/block/10.233.94.0-24"
        );
        assert_eq!(
            affinity_key_typed(AffinityType::Virtual, "lb", &net("10.0.0.0/26")),
            "/calico/ipam/v2/virtual/lb/ipv4/block/10.0.0.0-26"
        );
        assert_eq!(
            handle_key("ipip-tunnel-addr-node1"),
            "/calico/ipam/v2/handle/ipip-tunnel-addr-node1"
        );
        assert_eq!(
            affinity_prefix("n", IpVersion::V4),
            "/calico/ipam/v2/host/n/ipv4/block/"
        );
        assert_eq!(
            resource_prefix(Kind::WorkloadEndpoint, Some("ns")),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/"
        );
        // Policies under their plain name, also in other tiers and for converted Kubernetes
        // policies (v3.32's etcd layout, see `stored`).
        assert_eq!(
            resource_key(Kind::NetworkPolicy, "prod", "knp.default.web"),
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/knp.default.web"
        );
        assert_eq!(
            resource_key(Kind::GlobalNetworkPolicy, "", "security.deny"),
            "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/security.deny"
        );
        assert_eq!(
            resource_key(Kind::NetworkSet, "prod", "partners"),
            "/calico/resources/v3/projectcalico.org/networksets/prod/partners"
        );
        assert_eq!(
            resource_key(Kind::GlobalNetworkSet, "", "outside"),
            "/calico/resources/v3/projectcalico.org/globalnetworksets/outside"
        );
        assert_eq!(
            resource_key(Kind::Tier, "", "default"),
            "/calico/resources/v3/projectcalico.org/tiers/default"
        );
    }

    #[test]
    fn round_trip() {
        let keys = [
            Key::Resource {
                kind: Kind::IPPool,
                namespace: String::new(),
                name: "default-pool".into(),
            },
            Key::Resource {
                kind: Kind::WorkloadEndpoint,
                namespace: "ns".into(),
                name: "a".into(),
            },
            Key::Block(net("10.233.94.0/24")),
            Key::Block(net("fd00::/122")),
            Key::Affinity {
                affinity_type: AffinityType::Host,
                host: "node1".into(),
                cidr: net("10.233.94.0/24"),
            },
            Key::Affinity {
                affinity_type: AffinityType::Virtual,
                host: "lb".into(),
                cidr: net("fd00::40/122"),
            },
            Key::Handle("k8s-pod-network.abc".into()),
            Key::IpamConfig,
        ];
        for k in keys {
            assert_eq!(Key::parse(&k.path()).unwrap(), k, "{k}");
        }
    }

    #[test]
    fn bad_keys() {
        for bad in [
            "/calico/resources/v3/projectcalico.org/nosuch/a",
            "/calico/resources/v3/projectcalico.org/ippools/",
            "/calico/resources/v3/projectcalico.org/ippools/ns/a",
            "/calico/resources/v3/projectcalico.org/workloadendpoints/a",
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0",
            "/calico/ipam/v2/assignment/ipv6/block/10.0.0.0-24",
            "/calico/ipam/v2/host//ipv4/block/10.0.0.0-24",
            "/calico/ipam/v2/handle/",
            "/other",
        ] {
            let e = Key::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
