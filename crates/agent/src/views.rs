//! The syncer's view of the datastore: every object the calculation needs, reduced to what it
//! needs and keyed by its datastore key (Calico's "update processors"). Parsing is lenient per
//! object: one bad object is logged and skipped, never fatal.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use brindle_bgp_speaker::NextHopMode;
use brindle_ipam::affinity::{AffinityState, BlockAffinity};
use brindle_netlink::Mac;
use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;

use crate::config::EncapMode;

const RES: &str = "/calico/resources/v3/projectcalico.org/";
const AFFINITIES: &str = "/calico/ipam/v2/host/";

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeView {
    pub name: String,
    /// `spec.bgp.ipv4Address` with the host part kept (`172.20.42.80/22`).
    pub ipv4: Option<Ipv4Net>,
    pub asn: Option<u32>,
    pub ipip_tunnel: Option<Ipv4Addr>,
    pub vxlan_tunnel: Option<Ipv4Addr>,
    pub vxlan_mac: Option<Mac>,
    /// Non-empty: this node is a route reflector.
    pub rr_cluster_id: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolView {
    pub name: String,
    pub cidr: IpNet,
    pub ipip: EncapMode,
    pub vxlan: EncapMode,
    pub nat_outgoing: bool,
    pub disabled: bool,
    pub disable_bgp_export: bool,
}

/// A BGPConfiguration: `default` (global) or `node.<name>` (of which only `listenPort` applies,
/// as in confd).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BgpConfigView {
    pub asn: Option<u32>,
    pub mesh: Option<bool>,
    pub listen_port: Option<u16>,
    /// `nodeMeshPassword`: the mesh sessions' TCP MD5 key.
    pub node_mesh_password: Option<SecretRef>,
    /// `nodeMeshMaxRestartTime`, whole seconds: the mesh sessions' graceful restart time.
    pub node_mesh_restart_time: Option<u16>,
    /// `serviceClusterIPs`, `serviceExternalIPs`, `serviceLoadBalancerIPs` CIDRs.
    pub service_cluster_ips: Vec<IpNet>,
    pub service_external_ips: Vec<IpNet>,
    pub service_lb_ips: Vec<IpNet>,
}

/// A `secretKeyRef {name, key}` (a Kubernetes Secret's key; Brindle reads it from a file, see
/// `bgp::Secrets`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// The FelixConfiguration keys the agent reads from the datastore (`default`, and
/// `node.<name>` for one node; Felix's environment variables win over both).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FelixConfigView {
    /// `programClusterRoutes`: `Disabled` → false; any `Enabled…` value → true.
    pub program_cluster_routes: Option<bool>,
    /// `ipipMTU`, `vxlanMTU` (0 = auto), `vxlanVNI`, `vxlanPort`.
    pub ipip_mtu: Option<u32>,
    pub vxlan_mtu: Option<u32>,
    pub vxlan_vni: Option<u32>,
    pub vxlan_port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    pub name: String,
    pub node: Option<String>,
    pub node_selector: Option<String>,
    pub peer_ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub peer_selector: Option<String>,
    pub asn: Option<u32>,
    /// `localASNumber`.
    pub local_asn: Option<u32>,
    /// `keepOriginalNextHop` (deprecated; ignored when `nextHopMode` is set, as in confd).
    pub keep_original_next_hop: bool,
    /// `nextHopMode`.
    pub next_hop_mode: Option<NextHopMode>,
    pub password: Option<SecretRef>,
    /// `sourceAddress: None` makes this false (the kernel picks the source).
    pub use_node_ip: bool,
    /// `maxRestartTime` and `keepaliveTime`, rounded to whole seconds as confd does.
    pub max_restart_time: Option<u16>,
    pub keepalive_time: Option<u16>,
    /// `numAllowedLocalASNumbers` (0 = none).
    pub allow_local_as: u8,
    /// `ttlSecurity` hops (0 = off).
    pub ttl_security: u8,
    /// `reversePeering: Manual`: no automatic reverse peering from the selected Calico nodes.
    pub reverse_manual: bool,
    /// `localWorkloadSelector` is set (peering with workloads: not supported, skipped).
    pub local_workload: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadView {
    pub node: String,
    pub iface: String,
    pub ips: Vec<Ipv4Net>,
    pub mac: Option<Mac>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinityView {
    pub node: String,
    pub block: Ipv4Net,
    pub confirmed: bool,
}

/// Everything the calculation reads, by datastore key.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    pub nodes: BTreeMap<String, NodeView>,
    pub pools: BTreeMap<String, PoolView>,
    pub bgp_configs: BTreeMap<String, BgpConfigView>,
    pub felix_configs: BTreeMap<String, FelixConfigView>,
    pub peers: BTreeMap<String, PeerView>,
    pub workloads: BTreeMap<String, WorkloadView>,
    pub affinities: BTreeMap<String, AffinityView>,
}

