//! The node's BGP address: `IP` given or autodetected with `IP_AUTODETECTION_METHOD`, as
//! calico-node's startup does (Calico's `node/pkg/lifecycle/startup/autodetection/`; user docs:
//! <https://docs.tigera.io/calico/latest/networking/ipam/ip-autodetection>). The choice is pure
//! over a list of interfaces and their addresses; the list and `can-reach`'s kernel route
//! choice come from the node's namespace.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use regex::Regex;

use crate::config::{AutodetectMethod, Ip4Setting, Ip6Setting, IpSetting};
use crate::error::{Error, Result};

/// Interfaces first-found never picks (Calico's `DEFAULT_INTERFACES_TO_EXCLUDE`).
pub const EXCLUDED: &[&str] = &[
    "^docker.*",
    "^cbr.*",
    "^dummy.*",
    "^podman.*",
    "^virbr.*",
    "^lxcbr.*",
    "^veth.*",
    "^lo",
    "^br-.*",
    "^cali.*",
    "^tunl.*",
    "^flannel.*",
    "^kube-ipvs.*",
    "^cni.*",
    "^vxlan\\.calico.*",
    "^vxlan-v6\\.calico.*",
    "^wireguard\\.cali.*",
    "^wg-v6\\.cali.*",
    "^nodelocaldns.*",
];

/// One interface and its addresses with prefixes, in kernel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub name: String,
    pub addrs: Vec<IpNet>,
}

fn regexes(list: &[String]) -> Result<Vec<Regex>> {
    list.iter()
        .map(|r| {
            Regex::new(r).map_err(|e| {
                Error::Config(format!("IP_AUTODETECTION_METHOD: bad interface regex {r:?}: {e}"))
            })
        })
        .collect()
}

fn global_v4(net: &IpNet) -> Option<Ipv4Net> {
    match net {
        IpNet::V4(n) => {
            let a = n.addr();
            let global = !(a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_unspecified()
                || a.is_broadcast());
            global.then_some(*n)
        }
        IpNet::V6(_) => None,
    }
}

fn global_v6(net: &IpNet) -> Option<Ipv6Net> {
    match net {
        IpNet::V6(n) => {
            let a = n.addr();
            // fe80::/10 link-local is never a node address (Calico skips it too).
            let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
            let global = !(a.is_loopback() || a.is_multicast() || a.is_unspecified() || link_local);
            global.then_some(*n)
        }
        IpNet::V4(_) => None,
    }
}

/// Picks an address of one family (`pick` keeps the usable ones) by `method` among
/// `ifaces`. `reach` is the local address the kernel chose towards the `can-reach`
/// destination.
fn select<N: Copy + Into<IpNet>>(
    method: &AutodetectMethod,
    ifaces: &[Iface],
    reach: Option<IpAddr>,
    pick: fn(&IpNet) -> Option<N>,
) -> Result<Option<N>> {
    let excluded = regexes(&EXCLUDED.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    let first = |include: &dyn Fn(&str) -> bool| -> Option<N> {
        ifaces
            .iter()
            .filter(|i| include(&i.name))
            .flat_map(|i| i.addrs.iter().filter_map(pick))
            .next()
    };
    let all = || ifaces.iter().flat_map(|i| i.addrs.iter().filter_map(pick));
    Ok(match method {
        AutodetectMethod::FirstFound => first(&|n| !excluded.iter().any(|r| r.is_match(n))),
        AutodetectMethod::SkipInterface(list) => {
            let skip = regexes(list)?;
            first(&|n| !excluded.iter().chain(skip.iter()).any(|r| r.is_match(n)))
        }
        AutodetectMethod::Interface(list) => {
            let want = regexes(list)?;
            first(&|n| want.iter().any(|r| r.is_match(n)))
        }
        AutodetectMethod::Cidr(nets) => all().find(|a| {
            let addr = (*a).into().addr();
            nets.iter().any(|n| n.contains(&addr))
        }),
        AutodetectMethod::CanReach(_) => match reach {
            Some(local) => all().find(|a| (*a).into().addr() == local),
            None => None,
        },
    })
}

/// Picks an IPv4 address by `method` among `ifaces`. `reach` is the local address the kernel
/// chose towards the `can-reach` destination.
pub fn select_v4(
    method: &AutodetectMethod,
    ifaces: &[Iface],
    reach: Option<IpAddr>,
) -> Result<Option<Ipv4Net>> {
    select(method, ifaces, reach, global_v4)
}

/// Picks an IPv6 address (global or ULA, never link-local) by `method` among `ifaces`
/// (`IP6_AUTODETECTION_METHOD`, the same methods as IPv4).
pub fn select_v6(
    method: &AutodetectMethod,
    ifaces: &[Iface],
    reach: Option<IpAddr>,
) -> Result<Option<Ipv6Net>> {
    select(method, ifaces, reach, global_v6)
}

/// The local address the kernel would use towards `dest` (`can-reach=`): a UDP "connection" to
/// port 80, no packet sent. `dest` is an address or a host name.
pub fn reach(dest: &str) -> Result<IpAddr> {
    use std::net::ToSocketAddrs;
    let target: SocketAddr = if let Ok(ip) = dest.parse::<IpAddr>() {
        SocketAddr::new(ip, 80)
    } else {
        (dest, 80)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Error::Startup(format!("can-reach={dest}: cannot resolve {dest}")))?
    };
    let bind: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(|e| Error::io("udp socket", e))?;
    sock.connect(target)
        .map_err(|e| Error::Startup(format!("can-reach={dest}: no route: {e}")))?;
    Ok(sock.local_addr().map_err(|e| Error::io("udp socket", e))?.ip())
}

