//! The record of what `install-cni` wrote, kept in the configuration directory, so a re-run
//! removes what it no longer writes (a renamed `CNI_CONF_NAME`, a newly skipped binary) and
//! `--uninstall` removes exactly what was written: each file with the SHA-256 it was written
//! with, so a file someone changed since is left alone.
//!
//! Files are named by place (the bin or the configuration directory, as given on the command
//! line) and name, not by absolute path: the init container sees `/host/opt/cni/bin` where
//! the host sees `/opt/cni/bin`, and either may uninstall. The record's name has no `.conf`,
//! `.conflist` or `.json` extension, so runtimes never load it as a network.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

/// The record's file name in the configuration directory.
pub const RECORD_NAME: &str = ".brindle-install-cni.record";

/// Which directory a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    Bin,
    Conf,
}

/// One written file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub place: Place,
    /// Relative to its place (`brindle`, `10-brindle.conflist`, `brindle-tls/etcd-ca`).
    pub name: String,
    pub sha256: String,
}

/// A directory `install-cni` created (removed on uninstall when empty). An empty name is the
/// place itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Dir {
    pub place: Place,
    pub name: String,
}

/// Everything one install wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub files: Vec<Entry>,
    #[serde(default)]
    pub created_dirs: Vec<Dir>,
}

impl Record {
    /// The record in `conf_dir`, if there is one.
    pub fn load(conf_dir: &Path) -> Result<Option<Record>, Error> {
        let path = conf_dir.join(RECORD_NAME);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read the install record", &path, e)),
        };
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            Error::Config(format!(
                "{}: not an install record ({e}); remove it to start afresh",
                path.display()
            ))
        })
    }

    /// The record's bytes: sorted, no timestamps, so an unchanged install writes nothing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut r = self.clone();
        r.files.sort();
        r.files.dedup();
        r.created_dirs.sort();
        r.created_dirs.dedup();
        let mut out = serde_json::to_vec_pretty(&r).expect("a record serialises");
        out.push(b'\n');
        out
    }

    pub fn entry(&self, place: Place, name: &str) -> Option<&Entry> {
        self.files.iter().find(|e| e.place == place && e.name == name)
    }
}

/// Where a place is for this invocation.
#[derive(Debug, Clone)]
pub struct Places {
    pub bin: PathBuf,
    pub conf: PathBuf,
}

impl Places {
    pub fn dir(&self, place: Place) -> &Path {
        match place {
            Place::Bin => &self.bin,
            Place::Conf => &self.conf,
        }
    }

    pub fn path(&self, place: Place, name: &str) -> PathBuf {
        if name.is_empty() {
            self.dir(place).to_path_buf()
        } else {
            self.dir(place).join(name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_canonical() {
        let e = |n: &str| Entry {
            place: Place::Bin,
            name: n.into(),
            sha256: "00".into(),
        };
        let a = Record {
            files: vec![e("b"), e("a")],
            created_dirs: vec![],
        };
        let b = Record {
            files: vec![e("a"), e("b"), e("a")],
            created_dirs: vec![],
        };
        assert_eq!(a.to_bytes(), b.to_bytes());
        let back: Record = serde_json::from_slice(&a.to_bytes()).unwrap();
        assert_eq!(back.files.len(), 2);
        assert!(
            String::from_utf8(a.to_bytes())
                .unwrap()
                .contains("\"place\": \"bin\"")
        );
    }
}
