//! Multi-key reads and transactions: one snapshot, all-or-nothing writes, failed conditions
//! reported with the revisions found, read-modify-write as of what was read, and a guard key
//! making a check over a whole prefix exclusive.

use std::sync::Arc;

use brindle_datastore::{Compare, Datastore, Op, Read, ReadResult, TxnOutcome};

use crate::fixture::Fixture;

const A: &str = "/calico/t/a";
const B: &str = "/calico/t/b";
const GUARD: &str = "/calico/t/guard";

pub fn read_sees_one_snapshot(f: &mut Fixture) {
    let s = f.store();
    let ra = s.create(A, b"1").unwrap();
    s.create("/calico/t/list/x", b"x").unwrap();
    let rl = s.create("/calico/t/list/y", b"y").unwrap();
    s.create("/calico/t/listz", b"not under the prefix").unwrap();
    let snap = s
        .read(&[
            Read::Get(A.into()),
            Read::List("/calico/t/list/".into()),
            Read::Get(B.into()),
        ])
        .unwrap();
    assert_eq!(snap.revision, s.list("/").unwrap().revision);
    assert_eq!(
        snap.get(0).map(|kv| (kv.value.as_slice(), kv.revision)),
        Some((&b"1"[..], ra))
    );
    let listed: Vec<(&str, i64)> = snap
        .list(1)
        .iter()
        .map(|kv| (kv.key.as_str(), kv.revision))
        .collect();
    assert_eq!(listed, [("/calico/t/list/x", rl - 1), ("/calico/t/list/y", rl)]);
    assert_eq!(snap.results[2], ReadResult::Get(None));
    assert_eq!(snap.revision_of(2), 0);
    assert_eq!(s.read(&[]).unwrap().results, []);
}

pub fn read_lists_past_a_page(f: &mut Fixture) {
    let s = f.store();
    // More than one etcd page (500 keys), so the listing continues at the snapshot's revision.
    for i in 0..1203 {
        s.create(&format!("/calico/t/many/{i:05}"), b"v").unwrap();
    }
    let snap = s
        .read(&[Read::List("/calico/t/many/".into()), Read::Get(A.into())])
        .unwrap();
    let keys: Vec<&str> = snap.list(0).iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys.len(), 1203);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "not in key order");
    assert_eq!(keys[1202], "/calico/t/many/01202");
}

pub fn txn_writes_all_or_nothing(f: &mut Fixture) {
    let s = f.store();
    let ra = s.create(A, b"1").unwrap();
    // Conditions hold: a put, a create and a delete (of a missing key too) land together.
    let out = s
        .txn(
            &[Compare::new(A, ra), Compare::absent(B)],
            &[
                Op::put(A, "2"),
                Op::put(B, "new"),
                Op::delete("/calico/t/missing"),
            ],
        )
        .unwrap();
    let TxnOutcome::Committed(rev) = out else {
        panic!("{out:?}")
    };
    assert_eq!(rev, s.list("/").unwrap().revision);
    let a = s.get(A).unwrap().unwrap();
    let b = s.get(B).unwrap().unwrap();
    assert_eq!((a.value.as_slice(), b.value.as_slice()), (&b"2"[..], &b"new"[..]));
    assert!(a.revision > ra && b.revision <= rev && a.revision <= rev);

    // One stale condition: nothing is written, and the revisions found are reported in order.
    let before = s.list("/").unwrap();
    let out = s
        .txn(
            &[
                Compare::new(A, ra),
                Compare::new(B, b.revision),
                Compare::absent("/calico/t/c"),
            ],
            &[Op::put(A, "3"), Op::delete(B), Op::put("/calico/t/c", "c")],
        )
        .unwrap();
    assert_eq!(
        out,
        TxnOutcome::Failed(vec![
            Compare::new(A, a.revision),
            Compare::new(B, b.revision),
            Compare::absent("/calico/t/c"),
        ])
    );
    let after = s.list("/").unwrap();
    assert_eq!(after.items, before.items);
    assert_eq!(
        after.revision, before.revision,
        "a failed transaction took a revision"
    );

    // "Must not exist" fails on an existing key; a delete in a transaction removes it.
    assert!(matches!(
        s.txn(&[Compare::absent(A)], &[Op::put(A, "x")]).unwrap(),
        TxnOutcome::Failed(_)
    ));
    let out = s.txn(&[Compare::new(B, b.revision)], &[Op::delete(B)]).unwrap();
    assert!(matches!(out, TxnOutcome::Committed(_)), "{out:?}");
    assert_eq!(s.get(B).unwrap(), None);
}

pub fn read_modify_write_decides_on_what_it_read(f: &mut Fixture) {
    let s = f.store();
    s.create(A, b"5").unwrap();
    // `None` leaves the store alone.
    let before = s.list("/").unwrap().revision;
    let out = s
        .read_modify_write(&[Read::Get(A.into())], 10, &mut |_| None)
        .unwrap();
    assert_eq!(out, None);
    assert_eq!(s.list("/").unwrap().revision, before);
    // A write based on the value read.
    let rev = s
        .read_modify_write(&[Read::Get(A.into()), Read::Get(B.into())], 10, &mut |snap| {
            let n: u64 = std::str::from_utf8(&snap.get(0)?.value).ok()?.parse().ok()?;
            assert!(snap.get(1).is_none());
            Some(vec![Op::put(A, (n * 2).to_string()), Op::put(B, "made")])
        })
        .unwrap()
        .expect("committed");
    assert_eq!(s.get(A).unwrap().unwrap().value, b"10");
    assert_eq!(s.get(B).unwrap().unwrap().revision, rev);
}

/// 6 threads, each with its own client, × 25 read-modify-write increments: none lost.
pub fn racing_read_modify_writes_lose_nothing(f: &mut Fixture) {
    f.store().create(A, b"0").unwrap();
    let clients: Vec<Arc<dyn Datastore>> = (0..6).map(|_| f.second_client()).collect();
    std::thread::scope(|scope| {
        for c in &clients {
            scope.spawn(move || {
                for _ in 0..25 {
                    c.read_modify_write(&[Read::Get(A.into())], 1000, &mut |snap| {
                        let n: u64 = std::str::from_utf8(&snap.get(0)?.value).ok()?.parse().ok()?;
                        Some(vec![Op::put(A, (n + 1).to_string())])
                    })
                    .unwrap()
                    .expect("committed");
                }
            });
        }
    });
    assert_eq!(f.store().get(A).unwrap().unwrap().value, b"150");
}

/// The guard-key pattern: every writer lists the prefix with the guard and writes only if the
/// prefix is empty, rewriting the guard. Of 8 racing writers exactly one succeeds.
pub fn a_guard_key_makes_a_prefix_check_exclusive(f: &mut Fixture) {
    let clients: Vec<Arc<dyn Datastore>> = (0..8).map(|_| f.second_client()).collect();
    let won: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                scope.spawn(move || {
                    let reads = [Read::Get(GUARD.into()), Read::List("/calico/t/one/".into())];
                    let out = c
                        .read_modify_write(&reads, 1000, &mut |snap| {
                            snap.list(1).is_empty().then(|| {
                                vec![
                                    Op::put(format!("/calico/t/one/{i}"), "mine"),
                                    Op::put(GUARD, format!("writer {i}")),
                                ]
                            })
                        })
                        .unwrap();
                    usize::from(out.is_some())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(won, 1);
    assert_eq!(f.store().list("/calico/t/one/").unwrap().items.len(), 1);
}
