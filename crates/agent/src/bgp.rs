//! What confd renders for BIRD, as the speaker's configuration: [`speaker_config`] and
//! [`peer_configs`] from a [`DesiredBgp`], BGP passwords from files ([`Secrets`]), and the
//! speaker's peer status in `node status` terms. The thread that runs the speaker and applies
//! each desired state is [`crate::bgpthread`].

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use brindle_bgp_speaker::{ExportPolicy, Originated, PeerConfig, PeerType, SpeakerConfig};

use crate::calc::{DesiredBgp, DesiredPeer, PeerKind};
use crate::peering::SecretRef;
use brindle_ctl::status::{PeerStatus, collapse_spaces};

pub use crate::routeq::RouteMsg;

fn peer_type(k: PeerKind) -> PeerType {
    match k {
        PeerKind::Mesh => PeerType::Mesh,
        PeerKind::Global => PeerType::Global,
        PeerKind::Node => PeerType::Node,
    }
}

/// Where BGP passwords come from. Calico reads the key of a Kubernetes Secret named by
/// `secretKeyRef {name, key}`; Brindle has no Kubernetes and reads the file
/// `<dir>/<name>/<key>`, which is what a Secret mounted as a volume at `<dir>/<name>` looks like.
/// One trailing newline (as `echo` writes) is not part of the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub dir: PathBuf,
}

impl Secrets {
    pub fn new(dir: impl Into<PathBuf>) -> Secrets {
        Secrets { dir: dir.into() }
    }

    /// The secret's value, or why it cannot be read.
    pub fn read(&self, r: &SecretRef) -> Result<String, String> {
        // Kubernetes names and keys never hold a path separator or `..`: refuse them rather
        // than read outside the directory.
        let bad = |s: &str| s.is_empty() || s.contains('/') || s == "." || s == "..";
        if bad(&r.name) || bad(&r.key) {
            return Err(format!(
                "secret {}/{}: not a valid secret name and key",
                r.name, r.key
            ));
        }
        let path = self.dir.join(&r.name).join(&r.key);
        let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut v = String::from_utf8(raw).map_err(|_| format!("{}: not UTF-8", path.display()))?;
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        if v.is_empty() {
            return Err(format!("{}: empty", path.display()));
        }
        Ok(v)
    }
}

/// How often password files are read again.
pub const SECRETS_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// The speaker's configuration for a desired state. A running speaker takes changes of the
/// export pools and the cluster id in place; router id, AS and port need a new one
/// (`SpeakerConfig::fixed_difference`).
pub fn speaker_config(d: &DesiredBgp, port: u16) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(d.router_id, d.local_as);
    cfg.node_v4 = d.node_v4;
    cfg.node_v6 = d.node_v6;
    if d.bind_node_ip {
        cfg.listen_on_node_addresses(port);
    } else if d.node_v4.is_none() {
        // IPv6-only: bird6's wildcard only.
        cfg.listen = vec![SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))];
    } else {
        cfg.listen_on_wildcard(port);
    }
    cfg.cluster_id = d.cluster_id;
    cfg.export = ExportPolicy {
        learned_to_ebgp: d.export_pools.clone(),
    };
    cfg
}

/// The speaker's peer list for a desired state, as confd renders each `protocol bgp`:
/// `source address` (unless `sourceAddress: None`), `local as`, `passive`, `password`,
/// `graceful restart time`, `keepalive time`, `rr client`, `next hop self|keep`, `ttl security`,
/// `allow local as`. A password that cannot be read is logged with its BGPPeer and the session
/// is configured without one (confd does the same). Sessions the speaker would refuse are
/// left out and logged, so one bad BGPPeer does not hold up the others. `default_port` is the
/// port of peers whose own `listenPort` is not set (179, or `BRINDLE_BGP_PORT`): not this
/// node's listen port, which may differ.
/// What the speaker originates: each prefix with the communities of the prefix
/// advertisements that contain it.
pub fn originated(d: &DesiredBgp) -> Vec<Originated> {
    d.originate
        .iter()
        .map(|p| Originated {
            communities: d.advertisements.for_prefix(p),
            ..Originated::plain(*p)
        })
        .collect()
}

pub fn peer_configs(d: &DesiredBgp, default_port: u16, secrets: &Secrets) -> Vec<PeerConfig> {
    let spk = speaker_config(d, default_port);
    d.peers
        .iter()
        .filter_map(|p: &DesiredPeer| {
            // The node's address of the session's family (calc renders no session without one).
            let node_addr = match p.addr {
                IpAddr::V4(_) => d.node_v4.map(IpAddr::V4),
                IpAddr::V6(_) => d.node_v6.map(IpAddr::V6),
            }?;
            let mut c = PeerConfig::new(p.addr, p.asn, peer_type(p.kind));
            c.passive = p.passive;
            c.port = p.port.unwrap_or(default_port);
            c.local_as = p.local_as;
            if p.use_node_ip {
                c.source_address = Some(node_addr);
            } else {
                c.use_node_ip = false;
            }
            if let Some(t) = p.restart_time {
                c.graceful_restart_time = Some(t);
            }
            c.keepalive = p.keepalive;
            c.rr_client = p.rr_client;
            c.next_hop = p.next_hop;
            c.ttl_security = p.ttl_security;
            c.allow_local_as = p.allow_local_as;
            c.filters = p.filters.clone().into();
            let from = p
                .source
                .as_deref()
                .unwrap_or("BGPConfiguration default (nodeMeshPassword)");
            if let Some(r) = &p.password {
                match secrets.read(r) {
                    Ok(pw) => c.password = Some(pw),
                    Err(e) => {
                        tracing::error!(peer = %p.addr, bgppeer = %from, secret = %r.name, key = %r.key,
                        error = %e, "BGP password unreadable: session configured without it")
                    }
                }
            }
            match c.validate_with(&spk) {
                Ok(()) => Some(c),
                Err(e) => {
                    tracing::error!(peer = %p.addr, bgppeer = %from, error = %e, "BGP session left out");
                    None
                }
            }
        })
        .collect()
}

/// The speaker's peers in `node status` terms.
pub fn peer_statuses(peers: &[brindle_bgp_speaker::PeerStatus]) -> (Vec<PeerStatus>, Vec<PeerStatus>) {
    let conv = |p: &brindle_bgp_speaker::PeerStatus| PeerStatus {
        peer_address: p.address.to_string(),
        peer_type: match p.peer_type {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::Node => "node specific",
        }
        .to_string(),
        state: p.state.to_string(),
        since: p
            .since
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        info: collapse_spaces(&p.info),
        established: p.bgp_state == brindle_bgp_speaker::BgpState::Established,
    };
    let v4 = peers.iter().filter(|p| p.address.is_ipv4()).map(conv).collect();
    let v6 = peers.iter().filter(|p| p.address.is_ipv6()).map(conv).collect();
    (v4, v6)
}
