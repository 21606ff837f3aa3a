//! The layout of a lab, computed from its spec alone (pure): namespace names, addresses, links.
//!
//! ```text
//!  <name>-fabric: br0 (subnet A 172.20.40.0/22) [br1 (subnet B 172.20.44.0/22) with --cross-subnet]
//!     ├─ ext0 ── <name>-ext   eth0 172.20.42.1/22 [eth1 172.20.46.1/22]; lo 192.0.2.1/32
//!     ├─ etcd0 ─ <name>-etcd  eth0 172.20.42.10/22 (with --datastore etcd)
//!     └─ n<i> ── <name>-<node>  eth0 172.20.42.(80+i)/22, default via the router
//!                   └─ cali… ── <name>-pod-<node>-<j>  (made by the CNI plugin)
//! ```
//!
//! With `--ip-family 6|dual` every subnet also has a ULA /64 whose interface identifiers spell
//! the IPv4 address's last two bytes, so the two families read alike: subnet A is
//! `fd00:172:20:40::/64`, the router `fd00:172:20:40::42:1`, node `i` `fd00:172:20:40::42:(80+i)`
//! (`fd00:172:20:44::46:81` on subnet B); the router's loopback holds `2001:db8::1/128` as the
//! IPv6 "internet" (RFC 3849's documentation prefix). A v6-only lab keeps the IPv4 plan for
//! names and MACs but configures no IPv4 address on the nodes.
//! Interface names live inside the lab's own namespaces, so only namespace names (and the lab
//! directory) must be unique on the machine: they all start with the lab name.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::spec::{DatastoreKind, LabSpec};

/// The external address on the router's loopback: the target of NAT-outgoing tests.
pub const EXTERNAL_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The IPv6 external address on the router's loopback (RFC 3849 documentation prefix): the
/// target of NAT66 tests.
pub const EXTERNAL_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The seed's pool.
pub const POOL_NAME: &str = "default-pool";
pub const POOL_CIDR: &str = "10.233.64.0/18";
pub const BLOCK_SIZE: u8 = 24;
/// The IPv6 pool of `--ip-family 6|dual`: Calico's default name, a ULA range that echoes the
/// seed's `10.233`, and Calico's default IPv6 block size (/122, 64 addresses).
pub const POOL6_NAME: &str = "default-ipv6-ippool";
pub const POOL6_CIDR: &str = "fd00:10:233::/112";
pub const BLOCK_SIZE6: u8 = 122;
/// Calico's default AS.
pub const AS_NUMBER: u32 = 64512;
/// The Kubernetes namespace of the lab's pods.
pub const POD_NAMESPACE: &str = "default";

/// One L2 segment of the fabric (a bridge) and its router address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub bridge: String,
    pub net: Ipv4Net,
    pub router: Ipv4Addr,
    /// The router's interface on this subnet.
    pub router_if: String,
    /// The fabric port of the router on this bridge.
    pub router_port: String,
    /// The subnet's IPv6 prefix and the router's address in it (used with `--ip-family 6|dual`).
    pub net6: Ipv6Net,
    pub router6: Ipv6Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    pub name: String,
    pub netns: String,
    /// Its fabric port (in the fabric namespace).
    pub port: String,
    /// Which subnet (index into [`Plan::subnets`]).
    pub subnet: usize,
    /// `eth0` address with the subnet's prefix, e.g. `172.20.42.80/22`.
    pub addr: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// `eth0` IPv6 address with the subnet's /64 (see [`v6_of`]).
    pub addr6: Ipv6Net,
    pub gateway6: Ipv6Addr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPlan {
    /// Kubernetes pod name.
    pub name: String,
    /// Kubernetes namespace (`default` for the seed's pods).
    pub namespace: String,
    pub node: String,
    pub netns: String,
    /// The runtime's container ID (64 hex characters, derived from the lab and pod names).
    pub container_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdPlan {
    pub netns: String,
    pub port: String,
    pub addr: Ipv4Net,
    pub addr6: Ipv6Net,
    /// A v6-only lab reaches etcd over IPv6.
    pub v6_only: bool,
}

impl EtcdPlan {
    pub fn endpoint(&self) -> String {
        if self.v6_only {
            format!("http://[{}]:2379", self.addr6.addr())
        } else {
            format!("http://{}:2379", self.addr.addr())
        }
    }
}

/// Everything a lab consists of, by exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub fabric: String,
    pub router: String,
    pub subnets: Vec<Subnet>,
    pub etcd: Option<EtcdPlan>,
    pub nodes: Vec<NodePlan>,
    pub pods: Vec<PodPlan>,
}

