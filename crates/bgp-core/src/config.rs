//! Per-peer session configuration, with Calico's defaults (confd's `bird.cfg.template`, BIRD
//! template `connect delay time 2; connect retry time 5; error wait time 5,30; graceful restart`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use brindle_bgp_wire::Family;

/// Where a peer comes from, as Calico names BIRD protocols: `Mesh_<ip>`, `Global_<ip>`, `Node_<ip>`
/// (confd's `bird.cfg.template`; calicoctl's `commands/node/status.go` maps them to peer types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerType {
    Mesh,
    Global,
    Node,
}

impl PeerType {
    /// The protocol-name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            PeerType::Mesh => "Mesh",
            PeerType::Global => "Global",
            PeerType::Node => "Node",
        }
    }

    /// What `calicoctl node status` prints in PEER TYPE.
    pub fn calico_name(self) -> &'static str {
        match self {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::Node => "node specific",
        }
    }

    /// BIRD protocol name: `Mesh_172_20_42_81`, `Global_fd00__1`, with `_port_<p>` appended for
    /// BGPPeers with a non-default port (confd's naming).
    pub fn protocol_name(self, addr: IpAddr, port: Option<u16>) -> String {
        let ip = match addr {
            IpAddr::V4(a) => a.to_string().replace('.', "_"),
            IpAddr::V6(a) => a.to_string().replace(':', "_"),
        };
        match port {
            Some(p) if self != PeerType::Mesh => format!("{}_{ip}_port_{p}", self.prefix()),
            _ => format!("{}_{ip}", self.prefix()),
        }
    }
}

/// Calico's mesh rule (confd's `bird.cfg.template` / `bgp_processor.go`): this node is `passive on`
/// towards a peer whose address is greater than its own **as a string** (Go string comparison), so
/// "172.20.42.9" > "172.20.42.81" and the node with the lexically greater address initiates.
pub fn mesh_passive(my_ip: &str, peer_ip: &str) -> bool {
    peer_ip > my_ip
}

/// Everything the session state machine needs to know about one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_as: u32,
    pub remote_as: u32,
    /// Our BGP identifier (Calico: the node's IPv4 address).
    pub router_id: Ipv4Addr,
    /// Proposed hold time; 0 disables keepalives (RFC 4271 §4.2). Calico/BIRD default 240 s.
    pub hold_time: u16,
    /// Keepalive interval; `None` = hold time / 3 (BIRD's default).
    pub keepalive: Option<u16>,
    /// Never connect, only accept.
    pub passive: bool,
    /// Delay before the first connect after start (BIRD `connect delay time`).
    pub connect_delay: Duration,
    /// Delay between connect attempts (BIRD `connect retry time`).
    pub connect_retry: Duration,
    /// Delay before restarting after an error, doubling from min to max (BIRD `error wait time`).
    pub error_wait_min: Duration,
    pub error_wait_max: Duration,
    /// Errors older than this no longer lengthen the wait (BIRD `error forget time`, 300 s).
    pub error_forget: Duration,
    /// Families to negotiate.
    pub families: Vec<Family>,
    /// Advertise the graceful restart capability with this restart time (Calico sets
    /// `graceful restart` on every peer; BIRD's default time is 120 s), and act as its
    /// receiving speaker (RFC 4724 §4.2).
    pub graceful_restart: Option<u16>,
    /// Restart State bit (R): this speaker restarted and defers its route selection (RFC 4724
    /// §4.1); cleared when the deferral ends.
    pub restarting: bool,
    /// Forwarding State bit (F) for every family: our forwarding state survives a restart of
    /// this speaker (the dataplane keeps its routes), so peers may keep ours.
    pub forwarding_preserved: bool,
    /// Notification bit (N, RFC 8538): NOTIFICATIONs other than Hard Reset keep routes too.
    pub gr_notification: bool,
}

impl SessionConfig {
    /// Calico's template values for an iBGP/eBGP peer.
    pub fn calico(local_as: u32, remote_as: u32, router_id: Ipv4Addr) -> SessionConfig {
        SessionConfig {
            local_as,
            remote_as,
            router_id,
            hold_time: 240,
            keepalive: None,
            passive: false,
            connect_delay: Duration::from_secs(2),
            connect_retry: Duration::from_secs(5),
            error_wait_min: Duration::from_secs(5),
            error_wait_max: Duration::from_secs(30),
            error_forget: Duration::from_secs(300),
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            graceful_restart: Some(120),
            restarting: false,
            forwarding_preserved: true,
            gr_notification: true,
        }
    }

    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}
