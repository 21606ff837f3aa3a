//! Network policy end to end on one node: a real agent (`brindle node run`) in a node
//! namespace, pods attached by the real CNI plugin from stored Pod objects, Calico policies
//! written to the datastore, and TCP connections between the pods checked: allowed and denied
//! as the policies say, an interface the agent never programmed dropped, rules removed behind
//! the agent's back put back, and a `kill -9` and restart of the agent that neither opens a
//! window (a denied connection stays denied throughout) nor cuts an established connection.
//! And a node's first start: pods that exist before the agent ever ran are dropped from the
//! agent's first instant (the base table goes in before the datastore is read), never open
//! while it waits for the datastore, and get their policy once it is read. And a pod deleted by
//! the plugin leaves no flow in the node's conntrack table.

mod cni_support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brindle_ctl::status::AgentStatus;
use brindle_datastore::Client;
use brindle_model::Resource;
use brindle_testkit::conntrack::entries_of;
use brindle_testkit::{Daemon, Netns};
use cni_support::{Lab, NODE, Pod, container_id};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_brindle");
const PORT: u16 = 8080;

fn ctl(lab: &Lab) -> PathBuf {
    lab.dir.join("brindle.ctl")
}

/// `brindle node run` in the lab's node namespace, on the lab's datastore.
fn agent(lab: &Lab, n: u32) -> Daemon {
    let mut cmd = lab.node.cmd(BIN);
    cmd.args(["node", "run"])
        .env("NODENAME", NODE)
        .env("IP", "172.20.42.80/24")
        .env("NO_DEFAULT_POOLS", "true")
        .env("BRINDLE_DATASTORE_TYPE", "sqlite")
        .env("BRINDLE_DATASTORE_PATH", lab.dir.join("brindle.db"))
        .env("BRINDLE_STATE_DIR", lab.dir.join("agent"))
        .env("BRINDLE_CTL_SOCKET", ctl(lab))
        .env("BRINDLE_IPAM_GC", "false")
        .env("BRINDLE_LOG", "info");
    Daemon::spawn("agent", cmd, &lab.dir.join(&format!("agent-{n}.log")))
}

fn wait_ready(lab: &Lab, a: &mut Daemon) -> AgentStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    while Instant::now() < deadline {
        assert!(a.is_running(), "agent exited:\n{}", a.log());
        if let Ok(st) = brindle_ctl::control::query_status(&ctl(lab)) {
            if st.ready {
                return st;
            }
            last = Some(st);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("agent never ready; last {last:?}\n{}", a.log());
}

/// A pod of namespace `prod` with `labels`, stored as a Pod object then attached by the plugin.
struct TestPod {
    pod: Pod,
    ip: String,
    /// The host end of its veth.
    host_if: String,
}

fn pod(lab: &Lab, name: &str, labels: serde_json::Value) -> TestPod {
    pod_with(lab, name, labels, json!({}))
}

fn pod_with(lab: &Lab, name: &str, labels: serde_json::Value, annotations: serde_json::Value) -> TestPod {
    lab.put(
        &brindle_model::keys::k8s_pod_key("prod", name),
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": name, "namespace": "prod", "labels": labels,
                            "annotations": annotations},
               "spec": {"containers": [{"name": "c", "image": "x",
                        "ports": [{"name": "http", "containerPort": PORT}]}]}}),
    );
    let pod = Pod {
        ns: Netns::new("pp"),
        id: container_id(),
        args: format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME={name}"),
    };
    let result = lab.add(&pod, &lab.conf("1.0.0"));
    let ip = cni_support::ip_of(&result);
    let host_if = result["interfaces"][0]["name"].as_str().unwrap().to_string();
    TestPod { pod, ip, host_if }
}

/// A TCP echo server in a namespace, stopped on drop.
struct Echo(Arc<AtomicBool>);

