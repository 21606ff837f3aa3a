//! An append-only log file capped in size: when a line would take it past the cap it is
//! renamed `<file>.1` (`.1` → `.2` …, the oldest beyond the count removed, as are rotated files
//! older than the age limit) and a new file is started. What Calico's CNI plugin gets from
//! lumberjack (`log_file_max_size`, `log_file_max_count`, `log_file_max_age`).
//!
//! Several plugin processes append to the same file at once: every line is one `write` with
//! `O_APPEND` (atomic for lines this short), rotation happens under an exclusive `flock` of the
//! file's directory and re-checks the size under it, and a process whose open file was rotated
//! away by another reopens the path before writing.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::Error;

/// When to rotate and what to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate before the file would grow past this many bytes (Calico: `log_file_max_size`,
    /// in MB, default 100).
    pub max_bytes: u64,
    /// Rotated files kept (Calico: `log_file_max_count`, default 10).
    pub max_files: usize,
    /// Rotated files older than this are removed at the next rotation (Calico:
    /// `log_file_max_age`, in days, default 30).
    pub max_age: Option<Duration>,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            max_bytes: 100 * 1024 * 1024,
            max_files: 10,
            max_age: Some(Duration::from_secs(30 * 86_400)),
        }
    }
}

/// The log file. Writing never panics; errors are returned for the caller to ignore (logging
/// must not fail the work it describes).
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    policy: RotationPolicy,
    file: Mutex<File>,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `<path>.<n>`.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// An exclusive lock on the directory (`flock(2)`, through std) held until drop.
struct DirLock(File);

impl DirLock {
    fn take(dir: &Path) -> std::io::Result<DirLock> {
        let f = File::open(dir)?;
        // Blocks until the lock is ours.
        f.lock()?;
        Ok(DirLock(f))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the descriptor would release it too.
        let _ = self.0.unlock();
    }
}

impl RotatingFile {
    /// Opens (creating it and its directory) the file at `path` for appending.
    pub fn open(path: impl Into<PathBuf>, policy: RotationPolicy) -> Result<RotatingFile, Error> {
        let path = path.into();
        let io = |e| Error::Io {
            path: path.display().to_string(),
            source: e,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = open_append(&path).map_err(io)?;
        Ok(RotatingFile {
            path,
            policy,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (with its newline), rotating first when it would not fit.
    pub fn write_line(&self, line: &str) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        // Another process may have rotated the file away: follow the path.
        let current = std::fs::metadata(&self.path).ok();
        let mine = file.metadata()?;
        if current
            .as_ref()
            .is_none_or(|c| c.ino() != mine.ino() || c.dev() != mine.dev())
        {
            *file = open_append(&self.path)?;
        }
        let size = file.metadata()?.len();
        if size > 0 && size + line.len() as u64 > self.policy.max_bytes {
            self.rotate()?;
            *file = open_append(&self.path)?;
        }
        file.write_all(line.as_bytes())
    }

    /// Renames the chain under the directory lock; does nothing if another process rotated
    /// meanwhile (the file is small again).
    fn rotate(&self) -> std::io::Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let _lock = DirLock::take(&dir)?;
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size < self.policy.max_bytes / 2 {
            return Ok(());
        }
        let keep = self.policy.max_files;
        if keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for n in (1..keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))?;
        if let Some(age) = self.policy.max_age {
            let now = SystemTime::now();
            for n in 1..=keep {
                let p = rotated(&self.path, n);
                let old = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age));
                if old {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brindle_testkit::TempDir;

    #[test]
    fn caps_and_rotates_keeping_the_count() {
        let dir = TempDir::new("logrot");
        let path = dir.path().join("sub/cni.log");
        let policy = RotationPolicy {
            max_bytes: 100,
            max_files: 2,
            max_age: None,
        };
        let f = RotatingFile::open(&path, policy).unwrap();
        let line = format!("{}\n", "x".repeat(39)); // 40 bytes: two fit, the third rotates
        for _ in 0..7 {
            f.write_line(&line).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 100, "{}", size(&path));
        assert_eq!(size(&rotated(&path, 1)), 80);
        assert_eq!(size(&rotated(&path, 2)), 80);
        assert!(!rotated(&path, 3).exists());
        // 7 lines written: 2 + 2 rotated and kept, 2 dropped with the oldest file, 1 current.
        assert_eq!(size(&path), 40);
    }

    #[test]
    fn follows_a_rotation_made_by_another_process() {
        let dir = TempDir::new("logrot2");
        let path = dir.path().join("cni.log");
        let policy = RotationPolicy {
            max_bytes: 1000,
            max_files: 3,
            max_age: None,
        };
        let a = RotatingFile::open(&path, policy).unwrap();
        let b = RotatingFile::open(&path, policy).unwrap();
        a.write_line("a1\n").unwrap();
        // "b" rotates the file away as another process would.
        std::fs::rename(&path, rotated(&path, 1)).unwrap();
        b.write_line("b1\n").unwrap();
        a.write_line("a2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b1\na2\n");
        assert_eq!(std::fs::read_to_string(rotated(&path, 1)).unwrap(), "a1\n");
    }
}
