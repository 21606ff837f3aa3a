//! The node agent, `brindle node run`: what calico-node is (startup, Felix, BIRD and confd) in
//! one process. It registers the node, watches the datastore, computes the desired state, drives
//! the BGP speaker and the dataplane, and reports over a control socket and HTTP.
//!
//! Module map:
//! - [`config`]: [`config::AgentConfig`] from flags and Calico's environment (pure parsing).
//! - [`nodename`]: the node's name (NODENAME > nodename file > HOSTNAME > hostname).
//! - [`autodetect`]: the node's BGP addresses (`IP`, `IP6`, `IP_AUTODETECTION_METHOD`,
//!   `IP6_AUTODETECTION_METHOD`).
//! - [`cache`]: the datastore as the agent knows it: the model's typed resources by kind and
//!   name, and the block affinities, decoded leniently.
//! - [`calc`]: the pure calculation: cache + learned routes → desired BGP and dataplane state.
//! - [`channels`]: the bounded channels between the agent's threads and their overflow policy
//!   (coalesce per key; latest desired state wins).
//! - [`nexthop`]: recursive next-hop resolution of learned routes (BIRD's `gateway
//!   recursive`).
//! - [`peering`]: confd's peering rules (mesh, BGPPeer selectors, reverse peerings, route
//!   reflector clients, per-session options), used by [`calc`].
//! - [`pools`]: the default IPv4 and IPv6 pools from `CALICO_IPV4POOL_*` / `CALICO_IPV6POOL_*`.
//! - [`policy`]: network policy: the cache's policy kinds → `brindle_policy`'s calculation →
//!   deltas for the dataplane thread; Felix's policy settings.
//! - [`startup`]: registration of the Node, cluster defaults, default pool, tunnel addresses.
//! - [`bgp`]: the speaker's configuration from the desired state (speaker and peer settings,
//!   passwords from `BRINDLE_SECRETS_DIR`) and its peer status in `node status` terms.
//! - [`bgpthread`]: the BGP thread (its own runtime): the speaker and its driver, which applies
//!   each desired state in place, restarts the speaker only for a new identity, retries a
//!   failed start with backoff, and forwards learned routes.
//! - [`routeq`]: the coalescing route channel from the BGP thread to the main loop.
//! - [`syncer`]: the datastore list+watch thread.
//! - [`dpthread`]: the dataplane thread (netlink owner, latest-wins applies, periodic resync).
//! - [`run`]: [`run::run`], startup then the main loop; clean shutdown on SIGTERM.
//! - [`server`]: the control socket (its protocol and the status it answers are
//!   `brindle-ctl`'s, shared with the clients) and the CNI plugin's report socket;
//!   [`server::Query`].
//! - [`http`]: the health and metrics HTTP server (hyper; timeouts and limits).
//! - [`health`]: readiness with calico-node's bird-ready semantics.
//! - [`metrics`]: the Prometheus exposition (Felix's, kube-controllers' and the BIRD exporter's
//!   names).
//! - [`view`]: the picture of the cluster (`/view`, `brindle lab view`).
//! - [`error`]: the error type.
//! - [`limits`]: the open-files limit the agent raises for itself.
//!
//! Protocols: BGP-4 (RFC 4271) with graceful restart (RFC 4724), route reflection (RFC 4456),
//! IPv6 unicast over multiprotocol BGP (RFC 4760, RFC 2545),
//! TCP MD5 (RFC 2385) and GTSM (RFC 5082) through `brindle-bgp-speaker`;
//! HTTP/1.1 (RFC 9112) for the health and metrics server; Prometheus text exposition format
//! 0.0.4 for `/metrics`.

pub mod autodetect;
pub mod bgp;
pub mod bgpthread;
pub mod cache;
pub mod calc;
#[cfg(test)]
mod calc_tests;
pub mod channels;
pub mod config;
pub mod dpthread;
pub mod error;
pub mod health;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod nexthop;
pub mod nodename;
pub mod peering;
#[cfg(test)]
mod peering_tests;
pub mod policy;
pub mod pools;
pub mod routeq;
pub mod run;
pub mod server;
pub mod startup;
#[cfg(test)]
mod startup_tests;
pub mod syncer;
pub mod view;

pub use error::{Error, Result};
