//! Process limits the agent sets for itself at start.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as the Go runtime does for calico-node:
/// a 1000-peer mesh holds a socket per session (two during connection collisions) beyond the
/// usual 1024 soft limit. Returns the (soft, hard) limits now in force.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
        return Ok((hard, hard));
    }
    Ok((soft, hard))
}

#[cfg(test)]
mod tests {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};

    #[test]
    fn soft_limit_reaches_the_hard_limit() {
        // Start from a low soft limit, as a shell's default 1024 or lower would be.
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        setrlimit(Resource::RLIMIT_NOFILE, 256.min(hard), hard).unwrap();
        let (soft, max) = super::raise_nofile_limit().unwrap();
        assert_eq!((soft, max), (hard, hard));
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
    }
}
