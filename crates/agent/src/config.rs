//! The agent's configuration, from flags and Calico's environment (docs/CALICO.md §2, §5, §6),
//! parsed purely (`env` is a closure) so every rule is a unit test.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use brindle_model::resources::IPPool;
use ipnet::{Ipv4Net, Ipv6Net};

use crate::error::{Error, Result};

/// Where a node keeps its nodename and MTU files unless told otherwise (Calico:
/// `/var/lib/calico`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/brindle";
/// The agent's control socket (`node status` talks to it; Calico: BIRD's `/var/run/calico/bird.ctl`).
pub const DEFAULT_CTL_SOCKET: &str = "/var/run/brindle/brindle.ctl";
/// Where BGP passwords are read without `BRINDLE_SECRETS_DIR`.
pub const DEFAULT_SECRETS_DIR: &str = "/etc/brindle/secrets";

/// `IP` / `IP6`: what address the node has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpSetting<A, N> {
    /// Unset or `autodetect`: find one with the autodetection method (IPv4), keep the Node's
    /// existing one if it has one.
    Autodetect,
    /// `none`: keep whatever the Node has (IPv4), or no address (IPv6).
    None,
    /// An explicit address; the prefix comes from the interface holding it when not given.
    Addr(A, Option<N>),
}

pub type Ip4Setting = IpSetting<Ipv4Addr, u8>;
pub type Ip6Setting = IpSetting<std::net::Ipv6Addr, u8>;

/// `IP_AUTODETECTION_METHOD` (docs/CALICO.md §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutodetectMethod {
    FirstFound,
    CanReach(String),
    Interface(Vec<String>),
    SkipInterface(Vec<String>),
    Cidr(Vec<ipnet::IpNet>),
}

impl std::str::FromStr for AutodetectMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<AutodetectMethod> {
        AutodetectMethod::parse("IP_AUTODETECTION_METHOD", s)
    }
}

/// `CALICO_ROUTER_ID`: the BGP router id (confd's template: an address, or `hash` of the
/// node name; IPv6-only nodes need one since their router id cannot be their address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterId {
    Addr(Ipv4Addr),
    Hash,
}

impl RouterId {
    fn parse(v: &str) -> Result<RouterId> {
        match v.trim() {
            "hash" => Ok(RouterId::Hash),
            s => match s.parse::<Ipv4Addr>() {
                Ok(a) if !a.is_unspecified() && !a.is_broadcast() => Ok(RouterId::Addr(a)),
                _ => Err(Error::Config(format!(
                    "CALICO_ROUTER_ID={s}: expected an IPv4 address or hash"
                ))),
            },
        }
    }
}

impl AutodetectMethod {
    /// Parses the method of `var` (`IP_AUTODETECTION_METHOD` or `IP6_AUTODETECTION_METHOD`).
    pub fn parse(var: &str, s: &str) -> Result<AutodetectMethod> {
        let s = s.trim();
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        };
        let bad = |why: &str| Error::Config(format!("{var}={s}: {why}"));
        if s.is_empty() || s == "first-found" {
            return Ok(AutodetectMethod::FirstFound);
        }
        if let Some(v) = s.strip_prefix("can-reach=") {
            if v.is_empty() {
                return Err(bad("no destination given"));
            }
            return Ok(AutodetectMethod::CanReach(v.to_string()));
        }
        if let Some(v) = s.strip_prefix("interface=") {
            let l = list(v);
            if l.is_empty() {
                return Err(bad("no interface regex given"));
            }
            return Ok(AutodetectMethod::Interface(l));
        }
        if let Some(v) = s.strip_prefix("skip-interface=") {
            return Ok(AutodetectMethod::SkipInterface(list(v)));
        }
        if let Some(v) = s.strip_prefix("cidr=") {
            let nets = list(v)
                .iter()
                .map(|c| c.parse().map_err(|_| bad(&format!("{c} is not a CIDR"))))
                .collect::<Result<Vec<_>>>()?;
            if nets.is_empty() {
                return Err(bad("no CIDR given"));
            }
            return Ok(AutodetectMethod::Cidr(nets));
        }
        if s == "kubernetes-internal-ip" {
            return Err(bad(
                "kubernetes-internal-ip needs the Kubernetes datastore, which Brindle does not use",
            ));
        }
        Err(bad(
            "unknown method (expected first-found, can-reach=DEST, interface=REGEX, skip-interface=REGEX or cidr=CIDR)",
        ))
    }
}

