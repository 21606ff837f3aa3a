//! Meshes: three Brindle speakers in a Calico node-to-node mesh (each learns the others'
//! blocks, peers change at run time without disturbing the rest), and a mixed mesh with a
//! BIRD node.

mod common;

use std::time::Duration;

use brindle_bgp_speaker::{PeerConfig, ProtoState};
use common::daemons::Bird;
use common::*;

const T: Duration = Duration::from_secs(30);

fn block(i: usize) -> String {
    format!("10.233.{}.0/24", 90 + i)
}

fn mesh_peers(me: usize, n: usize) -> Vec<PeerConfig> {
    (0..n)
        .filter(|j| *j != me)
        .map(|j| PeerConfig {
            hold_time: 9,
            timers: test_timers(),
            ..PeerConfig::mesh(Fabric::addr(me), Fabric::addr(j), AS)
        })
        .collect()
}

#[test]
fn three_brindle_nodes_full_mesh() {
    let fab = Fabric::new(3);
    let nodes: Vec<BrindleNode> = (0..3)
        .map(|i| BrindleNode::start(&fab.nodes[i], Fabric::addr(i)))
        .collect();
    for (i, n) in nodes.iter().enumerate() {
        n.set_peers(mesh_peers(i, 3));
        n.originate(&[&block(i)]);
    }
    let dump = || nodes.iter().map(|n| n.dump()).collect::<Vec<_>>().join("\n");
    // Calico's passive rule: .80 waits for both, .82 connects to both.
    assert!(mesh_peers(0, 3).iter().all(|p| p.passive));
    assert!(mesh_peers(2, 3).iter().all(|p| !p.passive));
    for (i, n) in nodes.iter().enumerate() {
        for j in (0..3).filter(|j| *j != i) {
            let b = block(j);
            let via = Fabric::addr(j);
            wait_for(
                &format!("node {i} learns {b} via {via}"),
                T,
                || n.route_via(&b) == Some(via),
                dump,
            );
        }
        for p in n.status() {
            assert_eq!(
                (p.state, p.info.as_str()),
                (ProtoState::Up, "Established"),
                "{p:?}"
            );
            assert!(p.name.starts_with("Mesh_172_20_42_8"), "{}", p.name);
            assert_eq!(p.peer_type.calico_name(), "node-to-node mesh");
        }
    }

    // Node 0 drops node 2 from its peers: node 1's session is not disturbed.
    let before = nodes[0].peer_status("172.20.42.81");
    nodes[0].set_peers(
        mesh_peers(0, 3)
            .into_iter()
            .filter(|p| p.address != Fabric::addr(2))
            .collect(),
    );
    wait_for(
        "node 2 loses node 0's block",
        T,
        || nodes[2].route_via(&block(0)).is_none(),
        dump,
    );
    wait_for(
        "node 0 loses node 2's block",
        T,
        || nodes[0].route_via(&block(2)).is_none(),
        dump,
    );
    let after = nodes[0].peer_status("172.20.42.81");
    assert_eq!(
        (after.state, after.since),
        (before.state, before.since),
        "the other session was disturbed"
    );
    assert_eq!(nodes[0].route_via(&block(1)), Some(Fabric::addr(1)));
    // Node 2 was told why (Cease / Peer de-configured) and waits.
    let st2 = nodes[2].peer_status("172.20.42.80");
    assert_ne!(st2.state, ProtoState::Up, "{st2:?}");

    // Back again.
    nodes[0].set_peers(mesh_peers(0, 3));
    wait_for(
        "node 0 and node 2 peer again",
        T,
        || nodes[0].route_via(&block(2)).is_some() && nodes[2].route_via(&block(0)).is_some(),
        dump,
    );

    // A withdrawn block disappears everywhere.
    nodes[1].originate(&[]);
    wait_for(
        "block 1 withdrawn everywhere",
        T,
        || nodes[0].route_via(&block(1)).is_none() && nodes[2].route_via(&block(1)).is_none(),
        dump,
    );
}

#[test]
fn mixed_mesh_with_a_bird_node() {
    let fab = Fabric::new(3);
    let b0 = BrindleNode::start(&fab.nodes[0], Fabric::addr(0));
    let b1 = BrindleNode::start(&fab.nodes[1], Fabric::addr(1));
    let bird = Bird::mesh_node(
        &fab.nodes[2],
        "172.20.42.82",
        &["172.20.42.80", "172.20.42.81"],
        &block(2),
    );
    for (i, n) in [&b0, &b1].into_iter().enumerate() {
        n.set_peers(mesh_peers(i, 3));
        n.originate(&[&block(i)]);
    }
    let dump = || format!("{}\n{}\n{}", b0.dump(), b1.dump(), bird.birdc("show protocols"));
    for (i, n) in [&b0, &b1].into_iter().enumerate() {
        for j in (0..3).filter(|j| *j != i) {
            let b = block(j);
            wait_for(
                &format!("brindle node {i} learns {b}"),
                T,
                || n.route_via(&b) == Some(Fabric::addr(j)),
                dump,
            );
        }
    }
    for i in 0..2 {
        let b = block(i);
        wait_for(
            &format!("BIRD learns {b}"),
            T,
            || {
                let out = bird.birdc(&format!("show route {b}"));
                out.contains(&b) && out.contains(&format!("172.20.42.8{i}"))
            },
            dump,
        );
    }
    assert!(
        bird.birdc("show protocols").matches("Established").count() == 2,
        "{}",
        dump()
    );
}
