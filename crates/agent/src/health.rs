//! Liveness and readiness with calico-node's semantics (its `-felix-ready`/`-bird-ready` probes,
//! Calico's `node/pkg/health/health.go`): Felix's part (the dataplane is programmed) and BIRD's
//! (`-bird-ready`): with no peers, ready; within the threshold after startup (the nodename file's
//! mtime) every peer must be Established and no graceful restart may be in progress; after that,
//! one Established peer is enough.

use brindle_ctl::status::BgpStatus;

/// calico-node's `-threshold-time` default.
pub const THRESHOLD_SECS: i64 = 30;

/// `(ready, detail)`. `started` is the nodename file's mtime (seconds since the epoch). `bgp`
/// is `None` without BGP. A speaker that should run and does not (its start failed and is
/// being retried, or it is restarting) makes the node not ready at any time, whatever its
/// peers were: BIRD not running fails calico-node's `-bird-ready` too.
pub fn readiness(dataplane_ready: bool, bgp: Option<&BgpStatus>, started: i64, now: i64) -> (bool, String) {
    if !dataplane_ready {
        return (
            false,
            "calico/node is not ready: felix is not ready: dataplane not programmed yet".into(),
        );
    }
    let Some(bgp) = bgp else {
        return (true, String::new());
    };
    if let Some(why) = &bgp.speaker_down {
        return (
            false,
            format!("calico/node is not ready: BIRD is not ready: BGP speaker not running: {why}"),
        );
    }
    let (peers, graceful_restart) = (&bgp.peers_v4, bgp.graceful_restart_in_progress);
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
    use brindle_ctl::status::PeerStatus;

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

    fn bgp(peers: &[PeerStatus], graceful_restart: bool) -> BgpStatus {
        BgpStatus {
            peers_v4: peers.to_vec(),
            graceful_restart_in_progress: graceful_restart,
            ..Default::default()
        }
    }

    #[test]
    fn bird_ready_rules() {
        let both = [peer("172.20.42.81", true), peer("172.20.42.82", false)];
        assert!(!readiness(false, None, 0, 100).0);
        assert!(readiness(true, None, 0, 1).0);
        assert!(readiness(true, Some(&bgp(&[], false)), 0, 1).0);
        let (ok, why) = readiness(true, Some(&bgp(&both, false)), 100, 110);
        assert!(!ok);
        assert!(why.ends_with("BGP not established with 172.20.42.82"), "{why}");
        assert!(readiness(true, Some(&bgp(&both, false)), 100, 200).0);
        let none = [peer("172.20.42.81", false)];
        assert!(!readiness(true, Some(&bgp(&none, false)), 100, 200).0);
        let up = [peer("172.20.42.81", true)];
        let (ok, why) = readiness(true, Some(&bgp(&up, true)), 100, 110);
        assert!(!ok && why.contains("graceful restart in progress"));
    }

    #[test]
    fn no_speaker_is_not_ready() {
        let down = BgpStatus {
            speaker_down: Some("bgp listen on 0.0.0.0:179: Address already in use".into()),
            ..Default::default()
        };
        let (ok, why) = readiness(true, Some(&down), 100, 1000);
        assert!(!ok);
        assert_eq!(
            why,
            "calico/node is not ready: BIRD is not ready: BGP speaker not running: \
             bgp listen on 0.0.0.0:179: Address already in use"
        );
    }
}