/// `CALICO_NETWORKING_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// BGP (Calico's BIRD mode; Brindle's own speaker).
    Bird,
    /// VXLAN only, no BGP.
    Vxlan,
    /// No networking (policy only): no BGP, no routes.
    None,
}

/// Felix settings the agent honours from `FELIX_*` (the FelixConfiguration resources can set
/// them too; the environment wins, as in Felix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FelixEnv {
    /// `FELIX_IPINIPMTU` (0 = auto: host MTU − 20).
    pub ipip_mtu: Option<u32>,
    /// `FELIX_VXLANMTU` (0 = auto: host MTU − 50).
    pub vxlan_mtu: Option<u32>,
    /// `FELIX_VXLANMTUV6` (0 = auto: host MTU − 70).
    pub vxlan_mtu_v6: Option<u32>,
    pub vxlan_vni: Option<u32>,
    pub vxlan_port: Option<u16>,
    /// `FELIX_ROUTEREFRESHINTERVAL` in seconds (Felix default 90).
    pub route_refresh_secs: Option<u64>,
    /// `FELIX_LOGSEVERITYSCREEN`.
    pub log_severity: Option<String>,
    /// `FELIX_HEALTHENABLED` (Brindle: on unless set false), `FELIX_HEALTHHOST`, `FELIX_HEALTHPORT`.
    pub health: Option<SocketAddr>,
    /// `FELIX_PROMETHEUSMETRICSENABLED` (Brindle: on unless set false),
    /// `FELIX_PROMETHEUSMETRICSHOST`, `FELIX_PROMETHEUSMETRICSPORT`. Served by the health server
    /// too when the address is the same.
    pub metrics: Option<SocketAddr>,
    /// `FELIX_INTERFACEPREFIX` (first entry names veths).
    pub interface_prefixes: Vec<String>,
    /// `FELIX_PROGRAMCLUSTERROUTES`: program routes to other nodes' blocks from IPAM (as Felix
    /// does at Calico HEAD) in addition to BGP's best routes, so a restarting agent or a
    /// flapping session never withdraws working routes. `Disabled`: BGP routes only (BIRD's
    /// behaviour up to v3.32). Unset: the FelixConfiguration resources decide (default on).
    pub program_cluster_routes: Option<bool>,
    /// `FELIX_DEFAULTENDPOINTTOHOSTACTION` (`Drop`, `Return`, `Accept`).
    pub default_endpoint_to_host_action: Option<String>,
    /// `FELIX_LOGPREFIX`.
    pub log_prefix: Option<String>,
    /// `FELIX_ALLOWVXLANPACKETSFROMWORKLOADS`, `FELIX_ALLOWIPIPPACKETSFROMWORKLOADS`.
    pub allow_vxlan_packets_from_workloads: Option<bool>,
    pub allow_ipip_packets_from_workloads: Option<bool>,
    /// `FELIX_POLICYENABLED` (Brindle's switch; on unless set false): enforce network policy
    /// in the agent's nftables tables.
    pub policy_enabled: bool,
}

