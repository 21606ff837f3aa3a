//! The cluster picture (`brindle_agent::view`) rendered by Debian's headless Chromium: the seed
//! lab's state (3 nodes, both ends of 3 mesh sessions up, one /24 block per node with its pods)
//! drawn from a snapshot file and from the agent's HTTP server (the page fetching `view.json`),
//! the DOM checked and a screenshot kept in the test's output directory
//! (`target/tmp/view_chromium/`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use brindle_agent::http::{Limits, Routes, serve};
use brindle_agent::server::Query;
use brindle_agent::view::{BlockEntry, ClusterView, NodeEntry, PodEntry, PoolEntry, SessionEntry, page};
use brindle_testkit::tmp::TempDir;

const NODES: [(&str, &str, &str); 3] = [
    ("bgp-master1", "172.20.42.80", "10.233.94.0/24"),
    ("bgp-node1", "172.20.42.81", "10.233.65.0/24"),
    ("bgp-node2", "172.20.42.82", "10.233.113.0/24"),
];

fn seed() -> ClusterView {
    let nodes = NODES
        .iter()
        .map(|(name, ip, cidr)| {
            let base = cidr.trim_end_matches(".0/24");
            let pods = (1..=2)
                .map(|i| PodEntry {
                    namespace: "default".into(),
                    name: format!("{name}-pod{i}"),
                    ip: format!("{base}.{i}"),
                    node: name.to_string(),
                    interface: format!("cali{i}{}", &name[..3]),
                })
                .collect();
            NodeEntry {
                name: name.to_string(),
                address: format!("{ip}/22"),
                asn: "64512".into(),
                agent: None,
                not_asked: false,
                blocks: vec![BlockEntry {
                    cidr: cidr.to_string(),
                    pool: "default-pool".into(),
                    capacity: 256,
                    in_use: 3,
                    pods,
                    other: vec![format!("{base}.0 ipipTunnelAddress")],
                }],
            }
        })
        .collect();
    let mut sessions = Vec::new();
    for (name, _, _) in NODES {
        for (peer, ip, _) in NODES.iter().filter(|(p, _, _)| *p != name) {
            sessions.push(SessionEntry {
                node: name.to_string(),
                peer_address: ip.to_string(),
                peer_node: Some(peer.to_string()),
                peer_type: "node-to-node mesh".into(),
                state: "up".into(),
                info: "Established".into(),
                established: true,
            });
        }
    }
    ClusterView {
        title: "lab seed".into(),
        generated: "2026-12-07T16:00:00Z".into(),
        pools: vec![PoolEntry {
            name: "default-pool".into(),
            cidr: "10.233.64.0/18".into(),
        }],
        nodes,
        sessions,
    }
}

/// Where the screenshots stay after the test.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("view_chromium");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page's DOM in headless Chromium, with a screenshot in `shot`.
fn chromium(url: &str, shot: &Path) -> String {
    brindle_testkit::chromium::dom_and_screenshot(url, shot)
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

/// What the seed lab's picture must show.
fn check_seed(dom: &str) {
    assert!(dom.contains("Brindle: lab seed"), "title not drawn:\n{dom}");
    assert!(
        dom.contains("3 nodes, 6 of 6 session ends up, 3 blocks, 6 pods"),
        "summary:\n{dom}"
    );
    assert_eq!(count(dom, "<g class=\"node "), 3, "node groups:\n{dom}");
    for (name, ip, cidr) in NODES {
        assert!(
            dom.contains(&format!("<article class=\"card\" data-node=\"{name}\"")),
            "{name} card"
        );
        assert_eq!(
            count(dom, &format!("data-cidr=\"{cidr}\"")),
            2,
            "{cidr}: drawn and listed"
        );
        // Both ends of each session touching this node, coloured up.
        assert_eq!(
            count(
                dom,
                &format!("data-peer=\"{ip}\" data-peer-node=\"{name}\" data-state=\"up\"")
            ),
            2,
            "sessions towards {name}"
        );
        for i in 1..=2 {
            assert!(
                dom.contains(&format!("data-pod=\"{name}-pod{i}\"")),
                "{name}-pod{i}"
            );
        }
    }
    assert_eq!(count(dom, "class=\"session up\""), 6, "session lines:\n{dom}");
    assert_eq!(count(dom, "class=\"session down\""), 0);
}

#[test]
fn snapshot_page_shows_the_seed_lab() {
    let dir = TempDir::new("view");
    let file = dir.join("seed.html");
    std::fs::write(&file, page(Some(&seed()))).unwrap();
    let shot = output_dir().join("snapshot.png");
    let dom = chromium(&format!("file://{}", file.display()), &shot);
    assert!(dom.contains(">snapshot<"), "mode:\n{dom}");
    check_seed(&dom);
}

#[test]
fn served_page_fetches_the_state_from_the_agent() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Query>(16);
        tokio::spawn(async move {
            while let Some(q) = rx.recv().await {
                if let Query::View(reply) = q {
                    let _ = reply.send(Ok(seed()));
                }
            }
        });
        let limits = Limits {
            header_timeout: Duration::from_secs(5),
            ..Limits::default()
        };
        let routes = Routes {
            health: true,
            metrics: false,
        };
        tokio::spawn(serve(listener, routes, tx, limits));
        addr
    });
    let shot = output_dir().join("served.png");
    let dom = chromium(&format!("http://{addr}/view"), &shot);
    assert!(dom.contains(">live, every 5 s<"), "mode:\n{dom}");
    check_seed(&dom);
    drop(rt);
}
