//! A small cluster in network namespaces (lab.md §1): a fabric namespace with bridges, node
//! namespaces with eth0 on a bridge, pods on `cali*` veths made the way the CNI plugin makes them
//! (through brindle-netlink), an "external" namespace, and for CrossSubnet a router between two
//! subnets. The test plays the agent: it builds each node's DesiredState and runs its Dataplane.

#![allow(dead_code)]

pub mod packets;
pub mod policy;

use std::net::Ipv4Addr;

use brindle_dataplane::{
    ApplyOptions, Dataplane, DataplaneConfig, DesiredState, EncapMode, IpipConfig, NatOutgoing, NodeInfo,
    RemoteBlock, RemoteVtep, VxlanConfig, Workload, workload,
};
use brindle_netlink::{Handle, LinkChange, NetnsFd, Route, VethSpec, scope};
use brindle_testkit::Netns;
use ipnet::{IpNet, Ipv4Net};

pub const POOL: &str = "10.233.64.0/18";
pub const BLOCKS: [&str; 3] = ["10.233.94.0/24", "10.233.87.0/24", "10.233.124.0/24"];

pub struct Pod {
    pub ns: Netns,
    pub ip: Ipv4Addr,
    pub iface: String,
    pub mac: [u8; 6],
}

pub struct Node {
    pub name: String,
    pub ns: Netns,
    pub ip: Ipv4Addr,
    pub subnet: Ipv4Net,
    pub block: Ipv4Net,
    pub pods: Vec<Pod>,
}

/// Pool modes of the cluster.
#[derive(Clone, Copy, Debug)]
pub struct Modes {
    pub ipip: EncapMode,
    pub vxlan: EncapMode,
}

pub struct Cluster {
    // Drop order: pods and nodes before the fabric (fields drop in declaration order).
    pub nodes: Vec<Node>,
    pub ext: Netns,
    pub router: Option<Netns>,
    pub fabric: Netns,
    pub modes: Modes,
}

