//! Read-modify-write loops under optimistic concurrency.

use crate::Error;
use crate::client::ResourceError;

/// An error that may mean "a compare-and-swap lost a race": re-read and retry.
pub trait IsConflict {
    fn is_conflict(&self) -> bool;
}

impl IsConflict for Error {
    fn is_conflict(&self) -> bool {
        Error::is_conflict(self)
    }
}

impl IsConflict for ResourceError {
    fn is_conflict(&self) -> bool {
        ResourceError::is_conflict(self)
    }
}

/// Runs `f` up to `attempts` times while it fails with a conflict ([`Error::is_conflict`]: a
/// compare-and-swap lost a race, or a create found the key already made); `f` re-reads what it
/// modifies on each call. Returns the first success, the first other error, or the last
/// conflict. Callers (IPAM) choose the bound; Calico's IPAM uses a handful of attempts.
pub fn retry_on_conflict<T, E: IsConflict>(
    attempts: usize,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut last: Option<E> = None;
    for _ in 0..attempts.max(1) {
        match f() {
            Err(e) if e.is_conflict() => last = Some(e),
            other => return other,
        }
    }
    Err(last.expect("at least one attempt ran"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Result;

    fn conflict() -> Error {
        Error::Conflict {
            store: "test".into(),
            key: "/k".into(),
            expected: 1,
            actual: 2,
        }
    }

    #[test]
    fn retries_conflicts_only_and_up_to_the_bound() {
        let mut calls = 0;
        let r = retry_on_conflict(5, || {
            calls += 1;
            if calls < 3 { Err(conflict()) } else { Ok(calls) }
        });
        assert_eq!(r.unwrap(), 3);

        let mut calls = 0;
        let r: Result<()> = retry_on_conflict(4, || {
            calls += 1;
            Err(conflict())
        });
        assert!(r.unwrap_err().is_conflict());
        assert_eq!(calls, 4);

        let mut calls = 0;
        let r: Result<()> = retry_on_conflict(4, || {
            calls += 1;
            Err(Error::NotFound {
                store: "test".into(),
                key: "/k".into(),
            })
        });
        assert!(r.unwrap_err().is_not_found());
        assert_eq!(calls, 1, "non-conflict errors are not retried");
    }
}
