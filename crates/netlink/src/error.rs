//! Errors that name the operation and the object, e.g.
//! `add route 10.233.87.0/24 via 172.20.42.81 dev tunl0: Network is unreachable`.

use std::io;

/// A failed netlink (or namespace, or sysctl) operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused the request (`NLMSG_ERROR` with a negative errno).
    #[error("{op}: {}{}", strerror(*errno), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kernel {
        op: String,
        errno: i32,
        /// The kernel's extended-ack message, when it sent one.
        detail: Option<String>,
    },
    /// A system call failed (socket, setns, /proc/sys).
    #[error("{op}: {}", strip_os_error(source))]
    Io { op: String, source: io::Error },
    /// A reply the kernel sent could not be decoded.
    #[error("{op}: malformed netlink reply: {detail}")]
    Decode { op: String, detail: String },
    /// A named object (usually a link) does not exist.
    #[error("{op}: {what} not found")]
    NotFound { op: String, what: String },
    /// An nf_tables transaction was refused as a whole (nothing of it was applied); each
    /// refused message is named.
    #[error("{op}: {}", refusals_text(refused))]
    Transaction { op: String, refused: Vec<Refusal> },
    /// An object exists in a form the caller must not overwrite (a workload's route on another
    /// interface), the message naming both.
    #[error("{detail}")]
    Conflict { op: String, detail: String },
}

/// One message of an nf_tables transaction that the kernel refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What the message did, e.g. `add rule inet brindle filter-cali-tw-x: ip saddr @s accept`.
    pub what: String,
    pub errno: i32,
    /// The kernel's extended-ack message, or the attribute it pointed at.
    pub detail: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, strerror(self.errno))?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

fn refusals_text(r: &[Refusal]) -> String {
    match r {
        [] => "refused".into(),
        [one] => one.to_string(),
        [first, rest @ ..] => format!("{first}; and {} more refused", rest.len()),
    }
}

impl Error {
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    /// The errno behind this error, if it came from the kernel or a system call.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Transaction { refused, .. } => refused.first().map(|r| r.errno),
            _ => None,
        }
    }

    /// The object already exists (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object does not exist (`ENOENT`, `ESRCH`, `ENODEV`, or [`Error::NotFound`]).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
            || matches!(
                self.errno(),
                Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::ENODEV)
            )
    }

    /// The kernel does not support what was asked (e.g. `ipip` without the module).
    pub fn is_unsupported(&self) -> bool {
        matches!(self.errno(), Some(libc::EOPNOTSUPP) | Some(libc::EAFNOSUPPORT))
    }

    /// The operation text (`add route 10.233.87.0/24 via … dev tunl0`).
    pub fn op(&self) -> &str {
        match self {
            Error::Kernel { op, .. }
            | Error::Io { op, .. }
            | Error::Decode { op, .. }
            | Error::NotFound { op, .. }
            | Error::Transaction { op, .. }
            | Error::Conflict { op, .. } => op,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Network is unreachable` rather than `Network is unreachable (os error 101)`.
fn strerror(errno: i32) -> String {
    strip_os_error(&io::Error::from_raw_os_error(errno))
}

fn strip_os_error(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_reads_like_the_brief() {
        let e = Error::Kernel {
            op: "add route 10.233.87.0/24 via 172.20.42.81 dev tunl0".into(),
            errno: libc::ENETUNREACH,
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "add route 10.233.87.0/24 via 172.20.42.81 dev tunl0: Network is unreachable"
        );
        let e = Error::Kernel {
            op: "add link tunl0 type ipip".into(),
            errno: libc::EOPNOTSUPP,
            detail: Some("Unknown device type".into()),
        };
        assert!(e.is_unsupported());
        assert_eq!(
            e.to_string(),
            "add link tunl0 type ipip: Operation not supported (Unknown device type)"
        );
    }
}
