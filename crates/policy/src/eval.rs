//! A packet's verdict decided from the IR alone, the way the dataplane's rules decide it (the
//! order is in [`crate::ir`]'s module doc). For tests, and for printing the expected truth
//! table next to the one a lab measures.
//!
//! It decides the first packet of a connection: conntrack (established and related packets
//! accepted before any policy) is not modelled.

use std::net::IpAddr;

use crate::ir::{
    Action, Direction, Endpoint, EndpointKey, EndpointToHostAction, IpFamily, Member, PeerMatch, Rule, SetId,
    SetKey, State, TierDefault,
};

/// A packet, as policy sees it (after DNAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    /// Source and destination ports, for protocols that have them.
    pub ports: Option<(u16, u16)>,
    /// ICMP or ICMPv6 type and code.
    pub icmp: Option<(u8, u8)>,
}

impl Packet {
    pub fn tcp(src: IpAddr, dst: IpAddr, dst_port: u16) -> Packet {
        Packet::with_ports(src, dst, 6, 40000, dst_port)
    }

    pub fn udp(src: IpAddr, dst: IpAddr, dst_port: u16) -> Packet {
        Packet::with_ports(src, dst, 17, 40000, dst_port)
    }

    pub fn sctp(src: IpAddr, dst: IpAddr, dst_port: u16) -> Packet {
        Packet::with_ports(src, dst, 132, 40000, dst_port)
    }

    pub fn with_ports(src: IpAddr, dst: IpAddr, protocol: u8, sport: u16, dport: u16) -> Packet {
        Packet {
            src,
            dst,
            protocol,
            ports: Some((sport, dport)),
            icmp: None,
        }
    }

    /// An ICMP (v4 addresses) or ICMPv6 (v6 addresses) packet.
    pub fn icmp(src: IpAddr, dst: IpAddr, icmp_type: u8, code: u8) -> Packet {
        let protocol = if src.is_ipv4() { 1 } else { 58 };
        Packet {
            src,
            dst,
            protocol,
            ports: None,
            icmp: Some((icmp_type, code)),
        }
    }

    /// Another protocol, without ports.
    pub fn other(src: IpAddr, dst: IpAddr, protocol: u8) -> Packet {
        Packet {
            src,
            dst,
            protocol,
            ports: None,
            icmp: None,
        }
    }

    fn family(&self) -> IpFamily {
        IpFamily::of_addr(&self.src)
    }
}

/// What happened to a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Which rule or default decided, e.g. `np/x/web ingress v4 rule 0 (tier default)`.
    pub reason: String,
    /// The prefixes of the Log rules it went through.
    pub logs: Vec<String>,
}

impl Decision {
    fn allow(reason: String, logs: Vec<String>) -> Decision {
        Decision {
            allowed: true,
            reason,
            logs,
        }
    }

    fn deny(reason: String, logs: Vec<String>) -> Decision {
        Decision {
            allowed: false,
            reason,
            logs,
        }
    }
}

fn in_set(state: &State, id: &SetId, family: IpFamily, probe: impl Fn(&Member) -> bool) -> bool {
    let key = SetKey {
        id: id.clone(),
        family,
    };
    state.sets.get(&key).is_some_and(|s| s.members.iter().any(probe))
}

fn addr_in_set(state: &State, id: &SetId, family: IpFamily, addr: IpAddr) -> bool {
    in_set(state, id, family, |m| match m {
        Member::Net(n) => n.contains(&addr),
        Member::AddrPort { .. } => false,
    })
}

fn named_port_in_set(
    state: &State,
    id: &SetId,
    family: IpFamily,
    addr: IpAddr,
    proto: u8,
    port: u16,
) -> bool {
    in_set(state, id, family, |m| {
        *m == Member::AddrPort {
            addr,
            protocol: proto,
            port,
        }
    })
}

fn peer_matches(
    state: &State,
    m: &PeerMatch,
    family: IpFamily,
    addr: IpAddr,
    proto: u8,
    port: Option<u16>,
) -> bool {
    if !m.nets.is_empty() && !m.nets.iter().any(|n| n.contains(&addr)) {
        return false;
    }
    if m.not_nets.iter().any(|n| n.contains(&addr)) {
        return false;
    }
    if !m.sets.iter().all(|s| addr_in_set(state, s, family, addr)) {
        return false;
    }
    if m.not_sets.iter().any(|s| addr_in_set(state, s, family, addr)) {
        return false;
    }
    let port_in = |ranges: &[crate::ir::PortRange], sets: &[SetId], port: u16| {
        ranges.iter().any(|r| r.contains(port))
            || sets
                .iter()
                .any(|s| named_port_in_set(state, s, family, addr, proto, port))
    };
    if !m.ports.is_empty() || !m.named_port_sets.is_empty() {
        match port {
            Some(p) if port_in(&m.ports, &m.named_port_sets, p) => {}
            _ => return false,
        }
    }
    if !m.not_ports.is_empty() || !m.not_named_port_sets.is_empty() {
        match port {
            Some(p) if !port_in(&m.not_ports, &m.not_named_port_sets, p) => {}
            _ => return false,
        }
    }
    true
}

