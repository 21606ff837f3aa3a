//! The BGP driver: a task that owns the speaker (brindle-bgp-speaker), applies each new
//! [`DesiredBgp`] (latest wins), restarts the speaker when its identity (router id, AS, port,
//! cluster id, export pools) changes, and forwards learned best routes to the main loop. It
//! plays BIRD and confd.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use brindle_bgp_speaker::{
    ExportPolicy, PeerConfig, PeerType, RouteEvent, Speaker, SpeakerConfig, SpeakerHandle,
};
use ipnet::{IpNet, Ipv4Net};
use tokio::sync::{mpsc, watch};

use crate::calc::{DesiredBgp, DesiredPeer, PeerKind};
use crate::peering::SecretRef;
use crate::status::{PeerStatus, collapse_spaces};

/// What the driver tells the main loop about learned routes.
#[derive(Debug)]
pub enum RouteMsg {
    /// The speaker (re)started: forget every learned route.
    Reset,
    Add(Ipv4Net, Ipv4Addr),
    Withdraw(Ipv4Net),
    /// Initial convergence after a (re)start (RFC 4724 §4.1): every peer sent End-of-RIB or
    /// the selection deferral ran out, and every route of the converged table came before
    /// this message. Only now may kernel routes the speaker did not relearn be removed.
    Converged,
}

fn peer_type(k: PeerKind) -> PeerType {
    match k {
        PeerKind::Mesh => PeerType::Mesh,
        PeerKind::Global => PeerType::Global,
        PeerKind::Node => PeerType::Node,
    }
}

/// Where BGP passwords come from. Calico reads the key of a Kubernetes Secret named by
/// `secretKeyRef {name, key}`; Brindle has no Kubernetes and reads the file
/// `<dir>/<name>/<key>`, which is what a Secret mounted as a volume at `<dir>/<name>` looks like.
/// One trailing newline (as `echo` writes) is not part of the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub dir: PathBuf,
}

impl Secrets {
    pub fn new(dir: impl Into<PathBuf>) -> Secrets {
        Secrets { dir: dir.into() }
    }

    /// The secret's value, or why it cannot be read.
    pub fn read(&self, r: &SecretRef) -> Result<String, String> {
        // Kubernetes names and keys never hold a path separator or `..`: refuse them rather
        // than read outside the directory.
        let bad = |s: &str| s.is_empty() || s.contains('/') || s == "." || s == "..";
        if bad(&r.name) || bad(&r.key) {
            return Err(format!(
                "secret {}/{}: not a valid secret name and key",
                r.name, r.key
            ));
        }
        let path = self.dir.join(&r.name).join(&r.key);
        let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut v = String::from_utf8(raw).map_err(|_| format!("{}: not UTF-8", path.display()))?;
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        if v.is_empty() {
            return Err(format!("{}: empty", path.display()));
        }
        Ok(v)
    }
}

/// How often password files are read again.
pub const SECRETS_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// The speaker's configuration for a desired state; a change of it restarts the speaker
/// (cluster id and export policy are fixed for a speaker's life).
pub fn speaker_config(d: &DesiredBgp, port: u16) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(d.router_id, d.local_as);
    cfg.listen = vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))];
    cfg.node_v4 = Some(d.local_addr);
    cfg.cluster_id = d.cluster_id;
    cfg.export = ExportPolicy {
        learned_to_ebgp: d.export_pools.clone(),
    };
    cfg
}

