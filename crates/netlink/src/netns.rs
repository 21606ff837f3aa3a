//! Network namespace handles.
//!
//! The rule: `setns(CLONE_NEWNET)` changes the namespace of the *calling thread* only, so Brindle
//! never calls it on a thread it does not own (never on a tokio worker). [`NetnsFd::run`] enters
//! the namespace on a short-lived thread of its own, runs the closure there and joins it; a netlink
//! socket opened that way stays bound to that namespace for its whole life, whatever thread later
//! uses it.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result};

/// An open network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`, or the caller's own).
#[derive(Debug)]
pub struct NetnsFd {
    fd: OwnedFd,
    path: PathBuf,
}

impl NetnsFd {
    /// Opens a namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`, a bind mount).
    pub fn open(path: impl AsRef<Path>) -> Result<NetnsFd> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|e| Error::io(format!("open network namespace {}", path.display()), e))?;
        Ok(NetnsFd {
            fd: file.into(),
            path: path.to_path_buf(),
        })
    }

    /// `/run/netns/<name>`, as made by `ip netns add`.
    pub fn named(name: &str) -> Result<NetnsFd> {
        NetnsFd::open(Path::new("/run/netns").join(name))
    }

    /// The namespace of a process, `/proc/<pid>/ns/net`.
    pub fn of_pid(pid: u32) -> Result<NetnsFd> {
        NetnsFd::open(format!("/proc/{pid}/ns/net"))
    }

    /// The calling thread's namespace.
    pub fn current() -> Result<NetnsFd> {
        NetnsFd::open("/proc/thread-self/ns/net")
    }

    /// A new, unnamed namespace (`unshare(CLONE_NEWNET)` on a short-lived thread); it lives as
    /// long as this handle (or anything inside it) does. For tests and VMs without `/run/netns`.
    pub fn new_anonymous() -> Result<NetnsFd> {
        std::thread::spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::io("unshare network namespace", e.into()))?;
            NetnsFd::current()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// The path it was opened from (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's identity (inode of the nsfs file): equal inodes mean the same namespace.
    pub fn inode(&self) -> Result<u64> {
        let f = File::from(self.fd.try_clone().map_err(|e| Error::io("dup netns fd", e))?);
        f.metadata()
            .map(|m| m.ino())
            .map_err(|e| Error::io(format!("stat {}", self.path.display()), e))
    }

    /// True when the calling thread is already in this namespace.
    pub fn is_current(&self) -> Result<bool> {
        let here = std::fs::metadata("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("stat /proc/thread-self/ns/net", e))?;
        Ok(here.ino() == self.inode()?)
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result.
    /// The calling thread's namespace is never changed.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                    Error::io(
                        format!("enter network namespace {}", self.path.display()),
                        e.into(),
                    )
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Makes `cmd`'s child enter this namespace between fork and exec (the child is a new
    /// process: no thread of ours changes namespace). The child keeps the mount namespace, so
    /// `/sys`, bpffs and cgroups stay the host's, unlike `ip netns exec`.
    pub fn enter_on_exec(self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and only calls setns(2),
        // which is async-signal-safe; it owns the descriptor, so it stays open until then.
        unsafe {
            cmd.pre_exec(move || {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)
            });
        }
    }

    /// Duplicates the handle.
    pub fn try_clone(&self) -> Result<NetnsFd> {
        Ok(NetnsFd {
            fd: self.fd.try_clone().map_err(|e| Error::io("dup netns fd", e))?,
            path: self.path.clone(),
        })
    }
}

impl AsFd for NetnsFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NetnsFd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}
