//! What the soak watches besides pings: every node's mesh sessions (from the agent's control
//! socket, what `brindle node status` prints) and every agent's resident memory.

use std::collections::BTreeMap;

use brindle_lab::Lab;

/// (node, peer address) → the session's state-change time (Unix seconds), for mesh sessions.
pub type Sessions = BTreeMap<(String, String), i64>;

/// A node's speaker counters: (restarts, in-place reconfigurations, failed starts).
pub type Counters = BTreeMap<String, (u64, u64, u64)>;

/// Every node's node-to-node mesh sessions, its speaker's counters, and what is not
/// Established (or not running).
pub fn mesh_sessions(lab: &Lab) -> (Sessions, Counters, Vec<String>) {
    let mut since = Sessions::new();
    let mut counters = Counters::new();
    let mut down = Vec::new();
    for n in &lab.plan().nodes {
        let st = match brindle_ctl::control::query_status(&lab.dir().ctl_socket(&n.name)) {
            Ok(st) => st,
            Err(e) => {
                down.push(format!("{}: status: {e}", n.name));
                continue;
            }
        };
        let Some(bgp) = st.bgp else {
            down.push(format!("{}: no BGP", n.name));
            continue;
        };
        if let Some(why) = &bgp.speaker_down {
            down.push(format!("{}: speaker down: {why}", n.name));
        }
        counters.insert(
            n.name.clone(),
            (
                bgp.speaker_restarts,
                bgp.reconfigurations,
                bgp.speaker_start_failures,
            ),
        );
        for p in bgp.peers_v4.iter().filter(|p| p.peer_type == "node-to-node mesh") {
            since.insert((n.name.clone(), p.peer_address.clone()), p.since);
            if !p.established {
                down.push(format!(
                    "{} -> {}: {} {}",
                    n.name, p.peer_address, p.state, p.info
                ));
            }
        }
    }
    (since, counters, down)
}

/// Sessions whose state-change time moved (or that vanished) between two samples.
pub fn flapped(before: &Sessions, after: &Sessions) -> Vec<String> {
    before
        .iter()
        .filter(|(k, t)| after.get(*k) != Some(*t))
        .map(|((n, p), t)| {
            format!(
                "{n} -> {p}: since {t} -> {:?}",
                after.get(&(n.clone(), p.clone()))
            )
        })
        .collect()
}

/// Every agent's RSS in KiB, by node (pids from the lab's state file; `None` once dead).
pub fn agent_rss(lab: &Lab) -> BTreeMap<String, Option<u64>> {
    lab.plan()
        .nodes
        .iter()
        .map(|n| {
            let role = brindle_lab::state::agent_role(&n.name);
            let rss = lab
                .state()
                .process(&role)
                .filter(|p| p.is_alive())
                .map(|p| brindle_testkit::process::rss_kib(p.pid as u32));
            (n.name.clone(), rss)
        })
        .collect()
}
