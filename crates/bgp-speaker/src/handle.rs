//! The speaker's API for the agent: start it, give it peers and prefixes, read its status and
//! routes.

use tokio::sync::{mpsc, oneshot};

use ipnet::IpNet;
use std::os::fd::AsRawFd;

use crate::config::{PeerConfig, SpeakerConfig};
use crate::core::{Core, CoreMsg, Listener};
use crate::error::Error;
use crate::socket;
use crate::status::{PeerStatus, RouteSubscription};

pub struct Speaker;

/// A cheap, cloneable handle to a running speaker.
#[derive(Clone)]
pub struct SpeakerHandle {
    tx: mpsc::Sender<CoreMsg>,
}

impl Speaker {
    /// Binds the listeners and starts the speaker on the current tokio runtime. Sockets are
    /// created in the calling thread's network namespace.
    pub fn start(cfg: SpeakerConfig) -> Result<SpeakerHandle, Error> {
        cfg.validate()?;
        let (tx, rx) = mpsc::channel(1024);
        let mut listeners = Vec::new();
        for addr in &cfg.listen {
            let l = socket::listen(*addr).map_err(|source| Error::Listen { addr: *addr, source })?;
            let fd = l.as_raw_fd();
            let ltx = tx.clone();
            let task = tokio::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, from)) => {
                            if ltx.send(CoreMsg::Accepted(s, from)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning.
                            tracing::warn!(error = %e, "bgp accept");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                }
            });
            listeners.push(Listener {
                fd,
                v6: addr.is_ipv6(),
                task,
            });
        }
        let core = Core::new(cfg, tx.clone(), listeners);
        tokio::spawn(core.run(rx));
        Ok(SpeakerHandle { tx })
    }
}

impl SpeakerHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> CoreMsg) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Replaces the peer set: new peers start, removed ones get Cease/Peer De-configured,
    /// changed ones restart (Cease/Other Configuration Change); the others are not disturbed.
    /// An invalid list changes nothing.
    pub async fn set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), Error> {
        self.ask(|r| CoreMsg::SetPeers(peers, r)).await?
    }

    /// Replaces the prefixes this node originates (its blocks, borrowed /32s, static and
    /// service prefixes); peers receive the difference.
    pub async fn set_originated(&self, prefixes: Vec<IpNet>) -> Result<(), Error> {
        self.ask(|r| CoreMsg::SetOriginated(prefixes, r)).await
    }

    /// The current best learned routes and a stream of their changes.
    pub async fn subscribe_routes(&self) -> Result<RouteSubscription, Error> {
        self.ask(CoreMsg::Subscribe).await
    }

    /// Every peer's status, sorted by protocol name.
    pub async fn status(&self) -> Result<Vec<PeerStatus>, Error> {
        self.ask(CoreMsg::Status).await
    }

    /// Sends Cease/Administrative Shutdown to every peer and stops.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(CoreMsg::Shutdown).await
    }
}
