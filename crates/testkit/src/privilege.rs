//! Running code with an unprivileged user's file access, inside a root test process.
//!
//! Root bypasses file permissions, so a test of "permission denied" must give them up. Linux's
//! filesystem uid (`setfsuid`) is per thread and, when it leaves 0, the kernel drops that
//! thread's file capabilities (`CAP_DAC_OVERRIDE`, …) too; so a fresh thread that sets it sees
//! the file system as that user would, while the rest of the process stays root.

/// `nobody` on Debian.
pub const NOBODY: u32 = 65534;

/// Runs `f` on a new thread whose file accesses are checked as `uid`/`gid`, and returns its
/// result. Needs root.
pub fn with_file_access_of<T: Send>(uid: u32, gid: u32, f: impl FnOnce() -> T + Send) -> T {
    crate::require::root();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setfsuid/setfsgid only change this thread's credentials; they cannot fail
            // in a way that matters here (checked below by reading the value back).
            unsafe {
                libc::setfsgid(gid);
                libc::setfsuid(uid);
                // Calling with an invalid id returns the current one without changing it.
                assert_eq!(
                    libc::setfsuid(u32::MAX) as u32,
                    uid,
                    "setfsuid({uid}) did not take"
                );
            }
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
