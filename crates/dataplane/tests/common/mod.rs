//! A small cluster in network namespaces (the shape of `brindle lab`, README): a fabric namespace
//! with bridges, node namespaces with eth0 on a bridge, pods on `cali*` veths made the way the CNI
//! plugin makes them (through brindle-netlink), an "external" namespace, and for CrossSubnet a
//! router between two subnets. The test plays the agent: it builds each node's DesiredState and
//! runs its Dataplane. With IPv6 ([`Families`]), nodes also get an IPv6 underlay address
//! (fd00:20::8x/64, the far node fd00:21::1x/64 behind the router), a `/122` block of [`POOL6`],
//! and pods a `/128` and the default route through `fe80::ecee:eeff:feee:eeee`, as Calico's CNI
//! wires them.

#![allow(dead_code)]

pub mod packets;
pub mod policy;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use brindle_dataplane::{
    ApplyOptions, Dataplane, DataplaneConfig, DesiredState, EncapMode, IpipConfig, NatOutgoing, NodeInfo,
    RemoteBlock, RemoteVtep, VxlanConfig, Workload,
};
use brindle_netlink::{Handle, LinkChange, NetnsFd, Route, VethSpec, scope};
use brindle_testkit::Netns;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub const POOL: &str = "10.233.64.0/18";
pub const BLOCKS: [&str; 3] = ["10.233.94.0/24", "10.233.87.0/24", "10.233.124.0/24"];
pub const POOL6: &str = "fd00:10:233::/64";
pub const BLOCKS6: [&str; 3] = ["fd00:10:233::/122", "fd00:10:233::40/122", "fd00:10:233::80/122"];

/// The address families of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

pub const V4: Families = Families { v4: true, v6: false };
pub const DUAL: Families = Families { v4: true, v6: true };
pub const V6: Families = Families { v4: false, v6: true };

pub struct Pod {
    pub ns: Netns,
    /// The pod's IPv4 address (allocated from the block even when the cluster has no IPv4, but
    /// then not configured: see [`Pod::addrs`]).
    pub ip: Ipv4Addr,
    pub ip6: Option<Ipv6Addr>,
    pub v4: bool,
    pub iface: String,
    pub mac: [u8; 6],
}

impl Pod {
    /// The addresses the pod really has.
    pub fn addrs(&self) -> Vec<IpAddr> {
        let mut v = Vec::new();
        if self.v4 {
            v.push(IpAddr::V4(self.ip));
        }
        v.extend(self.ip6.map(IpAddr::V6));
        v
    }
}