/// Which part of the cache a key belongs to; `None` for keys the agent ignores (IPAM blocks and
/// handles, other resources).
fn kind_of(key: &str) -> Option<&'static str> {
    if let Some(rest) = key.strip_prefix(RES) {
        let plural = rest.split('/').next()?;
        return match plural {
            "nodes" => Some("nodes"),
            "ippools" => Some("ippools"),
            "bgpconfigurations" => Some("bgpconfigurations"),
            "felixconfigurations" => Some("felixconfigurations"),
            "bgppeers" => Some("bgppeers"),
            "workloadendpoints" => Some("workloadendpoints"),
            _ => None,
        };
    }
    key.starts_with(AFFINITIES).then_some("affinities")
}

/// True when a change to `key` can change the desired state.
pub fn is_relevant(key: &str) -> bool {
    kind_of(key).is_some()
}

fn s(v: &Value) -> Option<String> {
    v.as_str().filter(|x| !x.is_empty()).map(str::to_string)
}

fn asn(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|x| u32::try_from(x).ok()),
        Value::String(s) => crate::config::parse_asn("asNumber", s).ok(),
        _ => None,
    }
}

fn mode(v: &Value) -> EncapMode {
    match v.as_str() {
        Some("Always") => EncapMode::Always,
        Some("CrossSubnet") => EncapMode::CrossSubnet,
        _ => EncapMode::Never,
    }
}

fn mac(v: &Value) -> Option<Mac> {
    v.as_str().and_then(brindle_netlink::parse_mac)
}

/// `172.20.42.80/22` or a bare address (as /32).
fn v4net(v: &Value) -> Option<Ipv4Net> {
    let t = v.as_str()?;
    t.parse::<Ipv4Net>().ok().or_else(|| {
        t.parse::<Ipv4Addr>()
            .ok()
            .map(|a| Ipv4Net::new(a, 32).expect("32"))
    })
}

fn v4addr(v: &Value) -> Option<Ipv4Addr> {
    v4net(v).map(|n| n.addr())
}

