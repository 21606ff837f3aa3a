//! An in-memory [`Datastore`] for the pure unit tests of the allocator, with a way to inject a
//! concurrent writer just before one of our writes (so that our compare-and-swap genuinely
//! loses and the retry path runs). The real backends are tested in `tests/`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use brindle_datastore::{
    Compare, Datastore, Error, KeyValue, Listing, Op, Read, ReadResult, Result, Revision, Snapshot,
    TxnOutcome, Watch,
};

/// The raw state a racer may change.
pub struct State {
    rev: Revision,
    data: BTreeMap<String, (Vec<u8>, Revision)>,
}

impl State {
    /// Writes a key as another client would (bumping the store revision).
    pub fn put(&mut self, key: &str, value: Vec<u8>) {
        self.rev += 1;
        self.data.insert(key.to_string(), (value, self.rev));
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(|(v, _)| v.as_slice())
    }

    pub fn remove(&mut self, key: &str) {
        self.rev += 1;
        self.data.remove(key);
    }
}

type Racer = Box<dyn FnMut(&str, &mut State) -> bool + Send>;

/// In-memory store. `racers` run before each write; one returning `true` has fired and is
/// dropped.
pub struct MemStore {
    state: Mutex<(State, Vec<Racer>)>,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore {
            state: Mutex::new((
                State {
                    rev: 0,
                    data: BTreeMap::new(),
                },
                Vec::new(),
            )),
        }
    }

    /// Adds a racer: called with the key of every write before it happens.
    pub fn race(&self, f: impl FnMut(&str, &mut State) -> bool + Send + 'static) {
        self.state.lock().unwrap().1.push(Box::new(f));
    }

    /// A snapshot of every key and value (for "nothing changed" assertions).
    pub fn dump(&self) -> BTreeMap<String, Vec<u8>> {
        let g = self.state.lock().unwrap();
        g.0.data
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    fn write<T>(&self, key: &str, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut g = self.state.lock().unwrap();
        let (state, racers) = &mut *g;
        let mut i = 0;
        while i < racers.len() {
            if (racers[i])(key, state) {
                drop(racers.remove(i));
            } else {
                i += 1;
            }
        }
        f(state)
    }
}

fn conflict(key: &str, expected: Revision, actual: Revision) -> Error {
    Error::Conflict {
        store: "mem".into(),
        key: key.into(),
        expected,
        actual,
    }
}

impl Datastore for MemStore {
    fn describe(&self) -> String {
        "mem".into()
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let g = self.state.lock().unwrap();
        Ok(g.0.data.get(key).map(|(v, r)| KeyValue {
            key: key.to_string(),
            value: v.clone(),
            revision: *r,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Listing> {
        let g = self.state.lock().unwrap();
        Ok(Listing {
            items: g
                .0
                .data
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, (v, r))| KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                    revision: *r,
                })
                .collect(),
            revision: g.0.rev,
        })
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<Revision> {
        self.write(key, |s| {
            if s.data.contains_key(key) {
                return Err(Error::AlreadyExists {
                    store: "mem".into(),
                    key: key.into(),
                });
            }
            s.put(key, value.to_vec());
            Ok(s.rev)
        })
    }

    fn update(&self, key: &str, value: &[u8], expected: Revision) -> Result<Revision> {
        self.write(key, |s| match s.data.get(key) {
            None => Err(Error::NotFound {
                store: "mem".into(),
                key: key.into(),
            }),
            Some((_, r)) if *r != expected => Err(conflict(key, expected, *r)),
            Some(_) => {
                s.put(key, value.to_vec());
                Ok(s.rev)
            }
        })
    }

    fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Revision> {
        self.write(key, |s| match s.data.get(key) {
            None => Err(Error::NotFound {
                store: "mem".into(),
                key: key.into(),
            }),
            Some((_, r)) if expected.is_some_and(|e| e != *r) => Err(conflict(key, expected.unwrap(), *r)),
            Some(_) => {
                s.remove(key);
                Ok(s.rev)
            }
        })
    }

    fn read(&self, reads: &[Read]) -> Result<Snapshot> {
        let revision = self.state.lock().unwrap().0.rev;
        let mut results = Vec::new();
        for r in reads {
            results.push(match r {
                Read::Get(k) => ReadResult::Get(self.get(k)?),
                Read::List(p) => ReadResult::List(self.list(p)?.items),
            });
        }
        Ok(Snapshot { results, revision })
    }

    fn txn(&self, compares: &[Compare], ops: &[Op]) -> Result<TxnOutcome> {
        let key = ops.first().map(Op::key).unwrap_or_default();
        self.write(key, |s| {
            let found: Vec<Compare> = compares
                .iter()
                .map(|c| Compare::new(c.key.clone(), s.data.get(&c.key).map(|(_, r)| *r).unwrap_or(0)))
                .collect();
            if found.iter().zip(compares).any(|(f, c)| f.revision != c.revision) {
                return Ok(TxnOutcome::Failed(found));
            }
            for op in ops {
                match op {
                    Op::Put { key, value } => s.put(key, value.clone()),
                    Op::Delete { key } if s.data.contains_key(key) => s.remove(key),
                    Op::Delete { .. } => {}
                }
            }
            Ok(TxnOutcome::Committed(s.rev))
        })
    }

    fn watch(&self, _prefix: &str, _from: Revision) -> Result<Watch> {
        Err(Error::Unavailable {
            store: "mem".into(),
            detail: "watch is not implemented by the test store".into(),
        })
    }
}
