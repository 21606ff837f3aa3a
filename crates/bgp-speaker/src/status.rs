//! What the speaker reports: per-peer status (for `node status`) and best-route events (for
//! the dataplane).

use std::net::{IpAddr, Ipv6Addr};
use std::time::SystemTime;

use brindle_bgp_core::{BestRoute, BgpState, PeerType, ProtoState};
use ipnet::IpNet;
use tokio::sync::mpsc;

/// One peer as BIRD's `show protocols` shows it (docs/CALICO.md §1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// BIRD protocol name: `Mesh_172_20_42_81`, `Global_…`, `Node_…`.
    pub name: String,
    pub address: IpAddr,
    pub peer_type: PeerType,
    /// `up` / `start` / `down`.
    pub state: ProtoState,
    pub bgp_state: BgpState,
    /// When `state` last changed (render as BIRD does: `HH:MM:SS` if < 20 h ago, else date).
    pub since: Option<SystemTime>,
    /// BIRD's info text, e.g. `Established`, `Active        Socket: Connection refused`.
    pub info: String,
    /// Routes held from the peer (BIRD's `Routes: N imported`), stale ones included.
    pub routes_imported: usize,
    /// Of those, routes kept through the peer's graceful restart and not refreshed yet.
    pub routes_stale: usize,
    /// Routes the peer sent that its import filters (BGPFilter) rejected (BIRD's "filtered").
    pub routes_filtered: usize,
    /// Routes announced to the peer (its Adj-RIB-Out; BIRD's `Routes: … N exported`).
    pub routes_exported: usize,
    /// Times an Established session with the peer went down since it was configured.
    pub flaps: u64,
}

/// A best route learned from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    /// The next hop to program: NEXT_HOP for IPv4 routes, the global address of MP_REACH's
    /// next hop for IPv6 ones (what BIRD's `gateway recursive` resolves, and Calico programs).
    pub next_hop: IpAddr,
    pub peer: IpAddr,
    /// The link-local next hop the peer sent after the global one (RFC 2545), if any: an
    /// alternative gateway on the peer's link (`via fe80::… dev <session interface>`).
    pub link_local: Option<Ipv6Addr>,
}

impl From<BestRoute> for Route {
    fn from(b: BestRoute) -> Route {
        Route {
            prefix: b.prefix,
            next_hop: b.next_hop,
            peer: b.peer,
            link_local: b.attrs.link_local,
        }
    }
}

/// A change of the best learned route for a prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteEvent {
    Add(Route),
    Replace(Route),
    /// No learned route any more (withdrawn, or this node now originates the prefix).
    Withdraw(IpNet),
}

/// The routes at subscription time, then every change after it, in order.
#[derive(Debug)]
pub struct RouteSubscription {
    pub snapshot: Vec<Route>,
    pub events: mpsc::UnboundedReceiver<RouteEvent>,
}
