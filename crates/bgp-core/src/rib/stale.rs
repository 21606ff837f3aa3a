//! Graceful restart, receiving speaker (RFC 4724 §4.2): a restarting peer's paths are kept and
//! marked stale (still candidates, still best, so the dataplane keeps forwarding), refreshed
//! by its new UPDATEs, and swept at End-of-RIB or when the restart time runs out.

use brindle_bgp_wire::Family;

use super::{Dest, PeerId, Rib, STALE};
use crate::prefix_key::Key;

fn family_of(k: Key) -> Family {
    match k {
        Key::V4(_) => Family::IPV4_UNICAST,
        Key::V6(_) => Family::IPV6_UNICAST,
    }
}

impl Rib {
    /// The peer's session went down with graceful restart. Its paths in `retained` families
    /// are kept and marked stale; paths still stale from a previous restart (never refreshed)
    /// and paths of other families are deleted (RFC 4724 §4.2). Returns (kept, deleted).
    pub fn mark_stale(&mut self, peer: PeerId, retained: &[Family]) -> (usize, usize) {
        if peer == PeerId::LOCAL || self.slot(peer).is_none() {
            return (0, 0);
        }
        // What the import filters set aside is sent again with the rest, or was withdrawn.
        self.drop_filtered(peer);
        let drop_keys =
            self.keys_where(|k, p| p.peer() == peer && (p.stale() || !retained.contains(&family_of(k))));
        let deleted = drop_keys.len();
        for k in drop_keys {
            let fam = family_of(k);
            self.remove_paths(k, |p| p.peer() == peer && (p.stale() || !retained.contains(&fam)));
        }
        let mut kept = 0;
        let mut mark = |d: &mut Dest| {
            for p in d.paths_mut() {
                if p.peer() == peer {
                    p.peer |= STALE;
                    kept += 1;
                }
            }
        };
        self.v4.values_mut().for_each(&mut mark);
        self.v6.values_mut().for_each(&mut mark);
        if let Some(s) = self.slot_mut(peer) {
            s.stale = kept;
        }
        (kept, deleted)
    }

    /// Deletes the peer's paths still stale in `families` (End-of-RIB received, the restart
    /// or stale timer ran out, or the new session does not preserve those families). Returns
    /// how many went.
    pub fn sweep_stale(&mut self, peer: PeerId, families: &[Family]) -> usize {
        if self.peer_stale_count(peer) == 0 {
            return 0;
        }
        let keys = self.keys_where(|k, p| p.peer() == peer && p.stale() && families.contains(&family_of(k)));
        let n = keys.len();
        for k in keys {
            self.remove_paths(k, |p| p.peer() == peer && p.stale());
        }
        n
    }
}
