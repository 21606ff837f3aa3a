//! BGPConfiguration and BGPPeer validation.

use super::{Checker, parse_ip_port};
use crate::resources::{BGPConfigurationSpec, BGPPeerSpec};

const LOG_LEVELS: [&str; 6] = ["Trace", "Debug", "Info", "Warning", "Error", "Fatal"];

pub(super) fn interface_pattern_ok(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'*' | b'-'))
}

/// `aa:nn` (each ≤ 65535) or large `aa:nn:mm` (each ≤ 4294967295).
fn community_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.len() {
        2 => parts.iter().all(|p| p.parse::<u16>().is_ok()),
        3 => parts.iter().all(|p| p.parse::<u32>().is_ok()),
        _ => false,
    }
}

pub(super) fn check_config(c: &mut Checker, s: &BGPConfigurationSpec) {
    if !s.log_severity_screen.is_empty() && !LOG_LEVELS.contains(&s.log_severity_screen.as_str()) {
        c.bad(
            "Spec.LogSeverityScreen",
            &s.log_severity_screen,
            "must be one of Trace, Debug, Info, Warning, Error, Fatal",
        );
    }
    for (path, blocks) in [
        ("Spec.ServiceClusterIPs", &s.service_cluster_ips),
        ("Spec.ServiceExternalIPs", &s.service_external_ips),
        ("Spec.ServiceLoadBalancerIPs", &s.service_load_balancer_ips),
    ] {
        for b in blocks {
            c.cidr(path, &b.cidr, None);
        }
    }
    for cm in &s.communities {
        if cm.name.is_empty() {
            c.missing("Spec.Communities.Name", "community name must be specified");
        }
        if !community_ok(&cm.value) {
            c.bad(
                "Spec.Communities.Value",
                &cm.value,
                "community value must be aa:nn or aa:nn:mm",
            );
        }
    }
    for pa in &s.prefix_advertisements {
        if pa.cidr.is_empty() {
            c.missing("Spec.PrefixAdvertisements.CIDR", "CIDR must be specified");
        }
        c.cidr("Spec.PrefixAdvertisements.CIDR", &pa.cidr, None);
        for cm in &pa.communities {
            let known = s.communities.iter().any(|n| &n.name == cm);
            if !known && !community_ok(cm) {
                c.bad(
                    "Spec.PrefixAdvertisements.Communities",
                    cm,
                    "must be a community value or the name of a community in spec.communities",
                );
            }
        }
    }
    for i in &s.ignored_interfaces {
        if !interface_pattern_ok(i) {
            c.bad("Spec.IgnoredInterfaces", i, "invalid interface name pattern");
        }
    }
    c.ip(
        "Spec.LocalWorkloadPeeringIPV4",
        &s.local_workload_peering_ipv4,
        Some(4),
    );
    c.ip(
        "Spec.LocalWorkloadPeeringIPV6",
        &s.local_workload_peering_ipv6,
        Some(6),
    );
    for (path, p) in [
        ("Spec.IPv4NormalRoutePriority", s.ipv4_normal_route_priority),
        ("Spec.IPv6NormalRoutePriority", s.ipv6_normal_route_priority),
    ] {
        if let Some(p) = p
            && !(1..=2_147_483_646).contains(&p)
        {
            c.bad(path, p, "must be between 1 and 2147483646");
        }
    }
    if s.node_to_node_mesh_enabled == Some(false) {
        if s.node_mesh_password.is_some() {
            c.missing(
                "Spec.NodeMeshPassword",
                "nodeMeshPassword cannot be set when the node-to-node mesh is disabled",
            );
        }
        if s.node_mesh_max_restart_time.is_some() {
            c.missing(
                "Spec.NodeMeshMaxRestartTime",
                "nodeMeshMaxRestartTime cannot be set when the node-to-node mesh is disabled",
            );
        }
    }
}

pub(super) fn check_peer(c: &mut Checker, s: &BGPPeerSpec) {
    if !s.node.is_empty() && !s.node_selector.is_empty() {
        c.bad(
            "Spec.Node",
            &s.node,
            "Node field must be empty when NodeSelector is specified",
        );
    }
    if !s.peer_ip.is_empty() && !s.peer_selector.is_empty() {
        c.bad(
            "Spec.PeerIP",
            &s.peer_ip,
            "PeerIP field must be empty when PeerSelector is specified",
        );
    }
    if s.as_number.0 != 0 && !s.peer_selector.is_empty() {
        c.bad(
            "Spec.ASNumber",
            s.as_number,
            "ASNumber field must be empty when PeerSelector is specified",
        );
    }
    if s.as_number.0 == 0 && !s.local_workload_selector.is_empty() {
        c.missing(
            "Spec.ASNumber",
            "ASNumber field must NOT be empty when LocalWorkloadSelector is specified",
        );
    }
    if !s.peer_ip.is_empty() && !s.local_workload_selector.is_empty() {
        c.bad(
            "Spec.PeerIP",
            &s.peer_ip,
            "PeerIP field must be empty when LocalWorkloadSelector is specified",
        );
    }
    if !s.peer_selector.is_empty() && !s.local_workload_selector.is_empty() {
        c.bad(
            "Spec.PeerSelector",
            &s.peer_selector,
            "PeerSelector field must be empty when LocalWorkloadSelector is specified",
        );
    }
    if s.peer_ip.is_empty() && s.peer_selector.is_empty() && s.local_workload_selector.is_empty() {
        c.missing(
            "Spec.PeerIP",
            "one of peerIP, peerSelector or localWorkloadSelector must be specified",
        );
    }
    let peer = if s.peer_ip.is_empty() {
        None
    } else {
        let p = parse_ip_port(&s.peer_ip);
        if p.is_none() {
            c.bad(
                "Spec.PeerIP",
                &s.peer_ip,
                "PeerIP must be an IP address, IP:port or [IPv6]:port",
            );
        }
        p
    };
    if !s.reachable_by.is_empty() {
        match (s.reachable_by.parse::<std::net::IpAddr>(), peer) {
            (Err(_), _) => c.bad(
                "Spec.ReachableBy",
                &s.reachable_by,
                "ReachableBy is invalid address",
            ),
            (Ok(_), None) if s.peer_ip.is_empty() => c.bad(
                "Spec.ReachableBy",
                &s.reachable_by,
                "ReachablyBy field must be empty when PeerIP is empty",
            ),
            (Ok(gw), Some((ip, _))) if gw.is_ipv4() != ip.is_ipv4() => c.bad(
                "Spec.ReachableBy",
                &s.reachable_by,
                "ReachableBy and PeerIP address family mismatched",
            ),
            _ => {}
        }
    }
    if s.keep_original_next_hop && s.next_hop_mode.is_some() {
        c.bad(
            "Spec.KeepOriginalNextHop",
            true,
            "The KeepOriginalNextHop field is deprecated. It must not be set to true when NextHopMode is configured.",
        );
    }
    if !s.node.is_empty() && !super::is_dns1123_subdomain(&s.node) {
        c.bad("Spec.Node", &s.node, "invalid node name");
    }
    c.selector("Spec.NodeSelector", &s.node_selector);
    c.selector("Spec.PeerSelector", &s.peer_selector);
    c.selector("Spec.LocalWorkloadSelector", &s.local_workload_selector);
    for f in &s.filters {
        if !super::is_dns1123_subdomain(f) {
            c.bad("Spec.Filters", f, "invalid BGPFilter name");
        }
    }
}
