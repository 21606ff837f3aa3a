//! File operations of `install-cni`: what a target holds now (hash and mode), staging a new
//! version next to it (a temporary name in the same directory, written and synced), and
//! committing it with a rename, so a runtime reading the directory sees the old file or the
//! new one, never a partial one.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::Error;

/// SHA-256 of bytes, in hex.
pub fn sha256_bytes(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// SHA-256 of a file's contents, in hex.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// File hashes remembered by inode for one run: the plugin names are hard links to one copy
/// of a large binary, which is then read once.
#[derive(Debug, Default)]
pub struct Hashes {
    seen: std::collections::HashMap<(u64, u64, u64, i64, i64), String>,
}

impl Hashes {
    pub fn of(&mut self, path: &Path, md: &std::fs::Metadata) -> Result<String, Error> {
        let key = (md.dev(), md.ino(), md.size(), md.mtime(), md.mtime_nsec());
        if let Some(h) = self.seen.get(&key) {
            return Ok(h.clone());
        }
        let h = sha256_file(path)?;
        self.seen.insert(key, h.clone());
        Ok(h)
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a target path holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    Missing,
    /// A regular file: its hash and permission bits.
    File {
        sha256: String,
        mode: u32,
    },
    /// A symlink, a directory, a device…: never equal to what is wanted.
    Other,
}

/// Inspects `path` without following a symlink. A file whose size differs from
/// `expected_size` is not hashed (it cannot be equal).
pub fn current(path: &Path, expected_size: Option<u64>, hashes: &mut Hashes) -> Result<Current, Error> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Current::Missing),
        Err(e) => return Err(Error::io("inspect", path, e)),
    };
    if !md.file_type().is_file() {
        return Ok(Current::Other);
    }
    let sha256 = match expected_size {
        Some(n) if n != md.size() => String::new(),
        _ => hashes.of(path, &md)?,
    };
    Ok(Current::File {
        sha256,
        mode: md.mode() & 0o7777,
    })
}

/// The temporary name a new version of `target` is staged under.
pub fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.brindle-tmp-{}", std::process::id()))
}

/// Writes `bytes` to the staging name of `target` with `mode`, synced.
pub fn stage_bytes(target: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, Error> {
    let tmp = temp_name(target);
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let r = f
        .write_all(bytes)
        .and_then(|_| f.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|_| f.sync_all());
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io("write", &tmp, e));
    }
    Ok(tmp)
}

/// Copies `src` to the staging name of `target` with `mode`, synced.
pub fn stage_copy(src: &Path, target: &Path, mode: u32) -> Result<PathBuf, Error> {
    let tmp = temp_name(target);
    let _ = std::fs::remove_file(&tmp);
    let mut from = File::open(src).map_err(|e| Error::io("read", src, e))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    let r = std::io::copy(&mut from, &mut to)
        .and_then(|_| to.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|_| to.sync_all());
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(&format!("copy {} to", src.display()), &tmp, e));
    }
    Ok(tmp)
}

/// Stages `target` as a hard link to an already staged file of the same directory (the
/// plugin names share one copy of the binary), or as a copy where links are refused.
pub fn stage_link(staged: &Path, target: &Path, mode: u32) -> Result<PathBuf, Error> {
    let tmp = temp_name(target);
    let _ = std::fs::remove_file(&tmp);
    match std::fs::hard_link(staged, &tmp) {
        Ok(()) => Ok(tmp),
        Err(_) => stage_copy(staged, target, mode),
    }
}

/// Moves a staged file over its target.
pub fn commit(tmp: &Path, target: &Path) -> Result<(), Error> {
    std::fs::rename(tmp, target).map_err(|e| Error::io(&format!("rename {} to", tmp.display()), target, e))
}

/// Syncs a directory, so renames and removals in it survive a crash.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates `dir` and its missing parents; returns the directories it created, outermost first.
pub fn create_dirs(dir: &Path, mode: u32) -> Result<Vec<PathBuf>, Error> {
    let mut missing = Vec::new();
    let mut p = Some(dir);
    while let Some(d) = p {
        if d.exists() {
            break;
        }
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    missing.reverse();
    for d in &missing {
        std::fs::create_dir(d).map_err(|e| Error::io("create directory", d, e))?;
        let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode));
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_and_commit_replace_atomically() {
        let dir = std::env::temp_dir().join(format!("brindle-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("x.conflist");
        let h = &mut Hashes::default();
        assert_eq!(current(&target, None, h).unwrap(), Current::Missing);
        let tmp = stage_bytes(&target, b"{}", 0o644).unwrap();
        assert!(!target.exists());
        commit(&tmp, &target).unwrap();
        assert_eq!(
            current(&target, None, h).unwrap(),
            Current::File {
                sha256: sha256_bytes(b"{}"),
                mode: 0o644
            }
        );
        let link = dir.join("y");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(current(&link, None, h).unwrap(), Current::Other);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
