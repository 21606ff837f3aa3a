//! One table case per semantic rule of Calico's policy model (the module doc of
//! `brindle_policy::ir` gives the verdict order): inputs → the verdict of probes between pods
//! on two nodes, decided by the evaluator over each node's IR (mirrored from its deltas).

#[path = "../support/mod.rs"]
mod support;

mod matches;
mod selection;

use std::net::IpAddr;

use brindle_policy::eval::{self, Decision, Packet};
use brindle_policy::ir::{Settings, TierDefault};
use brindle_policy::{PolicyInput, TierInput};
pub(crate) use support::*;

pub(crate) const POD_XA: Pod = Pod {
    namespace: "x",
    name: "a",
    node: "n1",
    labels: &[("pod", "a"), ("app", "web")],
    ips: &["10.0.1.1", "fd00::1:1"],
    service_account: "web",
    ports: &[("http", "TCP", 80), ("dns", "UDP", 53), ("dns", "TCP", 53)],
};
pub(crate) const POD_XB: Pod = Pod {
    namespace: "x",
    name: "b",
    node: "n1",
    labels: &[("pod", "b")],
    ips: &["10.0.1.2", "fd00::1:2"],
    service_account: "api",
    ports: &[("http", "TCP", 8080)],
};
pub(crate) const POD_YA: Pod = Pod {
    namespace: "y",
    name: "a",
    node: "n2",
    labels: &[("pod", "a")],
    ips: &["10.0.2.1", "fd00::2:1"],
    service_account: "",
    ports: &[],
};
pub(crate) const POD_YB: Pod = Pod {
    namespace: "y",
    name: "b",
    node: "n2",
    labels: &[("pod", "b"), ("role", "db")],
    ips: &["10.0.2.2", "fd00::2:2"],
    service_account: "web",
    ports: &[],
};
pub(crate) const PODS: [Pod; 4] = [POD_XA, POD_XB, POD_YA, POD_YB];
/// An address outside the cluster.
pub(crate) const OUTSIDE: &str = "192.0.2.10";

pub(crate) fn world() -> Cluster {
    world_with(Settings::default())
}

pub(crate) fn world_with(settings: Settings) -> Cluster {
    let mut c = Cluster::with_settings(&["n1", "n2"], settings);
    c.add_profile(&namespace_profile("x", &[("team", "blue")]));
    c.add_profile(&namespace_profile("y", &[("team", "red")]));
    c.add_profile(&service_account_profile("x", "web", &[("tier", "fe")]));
    c.add_profile(&service_account_profile("x", "api", &[("tier", "be")]));
    c.add_profile(&service_account_profile("y", "web", &[("tier", "fe")]));
    for p in &PODS {
        c.add_pod(p);
    }
    c
}

pub(crate) fn pod(name: &str) -> &'static Pod<'static> {
    PODS.iter()
        .find(|p| format!("{}/{}", p.namespace, p.name) == name)
        .unwrap_or_else(|| panic!("no pod {name}"))
}

/// A probe: `tcp/80`, `udp/53`, `sctp/81`, `icmp/8/0`, `ipip`, each with `6` after the
/// protocol for IPv6 (`tcp6/80`, `icmp6/128/0`).
pub(crate) fn packet(probe: &str, src: IpAddr, dst: IpAddr) -> Packet {
    let parts: Vec<&str> = probe.split('/').collect();
    let n = |i: usize| parts[i].parse::<u16>().unwrap();
    match parts[0].trim_end_matches('6') {
        "tcp" => Packet::tcp(src, dst, n(1)),
        "udp" => Packet::udp(src, dst, n(1)),
        "sctp" => Packet::sctp(src, dst, n(1)),
        "icmp" => Packet::icmp(src, dst, n(1) as u8, n(2) as u8),
        "ipip" => Packet::other(src, dst, 4),
        other => panic!("probe {other}"),
    }
}

pub(crate) fn addr(who: &str, v6: bool) -> IpAddr {
    match who.parse() {
        Ok(ip) => ip,
        Err(_) if v6 => pod(who).ip6(),
        Err(_) => pod(who).ip(),
    }
}

/// Decides `probe` from `src` to `dst` (pods as `ns/name`, or an outside address).
pub(crate) fn decide(c: &Cluster, src: &str, dst: &str, probe: &str) -> Decision {
    let v6 = probe.split('/').next().unwrap().ends_with('6');
    let p = packet(probe, addr(src, v6), addr(dst, v6));
    let states = c.states();
    match (src.parse::<IpAddr>().is_ok(), dst.parse::<IpAddr>().is_ok()) {
        (false, false) => eval::workload_to_workload(&states, &pod(src).key(), &pod(dst).key(), &p),
        (false, true) => {
            let s = c.state(pod(src).node);
            eval::egress_verdict(s, &pod(src).key(), &p)
        }
        (true, false) => eval::ingress_verdict(c.state(pod(dst).node), &pod(dst).key(), &p),
        (true, true) => panic!("no pod in {src} -> {dst}"),
    }
}

/// Checks `(src, dst, probe, allowed)` rows.
pub(crate) fn expect(c: &Cluster, case: &str, rows: &[(&str, &str, &str, bool)]) {
    for (src, dst, probe, want) in rows {
        let d = decide(c, src, dst, probe);
        assert_eq!(
            d.allowed, *want,
            "{case}: {src} -> {dst} {probe}: got {} ({})",
            d.allowed, d.reason
        );
    }
}

pub(crate) fn tier(name: &str, order: Option<f64>, default_action: TierDefault) -> TierInput {
    TierInput {
        name: name.into(),
        order,
        default_action,
    }
}

pub(crate) fn in_tier(mut p: PolicyInput, tier: &str) -> PolicyInput {
    p.tier = tier.into();
    p
}
