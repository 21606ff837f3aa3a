//! Node, FelixConfiguration, WorkloadEndpoint, IPAMConfiguration and Profile validation.

use super::Checker;
use crate::resources::{
    FelixConfigurationSpec, IPAMConfigurationSpec, NodeBgpSpec, NodeSpec, WorkloadEndpointSpec,
};

const LOG_LEVELS: [&str; 6] = ["Trace", "Debug", "Info", "Warning", "Error", "Fatal"];

fn mac_ok(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn interface_ok(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub(super) fn check_node(c: &mut Checker, s: &NodeSpec) {
    if let Some(bgp) = &s.bgp {
        if *bgp == NodeBgpSpec::default() {
            c.missing("Spec.BGP", "Spec.BGP should not be empty");
        }
        if !bgp.ipv4_address.is_empty() && bgp.ipv4().is_none() {
            c.bad(
                "Spec.BGP.IPv4Address",
                &bgp.ipv4_address,
                "must be an IPv4 address with prefix length (a.b.c.d/n)",
            );
        }
        if !bgp.ipv6_address.is_empty() && bgp.ipv6().is_none() {
            c.bad(
                "Spec.BGP.IPv6Address",
                &bgp.ipv6_address,
                "must be an IPv6 address with prefix length",
            );
        }
        c.ip("Spec.BGP.IPv4IPIPTunnelAddr", &bgp.ipv4_ipip_tunnel_addr, Some(4));
        c.ip(
            "Spec.BGP.RouteReflectorClusterID",
            &bgp.route_reflector_cluster_id,
            Some(4),
        );
    }
    c.ip("Spec.IPv4VXLANTunnelAddr", &s.ipv4_vxlan_tunnel_addr, Some(4));
    c.ip("Spec.IPv6VXLANTunnelAddr", &s.ipv6_vxlan_tunnel_addr, Some(6));
    for (path, mac) in [
        ("Spec.VXLANTunnelMACAddr", &s.vxlan_tunnel_mac_addr),
        ("Spec.VXLANTunnelMACAddrV6", &s.vxlan_tunnel_mac_addr_v6),
    ] {
        if !mac.is_empty() && !mac_ok(mac) {
            c.bad(path, mac, "is not a valid MAC address");
        }
    }
    if let Some(wg) = &s.wireguard {
        c.ip(
            "Spec.Wireguard.InterfaceIPv4Address",
            &wg.interface_ipv4_address,
            Some(4),
        );
        c.ip(
            "Spec.Wireguard.InterfaceIPv6Address",
            &wg.interface_ipv6_address,
            Some(6),
        );
    }
    for a in &s.addresses {
        if a.address.parse::<std::net::IpAddr>().is_err() && a.address.parse::<ipnet::IpNet>().is_err() {
            c.bad(
                "Spec.Addresses.Address",
                &a.address,
                "is not a valid IP address or CIDR",
            );
        }
        if !a.address_type.is_empty()
            && !["CalicoNodeIP", "InternalIP", "ExternalIP"].contains(&a.address_type.as_str())
        {
            c.bad(
                "Spec.Addresses.Type",
                &a.address_type,
                "must be CalicoNodeIP, InternalIP or ExternalIP",
            );
        }
    }
}

pub(super) fn check_felix(c: &mut Checker, s: &FelixConfigurationSpec) {
    for (path, level) in [
        ("Spec.LogSeverityScreen", &s.log_severity_screen),
        ("Spec.LogSeverityFile", &s.log_severity_file),
        ("Spec.LogSeveritySys", &s.log_severity_sys),
    ] {
        if !level.is_empty() && !LOG_LEVELS.contains(&level.as_str()) {
            c.bad(
                path,
                level,
                "must be one of Trace, Debug, Info, Warning, Error, Fatal",
            );
        }
    }
    if !s.bpf_log_level.is_empty() && !["Debug", "Info", "Off"].contains(&s.bpf_log_level.as_str()) {
        c.bad(
            "Spec.BPFLogLevel",
            &s.bpf_log_level,
            "must be one of Debug, Info, Off",
        );
    }
    if !s.default_endpoint_to_host_action.is_empty()
        && !["Drop", "Accept", "Return"].contains(&s.default_endpoint_to_host_action.as_str())
    {
        c.bad(
            "Spec.DefaultEndpointToHostAction",
            &s.default_endpoint_to_host_action,
            "must be Drop, Accept or Return",
        );
    }
    c.ip("Spec.NATOutgoingAddress", &s.nat_outgoing_address, Some(4));
    c.ip(
        "Spec.DeviceRouteSourceAddress",
        &s.device_route_source_address,
        Some(4),
    );
    c.ip(
        "Spec.DeviceRouteSourceAddressIPv6",
        &s.device_route_source_address_ipv6,
        Some(6),
    );
    if s.route_table_range.is_some() && s.route_table_ranges.is_some() {
        c.missing(
            "Spec.RouteTableRange",
            "cannot be set when `RouteTableRanges` is also set",
        );
    }
    if let Some(ranges) = &s.kube_node_port_ranges {
        if ranges.len() > 7 {
            c.missing(
                "Spec.KubeNodePortRanges",
                "node port ranges list is too long (max 7)",
            );
        }
        if ranges
            .iter()
            .any(|p| matches!(p, crate::numorstring::Port::Named(_)))
        {
            c.missing(
                "Spec.KubeNodePortRanges",
                "node port ranges should not contain named ports",
            );
        }
    }
    for cidr in s.external_nodes_list.iter().flatten() {
        c.cidr("Spec.ExternalNodesCIDRList", cidr, Some(4));
    }
    for pp in s
        .failsafe_inbound_host_ports
        .iter()
        .chain(s.failsafe_outbound_host_ports.iter())
        .flatten()
    {
        if !pp.protocol.is_empty() && !["TCP", "UDP", "SCTP"].contains(&pp.protocol.as_str()) {
            c.bad(
                "Spec.FailsafePorts.Protocol",
                &pp.protocol,
                "protocol must be 'TCP' or 'UDP' or 'SCTP'.",
            );
        }
        c.cidr("Spec.FailsafePorts.Net", &pp.net, None);
    }
    for (path, mtu) in [
        ("Spec.IPIPMTU", s.ipip_mtu),
        ("Spec.VXLANMTU", s.vxlan_mtu),
        ("Spec.VXLANMTUV6", s.vxlan_mtu_v6),
        ("Spec.WireguardMTU", s.wireguard_mtu),
    ] {
        if let Some(m) = mtu
            && !(0..=65535).contains(&m)
        {
            c.bad(path, m, "must be between 0 and 65535");
        }
    }
    for (path, port) in [
        ("Spec.VXLANPort", s.vxlan_port),
        ("Spec.HealthPort", s.health_port),
        ("Spec.PrometheusMetricsPort", s.prometheus_metrics_port),
    ] {
        if let Some(p) = port
            && !(0..=65535).contains(&p)
        {
            c.bad(path, p, "must be a port number (0-65535)");
        }
    }
    if let Some(v) = s.vxlan_vni
        && !(0..=16_777_215).contains(&v)
    {
        c.bad("Spec.VXLANVNI", v, "must be between 0 and 16777215");
    }
    if let Some(p) = s.device_route_protocol
        && !(0..=255).contains(&p)
    {
        c.bad("Spec.DeviceRouteProtocol", p, "must be between 0 and 255");
    }
    for prefix in s
        .interface_prefix
        .split(',')
        .filter(|p| !s.interface_prefix.is_empty() && !p.is_empty())
    {
        if !interface_ok(prefix) {
            c.bad("Spec.InterfacePrefix", prefix, "invalid interface prefix");
        }
    }
    if let Some(sel) = &s.node_selector {
        c.selector("Spec.NodeSelector", sel);
    }
}

pub(super) fn check_wep(c: &mut Checker, s: &WorkloadEndpointSpec) {
    for n in &s.ip_networks {
        match n
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Err(_) => c.bad("Spec.IPNetworks", n, "invalid CIDR"),
            Ok(net) if net.prefix_len() != net.max_prefix_len() => {
                c.bad("Spec.IPNetworks", n, "IP network contains multiple addresses")
            }
            Ok(_) => {}
        }
    }
    c.ip("Spec.IPv4Gateway", &s.ipv4_gateway, Some(4));
    c.ip("Spec.IPv6Gateway", &s.ipv6_gateway, Some(6));
    if !interface_ok(&s.interface_name) {
        c.bad(
            "Spec.InterfaceName",
            &s.interface_name,
            "interface name must be 1-15 characters of [a-zA-Z0-9_.-]",
        );
    }
    if !s.mac.is_empty() && !mac_ok(&s.mac) {
        c.bad("Spec.MAC", &s.mac, "is not a valid MAC address");
    }
    for nat in &s.ip_nats {
        c.ip("Spec.IPNATs.InternalIP", &nat.internal_ip, None);
        c.ip("Spec.IPNATs.ExternalIP", &nat.external_ip, None);
    }
    for p in &s.ports {
        if p.port == 0 {
            c.bad("Spec.Ports.Port", p.port, "port must be greater than 0");
        }
        if !p.name.is_empty() && !super::rule::is_iana_svc_name(&p.name) {
            c.bad("Spec.Ports.Name", &p.name, "invalid port name");
        }
    }
    for cidr in &s.allow_spoofed_source_prefixes {
        c.cidr("Spec.AllowSpoofedSourcePrefixes", cidr, None);
    }
}

pub(super) fn check_ipam_config(c: &mut Checker, s: &IPAMConfigurationSpec) {
    if s.max_blocks_per_host < 0 {
        c.bad(
            "Spec.MaxBlocksPerHost",
            s.max_blocks_per_host,
            "must be greater than or equal to 0",
        );
    }
    if !(0..=1200).contains(&s.ip_cooldown_seconds) {
        c.bad(
            "Spec.IPCooldownSeconds",
            s.ip_cooldown_seconds,
            "must be between 0 and 1200",
        );
    }
}

/// KubeControllersConfiguration: only `default` exists (Calico's rule); durations not negative.
pub(super) fn check_kube_controllers(c: &mut Checker, k: &crate::resources::KubeControllersConfiguration) {
    if !k.metadata.name.is_empty() && k.metadata.name != "default" {
        c.bad(
            "Metadata.Name",
            &k.metadata.name,
            "KubeControllersConfiguration must be named default",
        );
    }
    if let Some(node) = &k.spec.controllers.node {
        for (field, d) in [
            ("Spec.Controllers.Node.LeakGracePeriod", node.leak_grace_period),
            ("Spec.Controllers.Node.ReconcilerPeriod", node.reconciler_period),
        ] {
            if let Some(d) = d.filter(|d| d.0 < 0) {
                c.bad(field, d, "must not be negative");
            }
        }
    }
}
