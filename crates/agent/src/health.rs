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
    // `-bird-ready` for the IPv4 sessions and, on a node with IPv6, `-bird6-ready` for the
    // IPv6 ones (Calico's dual-stack manifests probe both); each family on its own.
    for (peers, who) in [(&bgp.peers_v4, "BIRD"), (&bgp.peers_v6, "BIRD6")] {
        if let Some(why) = family_not_ready(peers, who, bgp.graceful_restart_in_progress, now - started) {
            return (false, why);
        }
    }
    (true, String::new())
}

/// One BIRD's verdict (`None`: ready) over its peers, `age` seconds after startup.
fn family_not_ready(
    peers: &[brindle_ctl::status::PeerStatus],
    who: &str,
    graceful_restart: bool,
    age: i64,
) -> Option<String> {
    if peers.is_empty() {
        return None;
    }
    let down: Vec<&str> = peers
        .iter()
        .filter(|p| !p.established)
        .map(|p| p.peer_address.as_str())
        .collect();
    let not_established = || {
        format!(
            "calico/node is not ready: {who} is not ready: BGP not established with {}",
            down.join(",")
        )
    };
    if age < THRESHOLD_SECS {
        if graceful_restart {
            return Some(format!(
                "calico/node is not ready: {who} is not ready: graceful restart in progress"
            ));
        }
        return (!down.is_empty()).then(not_established);
    }
    (down.len() == peers.len()).then(not_established)
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

    /// `-bird6-ready`: the IPv6 sessions are judged on their own, by the same rules.
    #[test]
    fn bird6_ready_rules() {
        let st = |v4: &[PeerStatus], v6: &[PeerStatus]| BgpStatus {
            peers_v4: v4.to_vec(),
            peers_v6: v6.to_vec(),
            ..Default::default()
        };
        let up4 = [peer("172.20.42.81", true)];
        let down6 = [peer("fd00::81", false)];
        let (ok, why) = readiness(true, Some(&st(&up4, &down6)), 100, 110);
        assert!(!ok);
        assert_eq!(
            why,
            "calico/node is not ready: BIRD6 is not ready: BGP not established with fd00::81"
        );
        assert!(!readiness(true, Some(&st(&up4, &down6)), 100, 200).0);
        let up6 = [peer("fd00::81", true)];
        assert!(readiness(true, Some(&st(&[], &up6)), 100, 110).0, "IPv6-only");
        assert!(readiness(true, Some(&st(&up4, &up6)), 100, 110).0);
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