/// Whether `rule` (from the rule list of the packet's family) matches the packet.
pub fn rule_matches(state: &State, rule: &Rule, packet: &Packet) -> bool {
    let family = packet.family();
    if rule.protocol.is_some_and(|p| p != packet.protocol) {
        return false;
    }
    if rule.not_protocol == Some(packet.protocol) {
        return false;
    }
    let icmp_proto = match family {
        IpFamily::V4 => 1,
        IpFamily::V6 => 58,
    };
    let icmp_of_family = packet.icmp.filter(|_| packet.protocol == icmp_proto);
    let icmp_is =
        |want: &crate::ir::Icmp, (t, c): (u8, u8)| t == want.icmp_type && want.code.is_none_or(|wc| wc == c);
    if let Some(want) = &rule.icmp
        && !icmp_of_family.is_some_and(|tc| icmp_is(want, tc))
    {
        return false;
    }
    if let Some(want) = &rule.not_icmp
        && icmp_of_family.is_none_or(|tc| icmp_is(want, tc))
    {
        return false;
    }
    let (sport, dport) = match packet.ports {
        Some((s, d)) => (Some(s), Some(d)),
        None => (None, None),
    };
    peer_matches(state, &rule.src, family, packet.src, packet.protocol, sport)
        && peer_matches(state, &rule.dst, family, packet.dst, packet.protocol, dport)
}

/// How a rule list ended for a packet.
enum ListResult {
    Allow(usize),
    Deny(usize),
    Pass,
    NoMatch,
}

