//! MTUs as Felix computes them (Felix's `dataplane/linux/int_dataplane.go`, `determinePodMTU`; user
//! docs: <https://docs.tigera.io/calico/latest/networking/configuring/mtu>): the host MTU is the
//! smallest MTU of the *up* links whose name matches the default `mtuIfacePattern` (1460 when none
//! matches); each encapsulation subtracts its overhead, and pods get the smallest enabled one.

use brindle_netlink::Link;

/// Outer IPv4 header.
pub const IPIP_OVERHEAD: u32 = 20;
/// Outer IPv4 + UDP + VXLAN + inner Ethernet.
pub const VXLAN_OVERHEAD: u32 = 50;
/// Outer IPv6 + UDP + VXLAN + inner Ethernet (Felix's `vxlanMTUV6` default: host − 70).
pub const VXLAN_V6_OVERHEAD: u32 = 70;
/// Felix's fallback when no interface matches.
pub const DEFAULT_HOST_MTU: u32 = 1460;

/// Felix's default `mtuIfacePattern`: `^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)`.
pub fn matches_default_pattern(name: &str) -> bool {
    let b = name.as_bytes();
    let two = |p: &str| name.starts_with(p) && b.len() > 2 && b"Pcopsvx".contains(&b[2]);
    ["en", "wl", "ww", "sl", "ib"].iter().any(|p| two(p))
        || ["eth", "wlan", "wwan"].iter().any(|p| name.starts_with(p))
}

/// The host MTU from the node's links.
pub fn host_mtu(links: &[Link]) -> u32 {
    links
        .iter()
        .filter(|l| l.up && matches_default_pattern(&l.name))
        .map(|l| l.mtu)
        .min()
        .unwrap_or(DEFAULT_HOST_MTU)
}

/// The pod MTU: the smallest of the enabled encapsulations (IPIP, VXLAN, VXLAN over IPv6),
/// else the host MTU.
pub fn pod_mtu(host: u32, ipip: bool, vxlan: bool, vxlan_v6: bool) -> u32 {
    let mut m = host;
    if ipip {
        m = m.min(host - IPIP_OVERHEAD);
    }
    if vxlan {
        m = m.min(host - VXLAN_OVERHEAD);
    }
    if vxlan_v6 {
        m = m.min(host - VXLAN_V6_OVERHEAD);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, mtu: u32, up: bool) -> Link {
        Link {
            index: 1,
            name: name.into(),
            kind: None,
            mtu,
            mac: None,
            up,
            lower_up: up,
            vxlan: None,
            link_index: None,
            link_netnsid: None,
        }
    }

    #[test]
    fn felix_rules() {
        assert!(matches_default_pattern("eth0") && matches_default_pattern("ens3"));
        assert!(matches_default_pattern("enp0s3") && matches_default_pattern("wlan0"));
        assert!(!matches_default_pattern("cali123") && !matches_default_pattern("tunl0"));
        assert!(!matches_default_pattern("lo") && !matches_default_pattern("en"));
        let links = [
            link("eth0", 1500, true),
            link("eth1", 9000, true),
            link("eth2", 1400, false),
            link("lo", 65536, true),
        ];
        assert_eq!(host_mtu(&links), 1500);
        assert_eq!(host_mtu(&[link("lo", 65536, true)]), 1460);
        assert_eq!(pod_mtu(1500, true, false, false), 1480);
        assert_eq!(pod_mtu(1500, false, true, false), 1450);
        assert_eq!(pod_mtu(1500, true, true, false), 1450);
        assert_eq!(pod_mtu(1500, false, false, false), 1500);
        assert_eq!(pod_mtu(1500, false, true, true), 1430);
        assert_eq!(pod_mtu(1500, false, false, true), 1430);
    }
}
