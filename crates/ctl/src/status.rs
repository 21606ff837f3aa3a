//! What the agent reports about itself over its control socket: BGP peers as BIRD's `show
//! protocols` would show them (as calicoctl's `commands/node/status.go` reads them), dataplane and
//! readiness. Shared by the agent, `brindle node status` and `brindle lab status`.

use serde::{Deserialize, Serialize};

/// One BGP peer, in the terms `calicoctl node status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// `172.20.42.81`.
    pub peer_address: String,
    /// `node-to-node mesh`, `global` or `node specific`.
    pub peer_type: String,
    /// BIRD's protocol state: `up`, `start`, `down`, …
    pub state: String,
    /// When the protocol state last changed, in seconds since the Unix epoch.
    pub since: i64,
    /// BIRD's info text: `Established`, `Active Socket: Connection refused`, `Passive`, …
    pub info: String,
    /// The session is Established.
    pub established: bool,
}

/// BGP as a whole; `None` in [`AgentStatus::bgp`] when the node runs no BGP
/// (`CALICO_NETWORKING_BACKEND=vxlan|none`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BgpStatus {
    pub peers_v4: Vec<PeerStatus>,
    pub peers_v6: Vec<PeerStatus>,
    /// This node restarted and is still waiting for its peers' End-of-RIB (RFC 4724).
    pub graceful_restart_in_progress: bool,
    pub routes_received: usize,
    pub routes_advertised: usize,
    /// Why the BGP speaker is not running although it should (a failed start, retried with
    /// backoff; a restart in progress); absent while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_down: Option<String>,
    /// Failed starts of the speaker since the agent started.
    #[serde(default)]
    pub speaker_start_failures: u64,
    /// Restarts of the speaker inside this agent (router id, AS or listen address changed).
    #[serde(default)]
    pub speaker_restarts: u64,
    /// Changes applied to the running speaker in place (settings or peers).
    #[serde(default)]
    pub reconfigurations: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneStatus {
    /// `kernel-ipip`, `bpf-ipip`, or absent without IPIP.
    pub ipip: Option<String>,
    pub routes: usize,
    pub workloads: usize,
    pub last_errors: Vec<String>,
}

/// Everything `brindle node status` can show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub node: String,
    pub version: String,
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub started: i64,
    /// BGP address of the node, `172.20.42.80/22`.
    pub ipv4_address: Option<String>,
    /// IPv6 BGP address of the node, `fd00:20::80/64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    pub bgp: Option<BgpStatus>,
    pub dataplane: DataplaneStatus,
    pub live: bool,
    pub ready: bool,
    /// Why the agent is not ready (Calico's bird-ready text), empty when ready.
    pub ready_detail: String,
    /// Why the datastore cannot be used, while the agent retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_error: Option<String>,
}

/// BIRD's "iso short" time format (BIRD's `timeformat protocol`; `calicoctl node status` copies
/// its `since` column): `HH:MM:SS` when the change was less than 20 hours ago, `YYYY-MM-DD`
/// otherwise, in the local time given by `utc_offset` seconds.
pub fn format_since(since: i64, now: i64, utc_offset: i64) -> String {
    let local = since + utc_offset;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    if now - since < 20 * 3600 {
        format!("{:02}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60)
    } else {
        let (y, m, d) = brindle_model::meta::civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}")
    }
}

