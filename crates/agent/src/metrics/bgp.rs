//! Per-peer BGP series, named and labelled like the common BIRD exporter's
//! (`bird_protocol_up{name,proto="BGP",ip_version}`, `bird_protocol_uptime`,
//! `bird_protocol_prefix_import_count`, `bird_protocol_prefix_export_count`,
//! `bird_protocol_prefix_filter_count`) so dashboards made
//! for calico-node's BIRD work; the BGP FSM state and flap count under Brindle's names. Every
//! series also carries `peer_ip` and `peer_type` (CalicoNodeStatus' `NodeMesh`, `GlobalPeer`,
//! `NodePeer`). The BGP thread's own figures ([`SpeakerFigures`]: is the speaker running, its
//! failed starts, restarts and in-place reconfigurations) carry the node's name.

use std::fmt;
use std::time::SystemTime;

use brindle_bgp_speaker::{BgpState, PeerStatus, PeerType, ProtoState};

use super::encode::{Families, Labels};

/// Every FSM state, for the state set (one series per state, 1 for the current one).
const STATES: [BgpState; 6] = [
    BgpState::Idle,
    BgpState::Connect,
    BgpState::Active,
    BgpState::OpenSent,
    BgpState::OpenConfirm,
    BgpState::Established,
];

fn labels(p: &PeerStatus) -> Labels {
    vec![
        ("name", p.name.clone()),
        ("proto", "BGP".into()),
        ("ip_version", if p.address.is_ipv4() { "4" } else { "6" }.into()),
        ("peer_ip", p.address.to_string()),
        (
            "peer_type",
            match p.peer_type {
                PeerType::Mesh => "NodeMesh",
                PeerType::Global => "GlobalPeer",
                PeerType::Node => "NodePeer",
            }
            .into(),
        ),
    ]
}

/// Seconds since the protocol came up (0 while it is not up), as the exporter computes it from
/// BIRD's `since`.
fn uptime(p: &PeerStatus, now: SystemTime) -> f64 {
    match (p.state, p.since) {
        (ProtoState::Up, Some(t)) => now.duration_since(t).map(|d| d.as_secs_f64()).unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Writes the families; `peers` is `None` when the node runs no BGP (nothing is written).
pub(super) fn write(f: &mut Families<'_>, peers: Option<&[PeerStatus]>, now: SystemTime) -> fmt::Result {
    let Some(peers) = peers else { return Ok(()) };
    let each = |v: &dyn Fn(&PeerStatus) -> f64| -> Vec<(Labels, f64)> {
        peers.iter().map(|p| (labels(p), v(p))).collect()
    };
    f.gauge(
        "bird_protocol_up",
        "Protocol is up (BGP session Established).",
        &each(&|p| f64::from(u8::from(p.state == ProtoState::Up))),
    )?;
    f.gauge(
        "bird_protocol_uptime",
        "Uptime of the protocol in seconds.",
        &each(&|p| uptime(p, now)),
    )?;
    f.gauge(
        "bird_protocol_prefix_import_count",
        "Number of imported routes.",
        &each(&|p| p.routes_imported as f64),
    )?;
    f.gauge(
        "bird_protocol_prefix_export_count",
        "Number of exported routes.",
        &each(&|p| p.routes_exported as f64),
    )?;
    f.gauge(
        "bird_protocol_prefix_filter_count",
        "Number of filtered routes (rejected by the peer's import filters).",
        &each(&|p| p.routes_filtered as f64),
    )?;
    f.gauge(
        "brindle_bgp_prefix_stale_count",
        "Imported routes kept through the peer's graceful restart and not refreshed yet.",
        &each(&|p| p.routes_stale as f64),
    )?;
    let states: Vec<(Labels, f64)> = peers
        .iter()
        .flat_map(|p| {
            STATES.iter().map(move |s| {
                let mut l = labels(p);
                l.push(("state", s.name().into()));
                (l, f64::from(u8::from(p.bgp_state == *s)))
            })
        })
        .collect();
    f.gauge(
        "brindle_bgp_session_state",
        "The BGP session's FSM state (RFC 4271 section 8): 1 for the current state.",
        &states,
    )?;
    f.counter(
        "brindle_bgp_session_flaps",
        "Times an Established session with the peer went down.",
        &each(&|p| p.flaps as f64),
    )
}

/// The BGP thread's figures (`crate::bgpthread::SpeakerState`), for a node that runs BGP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeakerFigures {
    /// The speaker runs (false while it should and does not: start failed, restarting).
    pub running: bool,
    pub start_failures: u64,
    pub restarts: u64,
    pub reconfigurations: u64,
}

impl SpeakerFigures {
    pub(super) fn write(&self, f: &mut Families<'_>, node: &str) -> fmt::Result {
        let node = || vec![("node", node.to_string())];
        f.gauge(
            "brindle_bgp_speaker_running",
            "1 while the BGP speaker runs, 0 while it should and does not (start failed, restarting).",
            &[(node(), f64::from(u8::from(self.running)))],
        )?;
        f.counter(
            "brindle_bgp_speaker_start_failures",
            "Failed starts of the BGP speaker (each retried with backoff).",
            &[(node(), self.start_failures as f64)],
        )?;
        f.counter(
            "brindle_bgp_speaker_restarts",
            "Restarts of the BGP speaker (router id, AS or listen address changed).",
            &[(node(), self.restarts as f64)],
        )?;
        f.counter(
            "brindle_bgp_reconfigurations",
            "Changes of BGP settings or peers applied to the running speaker in place.",
            &[(node(), self.reconfigurations as f64)],
        )
    }
}