/// Name of node `i` (0-based): `bgp-master1`, then `bgp-node1`, `bgp-node2`, …
///
/// These are the seed's node names: Calico starts a node's block search at a block picked by Go's
/// `math/rand` seeded with the FNV-32 of its name, and these three names start at exactly the
/// article's blocks (10.233.94.0/24, 10.233.87.0/24, 10.233.124.0/24 of 10.233.64.0/18), so the
/// lab's `ip route` shows the article's block routes line for line.
pub fn node_name(i: usize) -> String {
    if i == 0 {
        "bgp-master1".to_string()
    } else {
        format!("bgp-node{i}")
    }
}

/// Name of pod `j` (0-based) of a node.
pub fn pod_name(node: &str, j: usize) -> String {
    format!("pod-{node}-{}", j + 1)
}

/// A stable fake container ID (64 hex) for a pod, as a runtime would pass in `CNI_CONTAINERID`.
pub fn container_id(lab: &str, pod: &str) -> String {
    use sha1::{Digest, Sha1};
    let a = Sha1::digest(format!("{lab}/{pod}").as_bytes());
    let b = Sha1::digest(format!("{pod}/{lab}").as_bytes());
    let mut s: String = a.iter().chain(b.iter()).map(|x| format!("{x:02x}")).collect();
    s.truncate(64);
    s
}

fn offset(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + n)
}

/// The IPv6 address of a fabric host in `net6` (a /64): interface identifier `::C:D` written
/// with the decimal digits of the IPv4 address `A.B.C.D`, so `172.20.42.80` is `…::42:80`.
pub fn v6_of(net6: Ipv6Net, v4: Ipv4Addr) -> Ipv6Addr {
    let [_, _, c, d] = v4.octets();
    let hexish = |x: u8| u16::from_str_radix(&x.to_string(), 16).expect("decimal digits are hex");
    let mut seg = net6.network().segments();
    seg[6] = hexish(c);
    seg[7] = hexish(d);
    Ipv6Addr::from(seg)
}

impl Plan {
    pub fn new(spec: &LabSpec) -> Plan {
        let p = &spec.name;
        let mut subnets = vec![Subnet {
            bridge: "br0".into(),
            net: "172.20.40.0/22".parse().expect("cidr"),
            router: Ipv4Addr::new(172, 20, 42, 1),
            router_if: "eth0".into(),
            router_port: "ext0".into(),
            net6: "fd00:172:20:40::/64".parse().expect("cidr"),
            router6: "fd00:172:20:40::42:1".parse().expect("addr"),
        }];
        if spec.cross_subnet {
            subnets.push(Subnet {
                bridge: "br1".into(),
                net: "172.20.44.0/22".parse().expect("cidr"),
                router: Ipv4Addr::new(172, 20, 46, 1),
                router_if: "eth1".into(),
                router_port: "ext1".into(),
                net6: "fd00:172:20:44::/64".parse().expect("cidr"),
                router6: "fd00:172:20:44::46:1".parse().expect("addr"),
            });
        }
        let nodes: Vec<NodePlan> = (0..spec.nodes)
            .map(|i| {
                let subnet = if spec.cross_subnet { i % 2 } else { 0 };
                let s = &subnets[subnet];
                // Host part .80 + i of the subnet's second /24 (172.20.42.80 for the first node).
                let base = offset(s.net.network(), 2 * 256 + 80);
                let name = node_name(i);
                let v4 = offset(base, i as u32);
                NodePlan {
                    netns: format!("{p}-{name}"),
                    port: format!("n{i}"),
                    subnet,
                    addr: Ipv4Net::new(v4, s.net.prefix_len()).expect("prefix"),
                    gateway: s.router,
                    addr6: Ipv6Net::new(v6_of(s.net6, v4), s.net6.prefix_len()).expect("prefix"),
                    gateway6: s.router6,
                    name,
                }
            })
            .collect();
        let pods = nodes
            .iter()
            .flat_map(|n| {
                (0..spec.pods).map(move |j| {
                    let name = pod_name(&n.name, j);
                    PodPlan {
                        netns: format!("{p}-{name}"),
                        namespace: POD_NAMESPACE.to_string(),
                        container_id: container_id(p, &name),
                        node: n.name.clone(),
                        name,
                    }
                })
            })
            .collect();
        let etcd = (spec.datastore == DatastoreKind::Etcd).then(|| EtcdPlan {
            netns: format!("{p}-etcd"),
            port: "etcd0".into(),
            addr: "172.20.42.10/22".parse().expect("cidr"),
            addr6: "fd00:172:20:40::42:10/64".parse().expect("cidr"),
            v6_only: !spec.ip_family.has_v4(),
        });
        Plan {
            fabric: format!("{p}-fabric"),
            router: format!("{p}-ext"),
            subnets,
            etcd,
            nodes,
            pods,
        }
    }

