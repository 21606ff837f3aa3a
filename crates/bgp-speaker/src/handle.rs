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
        // Every address bound before any accept task runs: if one cannot be bound, those
        // bound already close on return, and a retry finds them free.
        let bound = cfg
            .listen
            .iter()
            .map(|addr| socket::listen(*addr).map_err(|source| Error::Listen { addr: *addr, source }))
            .collect::<Result<Vec<_>, Error>>()?;
        let (tx, rx) = mpsc::channel(1024);
        let mut listeners = Vec::new();
        for (addr, l) in cfg.listen.iter().zip(bound) {
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
    /// changed ones restart (Cease/Other Configuration Change) unless only options a session
    /// takes live changed ([`PeerConfig::differs_only_live`]: BGPFilters, reflector client,
    /// next-hop mode), which are applied in place (a peer with new filters has what it sent
    /// filtered again and gets what the new export rules change); the others are not
    /// disturbed. An invalid list changes nothing.
    pub async fn set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), Error> {
        self.ask(|r| CoreMsg::SetPeers(peers, r)).await?
    }

    /// Applies new settings and a new peer list to the running speaker, as BIRD's `configure`
    /// does, without disturbing what did not change: a changed export policy or route-reflector
    /// cluster id makes every Established peer's Adj-RIB-Out be computed again and only the
    /// difference sent (UPDATEs, withdrawals; iBGP peers are also asked for a route refresh
    /// when the cluster id changed, since the loop check changed); the peers change as with
    /// [`SpeakerHandle::set_peers`]. No session is reset except peers whose own options
    /// changed in a way a session cannot take live.
    ///
    /// What only a new speaker can take (router id, AS, listen or node addresses, see
    /// [`SpeakerConfig::fixed_difference`]) is refused with [`Error::RestartNeeded`], as is
    /// an invalid configuration or peer list; then nothing changed. `restarting` and
    /// `forwarding_preserved` are ignored (they describe the start).
    pub async fn reconfigure(&self, cfg: SpeakerConfig, peers: Vec<PeerConfig>) -> Result<(), Error> {
        self.ask(|r| CoreMsg::Reconfigure(Box::new(cfg), peers, r))
            .await?
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
    /// negotiated) and stops: peers drop our routes. Returns once the listening sockets are
    /// closed, so a new speaker can bind the same addresses at once.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.ask(|reply| CoreMsg::Shutdown {
            graceful: false,
            reply,
        })
        .await
    }

    /// Stops for a planned restart: sessions close without a NOTIFICATION, so peers with
    /// graceful restart keep our routes (as stale, for the restart time we advertised) until
    /// the restarted speaker (`SpeakerConfig::restarting`) sends them again. Returns once the
    /// listening sockets are closed.
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
