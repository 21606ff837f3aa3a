//! A real etcd v3 server for tests, on free ports, with its data directory removed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::pki::Pki;
use crate::{Daemon, Netns, TempDir};

/// A running `etcd` (Debian `etcd-server`, 3.4). Killed and its data removed on drop.
pub struct Etcd {
    // Field order matters: the daemon dies before its directory is removed.
    daemon: Daemon,
    endpoint: String,
    /// How it was started, for [`Etcd::restart`] (root-namespace instances only).
    cmd: Option<(std::path::PathBuf, Vec<String>)>,
    /// `--cacert/--cert/--key` for etcdctl when it serves TLS.
    tls_args: Vec<String>,
    _dir: TempDir,
}

impl Etcd {
    /// Starts etcd on two free loopback ports of the root namespace and waits until it answers.
    pub fn start() -> Etcd {
        Self::start_on_loopback("http", &[], Vec::new())
    }

    /// Starts etcd with client URL `<scheme>://127.0.0.1:<free port>` and `extra` arguments;
    /// retries on a port race. `tls_args` are etcdctl's TLS flags for this server.
    fn start_on_loopback(scheme: &str, extra: &[String], tls_args: Vec<String>) -> Etcd {
        let bin = crate::require::command("etcd", "etcd-server");
        for attempt in 0..5 {
            let client = crate::port::free_tcp();
            let peer = crate::port::free_tcp();
            let dir = TempDir::new("etcd");
            let name = crate::names::unique("etcd");
            let client_url = format!("{scheme}://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let mut args = etcd_args(&name, &dir, &client_url, &client_url, &peer_url);
            args.extend_from_slice(extra);
            let mut cmd = Command::new(&bin);
            cmd.args(&args);
            let daemon = Daemon::spawn("etcd", cmd, &dir.join("etcd.log"));
            let mut etcd = Etcd {
                daemon,
                endpoint: client_url,
                cmd: Some((bin.clone(), args)),
                tls_args: tls_args.clone(),
                _dir: dir,
            };
            if etcd.wait_healthy(Duration::from_secs(5)) {
                return etcd;
            }
            eprintln!(
                "etcd attempt {attempt} failed (port race?):\n{}",
                etcd.daemon.log()
            );
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
            cmd: None,
            tls_args: Vec::new(),
            _dir: dir,
        }
    }

    /// Starts etcd serving clients over TLS only (`https://127.0.0.1:<free port>`) with the
    /// server certificate of `pki`, and requiring client certificates signed by its CA
    /// (`--client-cert-auth`).
    pub fn start_tls(pki: &Pki) -> Etcd {
        let path = |p: &std::path::Path| p.display().to_string();
        let server = [
            "--cert-file".to_string(),
            path(&pki.server_cert),
            "--key-file".into(),
            path(&pki.server_key),
            "--trusted-ca-file".into(),
            path(&pki.ca),
            "--client-cert-auth".into(),
        ];
        let client = vec![
            "--cacert".to_string(),
            path(&pki.ca),
            "--cert".into(),
            path(&pki.client_cert),
            "--key".into(),
            path(&pki.client_key),
        ];
        Self::start_on_loopback("https", &server, client)
    }

    /// Kills etcd and starts it again on the same ports and data (a member restart, as seen by
    /// clients: connections break, then the same endpoint answers again with the same data).
    pub fn restart(&mut self) {
        let (bin, args) = self.cmd.clone().expect("restart: only for Etcd::start/start_tls");
        self.daemon.kill();
        let mut cmd = Command::new(&bin);
        cmd.args(&args);
        self.daemon = Daemon::spawn("etcd", cmd, &self._dir.join("etcd-restarted.log"));
        assert!(
            self.wait_healthy(Duration::from_secs(10)),
            "etcd did not come back after a restart; log:\n{}",
            self.daemon.log()
        );
    }

    /// Stops etcd (SIGKILL); [`Etcd::restart`] brings it back.
    pub fn stop(&mut self) {
        self.daemon.kill();
    }

    /// `etcdctl` aimed at this etcd (endpoint and TLS client files set).
    pub fn etcdctl(&self) -> Command {
        let ctl = crate::require::command("etcdctl", "etcd-client");
        let mut cmd = Command::new(ctl);
        cmd.env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .args(&self.tls_args);
        cmd
    }

    /// Turns on authentication with a `root` user (password `root_password`) and a user `user`
    /// with read-write access to keys under `prefix` only.
    pub fn enable_auth(&self, root_password: &str, user: &str, password: &str, prefix: &str) {
        let run = |args: &[&str]| {
            crate::netns::run(self.etcdctl().args(args));
        };
        run(&["user", "add", "root", "--new-user-password", root_password]);
        run(&["user", "grant-role", "root", "root"]);
        run(&["role", "add", "limited"]);
        run(&[
            "role",
            "grant-permission",
            "limited",
            "--prefix=true",
            "readwrite",
            prefix,
        ]);
        run(&["user", "add", user, "--new-user-password", password]);
        run(&["user", "grant-role", user, "limited"]);
        run(&["auth", "enable"]);
    }

    fn wait_healthy(&mut self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if !self.daemon.is_running() {
                return false;
            }
            let ok = if self.tls_args.is_empty() {
                healthy(self.endpoint.trim_start_matches("http://"))
            } else {
                self.etcdctl()
                    .args(["endpoint", "health"])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            };
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
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
