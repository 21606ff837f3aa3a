//! Errors of the speaker's API.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bgp peer {peer}: {what}")]
    InvalidPeer { peer: IpAddr, what: String },
    #[error("bgp speaker config: {0}")]
    InvalidConfig(String),
    #[error("bgp listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bgp TCP MD5 key for {peer}: {source}")]
    Md5 { peer: IpAddr, source: std::io::Error },
    #[error("bgp speaker has stopped")]
    Stopped,
    /// [`crate::SpeakerHandle::reconfigure`] was given a configuration that differs in what
    /// only a new speaker can take.
    #[error("bgp speaker: the {0} cannot change while it runs (restart the speaker)")]
    RestartNeeded(&'static str),
}
