//! Building the lab's fabric: bridges, the router, the etcd host and the nodes, one `ip -batch`
//! per namespace (a 100-node fabric is 103 processes, not a thousand).

use brindle_netlink::{Handle, LinkChange, NetnsFd};

use crate::error::Result;
use crate::netns::ip_batch;
use crate::plan::{EXTERNAL_ADDR, Plan};

/// Above this many nodes the lab writes permanent neighbour entries instead of relying on ARP:
/// the kernel's neighbour table is shared by every namespace (`gc_thresh3`, 1024 entries by
/// default), and a full mesh of N nodes needs about N² entries; permanent ones do not count.
pub const STATIC_NEIGHBOURS_ABOVE: usize = 8;

/// A fixed MAC for a lab address (`02:b1` + the IPv4 bytes), so neighbours can be written ahead.
pub fn mac_of(ip: std::net::Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:b1:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// Wires every namespace of `plan` (they must exist already).
pub fn build(plan: &Plan) -> Result<()> {
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
    for s in &plan.subnets {
        router.push(format!(
            "addr add {}/{} dev {}",
            s.router,
            s.net.prefix_len(),
            s.router_if
        ));
        // (The peer's `address` in `link add … peer …` is not applied; set it here.)
        router.push(format!("link set {} address {}", s.router_if, mac_of(s.router)));
        router.push(format!("link set {} up", s.router_if));
    }
    let static_neigh = plan.nodes.len() > STATIC_NEIGHBOURS_ABOVE;
    // (address, subnet index) of every host on the fabric.
    let mut hosts: Vec<(std::net::Ipv4Addr, usize)> =
        plan.nodes.iter().map(|n| (n.addr.addr(), n.subnet)).collect();
    if let Some(e) = &plan.etcd {
        hosts.push((e.addr.addr(), 0));
    }
    let neigh = |subnet: usize, dev: &str, me: std::net::Ipv4Addr| -> Vec<String> {
        if !static_neigh {
            return Vec::new();
        }
        let mut v: Vec<String> = hosts
            .iter()
            .filter(|(ip, s)| *s == subnet && *ip != me)
            .map(|(ip, _)| {
                format!(
                    "neigh replace {ip} lladdr {} dev {dev} nud permanent",
                    mac_of(*ip)
                )
            })
            .collect();
        let r = plan.subnets[subnet].router;
        if r != me {
            v.push(format!(
                "neigh replace {r} lladdr {} dev {dev} nud permanent",
                mac_of(r)
            ));
        }
        v
    };
    for (i, s) in plan.subnets.iter().enumerate() {
        router.extend(neigh(i, &s.router_if, s.router));
    }
    ip_batch(&plan.router, &router)?;
    set_sysctls(&plan.router, &[("net.ipv4.ip_forward", "1")])?;

    if let Some(e) = &plan.etcd {
        let mut lines = vec![
            "link set lo up".into(),
            format!("addr add {} dev eth0", e.addr),
            format!("link set eth0 address {}", mac_of(e.addr.addr())),
            "link set eth0 up".into(),
            format!("route add default via {}", plan.subnets[0].router),
        ];
        lines.extend(neigh(0, "eth0", e.addr.addr()));
        ip_batch(&e.netns, &lines)?;
    }
    for n in &plan.nodes {
        let mut lines = vec![
            "link set lo up".into(),
            format!("addr add {} dev eth0", n.addr),
            format!("link set eth0 address {}", mac_of(n.addr.addr())),
            "link set eth0 up".into(),
            format!("route add default via {}", n.gateway),
        ];
        lines.extend(neigh(n.subnet, "eth0", n.addr.addr()));
        ip_batch(&n.netns, &lines)?;
        set_sysctls(&n.netns, &[("net.ipv4.ip_forward", "1")])?;
    }
    // Pods only need their loopback up (the CNI plugin makes eth0): one netlink request each.
    for p in &plan.pods {
        let mut h = Handle::open_named(&p.netns)?;
        let lo = h.require_link("lo")?;
        h.set_link(
            lo.index,
            "lo",
            &LinkChange {
                up: Some(true),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

fn set_sysctls(netns: &str, pairs: &[(&str, &str)]) -> Result<()> {
    let ns = NetnsFd::named(netns)?;
    brindle_netlink::sysctl::set_in(&ns, pairs)?;
    Ok(())
}
