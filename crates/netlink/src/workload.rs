//! The host side of a workload interface, shared by the CNI plugin (at ADD) and the agent's
//! dataplane (at every resync), so neither needs the other: the sysctls Calico sets on a `cali*`
//! interface (Felix's `configureProcSysForInterface` in `dataplane/linux/endpoint_mgr.go`; the
//! CNI plugin's `configureContainerSysctls`/`SetupRoutes` in `linux_dataplane.go`) and the
//! pod's `/32` (IPv6 `/128`) route.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::handle::Handle;
use crate::route::{Route, TABLE_MAIN, scope};

/// The IPv4 sysctls Calico sets on a workload's host interface. `rp_filter` copies the host's
/// `net.ipv4.conf.default.rp_filter` (Felix; `1` when unreadable).
pub fn workload_sysctls(iface: &str, default_rp_filter: &str) -> Vec<(String, String)> {
    vec![
        (format!("net/ipv4/conf/{iface}/route_localnet"), "1".into()),
        (format!("net/ipv4/neigh/{iface}/proxy_delay"), "0".into()),
        (format!("net/ipv4/conf/{iface}/proxy_arp"), "1".into()),
        (format!("net/ipv4/conf/{iface}/forwarding"), "1".into()),
        (
            format!("net/ipv4/conf/{iface}/rp_filter"),
            default_rp_filter.into(),
        ),
    ]
}

/// Applies [`workload_sysctls`] to `iface` in the handle's namespace, plus `accept_ra=0` when
/// IPv6 is enabled (failure there is not an error, as in Calico).
pub fn configure_workload_iface(h: &Handle, iface: &str) -> Result<()> {
    configure_workload_iface_for(h, iface, false)
}

/// [`configure_workload_iface`] for an endpoint that may or may not send from other source
/// addresses (`allowSpoofedSourcePrefixes`): with spoofing allowed the kernel's own reverse
/// path filter is off on the interface (`rp_filter=0`, as Felix does), since it would drop
/// what the endpoint may send; the nftables RPF check, which skips exactly the allowed
/// prefixes, still drops every other spoofed source. The effective kernel value is the
/// maximum of `all` and the interface's.
pub fn configure_workload_iface_for(h: &Handle, iface: &str, allow_spoofing: bool) -> Result<()> {
    let rp = if allow_spoofing {
        "0".to_string()
    } else {
        h.sysctl("net.ipv4.conf.default.rp_filter")
            .unwrap_or_else(|_| "1".into())
    };
    let pairs = workload_sysctls(iface, &rp);
    let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.set_sysctls(&refs)?;
    // Fails when IPv6 is disabled, which is fine.
    let _ = h.set_sysctls(&[(&format!("net/ipv6/conf/{iface}/accept_ra"), "0")]);
    Ok(())
}

/// Adds `<ip>/32 dev <iface> scope link` (IPv6: `<ip>/128`; boot protocol, as Calico's CNI
/// plugin). An identical route is accepted (the agent may have added it first); one for the same
/// address on another interface is [`Error::Conflict`], naming both, in the CNI plugin's words.
pub fn add_workload_route(h: &mut Handle, ip: impl Into<IpAddr>, index: u32, iface: &str) -> Result<()> {
    let ip = ip.into();
    let dst = IpNet::from(ip);
    let want = Route::dev(dst, index, scope::LINK);
    match h.add_route(&want) {
        Ok(()) => Ok(()),
        Err(e) if e.is_exists() => {
            // Matched on table and destination, not the metric: the kernel gives an IPv6 route
            // metric 1024 when none is asked for.
            let same: Vec<Route> = h
                .routes(Some(TABLE_MAIN))?
                .into_iter()
                .filter(|r| r.table == want.table && r.dst == dst)
                .collect();
            if same.iter().any(|r| r.oif == Some(index)) {
                return Ok(());
            }
            match same.first() {
                Some(r) => {
                    let other = r
                        .oif
                        .and_then(|i| h.link_by_index(i).ok().flatten())
                        .map(|l| l.name)
                        .unwrap_or_else(|| "another device".into());
                    Err(Error::Conflict {
                        op: format!("add route {dst} dev {iface}"),
                        detail: format!(
                            "route {dst} already exists for an interface other than '{iface}': {other}"
                        ),
                    })
                }
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sysctls_are_calicos() {
        let s = super::workload_sysctls("cali36dac03ac5d", "2");
        assert!(s.contains(&("net/ipv4/conf/cali36dac03ac5d/proxy_arp".into(), "1".into())));
        assert!(s.contains(&("net/ipv4/neigh/cali36dac03ac5d/proxy_delay".into(), "0".into())));
        assert!(s.contains(&("net/ipv4/conf/cali36dac03ac5d/rp_filter".into(), "2".into())));
        assert_eq!(s.len(), 5);
    }
}
