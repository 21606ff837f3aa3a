//! BGP speaker on tokio: listener, per-peer sessions, RIB actor, status.
//!
//! Drives the pure session FSM and RIB of `brindle-bgp-core` with real sockets: a listener per
//! address with a 4096-connection backlog (the wildcard, or the node's addresses for Calico's
//! `bindMode: NodeIP`), outgoing connections from the node's address, TCP MD5 signatures
//! (RFC 2385, Linux `TCP_MD5SIG`), GTSM (RFC 5082, `IP_MINTTL` / `IPV6_MINHOPCOUNT`), one task
//! per peer; peers, originated prefixes, export policy and route-reflector cluster id changed
//! at run time without disturbing the rest (BIRD's `configure`).
//! IPv4 and IPv6 sessions each carry their own family as Calico's `bird` and `bird6` do
//! (RFC 4760, RFC 2545 next hops); a peer's BGPFilters apply on import and export and change
//! live; originated prefixes carry their communities (RFC 1997, RFC 8092). Connections from
//! addresses that are no peer are logged as rate-limited summaries.
//! Graceful restart in both roles (RFC 4724, RFC 8538), route reflection (RFC 4456) and the
//! RFC 7606 error handling come from the core; the speaker runs their timers, logs, and
//! exposes initial convergence after a restart.
//!
//! Module map:
//! - [`handle`]: [`Speaker::start`] and [`SpeakerHandle`] (set_peers, reconfigure,
//!   set_originated, set_originated_routes, subscribe_routes, status, initial_convergence,
//!   shutdown, shutdown_graceful), the agent's API.
//! - [`config`]: [`SpeakerConfig`] (`listen_on_node_addresses` for `bindMode: NodeIP`,
//!   `fixed_difference`: what needs a new speaker), [`PeerConfig`] (Calico's defaults, the
//!   mesh passive rule, BGPPeer/BGPConfiguration options, graceful restart and route
//!   reflector settings, `families`, `filters`; `differs_only_live`), [`Originated`] (a
//!   prefix with its communities and interface).
//! - [`status`]: [`PeerStatus`] (BIRD-style), [`Route`], [`RouteEvent`], [`RouteSubscription`].
//! - `core`: the actor owning the peer set, RIB, Adj-RIB-Outs, graceful-restart state and
//!   subscribers (`core/routes`: ingest, events, export, End-of-RIB, filters changed live;
//!   `core/graceful`; `core/reconfig`: settings and peer options changed in place).
//! - `refused`: the rate limiter of the log of connections from addresses that are no peer.
//! - `peer`: one task per peer around `Session`: decodes each message once (logging RFC 7606
//!   errors) and hands accepted UPDATEs to the core decoded, detached from the read's bytes
//!   (`bgp_wire::DetachedUpdate`, batches of at most 64); `conn`: a connection's reader (frames
//!   each message once) and writer.
//! - `socket`: listener (`IP_FREEBIND` on node addresses), connect, GTSM; `md5`: the
//!   `TCP_MD5SIG` option; `iface`: a session's interface and link-local address.
//! - [`error`]: the [`Error`] type.
//! - `bin/brindle-bgp-testd`: the speaker as a process, for tests and benchmarks.

pub mod config;
mod conn;
mod core;
pub mod error;
pub mod handle;
mod iface;
mod md5;
mod peer;
mod refused;
mod socket;
pub mod status;

pub use brindle_bgp_core::{
    BgpFilter, BgpState, Community, CommunitySet, ExportPolicy, NextHopMode, PeerType, PrefixAdvertisements,
    ProtoState, mesh_passive,
};
pub use brindle_bgp_wire::Family;
pub use config::{BGP_PORT, LISTEN_BACKLOG, Originated, PeerConfig, PeerTimers, SpeakerConfig};
pub use error::Error;
pub use handle::{Speaker, SpeakerHandle};
pub use status::{PeerStatus, Route, RouteEvent, RouteSubscription};
