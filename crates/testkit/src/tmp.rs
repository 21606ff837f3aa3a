//! Unique temporary directories, removed on drop.

use std::path::{Path, PathBuf};

/// A directory under the system temp dir with a unique name; removed (recursively) on drop.
/// Set `BRINDLE_KEEP_TEST_DIRS=1` to keep it for post-mortem reading.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(crate::names::unique(&format!("brindle-{prefix}-")));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Extracts a `.tar.gz` (with `tar`) into a new subdirectory `name`, which it returns.
    pub fn untar(&self, tarball: impl AsRef<Path>, name: &str) -> PathBuf {
        let into = self.join(name);
        std::fs::create_dir(&into).unwrap_or_else(|e| panic!("create {}: {e}", into.display()));
        let tarball = tarball.as_ref();
        let ok = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(tarball)
            .arg("-C")
            .arg(&into)
            .status()
            .unwrap_or_else(|e| panic!("tar: {e}"))
            .success();
        assert!(ok, "tar -xzf {} failed", tarball.display());
        into
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("BRINDLE_KEEP_TEST_DIRS").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
