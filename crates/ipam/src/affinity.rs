//! Calico's block affinity (`/calico/ipam/v2/host/<node>/ipv4/block/10.233.94.0-24`): a node's
//! claim on a block, written *before* the block so that a claim is two-phase (pending →
//! confirmed) and a crash in between leaves a visible, repairable pending claim.

use serde::{Deserialize, Serialize};

/// The state of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AffinityState {
    #[serde(rename = "confirmed")]
    Confirmed,
    #[serde(rename = "pending")]
    Pending,
    #[serde(rename = "pendingDeletion")]
    PendingDeletion,
}

impl AffinityState {
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityState::Confirmed => "confirmed",
            AffinityState::Pending => "pending",
            AffinityState::PendingDeletion => "pendingDeletion",
        }
    }
}

/// A stored affinity: `{"state":"confirmed","deleted":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockAffinity {
    pub state: AffinityState,
    #[serde(default)]
    pub deleted: bool,
}

impl BlockAffinity {
    pub fn new(state: AffinityState) -> BlockAffinity {
        BlockAffinity {
            state,
            deleted: false,
        }
    }

    /// Reads a stored value. An empty value, or an empty `state`, is a confirmed affinity
    /// written by old Calico versions.
    pub fn from_stored(bytes: &[u8]) -> Result<BlockAffinity, serde_json::Error> {
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"\"\"" {
            return Ok(BlockAffinity::new(AffinityState::Confirmed));
        }
        let v: serde_json::Value = serde_json::from_slice(trimmed)?;
        if v.get("state").and_then(|s| s.as_str()).is_none_or(str::is_empty) {
            let deleted = v.get("deleted").and_then(|d| d.as_bool()).unwrap_or(false);
            return Ok(BlockAffinity {
                state: AffinityState::Confirmed,
                deleted,
            });
        }
        serde_json::from_value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_json_is_calicos() {
        let a = BlockAffinity::new(AffinityState::PendingDeletion);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"state":"pendingDeletion","deleted":false}"#
        );
        let p = BlockAffinity::from_stored(br#"{"state":"pending","deleted":false}"#).unwrap();
        assert_eq!(p.state, AffinityState::Pending);
    }

    #[test]
    fn old_empty_affinity_is_confirmed() {
        assert_eq!(
            BlockAffinity::from_stored(b"").unwrap().state,
            AffinityState::Confirmed
        );
        assert_eq!(
            BlockAffinity::from_stored(br#""""#).unwrap().state,
            AffinityState::Confirmed
        );
        assert_eq!(
            BlockAffinity::from_stored(br#"{"state":"","deleted":false}"#)
                .unwrap()
                .state,
            AffinityState::Confirmed
        );
        assert!(BlockAffinity::from_stored(br#"{"state":"bogus"}"#).is_err());
    }
}