pub struct Node {
    pub name: String,
    pub ns: Netns,
    pub ip: Ipv4Addr,
    pub subnet: Ipv4Net,
    pub block: Ipv4Net,
    /// The IPv6 underlay address with its subnet, and the node's IPv6 block.
    pub ip6: Option<Ipv6Net>,
    pub block6: Ipv6Net,
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
    pub families: Families,
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
        Cluster::with_families(n, cross_subnet, modes, V4)
    }

    /// [`Cluster::new`] with the given address families (IPv6: fd00:20::/64, the far node in
    /// fd00:21::/64; the external host also has 2001:db8::1 on `lo`).
    pub fn with_families(n: usize, cross_subnet: bool, modes: Modes, families: Families) -> Cluster {
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
        if families.v6 {
            ext.ip(&["-6", "addr", "add", "fd00:20::1/64", "dev", "eth0", "nodad"]);
            ext.ip(&["-6", "addr", "add", "2001:db8::1/128", "dev", "lo"]);
        }
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
            if families.v6 {
                r.ip(&["-6", "addr", "add", "fd00:20::2/64", "dev", "eth0", "nodad"]);
                r.ip(&["-6", "addr", "add", "fd00:21::1/64", "dev", "eth1", "nodad"]);
                r.sysctl("net.ipv6.conf.all.forwarding", "1");
                ext.ip(&["-6", "route", "add", "fd00:21::/64", "via", "fd00:20::2"]);
            }
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
            if families.v4 {
                ns.ip(&[
                    "addr",
                    "add",
                    &format!("{ip}/{}", subnet.prefix_len()),
                    "dev",
                    "eth0",
                ]);
            }
            let (net6, gw6) = if far {
                (format!("fd00:21::{}/64", 10 + i), "fd00:21::1")
            } else {
                (
                    format!("fd00:20::{}/64", 80 + i),
                    if cross_subnet { "fd00:20::2" } else { "fd00:20::1" },
                )
            };
            if families.v6 {
                // No duplicate address detection: the address is usable at once.
                ns.ip(&["-6", "addr", "add", &net6, "dev", "eth0", "nodad"]);
            }
            ns.ip(&["link", "set", "eth0", "up"]);
            if families.v4 {
                ns.ip(&["route", "add", "default", "via", gw]);
            }
            if families.v6 {
                ns.ip(&["-6", "route", "add", "default", "via", gw6]);
            }
            let ip6 = families.v6.then(|| net6.parse::<Ipv6Net>().unwrap());
            nodes.push(Node {
                name: format!("bgp-master{}", i + 1),
                ns,
                ip,
                subnet,
                block: block.parse().unwrap(),
                ip6,
                block6: BLOCKS6[i].parse().unwrap(),
                pods: Vec::new(),
            });
        }
        Cluster {
            nodes,
            ext,
            router,
            fabric,
            modes,
            families,
        }
    }

    /// The pod MTU for the cluster's encapsulation.
    pub fn pod_mtu(&self) -> u32 {
        if self.modes.vxlan != EncapMode::Never && self.families.v6 {
            1430
        } else if self.modes.vxlan != EncapMode::Never {
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
        let ip6 = self
            .families
            .v6
            .then(|| Ipv6Addr::from(u128::from(node.block6.network()) + u128::from(k)));
        let v4 = self.families.v4;
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
        brindle_netlink::workload::configure_workload_iface(&h, &iface).unwrap();
        let mut ph = Handle::open(&pod_fd).unwrap();
        if ip6.is_some() {
            // As Calico's CNI: no DAD on either end, so both link-local addresses (the host's
            // is the pod's gateway) are usable as soon as the pair is up.
            h.set_sysctls(&[
                (&format!("net/ipv6/conf/{iface}/accept_dad"), "0"),
                (&format!("net/ipv6/conf/{iface}/disable_ipv6"), "0"),
            ])
            .unwrap();
            brindle_dataplane::workload::configure_workload_iface_v6(&h, &iface).unwrap();
            ph.set_sysctls(&[("net/ipv6/conf/eth0/accept_dad", "0")]).unwrap();
        }
        up(&mut ph, "eth0");
        let eth0 = ph.require_link("eth0").unwrap();
        if v4 {
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
        }
        if let Some(ip6) = ip6 {
            ph.add_address(eth0.index, "eth0", IpNet::from(IpAddr::V6(ip6)))
                .unwrap();
            ph.add_route(&Route::via(
                "::/0".parse().unwrap(),
                "fe80::ecee:eeff:feee:eeee".parse().unwrap(),
                eth0.index,
            ))
            .unwrap();
        }
        node.pods.push(Pod {
            ns,
            ip,
            ip6,
            v4,
            iface,
            mac: eth0.mac.unwrap(),
        });
    }

    /// Node `i`'s desired state, as the agent would compute it.
    pub fn desired(&self, i: usize) -> DesiredState {
        let me = &self.nodes[i];
        let f = self.families;
        let mut d = DesiredState::new(NodeInfo {
            name: me.name.clone(),
            ipv4: f.v4.then(|| Ipv4Net::new(me.ip, me.subnet.prefix_len()).unwrap()),
            ipv6: me.ip6,
        });
        if f.v4 {
            d.local_blocks.push(IpNet::V4(me.block));
        }
        if f.v6 {
            d.local_blocks.push(IpNet::V6(me.block6));
        }
        let others: Vec<&Node> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, n)| n)
            .collect();
        for n in &others {
            if f.v4 {
                d.remote_blocks.push(RemoteBlock {
                    dst: IpNet::V4(n.block),
                    node_ip: IpAddr::V4(n.ip),
                    ipip: self.modes.ipip,
                    vxlan: self.modes.vxlan,
                });
            }
            if let Some(ip6) = n.ip6 {
                d.remote_blocks.push(RemoteBlock {
                    dst: IpNet::V6(n.block6),
                    node_ip: IpAddr::V6(ip6.addr()),
                    ipip: EncapMode::Never,
                    vxlan: self.modes.vxlan,
                });
            }
        }
        d.workloads = me
            .pods
            .iter()
            .flat_map(|p| {
                p.addrs().into_iter().map(|ip| Workload {
                    ip,
                    iface: p.iface.clone(),
                    mac: Some(p.mac),
                })
            })
            .collect();
        if f.v4 && self.modes.ipip != EncapMode::Never {
            d.ipip = Some(IpipConfig {
                tunnel_addr: Some(me.block.network()),
                mtu: 1480,
            });
        }
        if f.v4 && self.modes.vxlan != EncapMode::Never {
            d.vxlan = Some(VxlanConfig::new(
                me.block.network(),
                brindle_dataplane::vxlan::vtep_mac(&me.name),
                1450,
                others
                    .iter()
                    .map(|n| RemoteVtep {
                        node_ip: IpAddr::V4(n.ip),
                        vtep_ip: IpAddr::V4(n.block.network()),
                        mac: brindle_dataplane::vxlan::vtep_mac(&n.name),
                    })
                    .collect(),
            ));
        }
        if f.v6 && self.modes.vxlan != EncapMode::Never {
            d.vxlan_v6 = Some(VxlanConfig::new(
                me.block6.network(),
                brindle_dataplane::vxlan::vtep_mac_v6(&me.name),
                1430,
                others
                    .iter()
                    .map(|n| RemoteVtep {
                        node_ip: IpAddr::V6(n.ip6.unwrap().addr()),
                        vtep_ip: IpAddr::V6(n.block6.network()),
                        mac: brindle_dataplane::vxlan::vtep_mac_v6(&n.name),
                    })
                    .collect(),
            ));
        }
        let mut pools: Vec<IpNet> = Vec::new();
        if f.v4 {
            pools.push(POOL.parse().unwrap());
        }
        if f.v6 {
            pools.push(POOL6.parse().unwrap());
        }
        d.nat = NatOutgoing {
            masq: pools.clone(),
            all: pools,
        };
        if f.v4 {
            d.peer_nodes = others.iter().map(|n| n.ip).collect();
        }
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

    /// Every pod pings every other pod, on each address it has (ping and ping6); returns the
    /// failing pairs.
    pub fn ping_all(&self) -> Vec<String> {
        let pods: Vec<&Pod> = self.nodes.iter().flat_map(|n| n.pods.iter()).collect();
        let mut bad = Vec::new();
        for a in &pods {
            for b in &pods {
                if a.iface == b.iface {
                    continue;
                }
                for dst in b.addrs() {
                    if !ping(&a.ns, &dst.to_string()) {
                        bad.push(format!("{} -> {dst}", a.iface));
                    }
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
    count_on_fabric(fabric, "ip protocol 4")
}

/// A bridge-family nft counter in the fabric for frames matching `rule` (nft syntax, e.g.
/// `ip6 nexthdr udp udp dport 4789`); returns its reader.
pub fn count_on_fabric<'a>(fabric: &'a Netns, rule: &str) -> impl Fn() -> u64 + 'a {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let table = format!(
        "brindletest{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let script = format!(
        "table bridge {table} {{\n chain count {{\n  type filter hook forward priority 0; policy accept;\n  {rule} counter\n }}\n}}\n"
    );
    let mut c = fabric.cmd("nft");
    c.args(["-f", "-"]).stdin(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    move || {
        let out = fabric.run("nft", &["list", "table", "bridge", &table]);
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
