//! End to end, BGP configured Calico's way through resources: route reflectors (Node
//! `routeReflectorClusterID`, a BGPPeer with `nodeSelector`/`peerSelector`, the mesh off) in a
//! 10-node lab that survives the loss of one reflector; an external eBGP peer (a real BIRD 2 on
//! the lab's router) with its AS, a password from the secrets directory and `ttlSecurity`,
//! learning the pool's blocks and the service CIDRs and sending a route the nodes install;
//! pools created and deleted 25 times without one session flapping, and a speaker whose port
//! is taken retried until it is free, reported not ready meanwhile.

mod lab_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use brindle_ctl::status::AgentStatus;
use brindle_testkit::{Daemon, TempDir, require};
use lab_support::{TestLab, wait_for};

const RR1: &str = "bgp-node1";
const RR2: &str = "bgp-node2";

fn status(lab: &TestLab, node: &str) -> Option<AgentStatus> {
    brindle_ctl::control::query_status(&lab.lab().dir().ctl_socket(node)).ok()
}

/// The node's IPv4 peers that are Established.
fn established(lab: &TestLab, node: &str) -> BTreeSet<String> {
    status(lab, node)
        .and_then(|s| s.bgp)
        .map(|b| {
            b.peers_v4
                .iter()
                .filter(|p| p.established)
                .map(|p| p.peer_address.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The rows of `brindle node status`'s IPv4 table: (address, type, state, info).
fn status_rows(lab: &TestLab, node: &str) -> Vec<(String, String, String, String)> {
    let out = lab.stdout(node, &["brindle", "node", "status"]);
    out.split("IPv6 BGP status")
        .next()
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("PEER ADDRESS"))
        .map(|l| {
            let c: Vec<&str> = l.split('|').map(str::trim).collect();
            (c[1].into(), c[2].into(), c[3].into(), c[5].into())
        })
        .collect()
}

fn routes_from_bgp_only(lab: &TestLab, nodes: &[String]) {
    lab.apply(
        "bgp-master1",
        "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  programClusterRoutes: Disabled\n",
    );
    for n in nodes {
        wait_for(
            &format!("{n} to take routes from BGP only"),
            Duration::from_secs(10),
            || lab.agent_log(n).contains("from BGP only"),
        );
    }
}

#[test]
fn route_reflectors_the_calico_way() {
    let lab = TestLab::up("rr", &["--nodes", "10", "--pods", "1"]);
    let nodes: Vec<String> = lab.lab().plan().nodes.iter().map(|n| n.name.clone()).collect();
    let ip = |n: &str| lab.lab().plan().node(n).unwrap().addr.addr().to_string();
    // Routes to other nodes' blocks only from BGP, so the reflectors are what carries them.
    routes_from_bgp_only(&lab, &nodes);
    for rr in [RR1, RR2] {
        lab.stdout(
            "bgp-master1",
            &[
                "brindle",
                "patch",
                "node",
                rr,
                "--patch",
                r#"{"metadata":{"labels":{"route-reflector":"true"}},"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}"#,
            ],
        );
    }
    // maxRestartTime 5s: the clients keep a dead reflector's routes as stale for 5 s only.
    lab.apply(
        "bgp-master1",
        "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
  maxRestartTime: 5s
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
",
    );
    let rrs: BTreeSet<String> = [ip(RR1), ip(RR2)].into();
    let clients: Vec<&String> = nodes.iter().filter(|n| *n != RR1 && *n != RR2).collect();
    wait_for(
        "clients peering with the two reflectors only",
        Duration::from_secs(30),
        || {
            clients.iter().all(|n| {
                established(&lab, n) == rrs
                    && status(&lab, n).is_some_and(|s| s.bgp.unwrap().peers_v4.len() == 2)
            })
        },
    );
    wait_for(
        "reflectors peering with every node",
        Duration::from_secs(30),
        || {
            [RR1, RR2]
                .iter()
                .all(|r| established(&lab, r).len() == nodes.len() - 1)
        },
    );
    // What the user sees: node-specific sessions (BIRD `Node_…`, as Calico's BGPPeer with a
    // nodeSelector), up and Established.
    let rows = status_rows(&lab, clients[0]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (addr, kind, state, info) in &rows {
        assert!(rrs.contains(addr), "{rows:?}");
        assert_eq!(
            (kind.as_str(), state.as_str(), info.as_str()),
            ("node specific", "up", "Established")
        );
    }
    assert_eq!(status_rows(&lab, RR1).len(), nodes.len() - 1);
    let l = lab.lab();
    l.wait_converged(Duration::from_secs(30))
        .expect("every block routed through the reflectors");
    lab.ping_all();

    // One reflector dies: its stale routes go after 5 s, the other carries everything.
    l.signal_agent(RR1, libc::SIGKILL).unwrap();
    let rr1_block = l
        .blocks_by_node()
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == RR1)
        .unwrap()
        .1;
    wait_for(
        "clients to lose the dead reflector and its routes",
        Duration::from_secs(30),
        || {
            clients.iter().all(|n| {
                let up = established(&lab, n);
                let routes = lab.stdout(n, &["ip", "route"]);
                up == [ip(RR2)].into() && rr1_block.iter().all(|b| !routes.contains(&b.to_string()))
            })
        },
    );
    let m = l.ping_all().unwrap();
    let pods_of_rr1: BTreeSet<String> = l
        .state()
        .pods
        .iter()
        .filter(|p| p.node == RR1)
        .map(|p| p.name.clone())
        .collect();
    let failures = m.failures();
    assert!(
        failures
            .iter()
            .all(|(a, b)| pods_of_rr1.contains(a) || pods_of_rr1.contains(b)),
        "pods of live nodes cannot reach each other with one reflector left:\n{}",
        m.render()
    );
    assert!(m.pairs() >= 90, "{}", m.render());
}

/// BIRD 2 on the lab's router (172.20.42.1), AS 65001, with MD5 and GTSM towards each node.
/// Passive: the nodes connect, so their side's MD5 signature and TTL 255 are what is tested
/// (a node's listener answers every connection with TTL 255 anyway).
struct Bird {
    dir: TempDir,
    _daemon: Daemon,
}

impl Bird {
    fn start(netns: &str, nodes: &[String], password: &str) -> Bird {
        let bird = require::command("bird", "bird2");
        let dir = TempDir::new("lab-bird");
        let mut conf = format!(
            "router id 172.20.42.1;
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface \"eth0\"; }}
protocol static ext {{ ipv4; route 198.51.100.0/24 blackhole; }}
template bgp node {{
  local 172.20.42.1 as 65001;
  direct; passive on; ttl security on; password \"{password}\";
  connect delay time 1; connect retry time 1; error wait time 1, 5;
  ipv4 {{ import all; export where proto = \"ext\"; }};
}}
"
        );
        for (i, n) in nodes.iter().enumerate() {
            conf += &format!("protocol bgp n{i} from node {{ neighbor {n} as 64512; }}\n");
        }
        std::fs::write(dir.join("bird.conf"), conf).unwrap();
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{netns}"))
            .arg("--")
            .arg(bird)
            .arg("-f")
            .arg("-c")
            .arg(dir.join("bird.conf"))
            .arg("-s")
            .arg(dir.join("bird.ctl"))
            .arg("-P")
            .arg(dir.join("bird.pid"));
        let mut d = Daemon::spawn("bird2", c, &dir.join("bird.log"));
        d.wait_until("birdc answers", Duration::from_secs(10), || {
            birdc(&dir.join("bird.ctl"), "show status").contains("Daemon is up")
        });
        Bird { dir, _daemon: d }
    }

    fn birdc(&self, cmd: &str) -> String {
        birdc(&self.dir.join("bird.ctl"), cmd)
    }
}

fn birdc(ctl: &Path, cmd: &str) -> String {
    let bin = require::command("birdc", "bird2");
    Command::new(bin)
        .arg("-s")
        .arg(ctl)
        .args(cmd.split(' '))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn external_ebgp_peer_with_password_and_ttl_security() {
    let lab = TestLab::up("eb", &["--pods", "1"]);
    let l = lab.lab();
    let nodes: Vec<String> = l.plan().nodes.iter().map(|n| n.addr.addr().to_string()).collect();
    let names: Vec<String> = l.plan().nodes.iter().map(|n| n.name.clone()).collect();
    let bird = Bird::start(&l.plan().router, &nodes, "t0r-s3cret");
    // The BGPPeer names a secret that is not there yet: the session stays down and the agent
    // says which BGPPeer and which secret.
    lab.apply(
        "bgp-master1",
        "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 172.20.42.1
  asNumber: 65001
  ttlSecurity: 1
  password:
    secretKeyRef:
      name: bgp-secrets
      key: tor-password
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  serviceClusterIPs:
  - cidr: 10.96.0.0/12
  serviceExternalIPs:
  - cidr: 203.0.113.0/24
  - cidr: 203.0.113.7/32
",
    );
    for n in &names {
        wait_for(
            &format!("{n} to report the missing secret"),
            Duration::from_secs(15),
            || {
                let log = lab.agent_log(n);
                log.contains("BGP password unreadable")
                    && log.contains("bgppeer=tor")
                    && log.contains("bgp-secrets")
            },
        );
    }
    assert!(
        !bird.birdc("show protocols").contains("Established"),
        "a session came up without the password:\n{}",
        bird.birdc("show protocols")
    );
    // The secret appears: every node's session comes up (MD5 and GTSM on both sides).
    let secrets = l.dir().secrets().join("bgp-secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("tor-password"), "t0r-s3cret\n").unwrap();
    wait_for("BIRD's sessions to every node", Duration::from_secs(30), || {
        bird.birdc("show protocols").matches("Established").count() == nodes.len()
    });
    for n in &names {
        let rows = status_rows(&lab, n);
        assert!(
            rows.iter().any(|r| r
                == &(
                    "172.20.42.1".into(),
                    "global".into(),
                    "up".into(),
                    "Established".into()
                )),
            "{n}: {rows:?}"
        );
    }
    // BIRD learns every block of the pool and the service ranges (not the /32 external IP,
    // which belongs to externalTrafficPolicy: Local services).
    let blocks: Vec<String> = l
        .blocks_by_node()
        .unwrap()
        .into_iter()
        .flat_map(|(_, b)| b.into_iter().map(|b| b.to_string()))
        .collect();
    assert_eq!(blocks.len(), nodes.len());
    wait_for(
        "BIRD to learn the blocks and service CIDRs",
        Duration::from_secs(15),
        || {
            let routes = bird.birdc("show route");
            blocks.iter().all(|b| routes.contains(b.as_str()))
                && routes.contains("10.96.0.0/12")
                && routes.contains("203.0.113.0/24")
        },
    );
    let routes = bird.birdc("show route");
    assert!(!routes.contains("203.0.113.7/32"), "{routes}");
    // Our AS on the path of what the nodes sent (eBGP).
    let all = bird.birdc("show route 10.96.0.0/12 all");
    assert!(all.contains("BGP.as_path: 64512"), "{all}");
    // BIRD's route is installed on every node as BIRD would (`proto bird`, via the router).
    for n in &names {
        wait_for(
            &format!("{n} to install BIRD's route"),
            Duration::from_secs(15),
            || {
                lab.stdout(n, &["ip", "route", "show", "198.51.100.0/24"])
                    .contains("198.51.100.0/24 via 172.20.42.1 dev eth0 proto bird")
            },
        );
        // The service ranges are advertised, never installed.
        let table = lab.stdout(n, &["ip", "route"]);
        assert!(!table.contains("10.96.0.0/12"), "{n}: {table}");
    }
    lab.ping_all();
}

/// Each IPv4 session of `node`: (peer, since, established).
fn sessions(lab: &TestLab, node: &str) -> Vec<(String, i64, bool)> {
    status(lab, node)
        .and_then(|s| s.bgp)
        .map(|b| {
            b.peers_v4
                .iter()
                .map(|p| (p.peer_address.clone(), p.since, p.established))
                .collect()
        })
        .unwrap_or_default()
}

fn metric(lab: &TestLab, node: &str, name: &str) -> u64 {
    let m = lab.stdout(node, &["curl", "-sf", "http://127.0.0.1:9091/metrics"]);
    let prefix = format!("{name}{{node=\"{node}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
        .parse()
        .unwrap()
}

fn pool_yaml(name: &str, cidr: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {cidr}\n  ipipMode: Always\n  natOutgoing: true\n"
    )
}

#[test]
fn pools_change_without_flaps_and_a_taken_port_is_retried() {
    let lab = TestLab::up("rc", &["--pods", "1"]);
    let l = lab.lab();
    let names: Vec<String> = l.plan().nodes.iter().map(|n| n.name.clone()).collect();
    let pools_on = |n: &str| {
        lab.stdout(
            n,
            &["nft", "list", "set", "ip", "brindle", "cali40all-ipam-pools"],
        )
    };
    let ups = |n: &str| lab.agent_log(n).matches("bgp session established").count();
    let before: Vec<_> = names.iter().map(|n| sessions(&lab, n)).collect();
    let ups_before: Vec<usize> = names.iter().map(|n| ups(n)).collect();
    for s in &before {
        assert_eq!(s.len(), names.len() - 1, "{before:?}");
        assert!(s.iter().all(|(_, _, up)| *up), "{before:?}");
    }

    // 25 pools created and deleted, each change seen by every node's agent before the next.
    for i in 0..25 {
        let cidr = format!("10.100.{i}.0/24");
        lab.apply("bgp-master1", &pool_yaml(&format!("churn-{i}"), &cidr));
        for n in &names {
            wait_for(
                &format!("{n} to take pool {cidr}"),
                Duration::from_secs(10),
                || pools_on(n).contains(&cidr),
            );
        }
        lab.stdout(
            "bgp-master1",
            &["brindle", "delete", "ippool", &format!("churn-{i}")],
        );
        for n in &names {
            wait_for(
                &format!("{n} to drop pool {cidr}"),
                Duration::from_secs(10),
                || !pools_on(n).contains(&cidr),
            );
        }
    }
    // A last one stays: every node has it.
    lab.apply("bgp-master1", &pool_yaml("churn-last", "10.100.99.0/24"));
    for n in &names {
        wait_for(
            &format!("{n} to take the last pool"),
            Duration::from_secs(10),
            || pools_on(n).contains("10.100.99.0/24"),
        );
    }
    // No session flapped: same start times, no session came up again, the speakers were
    // reconfigured in place and never restarted.
    let after: Vec<_> = names.iter().map(|n| sessions(&lab, n)).collect();
    assert_eq!(after, before, "a session flapped");
    let ups_after: Vec<usize> = names.iter().map(|n| ups(n)).collect();
    assert_eq!(ups_after, ups_before, "sessions came up again");
    for n in &names {
        assert_eq!(metric(&lab, n, "brindle_bgp_speaker_restarts_total"), 0, "{n}");
        let r = metric(&lab, n, "brindle_bgp_reconfigurations_total");
        assert!(r >= 25, "{n}: {r} reconfigurations for 51 pool changes");
    }
    lab.ping_all();

    // bgp-node1's listen port moves to one another socket holds: its speaker restarts, the
    // start fails, and it is retried while readiness fails and node status says why.
    const NODE: &str = "bgp-node1";
    let ns = l.plan().node(NODE).unwrap().netns.clone();
    let holder = brindle_netlink::netns::NetnsFd::named(&ns)
        .unwrap()
        .run(|| std::net::TcpListener::bind("0.0.0.0:1790"))
        .unwrap()
        .expect("hold port 1790 in the node's namespace");
    lab.apply(
        "bgp-master1",
        &format!("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: node.{NODE}\nspec:\n  listenPort: 1790\n"),
    );
    wait_for("a few failed starts", Duration::from_secs(15), || {
        status(&lab, NODE)
            .and_then(|s| s.bgp)
            .is_some_and(|b| b.speaker_start_failures >= 3)
    });
    let st = status(&lab, NODE).unwrap();
    let why = st.bgp.as_ref().unwrap().speaker_down.clone().expect("says why");
    assert!(
        why.contains("0.0.0.0:1790") && why.contains("Address already in use"),
        "{why}"
    );
    assert!(!st.ready, "ready without a speaker");
    let code = lab.stdout(
        NODE,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9099/readiness",
        ],
    );
    assert_eq!(code, "503");
    let out = lab.stdout(NODE, &["brindle", "node", "status"]);
    assert!(
        out.contains("The BGP backend process (BIRD) is not running.")
            && out.contains("Address already in use")
            && out.contains("retrying"),
        "{out}"
    );
    // The metrics server reuses a scrape for up to 1 s (many scrapers at once cost one), so
    // the text may lag the status by that much.
    wait_for(
        "the metrics to say the speaker is down",
        Duration::from_secs(5),
        || metric(&lab, NODE, "brindle_bgp_speaker_running") == 0,
    );
    assert!(metric(&lab, NODE, "brindle_bgp_speaker_start_failures_total") >= 3);

    // The port is freed: the speaker is up within 5 s (the wait allows 5 s), and the mesh comes back on the new port.
    drop(holder);
    let freed = std::time::Instant::now();
    wait_for("the speaker to start", Duration::from_secs(5), || {
        status(&lab, NODE)
            .and_then(|s| s.bgp)
            .is_some_and(|b| b.speaker_down.is_none())
    });
    eprintln!("speaker up {:?} after the port was freed", freed.elapsed());
    for n in &names {
        wait_for(&format!("{n}'s sessions"), Duration::from_secs(30), || {
            let s = sessions(&lab, n);
            s.len() == names.len() - 1 && s.iter().all(|(_, _, up)| *up)
        });
    }
    wait_for("readiness", Duration::from_secs(10), || {
        status(&lab, NODE).is_some_and(|s| s.ready)
    });
    wait_for(
        "the metrics to say the speaker runs",
        Duration::from_secs(5),
        || metric(&lab, NODE, "brindle_bgp_speaker_running") == 1,
    );
    assert_eq!(metric(&lab, NODE, "brindle_bgp_speaker_restarts_total"), 1);
    lab.ping_all();
}
