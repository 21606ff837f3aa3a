//! Import filtering (Calico's BGPFilter `importV4`/`importV6`, see [`crate::filter`]): an
//! announcement the peer's filters reject is not a candidate path; it is kept aside with its
//! attributes (RFC 4271's Adj-RIB-In holds what the peer sent, before policy), so a filter
//! change re-evaluates what the peer sent without a session reset or a route refresh.
//! BIRD instead asks the peer for its routes again (ROUTE-REFRESH) or restarts the session;
//! the result is the same table.

use std::sync::Arc;

use ipnet::IpNet;

use super::{Path, PeerId, Rib};
use crate::attr_store::AttrId;
use crate::filter::{BgpFilter, RouteFacts, import_accepts};

/// A peer's import filters and what they look at, taken once per UPDATE.
pub(super) struct ImportCheck {
    filters: Arc<[BgpFilter]>,
    interface: Option<Arc<str>>,
}

impl ImportCheck {
    pub(super) fn accepts(&self, prefix: IpNet) -> bool {
        import_accepts(
            &self.filters,
            &RouteFacts {
                prefix,
                learned: true,
                interface: self.interface.as_deref(),
            },
        )
    }
}

impl Rib {
    /// The import check for `peer`'s UPDATEs, `None` when it has no import filters (the
    /// common case costs nothing per prefix).
    pub(super) fn import_check(&self, peer: PeerId) -> Option<ImportCheck> {
        let s = self.slot(peer)?;
        (!s.import.is_empty()).then(|| ImportCheck {
            filters: s.import.clone(),
            interface: s.info.interface.clone(),
        })
    }

    /// Sets an announcement aside as rejected by the import filters.
    pub(super) fn filter_out(&mut self, peer: PeerId, prefix: IpNet, path_id: u32, attrs: AttrId) {
        let Some(s) = self.slot_mut(peer) else { return };
        let old = s.filtered.insert((prefix, path_id), attrs);
        self.attrs.incref(attrs);
        if let Some(old) = old {
            self.attrs.decref(old);
        }
    }

    /// Forgets a set-aside announcement (withdrawn, or replaced by an accepted one).
    pub(super) fn unfilter(&mut self, peer: PeerId, prefix: IpNet, path_id: u32) {
        let Some(s) = self.slot_mut(peer) else { return };
        if s.filtered.is_empty() {
            return;
        }
        if let Some(a) = s.filtered.remove(&(prefix, path_id)) {
            self.attrs.decref(a);
        }
    }

    /// Forgets every set-aside announcement of `peer` (session gone, or down for a graceful
    /// restart: the peer sends them again).
    pub(super) fn drop_filtered(&mut self, peer: PeerId) {
        let Some(s) = self.slot_mut(peer) else { return };
        let gone: Vec<AttrId> = s.filtered.drain().map(|(_, a)| a).collect();
        for a in gone {
            self.attrs.decref(a);
        }
    }

    /// Announcements of `id` the import filters rejected (BIRD's "N filtered").
    pub fn peer_filtered_count(&self, id: PeerId) -> usize {
        self.slot(id).map_or(0, |s| s.filtered.len())
    }

    /// Replaces `peer`'s import filters (its session's BGPFilters, in order) and applies them
    /// to everything the peer sent: paths they now reject leave the table (set aside), set-aside
    /// announcements they now accept enter it. Stale paths (graceful restart) they reject are
    /// dropped: the peer sends what it still has again. Returns (removed, restored).
    pub fn set_import_filters(&mut self, peer: PeerId, filters: Arc<[BgpFilter]>) -> (usize, usize) {
        if peer == PeerId::LOCAL {
            return (0, 0);
        }
        let Some(s) = self.slot_mut(peer) else {
            return (0, 0);
        };
        s.import = filters.clone();
        let check = ImportCheck {
            filters,
            interface: s.info.interface.clone(),
        };
        let keys = self.keys_where(|k, p| p.peer() == peer && !check.accepts(k.net()));
        let mut removed = 0;
        for k in keys {
            let mine: Vec<Path> = self
                .dest(k)
                .map(|d| d.paths().iter().copied().filter(|p| p.peer() == peer).collect())
                .unwrap_or_default();
            removed += mine.len();
            // Set aside first: that reference keeps the attributes alive through the removal.
            for p in mine.iter().filter(|p| !p.stale()) {
                self.filter_out(peer, k.net(), p.path_id, p.attrs);
            }
            self.remove_paths(k, |p| p.peer() == peer);
        }
        let back: Vec<((IpNet, u32), AttrId)> = match self.slot_mut(peer) {
            Some(s) => s.filtered.extract_if(|(p, _), _| check.accepts(*p)).collect(),
            None => Vec::new(),
        };
        let restored = back.len();
        for ((prefix, path_id), a) in back {
            self.announce(peer, prefix, path_id, a);
            // The set-aside reference, now held by the path.
            self.attrs.decref(a);
        }
        (removed, restored)
    }
}
