//! Reconfiguration in place, as BIRD's `configure`: new speaker settings and a new peer list
//! applied to the running speaker, touching only what changed. The export policy and the
//! route-reflector cluster id change what peers are sent: every Established peer's Adj-RIB-Out
//! is recomputed and only the difference goes out (UPDATEs, withdrawals), with no session
//! reset. Per-peer options a session takes live (BGPFilters, reflector client, next-hop mode) are updated
//! in place; any other per-peer change resets that one session; the speaker's identity (router
//! id, AS, listen and node addresses) needs a new speaker.

use std::net::IpAddr;

use brindle_bgp_core::PeerInfo;
use brindle_bgp_wire::{OutMessage, RouteRefresh};

use super::{Core, check_peer_list};
use crate::config::{PeerConfig, SpeakerConfig};
use crate::error::Error;
use crate::peer::PeerCmd;

impl Core {
    /// See [`crate::SpeakerHandle::reconfigure`]. Everything is validated before anything
    /// changes.
    pub(super) fn reconfigure(&mut self, cfg: SpeakerConfig, peers: Vec<PeerConfig>) -> Result<(), Error> {
        cfg.validate()?;
        if let Some(what) = self.cfg.fixed_difference(&cfg) {
            return Err(Error::RestartNeeded(what));
        }
        check_peer_list(&peers, &cfg)?;
        let cluster_changed = cfg.cluster_id != self.cfg.cluster_id;
        let export_changed = cfg.export != self.cfg.export;
        // Whether this start was a restart, and over a kept dataplane, stays what it was.
        self.cfg = SpeakerConfig {
            restarting: self.cfg.restarting,
            forwarding_preserved: self.cfg.forwarding_preserved,
            ..cfg
        };
        if cluster_changed {
            let dropped = self.rib.change_cluster_id(self.cfg.cluster_id);
            tracing::info!(cluster_id = ?self.cfg.cluster_id, looped_paths_dropped = dropped,
                "bgp route reflector cluster id changed in place");
            self.refresh_ibgp();
        }
        if export_changed {
            tracing::info!(pools = ?self.cfg.export.learned_to_ebgp, "bgp export policy changed in place");
        }
        let live = self.apply_peers(peers);
        if cluster_changed || export_changed || live.as_ref().is_ok_and(|l| *l) {
            self.resync_all();
        }
        live.map(drop)
    }

    /// Takes a live option change of an existing peer (see
    /// [`PeerConfig::differs_only_live`]): the RIB's view of the peer as a source, and the
    /// export target of its session.
    pub(super) fn update_live(&mut self, new: &PeerConfig) {
        let Some(p) = self.peers.get_mut(&new.address) else {
            return;
        };
        tracing::info!(peer = %new.address, rr_client = new.rr_client, next_hop = ?new.next_hop,
            "bgp peer options changed in place");
        let refiltered = p.cfg.filters != new.filters;
        p.cfg = new.clone();
        if let Some(id) = p.rib_id
            && let Some(info) = self.rib.peer(id).cloned()
        {
            self.rib.update_peer(
                id,
                PeerInfo {
                    rr_client: new.rr_client,
                    ..info
                },
            );
        }
        if let Some(t) = &mut p.target {
            t.rr_client = new.rr_client;
            t.next_hop = new.next_hop;
        }
        if refiltered {
            self.set_filters(new.address, new.filters.clone());
        }
    }

    /// What every Established peer should hold is computed again and the difference sent:
    /// the rules of what goes where changed, not the routes.
    pub(super) fn resync_all(&mut self) {
        self.propagate();
        let up: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(_, p)| p.target.is_some())
            .map(|(a, _)| *a)
            .collect();
        for a in up {
            self.sync_full(a);
            self.maybe_end_of_rib(a);
        }
    }

    /// Asks every Established iBGP peer that supports it for its routes again (RFC 2918):
    /// after a cluster id change, paths refused as loops under the old id may be valid now.
    fn refresh_ibgp(&self) {
        for (addr, p) in &self.peers {
            let (Some(t), Some(n)) = (&p.target, &p.negotiated) else {
                continue;
            };
            if !t.ibgp() || !n.route_refresh {
                continue;
            }
            let mut bytes = Vec::new();
            for family in &n.families {
                OutMessage::RouteRefresh(RouteRefresh {
                    family: *family,
                    subtype: 0,
                })
                .encode(&p.ctx, &mut bytes);
            }
            tracing::debug!(peer = %addr, "bgp route refresh requested");
            let _ = p.cmd.send(PeerCmd::Send(bytes));
        }
    }
}
