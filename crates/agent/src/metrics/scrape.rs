//! Answering one `/metrics` query: the main loop hands over its counters and status, this
//! gathers the rest (the speaker's peers, this node's IPAM figures from the datastore, off the
//! runtime's thread) and renders.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use brindle_datastore::Datastore;
use tokio::sync::oneshot;

use super::{Counters, IpamGc, IpamStats, ProcessStats, Snapshot, SpeakerFigures, ipam, render};
use crate::bgpthread::SpeakerState;
use brindle_ctl::status::AgentStatus;

/// What the main loop has when asked.
pub struct Input {
    /// The status without peers and readiness ([`crate::run::complete_status`] adds them).
    pub status: AgentStatus,
    pub speaker: SpeakerState,
    pub started: i64,
    pub counters: Counters,
    /// `None` while startup has not reached the datastore.
    pub ds: Option<Arc<dyn Datastore>>,
}

/// This node's IPAM figures from the datastore (pools and every block).
pub fn load_ipam(ds: &Arc<dyn Datastore>, node: &str, gc: IpamGc) -> Result<IpamStats, String> {
    let pools = brindle_ipam::resources::list_pools(&**ds).map_err(|e| format!("list IP pools: {e}"))?;
    let blocks: Vec<_> = brindle_ipam::Ipam::new(ds.clone())
        .blocks()
        .map_err(|e| format!("list IPAM blocks: {e}"))?
        .into_iter()
        .map(|b| b.value)
        .collect();
    Ok(ipam::compute(&pools, &blocks, node, gc))
}

/// Gathers, renders and answers.
pub async fn answer(input: Input, tx: oneshot::Sender<String>) {
    let Input {
        status,
        speaker,
        started,
        counters,
        ds,
    } = input;
    let bgp = status.bgp.is_some();
    let peers = match (&speaker.handle, bgp) {
        (Some(h), true) => tokio::time::timeout(Duration::from_secs(2), h.status())
            .await
            .ok()
            .and_then(|r| r.ok()),
        _ => None,
    };
    let st = crate::run::complete_status(status, speaker, started).await;
    let node = st.node.clone();
    let gc = counters
        .ipam_gc
        .as_deref()
        .map(IpamGc::from_gc)
        .unwrap_or_default();
    // The collector's own figures are in memory: they are shown even when the datastore
    // cannot be read for this node's.
    let gc_only = counters
        .ipam_gc
        .is_some()
        .then(|| ipam::compute(&[], &[], &node, gc.clone()));
    let ipam = match ds {
        None => gc_only,
        Some(ds) => match tokio::task::spawn_blocking(move || load_ipam(&ds, &node, gc)).await {
            Ok(Ok(i)) => Some(i),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "metrics: no IPAM figures from the datastore this scrape");
                gc_only
            }
            Err(_) => gc_only,
        },
    };
    let speaker = st.bgp.as_ref().map(|b| SpeakerFigures {
        running: b.speaker_down.is_none(),
        start_failures: b.speaker_start_failures,
        restarts: b.speaker_restarts,
        reconfigurations: b.reconfigurations,
    });
    let snap = Snapshot {
        node: st.node.clone(),
        calico_version: st.version.clone(),
        counters,
        peers: bgp.then(|| peers.unwrap_or_default()),
        speaker,
        ipam,
        process: ProcessStats::read(),
        live: st.live,
        ready: st.ready,
        now: SystemTime::now(),
    };
    if let Ok(text) = tokio::task::spawn_blocking(move || render(snap)).await {
        let _ = tx.send(text);
    }
}
