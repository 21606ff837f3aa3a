//! RFC 7606 with a raw peer: hand-built malformed UPDATEs sent over TCP from a namespace to a
//! speaker process. The session survives attribute discard and treat-as-withdraw (routes
//! withdrawn exactly where the RFC says), each error is logged with the peer and the
//! offending attribute, and what the RFC still resets (a malformed MP_REACH_NLRI, a second
//! MP_UNREACH_NLRI, an NLRI that cannot be parsed) gets the right NOTIFICATION.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use brindle_bgp_wire::capability::Capability;
use brindle_bgp_wire::{Ctx, Family, Open, OutMessage};
use common::testd::Testd;
use common::*;

const T: Duration = Duration::from_secs(20);
const ORIGIN: [u8; 4] = [0x40, 1, 1, 0];
const PATH: [u8; 3] = [0x40, 2, 0];
const NH: [u8; 7] = [0x40, 3, 4, 172, 20, 42, 81];

fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(t);
    v.extend_from_slice(body);
    v
}

/// An UPDATE: withdrawn routes, attributes (concatenated), NLRI (already encoded).
fn update(withdrawn: &[u8], attrs: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

/// `10.N.0.0/24` as NLRI.
fn p24(n: u8) -> [u8; 4] {
    [24, 10, n, 0]
}

/// A BGP peer written by hand: OPEN, KEEPALIVE, then whatever bytes the test sends; what it
/// receives is framed on a thread.
struct RawPeer {
    s: TcpStream,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl RawPeer {
    fn connect(ns: &brindle_testkit::Netns) -> RawPeer {
        let s = ns
            .spawn_in(|| TcpStream::connect("172.20.42.80:179"))
            .join()
            .unwrap()
            .expect("connect to the speaker");
        let open = Open::new(
            64512,
            90,
            Ipv4Addr::new(172, 20, 42, 81),
            vec![Capability::MultiProtocol(Family::IPV4_UNICAST)],
        );
        let mut w = s.try_clone().unwrap();
        w.write_all(&OutMessage::Open(open).to_bytes(&Ctx::default()))
            .unwrap();
        w.write_all(&msg(4, &[])).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut r = s.try_clone().unwrap();
        std::thread::spawn(move || {
            loop {
                let mut h = [0u8; 19];
                if r.read_exact(&mut h).is_err() {
                    return;
                }
                let len = u16::from_be_bytes([h[16], h[17]]) as usize;
                let mut m = h.to_vec();
                m.resize(len, 0);
                if r.read_exact(&mut m[19..]).is_err() || tx.send(m).is_err() {
                    return;
                }
            }
        });
        let p = RawPeer { s, rx };
        // Their OPEN and KEEPALIVE: Established.
        assert_eq!(p.next_of_type(1)[18], 1);
        p.next_of_type(4);
        p
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.s.write_all(&msg(4, &[])).unwrap();
    }

    /// The next received message of type `t` (others skipped).
    fn next_of_type(&self, t: u8) -> Vec<u8> {
        loop {
            let m = self
                .rx
                .recv_timeout(T)
                .unwrap_or_else(|_| panic!("no message of type {t} within {T:?}"));
            if m[18] == t {
                return m;
            }
        }
    }
}

fn speaker(ns: &brindle_testkit::Netns) -> Testd {
    Testd::start(
        ns,
        &[
            "--router-id",
            "172.20.42.80",
            "--as",
            "64512",
            "--peer",
            "172.20.42.81,passive,hold=90,fast",
        ],
    )
}

#[test]
fn session_survives_where_the_rfc_says() {
    let fab = Fabric::new(2);
    let testd = speaker(&fab.nodes[0]);
    let mut peer = RawPeer::connect(&fab.nodes[1]);
    let via = "172.20.42.81";
    let has = |n: u8| testd.has_route(&format!("10.{n}.0.0/24"), via);
    let dump = || testd.dump();

    // Valid routes first.
    peer.send(&update(
        &[],
        &[&ORIGIN, &PATH, &NH],
        &[p24(1), p24(2), p24(3)].concat(),
    ));
    wait_for("valid routes in", T, || has(1) && has(2) && has(3), dump);

    // Treat-as-withdraw (§7.8): 10.1 re-announced with a malformed COMMUNITIES: withdrawn.
    peer.send(&update(
        &[],
        &[&ORIGIN, &PATH, &NH, &[0xc0, 8, 3, 0, 0, 0]],
        &p24(1),
    ));
    wait_for("10.1 treated as withdrawn", T, || !has(1), dump);
    // Missing ORIGIN (§3 d): 10.2 withdrawn too.
    peer.send(&update(&[], &[&PATH, &NH], &p24(2)));
    wait_for("10.2 treated as withdrawn", T, || !has(2), dump);
    // The last attribute overruns the field (§4): withdrawn, NLRI still found.
    peer.send(&update(&[], &[&ORIGIN, &PATH, &NH, &[0xc0, 8, 9, 0, 0]], &p24(3)));
    wait_for("10.3 treated as withdrawn", T, || !has(3), dump);
    // Attribute discard (§7.6): a malformed ATOMIC_AGGREGATE is dropped, the route stands.
    peer.send(&update(&[], &[&ORIGIN, &PATH, &NH, &[0x40, 6, 1, 0]], &p24(4)));
    wait_for("10.4 in despite a bad ATOMIC_AGGREGATE", T, || has(4), dump);
    // A repeated attribute (§3 g): the first one counts, the route stands.
    peer.send(&update(
        &[],
        &[
            &ORIGIN,
            &PATH,
            &NH,
            &[0x80, 4, 4, 0, 0, 0, 1],
            &[0x80, 4, 4, 0, 0, 0, 2],
        ],
        &p24(5),
    ));
    wait_for("10.5 in despite a duplicate MED", T, || has(5), dump);
    // The session never went down, and each error is in the log with the peer and the
    // attribute.
    assert!(testd.established(), "{}", dump());
    let log = testd.log();
    for (attr, action) in [
        ("Some(8)", "treat-as-withdraw"),
        ("Some(1)", "treat-as-withdraw"),
        ("Some(6)", "attribute-discard"),
        ("Some(4)", "attribute-discard"),
    ] {
        assert!(
            log.lines().any(|l| l.contains("RFC 7606")
                && l.contains("peer=172.20.42.81")
                && l.contains(&format!("attr_type={attr}"))
                && l.contains(&format!("action=\"{action}\""))),
            "no log line for attribute {attr} ({action}):\n{log}"
        );
    }
    assert!(
        log.contains("attr_flags=Some(\"0xc0\")") && log.contains("attr_length=Some(3)"),
        "{log}"
    );

    // What still resets: a malformed MP_REACH_NLRI (§7.11) → NOTIFICATION 3/9.
    let bad_mp = [0x80u8, 14, 10, 0, 2, 1, 5, 1, 2, 3, 4, 5, 0];
    peer.send(&update(&[], &[&bad_mp, &ORIGIN, &PATH], &[]));
    let n = peer.next_of_type(3);
    assert_eq!((n[19], n[20]), (3, 9), "{n:?}");
    wait_for("session reset", T, || !testd.established(), dump);
}

#[test]
fn what_still_resets_the_session() {
    for (name, bytes, sub) in [
        (
            "second MP_UNREACH_NLRI (§3 g)",
            update(&[], &[&[0x80, 15, 3, 0, 2, 1], &[0x80, 15, 3, 0, 2, 1]], &[]),
            1,
        ),
        (
            "withdrawn routes length overruns the UPDATE",
            msg(2, &[0, 9, 0, 0]),
            1,
        ),
        (
            "NLRI that cannot be parsed (§5.3)",
            update(&[], &[&ORIGIN, &PATH, &NH], &[33, 10, 1, 2, 3, 4]),
            10,
        ),
        (
            "treat-as-withdraw with no NLRI to withdraw (§5.2)",
            update(&[], &[&ORIGIN, &PATH, &NH, &[0xc0, 8, 3, 0, 0, 0]], &[]),
            5,
        ),
    ] {
        let fab = Fabric::new(2);
        let testd = speaker(&fab.nodes[0]);
        let mut peer = RawPeer::connect(&fab.nodes[1]);
        wait_for("Established", T, || testd.established(), || testd.dump());
        peer.send(&bytes);
        let n = peer.next_of_type(3);
        assert_eq!((n[19], n[20]), (3, sub), "{name}: {n:?}");
    }
}
