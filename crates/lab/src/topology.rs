//! Building the lab's fabric: bridges, the router, the etcd host and the nodes, one `ip -batch`
//! per namespace (a 100-node fabric is 103 processes, not a thousand).

use brindle_netlink::NetnsFd;

use crate::error::Result;
use crate::netns::{self, ip_batch};
use crate::plan::{EXTERNAL_ADDR, EXTERNAL_ADDR6, Plan};
use crate::spec::IpFamily;

/// Above this many nodes the lab writes permanent neighbour entries instead of relying on ARP:
/// the kernel's neighbour table is shared by every namespace (`gc_thresh3`, 1024 entries by
/// default), and a full mesh of N nodes needs about N² entries; permanent ones do not count.
pub const STATIC_NEIGHBOURS_ABOVE: usize = 8;

/// A fixed MAC for a lab address (`02:b1` + the IPv4 bytes), so neighbours can be written ahead.
pub fn mac_of(ip: std::net::Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:b1:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// Wires every namespace of `plan` (they must exist already), with the addresses of `family`
/// (IPv6 ones added with `nodad`: nothing else is on the lab's fabric, and duplicate address
/// detection would keep them unusable for a second or two).
pub fn build(plan: &Plan, family: IpFamily) -> Result<()> {
    let mut fabric = vec![];
    for s in &plan.subnets {
        fabric.push(format!("link add {} type bridge", s.bridge));
        fabric.push(format!("link set {} up", s.bridge));
        fabric.push(format!(
            "link add {} type veth peer name {} netns {}",
            s.router_port, s.router_if, plan.router
        ));
        fabric.push(format!("link set {} master {} up", s.router_port, s.bridge));
    }
    if let Some(e) = &plan.etcd {
        fabric.push(format!(
            "link add {} type veth peer name eth0 netns {}",
            e.port, e.netns
        ));
        fabric.push(format!(
            "link set {} master {} up",
            e.port, plan.subnets[0].bridge
        ));
    }
    for n in &plan.nodes {
        fabric.push(format!(
            "link add {} type veth peer name eth0 netns {}",
            n.port, n.netns
        ));
        fabric.push(format!(
            "link set {} master {} up",
            n.port, plan.subnets[n.subnet].bridge
        ));
    }
    ip_batch(&plan.fabric, &fabric)?;
    // Bridged frames would otherwise go through the fabric namespace's netfilter: with
    // br_netfilter built in, every new namespace starts with bridge-nf-call-iptables=1.
    set_sysctls(
        &plan.fabric,
        &[
            ("net.bridge.bridge-nf-call-iptables", "0"),
            ("net.bridge.bridge-nf-call-ip6tables", "0"),
            ("net.bridge.bridge-nf-call-arptables", "0"),
        ],
    )?;

    let mut router = vec![
        "link set lo up".to_string(),
        format!("addr add {EXTERNAL_ADDR}/32 dev lo"),
    ];
    if family.has_v6() {
        router.push(format!("addr add {EXTERNAL_ADDR6}/128 dev lo"));
    }
    for s in &plan.subnets {
        router.push(format!(
            "addr add {}/{} dev {}",
            s.router,
            s.net.prefix_len(),
            s.router_if
        ));
        if family.has_v6() {
            router.push(format!(
                "addr add {}/{} dev {} nodad",
                s.router6,
                s.net6.prefix_len(),
                s.router_if
            ));
        }
        // (The peer's `address` in `link add … peer …` is not applied; set it here.)
        router.push(format!("link set {} address {}", s.router_if, mac_of(s.router)));
        router.push(format!("link set {} up", s.router_if));
    }
    let static_neigh = plan.nodes.len() > STATIC_NEIGHBOURS_ABOVE;
    // (address, IPv6 address, subnet index) of every host on the fabric.
    let mut hosts: Vec<(std::net::Ipv4Addr, std::net::Ipv6Addr, usize)> = plan
        .nodes
        .iter()
        .map(|n| (n.addr.addr(), n.addr6.addr(), n.subnet))
        .collect();
    if let Some(e) = &plan.etcd {
        hosts.push((e.addr.addr(), e.addr6.addr(), 0));
    }
    let neigh = |subnet: usize, dev: &str, me: std::net::Ipv4Addr| -> Vec<String> {
        if !static_neigh {
            return Vec::new();
        }
        let s = &plan.subnets[subnet];
        let mut v = Vec::new();
        for (ip, ip6, _) in hosts
            .iter()
            .copied()
            .filter(|(ip, _, sub)| *sub == subnet && *ip != me)
            .chain((s.router != me).then_some((s.router, s.router6, subnet)))
        {
            let mac = mac_of(ip);
            if family.has_v4() {
                v.push(format!("neigh replace {ip} lladdr {mac} dev {dev} nud permanent"));
            }
            if family.has_v6() {
                v.push(format!(
                    "neigh replace {ip6} lladdr {mac} dev {dev} nud permanent"
                ));
            }
        }
        v
    };
    for (i, s) in plan.subnets.iter().enumerate() {
        router.extend(neigh(i, &s.router_if, s.router));
    }
    ip_batch(&plan.router, &router)?;
    set_sysctls(&plan.router, &forwarding(family))?;

    if let Some(e) = &plan.etcd {
        let mut lines = vec![
            "link set lo up".into(),
            format!("addr add {} dev eth0", e.addr),
            format!("link set eth0 address {}", mac_of(e.addr.addr())),
            "link set eth0 up".into(),
            format!("route add default via {}", plan.subnets[0].router),
        ];
        if family.has_v6() {
            lines.push(format!("addr add {} dev eth0 nodad", e.addr6));
            lines.push(format!("route add ::/0 via {}", plan.subnets[0].router6));
        }
        lines.extend(neigh(0, "eth0", e.addr.addr()));
        ip_batch(&e.netns, &lines)?;
    }
    for n in &plan.nodes {
        let mut lines = vec![
            "link set lo up".into(),
            format!("link set eth0 address {}", mac_of(n.addr.addr())),
            "link set eth0 up".into(),
        ];
        if family.has_v4() {
            lines.push(format!("addr add {} dev eth0", n.addr));
            lines.push(format!("route add default via {}", n.gateway));
        }
        if family.has_v6() {
            lines.push(format!("addr add {} dev eth0 nodad", n.addr6));
            lines.push(format!("route add ::/0 via {}", n.gateway6));
        }
        lines.extend(neigh(n.subnet, "eth0", n.addr.addr()));
        ip_batch(&n.netns, &lines)?;
        set_sysctls(&n.netns, &forwarding(family))?;
    }
    // Pods only need their loopback up (the CNI plugin makes eth0): one netlink request each.
    for p in &plan.pods {
        netns::loopback_up(&p.netns)?;
    }
    Ok(())
}

/// The forwarding sysctls of a router or node for `family` (IPv4's is set in every lab, as
/// before: the seed's nodes forward IPv4 whatever else they do).
fn forwarding(family: IpFamily) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("net.ipv4.ip_forward", "1")];
    if family.has_v6() {
        v.push(("net.ipv6.conf.all.forwarding", "1"));
    }
    v
}

fn set_sysctls(netns: &str, pairs: &[(&str, &str)]) -> Result<()> {
    let ns = NetnsFd::named(netns)?;
    brindle_netlink::sysctl::set_in(&ns, pairs)?;
    Ok(())
}
