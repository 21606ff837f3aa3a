//! The exposition's shape: names, types, labels, escaping.

use std::time::{Duration, SystemTime};

use brindle_bgp_speaker::{BgpState, PeerStatus, PeerType, ProtoState};

use super::*;

fn snapshot() -> Snapshot {
    let mut c = Counters::default();
    for (secs, ok) in [(0.004, true), (0.02, true), (3.0, false)] {
        c.cni.observe(&brindle_ctl::report::Report {
            plugin: "brindle".into(),
            command: "ADD".into(),
            seconds: secs,
            ok,
        });
    }
    c.calc_done(0.001);
    c.workloads = 2;
    c.nodes = 3;
    c.sync_state = SyncState::InSync;
    c.datastore_available = true;
    c.kernel_echoes = 7;
    c.kernel_repairs = 1;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let peer = |addr: &str, up: bool| PeerStatus {
        name: format!("Mesh_{}", addr.replace('.', "_")),
        address: addr.parse().unwrap(),
        peer_type: PeerType::Mesh,
        state: if up { ProtoState::Up } else { ProtoState::Start },
        bgp_state: if up {
            BgpState::Established
        } else {
            BgpState::Active
        },
        since: Some(now - Duration::from_secs(90)),
        info: String::new(),
        routes_imported: 1,
        routes_stale: 0,
        routes_filtered: 4,
        routes_exported: 2,
        flaps: 3,
    };
    let ipam = ipam::IpamStats {
        node: "we\"ird\\node\n".into(),
        pool_sizes: [("default-pool".to_string(), 16384.0)].into(),
        by_pool: [(
            "default-pool".to_string(),
            ipam::NodeIpam {
                in_use: 3,
                borrowed: 0,
                blocks: 1,
            },
        )]
        .into(),
        gc: IpamGc::default(),
    };
    Snapshot {
        node: "n1".into(),
        calico_version: "v3.29.0".into(),
        counters: c,
        peers: Some(vec![peer("172.20.42.81", true), peer("172.20.42.82", false)]),
        speaker: Some(SpeakerFigures {
            running: true,
            reconfigurations: 5,
            ..Default::default()
        }),
        ipam: Some(ipam),
        process: ProcessStats::read(),
        live: true,
        ready: true,
        now,
    }
}

fn has(text: &str, line: &str) {
    assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
}

