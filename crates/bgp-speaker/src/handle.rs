//! The speaker's API for the agent: start it, give it peers and prefixes, read its status and
//! routes.

use tokio::sync::{mpsc, oneshot, watch};

use ipnet::IpNet;
use std::os::fd::AsRawFd;

use crate::config::{Originated, PeerConfig, SpeakerConfig};
use crate::core::{Core, CoreMsg, Listener};
use crate::error::Error;
use crate::socket;
use crate::status::{PeerStatus, RouteSubscription};

pub struct Speaker;

/// A cheap, cloneable handle to a running speaker.
#[derive(Clone)]
pub struct SpeakerHandle {
    tx: mpsc::Sender<CoreMsg>,
    converged: watch::Receiver<bool>,
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
        let (converged_tx, converged) = watch::channel(!cfg.restarting);
        let core = Core::new(cfg, tx.clone(), listeners, converged_tx);
        tokio::spawn(core.run(rx));
        Ok(SpeakerHandle { tx, converged })
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
    /// A peer whose only change is its `filters` keeps its session: what it sent is filtered
    /// again and it gets what the new export rules change. An invalid list changes nothing.
    pub async fn set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), Error> {
        self.ask(|r| CoreMsg::SetPeers(peers, r)).await?
    }

    /// Replaces the prefixes this node originates (its blocks, borrowed /32s, static and
    /// service prefixes, IPv4 and IPv6), without communities; peers receive the difference.
    pub async fn set_originated(&self, prefixes: Vec<IpNet>) -> Result<(), Error> {
        let list = prefixes.into_iter().map(Originated::plain).collect();
        self.set_originated_routes(list).await
    }

    /// Like [`SpeakerHandle::set_originated`], each prefix with its communities (Calico's
    /// prefix advertisements) and interface. A prefix whose communities change is announced
    /// again with the new ones.
    pub async fn set_originated_routes(&self, routes: Vec<Originated>) -> Result<(), Error> {
        self.ask(|r| CoreMsg::SetOriginated(routes, r)).await
    }

    /// The current best learned routes and a stream of their changes.
    pub async fn subscribe_routes(&self) -> Result<RouteSubscription, Error> {
        self.ask(CoreMsg::Subscribe).await
    }

    /// Every peer's status, sorted by protocol name.
    pub async fn status(&self) -> Result<Vec<PeerStatus>, Error> {
        self.ask(CoreMsg::Status).await
    }

    /// Sends Cease/Administrative Shutdown to every peer (Cease/Hard Reset where RFC 8538 was
    /// negotiated) and stops: peers drop our routes.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(|reply| CoreMsg::Shutdown {
            graceful: false,
            reply,
        })
        .await
    }

    /// Stops for a planned restart: sessions close without a NOTIFICATION, so peers with
    /// graceful restart keep our routes (as stale, for the restart time we advertised) until
    /// the restarted speaker (`SpeakerConfig::restarting`) sends them again.
    pub async fn shutdown_graceful(&self) -> Result<(), Error> {
        self.ask(|reply| CoreMsg::Shutdown {
            graceful: true,
            reply,
        })
        .await
    }

    /// True once the initial convergence after a restart is done (RFC 4724 §4.1: End-of-RIB
    /// from every graceful peer, or the selection deferral expired); true from the start
    /// when `SpeakerConfig::restarting` is false. Every route event of the converged table
    /// has been queued on each subscription before this turns true: drain `events` before
    /// acting on it (e.g. removing kernel routes the speaker did not relearn).
    pub fn initial_convergence(&self) -> watch::Receiver<bool> {
        self.converged.clone()
    }
}
