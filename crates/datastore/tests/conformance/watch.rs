//! Watch from a revision: replay, live changes from another client, resume, compaction,
//! prefixes.

use std::time::Duration;

use brindle_datastore::{Error, EventKind, WatchEvent};

use crate::fixture::{Fixture, next, next_event};

fn put(key: &str, value: &[u8], revision: i64) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Put,
        key: key.into(),
        value: Some(value.to_vec()),
        revision,
    }
}

fn del(key: &str, revision: i64) -> WatchEvent {
    WatchEvent {
        kind: EventKind::Delete,
        key: key.into(),
        value: None,
        revision,
    }
}

pub fn watch_replays_history_from_a_revision(f: &mut Fixture) {
    let s = f.store();
    let base = s.list("/w/").unwrap().revision;
    let r1 = s.create("/w/a", b"1").unwrap();
    s.create("/other/x", b"-").unwrap();
    let r3 = s.update("/w/a", b"2", r1).unwrap();
    let r4 = s.create("/w/b", b"3").unwrap();
    let r5 = s.delete("/w/a", None).unwrap();
    let w = s.watch("/w/", base + 1).unwrap();
    assert_eq!(next_event(&w), put("/w/a", b"1", r1));
    assert_eq!(next_event(&w), put("/w/a", b"2", r3));
    assert_eq!(next_event(&w), put("/w/b", b"3", r4));
    assert_eq!(next_event(&w), del("/w/a", r5));
    // Nothing else is pending: the next event is the next write.
    let r6 = s.create("/w/z", b"4").unwrap();
    assert_eq!(next_event(&w), put("/w/z", b"4", r6));
    // A watch from a later revision starts there.
    let w = s.watch("/w/", r4).unwrap();
    assert_eq!(next_event(&w), put("/w/b", b"3", r4));
}

/// `from = 0` is "from now"; changes made by another client (another process) arrive.
pub fn watch_sees_live_changes_from_another_client(f: &mut Fixture) {
    let s = f.store();
    s.create("/w/before", b"0").unwrap();
    let w = s.watch("/w/", 0).unwrap();
    let other = f.second_client();
    let mut expected = Vec::new();
    for i in 0..20 {
        let key = format!("/w/k{i}");
        let r = other.create(&key, b"v").unwrap();
        expected.push(put(&key, b"v", r));
    }
    let r = other.delete("/w/before", None).unwrap();
    expected.push(del("/w/before", r));
    for e in expected {
        assert_eq!(next_event(&w), e);
    }
}

/// A consumer that stops and watches again from its last revision + 1 gets each change once.
pub fn watch_resumes_after_the_last_delivered_revision(f: &mut Fixture) {
    let s = f.store();
    let base = s.list("/w/").unwrap().revision;
    let revs: Vec<i64> = (0..6)
        .map(|i| s.create(&format!("/w/{i}"), b"v").unwrap())
        .collect();
    let w = s.watch("/w/", base + 1).unwrap();
    let seen: Vec<WatchEvent> = (0..3).map(|_| next_event(&w)).collect();
    drop(w);
    assert_eq!(seen.iter().map(|e| e.revision).collect::<Vec<_>>(), &revs[..3]);
    let w = s.watch("/w/", seen[2].revision + 1).unwrap();
    for (i, r) in revs.iter().enumerate().skip(3) {
        assert_eq!(next_event(&w), put(&format!("/w/{i}"), b"v", *r));
    }
    let last = s.create("/w/last", b"v").unwrap();
    assert_eq!(next_event(&w).revision, last);
}

/// History before the compaction point is gone: a watch from there is told so (and ends); a
/// watch from the compaction point itself still works.
pub fn watch_from_a_compacted_revision_reports_compacted(f: &mut Fixture) {
    let s = f.store();
    let revs: Vec<i64> = (0..6)
        .map(|i| s.create(&format!("/w/{i}"), b"v").unwrap())
        .collect();
    f.compact(revs[3]);
    let w = s.watch("/w/", revs[2]).unwrap();
    match next(&w) {
        Err(Error::Compacted {
            requested,
            oldest,
            prefix,
            ..
        }) => {
            assert_eq!((requested, oldest, prefix.as_str()), (revs[2], revs[3], "/w/"));
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(
        matches!(w.recv_timeout(Duration::from_secs(10)), Err(())),
        "the stream must end after Compacted"
    );
    let w = s.watch("/w/", revs[3]).unwrap();
    for (i, r) in revs.iter().enumerate().skip(3) {
        assert_eq!(next_event(&w), put(&format!("/w/{i}"), b"v", *r));
    }
}

pub fn watch_filters_by_prefix(f: &mut Fixture) {
    let s = f.store();
    let base = s.list("").unwrap().revision;
    let a = s
        .create("/calico/ipam/v2/host/n1/ipv4/block/10.65.0.0-26", b"a")
        .unwrap();
    let b = s.create("/calico/ipam/v2/handle/h1", b"b").unwrap();
    let c = s
        .create("/calico/ipam/v2/host/n10/ipv4/block/10.65.0.64-26", b"c")
        .unwrap();
    let host1 = s.watch("/calico/ipam/v2/host/n1/", base + 1).unwrap();
    let all = s.watch("", base + 1).unwrap();
    assert_eq!(next_event(&host1).revision, a);
    for r in [a, b, c] {
        assert_eq!(next_event(&all).revision, r);
    }
    let d = s
        .create("/calico/ipam/v2/host/n1/ipv4/block/10.65.1.0-26", b"d")
        .unwrap();
    assert_eq!(
        next_event(&host1).revision,
        d,
        "n10's block must not reach n1's watch"
    );
}

/// A watch from a revision not reached yet waits for it.
pub fn watch_from_a_future_revision_waits(f: &mut Fixture) {
    let s = f.store();
    let now = s.list("/w/").unwrap().revision;
    let w = s.watch("/w/", now + 3).unwrap();
    let revs: Vec<i64> = (0..4)
        .map(|i| s.create(&format!("/w/{i}"), b"v").unwrap())
        .collect();
    assert_eq!(revs[2], now + 3);
    assert_eq!(next_event(&w).revision, revs[2]);
    assert_eq!(next_event(&w).revision, revs[3]);
}
