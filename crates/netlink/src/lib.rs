//! Synchronous, typed rtnetlink and nf_tables for Brindle: one socket per network namespace, no
//! tokio, no process spawning (the CNI plugin wires a pod with a handful of requests on one
//! socket; the dataplane programs its nftables tables without an `nft` process per change).
//!
//! Module map:
//! - [`handle`] — [`Handle`], the socket of one namespace: requests with ACK, dumps, batches with a
//!   single ACK at the end and per-message error attribution by sequence number.
//! - [`netns`] — [`NetnsFd`], namespaces by name (`/run/netns/NAME`), PID or path; running a closure
//!   on a short-lived thread inside one. **Never `setns` a thread you do not own** (a tokio worker):
//!   open the socket through [`Handle::open`], which enters the namespace on a thread of its own.
//! - [`link`] — links (get, list, veth with the peer created directly in another namespace, ifb,
//!   vxlan, ipip, up/down, MTU, MAC, delete).
//! - [`addr`] — addresses.
//! - [`monitor`] — [`Monitor`], change notifications (links, routes, addresses, neighbours).
//! - [`route`] — routes (add/replace/delete/dump, table, protocol, scope, type, gateway, oif, onlink,
//!   metric) and [`Handle::apply_routes`] batches.
//! - [`neigh`] — permanent neighbours and bridge FDB entries (`self permanent dst`).
//! - [`tc`] — clsact qdisc and direct-action BPF classifiers.
//! - [`nftables`] — nf_tables: transactions, rules from expressions, sets and verdict maps,
//!   the ruleset generation, dumps of one table, change notifications.
//! - [`conntrack`] — [`Conntrack`], ctnetlink: a namespace's flows, and deleting the flows of
//!   given addresses (a workload's address that went away).
//! - [`sysctl`] — `/proc/sys` of a handle's namespace.
//! - [`workload`] — the host side of a workload interface (Calico's sysctls, the pod's `/32`
//!   route), shared by the CNI plugin and the agent's dataplane.
//! - [`error`] — [`Error`], naming the operation and the object.
//!
//! Kernel interfaces: rtnetlink (`rtnetlink(7)`, RFC 3549 for the netlink model), `NETLINK_EXT_ACK`
//! error messages, nf_tables (`linux/netfilter/nf_tables.h`), ctnetlink
//! (`linux/netfilter/nfnetlink_conntrack.h`).

pub mod addr;
pub mod conntrack;
pub mod error;
pub mod handle;
pub mod link;
pub mod monitor;
pub mod neigh;
pub mod netns;
pub mod nftables;
pub mod route;
pub mod sysctl;
pub mod tc;
pub mod workload;

pub use addr::Address;
pub use conntrack::Conntrack;
pub use error::{Error, Refusal, Result};
pub use handle::Handle;
pub use link::{Link, LinkChange, Mac, VethSpec, VxlanInfo, VxlanSpec, mac_to_string, parse_mac};
pub use monitor::{Change, Monitor};
pub use neigh::Neighbour;
pub use netns::NetnsFd;
pub use route::{IP6_DEFAULT_METRIC, Route, RouteBatchError, RouteKind, RouteOp, TABLE_MAIN, proto, scope};
pub use tc::{BpfAttach, BpfFilter, TcHook};
