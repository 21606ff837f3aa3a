//! Speaker and peer configuration, validated before anything changes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use brindle_bgp_core::{
    BgpFilter, CommunitySet, ExportPolicy, NextHopMode, PeerType, SessionConfig, mesh_passive,
};
use brindle_bgp_wire::Family;
use ipnet::IpNet;

use crate::error::Error;

/// BGP's port (RFC 4271 §8.2.1).
pub const BGP_PORT: u16 = 179;
/// Accept backlog: BIRD's 8 makes a 1000-node mesh take ~110 s to come up (BIRD 2.0.12, 1000
/// peers connecting at once, measured on this project's 2-core machine: the accept queue
/// overflows and the clients back off); FRR and GoBGP use 4096.
pub const LISTEN_BACKLOG: i32 = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// BGP identifier (Calico: the node's IPv4 address).
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    /// Where to accept sessions; `None` does not listen (every peer must then be active).
    /// Calico's default is all addresses, port 179.
    pub listen: Vec<SocketAddr>,
    /// This node's addresses: the source of outgoing connections (unless a peer overrides it)
    /// and the next hop of what we announce.
    pub node_v4: Option<Ipv4Addr>,
    pub node_v6: Option<Ipv6Addr>,
    pub export: ExportPolicy,
    /// Route-reflector cluster id (Calico's `Node.spec.bgp.routeReflectorClusterID`): this
    /// node reflects routes between its iBGP peers (RFC 4456); clients are the peers with
    /// [`PeerConfig::rr_client`].
    pub cluster_id: Option<Ipv4Addr>,
    /// Graceful restart as the restarting speaker (RFC 4724 §4.1): this start is a restart.
    /// OPENs carry the Restart State bit and the speaker reports initial convergence
    /// ([`crate::SpeakerHandle::initial_convergence`]) only once every graceful peer has sent
    /// End-of-RIB, or after `selection_deferral`. The agent sets it when it restarts over a
    /// dataplane it kept, and must not remove kernel routes the speaker has not relearned
    /// before convergence.
    pub restarting: bool,
    /// The Forwarding State bit in our OPENs: the dataplane keeps forwarding across a
    /// restart of this speaker, so peers may keep our routes meanwhile. False on a start
    /// over an emptied dataplane (a rebooted node): peers then drop our stale routes at once.
    pub forwarding_preserved: bool,
    /// Upper bound of the restart deferral (RFC 4724's Selection_Deferral_Timer).
    pub selection_deferral: Duration,
    /// Upper bound on keeping a restarted peer's stale routes once it is back, if End-of-RIB
    /// never comes (RFC 4724 §4.2's optional timer; FRR's stalepath-time, 360 s).
    pub stale_routes_time: Duration,
}

impl SpeakerConfig {
    /// Listens on 0.0.0.0:179; IPv6 sessions need [::]:179 too
    /// ([`SpeakerConfig::listen_on_wildcard`] once `node_v6` is set).
    pub fn new(router_id: Ipv4Addr, local_as: u32) -> SpeakerConfig {
        SpeakerConfig {
            router_id,
            local_as,
            listen: vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, BGP_PORT))],
            node_v4: Some(router_id),
            node_v6: None,
            export: ExportPolicy::default(),
            cluster_id: None,
            restarting: false,
            forwarding_preserved: true,
            selection_deferral: Duration::from_secs(120),
            stale_routes_time: Duration::from_secs(360),
        }
    }

    /// What of `new` a running speaker cannot take (see
    /// [`crate::SpeakerHandle::reconfigure`]): the router id, the AS, the listen addresses and
    /// the node's addresses are its identity on every session; `None` if nothing of that
    /// changed. `restarting` and `forwarding_preserved` describe a start and are not compared.
    pub fn fixed_difference(&self, new: &SpeakerConfig) -> Option<&'static str> {
        if self.router_id != new.router_id {
            Some("router id")
        } else if self.local_as != new.local_as {
            Some("AS number")
        } else if self.listen != new.listen {
            Some("listen addresses")
        } else if (self.node_v4, self.node_v6) != (new.node_v4, new.node_v6) {
            Some("node addresses")
        } else {
            None
        }
    }

    /// Calico's default `bindMode: None` (BIRD and bird6 listen on all addresses): 0.0.0.0,
    /// and [::] when the node has an IPv6 address (a listener per family, IPv6-only).
    pub fn listen_on_wildcard(&mut self, port: u16) {
        self.listen = vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))];
        if self.node_v6.is_some() {
            self.listen.push(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
        }
    }

    /// Calico's `bindMode: NodeIP` (BIRD `listen bgp address <node IP>`, one BIRD per
    /// family): listen on the node's IPv4 and IPv6 addresses only, instead of the wildcard.
    /// The listeners bind even before an address is configured or while IPv6 duplicate
    /// address detection runs (`IP_FREEBIND`), and accept once it is there.
    pub fn listen_on_node_addresses(&mut self, port: u16) {
        self.listen = self
            .node_v4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.node_v6.map(IpAddr::V6))
            .map(|a| SocketAddr::new(a, port))
            .collect();
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.router_id.is_unspecified() {
            return Err(Error::InvalidConfig("router id 0.0.0.0".into()));
        }
        if self.local_as == 0 {
            return Err(Error::InvalidConfig("local AS 0".into()));
        }
        if self.cluster_id.is_some_and(|c| c.is_unspecified()) {
            return Err(Error::InvalidConfig("route reflector cluster id 0.0.0.0".into()));
        }
        if self.selection_deferral.is_zero() {
            return Err(Error::InvalidConfig("selection deferral of 0 s".into()));
        }
        Ok(())
    }
}