fn parse_node(v: &Value) -> Option<NodeView> {
    let bgp = &v["spec"]["bgp"];
    Some(NodeView {
        name: s(&v["metadata"]["name"])?,
        ipv4: v4net(&bgp["ipv4Address"]),
        asn: asn(&bgp["asNumber"]),
        ipip_tunnel: v4addr(&bgp["ipv4IPIPTunnelAddr"]),
        vxlan_tunnel: v4addr(&v["spec"]["ipv4VXLANTunnelAddr"]),
        vxlan_mac: mac(&v["spec"]["vxlanTunnelMACAddr"]),
        rr_cluster_id: s(&bgp["routeReflectorClusterID"]),
        labels: v["metadata"]["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn parse_pool(v: &Value) -> Option<PoolView> {
    let sp = &v["spec"];
    Some(PoolView {
        name: s(&v["metadata"]["name"])?,
        cidr: sp["cidr"].as_str()?.parse().ok()?,
        ipip: mode(&sp["ipipMode"]),
        vxlan: mode(&sp["vxlanMode"]),
        nat_outgoing: sp["natOutgoing"].as_bool().unwrap_or(false),
        disabled: sp["disabled"].as_bool().unwrap_or(false),
        disable_bgp_export: sp["disableBGPExport"].as_bool().unwrap_or(false),
    })
}

/// A Go duration (`"2m0s"`) in whole seconds, rounded as confd's `math.Round(d.Seconds())`.
fn secs(v: &Value) -> Option<u16> {
    let d: brindle_model::duration::GoDuration = v.as_str()?.parse().ok()?;
    let s = (d.0.max(0) as f64 / 1e9).round();
    Some(s.min(f64::from(u16::MAX)) as u16)
}

fn secret(v: &Value) -> Option<SecretRef> {
    let r = &v["secretKeyRef"];
    Some(SecretRef {
        name: s(&r["name"])?,
        key: s(&r["key"])?,
    })
}

/// `[{cidr}]`; empty CIDRs are skipped (the CRD allows them), unparsable ones too.
fn cidrs(v: &Value) -> Vec<IpNet> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["cidr"].as_str()?.parse::<IpNet>().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parse_bgp_config(v: &Value) -> Option<BgpConfigView> {
    let sp = &v["spec"];
    Some(BgpConfigView {
        asn: asn(&sp["asNumber"]),
        mesh: sp["nodeToNodeMeshEnabled"].as_bool(),
        listen_port: sp["listenPort"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p != 0),
        node_mesh_password: secret(&sp["nodeMeshPassword"]),
        node_mesh_restart_time: secs(&sp["nodeMeshMaxRestartTime"]),
        service_cluster_ips: cidrs(&sp["serviceClusterIPs"]),
        service_external_ips: cidrs(&sp["serviceExternalIPs"]),
        service_lb_ips: cidrs(&sp["serviceLoadBalancerIPs"]),
    })
}

fn parse_felix_config(v: &Value) -> Option<FelixConfigView> {
    let sp = &v["spec"];
    let num = |k: &str| sp[k].as_u64().and_then(|n| u32::try_from(n).ok());
    Some(FelixConfigView {
        program_cluster_routes: sp["programClusterRoutes"].as_str().map(|m| m != "Disabled"),
        ipip_mtu: num("ipipMTU"),
        vxlan_mtu: num("vxlanMTU"),
        vxlan_vni: num("vxlanVNI"),
        vxlan_port: num("vxlanPort").and_then(|p| u16::try_from(p).ok()),
    })
}

/// `IP`, `IP:port` or `[IPv6]:port`.
fn peer_ip(t: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let sa: std::net::SocketAddr = t.parse().ok()?;
    Some((sa.ip(), Some(sa.port())))
}

fn parse_peer(v: &Value) -> Option<PeerView> {
    let sp = &v["spec"];
    let ip = sp["peerIP"].as_str().and_then(peer_ip);
    Some(PeerView {
        name: s(&v["metadata"]["name"])?,
        node: s(&sp["node"]),
        node_selector: s(&sp["nodeSelector"]),
        peer_ip: ip.map(|(a, _)| a),
        port: ip.and_then(|(_, p)| p),
        peer_selector: s(&sp["peerSelector"]),
        asn: asn(&sp["asNumber"]).filter(|a| *a != 0),
        local_asn: asn(&sp["localASNumber"]).filter(|a| *a != 0),
        keep_original_next_hop: sp["keepOriginalNextHop"].as_bool().unwrap_or(false),
        next_hop_mode: match sp["nextHopMode"].as_str() {
            Some("Self") => Some(NextHopMode::SetSelf),
            Some("Keep") => Some(NextHopMode::Keep),
            Some("Auto") => Some(NextHopMode::Auto),
            _ => None,
        },
        password: secret(&sp["password"]),
        use_node_ip: sp["sourceAddress"].as_str() != Some("None"),
        max_restart_time: secs(&sp["maxRestartTime"]),
        keepalive_time: secs(&sp["keepaliveTime"]),
        allow_local_as: sp["numAllowedLocalASNumbers"]
            .as_i64()
            .map(|n| n.clamp(0, i64::from(u8::MAX)) as u8)
            .unwrap_or(0),
        ttl_security: sp["ttlSecurity"]
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .unwrap_or(0),
        reverse_manual: sp["reversePeering"].as_str() == Some("Manual"),
        local_workload: s(&sp["localWorkloadSelector"]).is_some(),
    })
}

fn parse_workload(v: &Value) -> Option<WorkloadView> {
    let sp = &v["spec"];
    Some(WorkloadView {
        node: s(&sp["node"])?,
        iface: s(&sp["interfaceName"])?,
        ips: sp["ipNetworks"]
            .as_array()
            .map(|a| a.iter().filter_map(v4net).collect())
            .unwrap_or_default(),
        mac: mac(&sp["mac"]),
    })
}

impl Cache {
    /// Applies one datastore change (`None` = deleted). Returns true when the cache changed.
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) -> bool {
        let Some(kind) = kind_of(key) else {
            return false;
        };
        if kind == "affinities" {
            let parsed = value.and_then(|b| {
                let (node, block) = brindle_ipam::keys::parse_affinity(key)?;
                let IpNet::V4(block) = block else { return None };
                let a = BlockAffinity::from_stored(b).ok()?;
                Some(AffinityView {
                    node,
                    block,
                    confirmed: a.state == AffinityState::Confirmed && !a.deleted,
                })
            });
            return set(&mut self.affinities, key, parsed);
        }
        let json: Option<Value> = match value {
            None => None,
            Some(b) => match serde_json::from_slice(b) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(key, error = %e, "ignoring unreadable object");
                    None
                }
            },
        };
        macro_rules! upd {
            ($map:expr, $parse:expr) => {{
                let parsed = json.as_ref().and_then($parse);
                if json.is_some() && parsed.is_none() {
                    tracing::warn!(key, "ignoring object the agent cannot use");
                }
                set(&mut $map, key, parsed)
            }};
        }
        match kind {
            "nodes" => upd!(self.nodes, parse_node),
            "ippools" => upd!(self.pools, parse_pool),
            "bgpconfigurations" => upd!(self.bgp_configs, parse_bgp_config),
            "felixconfigurations" => upd!(self.felix_configs, parse_felix_config),
            "bgppeers" => upd!(self.peers, parse_peer),
            "workloadendpoints" => upd!(self.workloads, parse_workload),
            _ => false,
        }
    }

    pub fn node(&self, name: &str) -> Option<&NodeView> {
        self.nodes.values().find(|n| n.name == name)
    }

    /// A FelixConfiguration key for `node` as Felix resolves it from the datastore: the node's
    /// own FelixConfiguration (`node.<name>`) first, then `default`.
    pub fn felix<T>(&self, node: &str, key: impl Fn(&FelixConfigView) -> Option<T>) -> Option<T> {
        let get = |name: &str| {
            self.felix_configs
                .iter()
                .find(|(k, _)| k.rsplit('/').next() == Some(name))
                .and_then(|(_, v)| key(v))
        };
        get(&format!("node.{node}")).or_else(|| get("default"))
    }

    /// `programClusterRoutes` for `node` (see [`Cache::felix`]).
    pub fn program_cluster_routes(&self, node: &str) -> Option<bool> {
        self.felix(node, |c| c.program_cluster_routes)
    }

    /// The global BGPConfiguration (`default`).
    pub fn bgp_default(&self) -> Option<&BgpConfigView> {
        self.bgp_config("default")
    }

    /// The BGPConfiguration named `name` (`default`, `node.<node>`).
    pub fn bgp_config(&self, name: &str) -> Option<&BgpConfigView> {
        self.bgp_configs
            .iter()
            .find(|(k, _)| {
                k.strip_suffix(name)
                    .is_some_and(|rest| rest.ends_with("/bgpconfigurations/"))
            })
            .map(|(_, v)| v)
    }

    /// The BGP port `node` listens on: its `node.<name>` BGPConfiguration's `listenPort`, else
    /// the global one (`None`: 179), as confd's `getNodeOrGlobalValue("listen_port")`.
    pub fn listen_port(&self, node: &str) -> Option<u16> {
        self.bgp_config(&format!("node.{node}"))
            .and_then(|c| c.listen_port)
            .or_else(|| self.bgp_default().and_then(|c| c.listen_port))
    }
}

