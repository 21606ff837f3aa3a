//! `vxlan.calico` and `vxlan-v6.calico` (Felix's `vxlan_mgr`, one per family): the device
//! (VNI 4096, port 4789, no learning, the node address of its family as local), its VTEP
//! address, and per remote node a permanent neighbour (remote VTEP IP → remote VTEP MAC) and
//! FDB entry (MAC → remote node IP). Over IPv6 the outer header is IPv6 (RFC 7348 §5 allows
//! either), hence the 70-byte overhead ([`crate::mtu::VXLAN_V6_OVERHEAD`]).

use std::collections::HashSet;
use std::net::IpAddr;

use brindle_netlink::{Handle, LinkChange, Mac, VxlanSpec};
use ipnet::IpNet;
use sha1::{Digest, Sha1};

use crate::error::Error;
use crate::routes::{VXLAN_DEV, VXLAN_V6_DEV};
use crate::state::VxlanConfig;

/// Felix's VTEP MAC when the Node has no `spec.vxlanTunnelMACAddr`: the byte `'f'` (0x66, a
/// locally administered unicast address) followed by the first 5 bytes of SHA-1 of the node name
/// (`hardwareAddrForNode` in felix/dataplane/linux/vxlan_mgr.go).
pub fn vtep_mac(node_name: &str) -> Mac {
    let sha = Sha1::digest(node_name.as_bytes());
    [b'f', sha[0], sha[1], sha[2], sha[3], sha[4]]
}

/// The IPv6 VTEP MAC when the Node has no `spec.vxlanTunnelMACAddrV6`: the same rule over
/// `<node name>-v6` (felix/calc/vxlan_resolver.go `vtepMACForHost`), so a dual-stack node's two
/// devices differ.
pub fn vtep_mac_v6(node_name: &str) -> Mac {
    vtep_mac(&format!("{node_name}-v6"))
}

/// The device a configuration is for.
pub fn device_name(cfg: &VxlanConfig) -> &'static str {
    if cfg.is_v6() { VXLAN_V6_DEV } else { VXLAN_DEV }
}

/// The link a VXLAN device sends through: its index and the node address (of the device's
/// family) it sends from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub index: u32,
    pub local: IpAddr,
}

