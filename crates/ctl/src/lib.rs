//! The node agent's local interfaces, in one small crate that both ends use: the agent serves
//! them; `brindle node status`, `brindle lab` and the CNI plugin are their clients. Keeping them
//! here spares the lab and the plugin a dependency on the whole agent (BGP speaker, dataplane,
//! BPF build), and the agent one on the plugin.
//!
//! Module map:
//! - [`status`]: [`status::AgentStatus`], what `node status` shows; BIRD's time format and
//!   calicoctl's `node status` rendering.
//! - [`control`]: the control socket protocol (one request line, one JSON answer) and its
//!   client, [`control::query_status`].
//! - [`report`]: the CNI plugin's per-call latency datagrams, which the agent exports in
//!   `/metrics`.
//! - [`error`]: the error type.

pub mod control;
pub mod error;
pub mod report;
pub mod status;

pub use error::{Error, Result};