/// Everything the agent was told.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// `NODENAME` (or `--nodename`).
    pub nodename: Option<String>,
    /// `HOSTNAME`.
    pub hostname: Option<String>,
    pub ip: Ip4Setting,
    pub ip_method: AutodetectMethod,
    pub ip6: Ip6Setting,
    pub ip6_method: AutodetectMethod,
    /// `AS`: this node's AS number.
    pub as_number: Option<u32>,
    /// `None` with `NO_DEFAULT_POOLS=true`.
    pub default_pool: Option<IPPool>,
    /// The `CALICO_IPV6POOL_*` pool (`None` with `NO_DEFAULT_POOLS=true`), created when the
    /// node has an IPv6 address and no IPv6 pool exists. An empty `cidr` means
    /// `CALICO_IPV6POOL_CIDR` was not set: a random ULA /48 is chosen at creation.
    pub default_pool_v6: Option<IPPool>,
    /// `CALICO_ROUTER_ID`: an IPv4 address or `hash`.
    pub router_id: Option<RouterId>,
    pub backend: Backend,
    /// `CLUSTER_TYPE`, stored in ClusterInformation.
    pub cluster_type: String,
    pub felix: FelixEnv,
    /// `BRINDLE_STATE_DIR`: nodename and MTU files.
    pub state_dir: PathBuf,
    /// `BRINDLE_CTL_SOCKET`.
    pub ctl_socket: PathBuf,
    /// `BRINDLE_BGP_PORT`: where the speaker listens and connects (179; BGPConfiguration
    /// `listenPort` wins when set).
    pub bgp_port: Option<u16>,
    /// `BRINDLE_SECRETS_DIR`: where BGP passwords are read (`<dir>/<secret name>/<key>`, the
    /// layout of Kubernetes Secrets mounted as volumes; see `bgp::Secrets`).
    pub secrets_dir: PathBuf,
}

pub(crate) fn parse_bool(var: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        other => Err(Error::Config(format!("{var}={other}: expected true or false"))),
    }
}

pub(crate) fn parse_num<T: std::str::FromStr>(var: &str, v: &str) -> Result<T> {
    v.trim()
        .parse()
        .map_err(|_| Error::Config(format!("{var}={v}: not a valid number")))
}

/// Parses `IP`: `autodetect`, `none`, `A.B.C.D` or `A.B.C.D/N`.
fn parse_ip4(v: Option<&str>) -> Result<Ip4Setting> {
    match v.map(str::trim) {
        None | Some("") | Some("autodetect") => Ok(IpSetting::Autodetect),
        Some("none") => Ok(IpSetting::None),
        Some(s) => {
            if let Ok(net) = s.parse::<Ipv4Net>() {
                return Ok(IpSetting::Addr(net.addr(), Some(net.prefix_len())));
            }
            s.parse::<Ipv4Addr>()
                .map(|a| IpSetting::Addr(a, None))
                .map_err(|_| {
                    Error::Config(format!(
                        "IP={s}: not an IPv4 address (expected autodetect, none, A.B.C.D or A.B.C.D/N)"
                    ))
                })
        }
    }
}

/// Parses `IP6`. Unlike `IP`, unset means no IPv6 (only `autodetect` autodetects).
fn parse_ip6(v: Option<&str>) -> Result<Ip6Setting> {
    match v.map(str::trim) {
        None | Some("") | Some("none") => Ok(IpSetting::None),
        Some("autodetect") => Ok(IpSetting::Autodetect),
        Some(s) => {
            if let Ok(net) = s.parse::<Ipv6Net>() {
                return Ok(IpSetting::Addr(net.addr(), Some(net.prefix_len())));
            }
            s.parse()
                .map(|a| IpSetting::Addr(a, None))
                .map_err(|_| Error::Config(format!("IP6={s}: not an IPv6 address")))
        }
    }
}

/// Parses an AS number: plain (`64512`) or asdot (`1.10` = 65546).
pub fn parse_asn(var: &str, v: &str) -> Result<u32> {
    let v = v.trim();
    let bad = || Error::Config(format!("{var}={v}: not an AS number"));
    if let Some((hi, lo)) = v.split_once('.') {
        let hi: u16 = hi.parse().map_err(|_| bad())?;
        let lo: u16 = lo.parse().map_err(|_| bad())?;
        return Ok((u32::from(hi) << 16) | u32::from(lo));
    }
    v.parse().map_err(|_| bad())
}

fn socket(
    var_host: &str,
    host: Option<String>,
    var_port: &str,
    port: Option<String>,
    default_port: u16,
) -> Result<SocketAddr> {
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let ip: IpAddr = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| Error::Config(format!("{var_host}={host}: not an IP address")))?
    };
    let port = match port {
        Some(p) => parse_num(var_port, &p)?,
        None => default_port,
    };
    Ok(SocketAddr::new(ip, port))
}

