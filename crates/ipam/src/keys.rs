//! Calico's etcd key layout for the IPAM objects and the resources IPAM reads (calico.md §7.1).
//! The CIDR in a key has `/` replaced by `-`.

use ipnet::IpNet;

use crate::cidr::{self, Family};

const IPAM: &str = "/calico/ipam/v2";
const RESOURCES: &str = "/calico/resources/v3/projectcalico.org";

/// `/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24`
pub fn block(cidr: &IpNet) -> String {
    format!(
        "{}{}",
        block_prefix(Family::of_net(cidr)),
        cidr::key_segment(cidr)
    )
}

/// `/calico/ipam/v2/assignment/ipv4/block/`
pub fn block_prefix(family: Family) -> String {
    format!("{IPAM}/assignment/ipv{}/block/", family.number())
}

/// `/calico/ipam/v2/host/<node>/ipv4/block/10.233.94.0-24`
pub fn affinity(host: &str, cidr: &IpNet) -> String {
    format!(
        "{}{}",
        affinity_prefix(host, Family::of_net(cidr)),
        cidr::key_segment(cidr)
    )
}

/// `/calico/ipam/v2/host/<node>/ipv4/block/`
pub fn affinity_prefix(host: &str, family: Family) -> String {
    format!("{IPAM}/host/{host}/ipv{}/block/", family.number())
}

/// `/calico/ipam/v2/host/`: every node's affinities.
pub fn all_affinities_prefix() -> String {
    format!("{IPAM}/host/")
}

/// Splits an affinity key into its node, family and block.
pub fn parse_affinity(key: &str) -> Option<(String, IpNet)> {
    let rest = key.strip_prefix(&all_affinities_prefix())?;
    let (host, rest) = rest.split_once('/')?;
    let (_fam, seg) = rest.split_once("/block/")?;
    Some((host.to_string(), cidr::parse_key_segment(seg)?))
}

/// `/calico/ipam/v2/handle/<id>`
pub fn handle(id: &str) -> String {
    format!("{IPAM}/handle/{id}")
}

/// `/calico/ipam/v2/handle/`
pub fn handle_prefix() -> String {
    format!("{IPAM}/handle/")
}

/// `/calico/ipam/v2/config`
pub fn config() -> String {
    format!("{IPAM}/config")
}

/// `/calico/resources/v3/projectcalico.org/<plural>/`
pub fn resource_prefix(plural: &str) -> String {
    format!("{RESOURCES}/{plural}/")
}

/// `/calico/resources/v3/projectcalico.org/<plural>/<name>` (cluster-scoped).
pub fn resource(plural: &str, name: &str) -> String {
    format!("{RESOURCES}/{plural}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_calicos() {
        let c: IpNet = "10.233.94.0/24".parse().unwrap();
        assert_eq!(block(&c), "/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24");
        assert_eq!(
            affinity("node1", &c),
            "/calico/ipam/v2/host/node1/ipv4/block/10.233.94.0-24"
        );
        assert_eq!(
            handle("ipip-tunnel-addr-node1"),
            "/calico/ipam/v2/handle/ipip-tunnel-addr-node1"
        );
        assert_eq!(config(), "/calico/ipam/v2/config");
        let v6: IpNet = "fd00::40/122".parse().unwrap();
        assert_eq!(block(&v6), "/calico/ipam/v2/assignment/ipv6/block/fd00::40-122");
        assert_eq!(
            parse_affinity(&affinity("n-1.x", &v6)),
            Some(("n-1.x".into(), v6))
        );
        assert_eq!(parse_affinity("/calico/ipam/v2/host/n/ipv4/block/garbage"), None);
    }
}