/// The interfaces and addresses of the calling thread's namespace, in kernel order.
pub fn interfaces() -> Result<Vec<Iface>> {
    let mut h = brindle_netlink::Handle::new()?;
    let links = h.links()?;
    let addrs = h.addresses(None)?;
    Ok(links
        .into_iter()
        .map(|l| Iface {
            addrs: addrs
                .iter()
                .filter(|a| a.index == l.index)
                .map(|a| a.net)
                .collect(),
            name: l.name,
        })
        .collect())
}

/// Resolves `IP` into the address (with prefix) the Node gets, or `None` to keep the Node's
/// existing address. `existing` is what the Node already has.
pub fn resolve_v4(
    setting: &Ip4Setting,
    method: &AutodetectMethod,
    existing: Option<Ipv4Net>,
    ifaces: &[Iface],
    reach_addr: Option<IpAddr>,
) -> Result<Option<Ipv4Net>> {
    match setting {
        IpSetting::None => Ok(None),
        IpSetting::Addr(a, Some(p)) => Ipv4Net::new(*a, *p)
            .map(Some)
            .map_err(|_| Error::Config(format!("IP={a}/{p}: bad prefix length"))),
        IpSetting::Addr(a, None) => {
            // The prefix of the interface holding it (Calico's GetLocalCIDR); /32 if none does.
            let p = ifaces
                .iter()
                .flat_map(|i| i.addrs.iter().filter_map(global_v4))
                .find(|n| n.addr() == *a)
                .map(|n| n.prefix_len())
                .unwrap_or(32);
            Ok(Some(Ipv4Net::new(*a, p).expect("prefix ≤ 32")))
        }
        IpSetting::Autodetect => match select_v4(method, ifaces, reach_addr)? {
            Some(n) => Ok(Some(n)),
            None if existing.is_some() => Ok(None),
            None => Err(Error::Startup(format!(
                "failed to autodetect an IPv4 address (method {method:?}); set IP=A.B.C.D/N, or IP=none with IP6 for an IPv6-only node"
            ))),
        },
    }
}

