//! A real etcd v3 server for tests, on free ports, with its data directory removed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::{Daemon, Netns, TempDir};

/// A running `etcd` (Debian `etcd-server`, 3.4). Killed and its data removed on drop.
pub struct Etcd {
    // Field order matters: the daemon dies before its directory is removed.
    daemon: Daemon,
    endpoint: String,
    _dir: TempDir,
}

impl Etcd {
    /// Starts etcd on two free loopback ports of the root namespace and waits until it answers.
    pub fn start() -> Etcd {
        let bin = crate::require::command("etcd", "etcd-server");
        for attempt in 0..5 {
            let client = crate::port::free_tcp();
            let peer = crate::port::free_tcp();
            let dir = TempDir::new("etcd");
            let name = crate::names::unique("etcd");
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let mut cmd = Command::new(&bin);
            cmd.args(etcd_args(&name, &dir, &client_url, &client_url, &peer_url));
            let mut daemon = Daemon::spawn("etcd", cmd, &dir.join("etcd.log"));
            let mut up = false;
            for _ in 0..250 {
                if healthy(&format!("127.0.0.1:{client}")) {
                    up = true;
                    break;
                }
                if !daemon.is_running() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if up {
                return Etcd {
                    daemon,
                    endpoint: client_url,
                    _dir: dir,
                };
            }
            eprintln!("etcd attempt {attempt} failed (port race?):\n{}", daemon.log());
        }
        panic!("etcd did not start after 5 attempts");
    }

    /// Starts etcd inside `ns`, listening on `addr` (an address configured in `ns`) and loopback,
    /// port 2379 of that namespace; waits until it answers from inside the namespace.
    pub fn start_in(ns: &Netns, addr: &str) -> Etcd {
        let bin = crate::require::command("etcd", "etcd-server");
        let ctl = crate::require::command("etcdctl", "etcd-client");
        let dir = TempDir::new("etcd");
        let name = crate::names::unique("etcd");
        let client_url = format!("http://{addr}:2379");
        let listen = format!("{client_url},http://127.0.0.1:2379");
        let peer_url = "http://127.0.0.1:2380".to_string();
        let mut cmd = ns.cmd(&bin);
        cmd.args(etcd_args(&name, &dir, &listen, &client_url, &peer_url));
        let mut daemon = Daemon::spawn("etcd", cmd, &dir.join("etcd.log"));
        daemon.wait_until("etcd health", Duration::from_secs(10), || {
            ns.cmd(&ctl)
                .args(["--endpoints", &client_url, "endpoint", "health"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        Etcd {
            daemon,
            endpoint: client_url,
            _dir: dir,
        }
    }

    /// The client URL, e.g. `http://127.0.0.1:41234`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn daemon(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

fn etcd_args(name: &str, dir: &TempDir, listen: &str, advertise: &str, peer: &str) -> Vec<String> {
    vec![
        "--name".into(),
        name.into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--listen-client-urls".into(),
        listen.into(),
        "--advertise-client-urls".into(),
        advertise.into(),
        "--listen-peer-urls".into(),
        peer.into(),
        "--initial-advertise-peer-urls".into(),
        peer.into(),
        "--initial-cluster".into(),
        format!("{name}={peer}"),
        "--initial-cluster-state".into(),
        "new".into(),
        "--log-level".into(),
        "warn".into(),
        "--logger".into(),
        "zap".into(),
    ]
}

/// `GET /health` answers `{"health":"true"}`.
fn healthy(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr.parse().expect("addr"), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("\"health\":\"true\"")
}