/// Sets link `name` up; returns its index.
pub fn up(h: &mut Handle, name: &str) -> u32 {
    let l = h.require_link(name).unwrap();
    h.set_link(
        l.index,
        name,
        &LinkChange {
            up: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    l.index
}

impl Cluster {
    /// `n` nodes. With `cross_subnet`, the last node sits in 172.21.0.0/24 behind a router.
    pub fn new(n: usize, cross_subnet: bool, modes: Modes) -> Cluster {
        let fabric = Netns::new("dpf");
        fabric.ip(&["link", "add", "br0", "type", "bridge"]);
        fabric.ip(&["link", "set", "br0", "up"]);
        fabric.sysctl("net.bridge.bridge-nf-call-iptables", "0");
        if cross_subnet {
            fabric.ip(&["link", "add", "br1", "type", "bridge"]);
            fabric.ip(&["link", "set", "br1", "up"]);
        }
        // External host (and, in CrossSubnet, the router): 172.20.42.1 on br0.
        let ext = Netns::new("dpx");
        fabric.veth("x0", &ext, "eth0");
        fabric.ip(&["link", "set", "x0", "master", "br0", "up"]);
        ext.ip(&["addr", "add", "172.20.42.1/22", "dev", "eth0"]);
        ext.ip(&["link", "set", "eth0", "up"]);
        ext.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"]);
        let router = cross_subnet.then(|| {
            let r = Netns::new("dpr");
            fabric.veth("r0", &r, "eth0");
            fabric.ip(&["link", "set", "r0", "master", "br0", "up"]);
            fabric.veth("r1", &r, "eth1");
            fabric.ip(&["link", "set", "r1", "master", "br1", "up"]);
            r.ip(&["addr", "add", "172.20.42.2/22", "dev", "eth0"]);
            r.ip(&["addr", "add", "172.21.0.1/24", "dev", "eth1"]);
            r.ip(&["link", "set", "eth0", "up"]);
            r.ip(&["link", "set", "eth1", "up"]);
            r.sysctl("net.ipv4.ip_forward", "1");
            // The external host reaches the far subnet through the router.
            ext.ip(&["route", "add", "172.21.0.0/24", "via", "172.20.42.2"]);
            r
        });
        let mut nodes = Vec::new();
        for (i, block) in BLOCKS.iter().enumerate().take(n) {
            let far = cross_subnet && i == n - 1;
            let ns = Netns::new("dpn");
            let port = format!("n{i}");
            fabric.veth(&port, &ns, "eth0");
            fabric.ip(&[
                "link",
                "set",
                &port,
                "master",
                if far { "br1" } else { "br0" },
                "up",
            ]);
            let (ip, subnet, gw): (Ipv4Addr, Ipv4Net, &str) = if far {
                (
                    format!("172.21.0.{}", 10 + i).parse().unwrap(),
                    "172.21.0.0/24".parse().unwrap(),
                    "172.21.0.1",
                )
            } else {
                (
                    format!("172.20.42.{}", 80 + i).parse().unwrap(),
                    "172.20.40.0/22".parse().unwrap(),
                    if cross_subnet {
                        "172.20.42.2"
                    } else {
                        "172.20.42.1"
                    },
                )
            };
            ns.ip(&[
                "addr",
                "add",
                &format!("{ip}/{}", subnet.prefix_len()),
                "dev",
                "eth0",
            ]);
            ns.ip(&["link", "set", "eth0", "up"]);
            ns.ip(&["route", "add", "default", "via", gw]);
            nodes.push(Node {
                name: format!("bgp-master{}", i + 1),
                ns,
                ip,
                subnet,
                block: block.parse().unwrap(),
                pods: Vec::new(),
            });
        }
        Cluster {
            nodes,
            ext,
            router,
            fabric,
            modes,
        }
    }

    /// The pod MTU for the cluster's encapsulation.
    pub fn pod_mtu(&self) -> u32 {
        if self.modes.vxlan != EncapMode::Never {
            1450
        } else if self.modes.ipip != EncapMode::Never {
            1480
        } else {
            1500
        }
    }

    /// Adds a pod to node `i` the way the CNI plugin does (veth peer born in the pod namespace).
    pub fn add_pod(&mut self, i: usize) {
        let mtu = self.pod_mtu();
        let node = &mut self.nodes[i];
        let k = node.pods.len() as u32 + 1;
        let ip = Ipv4Addr::from(u32::from(node.block.network()) + k);
        let ns = Netns::new("dpp");
        let iface = format!("cali{:011x}", (u64::from(u32::from(ip)) << 8) ^ 0x5a5a5a);
        let pod_fd = NetnsFd::named(ns.name()).unwrap();
        let mut h = Handle::open_named(node.ns.name()).unwrap();
        h.add_veth(&VethSpec {
            name: &iface,
            mac: Some([0xee; 6]),
            mtu: Some(mtu),
            up: true,
            peer_name: "eth0",
            peer_mtu: Some(mtu),
            peer_netns: Some(&pod_fd),
            ..Default::default()
        })
        .unwrap();
        workload::configure_workload_iface(&h, &iface).unwrap();
        let mut ph = Handle::open(&pod_fd).unwrap();
        up(&mut ph, "eth0");
        let eth0 = ph.require_link("eth0").unwrap();
        ph.add_address(eth0.index, "eth0", IpNet::V4(Ipv4Net::new(ip, 32).unwrap()))
            .unwrap();
        ph.add_route(&Route::dev(
            "169.254.1.1/32".parse().unwrap(),
            eth0.index,
            scope::LINK,
        ))
        .unwrap();
        ph.add_route(&Route::via(
            "0.0.0.0/0".parse().unwrap(),
            "169.254.1.1".parse().unwrap(),
            eth0.index,
        ))
        .unwrap();
        node.pods.push(Pod {
            ns,
            ip,
            iface,
            mac: eth0.mac.unwrap(),
        });
    }

    /// Node `i`'s desired state, as the agent would compute it.
    pub fn desired(&self, i: usize) -> DesiredState {
        let me = &self.nodes[i];
        let mut d = DesiredState::new(NodeInfo {
            name: me.name.clone(),
            ip: me.ip,
            subnet: me.subnet,
        });
        d.local_blocks = vec![me.block];
        let others: Vec<&Node> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n)
            .collect();
        d.remote_blocks = others
            .iter()
            .map(|n| RemoteBlock {
                dst: n.block,
                node_ip: n.ip,
                ipip: self.modes.ipip,
                vxlan: self.modes.vxlan,
            })
            .collect();
        d.workloads = me
            .pods
            .iter()
            .map(|p| Workload {
                ip: p.ip,
                iface: p.iface.clone(),
                mac: Some(p.mac),
            })
            .collect();
        if self.modes.ipip != EncapMode::Never {
            d.ipip = Some(IpipConfig {
                tunnel_addr: Some(me.block.network()),
                mtu: 1480,
            });
        }
        if self.modes.vxlan != EncapMode::Never {
            d.vxlan = Some(VxlanConfig::new(
                me.block.network(),
                brindle_dataplane::vxlan::vtep_mac(&me.name),
                1450,
                others
                    .iter()
                    .map(|n| RemoteVtep {
                        node_ip: n.ip,
                        vtep_ip: n.block.network(),
                        mac: brindle_dataplane::vxlan::vtep_mac(&n.name),
                    })
                    .collect(),
            ));
        }
        let pool: Ipv4Net = POOL.parse().unwrap();
        d.nat = NatOutgoing {
            masq_pools: vec![pool],
            all_pools: vec![pool],
        };
        d.peer_nodes = others.iter().map(|n| n.ip).collect();
        d
    }

    /// Starts node `i`'s dataplane.
    pub fn start(&self, i: usize) -> Dataplane {
        let h = Handle::open_named(self.nodes[i].ns.name()).unwrap();
        let (dp, report) = Dataplane::start(h, self.config(i), &self.desired(i)).unwrap();
        assert!(report.errors.is_empty(), "node {i}: {:?}", report.errors);
        dp
    }

    pub fn config(&self, _i: usize) -> DataplaneConfig {
        DataplaneConfig::default()
    }

    /// Starts every node's dataplane.
    pub fn start_all(&self) -> Vec<Dataplane> {
        (0..self.nodes.len()).map(|i| self.start(i)).collect()
    }

    /// Every pod pings every other pod; returns the failing pairs.
    pub fn ping_all(&self) -> Vec<String> {
        let pods: Vec<&Pod> = self.nodes.iter().flat_map(|n| n.pods.iter()).collect();
        let mut bad = Vec::new();
        for a in &pods {
            for b in &pods {
                if a.ip != b.ip && !ping(&a.ns, &b.ip.to_string()) {
                    bad.push(format!("{} -> {}", a.ip, b.ip));
                }
            }
        }
        bad
    }

    pub fn opts() -> ApplyOptions {
        ApplyOptions {
            prune: true,
            full: false,
        }
    }
}

/// `ip route` output as lines without iproute2's trailing spaces.
pub fn lines(s: &str) -> Vec<String> {
    s.lines().map(|l| l.trim_end().to_string()).collect()
}

/// The seed: 3 nodes, IPIP Always, two pods on the first node.
pub fn seed_cluster() -> Cluster {
    let mut c = Cluster::new(
        3,
        false,
        Modes {
            ipip: EncapMode::Always,
            vxlan: EncapMode::Never,
        },
    );
    c.add_pod(0);
    c.add_pod(0);
    c
}

/// `n` nodes with one pod each, every node's dataplane started.
pub fn one_pod_per_node(cross_subnet: bool, modes: Modes) -> (Cluster, Vec<Dataplane>) {
    let mut c = Cluster::new(3, cross_subnet, modes);
    for i in 0..3 {
        c.add_pod(i);
    }
    let dps = c.start_all();
    (c, dps)
}

/// Ping with a few tries (the first packet may wait for ARP).
pub fn ping(ns: &Netns, addr: &str) -> bool {
    (0..3).any(|_| {
        ns.cmd("ping")
            .args(["-c", "1", "-W", "1", addr])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

/// A bridge-family nft counter in the fabric for IPIP (protocol 4) frames; returns its reader.
pub fn count_ipip_on_fabric(fabric: &Netns) -> impl Fn() -> u64 + '_ {
    let script = "table bridge brindletest {\n chain count4 {\n  type filter hook forward priority 0; policy accept;\n  ip protocol 4 counter\n }\n}\n";
    let mut c = fabric.cmd("nft");
    c.args(["-f", "-"]).stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    move || {
        let out = fabric.run("nft", &["list", "table", "bridge", "brindletest"]);
        out.split("packets ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// The median of `v` (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Gbit/s received, from `iperf3 -J` output.
pub fn iperf_gbps(json: &str) -> f64 {
    let tail = json
        .split("\"sum_received\"")
        .nth(1)
        .expect("iperf3 JSON has sum_received");
    let v: f64 = tail
        .split("\"bits_per_second\":")
        .nth(1)
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.trim().parse().ok())
        .expect("bits_per_second");
    v / 1e9
}
