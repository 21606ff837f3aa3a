//! Each call's latency, reported to the node's agent, which exports it in `/metrics` (the
//! plugin lives for one call and cannot serve metrics itself; Calico's plugin exports none).
//! One datagram on a unix socket next to the agent's control socket, sent without blocking
//! and best effort: with no agent listening, the call is not slowed down or failed.
//!
//! Datagram: `<plugin> <COMMAND> <seconds> <ok|failed>`, e.g. `brindle ADD 0.004512 ok`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The socket's file name, in the directory of the agent's control socket.
pub const SOCKET_NAME: &str = "cni-metrics.sock";
/// The control socket's directory when `BRINDLE_CTL_SOCKET` is not set (the agent's default).
pub const DEFAULT_DIR: &str = "/var/run/brindle";

/// Where the agent whose control socket is `ctl_socket` listens for reports.
pub fn socket_for(ctl_socket: &Path) -> PathBuf {
    ctl_socket
        .parent()
        .unwrap_or_else(|| Path::new(DEFAULT_DIR))
        .join(SOCKET_NAME)
}

/// One call's report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub plugin: String,
    pub command: String,
    pub seconds: f64,
    pub ok: bool,
}

impl Report {
    pub fn encode(&self) -> String {
        let result = if self.ok { "ok" } else { "failed" };
        format!("{} {} {:.6} {result}", self.plugin, self.command, self.seconds)
    }

    /// Parses a datagram; `None` for anything else (the socket is local but not trusted to be
    /// well-formed).
    pub fn decode(b: &[u8]) -> Option<Report> {
        let s = std::str::from_utf8(b).ok()?;
        let mut it = s.split_ascii_whitespace();
        let plugin = it.next()?;
        let command = it.next()?;
        let seconds: f64 = it.next()?.parse().ok()?;
        let ok = match it.next()? {
            "ok" => true,
            "failed" => false,
            _ => return None,
        };
        let name_ok = |n: &str| {
            !n.is_empty() && n.len() <= 32 && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        };
        (it.next().is_none() && name_ok(plugin) && name_ok(command) && seconds.is_finite() && seconds >= 0.0)
            .then(|| Report {
                plugin: plugin.to_string(),
                command: command.to_string(),
                seconds,
                ok,
            })
    }
}

/// Sends `report` to `socket`; errors (no agent, full queue) are ignored by design.
pub fn send(socket: &Path, report: &Report) {
    if let Ok(s) = UnixDatagram::unbound()
        && s.set_nonblocking(true).is_ok()
    {
        let _ = s.send_to(report.encode().as_bytes(), socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let r = Report {
            plugin: "brindle-ipam".into(),
            command: "ADD".into(),
            seconds: 0.0045,
            ok: true,
        };
        assert_eq!(r.encode(), "brindle-ipam ADD 0.004500 ok");
        assert_eq!(Report::decode(r.encode().as_bytes()), Some(r));
        for bad in [
            &b""[..],
            b"brindle ADD",
            b"brindle ADD x ok",
            b"brindle ADD -1 ok",
            b"brindle ADD 1 maybe",
            b"brindle ADD 1 ok extra",
            b"bad\"name ADD 1 ok",
            b"\xff\xfe",
        ] {
            assert_eq!(Report::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn socket_next_to_the_control_socket() {
        assert_eq!(
            socket_for(Path::new("/var/run/brindle/brindle.ctl")),
            Path::new("/var/run/brindle/cni-metrics.sock")
        );
    }

    #[test]
    fn delivered_when_someone_listens_and_silent_otherwise() {
        let dir = std::env::temp_dir().join(format!("brindle-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SOCKET_NAME);
        let r = Report {
            plugin: "brindle".into(),
            command: "DEL".into(),
            seconds: 0.25,
            ok: false,
        };
        send(&path, &r); // nobody listens: nothing happens
        let l = UnixDatagram::bind(&path).unwrap();
        send(&path, &r);
        let mut buf = [0u8; 128];
        let n = l.recv(&mut buf).unwrap();
        assert_eq!(Report::decode(&buf[..n]), Some(r));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