/// The speaker's peer list for a desired state, as confd renders each `protocol bgp`:
/// `source address` (unless `sourceAddress: None`), `local as`, `passive`, `password`,
/// `graceful restart time`, `keepalive time`, `rr client`, `next hop self|keep`, `ttl security`,
/// `allow local as`. A password that cannot be read is logged with its BGPPeer and the session
/// is configured without one (confd does the same). Sessions the speaker would refuse are
/// left out and logged, so one bad BGPPeer does not hold up the others.
pub fn peer_configs(d: &DesiredBgp, default_port: u16, secrets: &Secrets) -> Vec<PeerConfig> {
    let spk = speaker_config(d, default_port);
    d.peers
        .iter()
        .filter(|p| p.addr.is_ipv4())
        .filter_map(|p: &DesiredPeer| {
            let mut c = PeerConfig::new(p.addr, p.asn, peer_type(p.kind));
            c.passive = p.passive;
            c.port = p.port.unwrap_or(default_port);
            c.local_as = p.local_as;
            if p.use_node_ip {
                c.source_address = Some(IpAddr::V4(d.local_addr));
            } else {
                c.use_node_ip = false;
            }
            if let Some(t) = p.restart_time {
                c.graceful_restart_time = Some(t);
            }
            c.keepalive = p.keepalive;
            c.rr_client = p.rr_client;
            c.next_hop = p.next_hop;
            c.ttl_security = p.ttl_security;
            c.allow_local_as = p.allow_local_as;
            let from = p
                .source
                .as_deref()
                .unwrap_or("BGPConfiguration default (nodeMeshPassword)");
            if let Some(r) = &p.password {
                match secrets.read(r) {
                    Ok(pw) => c.password = Some(pw),
                    Err(e) => {
                        tracing::error!(peer = %p.addr, bgppeer = %from, secret = %r.name, key = %r.key,
                        error = %e, "BGP password unreadable: session configured without it")
                    }
                }
            }
            match c.validate_with(&spk) {
                Ok(()) => Some(c),
                Err(e) => {
                    tracing::error!(peer = %p.addr, bgppeer = %from, error = %e, "BGP session left out");
                    None
                }
            }
        })
        .collect()
}

/// Runs until `desired` closes; then closes every session without a NOTIFICATION (a planned
/// restart, as `birdc graceful restart`): peers keep this node's routes as stale for the restart
/// time while the kernel keeps forwarding, and the next agent re-announces them. A node that
/// is gone for good is deleted, and its peers then drop the session and its routes at once.
///
/// `restarting`: the kernel still holds what an earlier agent programmed, so the speaker starts
/// as a restarting speaker (Restart State bit, End-of-RIB deferral), as calico-node runs
/// `bird -R`. A restart of the speaker inside this agent (new identity) is one too.
pub async fn drive(
    mut desired: watch::Receiver<Option<DesiredBgp>>,
    port_override: Option<u16>,
    mut restarting: bool,
    secrets: Secrets,
    handle_tx: watch::Sender<Option<SpeakerHandle>>,
    routes: mpsc::UnboundedSender<RouteMsg>,
) {
    let mut speaker: Option<(SpeakerHandle, SpeakerConfig)> = None;
    let mut forwarder: Option<tokio::task::JoinHandle<()>> = None;
    let mut recheck = tokio::time::interval(SECRETS_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = desired.changed() => if r.is_err() { break },
            _ = recheck.tick() => {
                // A password file can appear or change without any datastore change (confd
                // watches its Secrets): read them again; unchanged peers are not disturbed.
                let with_password = desired
                    .borrow()
                    .as_ref()
                    .is_some_and(|d| d.peers.iter().any(|p| p.password.is_some()));
                if !with_password {
                    continue;
                }
            }
        }
        let Some(d) = desired.borrow_and_update().clone() else {
            continue;
        };
        let port = port_override
            .or(d.listen_port)
            .unwrap_or(brindle_bgp_speaker::BGP_PORT);
        let id = speaker_config(&d, port);
        if speaker.as_ref().map(|(_, i)| i) != Some(&id) {
            if let Some((h, old)) = speaker.take() {
                if (old.router_id, old.local_as) != (id.router_id, id.local_as) {
                    // Another router: peers must forget the old one's routes.
                    tracing::info!("BGP identity changed: restarting the speaker (Cease)");
                    let _ = h.shutdown().await;
                } else {
                    // Same router, new settings the speaker takes only at start (listen port,
                    // cluster id, export pools): a graceful restart, so peers keep forwarding
                    // to this node while it comes back.
                    tracing::info!("BGP settings changed: restarting the speaker gracefully");
                    let _ = h.shutdown_graceful().await;
                }
            }
            if let Some(f) = forwarder.take() {
                f.abort();
            }
            let mut cfg = id.clone();
            cfg.restarting = restarting;
            match Speaker::start(cfg) {
                Ok(h) => {
                    tracing::info!(router_id = %d.router_id, asn = d.local_as, port, restarting,
                        cluster_id = ?d.cluster_id, "BGP speaker started");
                    restarting = true;
                    let _ = routes.send(RouteMsg::Reset);
                    match h.subscribe_routes().await {
                        Ok(sub) => {
                            let conv = h.initial_convergence();
                            forwarder = Some(tokio::spawn(forward(sub, conv, routes.clone())));
                        }
                        Err(e) => tracing::error!(error = %e, "BGP route subscription"),
                    }
                    let _ = handle_tx.send(Some(h.clone()));
                    speaker = Some((h, id));
                }
                Err(e) => {
                    tracing::error!(error = %e, "BGP speaker cannot start; retrying on the next change");
                    let _ = handle_tx.send(None);
                    continue;
                }
            }
        }
        let (h, _) = speaker.as_ref().expect("started above");
        if let Err(e) = h.set_peers(peer_configs(&d, port, &secrets)).await {
            tracing::error!(error = %e, "BGP peers refused");
        }
        let prefixes: Vec<IpNet> = d.originate.iter().map(|n| IpNet::V4(*n)).collect();
        if let Err(e) = h.set_originated(prefixes).await {
            tracing::error!(error = %e, "BGP originate");
        }
    }
    if let Some(f) = forwarder.take() {
        f.abort();
    }
    if let Some((h, _)) = speaker.take() {
        let _ = h.shutdown_graceful().await;
        tracing::info!("BGP sessions closed for a graceful restart (peers keep our routes)");
    }
    let _ = handle_tx.send(None);
}

