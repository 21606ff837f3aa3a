//! The default pools calico-node creates at startup from its environment (Calico's
//! `node/pkg/lifecycle/startup/startup.go`, `configureIPPools`): `CALICO_IPV4POOL_*` and
//! `CALICO_IPV6POOL_*`, parsed purely and validated before anything is written.

use brindle_model::ObjectMeta;
use brindle_model::resources::{AllowedUse, EncapMode, IPPool, IPPoolSpec};
use ipnet::{Ipv4Net, Ipv6Net};

use crate::config::{parse_bool, parse_num};
use crate::error::{Error, Result};

/// `CALICO_IPV4POOL_IPIP` / `_VXLAN`, `CALICO_IPV6POOL_VXLAN`:
/// `off|never|always|crosssubnet|cross-subnet`, any case; empty means Never.
fn encap_from_env(var: &str, v: Option<&str>) -> Result<EncapMode> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("off") | Some("never") => Ok(EncapMode::Never),
        Some("always") => Ok(EncapMode::Always),
        Some("crosssubnet") | Some("cross-subnet") => Ok(EncapMode::CrossSubnet),
        Some(other) => Err(Error::Config(format!(
            "{var}={other}: expected Always, CrossSubnet or Never"
        ))),
    }
}

fn block_size(env: &impl Fn(&str) -> Option<String>, var: &str, default: u8, range: (u8, u8)) -> Result<u8> {
    let b: u8 = match env(var) {
        Some(v) => parse_num(var, &v)?,
        None => default,
    };
    if !(range.0..=range.1).contains(&b) {
        return Err(Error::Config(format!(
            "{var}={b}: must be between {} and {}",
            range.0, range.1
        )));
    }
    Ok(b)
}

/// The `default-ipv4-ippool` (`CALICO_IPV4POOL_CIDR`, default 192.168.0.0/16, blocks of /26,
/// NAT outgoing on).
pub fn default_v4(env: &impl Fn(&str) -> Option<String>) -> Result<Option<IPPool>> {
    let cidr_s = env("CALICO_IPV4POOL_CIDR").unwrap_or_else(|| "192.168.0.0/16".into());
    let cidr: Ipv4Net = cidr_s
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("CALICO_IPV4POOL_CIDR={cidr_s}: not an IPv4 CIDR")))?;
    if cidr.trunc() != cidr {
        return Err(Error::Config(format!(
            "CALICO_IPV4POOL_CIDR={cidr_s}: not strictly masked (did you mean {}?)",
            cidr.trunc()
        )));
    }
    let block_size = block_size(env, "CALICO_IPV4POOL_BLOCK_SIZE", 26, (20, 32))?;
    if cidr.prefix_len() > block_size {
        return Err(Error::Config(format!(
            "CALICO_IPV4POOL_CIDR={cidr}: smaller than one block of /{block_size}"
        )));
    }
    let ipip = encap_from_env("CALICO_IPV4POOL_IPIP", env("CALICO_IPV4POOL_IPIP").as_deref())?;
    let vxlan = encap_from_env("CALICO_IPV4POOL_VXLAN", env("CALICO_IPV4POOL_VXLAN").as_deref())?;
    if ipip != EncapMode::Never && vxlan != EncapMode::Never {
        return Err(Error::Config(
            "CALICO_IPV4POOL_IPIP and CALICO_IPV4POOL_VXLAN: cannot enable both VXLAN and IPIP on the same IPPool".into(),
        ));
    }
    let nat_outgoing = env("CALICO_IPV4POOL_NAT_OUTGOING")
        .map(|v| parse_bool("CALICO_IPV4POOL_NAT_OUTGOING", &v))
        .transpose()?
        .unwrap_or(true);
    // As calico-node writes it (`startup.go`, `createIPPool`).
    Ok(Some(IPPool::new(
        ObjectMeta::named("default-ipv4-ippool"),
        IPPoolSpec {
            cidr: cidr.to_string(),
            vxlan_mode: Some(vxlan),
            ipip_mode: Some(ipip),
            nat_outgoing,
            block_size: u32::from(block_size),
            node_selector: env("CALICO_IPV4POOL_NODE_SELECTOR").unwrap_or_else(|| "all()".into()),
            allowed_uses: vec![AllowedUse::Workload, AllowedUse::Tunnel],
            ..IPPoolSpec::default()
        },
    )))
}