/// BIRD's timers; Calico's values by default (confd's `bird.cfg.template`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerTimers {
    pub connect_delay: Duration,
    pub connect_retry: Duration,
    pub error_wait_min: Duration,
    pub error_wait_max: Duration,
}

impl Default for PeerTimers {
    fn default() -> PeerTimers {
        PeerTimers {
            connect_delay: Duration::from_secs(2),
            connect_retry: Duration::from_secs(5),
            error_wait_min: Duration::from_secs(5),
            error_wait_max: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub remote_as: u32,
    /// Overrides the speaker's AS for this peer (Calico's per-node `asNumber` on a BGPPeer).
    pub local_as: Option<u32>,
    pub passive: bool,
    /// TCP MD5 key (RFC 2385), at most 80 bytes.
    pub password: Option<String>,
    /// Proposed hold time (BIRD default 240; 0 = none; 1 and 2 are invalid).
    pub hold_time: u16,
    /// Keepalive interval (default hold time / 3).
    pub keepalive: Option<u16>,
    pub port: u16,
    /// Source address of our connections (default: the node's address of that family).
    pub source_address: Option<IpAddr>,
    /// With no `source_address`, bind to the node's address (Calico's default `UseNodeIP`);
    /// false is Calico's `sourceAddress: None`: the kernel picks the source.
    pub use_node_ip: bool,
    pub peer_type: PeerType,
    /// Graceful restart time we advertise (RFC 4724; Calico's `maxRestartTime` /
    /// `nodeMeshMaxRestartTime`, BIRD `graceful restart time`, default 120 s): how long the
    /// peer keeps our routes when we restart. `None` turns graceful restart off for the peer
    /// (both roles).
    pub graceful_restart_time: Option<u16>,
    pub timers: PeerTimers,
    /// The peer is our route-reflector client (RFC 4456; needs [`SpeakerConfig::cluster_id`]).
    pub rr_client: bool,
    /// Next hop of what we send (Calico's `nextHopMode` / `keepOriginalNextHop`).
    pub next_hop: NextHopMode,
    /// GTSM (RFC 5082, Calico's `ttlSecurity`): our packets leave with TTL 255 and the peer's
    /// must arrive with at least 256 − hops (the peer is at most `hops` hops away).
    pub ttl_security: Option<u8>,
    /// Times our AS may appear in a received AS_PATH (Calico's `numAllowedLocalASNumbers`,
    /// BIRD `allow local as`).
    pub allow_local_as: u8,
    /// Address families the session carries. Calico runs one BIRD per family (`bird` between
    /// the nodes' IPv4 addresses, `bird6` between their IPv6 addresses), so a session carries
    /// the family of its peer's address, which is the default; both families on one session
    /// is possible for peers that want it (RFC 4760).
    pub families: Vec<Family>,
    /// The BGPFilters of the session (`BGPPeer.spec.filters`, in order, missing names left
    /// out as confd does): their import rules apply to what the peer sends, their export rules
    /// to what it gets. A change of only this field is applied live: no session reset.
    pub filters: Arc<[BgpFilter]>,
}

impl PeerConfig {
    /// A peer with BIRD's defaults.
    pub fn new(address: IpAddr, remote_as: u32, peer_type: PeerType) -> PeerConfig {
        PeerConfig {
            address,
            remote_as,
            local_as: None,
            passive: false,
            password: None,
            hold_time: 240,
            keepalive: None,
            port: BGP_PORT,
            source_address: None,
            use_node_ip: true,
            peer_type,
            graceful_restart_time: Some(120),
            timers: PeerTimers::default(),
            rr_client: false,
            next_hop: NextHopMode::Auto,
            ttl_security: None,
            allow_local_as: 0,
            families: vec![match address {
                IpAddr::V4(_) => Family::IPV4_UNICAST,
                IpAddr::V6(_) => Family::IPV6_UNICAST,
            }],
            filters: Arc::from(Vec::new()),
        }
    }

    /// A node-to-node mesh peer as Calico configures it: passive when the peer's address is
    /// greater than ours as a string (confd's `bird.cfg.template`).
    pub fn mesh(my_address: IpAddr, peer: IpAddr, asn: u32) -> PeerConfig {
        PeerConfig {
            passive: mesh_passive(&my_address.to_string(), &peer.to_string()),
            ..PeerConfig::new(peer, asn, PeerType::Mesh)
        }
    }

    /// True if `new` differs from this configuration only in what a running session takes
    /// without a reset: its BGPFilters (routes re-filtered both ways), whether the peer is a
    /// route-reflector client and the next-hop mode. These change only what the core imports,
    /// reflects and exports, never the OPEN or the socket. Any other change (address, AS,
    /// port, password, timers, graceful restart time, families…) resets that one session, as
    /// BIRD restarts a protocol whose options `configure` changed.
    pub fn differs_only_live(&self, new: &PeerConfig) -> bool {
        self != new && !self.restart_needed(new)
    }

    /// True if going from `self` to `new` needs the session restarted (something changed
    /// that [`PeerConfig::differs_only_live`] does not cover).
    pub(crate) fn restart_needed(&self, new: &PeerConfig) -> bool {
        let live_applied = PeerConfig {
            filters: new.filters.clone(),
            rr_client: new.rr_client,
            next_hop: new.next_hop,
            ..self.clone()
        };
        live_applied != *new
    }

    /// BIRD's protocol name: `Mesh_172_20_42_81`, `Global_…`, `Node_…`.
    pub fn name(&self) -> String {
        let port = (self.port != BGP_PORT).then_some(self.port);
        self.peer_type.protocol_name(self.address, port)
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |what: &str| {
            Err(Error::InvalidPeer {
                peer: self.address,
                what: what.to_string(),
            })
        };
        if self.address.is_unspecified() || self.address.is_multicast() {
            return bad("address is not a unicast address");
        }
        if self.remote_as == 0 || self.local_as == Some(0) {
            return bad("AS number 0");
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return bad("hold time must be 0 or at least 3 seconds (RFC 4271 §4.2)");
        }
        if let Some(k) = self.keepalive
            && (k == 0 || (self.hold_time > 0 && k > self.hold_time / 3))
        {
            return bad("keepalive must be between 1 and a third of the hold time");
        }
        if let Some(p) = &self.password
            && (p.is_empty() || p.len() > 80)
        {
            return bad("password must be 1 to 80 bytes (TCP_MD5SIG_MAXKEYLEN)");
        }
        if self.port == 0 {
            return bad("port 0");
        }
        if let Some(src) = self.source_address
            && src.is_ipv4() != self.address.is_ipv4()
        {
            return bad("source address family differs from the peer's");
        }
        if self.ttl_security == Some(0) {
            return bad("TTL security hops must be 1 to 255");
        }
        if self.families.is_empty() {
            return bad("no address family");
        }
        if let Some(f) = self.families.iter().find(|f| !f.is_supported()) {
            return bad(&format!("address family {f} is not IPv4 or IPv6 unicast"));
        }
        Ok(())
    }

    /// Checks what depends on the speaker's configuration too.
    pub fn validate_with(&self, spk: &SpeakerConfig) -> Result<(), Error> {
        self.validate()?;
        let local_as = self.local_as.unwrap_or(spk.local_as);
        if self.rr_client && spk.cluster_id.is_none() {
            return Err(Error::InvalidPeer {
                peer: self.address,
                what: "route reflector client, but this node has no cluster id".into(),
            });
        }
        if self.rr_client && self.remote_as != local_as {
            return Err(Error::InvalidPeer {
                peer: self.address,
                what: "route reflector client must be an iBGP peer".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn session_config(&self, spk: &SpeakerConfig) -> SessionConfig {
        SessionConfig {
            local_as: self.local_as.unwrap_or(spk.local_as),
            remote_as: self.remote_as,
            router_id: spk.router_id,
            hold_time: self.hold_time,
            keepalive: self.keepalive,
            passive: self.passive,
            connect_delay: self.timers.connect_delay,
            connect_retry: self.timers.connect_retry,
            error_wait_min: self.timers.error_wait_min,
            error_wait_max: self.timers.error_wait_max,
            error_forget: Duration::from_secs(300),
            families: self.families.clone(),
            graceful_restart: self.graceful_restart_time,
            restarting: spk.restarting,
            forwarding_preserved: spk.forwarding_preserved,
            gr_notification: true,
        }
    }
}

/// A prefix this node originates, with what Calico attaches to it: the communities of the
/// prefix advertisements covering it (`PrefixAdvertisements::for_prefix`) and, for a borrowed
/// /32 or /128 on a workload interface, that interface (BGPFilter's `interface` match; BIRD
/// sees such routes through its kernel protocol). Blocks and service prefixes have none.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Originated {
    pub prefix: IpNet,
    pub communities: CommunitySet,
    pub interface: Option<String>,
}

impl Originated {
    /// A prefix with no communities and no interface.
    pub fn plain(prefix: IpNet) -> Originated {
        Originated {
            prefix,
            communities: CommunitySet::default(),
            interface: None,
        }
    }
}
