//! What SQLite failures mean to a caller, and the bounded, jittered retry on lock contention.
//!
//! SQLite's built-in busy handler (`busy_timeout`) sleeps 1, 2, 5, 10 … up to 100 ms between
//! attempts, the same steps in every process. Measured with 8 processes hammering one file
//! (datastore bench), that let one process keep the write lock while the others slept: the
//! slowest increment waited 115 ms with synchronous=NORMAL and 8 s with FULL. So connections
//! run with SQLite's handler off, and every busy outcome (`SQLITE_BUSY`, `SQLITE_LOCKED`, from
//! `BEGIN IMMEDIATE` or anywhere in a transaction) rolls the transaction back and retries it
//! here after a short randomised sleep (50 µs doubling to 400 µs), until the store's
//! `busy_timeout` has passed; then the caller gets [`Error::Unavailable`] naming the store and
//! the key. Short, jittered attempts keep waiters in the race for the lock; the tail dropped to
//! tens of milliseconds and throughput rose.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

use crate::Error;

/// Why one attempt failed: an SQLite error (maybe transient), or a store-level outcome (conflict,
/// not found) that is final.
pub(crate) enum Failure {
    Sql(rusqlite::Error),
    Store(Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

fn code(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

/// Another connection holds a lock we need.
pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(code(e), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// Runs `attempt` until it succeeds, fails for good, or `deadline` passes while it keeps meeting
/// locks. `classify` turns the final SQLite error into the caller's [`Error`].
pub(crate) fn retry<T>(
    deadline: Duration,
    mut attempt: impl FnMut() -> Result<T, Failure>,
    classify: impl Fn(rusqlite::Error, Option<Duration>) -> Error,
) -> crate::Result<T> {
    let start = Instant::now();
    let mut n: u32 = 0;
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(Failure::Store(e)) => return Err(e),
            Err(Failure::Sql(e)) if is_busy(&e) => {
                let waited = start.elapsed();
                if waited >= deadline {
                    return Err(classify(e, Some(waited)));
                }
                std::thread::sleep(backoff(n).min(deadline - waited));
                n = n.saturating_add(1);
            }
            Err(Failure::Sql(e)) => return Err(classify(e, None)),
        }
    }
}

/// 50 µs doubling up to 400 µs, each drawn uniformly from [cap/2, cap].
fn backoff(attempt: u32) -> Duration {
    let cap = Duration::from_micros(50)
        .saturating_mul(1u32 << attempt.min(3))
        .min(Duration::from_micros(400));
    let half = cap / 2;
    half + half.mul_f64(unit_random())
}

/// A number in [0, 1) that differs between calls, threads and processes. RandomState draws
/// fresh keys per instance (seeded from the OS once per thread), which is plenty for jitter and
/// spares a dependency.
fn unit_random() -> f64 {
    let h = RandomState::new().hash_one(Instant::now());
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Maps a final SQLite error to the caller's error, naming the store and key.
pub(crate) fn classify(
    store: &str,
    op: &'static str,
    key: Option<&str>,
    e: rusqlite::Error,
    busy_for: Option<Duration>,
) -> Error {
    let detail = e.to_string();
    if let Some(waited) = busy_for {
        return Error::Unavailable {
            store: store.into(),
            detail: format!(
                "{op}{}: the database stayed locked by another process for {:.1} s ({detail})",
                key.map(|k| format!(" {k}")).unwrap_or_default(),
                waited.as_secs_f64()
            ),
        };
    }
    match code(&e) {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            store: store.into(),
            key: key.map(str::to_string),
            detail,
        },
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::AuthorizationForStatementDenied
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked,
        ) => Error::Unavailable {
            store: store.into(),
            detail: format!(
                "{op}{}: {detail}",
                key.map(|k| format!(" {k}")).unwrap_or_default()
            ),
        },
        _ => Error::Backend {
            store: store.into(),
            op,
            key: key.map(str::to_string),
            detail,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        for n in 0..20 {
            let cap = Duration::from_micros(50 << n.min(3));
            let b = backoff(n);
            assert!(
                b >= cap / 2 && b <= cap,
                "attempt {n}: {b:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
        let draws: std::collections::HashSet<_> = (0..20).map(|_| backoff(5)).collect();
        assert!(draws.len() > 10, "jitter is not random: {draws:?}");
    }
}
