//! An agent started while its datastore cannot be used keeps running, says why it is not ready
//! (control socket, `node status`, `/readiness`), leaves the kernel's routes alone, and
//! converges once the datastore is back: etcd not started yet, then started; a SQLite file
//! locked by another process, then released. Each agent runs in a namespace of its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use brindle_ctl::status::AgentStatus;
use brindle_testkit::{Daemon, Etcd, Netns, TempDir};

const BIN: &str = env!("CARGO_BIN_EXE_brindle");
/// A route an earlier agent left (a block's blackhole).
const KEPT: &str = "10.250.1.0/26";

/// A node namespace with a leftover route, and the agent's files.
struct Node {
    ns: Netns,
    dir: TempDir,
    name: String,
}

impl Node {
    fn new(prefix: &str) -> Node {
        let ns = Netns::node_with_uplink(prefix, "172.31.7.2/24", "172.31.7.1");
        ns.ip(&["route", "add", "blackhole", KEPT, "proto", "bird"]);
        Node {
            name: brindle_testkit::names::unique("dsdown"),
            dir: TempDir::new("dsdown"),
            ns,
        }
    }

    fn ctl(&self) -> PathBuf {
        self.dir.join("brindle.ctl")
    }

    /// `brindle node run` in the namespace with the datastore variables `ds`.
    fn agent(&self, ds: &[(&str, String)]) -> Daemon {
        let mut cmd = self.ns.cmd(BIN);
        cmd.args(["node", "run"])
            .env("NODENAME", &self.name)
            .env("IP", "172.31.7.2/24")
            .env("NO_DEFAULT_POOLS", "true")
            .env("BRINDLE_STATE_DIR", self.dir.path())
            .env("BRINDLE_CTL_SOCKET", self.ctl())
            .env("BRINDLE_LOG", "info")
            .envs(ds.iter().map(|(k, v)| (k, v)));
        Daemon::spawn("agent", cmd, &self.dir.join("agent.log"))
    }

    fn status(&self) -> Option<AgentStatus> {
        brindle_ctl::control::query_status(&self.ctl()).ok()
    }

    /// Waits for a status that satisfies `ok`; panics with the last one and the log.
    fn wait(
        &self,
        agent: &mut Daemon,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&AgentStatus) -> bool,
    ) -> AgentStatus {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        while Instant::now() < deadline {
            assert!(agent.is_running(), "agent exited while {what}:\n{}", agent.log());
            if let Some(st) = self.status() {
                if ok(&st) {
                    return st;
                }
                last = Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "agent never {what} in {timeout:?}; last status {last:?}\n{}",
            agent.log()
        );
    }

    fn kept_route(&self) -> bool {
        self.ns.ip(&["route", "show", "proto", "bird"]).contains(KEPT)
    }

    fn node_status(&self) -> String {
        let out = self
            .ns
            .cmd(BIN)
            .args(["node", "status"])
            .env("BRINDLE_CTL_SOCKET", self.ctl())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `/readiness` on the agent's health port, from inside the namespace: the HTTP status line.
    fn readiness(&self) -> String {
        let out = self
            .ns
            .cmd("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "http://127.0.0.1:9099/readiness",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `/metrics` on Felix's metrics port, from inside the namespace.
    fn metrics(&self) -> String {
        let out = self
            .ns
            .cmd("curl")
            .args(["-sf", "http://127.0.0.1:9091/metrics"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn assert_metric(&self, line: &str) {
        let m = self.metrics();
        assert!(m.lines().any(|l| l == line), "missing `{line}` in:\n{m}");
    }

    /// While the datastore is unusable: running, not ready with the datastore's error, in
    /// every place a user looks, and the kernel's routes untouched.
    fn assert_waiting(&self, agent: &mut Daemon, needle: &str) {
        let st = self.wait(agent, "answered", Duration::from_secs(60), |st| {
            st.datastore_error.is_some()
        });
        assert!(!st.ready, "{st:?}");
        let err = st.datastore_error.clone().unwrap();
        assert!(err.contains(needle), "{err}");
        assert!(
            st.ready_detail.contains("datastore unavailable"),
            "{}",
            st.ready_detail
        );
        assert!(
            self.node_status().contains("Datastore unavailable (retrying)"),
            "{}",
            self.node_status()
        );
        assert_eq!(self.readiness(), "503");
        self.assert_metric("brindle_datastore_available 0");
        // Felix's "waiting for the datastore".
        self.assert_metric("felix_resync_state 1");
        self.assert_metric("brindle_ready 0");
        // Still retrying a few seconds later, routes kept.
        std::thread::sleep(Duration::from_secs(3));
        assert!(agent.is_running(), "{}", agent.log());
        assert!(
            self.kept_route(),
            "the kernel's routes are kept while the datastore is down"
        );
        assert!(!self.status().unwrap().ready);
    }

    /// After the datastore is back: ready, registered, routes reconciled by a converged agent.
    fn assert_converged(&self, agent: &mut Daemon, ds: &[(&str, String)]) {
        let st = self.wait(agent, "became ready", Duration::from_secs(60), |st| st.ready);
        assert_eq!(st.datastore_error, None);
        assert_eq!(st.ipv4_address.as_deref(), Some("172.31.7.2/24"));
        assert_eq!(self.readiness(), "200");
        self.assert_metric("brindle_datastore_available 1");
        self.assert_metric("felix_resync_state 3");
        let out = self
            .ns
            .cmd(BIN)
            .args(["get", "nodes"])
            .envs(ds.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&self.name),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn agent_started_against_a_stopped_etcd_converges_when_it_starts() {
    let node = Node::new("dse");
    let ds = [
        ("DATASTORE_TYPE", "etcdv3".to_string()),
        ("ETCD_ENDPOINTS", "http://127.0.0.1:2379".to_string()),
    ];
    let mut agent = node.agent(&ds);
    node.assert_waiting(&mut agent, "127.0.0.1:2379");
    let _etcd = Etcd::start_in(&node.ns, "172.31.7.2");
    node.assert_converged(&mut agent, &ds);
    agent.kill();
}

#[test]
fn agent_started_on_a_locked_sqlite_file_converges_when_it_is_released() {
    let node = Node::new("dss");
    let db = node.dir.join("brindle.db");
    let ds = [("BRINDLE_DATASTORE_PATH", db.display().to_string())];
    // A Brindle datastore (made by a CLI command that writes: reads never create one), then
    // another process holding its write lock.
    let out = Command::new(BIN)
        .args(["ipam", "configure", "--strictaffinity=false"])
        .envs(ds.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lock = brindle_testkit::SqliteLock::hold(&db);
    let mut agent = node.agent(&ds);
    node.assert_waiting(&mut agent, "brindle.db");
    drop(lock);
    node.assert_converged(&mut agent, &ds);
    agent.kill();
}

#[test]
fn a_store_the_agent_cannot_open_is_named_with_its_origin() {
    let node = Node::new("dso");
    // Under a regular file: the agent cannot create the store (and retries).
    let file = node.dir.join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let db = file.join("brindle.db");
    let ds = [("BRINDLE_DATASTORE_PATH", db.display().to_string())];
    let mut agent = node.agent(&ds);
    node.assert_waiting(
        &mut agent,
        "(path from environment variable BRINDLE_DATASTORE_PATH)",
    );
    assert!(!db.exists());
    agent.kill();
}
