//! Every compare-and-swap failure path: the error, its text (store and key named), and that the
//! stored value did not change.

use std::sync::Arc;

use brindle_datastore::{Datastore, Error, retry_on_conflict};

use crate::fixture::Fixture;

const K: &str = "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26";

fn names_store_and_key(s: &dyn Datastore, e: &Error) {
    let text = e.to_string();
    assert!(text.contains(&s.describe()), "{text:?} does not name the store");
    assert!(text.contains(K), "{text:?} does not name the key");
}

pub fn create_on_an_existing_key_fails_and_changes_nothing(f: &mut Fixture) {
    let s = f.store();
    let r = s.create(K, b"first").unwrap();
    let e = s.create(K, b"second").unwrap_err();
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert!(e.is_conflict());
    names_store_and_key(s, &e);
    let kv = s.get(K).unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.revision), (&b"first"[..], r));
}

pub fn update_with_a_stale_revision_conflicts(f: &mut Fixture) {
    let s = f.store();
    let r1 = s.create(K, b"1").unwrap();
    let r2 = s.update(K, b"2", r1).unwrap();
    let e = s.update(K, b"3", r1).unwrap_err();
    match &e {
        Error::Conflict { expected, actual, .. } => assert_eq!((*expected, *actual), (r1, r2)),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(e.is_conflict());
    names_store_and_key(s, &e);
    assert_eq!(s.get(K).unwrap().unwrap().value, b"2");
    // A revision that never existed conflicts too, as does 0.
    assert!(s.update(K, b"3", r2 + 1000).unwrap_err().is_conflict());
    assert!(s.update(K, b"3", 0).unwrap_err().is_conflict());
    assert_eq!(s.get(K).unwrap().unwrap().revision, r2);
}

pub fn update_or_delete_of_a_missing_key_is_not_found(f: &mut Fixture) {
    let s = f.store();
    for e in [
        s.update(K, b"x", 1).unwrap_err(),
        s.update(K, b"x", 0).unwrap_err(),
        s.delete(K, None).unwrap_err(),
        s.delete(K, Some(1)).unwrap_err(),
    ] {
        assert!(e.is_not_found(), "{e:?}");
        names_store_and_key(s, &e);
    }
    assert_eq!(s.get(K).unwrap(), None, "update must not create");
}

pub fn delete_with_a_stale_revision_conflicts(f: &mut Fixture) {
    let s = f.store();
    let r1 = s.create(K, b"1").unwrap();
    let r2 = s.update(K, b"2", r1).unwrap();
    let e = s.delete(K, Some(r1)).unwrap_err();
    assert!(
        matches!(e, Error::Conflict { expected, actual, .. } if expected == r1 && actual == r2),
        "{e:?}"
    );
    names_store_and_key(s, &e);
    assert_eq!(s.get(K).unwrap().unwrap().revision, r2);
    s.delete(K, Some(r2)).unwrap();
}

/// A key deleted and created again is a new object: the old revision no longer matches.
pub fn recreated_key_does_not_match_the_old_revision(f: &mut Fixture) {
    let s = f.store();
    let r1 = s.create(K, b"old").unwrap();
    s.delete(K, None).unwrap();
    let r3 = s.create(K, b"new").unwrap();
    assert!(matches!(s.update(K, b"x", r1), Err(Error::Conflict { actual, .. }) if actual == r3));
    assert!(matches!(s.delete(K, Some(r1)), Err(Error::Conflict { actual, .. }) if actual == r3));
    assert_eq!(s.get(K).unwrap().unwrap().value, b"new");
}

/// Threads of one process and a second client racing read-modify-write loops lose no update.
pub fn racing_increments_lose_nothing(f: &mut Fixture) {
    f.store().create("/counter", b"0").unwrap();
    let clients: Vec<Arc<dyn Datastore>> = vec![f.second_client(), f.second_client()];
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s: &dyn Datastore = if t < 2 { f.store() } else { clients[t - 2].as_ref() };
            scope.spawn(move || {
                for _ in 0..100 {
                    retry_on_conflict(1000, || {
                        let kv = s.get("/counter")?.expect("counter exists");
                        let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                        s.update("/counter", (n + 1).to_string().as_bytes(), kv.revision)
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(f.store().get("/counter").unwrap().unwrap().value, b"400");
}

/// A read-modify-write that keeps losing gives up after its attempts with the last conflict,
/// which names the store and the key; nothing is written.
pub fn retries_give_up_with_the_last_conflict(f: &mut Fixture) {
    let s = f.store();
    let r1 = s.create(K, b"1").unwrap();
    let mut attempts = 0;
    let e = retry_on_conflict(3, || {
        attempts += 1;
        // Someone else writes between our read and our write, every time.
        let read = s.get(K)?.unwrap().revision;
        s.update(K, b"theirs", read)?;
        s.update(K, b"ours", read)
    })
    .unwrap_err();
    assert_eq!(attempts, 3);
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    names_store_and_key(s, &e);
    let kv = s.get(K).unwrap().unwrap();
    assert_eq!(kv.value, b"theirs");
    assert!(kv.revision > r1);
}