impl AgentConfig {
    /// The configuration from the environment as read by `env` (empty values count as unset).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<AgentConfig> {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let as_number = env("AS").map(|v| parse_asn("AS", &v)).transpose()?;
        let no_default_pools = env("NO_DEFAULT_POOLS")
            .map(|v| parse_bool("NO_DEFAULT_POOLS", &v))
            .transpose()?
            .unwrap_or(false);
        let (default_pool, default_pool_v6) = if no_default_pools {
            (None, None)
        } else {
            (
                crate::pools::default_v4(&env)?,
                Some(crate::pools::default_v6(&env)?),
            )
        };
        let backend = match env("CALICO_NETWORKING_BACKEND").as_deref().map(str::trim) {
            None | Some("bird") => Backend::Bird,
            Some("vxlan") => Backend::Vxlan,
            Some("none") => Backend::None,
            Some(other) => {
                return Err(Error::Config(format!(
                    "CALICO_NETWORKING_BACKEND={other}: expected bird, vxlan or none"
                )));
            }
        };
        let enabled = |var: &str| -> Result<bool> {
            env(var)
                .map(|v| parse_bool(var, &v))
                .transpose()
                .map(|b| b.unwrap_or(true))
        };
        let health = if enabled("FELIX_HEALTHENABLED")? {
            Some(socket(
                "FELIX_HEALTHHOST",
                env("FELIX_HEALTHHOST"),
                "FELIX_HEALTHPORT",
                env("FELIX_HEALTHPORT"),
                9099,
            )?)
        } else {
            None
        };
        let metrics = if enabled("FELIX_PROMETHEUSMETRICSENABLED")? {
            Some(socket(
                "FELIX_PROMETHEUSMETRICSHOST",
                env("FELIX_PROMETHEUSMETRICSHOST"),
                "FELIX_PROMETHEUSMETRICSPORT",
                env("FELIX_PROMETHEUSMETRICSPORT"),
                9091,
            )?)
        } else {
            None
        };
        let num = |var: &str| -> Result<Option<u32>> { env(var).map(|v| parse_num(var, &v)).transpose() };
        let program_cluster_routes = match env("FELIX_PROGRAMCLUSTERROUTES").as_deref().map(str::trim) {
            None => None,
            Some("Enabled") | Some("EnabledIPIPOnly") | Some("EnabledNoEncapOnly") | Some("true") => {
                Some(true)
            }
            Some("Disabled") | Some("false") => Some(false),
            Some(other) => {
                return Err(Error::Config(format!(
                    "FELIX_PROGRAMCLUSTERROUTES={other}: expected Enabled or Disabled"
                )));
            }
        };
        let flag = |var: &str| -> Result<Option<bool>> {
            match env(var)
                .as_deref()
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref()
            {
                None | Some("") => Ok(None),
                Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
                Some("false" | "0" | "no" | "off") => Ok(Some(false)),
                Some(other) => Err(Error::Config(format!("{var}={other}: expected true or false"))),
            }
        };
        let default_endpoint_to_host_action = match env("FELIX_DEFAULTENDPOINTTOHOSTACTION") {
            None => None,
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "" => None,
                "drop" | "return" | "accept" => Some(v.trim().to_string()),
                _ => {
                    return Err(Error::Config(format!(
                        "FELIX_DEFAULTENDPOINTTOHOSTACTION={v}: expected Drop, Return or Accept"
                    )));
                }
            },
        };
        let felix = FelixEnv {
            default_endpoint_to_host_action,
            log_prefix: env("FELIX_LOGPREFIX").filter(|v| !v.is_empty()),
            allow_vxlan_packets_from_workloads: flag("FELIX_ALLOWVXLANPACKETSFROMWORKLOADS")?,
            allow_ipip_packets_from_workloads: flag("FELIX_ALLOWIPIPPACKETSFROMWORKLOADS")?,
            policy_enabled: flag("FELIX_POLICYENABLED")?.unwrap_or(true),
            program_cluster_routes,
            ipip_mtu: num("FELIX_IPINIPMTU")?,
            vxlan_mtu: num("FELIX_VXLANMTU")?,
            vxlan_mtu_v6: num("FELIX_VXLANMTUV6")?,
            vxlan_vni: num("FELIX_VXLANVNI")?,
            vxlan_port: env("FELIX_VXLANPORT")
                .map(|v| parse_num("FELIX_VXLANPORT", &v))
                .transpose()?,
            route_refresh_secs: env("FELIX_ROUTEREFRESHINTERVAL")
                .map(|v| parse_num("FELIX_ROUTEREFRESHINTERVAL", v.trim_end_matches('s')))
                .transpose()?,
            log_severity: env("FELIX_LOGSEVERITYSCREEN"),
            health,
            metrics,
            interface_prefixes: env("FELIX_INTERFACEPREFIX")
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_else(|| vec!["cali".into()]),
        };
        Ok(AgentConfig {
            nodename: env("NODENAME").map(|v| v.trim().to_string()),
            hostname: env("HOSTNAME").map(|v| v.trim().to_string()),
            ip: parse_ip4(env("IP").as_deref())?,
            ip_method: AutodetectMethod::parse(
                "IP_AUTODETECTION_METHOD",
                &env("IP_AUTODETECTION_METHOD").unwrap_or_default(),
            )?,
            ip6: parse_ip6(env("IP6").as_deref())?,
            ip6_method: AutodetectMethod::parse(
                "IP6_AUTODETECTION_METHOD",
                &env("IP6_AUTODETECTION_METHOD").unwrap_or_default(),
            )?,
            as_number,
            default_pool,
            default_pool_v6,
            router_id: env("CALICO_ROUTER_ID").map(|v| RouterId::parse(&v)).transpose()?,
            backend,
            cluster_type: env("CLUSTER_TYPE").unwrap_or_else(|| "brindle".into()),
            felix,
            state_dir: env("BRINDLE_STATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            ctl_socket: env("BRINDLE_CTL_SOCKET")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CTL_SOCKET)),
            bgp_port: env("BRINDLE_BGP_PORT")
                .map(|v| parse_num("BRINDLE_BGP_PORT", &v))
                .transpose()?,
            secrets_dir: env("BRINDLE_SECRETS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_DIR)),
        })
    }

    /// `<state dir>/nodename` (Calico: `/var/lib/calico/nodename`).
    pub fn nodename_file(&self) -> PathBuf {
        self.state_dir.join("nodename")
    }

    /// `<state dir>/mtu` (Calico: `/var/lib/calico/mtu`), read by the CNI plugin.
    pub fn mtu_file(&self) -> PathBuf {
        self.state_dir.join("mtu")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_model::resources::EncapMode;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<AgentConfig> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AgentConfig::from_env(|k| m.get(k).cloned())
    }

    #[test]
    fn the_lab_line_just_works() {
        let c = cfg(&[("NODENAME", "n1"), ("IP", "10.77.0.1/24")]).unwrap();
        assert_eq!(c.nodename.as_deref(), Some("n1"));
        assert_eq!(c.ip, IpSetting::Addr("10.77.0.1".parse().unwrap(), Some(24)));
        assert_eq!(c.backend, Backend::Bird);
        let pool = c.default_pool.clone().unwrap();
        assert_eq!(pool.metadata.name, "default-ipv4-ippool");
        assert_eq!(pool.spec.cidr, "192.168.0.0/16");
        assert_eq!(
            (pool.spec.block_size, pool.spec.ipip(), pool.spec.nat_outgoing),
            (26, EncapMode::Never, true)
        );
        assert_eq!(c.felix.health, Some("127.0.0.1:9099".parse().unwrap()));
        assert_eq!(c.nodename_file(), PathBuf::from("/var/lib/brindle/nodename"));
    }

    #[test]
    fn calico_env_spellings() {
        let c = cfg(&[
            ("IP", "autodetect"),
            ("IP_AUTODETECTION_METHOD", "can-reach=172.20.42.1"),
            ("IP6", "fd00::1/64"),
            ("AS", "1.10"),
            ("CALICO_IPV4POOL_CIDR", "10.233.64.0/18"),
            ("CALICO_IPV4POOL_BLOCK_SIZE", "24"),
            ("CALICO_IPV4POOL_IPIP", "cross-subnet"),
            ("CALICO_IPV4POOL_NAT_OUTGOING", "false"),
            ("FELIX_HEALTHPORT", "19099"),
            ("FELIX_PROMETHEUSMETRICSENABLED", "false"),
        ])
        .unwrap();
        assert_eq!(c.ip, IpSetting::Autodetect);
        assert_eq!(c.ip_method, AutodetectMethod::CanReach("172.20.42.1".into()));
        assert!(matches!(c.ip6, IpSetting::Addr(_, Some(64))));
        assert_eq!(c.as_number, Some(65546));
        let p = c.default_pool.unwrap().spec;
        assert_eq!(
            (p.block_size, p.ipip(), p.nat_outgoing),
            (24, EncapMode::CrossSubnet, false)
        );
        assert_eq!(c.felix.health.unwrap().port(), 19099);
        assert_eq!(c.felix.metrics, None);
        assert!(
            cfg(&[("NO_DEFAULT_POOLS", "true")])
                .unwrap()
                .default_pool
                .is_none()
        );
        assert_eq!(
            cfg(&[("IP_AUTODETECTION_METHOD", "interface=eth.*,ens.*")])
                .unwrap()
                .ip_method,
            AutodetectMethod::Interface(vec!["eth.*".into(), "ens.*".into()])
        );
        assert!(matches!(
            cfg(&[("IP_AUTODETECTION_METHOD", "cidr=172.20.40.0/22")])
                .unwrap()
                .ip_method,
            AutodetectMethod::Cidr(_)
        ));
        assert_eq!(cfg(&[("IP", "none")]).unwrap().ip, IpSetting::None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("IP", "10.0.0.300"),
            ("IP_AUTODETECTION_METHOD", "magic"),
            ("IP_AUTODETECTION_METHOD", "cidr=banana"),
            ("AS", "sixty"),
            ("CALICO_IPV4POOL_CIDR", "10.233.64.1/18"),
            ("CALICO_IPV4POOL_BLOCK_SIZE", "33"),
            ("CALICO_IPV4POOL_IPIP", "sometimes"),
            ("CALICO_NETWORKING_BACKEND", "gobgp"),
            ("FELIX_HEALTHPORT", "http"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
        let e = cfg(&[
            ("CALICO_IPV4POOL_IPIP", "Always"),
            ("CALICO_IPV4POOL_VXLAN", "Always"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("both VXLAN and IPIP"), "{e}");
    }

    #[test]
    fn ipv6_settings() {
        // v6-only, as the lab starts a `--ip-family 6` node.
        let c = cfg(&[
            ("IP", "none"),
            ("IP6", "fd00:20::80/64"),
            ("NO_DEFAULT_POOLS", "true"),
        ])
        .unwrap();
        assert_eq!(c.ip, IpSetting::None);
        assert_eq!(c.ip6, IpSetting::Addr("fd00:20::80".parse().unwrap(), Some(64)));
        assert!(c.default_pool.is_none() && c.default_pool_v6.is_none());
        let c = cfg(&[
            ("IP6", "autodetect"),
            ("IP6_AUTODETECTION_METHOD", "cidr=fd00:20::/64"),
            ("CALICO_ROUTER_ID", "hash"),
            ("FELIX_VXLANMTUV6", "1400"),
        ])
        .unwrap();
        assert_eq!(c.ip6, IpSetting::Autodetect);
        assert!(matches!(c.ip6_method, AutodetectMethod::Cidr(_)));
        assert_eq!(c.router_id, Some(RouterId::Hash));
        assert_eq!(c.felix.vxlan_mtu_v6, Some(1400));
        assert_eq!(c.default_pool_v6.unwrap().metadata.name, "default-ipv6-ippool");
        assert_eq!(cfg(&[]).unwrap().ip6, IpSetting::None, "unset IP6: no IPv6");
        assert_eq!(
            cfg(&[("CALICO_ROUTER_ID", "10.0.0.9")]).unwrap().router_id,
            Some(RouterId::Addr("10.0.0.9".parse().unwrap()))
        );
        for (k, v) in [
            ("IP6", "10.0.0.1"),
            ("IP6_AUTODETECTION_METHOD", "magic"),
            ("CALICO_ROUTER_ID", "fd00::1"),
            ("CALICO_IPV6POOL_BLOCK_SIZE", "64"),
        ] {
            let e = cfg(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{k}={v}: {e}");
        }
    }
}
