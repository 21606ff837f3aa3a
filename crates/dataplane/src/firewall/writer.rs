//! [`TableWriter`]: the one writer of Brindle's tables in a namespace. It remembers what it
//! committed, so a change is planned against that and only what differs goes to the kernel
//! (one transaction). When the kernel refuses (somebody changed the tables behind its back)
//! or when asked to check, it reads the tables back, plans against what is really there and
//! commits the repair guarded by the ruleset generation it read, so a repair never undoes a
//! change it has not seen. It never reads or touches another table.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brindle_netlink::nftables::{ERESTART, Nft, NftMonitor, TableFamily};
use brindle_netlink::{NetnsFd, Result};

use super::content::{Content, Key, TableContent};
use super::plan::{Changes, Scope, plan};

/// Brindle's table families.
pub const FAMILIES: [TableFamily; 2] = [TableFamily::Ip, TableFamily::Ip6];

/// What a write or a check did.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub changes: Changes,
    /// The kernel was read back (first write, a refusal, a check that found a new generation).
    pub read_back: bool,
    /// A refusal of the incremental transaction that a read-back then repaired.
    pub refused: Option<String>,
    pub took: Duration,
    /// Where the time went.
    pub timings: Timings,
}

/// The parts of a write's time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Rendering what is wanted (filled in by the caller that renders).
    pub render: Duration,
    /// Reading the tables back.
    pub read: Duration,
    /// Planning and encoding the transaction.
    pub plan: Duration,
    /// The kernel's commit (one `sendmsg` and its acknowledgement).
    pub commit: Duration,
}

/// The writer of one namespace's Brindle tables.
pub struct TableWriter {
    nft: Nft,
    table: String,
    /// What the kernel holds, as far as this writer knows (`None` before the first read).
    programmed: Option<Content>,
    /// The ruleset generation that `programmed` was true at.
    generation: Option<u32>,
}

impl TableWriter {
    /// A writer for the tables named `table` in `netns` (reads nothing yet).
    pub fn open(netns: &NetnsFd, table: &str) -> Result<TableWriter> {
        Ok(TableWriter {
            nft: Nft::open(netns)?,
            table: table.to_string(),
            programmed: None,
            generation: None,
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Changes to Brindle's tables made by anyone but this writer.
    pub fn monitor(&self) -> Result<NftMonitor> {
        NftMonitor::open(self.nft.netns(), &FAMILIES, &self.table, &[self.nft.portid()])
    }

    /// The netlink socket (for reads, e.g. dumps in status commands).
    pub fn nft(&mut self) -> &mut Nft {
        &mut self.nft
    }

    /// Writes the objects in `dirty` as `want` has them, in one transaction planned against
    /// what this writer last committed. If the kernel refuses it, the tables are read back
    /// and fully repaired instead.
    pub fn write(&mut self, want: &Content, dirty: &BTreeSet<Key>) -> Result<Written> {
        let t0 = Instant::now();
        let Some(have) = &self.programmed else {
            return self.sync(want);
        };
        let (batch, changes) = plan(&self.table, have, want, Scope::Keys(dirty));
        let mut timings = Timings {
            plan: t0.elapsed(),
            ..Timings::default()
        };
        if batch.is_empty() {
            return Ok(Written {
                took: t0.elapsed(),
                timings,
                ..Written::default()
            });
        }
        let t1 = Instant::now();
        match self.nft.commit(&batch, None) {
            Ok(()) => {
                timings.commit = t1.elapsed();
                let have = self.programmed.as_mut().expect("checked above");
                update(have, want, &changes.touched);
                self.generation = self.nft.generation().ok().map(|g| g.id);
                Ok(Written {
                    changes,
                    took: t0.elapsed(),
                    timings,
                    ..Written::default()
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "nftables transaction refused; reading the tables back to repair them");
                let mut w = self.sync(want)?;
                w.refused = Some(e.to_string());
                w.took = t0.elapsed();
                Ok(w)
            }
        }
    }

    /// Reads the tables back and commits whatever makes them `want` (guarded by the
    /// generation read, retried if somebody commits in between).
    pub fn sync(&mut self, want: &Content) -> Result<Written> {
        let t0 = Instant::now();
        let mut tries = 0;
        loop {
            let t = Instant::now();
            let g = self.nft.generation()?.id;
            let have = self.read()?;
            let mut timings = Timings {
                read: t.elapsed(),
                ..Timings::default()
            };
            let t = Instant::now();
            let (batch, changes) = plan(&self.table, &have, want, Scope::All);
            timings.plan = t.elapsed();
            if batch.is_empty() {
                self.programmed = Some(want.clone());
                self.generation = Some(g);
                return Ok(Written {
                    changes,
                    read_back: true,
                    took: t0.elapsed(),
                    timings,
                    ..Written::default()
                });
            }
            let t = Instant::now();
            match self.nft.commit(&batch, Some(g)) {
                Ok(()) => {
                    timings.commit = t.elapsed();
                    self.programmed = Some(want.clone());
                    self.generation = self.nft.generation().ok().map(|g| g.id);
                    return Ok(Written {
                        changes,
                        read_back: true,
                        took: t0.elapsed(),
                        timings,
                        ..Written::default()
                    });
                }
                Err(e) if e.errno() == Some(ERESTART) && tries < 5 => tries += 1,
                Err(e) => {
                    self.programmed = None;
                    return Err(e);
                }
            }
        }
    }

    /// The reconciler's check: when the ruleset generation moved since this writer's last
    /// look (or with `force`), read the tables back and repair them.
    pub fn check(&mut self, want: &Content, force: bool) -> Result<Written> {
        if !force && self.programmed.is_some() {
            let g = self.nft.generation()?.id;
            if Some(g) == self.generation {
                return Ok(Written::default());
            }
        }
        self.sync(want)
    }

    /// What the kernel holds in Brindle's tables.
    pub fn read(&mut self) -> Result<Content> {
        let mut c = Content::new();
        for f in FAMILIES {
            if let Some(d) = self.nft.list_table(f, &self.table)? {
                c.insert(f, TableContent::from_dump(d));
            }
        }
        Ok(c)
    }

    /// Forgets what was committed: the next write reads the tables back first.
    pub fn forget(&mut self) {
        self.programmed = None;
        self.generation = None;
    }
}

/// Copies the `touched` objects of `want` into `have` (they were just committed).
fn update(have: &mut Content, want: &Content, touched: &BTreeSet<Key>) {
    for k in touched {
        match k {
            // Created empty (its objects are keys of their own) or deleted with everything.
            Key::Table(f) => {
                if want.contains_key(f) {
                    have.entry(*f).or_default();
                } else {
                    have.remove(f);
                }
            }
            Key::Chain(f, name) => {
                let w = want.get(f).and_then(|t| t.chains.get(name)).map(Arc::clone);
                let h = have.entry(*f).or_default();
                match w {
                    Some(c) => {
                        h.chains.insert(name.clone(), c);
                    }
                    None => {
                        h.chains.remove(name);
                    }
                }
            }
            Key::Set(f, name) => {
                let w = want.get(f).and_then(|t| t.sets.get(name)).map(Arc::clone);
                let h = have.entry(*f).or_default();
                match w {
                    Some(s) => {
                        h.sets.insert(name.clone(), s);
                    }
                    None => {
                        h.sets.remove(name);
                    }
                }
            }
        }
    }
}
