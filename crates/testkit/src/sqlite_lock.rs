//! [`SqliteLock`]: another process holding a SQLite file's write lock, for tests of a datastore
//! that cannot be written yet (the agent's startup waits for it).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `sqlite3` shell inside `BEGIN EXCLUSIVE` on a file, until dropped (killed by PID).
pub struct SqliteLock(Child);

impl SqliteLock {
    /// Takes the lock and returns once another writer is refused.
    pub fn hold(path: &Path) -> SqliteLock {
        let bin = crate::require::command("sqlite3", "sqlite3");
        let mut child = Command::new(&bin)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("sqlite3: {e}"));
        let stdin = child.stdin.as_mut().expect("piped stdin");
        // The shell's busy timeout is 0: a BEGIN that meets another writer (the store's own
        // connection, writing) fails at once and the shell goes on without the lock. Wait for it.
        stdin
            .write_all(b".timeout 10000\nBEGIN EXCLUSIVE;\n")
            .expect("sqlite3 stdin");
        stdin.flush().expect("sqlite3 stdin");
        let lock = SqliteLock(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Command::new(&bin)
            .args([
                "-cmd",
                ".timeout 1",
                &path.display().to_string(),
                "BEGIN IMMEDIATE; ROLLBACK;",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
        {
            assert!(
                Instant::now() < deadline,
                "sqlite3 did not take the lock of {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        lock
    }
}

impl Drop for SqliteLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