fn run_rules(state: &State, rules: &[Rule], packet: &Packet, logs: &mut Vec<String>) -> ListResult {
    for (i, rule) in rules.iter().enumerate() {
        if !rule_matches(state, rule, packet) {
            continue;
        }
        match &rule.action {
            Action::Allow => return ListResult::Allow(i),
            Action::Deny => return ListResult::Deny(i),
            Action::Pass => return ListResult::Pass,
            Action::Log { prefix } => logs.push(prefix.clone()),
        }
    }
    ListResult::NoMatch
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// Runs one endpoint's chain for one direction (tiers, then profiles).
pub fn endpoint_verdict(
    state: &State,
    endpoint: &Endpoint,
    direction: Direction,
    packet: &Packet,
) -> Decision {
    let family = packet.family();
    let fam = match family {
        IpFamily::V4 => "v4",
        IpFamily::V6 => "v6",
    };
    let dn = dir_name(direction);
    let mut logs = Vec::new();
    if direction == Direction::Egress {
        let s = &state.settings;
        let vxlan = packet.protocol == 17 && packet.ports.is_some_and(|(_, d)| d == s.vxlan_port);
        if vxlan && !s.allow_vxlan_packets_from_workloads {
            return Decision::deny("VXLAN from a workload".into(), logs);
        }
        if packet.protocol == 4 && !s.allow_ipip_packets_from_workloads {
            return Decision::deny("IPIP from a workload".into(), logs);
        }
    }
    for tier in &endpoint.direction(direction).tiers {
        let mut passed = false;
        for id in &tier.policies {
            let Some(policy) = state.policies.get(id) else {
                return Decision::deny(format!("policy {id} not programmed"), logs);
            };
            let rules = policy.rules(direction).family(family);
            let at = |i: usize| format!("{id} {dn} {fam} rule {i} (tier {})", tier.name);
            match run_rules(state, rules, packet, &mut logs) {
                ListResult::Allow(i) => return Decision::allow(at(i), logs),
                ListResult::Deny(i) => return Decision::deny(at(i), logs),
                ListResult::Pass => {
                    passed = true;
                    break;
                }
                ListResult::NoMatch => {}
            }
        }
        if !passed && tier.default_action == TierDefault::Deny {
            return Decision::deny(format!("end of tier {}", tier.name), logs);
        }
    }
    for name in &endpoint.direction(direction).profiles {
        let Some(profile) = state.profiles.get(name) else {
            return Decision::deny(format!("profile {name} not programmed"), logs);
        };
        let rules = profile.rules(direction).family(family);
        let at = |i: usize| format!("profile {name} {dn} {fam} rule {i}");
        match run_rules(state, rules, packet, &mut logs) {
            ListResult::Allow(i) => return Decision::allow(at(i), logs),
            ListResult::Deny(i) => return Decision::deny(at(i), logs),
            ListResult::Pass | ListResult::NoMatch => {}
        }
    }
    Decision::deny("no profile matched".into(), logs)
}

/// A packet sent by local endpoint `src`: dropped if its source is not the endpoint's (strict
/// reverse-path filtering), else its egress chain.
pub fn egress_verdict(state: &State, src: &EndpointKey, packet: &Packet) -> Decision {
    let Some(ep) = state.endpoints.get(src) else {
        return Decision::deny(format!("unknown endpoint {src}"), Vec::new());
    };
    let own = ep
        .addrs
        .iter()
        .chain(&ep.allow_spoofed_sources)
        .any(|n| n.contains(&packet.src));
    if !own {
        return Decision::deny(format!("spoofed source {} from {src}", packet.src), Vec::new());
    }
    endpoint_verdict(state, ep, Direction::Egress, packet)
}

/// A packet to local endpoint `dst`: its ingress chain.
pub fn ingress_verdict(state: &State, dst: &EndpointKey, packet: &Packet) -> Decision {
    match state.endpoints.get(dst) {
        Some(ep) => endpoint_verdict(state, ep, Direction::Ingress, packet),
        None => Decision::deny(format!("unknown endpoint {dst}"), Vec::new()),
    }
}

/// A packet from local endpoint `src` to its own host: egress policy, then
/// `defaultEndpointToHostAction` (`Return` leaves it to the host's rules: allowed here). IPv6
/// neighbour discovery and multicast listener messages (ICMPv6 130–133, 135, 136) always pass.
pub fn to_host_verdict(state: &State, src: &EndpointKey, packet: &Packet) -> Decision {
    if packet.protocol == 58
        && packet
            .icmp
            .is_some_and(|(t, _)| matches!(t, 130..=133 | 135 | 136))
    {
        return Decision::allow("ICMPv6 neighbour discovery".into(), Vec::new());
    }
    let d = egress_verdict(state, src, packet);
    if !d.allowed {
        return d;
    }
    match state.settings.default_endpoint_to_host_action {
        EndpointToHostAction::Drop => Decision::deny("defaultEndpointToHostAction Drop".into(), d.logs),
        EndpointToHostAction::Return => Decision::allow("defaultEndpointToHostAction Return".into(), d.logs),
        EndpointToHostAction::Accept => Decision::allow("defaultEndpointToHostAction Accept".into(), d.logs),
    }
}

/// A packet between two workloads, each on whichever node's state holds it (a node's state
/// holds only its own endpoints): the sender's egress, then the receiver's ingress. A side no
/// state holds (outside the cluster) is not checked.
pub fn workload_to_workload(
    states: &[&State],
    src: &EndpointKey,
    dst: &EndpointKey,
    packet: &Packet,
) -> Decision {
    let mut logs = Vec::new();
    if let Some(s) = states.iter().find(|s| s.endpoints.contains_key(src)) {
        let d = egress_verdict(s, src, packet);
        if !d.allowed {
            return d;
        }
        logs = d.logs;
    }
    match states.iter().find(|s| s.endpoints.contains_key(dst)) {
        Some(s) => {
            let mut d = ingress_verdict(s, dst, packet);
            logs.extend(d.logs);
            d.logs = logs;
            d
        }
        None => Decision::allow("destination outside this cluster's endpoints".into(), logs),
    }
}

/// The table a lab's probe should observe: row `i`, column `j` decides a new connection from
/// workload `i` to workload `j` over `protocol` (TCP, UDP, SCTP or UDP-Lite: to `port`; other
/// protocols have no ports) at their addresses as given. The diagonal (a pod to itself) is
/// decided too; the Kubernetes tests ignore it.
pub fn reachability(
    states: &[&State],
    workloads: &[(EndpointKey, IpAddr)],
    protocol: u8,
    port: u16,
) -> Vec<Vec<Decision>> {
    workloads
        .iter()
        .map(|(from, src)| {
            workloads
                .iter()
                .map(|(to, dst)| {
                    let packet = if matches!(protocol, 6 | 17 | 132 | 136) {
                        Packet::with_ports(*src, *dst, protocol, 40000, port)
                    } else {
                        Packet::other(*src, *dst, protocol)
                    };
                    workload_to_workload(states, from, to, &packet)
                })
                .collect()
        })
        .collect()
}