impl Echo {
    fn start(ns: &Netns, port: u16) -> Echo {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        ns.spawn_in(move || {
            let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        let s = s.clone();
                        std::thread::spawn(move || {
                            c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
                            let mut buf = [0u8; 64];
                            while !s.load(Ordering::Relaxed) {
                                match c.read(&mut buf) {
                                    Ok(0) => return,
                                    Ok(n) => {
                                        if c.write_all(&buf[..n]).is_err() {
                                            return;
                                        }
                                    }
                                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                                    Err(_) => return,
                                }
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        rx.recv().unwrap();
        Echo(stop)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A TCP connection from `from` to `to:PORT` is made and echoes (1 s to connect).
fn connects(from: &TestPod, to: &TestPod) -> bool {
    connects_within(from, to, Duration::from_secs(1))
}

/// A TCP connection from `from` to `to:PORT` is made within `timeout` and echoes.
fn connects_within(from: &TestPod, to: &TestPod, timeout: Duration) -> bool {
    let addr: SocketAddr = format!("{}:{PORT}", to.ip).parse().unwrap();
    from.pod
        .ns
        .spawn_in(move || {
            let Ok(mut c) = TcpStream::connect_timeout(&addr, timeout) else {
                return false;
            };
            c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
            let mut buf = [0u8; 4];
            c.write_all(b"ping").is_ok() && c.read_exact(&mut buf).is_ok() && &buf == b"ping"
        })
        .join()
        .unwrap()
}

/// Polls until `from → to` is `allowed` (10 s); panics naming the pair otherwise.
fn expect(from: &TestPod, to: &TestPod, allowed: bool, what: &str, a: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if connects(from, to) == allowed {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what}: {} → {} should be {}\n{}",
        from.ip,
        to.ip,
        if allowed { "allowed" } else { "denied" },
        a.log()
    );
}

/// An established connection, used across the restart.
fn open(from: &TestPod, to: &TestPod) -> TcpStream {
    let addr: SocketAddr = format!("{}:{PORT}", to.ip).parse().unwrap();
    let c = from
        .pod
        .ns
        .spawn_in(move || TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap())
        .join()
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c
}

fn echo_on(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4];
    c.write_all(b"ping").is_ok() && c.read_exact(&mut buf).is_ok() && &buf == b"ping"
}

fn create(lab: &Lab, doc: serde_json::Value) {
    let np: brindle_model::resources::NetworkPolicy = serde_json::from_value(doc).unwrap();
    let r = Resource::NetworkPolicy(np);
    Client::new(lab.ds.clone()).create(&r).unwrap();
}

#[test]
fn policy_is_enforced_repaired_and_kept_across_a_restart() {
    let lab = Lab::new();
    // Workload interfaces copy the node's default (strict here, whatever this host's is).
    lab.node.sysctl("net.ipv4.conf.default.rp_filter", "1");
    let mut a = agent(&lab, 1);
    wait_ready(&lab, &mut a);

    let client = pod(&lab, "client", json!({"app": "client"}));
    let server = pod(&lab, "server", json!({"app": "server"}));
    let other = pod(&lab, "other", json!({"app": "other"}));
    let _echo = Echo::start(&server.pod.ns, PORT);
    // No policy: the namespace profile allows everything.
    expect(&client, &server, true, "no policy", &a);
    expect(&other, &server, true, "no policy", &a);

    // Only the client may reach the server's named port.
    create(
        &lab,
        json!({"kind": "NetworkPolicy", "apiVersion": "projectcalico.org/v3",
               "metadata": {"name": "allow-client", "namespace": "prod"},
               "spec": {"selector": "app == 'server'", "types": ["Ingress"],
                        "ingress": [{"action": "Allow", "protocol": "TCP",
                                     "source": {"selector": "app == 'client'"},
                                     "destination": {"ports": ["http"]}}]}}),
    );
    expect(&other, &server, false, "policy applied", &a);
    expect(&client, &server, true, "policy applied", &a);

    // Fail closed: a cali interface the agent never programmed passes nothing.
    let rogue = Netns::new("pr");
    let rogue_if = brindle_testkit::names::unique("cali");
    let rogue_if = &rogue_if[..rogue_if.len().min(15)];
    lab.node.ip(&[
        "link",
        "add",
        rogue_if,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        rogue.name(),
    ]);
    lab.node.ip(&["link", "set", rogue_if, "up"]);
    lab.node
        .sysctl(&format!("net.ipv4.conf.{rogue_if}.proxy_arp"), "1");
    lab.node.ip(&["route", "add", "10.233.127.9/32", "dev", rogue_if]);
    rogue.ip(&["addr", "add", "10.233.127.9/32", "dev", "eth0"]);
    rogue.ip(&["link", "set", "eth0", "up"]);
    rogue.ip(&["route", "add", "169.254.1.1", "dev", "eth0", "scope", "link"]);
    rogue.ip(&["route", "add", "default", "via", "169.254.1.1", "dev", "eth0"]);
    let rogue_pod = TestPod {
        pod: Pod {
            ns: rogue,
            id: String::new(),
            args: String::new(),
        },
        ip: "10.233.127.9".into(),
        host_if: rogue_if.to_string(),
    };
    let _rogue_echo = Echo::start(&rogue_pod.pod.ns, PORT);
    assert!(
        !connects(&client, &rogue_pod),
        "an unprogrammed cali interface is dropped"
    );
    assert!(
        !connects(&rogue_pod, &server),
        "an unprogrammed cali interface is dropped"
    );

    // No spoofing: the kernel's reverse path filter is on for workload interfaces (the
    // default's value, strict here), off for a pod allowed to send from other prefixes (the
    // nftables RPF check, which skips exactly those prefixes, filters it instead).
    let rp = |iface: &str| {
        lab.node
            .run("sysctl", &["-n", &format!("net.ipv4.conf.{iface}.rp_filter")])
            .trim()
            .to_string()
    };
    let spoofer = pod_with(
        &lab,
        "spoofer",
        json!({"app": "spoofer"}),
        json!({"cni.projectcalico.org/allowedSourcePrefixes": "[\"192.0.2.0/24\"]"}),
    );
    assert_eq!(rp(&client.host_if), "1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rp(&spoofer.host_if) != "0" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(rp(&spoofer.host_if), "0", "{}", a.log());
    let rules = lab
        .node
        .run("nft", &["list", "chain", "ip", "brindle", "raw-cali-rpf-skip"]);
    assert!(rules.contains("192.0.2.0/24"), "{rules}");

    // Rules removed behind the agent's back are put back.
    lab.node.run("nft", &["flush", "table", "ip", "brindle"]);
    expect(&other, &server, false, "after nft flush table", &a);
    expect(&client, &server, true, "after nft flush table", &a);

    // kill -9 and restart: the table stays, so the denied pair stays denied throughout, and
    // the established connection survives.
    let mut established = open(&client, &server);
    assert!(echo_on(&mut established));
    a.signal(libc::SIGKILL);
    let _ = a.wait(Duration::from_secs(5));
    assert!(!connects(&other, &server), "no agent: still denied");
    let mut b = agent(&lab, 2);
    let started = Instant::now();
    while brindle_ctl::control::query_status(&ctl(&lab))
        .map(|s| !s.ready)
        .unwrap_or(true)
        && started.elapsed() < Duration::from_secs(60)
    {
        assert!(!connects(&other, &server), "restarting agent: still denied");
    }
    wait_ready(&lab, &mut b);
    assert!(
        echo_on(&mut established),
        "the established connection survived the restart"
    );
    expect(&other, &server, false, "after restart", &b);
    expect(&client, &server, true, "after restart", &b);

    // Policy changes after the restart still apply; deleting the policy opens the server.
    Client::new(lab.ds.clone())
        .delete(brindle_model::Kind::NetworkPolicy, "prod", "allow-client", "")
        .unwrap();
    expect(&other, &server, true, "policy deleted", &b);
    assert!(echo_on(&mut established));
    b.kill();
}

#[test]
fn a_first_start_fails_closed_before_the_datastore_is_read() {
    let lab = Lab::new();
    lab.node.sysctl("net.ipv4.conf.default.rp_filter", "1");
    // Pods made before any agent ran on this node, under a policy that denies `other`.
    let client = pod(&lab, "client", json!({"app": "client"}));
    let server = pod(&lab, "server", json!({"app": "server"}));
    let other = pod(&lab, "other", json!({"app": "other"}));
    let _echo = Echo::start(&server.pod.ns, PORT);
    // The built-in tiers, as a cluster's first agent (on another node) made them.
    Client::new(lab.ds.clone()).ensure_builtin_tiers().unwrap();
    create(
        &lab,
        json!({"kind": "NetworkPolicy", "apiVersion": "projectcalico.org/v3",
               "metadata": {"name": "allow-client", "namespace": "prod"},
               "spec": {"selector": "app == 'server'", "types": ["Ingress"],
                        "ingress": [{"action": "Allow", "protocol": "TCP",
                                     "source": {"selector": "app == 'client'"}}]}}),
    );
    let tables = || lab.node.run("nft", &["list", "tables"]);
    // A prober's attempt: a dropped SYN gives up after 100 ms.
    let probe = |from: &TestPod, to: &TestPod| connects_within(from, to, Duration::from_millis(100));
    assert!(!tables().contains("brindle"), "{}", tables());
    // Nothing filters yet: the window this test closes.
    assert!(connects(&other, &server), "no agent yet: the pods are open");

    // The agent's first start, with its datastore locked: it cannot read anything yet.
    let lock = brindle_testkit::SqliteLock::hold(&lab.dir.join("brindle.db"));
    let mut a = agent(&lab, 1);
    let t = Instant::now();
    while !tables().contains("table ip brindle") {
        assert!(a.is_running(), "agent exited:\n{}", a.log());
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no base table while the datastore is unreadable:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // From then on the denied peer never gets an answer: while the agent waits for the
    // datastore (everything dropped, the allowed client too), and once the policy is in.
    let mut probes = 0;
    let waiting = Instant::now();
    while waiting.elapsed() < Duration::from_secs(2) {
        assert!(
            !probe(&other, &server),
            "denied peer answered while the datastore is locked"
        );
        assert!(
            !probe(&client, &server),
            "unprogrammed pod answered while the datastore is locked"
        );
        probes += 1;
    }
    // Still waiting for the datastore (its startup blocked on the lock, or not ready).
    let st = brindle_ctl::control::query_status(&ctl(&lab));
    assert!(
        st.as_ref().map(|s| !s.ready).unwrap_or(true),
        "ready without its datastore: {st:?}"
    );
    drop(lock);
    while brindle_ctl::control::query_status(&ctl(&lab))
        .map(|s| !s.ready)
        .unwrap_or(true)
    {
        assert!(a.is_running(), "agent exited:\n{}", a.log());
        assert!(t.elapsed() < Duration::from_secs(60), "never ready:\n{}", a.log());
        assert!(!probe(&other, &server), "denied peer answered before ready");
        probes += 1;
    }
    wait_ready(&lab, &mut a);
    expect(&client, &server, true, "policy programmed", &a);
    for _ in 0..20 {
        assert!(!probe(&other, &server), "denied peer answered after ready");
    }
    assert!(probes > 2, "the prober ran {probes} times");
    a.kill();
}

/// A pod deleted by the plugin (CNI DEL: its WorkloadEndpoint and veth gone) leaves no flow in
/// the node's conntrack table, so an established connection it had cannot be accepted for the
/// next pod given its address; a neighbour's connection is untouched.
#[test]
fn a_deleted_pods_flows_leave_conntrack() {
    let lab = Lab::new();
    let mut a = agent(&lab, 1);
    wait_ready(&lab, &mut a);
    let client = pod(&lab, "client", json!({"app": "client"}));
    let server = pod(&lab, "server", json!({"app": "server"}));
    let other = pod(&lab, "other", json!({"app": "other"}));
    let _e1 = Echo::start(&server.pod.ns, PORT);
    let _e2 = Echo::start(&other.pod.ns, PORT);
    expect(&client, &server, true, "no policy", &a);
    expect(&client, &other, true, "no policy", &a);
    let mut gone = open(&client, &server);
    let mut kept = open(&client, &other);
    assert!(echo_on(&mut gone) && echo_on(&mut kept));
    let (server_ip, other_ip): (IpAddr, IpAddr) = (server.ip.parse().unwrap(), other.ip.parse().unwrap());
    assert!(
        entries_of(&lab.node, server_ip)
            .iter()
            .any(|l| l.contains("ESTABLISHED")),
        "no established flow to the server"
    );

    lab.cni("DEL", &server.pod, &lab.conf("1.0.0"), &[]).ok();
    let t = Instant::now();
    while !entries_of(&lab.node, server_ip).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "flows of the deleted pod {server_ip} kept:\n{}\n{}",
            entries_of(&lab.node, server_ip).join("\n"),
            a.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("flows of the deleted pod gone {:?} after CNI DEL", t.elapsed());
    // The agent did it (the kernel keeps flows when a link goes).
    let t = Instant::now();
    while !a
        .log()
        .contains("deleted the conntrack flows of gone workload addresses")
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no cleanup logged:\n{}",
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !entries_of(&lab.node, other_ip).is_empty(),
        "the neighbour's flows went too"
    );
    assert!(echo_on(&mut kept), "the neighbour's connection was cut");
    // Counted in /metrics (the worker's outcome is taken at the dataplane's next apply: a new
    // pod makes one).
    let _later = pod(&lab, "later", json!({"app": "later"}));
    let t = Instant::now();
    loop {
        let out = lab
            .node
            .cmd("curl")
            .args(["-sf", "http://127.0.0.1:9091/metrics"])
            .output()
            .expect("curl");
        let m = String::from_utf8_lossy(&out.stdout).into_owned();
        let deleted = m
            .lines()
            .find_map(|l| l.strip_prefix("brindle_conntrack_flows_deleted_total "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if deleted.is_some_and(|n| n >= 1.0) {
            assert!(
                m.lines()
                    .any(|l| l == "brindle_conntrack_cleanup_failures_total 0"),
                "{m}"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "flows deleted not counted:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
