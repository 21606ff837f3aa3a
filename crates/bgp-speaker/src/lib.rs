//! BGP speaker on tokio: listener, per-peer sessions, RIB actor, status.
//!
//! Drives the pure session FSM and RIB of `brindle-bgp-core` with real sockets: a listener per
//! address with a 4096-connection backlog, outgoing connections from the node's address, TCP
//! MD5 signatures (RFC 2385, Linux `TCP_MD5SIG`), one task per peer, peers and originated
//! prefixes changed at run time without disturbing the rest.
//!
//! Module map:
//! - [`handle`]: [`Speaker::start`] and [`SpeakerHandle`] (set_peers, set_originated,
//!   subscribe_routes, status, shutdown), the agent's API.
//! - [`config`]: [`SpeakerConfig`], [`PeerConfig`] (Calico's defaults, the mesh passive rule).
//! - [`status`]: [`PeerStatus`] (BIRD-style), [`Route`], [`RouteEvent`], [`RouteSubscription`].
//! - `core`: the actor owning the peer set, RIB, Adj-RIB-Outs and subscribers.
//! - `peer`: one task per peer around `Session`; `conn`: a connection's reader and writer.
//! - `socket`: listener and connect; `md5`: the `TCP_MD5SIG` option.
//! - [`error`]: the [`Error`] type.

pub mod config;
mod conn;
mod core;
pub mod error;
pub mod handle;
mod md5;
mod peer;
mod socket;
pub mod status;

pub use brindle_bgp_core::{BgpState, ExportPolicy, NextHopMode, PeerType, ProtoState, mesh_passive};
pub use config::{BGP_PORT, LISTEN_BACKLOG, PeerConfig, PeerTimers, SpeakerConfig};
pub use error::Error;
pub use handle::{Speaker, SpeakerHandle};
pub use status::{PeerStatus, Route, RouteEvent, RouteSubscription};
