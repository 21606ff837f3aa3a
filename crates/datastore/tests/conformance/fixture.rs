//! One store of each backend, fresh per test, and what a test needs beyond the trait.

use std::time::Duration;

use brindle_datastore::{
    Datastore, DatastoreConfig, EtcdConfig, EtcdStore, Revision, SqliteConfig, SqliteStore, Watch, WatchEvent,
};
use brindle_testkit::{Etcd, TempDir};

pub enum Fixture {
    // Field order: the store is dropped before the server or directory under it.
    Sqlite {
        store: SqliteStore,
        config: SqliteConfig,
        _dir: TempDir,
    },
    Etcd {
        store: EtcdStore,
        config: EtcdConfig,
        _etcd: Etcd,
    },
}

/// Short timeouts so that failure tests finish quickly; still far above a healthy round trip.
pub fn etcd_config(endpoint: &str) -> EtcdConfig {
    let mut c = EtcdConfig::new([endpoint]);
    c.connect_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(3);
    c
}

impl Fixture {
    pub fn sqlite() -> Fixture {
        let dir = TempDir::new("ds");
        let config = SqliteConfig::new(dir.join("brindle.db"));
        let store = SqliteStore::open(&config).expect("open sqlite store");
        Fixture::Sqlite {
            store,
            config,
            _dir: dir,
        }
    }

    pub fn etcd() -> Fixture {
        let etcd = Etcd::start();
        let config = etcd_config(etcd.endpoint());
        let store = EtcdStore::open(&config).expect("open etcd store");
        Fixture::Etcd {
            store,
            config,
            _etcd: etcd,
        }
    }

    pub fn store(&self) -> &dyn Datastore {
        match self {
            Fixture::Sqlite { store, .. } => store,
            Fixture::Etcd { store, .. } => store,
        }
    }

    /// The configuration, as `open` takes it.
    pub fn config(&self) -> DatastoreConfig {
        match self {
            Fixture::Sqlite { config, .. } => DatastoreConfig::Sqlite(config.clone()),
            Fixture::Etcd { config, .. } => DatastoreConfig::Etcd(config.clone()),
        }
    }

    /// An independent client of the same store (its own connection), as another process has.
    pub fn second_client(&self) -> std::sync::Arc<dyn Datastore> {
        brindle_datastore::open(&self.config()).expect("open a second client")
    }

    /// Drops history before `revision`.
    pub fn compact(&self, revision: Revision) {
        match self {
            Fixture::Sqlite { store, .. } => store.compact(revision),
            Fixture::Etcd { store, .. } => store.compact(revision),
        }
        .expect("compact")
    }
}

/// The next watch item, which must come within 10 s (a hang is a failure, not a slow pass).
pub fn next(w: &Watch) -> brindle_datastore::Result<WatchEvent> {
    match w.recv_timeout(Duration::from_secs(10)) {
        Ok(Some(item)) => item,
        Ok(None) => panic!("no watch event within 10 s"),
        Err(()) => panic!("the watch ended"),
    }
}

/// The next watch item, which must be an event.
pub fn next_event(w: &Watch) -> WatchEvent {
    next(w).unwrap_or_else(|e| panic!("watch error: {e}"))
}
