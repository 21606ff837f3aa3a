//! What a lab is made of: the options of `brindle lab up`, validated.

use brindle_model::resources::EncapMode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The lab name used when `--name` is not given.
pub const DEFAULT_NAME: &str = "brindle";
/// Most nodes a lab can hold: node addresses are `.80 + i` inside a /22.
pub const MAX_NODES: usize = 400;
/// Most pods per node: a /24 block minus the tunnel address and some headroom.
pub const MAX_PODS: usize = 200;

/// The pool's `ipipMode` and `vxlanMode` for `--encap ipip|vxlan|none`: the chosen
/// encapsulation `Always`, or `CrossSubnet` with `--cross-subnet`; the other `Never`.
pub fn encap_modes(encap: &str, cross_subnet: bool) -> Result<(EncapMode, EncapMode)> {
    let on = if cross_subnet {
        EncapMode::CrossSubnet
    } else {
        EncapMode::Always
    };
    match encap {
        "ipip" => Ok((on, EncapMode::Never)),
        "vxlan" => Ok((EncapMode::Never, on)),
        "none" => Ok((EncapMode::Never, EncapMode::Never)),
        other => Err(Error::Invalid(format!(
            "--encap {other}: expected ipip, vxlan or none"
        ))),
    }
}

/// Which address families the lab's nodes and pods have (`--ip-family 4|6|dual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    /// IPv4 only: the seed's cluster.
    #[default]
    V4,
    /// IPv6 only: nodes have no IPv4 address (`IP=none`), pods only IPv6 ones.
    V6,
    /// Both: every node and pod has an IPv4 and an IPv6 address, BGP runs per family.
    Dual,
}

impl IpFamily {
    pub fn has_v4(self) -> bool {
        self != IpFamily::V6
    }
    pub fn has_v6(self) -> bool {
        self != IpFamily::V4
    }
    /// As `--ip-family` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            IpFamily::V4 => "4",
            IpFamily::V6 => "6",
            IpFamily::Dual => "dual",
        }
    }
}

impl std::str::FromStr for IpFamily {
    type Err = Error;
    fn from_str(s: &str) -> Result<IpFamily> {
        match s {
            "4" | "ipv4" => Ok(IpFamily::V4),
            "6" | "ipv6" => Ok(IpFamily::V6),
            "dual" | "46" => Ok(IpFamily::Dual),
            other => Err(Error::Invalid(format!(
                "--ip-family {other}: expected 4, 6 or dual"
            ))),
        }
    }
}

fn always() -> EncapMode {
    EncapMode::Always
}

fn never() -> EncapMode {
    EncapMode::Never
}

/// Which datastore the lab's nodes share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatastoreKind {
    /// One SQLite file in the lab's directory, shared by every node (same filesystem).
    Sqlite,
    /// A real etcd in its own namespace on the fabric.
    Etcd,
}

impl std::str::FromStr for DatastoreKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<DatastoreKind> {
        match s {
            "sqlite" => Ok(DatastoreKind::Sqlite),
            "etcd" | "etcdv3" => Ok(DatastoreKind::Etcd),
            other => Err(Error::Invalid(format!(
                "--datastore {other}: expected sqlite or etcd"
            ))),
        }
    }
}

/// The options of `brindle lab up`. The default is the seed's cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    pub name: String,
    pub nodes: usize,
    pub pods: usize,
    /// The pool's `ipipMode` and `vxlanMode` ([`encap_modes`]).
    #[serde(default = "always")]
    pub ipip_mode: EncapMode,
    #[serde(default = "never")]
    pub vxlan_mode: EncapMode,
    /// Nodes split over two subnets behind the router; encapsulation only between subnets.
    pub cross_subnet: bool,
    pub datastore: DatastoreKind,
    /// The pool's `blockSize` (the seed's 24; smaller blocks make nodes claim blocks often).
    #[serde(default = "default_block_size")]
    pub block_size: u8,
    /// Build namespaces and links only (no datastore, agents or pods): for debugging the fabric.
    #[serde(default)]
    pub topology_only: bool,
    /// Address families of nodes and pods (labs recorded before it are IPv4).
    #[serde(default)]
    pub ip_family: IpFamily,
    /// The IPv6 pool's `blockSize` (Calico's default 122; benchmarks use small blocks so nodes
    /// claim blocks often).
    #[serde(default = "default_block_size6")]
    pub block_size6: u8,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            name: DEFAULT_NAME.into(),
            nodes: 3,
            pods: 2,
            ipip_mode: EncapMode::Always,
            vxlan_mode: EncapMode::Never,
            cross_subnet: false,
            datastore: DatastoreKind::Sqlite,
            block_size: crate::plan::BLOCK_SIZE,
            topology_only: false,
            ip_family: IpFamily::V4,
            block_size6: crate::plan::BLOCK_SIZE6,
        }
    }
}