async fn forward(
    sub: brindle_bgp_speaker::RouteSubscription,
    mut converged: watch::Receiver<bool>,
    tx: mpsc::UnboundedSender<RouteMsg>,
) {
    let v4 = |p: IpNet, nh: IpAddr| match (p, nh) {
        (IpNet::V4(p), IpAddr::V4(nh)) => Some((p, nh)),
        _ => None,
    };
    let msg = |ev: RouteEvent| match ev {
        RouteEvent::Add(r) | RouteEvent::Replace(r) => {
            v4(r.prefix, r.next_hop).map(|(p, nh)| RouteMsg::Add(p, nh))
        }
        RouteEvent::Withdraw(IpNet::V4(p)) => Some(RouteMsg::Withdraw(p)),
        RouteEvent::Withdraw(_) => None,
    };
    for r in sub.snapshot {
        if let Some((p, nh)) = v4(r.prefix, r.next_hop)
            && tx.send(RouteMsg::Add(p, nh)).is_err()
        {
            return;
        }
    }
    let mut events = sub.events;
    let mut told = false;
    loop {
        if !told && *converged.borrow_and_update() {
            // The speaker queued every event of the converged table before raising the flag:
            // pass those on first, so the main loop has the whole table when it may prune.
            while let Ok(ev) = events.try_recv() {
                if let Some(m) = msg(ev)
                    && tx.send(m).is_err()
                {
                    return;
                }
            }
            if tx.send(RouteMsg::Converged).is_err() {
                return;
            }
            told = true;
        }
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { return };
                if let Some(m) = msg(ev)
                    && tx.send(m).is_err()
                {
                    return;
                }
            }
            r = converged.changed(), if !told => {
                if r.is_err() {
                    // The speaker is gone; its events channel closes next.
                    told = true;
                }
            }
        }
    }
}

/// The speaker's peers in `node status` terms.
pub fn peer_statuses(peers: &[brindle_bgp_speaker::PeerStatus]) -> (Vec<PeerStatus>, Vec<PeerStatus>) {
    let conv = |p: &brindle_bgp_speaker::PeerStatus| PeerStatus {
        peer_address: p.address.to_string(),
        peer_type: match p.peer_type {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::Node => "node specific",
        }
        .to_string(),
        state: p.state.to_string(),
        since: p
            .since
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        info: collapse_spaces(&p.info),
        established: p.bgp_state == brindle_bgp_speaker::BgpState::Established,
    };
    let v4 = peers.iter().filter(|p| p.address.is_ipv4()).map(conv).collect();
    let v6 = peers.iter().filter(|p| p.address.is_ipv6()).map(conv).collect();
    (v4, v6)
}
