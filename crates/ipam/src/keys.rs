//! Calico's key layout as IPAM uses it: the model crate's functions, plus the two lookups
//! other crates ask IPAM for.

use ipnet::IpNet;

pub use brindle_model::keys::*;

/// A host affinity key's node and block (`/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`);
/// `None` for any other key.
pub fn parse_affinity(key: &str) -> Option<(String, IpNet)> {
    match Key::parse(key) {
        Ok(Key::Affinity {
            affinity_type: AffinityType::Host,
            host,
            cidr,
        }) => Some((host, cidr)),
        _ => None,
    }
}

/// `/calico/ipam/v2/handle/`
pub fn handle_prefix() -> String {
    HANDLE_PREFIX.to_string()
}