/// The `default-ipv6-ippool`: `CALICO_IPV6POOL_CIDR` (unset: a random ULA /48, chosen when
/// the pool is created, left empty here), blocks of `CALICO_IPV6POOL_BLOCK_SIZE` (default
/// /122, 116 to 128), `CALICO_IPV6POOL_VXLAN` (no IPIP: Calico never tunnels IPv6 in IPIP),
/// `CALICO_IPV6POOL_NAT_OUTGOING` (default off, as calico-node), `_NODE_SELECTOR`.
pub fn default_v6(env: &impl Fn(&str) -> Option<String>) -> Result<IPPool> {
    let cidr = match env("CALICO_IPV6POOL_CIDR") {
        None => None,
        Some(cidr_s) => {
            let cidr: Ipv6Net = cidr_s
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("CALICO_IPV6POOL_CIDR={cidr_s}: not an IPv6 CIDR")))?;
            if cidr.trunc() != cidr {
                return Err(Error::Config(format!(
                    "CALICO_IPV6POOL_CIDR={cidr_s}: not strictly masked (did you mean {}?)",
                    cidr.trunc()
                )));
            }
            Some(cidr)
        }
    };
    let block_size = block_size(env, "CALICO_IPV6POOL_BLOCK_SIZE", 122, (116, 128))?;
    if let Some(c) = cidr
        && c.prefix_len() > block_size
    {
        return Err(Error::Config(format!(
            "CALICO_IPV6POOL_CIDR={c}: smaller than one block of /{block_size}"
        )));
    }
    let vxlan = encap_from_env("CALICO_IPV6POOL_VXLAN", env("CALICO_IPV6POOL_VXLAN").as_deref())?;
    let nat_outgoing = env("CALICO_IPV6POOL_NAT_OUTGOING")
        .map(|v| parse_bool("CALICO_IPV6POOL_NAT_OUTGOING", &v))
        .transpose()?
        .unwrap_or(false);
    let node_selector = env("CALICO_IPV6POOL_NODE_SELECTOR").unwrap_or_else(|| "all()".into());
    if let Err(e) = brindle_model::selector::matches(
        &node_selector,
        &std::collections::BTreeMap::<String, String>::new(),
    ) {
        return Err(Error::Config(format!(
            "CALICO_IPV6POOL_NODE_SELECTOR={node_selector}: {e}"
        )));
    }
    Ok(IPPool::new(
        ObjectMeta::named("default-ipv6-ippool"),
        IPPoolSpec {
            cidr: cidr.map(|c| c.to_string()).unwrap_or_default(),
            vxlan_mode: Some(vxlan),
            ipip_mode: Some(EncapMode::Never),
            nat_outgoing,
            block_size: u32::from(block_size),
            node_selector,
            allowed_uses: vec![AllowedUse::Workload, AllowedUse::Tunnel],
            ..IPPoolSpec::default()
        },
    ))
}

/// A random IPv6 ULA /48 (RFC 4193: `fd` + 40 random bits), calico-node's default IPv6 pool.
/// `random` gives the 40 bits' five bytes.
pub fn ula_48(random: [u8; 5]) -> Ipv6Net {
    let r = random;
    let segs = [
        0xfd00 | u16::from(r[0]),
        u16::from_be_bytes([r[1], r[2]]),
        u16::from_be_bytes([r[3], r[4]]),
        0,
        0,
        0,
        0,
        0,
    ];
    Ipv6Net::new(std::net::Ipv6Addr::from(segs), 48).expect("/48")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn v6_pool_defaults_as_calico_node() {
        let p = default_v6(&env(&[])).unwrap();
        assert_eq!(p.metadata.name, "default-ipv6-ippool");
        assert_eq!(p.spec.cidr, "", "chosen at creation");
        assert_eq!(
            (p.spec.block_size, p.spec.vxlan(), p.spec.nat_outgoing),
            (122, EncapMode::Never, false)
        );
        assert_eq!(p.spec.node_selector, "all()");
        let p = default_v6(&env(&[
            ("CALICO_IPV6POOL_CIDR", "fd00:10:244::/64"),
            ("CALICO_IPV6POOL_BLOCK_SIZE", "120"),
            ("CALICO_IPV6POOL_VXLAN", "CrossSubnet"),
            ("CALICO_IPV6POOL_NAT_OUTGOING", "true"),
            ("CALICO_IPV6POOL_NODE_SELECTOR", "zone == 'a'"),
        ]))
        .unwrap();
        assert_eq!(p.spec.cidr, "fd00:10:244::/64");
        assert_eq!(
            (p.spec.block_size, p.spec.vxlan(), p.spec.nat_outgoing),
            (120, EncapMode::CrossSubnet, true)
        );
        assert_eq!(p.spec.node_selector, "zone == 'a'");
    }

    #[test]
    fn v6_pool_errors_name_the_variable() {
        for (k, v, want) in [
            ("CALICO_IPV6POOL_CIDR", "10.0.0.0/8", "not an IPv6 CIDR"),
            ("CALICO_IPV6POOL_CIDR", "fd00::1/64", "not strictly masked"),
            ("CALICO_IPV6POOL_BLOCK_SIZE", "112", "between 116 and 128"),
            ("CALICO_IPV6POOL_BLOCK_SIZE", "129", "between 116 and 128"),
            ("CALICO_IPV6POOL_VXLAN", "sometimes", "expected Always"),
            ("CALICO_IPV6POOL_NAT_OUTGOING", "maybe", "expected true or false"),
            ("CALICO_IPV6POOL_NODE_SELECTOR", "zone ==", ""),
        ] {
            let e = default_v6(&env(&[(k, v)])).unwrap_err().to_string();
            assert!(e.contains(k) && e.contains(want), "{k}={v}: {e}");
        }
        let e = default_v6(&env(&[
            ("CALICO_IPV6POOL_CIDR", "fd00::/124"),
            ("CALICO_IPV6POOL_BLOCK_SIZE", "122"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("smaller than one block"), "{e}");
    }

    #[test]
    fn ula_is_fd_slash_48() {
        let n = ula_48([0x12, 0x34, 0x56, 0x78, 0x9a]);
        assert_eq!(n.to_string(), "fd12:3456:789a::/48");
    }
}
