//! Route reflection (RFC 4456) in namespaces, Calico's way with the mesh off: two reflectors
//! (speaker processes, one cluster id, non-clients of each other) and ten clients (in-process
//! speakers, each in its own namespace) peering only with the reflectors. Every client learns
//! every other client's block with the originator's next hop; a reflector is killed and the
//! other carries on: tables stay full, a new block still reaches everyone, and the dead
//! reflector's paths go when its restart time runs out.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use brindle_bgp_speaker::PeerConfig;
use common::testd::Testd;
use common::*;

const CLIENTS: usize = 10;
const T: Duration = Duration::from_secs(60);

fn block(i: usize) -> String {
    format!("10.233.{}.0/26", 100 + i)
}

fn rr_addr(r: usize) -> String {
    format!("172.20.42.{}", 80 + CLIENTS + r)
}

/// A reflector's command line: every client as rr-client (its restart time 5 s, so a dead
/// reflector's paths do not linger in the test), the other reflector as a plain iBGP peer.
fn reflector_args(r: usize) -> Vec<String> {
    let me = rr_addr(r);
    let other = rr_addr(1 - r);
    let mut a: Vec<String> = vec![
        "--router-id".into(),
        me.clone(),
        "--as".into(),
        AS.to_string(),
        "--cluster-id".into(),
        "10.255.0.1".into(),
    ];
    for i in 0..CLIENTS {
        a.push("--peer".into());
        a.push(format!("{},rr-client,passive,hold=9,fast,gr=5", Fabric::addr(i)));
    }
    let passive = if brindle_bgp_speaker::mesh_passive(&me, &other) {
        ",passive"
    } else {
        ""
    };
    a.push("--peer".into());
    a.push(format!("{other}{passive},hold=9,fast,gr=5"));
    a
}

fn client_peers() -> Vec<PeerConfig> {
    (0..2)
        .map(|r| PeerConfig {
            hold_time: 9,
            timers: test_timers(),
            ..PeerConfig::new(ip(&rr_addr(r)), AS, brindle_bgp_speaker::PeerType::Global)
        })
        .collect()
}

#[test]
fn two_reflectors_ten_clients() {
    let fab = Fabric::new(CLIENTS + 2);
    let mut reflectors: Vec<Testd> = (0..2)
        .map(|r| {
            let args = reflector_args(r);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Testd::start(&fab.nodes[CLIENTS + r], &args)
        })
        .collect();
    let clients: Vec<BrindleNode> = (0..CLIENTS)
        .map(|i| BrindleNode::start(&fab.nodes[i], Fabric::addr(i)))
        .collect();
    for (i, c) in clients.iter().enumerate() {
        c.set_peers(client_peers());
        c.originate(&[&block(i)]);
    }
    let dump = |clients: &[BrindleNode], reflectors: &[Testd]| {
        let mut s: String = reflectors.iter().map(|r| r.ctl("status")).collect();
        s += &clients[0].dump();
        s
    };
    let full = |c: &BrindleNode, me: usize| {
        (0..CLIENTS)
            .filter(|j| *j != me)
            .all(|j| c.route_via(&block(j)) == Some(Fabric::addr(j)))
    };
    for (i, c) in clients.iter().enumerate() {
        wait_for(
            &format!("client {i} learns every block, next hop its originator"),
            T,
            || full(c, i),
            || dump(&clients, &reflectors),
        );
        assert_eq!(c.routes().len(), CLIENTS - 1);
        // The mesh is off: only the two reflectors as peers.
        assert_eq!(c.status().len(), 2);
    }
    // Both reflectors reflect: each client holds a path from each.
    wait_for(
        "every client has both reflectors' paths",
        T,
        || {
            clients
                .iter()
                .all(|c| c.status().iter().all(|p| p.routes_imported == CLIENTS - 1))
        },
        || dump(&clients, &reflectors),
    );

    // One reflector dies. Clients keep full tables (its paths as stale, the other's fresh).
    reflectors[0].kill9();
    let dead: IpAddr = ip(&rr_addr(0));
    std::thread::sleep(Duration::from_secs(1));
    for (i, c) in clients.iter().enumerate() {
        assert!(full(c, i), "client {i} lost routes: {}", c.dump());
    }
    // The survivor carries a new block to everyone.
    clients[0].originate(&[&block(0), "10.233.200.0/26"]);
    for (i, c) in clients.iter().enumerate().skip(1) {
        wait_for(
            &format!("client {i} learns the new block through the survivor"),
            T,
            || c.route_via("10.233.200.0/26") == Some(Fabric::addr(0)),
            || dump(&clients, &reflectors),
        );
    }
    // After the dead reflector's restart time (5 s) its paths are gone; tables stay full,
    // all through the survivor.
    for (i, c) in clients.iter().enumerate() {
        wait_for(
            &format!("client {i} drops the dead reflector's paths"),
            Duration::from_secs(20),
            || {
                c.status()
                    .iter()
                    .find(|p| p.address == dead)
                    .is_some_and(|p| p.routes_imported == 0)
            },
            || dump(&clients, &reflectors),
        );
        assert!(full(c, i), "client {i}: {}", c.dump());
        assert!(
            c.routes().values().all(|r| r.peer == ip(&rr_addr(1))),
            "client {i}: {}",
            c.dump()
        );
    }
    // A withdrawal also goes through the survivor.
    clients[1].originate(&[]);
    for (i, c) in clients.iter().enumerate().filter(|(i, _)| *i != 1) {
        wait_for(
            &format!("client {i} loses block 1"),
            T,
            || c.route_via(&block(1)).is_none(),
            || dump(&clients, &reflectors),
        );
    }
}