/// The local time zone's offset from UTC at `t` (seconds), from the C library (`TZ`,
/// `/etc/localtime`), as BIRD's `strftime` would use.
pub fn local_utc_offset(t: i64) -> i64 {
    let tt: libc::time_t = t as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed struct we own (it reads TZ itself).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&tt, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

/// Seconds since the Unix epoch now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// calicoctl collapses BIRD's padded info text to single spaces.
pub fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `calicoctl node status` (calicoctl's `commands/node/status.go`), byte for byte, given the
/// agent's status and a box table renderer (tablewriter's layout: headers title-cased and centred,
/// 30-column wrap). The agent plays both calico-felix and BIRD: without BGP it prints BIRD's "not
/// running" line.
pub fn render_node_status(
    st: &AgentStatus,
    now: i64,
    utc_offset: i64,
    table: impl Fn(&[&str], &[Vec<String>]) -> String,
) -> String {
    let mut out = String::from("Calico process is running.\n");
    if let Some(e) = &st.datastore_error {
        out.push_str(&format!("Datastore unavailable (retrying): {e}\n"));
    }
    match &st.bgp {
        None => out.push_str("\nThe BGP backend process (BIRD) is not running.\n"),
        Some(b) if b.speaker_down.is_some() => {
            // What calicoctl prints when BIRD is not running, and why.
            out.push_str("\nThe BGP backend process (BIRD) is not running.\n");
            let why = b.speaker_down.as_deref().unwrap_or_default();
            match b.speaker_start_failures {
                0 => out.push_str(&format!("Reason: {why}\n")),
                1 => out.push_str(&format!("Reason: {why} (1 failed start, retrying)\n")),
                n => out.push_str(&format!("Reason: {why} ({n} failed starts, retrying)\n")),
            }
        }
        Some(b) => {
            for (v, peers) in [("4", &b.peers_v4), ("6", &b.peers_v6)] {
                out.push_str(&format!("\nIPv{v} BGP status\n"));
                if peers.is_empty() {
                    out.push_str(&format!("No IPv{v} peers found.\n"));
                    continue;
                }
                let rows: Vec<Vec<String>> = peers
                    .iter()
                    .map(|p| {
                        vec![
                            p.peer_address.clone(),
                            p.peer_type.clone(),
                            p.state.clone(),
                            format_since(p.since, now, utc_offset),
                            collapse_spaces(&p.info),
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    &["Peer address", "Peer type", "State", "Since", "Info"],
                    &rows,
                ));
            }
        }
    }
    out.push('\n');
    out
}

/// The `node status -o json` form: CalicoNodeStatus-like BGP fields (`peersV4`, …,
/// `numberEstablishedV4`).
pub fn to_calico_json(st: &AgentStatus, now: i64, utc_offset: i64) -> serde_json::Value {
    let peers = |ps: &[PeerStatus]| -> Vec<serde_json::Value> {
        ps.iter()
            .map(|p| {
                serde_json::json!({
                    "peerIP": p.peer_address,
                    "type": match p.peer_type.as_str() {
                        "node-to-node mesh" => "NodeMesh",
                        "global" => "GlobalPeer",
                        _ => "NodePeer",
                    },
                    "state": p.state,
                    "since": format_since(p.since, now, utc_offset),
                    "info": collapse_spaces(&p.info),
                })
            })
            .collect()
    };
    let count = |ps: &[PeerStatus], up: bool| ps.iter().filter(|p| p.established == up).count();
    let bgp = st.bgp.as_ref().map(|b| {
        serde_json::json!({
            "numberEstablishedV4": count(&b.peers_v4, true),
            "numberNotEstablishedV4": count(&b.peers_v4, false),
            "numberEstablishedV6": count(&b.peers_v6, true),
            "numberNotEstablishedV6": count(&b.peers_v6, false),
            "peersV4": peers(&b.peers_v4),
            "peersV6": peers(&b.peers_v6),
            "speakerDown": b.speaker_down,
        })
    });
    serde_json::json!({
        "node": st.node,
        "calicoProcess": "running",
        "agent": { "version": st.version, "pid": st.pid, "live": st.live, "ready": st.ready },
        "bgp": bgp,
        "dataplane": st.dataplane,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_a_time_under_20_hours_then_a_date() {
        // 2016-11-21 09:00:00 UTC
        let t = 1_479_718_800;
        assert_eq!(format_since(t, t + 5, 0), "09:00:00");
        assert_eq!(format_since(t, t + 20 * 3600 - 1, 0), "09:00:00");
        assert_eq!(format_since(t, t + 20 * 3600, 0), "2016-11-21");
        assert_eq!(format_since(t, t + 5, 3600), "10:00:00");
        assert_eq!(format_since(0, 100 * 86_400, 0), "1970-01-01");
        assert_eq!(format_since(951_782_400, 1_000_000_000, 0), "2000-02-29");
    }

    #[test]
    fn a_speaker_that_cannot_start_is_reported_with_its_reason() {
        let st = AgentStatus {
            bgp: Some(BgpStatus {
                speaker_down: Some("bgp listen on 0.0.0.0:179: Address already in use".into()),
                speaker_start_failures: 3,
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = render_node_status(&st, 0, 0, |_, _| unreachable!("no table"));
        assert_eq!(
            out,
            "Calico process is running.\n\nThe BGP backend process (BIRD) is not running.\n\
             Reason: bgp listen on 0.0.0.0:179: Address already in use (3 failed starts, retrying)\n\n"
        );
        let json = to_calico_json(&st, 0, 0);
        assert_eq!(
            json["bgp"]["speakerDown"],
            "bgp listen on 0.0.0.0:179: Address already in use"
        );
    }

    #[test]
    fn info_is_collapsed() {
        assert_eq!(
            collapse_spaces("Active        Socket: Connection refused"),
            "Active Socket: Connection refused"
        );
    }
}