/// True for addresses the kernel manages on a device by itself (IPv6 link-local), which the
/// reconciler leaves alone.
fn kernel_managed(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

/// Brings `vxlan.calico` (IPv4 `cfg`) or `vxlan-v6.calico` (IPv6 `cfg`) and its neighbour/FDB
/// entries to `cfg`. Returns per-entry problems (retried at the next resync); device-level
/// failures are errors.
pub fn ensure(h: &mut Handle, cfg: &VxlanConfig, parent: Parent) -> Result<Vec<String>, Error> {
    let name = device_name(cfg);
    let v6 = cfg.is_v6();
    let same_family = |ip: &IpAddr| ip.is_ipv6() == v6;
    let mut link = h.link_by_name(name)?;
    if let Some(l) = &link {
        let v = l.vxlan.clone().unwrap_or_default();
        let matches = l.kind.as_deref() == Some("vxlan")
            && v.vni == cfg.vni
            && v.port == cfg.port
            && v.local == Some(parent.local)
            && v.dev == Some(parent.index)
            && !v.learning;
        if !matches {
            tracing::info!(?v, "{name} has the wrong parameters; recreating it");
            h.delete_link(l.index, name)?;
            link = None;
        }
    }
    let link = match link {
        Some(l) => l,
        None => {
            h.add_vxlan(&VxlanSpec {
                name,
                vni: cfg.vni,
                port: cfg.port,
                local: parent.local,
                dev: Some(parent.index),
                learning: false,
                mac: Some(cfg.mac),
                mtu: Some(cfg.mtu),
            })?;
            h.require_link(name)?
        }
    };
    if link.mac != Some(cfg.mac) || link.mtu != cfg.mtu || !link.up {
        h.set_link(
            link.index,
            name,
            &LinkChange {
                up: Some(true),
                mtu: Some(cfg.mtu),
                mac: Some(cfg.mac),
            },
        )?;
    }
    let want = IpNet::from(cfg.vtep_addr);
    let have = h.addresses(Some(link.index))?;
    for a in &have {
        let ip = a.net.addr();
        if a.net != want && same_family(&ip) && !kernel_managed(ip) {
            h.delete_address(link.index, name, a.net)?;
        }
    }
    if !have.iter().any(|a| a.net == want) {
        h.add_address(link.index, name, want)?;
    }

    let mut problems = Vec::new();
    // Neighbours: remote VTEP IP -> MAC.
    let neigh = h.neighbours(Some(link.index))?;
    let want_neigh: HashSet<(IpAddr, Mac)> = cfg.remotes.iter().map(|r| (r.vtep_ip, r.mac)).collect();
    for (ip, mac) in &want_neigh {
        if !neigh
            .iter()
            .any(|n| n.ip == Some(*ip) && n.mac == Some(*mac) && n.permanent)
            && let Err(e) = h.replace_neighbour(link.index, name, *ip, *mac)
        {
            problems.push(e.to_string());
        }
    }
    for n in &neigh {
        if let (Some(ip), Some(mac)) = (n.ip, n.mac)
            && same_family(&ip)
            && !kernel_managed(ip)
            && !want_neigh.contains(&(ip, mac))
            && let Err(e) = h.delete_neighbour(link.index, name, ip)
        {
            problems.push(e.to_string());
        }
    }
    // FDB: remote VTEP MAC -> remote node IP.
    let fdb = h.fdb(link.index)?;
    let want_fdb: HashSet<(Mac, IpAddr)> = cfg.remotes.iter().map(|r| (r.mac, r.node_ip)).collect();
    for (mac, dst) in &want_fdb {
        if !fdb.iter().any(|f| f.mac == Some(*mac) && f.ip == Some(*dst))
            && let Err(e) = h.replace_fdb(link.index, name, *mac, *dst)
        {
            problems.push(e.to_string());
        }
    }
    for f in &fdb {
        if let (Some(mac), Some(dst)) = (f.mac, f.ip)
            && !want_fdb.contains(&(mac, dst))
            && let Err(e) = h.delete_fdb(link.index, name, mac, Some(dst))
        {
            problems.push(e.to_string());
        }
    }
    Ok(problems)
}

/// Removes `name` (`vxlan.calico` or `vxlan-v6.calico`: no pool of its family uses VXLAN).
pub fn remove(h: &mut Handle, name: &str) -> Result<(), Error> {
    h.delete_link_by_name(name)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn vtep_mac_is_felix_rule() {
        // sha1("bgp-master1") starts with these bytes; the first byte is 'f'.
        let m = super::vtep_mac("bgp-master1");
        assert_eq!(m[0], 0x66);
        assert_eq!(m[0] & 1, 0, "unicast");
        assert_eq!(m[0] & 2, 2, "locally administered");
        assert_eq!(m, [0x66, 0x06, 0xda, 0xed, 0x2b, 0x44]); // python3 hashlib.sha1
        assert_ne!(m, super::vtep_mac("bgp-master2"));
        // The IPv6 device's MAC hashes "<name>-v6" (python3: sha1(b"bgp-master1-v6")).
        let m6 = super::vtep_mac_v6("bgp-master1");
        assert_eq!(m6, [0x66, 0xb9, 0xcf, 0xe5, 0x8a, 0x05]);
        assert_ne!(m6, m);
    }

    #[test]
    fn link_local_addresses_are_the_kernels() {
        assert!(super::kernel_managed(
            "fe80::ecee:eeff:feee:eeee".parse().unwrap()
        ));
        assert!(!super::kernel_managed("fd00:10:244::1".parse().unwrap()));
        assert!(!super::kernel_managed("10.233.94.0".parse().unwrap()));
    }
}
