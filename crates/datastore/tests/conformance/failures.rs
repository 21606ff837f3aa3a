//! A store that cannot be reached or used: clear errors naming it, promptly, never a panic.

use std::sync::Arc;

use brindle_datastore::{Datastore, DatastoreConfig, Error, SqliteConfig, open};
use brindle_testkit::privilege::{NOBODY, with_file_access_of};
use brindle_testkit::{Etcd, TempDir};

use crate::fixture::{etcd_config, next, next_event};

fn unavailable_naming(result: brindle_datastore::Result<Arc<dyn Datastore>>, name: &str) -> String {
    match result {
        Err(e @ Error::Unavailable { .. }) => {
            let text = e.to_string();
            eprintln!("{text}");
            assert!(text.contains(name), "{text:?} does not name {name}");
            text
        }
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(s) => panic!("{} opened", s.describe()),
    }
}

/// SQLite: the file's directory cannot exist (its parent is a regular file).
pub fn sqlite_unreachable() {
    let dir = TempDir::new("ds");
    std::fs::write(dir.join("file"), b"").unwrap();
    let path = dir.join("file/sub/brindle.db");
    let text = unavailable_naming(open(&DatastoreConfig::sqlite(&path)), &path.display().to_string());
    assert!(text.contains("cannot create directory"), "{text}");
}

/// etcd: nothing listens on the endpoint. Fails within the connect timeout, naming it.
pub fn etcd_unreachable() {
    let endpoint = format!("http://127.0.0.1:{}", brindle_testkit::port::free_tcp());
    unavailable_naming(open(&DatastoreConfig::Etcd(etcd_config(&endpoint))), &endpoint);
}

/// SQLite: the file belongs to root with mode 0600; an unprivileged user is refused by name.
pub fn sqlite_permission_denied() {
    let dir = TempDir::new("ds");
    let path = dir.join("brindle.db");
    let config = DatastoreConfig::Sqlite(SqliteConfig::new(&path));
    open(&config).unwrap().create("/k", b"v").unwrap();
    let text = with_file_access_of(NOBODY, NOBODY, || {
        unavailable_naming(open(&config), &path.display().to_string())
    });
    assert!(text.contains("Permission denied"), "{text}");
    // The directory is not writable for the user either: creating a new store there fails too.
    let other = dir.join("new.db");
    let text = with_file_access_of(NOBODY, NOBODY, || {
        unavailable_naming(
            open(&DatastoreConfig::sqlite(&other)),
            &other.display().to_string(),
        )
    });
    assert!(text.contains("Permission denied"), "{text}");
}

/// etcd: with authentication on, a wrong password is refused at open, and a user limited to a
/// prefix is refused outside it; each error names the store (and key).
pub fn etcd_permission_denied() {
    let etcd = Etcd::start();
    etcd.enable_auth("rootpw", "brindle", "secret", "/allowed/");
    let mut config = etcd_config(etcd.endpoint());
    config.username = Some("brindle".into());
    config.password = Some(brindle_datastore::Secret("wrong".into()));
    match open(&DatastoreConfig::Etcd(config.clone())) {
        Err(e @ Error::Config { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(etcd.endpoint()) && text.contains("authentication failed"),
                "{text}"
            );
        }
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("opened with a wrong password"),
    }
    config.password = Some(brindle_datastore::Secret("secret".into()));
    let s = open(&DatastoreConfig::Etcd(config)).unwrap();
    let r = s.create("/allowed/k", b"v").unwrap();
    assert_eq!(s.get("/allowed/k").unwrap().unwrap().revision, r);
    for e in [
        s.create("/calico/k", b"v").unwrap_err(),
        s.get("/calico/k").unwrap_err(),
    ] {
        let text = e.to_string();
        assert!(
            text.contains(etcd.endpoint())
                && text.contains("/calico/k")
                && text.contains("permission denied"),
            "{text}"
        );
    }
}

/// etcd: the member goes away mid-session. Calls fail with Unavailable within the request
/// timeout; once it is back, calls work again and a watch reports the outage once and resumes
/// exactly after the last event it delivered.
pub fn etcd_member_restart() {
    let mut etcd = Etcd::start();
    let config = DatastoreConfig::Etcd(etcd_config(etcd.endpoint()));
    let s = open(&config).unwrap();
    let w = s.watch("/w/", 0).unwrap();
    let r1 = s.create("/w/a", b"1").unwrap();
    assert_eq!(next_event(&w).revision, r1);

    etcd.stop();
    let e = s.get("/w/a").unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
    assert!(
        e.to_string().contains(etcd.endpoint()) && e.to_string().contains("/w/a"),
        "{e}"
    );
    etcd.restart();

    // The client reconnects by itself.
    let r2 = retry_unavailable(|| s.create("/w/b", b"2"));
    let mut items = Vec::new();
    loop {
        match next(&w) {
            Ok(ev) => {
                items.push(ev);
                break;
            }
            Err(e) => assert!(e.is_unavailable(), "only outage reports before the event: {e:?}"),
        }
    }
    assert_eq!(items[0].key, "/w/b");
    assert_eq!(items[0].revision, r2, "nothing replayed, nothing skipped");
    let r3 = s.create("/w/c", b"3").unwrap();
    assert_eq!(next_event(&w).revision, r3);
}

fn retry_unavailable<T>(mut f: impl FnMut() -> brindle_datastore::Result<T>) -> T {
    for _ in 0..50 {
        match f() {
            Ok(v) => return v,
            Err(e) if e.is_unavailable() => std::thread::sleep(std::time::Duration::from_millis(100)),
            Err(e) => panic!("{e}"),
        }
    }
    panic!("still unavailable after 50 tries")
}