fn default_block_size() -> u8 {
    crate::plan::BLOCK_SIZE
}

fn default_block_size6() -> u8 {
    crate::plan::BLOCK_SIZE6
}

/// Checks a lab name: it prefixes namespace names and names a directory, so it is short and made
/// of lower-case letters, digits and dashes.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "--name {name:?}: use 1-24 lower-case letters, digits and dashes, not starting with a dash"
        )))
    }
}

impl LabSpec {
    /// The encapsulation, as `--encap` names it.
    pub fn encap(&self) -> &'static str {
        if self.vxlan_mode.enabled() {
            "vxlan"
        } else if self.ipip_mode.enabled() {
            "ipip"
        } else {
            "none"
        }
    }

    /// The pods' MTU: the underlay's 1500 less the encapsulation's overhead (VXLAN over IPv6
    /// costs 70 bytes, as Felix's `vxlanMTUV6` default; IPv6 pods in an IPIP lab are routed
    /// natively but share the interface, so the IPIP MTU holds for both).
    pub fn pod_mtu(&self) -> u32 {
        match self.encap() {
            "vxlan" if self.ip_family.has_v6() => 1430,
            "vxlan" => 1450,
            "ipip" if self.ip_family.has_v4() => 1480,
            _ => 1500,
        }
    }

    /// The IPv6 pool's `vxlanMode`: the IPv4 pool's (Calico has no IPIP for IPv6, so with
    /// `--encap ipip` the IPv6 pool is routed natively).
    pub fn vxlan_mode_v6(&self) -> EncapMode {
        self.vxlan_mode
    }

    /// Checks every option before anything is made.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(Error::Invalid(format!(
                "--nodes {}: a lab has 1 to {MAX_NODES} nodes",
                self.nodes
            )));
        }
        if self.pods > MAX_PODS {
            return Err(Error::Invalid(format!(
                "--pods {}: at most {MAX_PODS} pods per node",
                self.pods
            )));
        }
        if self.ipip_mode.enabled() && self.vxlan_mode.enabled() {
            return Err(Error::Invalid(
                "the lab's pool cannot enable both IPIP and VXLAN (Calico refuses such a pool)".into(),
            ));
        }
        if self.cross_subnet && self.encap() == "none" {
            return Err(Error::Invalid(
                "--cross-subnet needs an encapsulation (ipip or vxlan): without one, nodes in \
                 different subnets cannot reach each other's pods through the router"
                    .into(),
            ));
        }
        if !(20..=31).contains(&self.block_size) {
            return Err(Error::Invalid(format!(
                "--block-size {}: between 20 and 31 (a /32 block has no room for a pod after the tunnel address)",
                self.block_size
            )));
        }
        // Calico's range for IPv6 blocks (116–128); the lab's /112 pool and a /128 block leave
        // no room for a pod after the tunnel address, as /32 for IPv4.
        if self.ip_family.has_v6() && !(116..=127).contains(&self.block_size6) {
            return Err(Error::Invalid(format!(
                "IPv6 block size /{}: between 116 and 127",
                self.block_size6
            )));
        }
        if self.ip_family == IpFamily::V6 && self.ipip_mode.enabled() {
            return Err(Error::Invalid(
                "--ip-family 6 --encap ipip: IPIP carries IPv4 only (Calico has no IPIP for IPv6 \
                 pools); use --encap vxlan or --encap none"
                    .into(),
            ));
        }
        if self.cross_subnet && self.ip_family.has_v6() && !self.vxlan_mode.enabled() {
            return Err(Error::Invalid(format!(
                "--cross-subnet --ip-family {} needs --encap vxlan: IPv6 pods are never carried in \
                 IPIP, and routed natively they cannot cross the router between the subnets",
                self.ip_family.as_str()
            )));
        }
        if self.cross_subnet && self.nodes < 2 {
            return Err(Error::Invalid("--cross-subnet needs at least 2 nodes".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_seed() {
        let s = LabSpec::default();
        assert_eq!((s.nodes, s.pods, s.encap()), (3, 2, "ipip"));
        assert_eq!(s.pod_mtu(), 1480);
        assert_eq!(
            encap_modes("vxlan", true).unwrap(),
            (EncapMode::Never, EncapMode::CrossSubnet)
        );
        s.validate().unwrap();
    }

    #[test]
    fn bad_options_are_refused_with_the_option_named() {
        for (spec, needle) in [
            (
                LabSpec {
                    nodes: 0,
                    ..Default::default()
                },
                "--nodes 0",
            ),
            (
                LabSpec {
                    nodes: 401,
                    ..Default::default()
                },
                "--nodes 401",
            ),
            (
                LabSpec {
                    pods: 300,
                    ..Default::default()
                },
                "--pods 300",
            ),
            (
                LabSpec {
                    name: "Bad_Name".into(),
                    ..Default::default()
                },
                "--name",
            ),
            (
                LabSpec {
                    name: "".into(),
                    ..Default::default()
                },
                "--name",
            ),
            (
                LabSpec {
                    cross_subnet: true,
                    ipip_mode: EncapMode::Never,
                    ..Default::default()
                },
                "--cross-subnet",
            ),
        ] {
            let e = spec.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        assert!(
            encap_modes("gre", false)
                .unwrap_err()
                .to_string()
                .contains("--encap gre")
        );
        assert!("k8s".parse::<DatastoreKind>().is_err());
        let e = "5".parse::<IpFamily>().unwrap_err().to_string();
        assert!(e.contains("--ip-family 5") && e.contains("4, 6 or dual"), "{e}");
    }

    #[test]
    fn ipv6_labs_refuse_ipip_with_the_reason() {
        let v6 = LabSpec {
            ip_family: IpFamily::V6,
            ..Default::default()
        };
        let e = v6.validate().unwrap_err().to_string();
        assert!(
            e.contains("--ip-family 6 --encap ipip") && e.contains("no IPIP for IPv6"),
            "{e}"
        );
        let (ipip_mode, vxlan_mode) = encap_modes("vxlan", false).unwrap();
        LabSpec {
            ipip_mode,
            vxlan_mode,
            ..v6.clone()
        }
        .validate()
        .unwrap();
        // Dual stack with IPIP: IPv4 in IPIP, IPv6 native, as Calico.
        let dual = LabSpec {
            ip_family: IpFamily::Dual,
            ..Default::default()
        };
        dual.validate().unwrap();
        assert_eq!(dual.vxlan_mode_v6(), EncapMode::Never);
        let e = LabSpec {
            cross_subnet: true,
            ipip_mode: EncapMode::CrossSubnet,
            ..dual.clone()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--cross-subnet --ip-family dual needs --encap vxlan"),
            "{e}"
        );
        let (ipip_mode, vxlan_mode) = encap_modes("vxlan", true).unwrap();
        let cs = LabSpec {
            cross_subnet: true,
            ipip_mode,
            vxlan_mode,
            ..dual
        };
        cs.validate().unwrap();
        assert_eq!(cs.vxlan_mode_v6(), EncapMode::CrossSubnet);
        assert_eq!(cs.pod_mtu(), 1430);
    }

    #[test]
    fn old_state_files_are_ipv4_labs() {
        let mut v = serde_json::to_value(LabSpec::default()).unwrap();
        v.as_object_mut().unwrap().remove("ip_family");
        let s: LabSpec = serde_json::from_value(v).unwrap();
        assert_eq!(s.ip_family, IpFamily::V4);
    }
}
