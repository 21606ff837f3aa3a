//! Recursive next-hop resolution (pure), as BIRD's `gateway recursive` in Calico's kernel
//! protocol: a learned route whose next hop is not on the node's subnet (an eBGP peer
//! announcing a third party's address, a multihop session) is installed via the gateway of
//! the most specific other learned route covering that next hop, when that gateway is on
//! the node's subnet. Up to [`MAX_DEPTH`] levels, like a resolver that stops on loops.

use std::net::IpAddr;

use ipnet::IpNet;

/// Levels of recursion before giving up (a loop, or a chain longer than any real one).
pub const MAX_DEPTH: usize = 4;

/// The directly connected gateway that reaches `nh` through `learned` (prefix, next hop of
/// both families), or `None` when no chain of learned routes leads to `my_net`.
pub fn resolve(learned: &[(IpNet, IpAddr)], nh: IpAddr, my_net: &IpNet) -> Option<IpAddr> {
    let mut at = nh;
    for _ in 0..MAX_DEPTH {
        if my_net.contains(&at) {
            return Some(at);
        }
        // The most specific route covering `at`, not a host route to itself through itself.
        let (_, via) = learned
            .iter()
            .filter(|(p, via)| p.contains(&at) && *via != at)
            .max_by_key(|(p, _)| p.prefix_len())?;
        at = *via;
    }
    my_net.contains(&at).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Vec<(IpNet, IpAddr)> {
        pairs
            .iter()
            .map(|(p, n)| (p.parse().unwrap(), n.parse().unwrap()))
            .collect()
    }

    #[test]
    fn off_subnet_next_hops_resolve_through_learned_routes() {
        let my: IpNet = "172.20.42.80/24".parse().unwrap();
        let learned = l(&[
            ("203.0.113.0/24", "198.51.100.7"),
            ("198.51.100.0/24", "172.20.42.1"),
            ("198.51.100.7/32", "172.20.42.2"),
        ]);
        // On the subnet: itself.
        assert_eq!(
            resolve(&learned, "172.20.42.9".parse().unwrap(), &my),
            Some("172.20.42.9".parse().unwrap())
        );
        // Off the subnet: the most specific covering route's gateway (/32 over /24).
        assert_eq!(
            resolve(&learned, "198.51.100.7".parse().unwrap(), &my),
            Some("172.20.42.2".parse().unwrap())
        );
        assert_eq!(
            resolve(&learned, "198.51.100.9".parse().unwrap(), &my),
            Some("172.20.42.1".parse().unwrap())
        );
        // Nothing covers it.
        assert_eq!(resolve(&learned, "192.0.2.1".parse().unwrap(), &my), None);
    }

    #[test]
    fn two_levels_and_loops_and_ipv6() {
        let my: IpNet = "172.20.42.80/24".parse().unwrap();
        let learned = l(&[
            ("10.1.0.0/16", "10.2.0.1"),
            ("10.2.0.0/16", "172.20.42.3"),
            ("10.8.0.0/16", "10.9.0.1"),
            ("10.9.0.0/16", "10.8.0.1"),
        ]);
        assert_eq!(
            resolve(&learned, "10.1.2.3".parse().unwrap(), &my),
            Some("172.20.42.3".parse().unwrap())
        );
        assert_eq!(resolve(&learned, "10.8.0.5".parse().unwrap(), &my), None);
        let my6: IpNet = "fd00:20::80/64".parse().unwrap();
        let learned6 = l(&[("fd00:99::/64", "fd00:20::1")]);
        assert_eq!(
            resolve(&learned6, "fd00:99::7".parse().unwrap(), &my6),
            Some("fd00:20::1".parse().unwrap())
        );
    }
}
