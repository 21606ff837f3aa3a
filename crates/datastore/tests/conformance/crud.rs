//! get / list / create / update / delete, revisions, and the trait's calling contexts.

use brindle_datastore::{Error, KeyValue};

use crate::fixture::Fixture;

const POOLS: &str = "/calico/resources/v3/projectcalico.org/ippools/";
const P1: &str = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";
const P2: &str = "/calico/resources/v3/projectcalico.org/ippools/pool-b";

pub fn create_get_list_update_delete(f: &mut Fixture) {
    let s = f.store();
    assert_eq!(s.get(P1).unwrap(), None);
    let empty = s.list(POOLS).unwrap();
    assert!(empty.items.is_empty());

    let v1 = br#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","spec":{"cidr":"10.65.0.0/16"}}"#;
    let r1 = s.create(P1, v1).unwrap();
    assert!(
        r1 > empty.revision,
        "create revision {r1} after listing revision {}",
        empty.revision
    );
    assert_eq!(
        s.get(P1).unwrap(),
        Some(KeyValue {
            key: P1.into(),
            value: v1.to_vec(),
            revision: r1
        })
    );
    let r2 = s.create(P2, b"{}").unwrap();
    assert!(r2 > r1);
    // Neighbours that share a textual prefix but not the directory.
    s.create("/calico/resources/v3/projectcalico.org/ippoolsx/z", b"{}")
        .unwrap();
    s.create("/calico/ipam/v2/config", b"{}").unwrap();

    let listing = s.list(POOLS).unwrap();
    let keys: Vec<_> = listing.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, [P1, P2]);
    assert_eq!(listing.items[0].revision, r1);
    assert_eq!(listing.items[1].revision, r2);
    assert!(
        listing.revision > r2,
        "listing revision is the store's, after the last write"
    );

    let r3 = s.update(P1, b"{\"v\":2}", r1).unwrap();
    assert!(r3 > listing.revision);
    let kv = s.get(P1).unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.revision), (&b"{\"v\":2}"[..], r3));

    let r4 = s.delete(P1, Some(r3)).unwrap();
    assert!(r4 > r3);
    assert_eq!(s.get(P1).unwrap(), None);
    let r5 = s.delete(P2, None).unwrap();
    assert!(r5 > r4);
    assert!(s.list(POOLS).unwrap().items.is_empty());
    let all = s.list("").unwrap();
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/calico/ipam/v2/config",
            "/calico/resources/v3/projectcalico.org/ippoolsx/z"
        ]
    );
    assert_eq!(all.revision, r5);
}

pub fn keys_sort_bytewise_and_prefixes_are_exact(f: &mut Fixture) {
    let s = f.store();
    let keys = [
        "/a/bb", "/a/b/é", "/a/b", "/a/c", "/a/b0", "/a/b/", "/a/b/c", "/a/b/Z",
    ];
    for k in keys {
        s.create(k, k.as_bytes()).unwrap();
    }
    let names = |prefix: &str| -> Vec<String> {
        s.list(prefix)
            .unwrap()
            .items
            .into_iter()
            .map(|kv| kv.key)
            .collect()
    };
    assert_eq!(names("/a/b/"), ["/a/b/", "/a/b/Z", "/a/b/c", "/a/b/é"]);
    assert_eq!(
        names("/a/b"),
        ["/a/b", "/a/b/", "/a/b/Z", "/a/b/c", "/a/b/é", "/a/b0", "/a/bb"]
    );
    assert_eq!(names("/a/b/é"), ["/a/b/é"]);
    assert_eq!(names("/z"), Vec::<String>::new());
    for kv in s.list("/a/").unwrap().items {
        assert_eq!(kv.value, kv.key.as_bytes(), "value of {}", kv.key);
    }
}

pub fn values_are_stored_byte_exact(f: &mut Fixture) {
    let s = f.store();
    let binary: Vec<u8> = (0..=255u8).cycle().take(256 * 1024).collect();
    let r = s.create("/bin", &binary).unwrap();
    assert_eq!(s.get("/bin").unwrap().unwrap().value, binary);
    s.update("/bin", b"", r).unwrap();
    assert_eq!(s.get("/bin").unwrap().unwrap().value, b"");
}

/// More keys than one etcd page (500): the listing is complete, ordered, at one revision.
pub fn large_listings_are_complete(f: &mut Fixture) {
    let s = f.store();
    let mut last = 0;
    for i in 0..1234 {
        last = s
            .create(&format!("/calico/ipam/v2/handle/h{i:05}"), b"{}")
            .unwrap();
    }
    s.create("/calico/ipam/v2/hostX", b"{}").unwrap();
    let listing = s.list("/calico/ipam/v2/handle/").unwrap();
    assert_eq!(listing.items.len(), 1234);
    assert!(listing.items.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(listing.items[1233].key, "/calico/ipam/v2/handle/h01233");
    assert!(listing.revision > last);
}

/// Every successful write takes the next store revision; failed ones take none.
pub fn revisions_are_store_wide_and_failed_writes_take_none(f: &mut Fixture) {
    let s = f.store();
    let a = s.create("/r/a", b"1").unwrap();
    let b = s.create("/r/b", b"1").unwrap();
    assert_eq!(b, a + 1);
    assert!(s.create("/r/a", b"2").is_err());
    assert!(s.update("/r/a", b"2", b).is_err());
    assert!(s.delete("/r/missing", None).is_err());
    let c = s.update("/r/a", b"2", a).unwrap();
    assert_eq!(c, b + 1);
    let d = s.delete("/r/b", Some(b)).unwrap();
    assert_eq!(d, c + 1);
    assert_eq!(s.list("/r/").unwrap().revision, d);
}

/// A second client (another connection, as another process has) sees the same data, and
/// `open` builds a working store from the configuration.
pub fn clients_share_one_store(f: &mut Fixture) {
    let other = f.second_client();
    let r = f.store().create("/shared", b"x").unwrap();
    assert_eq!(other.get("/shared").unwrap().unwrap().revision, r);
    let r2 = other.update("/shared", b"y", r).unwrap();
    assert_eq!(f.store().get("/shared").unwrap().unwrap().value, b"y");
    assert!(
        matches!(f.store().update("/shared", b"z", r), Err(Error::Conflict { actual, .. }) if actual == r2)
    );
    assert_eq!(other.describe(), f.store().describe());
}

/// The trait is synchronous but must not panic when called from inside a tokio runtime (the
/// agent's async parts may call it, e.g. from `spawn_blocking` or a current-thread runtime).
pub fn callable_from_inside_a_tokio_runtime(f: &mut Fixture) {
    let s = f.store();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async { s.create("/in-runtime", b"1").unwrap() });
    let got = rt.block_on(async { s.get("/in-runtime").unwrap().unwrap() });
    assert_eq!(got.revision, r);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::task::block_in_place(|| s.update("/in-runtime", b"2", r).unwrap());
    });
}

/// Compacting all history (up to the current revision) loses no data and the counter goes on.
pub fn compaction_keeps_data_and_the_revision_counter(f: &mut Fixture) {
    let s = f.store();
    let r1 = s.create("/c/a", b"1").unwrap();
    let r2 = s.update("/c/a", b"2", r1).unwrap();
    let r3 = s.create("/c/b", b"3").unwrap();
    f.compact(r3);
    let s = f.store();
    let listing = s.list("/c/").unwrap();
    assert_eq!(listing.revision, r3);
    assert_eq!(
        listing.items.iter().map(|kv| kv.revision).collect::<Vec<_>>(),
        [r2, r3]
    );
    assert_eq!(s.update("/c/a", b"4", r2).unwrap(), r3 + 1);
}
