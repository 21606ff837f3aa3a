//! Automatic IPAM garbage collection with real processes, on SQLite and on etcd: CNI ADDs killed
//! with SIGKILL after IPAM leave leaks that the collector releases once the grace period (2 s
//! here, from KubeControllersConfiguration) has passed, after which `ipam check` is clean; of two
//! collectors only the lease holder acts, and the other takes over when the holder is killed;
//! 1000 pods churned while the collector runs keep every live address.
//!
//! The collectors are `brindle ipam gc` processes (the agent runs the same code on a thread;
//! `lab_e2e` sees it in an agent's `/metrics`), in the node's namespace with the plugin.

mod cni_support;

use std::io::Write as _;
use std::net::IpAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use brindle_testkit::Daemon;
use cni_support::{Lab, Pod, bin, container_id, ip_of, key};
use serde_json::{Value, json};

const LEASE_KEY: &str = "/calico/brindle/leases/ipam-gc";

fn datastore_args(lab: &Lab) -> Vec<String> {
    let mut args = match &lab.etcd {
        Some(e) => vec![
            "--datastore-type".into(),
            "etcdv3".into(),
            "--etcd-endpoints".into(),
            e.endpoint().to_string(),
        ],
        None => vec![
            "--datastore-type".into(),
            "sqlite".into(),
            "--datastore-path".into(),
            lab.dir.join("brindle.db").display().to_string(),
        ],
    };
    // A connection file of its own that selects nothing: the host's calicoctl.cfg is never read
    // (a named file must exist).
    let cfg = lab.dir.join("none.cfg");
    std::fs::write(&cfg, "kind: CalicoAPIConfig\nspec: {}\n").expect("write none.cfg");
    args.extend(["--config".into(), cfg.display().to_string()]);
    args
}

fn spawn_gc(lab: &Lab, name: &str) -> Daemon {
    let mut cmd = lab.node.cmd(bin());
    cmd.args(["ipam", "gc", "--identity", name])
        .args(datastore_args(lab))
        .env("BRINDLE_IPAM_GC_LEASE_DURATION", "3s")
        .env("BRINDLE_LOG", "info");
    Daemon::spawn(name, cmd, &lab.dir.join(&format!("{name}.log")))
}

