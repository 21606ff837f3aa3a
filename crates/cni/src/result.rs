//! The CNI success result (CNI spec §5 "ADD Success") in one internal shape, read from any
//! supported version (a `prevResult` may be 0.3.x, 0.4.0 or 1.x) and written in the request's
//! version:
//! - 0.3.x / 0.4.0: `ips[]` carry `"version": "4"|"6"`; interfaces have no `mtu`;
//! - 1.0.0: no `version` in `ips[]`;
//! - 1.1.0: interfaces gain `mtu`, `socketPath`, `pciID`; routes gain `mtu`, `advmss`,
//!   `priority`, `table`, `scope`.
//!
//! Empty lists are left out and `dns` is always present, as libcni's Go types print them. An
//! IPAM plugin's result is the same shape without `interfaces` and without `ips[].interface`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::error::CniError;
use crate::version::Version;

/// One interface of a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    /// The netns path for container interfaces; `None` for host interfaces.
    pub sandbox: Option<String>,
    pub socket_path: Option<String>,
    pub pci_id: Option<String>,
}

/// One address of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    /// The address with its prefix length, host bits kept (`10.233.94.1/32`).
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces` (absent in IPAM results).
    pub interface: Option<usize>,
}

/// One route of a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    pub priority: Option<u32>,
    pub table: Option<u32>,
    pub scope: Option<u32>,
}

impl RouteEntry {
    pub fn to(dst: IpNet) -> RouteEntry {
        RouteEntry {
            dst,
            gw: None,
            mtu: None,
            advmss: None,
            priority: None,
            table: None,
            scope: None,
        }
    }
}

/// DNS settings (each part optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Dns {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// A success result, version-independent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteEntry>,
    pub dns: Dns,
}

fn bad(what: impl std::fmt::Display) -> CniError {
    CniError::decode(format!("failed to parse prevResult: {what}"))
}

fn opt_str(o: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!("{at}.{key} must be a string, got {other}"))),
    }
}

/// An optional unsigned field; 0 counts as absent (libcni's Go types omit zero values, so a
/// result never distinguishes the two).
fn opt_u32(o: &Map<String, Value>, key: &str, at: &str) -> Result<Option<u32>, CniError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| bad(format!("{at}.{key} must be an unsigned 32-bit number, got {n}"))),
        Some(other) => Err(bad(format!("{at}.{key} must be a number, got {other}"))),
    }
}

fn opt_ip(o: &Map<String, Value>, key: &str, at: &str) -> Result<Option<IpAddr>, CniError> {
    opt_str(o, key, at)?
        .map(|s| {
            s.parse()
                .map_err(|_| bad(format!("{at}.{key}: {s:?} is not an IP address")))
        })
        .transpose()
}

fn req_net(o: &Map<String, Value>, key: &str, at: &str) -> Result<IpNet, CniError> {
    let s = opt_str(o, key, at)?.ok_or_else(|| bad(format!("{at}.{key} is missing")))?;
    s.parse()
        .map_err(|_| bad(format!("{at}.{key}: {s:?} is not an address in CIDR notation")))
}

/// A list member with its position for messages (`ips[0]`).
type Located<'a> = (String, &'a Map<String, Value>);

fn objects<'a>(v: &'a Map<String, Value>, key: &str) -> Result<Vec<Located<'a>>, CniError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{key}[{i}]");
                item.as_object()
                    .map(|o| (at.clone(), o))
                    .ok_or_else(|| bad(format!("{at} must be an object")))
            })
            .collect(),
        Some(_) => Err(bad(format!("{key} must be a list"))),
    }
}

impl CniResult {
    /// Reads a result of any supported version (the version field is not needed: the shapes
    /// differ only by optional fields). 0.1/0.2 results (`ip4`/`ip6`) are refused.
    pub fn from_value(v: &Value) -> Result<CniResult, CniError> {
        let o = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
        if o.contains_key("ip4") || o.contains_key("ip6") {
            return Err(bad("0.1.0/0.2.0 results (ip4/ip6) are not supported"));
        }
        let mut r = CniResult::default();
        for (at, i) in objects(o, "interfaces")? {
            r.interfaces.push(Interface {
                name: opt_str(i, "name", &at)?.ok_or_else(|| bad(format!("{at}.name is missing")))?,
                mac: opt_str(i, "mac", &at)?,
                mtu: opt_u32(i, "mtu", &at)?,
                sandbox: opt_str(i, "sandbox", &at)?,
                socket_path: opt_str(i, "socketPath", &at)?,
                pci_id: opt_str(i, "pciID", &at)?,
            });
        }
        for (at, ip) in objects(o, "ips")? {
            let interface = match opt_u32(ip, "interface", &at)? {
                Some(i) if i as usize >= r.interfaces.len() => {
                    return Err(bad(format!(
                        "{at}.interface {i} is out of range ({} interfaces)",
                        r.interfaces.len()
                    )));
                }
                other => other.map(|i| i as usize),
            };
            r.ips.push(IpConfig {
                address: req_net(ip, "address", &at)?,
                gateway: opt_ip(ip, "gateway", &at)?,
                interface,
            });
        }
        for (at, rt) in objects(o, "routes")? {
            r.routes.push(RouteEntry {
                dst: req_net(rt, "dst", &at)?,
                gw: opt_ip(rt, "gw", &at)?,
                mtu: opt_u32(rt, "mtu", &at)?,
                advmss: opt_u32(rt, "advmss", &at)?,
                priority: opt_u32(rt, "priority", &at)?,
                table: opt_u32(rt, "table", &at)?,
                scope: opt_u32(rt, "scope", &at)?,
            });
        }
        if let Some(d) = o.get("dns").filter(|d| !d.is_null()) {
            r.dns = serde_json::from_value(d.clone()).map_err(|e| bad(format!("dns: {e}")))?;
            // An empty domain is no domain (omitted on output, as libcni does).
            r.dns.domain = r.dns.domain.take().filter(|d| !d.is_empty());
        }
        Ok(r)
    }

    /// The result as a JSON value in `version`'s shape.
    pub fn to_value(&self, version: Version) -> Value {
        let mut o = Map::new();
        o.insert("cniVersion".into(), version.as_str().into());
        let v11 = version.has_1_1_fields();
        if !self.interfaces.is_empty() {
            let list = self
                .interfaces
                .iter()
                .map(|i| {
                    let mut m = Map::new();
                    m.insert("name".into(), i.name.clone().into());
                    put_str(&mut m, "mac", &i.mac);
                    if v11 {
                        put_u32(&mut m, "mtu", i.mtu);
                    }
                    put_str(&mut m, "sandbox", &i.sandbox);
                    if v11 {
                        put_str(&mut m, "socketPath", &i.socket_path);
                        put_str(&mut m, "pciID", &i.pci_id);
                    }
                    Value::Object(m)
                })
                .collect();
            o.insert("interfaces".into(), Value::Array(list));
        }
        if !self.ips.is_empty() {
            let list = self
                .ips
                .iter()
                .map(|ip| {
                    let mut m = Map::new();
                    if version.is_v0() {
                        let fam = if ip.address.addr().is_ipv4() { "4" } else { "6" };
                        m.insert("version".into(), fam.into());
                    }
                    if let Some(i) = ip.interface {
                        m.insert("interface".into(), i.into());
                    }
                    m.insert("address".into(), ip.address.to_string().into());
                    if let Some(gw) = ip.gateway {
                        m.insert("gateway".into(), gw.to_string().into());
                    }
                    Value::Object(m)
                })
                .collect();
            o.insert("ips".into(), Value::Array(list));
        }
        if !self.routes.is_empty() {
            let list = self
                .routes
                .iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert("dst".into(), r.dst.to_string().into());
                    if let Some(gw) = r.gw {
                        m.insert("gw".into(), gw.to_string().into());
                    }
                    if v11 {
                        put_u32(&mut m, "mtu", r.mtu);
                        put_u32(&mut m, "advmss", r.advmss);
                        put_u32(&mut m, "priority", r.priority);
                        put_u32(&mut m, "table", r.table);
                        put_u32(&mut m, "scope", r.scope);
                    }
                    Value::Object(m)
                })
                .collect();
            o.insert("routes".into(), Value::Array(list));
        }
        let mut dns = Map::new();
        if !self.dns.nameservers.is_empty() {
            dns.insert("nameservers".into(), self.dns.nameservers.clone().into());
        }
        put_str(&mut dns, "domain", &self.dns.domain);
        if !self.dns.search.is_empty() {
            dns.insert("search".into(), self.dns.search.clone().into());
        }
        if !self.dns.options.is_empty() {
            dns.insert("options".into(), self.dns.options.clone().into());
        }
        o.insert("dns".into(), Value::Object(dns));
        Value::Object(o)
    }

    /// The result as the JSON text printed on stdout.
    pub fn to_json(&self, version: Version) -> String {
        self.to_value(version).to_string()
    }

    /// The index of the interface named `name` in `sandbox` (`None` for a host interface).
    pub fn interface_index(&self, name: &str, sandbox: Option<&str>) -> Option<usize> {
        self.interfaces
            .iter()
            .position(|i| i.name == name && i.sandbox.as_deref() == sandbox)
    }
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(s) = v.as_ref().filter(|s| !s.is_empty()) {
        m.insert(key.into(), s.clone().into());
    }
}

fn put_u32(m: &mut Map<String, Value>, key: &str, v: Option<u32>) {
    if let Some(n) = v.filter(|n| *n != 0) {
        m.insert(key.into(), n.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_result() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "cali36dac03ac5d".into(),
                    ..Default::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("6e:1f:00:00:00:01".into()),
                    mtu: Some(1440),
                    sandbox: Some("/run/netns/p1".into()),
                    ..Default::default()
                },
            ],
            ips: vec![IpConfig {
                address: "10.233.94.1/32".parse().unwrap(),
                gateway: None,
                interface: Some(1),
            }],
            routes: vec![RouteEntry {
                scope: Some(253),
                ..RouteEntry::to("10.233.94.1/24".parse().unwrap())
            }],
            dns: Dns::default(),
        }
    }

    #[test]
    fn v0_4_0_shape() {
        assert_eq!(
            seed_result().to_json(Version::V0_4_0),
            r#"{"cniVersion":"0.4.0","interfaces":[{"name":"cali36dac03ac5d"},{"name":"eth0","mac":"6e:1f:00:00:00:01","sandbox":"/run/netns/p1"}],"ips":[{"version":"4","interface":1,"address":"10.233.94.1/32"}],"routes":[{"dst":"10.233.94.1/24"}],"dns":{}}"#
        );
    }

    #[test]
    fn v1_0_0_and_v1_1_0_shapes() {
        assert_eq!(
            seed_result().to_json(Version::V1_0_0),
            r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cali36dac03ac5d"},{"name":"eth0","mac":"6e:1f:00:00:00:01","sandbox":"/run/netns/p1"}],"ips":[{"interface":1,"address":"10.233.94.1/32"}],"routes":[{"dst":"10.233.94.1/24"}],"dns":{}}"#
        );
        assert_eq!(
            seed_result().to_json(Version::V1_1_0),
            r#"{"cniVersion":"1.1.0","interfaces":[{"name":"cali36dac03ac5d"},{"name":"eth0","mac":"6e:1f:00:00:00:01","mtu":1440,"sandbox":"/run/netns/p1"}],"ips":[{"interface":1,"address":"10.233.94.1/32"}],"routes":[{"dst":"10.233.94.1/24","scope":253}],"dns":{}}"#
        );
    }

    #[test]
    fn every_version_reads_back() {
        for v in crate::version::SUPPORTED {
            let text = seed_result().to_json(v);
            let back = CniResult::from_value(&serde_json::from_str(&text).unwrap()).unwrap();
            let mut want = seed_result();
            if !v.has_1_1_fields() {
                want.interfaces[1].mtu = None;
                want.routes[0].scope = None;
            }
            assert_eq!(back, want, "{v}");
        }
    }

    #[test]
    fn reads_a_bridge_0_3_1_result() {
        let text = r#"{"cniVersion":"0.3.1","interfaces":[{"name":"cni0","mac":"00:11:22:33:44:55"},{"name":"veth1","mac":"00:11:22:33:44:66"},{"name":"eth0","mac":"00:11:22:33:44:77","sandbox":"/proc/1/ns/net"}],"ips":[{"version":"4","interface":2,"address":"10.1.0.5/16","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.1.0.1"]}}"#;
        let r = CniResult::from_value(&serde_json::from_str(text).unwrap()).unwrap();
        assert_eq!(r.interfaces.len(), 3);
        assert_eq!(r.ips[0].gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(r.ips[0].address.to_string(), "10.1.0.5/16");
        assert_eq!(r.dns.nameservers, ["10.1.0.1"]);
        assert_eq!(r.interface_index("eth0", Some("/proc/1/ns/net")), Some(2));
    }

    #[test]
    fn bad_results_name_the_field() {
        let cases = [
            (r#"[]"#, "not a JSON object"),
            (r#"{"ip4":{"ip":"10.0.0.1/24"}}"#, "0.1.0/0.2.0"),
            (r#"{"ips":[{"address":"10.0.0.1"}]}"#, "ips[0].address"),
            (
                r#"{"ips":[{"address":"10.0.0.1/32","interface":3}]}"#,
                "ips[0].interface 3 is out of range",
            ),
            (r#"{"routes":[{"dst":"0.0.0.0/0","gw":"x"}]}"#, "routes[0].gw"),
            (r#"{"interfaces":[{"mac":"x"}]}"#, "interfaces[0].name is missing"),
            (r#"{"interfaces":{}}"#, "interfaces must be a list"),
        ];
        for (text, want) in cases {
            let e = CniResult::from_value(&serde_json::from_str(text).unwrap()).unwrap_err();
            assert_eq!(e.code, crate::error::code::DECODE);
            assert!(e.msg.contains(want), "{text}: {e}");
        }
    }
}
