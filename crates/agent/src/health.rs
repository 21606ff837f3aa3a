//! Liveness and readiness with calico-node's semantics (calico.md §8.1): Felix's part (the
//! dataplane is programmed) and BIRD's (`-bird-ready`): with no peers, ready; within the
//! threshold after startup (the nodename file's mtime) every peer must be Established and no
//! graceful restart may be in progress; after that, one Established peer is enough.

use crate::status::PeerStatus;

/// calico-node's `-threshold-time` default.
pub const THRESHOLD_SECS: i64 = 30;

/// `(ready, detail)`. `started` is the nodename file's mtime (seconds since the epoch).
pub fn readiness(
    dataplane_ready: bool,
    peers: Option<&[PeerStatus]>,
    graceful_restart: bool,
    started: i64,
    now: i64,
) -> (bool, String) {
    if !dataplane_ready {
        return (
            false,
            "calico/node is not ready: felix is not ready: dataplane not programmed yet".into(),
        );
    }
    let Some(peers) = peers else {
        return (true, String::new());
    };
    if peers.is_empty() {
        return (true, String::new());
    }
    let down: Vec<&str> = peers
        .iter()
        .filter(|p| !p.established)
        .map(|p| p.peer_address.as_str())
        .collect();
    if now - started < THRESHOLD_SECS {
        if graceful_restart {
            return (
                false,
                "calico/node is not ready: BIRD is not ready: graceful restart in progress".into(),
            );
        }
        if !down.is_empty() {
            return (
                false,
                format!(
                    "calico/node is not ready: BIRD is not ready: BGP not established with {}",
                    down.join(",")
                ),
            );
        }
        return (true, String::new());
    }
    if down.len() == peers.len() {
        return (
            false,
            format!(
                "calico/node is not ready: BIRD is not ready: BGP not established with {}",
                down.join(",")
            ),
        );
    }
    (true, String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, up: bool) -> PeerStatus {
        PeerStatus {
            peer_address: addr.into(),
            peer_type: "node-to-node mesh".into(),
            state: if up { "up" } else { "start" }.into(),
            since: 0,
            info: String::new(),
            established: up,
        }
    }

    #[test]
    fn bird_ready_rules() {
        let both = [peer("172.20.42.81", true), peer("172.20.42.82", false)];
        assert!(!readiness(false, None, false, 0, 100).0);
        assert!(readiness(true, None, false, 0, 1).0);
        assert!(readiness(true, Some(&[]), false, 0, 1).0);
        let (ok, why) = readiness(true, Some(&both), false, 100, 110);
        assert!(!ok);
        assert!(why.ends_with("BGP not established with 172.20.42.82"), "{why}");
        assert!(readiness(true, Some(&both), false, 100, 200).0);
        let none = [peer("172.20.42.81", false)];
        assert!(!readiness(true, Some(&none), false, 100, 200).0);
        let up = [peer("172.20.42.81", true)];
        let (ok, why) = readiness(true, Some(&up), true, 100, 110);
        assert!(!ok && why.contains("graceful restart in progress"));
    }
}