fn holder(lab: &Lab) -> String {
    lab.get(LEASE_KEY)
        .and_then(|v| v["spec"]["holderIdentity"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An ADD killed with SIGKILL right after IPAM gave it an address (before any veth or
/// WorkloadEndpoint): a leak. Returns the leaked address.
fn killed_add(lab: &Lab, pod: &Pod, conf: &Value) -> IpAddr {
    let netns = pod.netns_path();
    let mut cmd = lab.node.cmd(bin());
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("BRINDLE_STATE_DIR", lab.dir.join("state"))
        .env("BRINDLE_CNI_PAUSE_AT", "ipam")
        .envs([
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", pod.id.as_str()),
            ("CNI_NETNS", netns.as_str()),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", pod.args.as_str()),
            ("CNI_PATH", "/usr/lib/cni"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let mut held = Vec::new();
    wait_for("the killed ADD's address", Duration::from_secs(30), || {
        held = lab.held(pod);
        !held.is_empty()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    held[0]
}

fn ipam_check(lab: &Lab) -> String {
    let out = lab
        .node
        .cmd(bin())
        .args(["ipam", "check"])
        .args(datastore_args(lab))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until none of `leaks` is allocated any more.
fn wait_released(lab: &Lab, leaks: &[IpAddr]) {
    wait_for("the leaks to be released", Duration::from_secs(60), || {
        let allocated = lab.allocated();
        leaks.iter().all(|l| !allocated.contains(l))
    });
}

fn scenario(lab: Lab) {
    lab.put(
        &key("kubecontrollersconfigurations", "default"),
        json!({"kind":"KubeControllersConfiguration","apiVersion":"projectcalico.org/v3",
               "metadata":{"name":"default"},
               "spec":{"controllers":{"node":{"leakGracePeriod":"2s"}}}}),
    );
    let conf = lab.conf("1.0.0");

    // Two collectors: the first takes the lease, the second waits.
    let mut first = spawn_gc(&lab, "gc-first");
    wait_for("gc-first to take the lease", Duration::from_secs(30), || {
        holder(&lab).starts_with("gc-first_")
    });
    let second = spawn_gc(&lab, "gc-second");

    // Live pods, and ADDs killed after IPAM.
    let live: Vec<(Pod, IpAddr)> = (0..2)
        .map(|i| {
            let pod = Pod::k8s(&format!("live-{i}"));
            let ip: IpAddr = ip_of(&lab.add(&pod, &conf)).parse().unwrap();
            (pod, ip)
        })
        .collect();
    let victims: Vec<Pod> = (0..3).map(|i| Pod::k8s(&format!("killed-{i}"))).collect();
    let leaks: Vec<IpAddr> = victims.iter().map(|p| killed_add(&lab, p, &conf)).collect();
    let killed_at = Instant::now();
    let check = ipam_check(&lab);
    assert!(
        check.contains("Found 3 IPs that are allocated in IPAM but not actually in use."),
        "{check}"
    );
    wait_released(&lab, &leaks);
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "released within the grace period"
    );
    for (pod, ip) in &live {
        assert_eq!(lab.held(pod), [*ip], "a live address was released");
    }
    let check = ipam_check(&lab);
    assert!(check.contains("Check complete; found 0 problems."), "{check}");
    assert!(
        first.log().contains("Confirmed IP leak: released"),
        "{}",
        first.log()
    );
    assert!(
        !second.log().contains("released"),
        "the follower acted:\n{}",
        second.log()
    );
    assert!(holder(&lab).starts_with("gc-first_"));

    // The holder dies: the other takes over (within the 3 s lease) and collects.
    first.kill();
    wait_for("gc-second to take over", Duration::from_secs(30), || {
        holder(&lab).starts_with("gc-second_")
    });
    let late = killed_add(&lab, &Pod::k8s("killed-late"), &conf);
    wait_released(&lab, &[late]);

    // 1000 pods churned through 10 slots while the collector runs: every live address stays
    // allocated to its pod; leaks made meanwhile are collected.
    let mut slots: Vec<(Pod, Option<IpAddr>)> =
        (0..10).map(|i| (Pod::k8s(&format!("churn-{i}")), None)).collect();
    let mut churn_leaks = Vec::new();
    for round in 0..1000 {
        let (pod, ip) = &mut slots[round % 10];
        if ip.take().is_some() {
            lab.cni("DEL", pod, &conf, &[]).ok();
        }
        pod.id = container_id();
        *ip = Some(ip_of(&lab.add(pod, &conf)).parse().unwrap());
        if round % 250 == 125 {
            churn_leaks.push(killed_add(
                &lab,
                &Pod::k8s(&format!("churn-killed-{round}")),
                &conf,
            ));
        }
        if round % 50 == 49 {
            for (pod, ip) in &slots {
                if let Some(ip) = ip {
                    assert_eq!(lab.held(pod), [*ip], "round {round}: a live address was released");
                }
            }
        }
    }
    wait_released(&lab, &churn_leaks);
    for (pod, ip) in &slots {
        assert_eq!(
            lab.held(pod),
            [ip.unwrap()],
            "a live address was released at the end"
        );
        lab.cni("DEL", pod, &conf, &[]).ok();
    }
    for (pod, _) in &live {
        lab.cni("DEL", pod, &conf, &[]).ok();
    }
    let check = ipam_check(&lab);
    assert!(check.contains("Check complete; found 0 problems."), "{check}");
    drop(second);
}

#[test]
fn gc_on_sqlite() {
    brindle_testkit::require::root();
    scenario(Lab::new());
}

#[test]
fn gc_on_etcd() {
    brindle_testkit::require::root();
    scenario(Lab::etcd());
}