fn set<V: PartialEq>(map: &mut BTreeMap<String, V>, key: &str, v: Option<V>) -> bool {
    match v {
        Some(v) => {
            if map.get(key) == Some(&v) {
                false
            } else {
                map.insert(key.to_string(), v);
                true
            }
        }
        None => map.remove(key).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_objects_become_views() {
        let mut c = Cache::default();
        let node = br#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"bgp-master1"},
            "spec":{"bgp":{"ipv4Address":"172.20.42.80/22","ipv4IPIPTunnelAddr":"10.233.94.0"}}}"#;
        assert!(c.apply(
            "/calico/resources/v3/projectcalico.org/nodes/bgp-master1",
            Some(node)
        ));
        assert!(!c.apply(
            "/calico/resources/v3/projectcalico.org/nodes/bgp-master1",
            Some(node)
        ));
        let n = c.node("bgp-master1").unwrap();
        assert_eq!(n.ipv4.unwrap().to_string(), "172.20.42.80/22");
        assert_eq!(n.ipip_tunnel.unwrap().to_string(), "10.233.94.0");
        let pool = br#"{"kind":"IPPool","metadata":{"name":"default-pool"},"spec":{"cidr":"10.233.64.0/18",
            "blockSize":24,"ipipMode":"Always","vxlanMode":"Never","natOutgoing":true,"nodeSelector":"all()"}}"#;
        c.apply(
            "/calico/resources/v3/projectcalico.org/ippools/default-pool",
            Some(pool),
        );
        assert_eq!(c.pools.values().next().unwrap().ipip, EncapMode::Always);
        c.apply(
            "/calico/ipam/v2/host/bgp-master1/ipv4/block/10.233.94.0-24",
            Some(br#"{"state":"confirmed","deleted":false}"#),
        );
        assert!(c.affinities.values().next().unwrap().confirmed);
        assert!(!c.apply(
            "/calico/ipam/v2/assignment/ipv4/block/10.233.94.0-24",
            Some(b"{}")
        ));
        assert!(c.apply("/calico/resources/v3/projectcalico.org/nodes/bgp-master1", None));
        assert!(c.nodes.is_empty());
        // Garbage is skipped, not fatal.
        assert!(!c.apply(
            "/calico/resources/v3/projectcalico.org/ippools/bad",
            Some(b"{not json")
        ));
    }

    #[test]
    fn program_cluster_routes_node_config_wins_over_default() {
        let mut c = Cache::default();
        let key = |n: &str| format!("{RES}felixconfigurations/{n}");
        let fc =
            |v: &str| format!(r#"{{"kind":"FelixConfiguration","spec":{{"programClusterRoutes":"{v}"}}}}"#);
        assert_eq!(c.program_cluster_routes("n1"), None);
        c.apply(&key("default"), Some(fc("Disabled").as_bytes()));
        assert_eq!(c.program_cluster_routes("n1"), Some(false));
        c.apply(&key("node.n1"), Some(fc("EnabledIPIPOnly").as_bytes()));
        assert_eq!(c.program_cluster_routes("n1"), Some(true));
        assert_eq!(c.program_cluster_routes("n2"), Some(false));
        c.apply(&key("default"), None);
        assert_eq!(c.program_cluster_routes("n2"), None);
        c.apply(
            &key("default"),
            Some(br#"{"spec":{"ipipMTU":1400,"vxlanVNI":4097,"vxlanPort":4790,"vxlanMTU":0}}"#),
        );
        assert_eq!(c.felix("n2", |f| f.ipip_mtu), Some(1400));
        assert_eq!(c.felix("n2", |f| f.vxlan_vni), Some(4097));
        assert_eq!(c.felix("n2", |f| f.vxlan_port), Some(4790));
        assert_eq!(c.felix("n2", |f| f.vxlan_mtu), Some(0));
        // n1's own config has no ipipMTU: the default's applies, key by key.
        assert_eq!(c.felix("n1", |f| f.ipip_mtu), Some(1400));
    }

    #[test]
    fn peer_ip_with_port() {
        assert_eq!(
            peer_ip("10.0.0.1:1790"),
            Some(("10.0.0.1".parse().unwrap(), Some(1790)))
        );
        assert_eq!(peer_ip("10.0.0.1"), Some(("10.0.0.1".parse().unwrap(), None)));
        assert_eq!(peer_ip("[fd00::1]:179").unwrap().1, Some(179));
    }
}
