//! `vxlan.calico` (Felix's `vxlan_mgr`): the device (VNI 4096, port 4789, no learning, the node
//! address as local), its VTEP address, and per remote node a permanent neighbour (remote VTEP IP →
//! remote VTEP MAC) and FDB entry (MAC → remote node IP).

use std::collections::HashSet;
use std::net::IpAddr;

use brindle_netlink::{Handle, LinkChange, Mac, VxlanSpec};
use ipnet::{IpNet, Ipv4Net};
use sha1::{Digest, Sha1};

use crate::error::Error;
use crate::ipip::Underlay;
use crate::routes::VXLAN_DEV;
use crate::state::VxlanConfig;

/// Felix's VTEP MAC when the Node has no `spec.vxlanTunnelMACAddr`: the byte `'f'` (0x66, a
/// locally administered unicast address) followed by the first 5 bytes of SHA-1 of the node name
/// (`hardwareAddrForNode` in felix/dataplane/linux/vxlan_mgr.go).
pub fn vtep_mac(node_name: &str) -> Mac {
    let sha = Sha1::digest(node_name.as_bytes());
    [b'f', sha[0], sha[1], sha[2], sha[3], sha[4]]
}

/// Brings `vxlan.calico` and its neighbour/FDB entries to `cfg`. Returns per-entry problems
/// (retried at the next resync); device-level failures are errors.
pub fn ensure(h: &mut Handle, cfg: &VxlanConfig, underlay: &Underlay) -> Result<Vec<String>, Error> {
    let mut link = h.link_by_name(VXLAN_DEV)?;
    if let Some(l) = &link {
        let v = l.vxlan.clone().unwrap_or_default();
        let matches = l.kind.as_deref() == Some("vxlan")
            && v.vni == cfg.vni
            && v.port == cfg.port
            && v.local == Some(underlay.node_ip)
            && v.dev == Some(underlay.index)
            && !v.learning;
        if !matches {
            tracing::info!(?v, "{VXLAN_DEV} has the wrong parameters; recreating it");
            h.delete_link(l.index, VXLAN_DEV)?;
            link = None;
        }
    }
    let link = match link {
        Some(l) => l,
        None => {
            h.add_vxlan(&VxlanSpec {
                name: VXLAN_DEV,
                vni: cfg.vni,
                port: cfg.port,
                local: underlay.node_ip,
                dev: Some(underlay.index),
                learning: false,
                mac: Some(cfg.mac),
                mtu: Some(cfg.mtu),
            })?;
            h.require_link(VXLAN_DEV)?
        }
    };
    if link.mac != Some(cfg.mac) || link.mtu != cfg.mtu || !link.up {
        h.set_link(
            link.index,
            VXLAN_DEV,
            &LinkChange {
                up: Some(true),
                mtu: Some(cfg.mtu),
                mac: Some(cfg.mac),
            },
        )?;
    }
    let want = IpNet::V4(Ipv4Net::new(cfg.vtep_addr, 32).expect("/32"));
    let have = h.addresses(Some(link.index))?;
    for a in &have {
        if a.net != want && a.net.addr().is_ipv4() {
            h.delete_address(link.index, VXLAN_DEV, a.net)?;
        }
    }
    if !have.iter().any(|a| a.net == want) {
        h.add_address(link.index, VXLAN_DEV, want)?;
    }

    let mut problems = Vec::new();
    // Neighbours: remote VTEP IP -> MAC.
    let neigh = h.neighbours(Some(link.index))?;
    let want_neigh: HashSet<(IpAddr, Mac)> = cfg
        .remotes
        .iter()
        .map(|r| (IpAddr::V4(r.vtep_ip), r.mac))
        .collect();
    for (ip, mac) in &want_neigh {
        if !neigh
            .iter()
            .any(|n| n.ip == Some(*ip) && n.mac == Some(*mac) && n.permanent)
            && let Err(e) = h.replace_neighbour(link.index, VXLAN_DEV, *ip, *mac)
        {
            problems.push(e.to_string());
        }
    }
    for n in &neigh {
        if let (Some(ip), Some(mac)) = (n.ip, n.mac)
            && ip.is_ipv4()
            && !want_neigh.contains(&(ip, mac))
            && let Err(e) = h.delete_neighbour(link.index, VXLAN_DEV, ip)
        {
            problems.push(e.to_string());
        }
    }
    // FDB: remote VTEP MAC -> remote node IP.
    let fdb = h.fdb(link.index)?;
    let want_fdb: HashSet<(Mac, IpAddr)> = cfg
        .remotes
        .iter()
        .map(|r| (r.mac, IpAddr::V4(r.node_ip)))
        .collect();
    for (mac, dst) in &want_fdb {
        if !fdb.iter().any(|f| f.mac == Some(*mac) && f.ip == Some(*dst))
            && let Err(e) = h.replace_fdb(link.index, VXLAN_DEV, *mac, *dst)
        {
            problems.push(e.to_string());
        }
    }
    for f in &fdb {
        if let (Some(mac), Some(dst)) = (f.mac, f.ip)
            && !want_fdb.contains(&(mac, dst))
            && let Err(e) = h.delete_fdb(link.index, VXLAN_DEV, mac, Some(dst))
        {
            problems.push(e.to_string());
        }
    }
    Ok(problems)
}

/// Removes `vxlan.calico` (no pool uses VXLAN).
pub fn remove(h: &mut Handle) -> Result<(), Error> {
    h.delete_link_by_name(VXLAN_DEV)?;
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
    }
}
