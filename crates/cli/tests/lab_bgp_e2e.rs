//! End to end, BGP configured Calico's way through resources: route reflectors (Node
//! `routeReflectorClusterID`, a BGPPeer with `nodeSelector`/`peerSelector`, the mesh off) in a
//! 10-node lab that survives the loss of one reflector; an external eBGP peer (a real BIRD 2 on
//! the lab's router) with its AS, a password from the secrets directory and `ttlSecurity`,
//! learning the pool's blocks and the service CIDRs and sending a route the nodes install.

mod lab_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use brindle_agent::status::AgentStatus;
use brindle_testkit::{Daemon, TempDir, require};
use lab_support::{TestLab, wait_for};

const RR1: &str = "bgp-node1";
const RR2: &str = "bgp-node2";

fn status(lab: &TestLab, node: &str) -> Option<AgentStatus> {
    brindle_agent::ctl::query_status(&lab.lab().dir().ctl_socket(node)).ok()
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