/// Resolves `IP6` into the address (with prefix) the Node gets: `None` for unset or `none`
/// (no IPv6), an explicit address (prefix from the interface holding it, else /128), or
/// `autodetect` with `IP6_AUTODETECTION_METHOD`. As for IPv4, autodetection that finds
/// nothing keeps the Node's existing address.
pub fn resolve_v6(
    setting: &Ip6Setting,
    method: &AutodetectMethod,
    existing: Option<Ipv6Net>,
    ifaces: &[Iface],
    reach_addr: Option<IpAddr>,
) -> Result<Option<Ipv6Net>> {
    match setting {
        IpSetting::None => Ok(None),
        IpSetting::Addr(a, Some(p)) => Ipv6Net::new(*a, *p)
            .map(Some)
            .map_err(|_| Error::Config(format!("IP6={a}/{p}: bad prefix length"))),
        IpSetting::Addr(a, None) => {
            let p = ifaces
                .iter()
                .flat_map(|i| i.addrs.iter().filter_map(global_v6))
                .find(|n| n.addr() == *a)
                .map(|n| n.prefix_len())
                .unwrap_or(128);
            Ok(Some(Ipv6Net::new(*a, p).expect("prefix ≤ 128")))
        }
        IpSetting::Autodetect => match select_v6(method, ifaces, reach_addr)? {
            Some(n) => Ok(Some(n)),
            None if existing.is_some() => Ok(existing),
            None => Err(Error::Startup(format!(
                "failed to autodetect an IPv6 address (method {method:?}); set IP6=ADDR/N"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifs() -> Vec<Iface> {
        let i = |n: &str, a: &[&str]| Iface {
            name: n.into(),
            addrs: a.iter().map(|s| s.parse().unwrap()).collect(),
        };
        vec![
            i("lo", &["127.0.0.1/8"]),
            i("docker0", &["172.17.0.1/16"]),
            i("cali36dac03ac5d", &["169.254.1.1/32"]),
            i("tunl0", &["10.233.94.0/32"]),
            i("eth0", &["fe80::1/64", "172.20.42.80/22"]),
            i("eth1", &["192.168.7.5/24"]),
        ]
    }

    fn sel(m: &str, reach: Option<&str>) -> Option<String> {
        select_v4(&m.parse().unwrap(), &ifs(), reach.map(|r| r.parse().unwrap()))
            .unwrap()
            .map(|n| n.to_string())
    }

    #[test]
    fn methods_pick_like_calico() {
        assert_eq!(sel("first-found", None).as_deref(), Some("172.20.42.80/22"));
        assert_eq!(
            sel("skip-interface=eth0", None).as_deref(),
            Some("192.168.7.5/24")
        );
        assert_eq!(sel("interface=eth1", None).as_deref(), Some("192.168.7.5/24"));
        assert_eq!(sel("interface=docker.*", None).as_deref(), Some("172.17.0.1/16"));
        assert_eq!(
            sel("cidr=192.168.0.0/16", None).as_deref(),
            Some("192.168.7.5/24")
        );
        assert_eq!(
            sel("can-reach=172.20.42.1", Some("172.20.42.80")).as_deref(),
            Some("172.20.42.80/22")
        );
        assert_eq!(sel("interface=wlan.*", None), None);
    }

    #[test]
    fn explicit_ip_takes_the_interface_prefix() {
        let m = AutodetectMethod::FirstFound;
        let r = resolve_v4(
            &IpSetting::Addr("172.20.42.80".parse().unwrap(), None),
            &m,
            None,
            &ifs(),
            None,
        )
        .unwrap();
        assert_eq!(r.unwrap().to_string(), "172.20.42.80/22");
        let r = resolve_v4(
            &IpSetting::Addr("10.77.0.1".parse().unwrap(), Some(24)),
            &m,
            None,
            &[],
            None,
        )
        .unwrap();
        assert_eq!(r.unwrap().to_string(), "10.77.0.1/24");
        assert_eq!(
            resolve_v4(&IpSetting::None, &m, None, &ifs(), None).unwrap(),
            None
        );
        let none_found = AutodetectMethod::Interface(vec!["wlan.*".into()]);
        let e = resolve_v4(&IpSetting::Autodetect, &none_found, None, &ifs(), None).unwrap_err();
        assert!(
            e.to_string().contains("failed to autodetect an IPv4 address"),
            "{e}"
        );
        // With an address already on the Node, nothing found keeps it.
        let existing = Some("172.20.42.80/22".parse().unwrap());
        assert_eq!(
            resolve_v4(&IpSetting::Autodetect, &none_found, existing, &ifs(), None).unwrap(),
            None
        );
    }

    #[test]
    fn ipv6_methods_pick_like_calico() {
        let i = |n: &str, a: &[&str]| Iface {
            name: n.into(),
            addrs: a.iter().map(|s| s.parse().unwrap()).collect(),
        };
        let ifs = vec![
            i("lo", &["127.0.0.1/8", "::1/128"]),
            i("docker0", &["fd99::1/64"]),
            i("eth0", &["fe80::1/64", "172.20.42.80/22", "fd00:20::80/64"]),
            i("eth1", &["2001:db8:7::5/64"]),
        ];
        let sel6 = |m: &str, reach: Option<&str>| {
            let m = AutodetectMethod::parse("IP6_AUTODETECTION_METHOD", m).unwrap();
            select_v6(&m, &ifs, reach.map(|r| r.parse().unwrap()))
                .unwrap()
                .map(|n| n.to_string())
        };
        assert_eq!(sel6("first-found", None).as_deref(), Some("fd00:20::80/64"));
        assert_eq!(
            sel6("skip-interface=eth0", None).as_deref(),
            Some("2001:db8:7::5/64")
        );
        assert_eq!(sel6("interface=eth1", None).as_deref(), Some("2001:db8:7::5/64"));
        assert_eq!(
            sel6("cidr=2001:db8::/32", None).as_deref(),
            Some("2001:db8:7::5/64")
        );
        assert_eq!(
            sel6("can-reach=fd00:20::1", Some("fd00:20::80")).as_deref(),
            Some("fd00:20::80/64")
        );
        assert_eq!(sel6("interface=wlan.*", None), None);
        let first = AutodetectMethod::FirstFound;
        // Unset/none: no IPv6; explicit with and without prefix.
        assert_eq!(
            resolve_v6(&IpSetting::None, &first, None, &ifs, None).unwrap(),
            None
        );
        let r = resolve_v6(
            &IpSetting::Addr("fd00:20::80".parse().unwrap(), None),
            &first,
            None,
            &ifs,
            None,
        );
        assert_eq!(r.unwrap().unwrap().to_string(), "fd00:20::80/64");
        let r = resolve_v6(
            &IpSetting::Addr("fd00:30::1".parse().unwrap(), None),
            &first,
            None,
            &ifs,
            None,
        );
        assert_eq!(r.unwrap().unwrap().to_string(), "fd00:30::1/128");
        let r = resolve_v6(&IpSetting::Autodetect, &first, None, &ifs, None);
        assert_eq!(r.unwrap().unwrap().to_string(), "fd00:20::80/64");
        let none_found = AutodetectMethod::Interface(vec!["wlan.*".into()]);
        let e = resolve_v6(&IpSetting::Autodetect, &none_found, None, &ifs, None).unwrap_err();
        assert!(
            e.to_string().contains("failed to autodetect an IPv6 address"),
            "{e}"
        );
    }
}
