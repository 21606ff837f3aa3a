//! Building the lab's fabric: bridges, the router, the etcd host and the nodes, one `ip -batch`
//! per namespace (a 100-node fabric is 103 processes, not a thousand).

use brindle_netlink::{Handle, LinkChange, NetnsFd};

use crate::error::Result;
use crate::netns::ip_batch;
use crate::plan::{EXTERNAL_ADDR, Plan};

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
    // Bridged frames would otherwise go through the fabric namespace's netfilter (lab.md).
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
        router.push(format!("link set {} up", s.router_if));
    }
    ip_batch(&plan.router, &router)?;
    set_sysctls(&plan.router, &[("net.ipv4.ip_forward", "1")])?;

    if let Some(e) = &plan.etcd {
        ip_batch(
            &e.netns,
            &[
                "link set lo up".into(),
                format!("addr add {} dev eth0", e.addr),
                "link set eth0 up".into(),
                format!("route add default via {}", plan.subnets[0].router),
            ],
        )?;
    }
    for n in &plan.nodes {
        ip_batch(
            &n.netns,
            &[
                "link set lo up".into(),
                format!("addr add {} dev eth0", n.addr),
                "link set eth0 up".into(),
                format!("route add default via {}", n.gateway),
            ],
        )?;
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