#[test]
fn families_names_and_labels() {
    let text = render(snapshot());
    has(&text, "# TYPE felix_int_dataplane_failures untyped");
    has(&text, "felix_int_dataplane_failures 0");
    has(&text, "felix_active_local_endpoints 2");
    has(&text, "felix_cluster_num_hosts 3");
    has(&text, "felix_resync_state 3");
    has(&text, "# TYPE felix_calc_graph_update_time_seconds histogram");
    has(&text, "felix_calc_graph_update_time_seconds_count 1");
    has(&text, "felix_nft_chains{ip_version=\"4\",table=\"brindle\"} 0");
    let mesh81 = "name=\"Mesh_172_20_42_81\",proto=\"BGP\",ip_version=\"4\",peer_ip=\"172.20.42.81\",peer_type=\"NodeMesh\"";
    has(&text, &format!("bird_protocol_up{{{mesh81}}} 1"));
    has(&text, &format!("bird_protocol_uptime{{{mesh81}}} 90"));
    has(&text, &format!("bird_protocol_prefix_import_count{{{mesh81}}} 1"));
    has(&text, &format!("bird_protocol_prefix_export_count{{{mesh81}}} 2"));
    has(&text, &format!("bird_protocol_prefix_filter_count{{{mesh81}}} 4"));
    has(&text, &format!("brindle_bgp_session_flaps_total{{{mesh81}}} 3"));
    has(
        &text,
        &format!("brindle_bgp_session_state{{{mesh81},state=\"Established\"}} 1"),
    );
    has(
        &text,
        &format!("brindle_bgp_session_state{{{mesh81},state=\"Active\"}} 0"),
    );
    has(
        &text,
        "bird_protocol_uptime{name=\"Mesh_172_20_42_82\",proto=\"BGP\",ip_version=\"4\",peer_ip=\"172.20.42.82\",peer_type=\"NodeMesh\"} 0",
    );
    has(&text, "ipam_ippool_size{ippool=\"default-pool\"} 16384");
    has(&text, "brindle_datastore_available 1");
    has(&text, "brindle_kernel_notifications_total{kind=\"echo\"} 7");
    has(&text, "brindle_kernel_notifications_total{kind=\"repair\"} 1");
    has(&text, "brindle_bgp_speaker_running{node=\"n1\"} 1");
    has(&text, "brindle_bgp_speaker_start_failures_total{node=\"n1\"} 0");
    has(&text, "brindle_bgp_speaker_restarts_total{node=\"n1\"} 0");
    has(&text, "brindle_bgp_reconfigurations_total{node=\"n1\"} 5");
    // Label values are escaped (backslash, quote, newline).
    has(
        &text,
        "ipam_allocations_in_use{ippool=\"default-pool\",node=\"we\\\"ird\\\\node\\n\"} 3",
    );
    let ok = "plugin=\"brindle\",command=\"ADD\",result=\"ok\"";
    for (le, n) in [("0.0025", 0), ("0.005", 1), ("0.025", 2), ("+Inf", 2)] {
        has(
            &text,
            &format!("brindle_cni_call_seconds_bucket{{{ok},le=\"{le}\"}} {n}"),
        );
    }
    has(&text, &format!("brindle_cni_call_seconds_count{{{ok}}} 2"));
    has(&text, "# TYPE process_cpu_seconds_total counter");
    has(
        &text,
        &format!(
            "brindle_build_info{{version=\"{}\",calico_version=\"v3.29.0\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    );
    // Every sample line is `name{labels} value` with a number.
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.rsplit_once(' ').unwrap();
        assert!(!name.is_empty());
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
}

#[test]
fn no_bgp_no_peer_series() {
    let mut s = snapshot();
    s.peers = None;
    s.speaker = None;
    s.ipam = None;
    s.counters.datastore_available = false;
    let text = render(s);
    assert!(!text.contains("bird_protocol_up"));
    // BGP's own lines only with BGP.
    assert!(!text.contains("brindle_bgp_speaker_running"));
    has(&text, "brindle_datastore_available 0");
    assert!(!text.contains("ipam_blocks"));
    assert!(text.contains("felix_resync_state 3"));
}

#[test]
fn the_garbage_collectors_figures_join_this_nodes() {
    // What the collector's leader renders (brindle_ipam::gc::GcMetrics::render's format).
    let gc = IpamGc::parse(concat!(
        "# HELP ipam_allocations_gc_candidates Allocations …\n",
        "# TYPE ipam_allocations_gc_candidates gauge\n",
        "ipam_allocations_gc_candidates{ippool=\"default-pool\",node=\"gone\\\"node\"} 2\n",
        "# TYPE ipam_allocations_gc_reclamations counter\n",
        "ipam_allocations_gc_reclamations{ippool=\"default-pool\",node=\"n2\"} 5\n",
        "# HELP brindle_ipam_gc_leader 1 while this agent holds the lease.\n",
        "# TYPE brindle_ipam_gc_leader gauge\n",
        "brindle_ipam_gc_leader 1\n",
        "# HELP brindle_ipam_gc_passes_total Passes.\n",
        "# TYPE brindle_ipam_gc_passes_total counter\n",
        "brindle_ipam_gc_passes_total 7\n",
    ));
    let mut s = snapshot();
    s.ipam.as_mut().unwrap().gc = gc;
    let text = render(s);
    let here = "ippool=\"default-pool\",node=\"we\\\"ird\\\\node\\n\"";
    has(&text, &format!("ipam_allocations_gc_candidates{{{here}}} 0"));
    has(
        &text,
        "ipam_allocations_gc_candidates{ippool=\"default-pool\",node=\"gone\\\"node\"} 2",
    );
    has(
        &text,
        "ipam_allocations_gc_reclamations{ippool=\"default-pool\",node=\"n2\"} 5",
    );
    has(&text, "brindle_ipam_gc_leader 1");
    has(&text, "brindle_ipam_gc_passes_total 7");
    // Every series the collector has, read from the collector itself.
    let own = IpamGc::from_gc(&brindle_ipam::gc::GcMetrics::default()).own;
    let names: Vec<&str> = own.iter().map(|o| o.0.as_str()).collect();
    assert!(names.contains(&"brindle_ipam_gc_leader"), "{names:?}");
    assert!(
        names.contains(&"brindle_ipam_gc_lease_acquired_total"),
        "{names:?}"
    );
}

#[test]
fn a_speaker_that_cannot_start_is_counted() {
    let mut s = snapshot();
    s.speaker = Some(SpeakerFigures {
        running: false,
        start_failures: 4,
        ..Default::default()
    });
    let text = render(s);
    has(&text, "brindle_bgp_speaker_running{node=\"n1\"} 0");
    has(&text, "brindle_bgp_speaker_start_failures_total{node=\"n1\"} 4");
}