    /// Every namespace of the lab, in creation order (fabric first).
    pub fn namespaces(&self) -> Vec<String> {
        let mut v = vec![self.fabric.clone(), self.router.clone()];
        v.extend(self.etcd.iter().map(|e| e.netns.clone()));
        v.extend(self.nodes.iter().map(|n| n.netns.clone()));
        v.extend(self.pods.iter().map(|p| p.netns.clone()));
        v
    }

    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// A pod by `NAMESPACE/NAME`, or by its name alone when only one namespace has it.
    pub fn pod(&self, target: &str) -> Option<&PodPlan> {
        match target.split_once('/') {
            Some((ns, name)) => self.pods.iter().find(|p| p.namespace == ns && p.name == name),
            None => {
                let mut found = self.pods.iter().filter(|p| p.name == target);
                let first = found.next()?;
                found.next().is_none().then_some(first)
            }
        }
    }
}

/// The network namespace of Kubernetes pod `namespace/name` in lab `lab`: `<lab>-<ns>.<pod>`
/// (a namespace name has no dot, so this never meets a node's or a seed pod's name), shortened
/// with a hash when longer than a file name may be.
pub fn k8s_pod_netns(lab: &str, namespace: &str, name: &str) -> String {
    let full = format!("{lab}-{namespace}.{name}");
    if full.len() <= 200 {
        return full;
    }
    let hash = &container_id(lab, &format!("{namespace}/{name}"))[..12];
    let keep: String = full.chars().take(180).collect();
    format!("{keep}-{hash}")
}

/// The container ID of Kubernetes pod `namespace/name` (the seed's pods keep [`container_id`]
/// of their name alone).
pub fn k8s_container_id(lab: &str, namespace: &str, name: &str) -> String {
    container_id(lab, &format!("{namespace}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_model::resources::EncapMode;

    #[test]
    fn seed_layout() {
        let plan = Plan::new(&LabSpec::default());
        let addrs: Vec<String> = plan.nodes.iter().map(|n| n.addr.to_string()).collect();
        assert_eq!(addrs, ["172.20.42.80/22", "172.20.42.81/22", "172.20.42.82/22"]);
        assert_eq!(plan.nodes[0].name, "bgp-master1");
        assert_eq!(plan.nodes[0].netns, "brindle-bgp-master1");
        assert_eq!(plan.nodes[0].gateway, Ipv4Addr::new(172, 20, 42, 1));
        assert_eq!(plan.pods.len(), 6);
        assert_eq!(plan.pods[0].name, "pod-bgp-master1-1");
        assert_eq!(plan.pods[0].container_id.len(), 64);
        assert!(plan.etcd.is_none());
        assert_eq!(plan.namespaces().len(), 2 + 3 + 6);
        let addrs6: Vec<String> = plan.nodes.iter().map(|n| n.addr6.to_string()).collect();
        assert_eq!(
            addrs6,
            [
                "fd00:172:20:40::42:80/64",
                "fd00:172:20:40::42:81/64",
                "fd00:172:20:40::42:82/64"
            ]
        );
        assert_eq!(plan.nodes[2].gateway6.to_string(), "fd00:172:20:40::42:1");
    }

    #[test]
    fn cross_subnet_alternates_and_every_name_is_prefixed() {
        let spec = LabSpec {
            name: "x1".into(),
            nodes: 4,
            cross_subnet: true,
            ipip_mode: EncapMode::Never,
            vxlan_mode: EncapMode::CrossSubnet,
            datastore: DatastoreKind::Etcd,
            ..Default::default()
        };
        let plan = Plan::new(&spec);
        let addrs: Vec<String> = plan.nodes.iter().map(|n| n.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "172.20.42.80/22",
                "172.20.46.81/22",
                "172.20.42.82/22",
                "172.20.46.83/22"
            ]
        );
        assert_eq!(plan.nodes[1].gateway, Ipv4Addr::new(172, 20, 46, 1));
        assert_eq!(plan.nodes[1].addr6.to_string(), "fd00:172:20:44::46:81/64");
        assert_eq!(plan.nodes[1].gateway6.to_string(), "fd00:172:20:44::46:1");
        assert_eq!(plan.etcd.as_ref().unwrap().endpoint(), "http://172.20.42.10:2379");
        assert!(plan.namespaces().iter().all(|n| n.starts_with("x1-")));
        let mut names = plan.namespaces();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), plan.namespaces().len());
    }

    #[test]
    fn largest_lab_stays_in_its_subnet() {
        let plan = Plan::new(&LabSpec {
            nodes: crate::spec::MAX_NODES,
            ..Default::default()
        });
        let last = plan.nodes.last().unwrap().addr;
        assert!(plan.subnets[0].net.contains(&last.addr()), "{last}");
        assert_ne!(last.addr(), plan.subnets[0].net.broadcast());
        let mut v6: Vec<Ipv6Addr> = plan.nodes.iter().map(|n| n.addr6.addr()).collect();
        v6.sort();
        v6.dedup();
        assert_eq!(v6.len(), plan.nodes.len(), "IPv6 addresses are unique");
    }
}
