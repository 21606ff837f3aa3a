//! The lab's fabric alone (`topology_only`): namespaces, bridges, router, addresses, and a
//! teardown that removes exactly what was made, also after a crash.

use std::path::Path;

use brindle_lab::netns;
use brindle_lab::progress::Quiet;
use brindle_lab::{Lab, LabSpec, encap_modes};
use brindle_testkit::{TempDir, names, require};

/// Tears the lab down on drop, whatever happened.
struct Guard<'a> {
    root: &'a Path,
    name: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Ok(lab) = Lab::open_in(self.root, &self.name)
            && let Err(e) = lab.down(&Quiet)
        {
            eprintln!("teardown of {}: {e}", self.name);
        }
    }
}

fn spec(name: &str, cross_subnet: bool) -> LabSpec {
    let (ipip_mode, vxlan_mode) = encap_modes("ipip", cross_subnet).unwrap();
    LabSpec {
        name: name.into(),
        nodes: 3,
        pods: 1,
        cross_subnet,
        ipip_mode,
        vxlan_mode,
        topology_only: true,
        ..Default::default()
    }
}

fn ping(netns: &str, ip: &str) -> bool {
    brindle_lab::ping::ping(netns, ip).unwrap()
}

#[test]
fn fabric_router_and_nodes_reach_each_other_then_vanish() {
    require::root();
    let root = TempDir::new("labroot");
    let name = names::unique("lt");
    let _g = Guard {
        root: root.path(),
        name: name.clone(),
    };
    let lab = Lab::up_in(root.path(), spec(&name, false), Path::new("/bin/true"), &Quiet).unwrap();
    let plan = lab.plan().clone();
    for n in &plan.nodes {
        assert!(ping(&n.netns, "172.20.42.1"), "{} → router", n.name);
        assert!(ping(&n.netns, "192.0.2.1"), "{} → external", n.name);
        for m in &plan.nodes {
            assert!(
                ping(&n.netns, &m.addr.addr().to_string()),
                "{} → {}",
                n.name,
                m.name
            );
        }
    }
    // The fabric's bridge does not hand frames to its netfilter.
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &plan.fabric,
            "cat",
            "/proc/sys/net/bridge/bridge-nf-call-iptables",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    // A second lab of the same name is refused, and the first is left intact.
    let e = Lab::up_in(root.path(), spec(&name, false), Path::new("/bin/true"), &Quiet).unwrap_err();
    assert!(e.to_string().contains("name in use"), "{e}");
    assert!(netns::exists(&plan.fabric));

    let names = plan.namespaces();
    Lab::open_in(root.path(), &name).unwrap().down(&Quiet).unwrap();
    for ns in names {
        assert!(!netns::exists(&ns), "{ns} left behind");
    }
    assert!(!root.path().join(&name).exists());
}

#[test]
fn cross_subnet_nodes_reach_each_other_through_the_router() {
    require::root();
    let root = TempDir::new("labroot");
    let name = names::unique("lx");
    let _g = Guard {
        root: root.path(),
        name: name.clone(),
    };
    let lab = Lab::up_in(root.path(), spec(&name, true), Path::new("/bin/true"), &Quiet).unwrap();
    let plan = lab.plan();
    let (a, b) = (&plan.nodes[0], &plan.nodes[1]);
    assert_ne!(a.subnet, b.subnet);
    assert!(ping(&a.netns, &b.addr.addr().to_string()));
    assert!(ping(&b.netns, &a.addr.addr().to_string()));
}

#[test]
fn down_after_a_crashed_up_removes_only_what_was_recorded() {
    require::root();
    let root = TempDir::new("labroot");
    let name = names::unique("lc");
    let _g = Guard {
        root: root.path(),
        name: name.clone(),
    };
    let lab = Lab::up_in(root.path(), spec(&name, false), Path::new("/bin/true"), &Quiet).unwrap();
    // Simulate a crash half-way: one recorded namespace was never made, one daemon record has a
    // PID that is now someone else's (this test process, with another start time).
    let dir = lab.dir().clone();
    let mut state = lab.state().clone();
    netns::del(&state.namespaces[2]).unwrap();
    let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    state.processes.push(brindle_lab::proc::ProcRecord {
        role: "agent bgp-master1".into(),
        pid: sleeper.id() as i32,
        start_time: 1,
        exe: "sleep".into(),
        netns: state.namespaces[2].clone(),
        log: dir.dir.join("x.log"),
    });
    state.complete = false;
    state.save(&dir).unwrap();
    // Someone else's namespace with a similar name must survive.
    let foreign = format!("{name}-bgp-master9");
    netns::add(&foreign).unwrap();
    let res = Lab::open_in(root.path(), &name).unwrap().down(&Quiet);
    let foreign_alive = netns::exists(&foreign);
    netns::del(&foreign).unwrap();
    let sleeper_alive = sleeper.try_wait().unwrap().is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    res.unwrap();
    assert!(foreign_alive, "a namespace the lab did not make was removed");
    assert!(
        sleeper_alive,
        "a process whose start time does not match was killed"
    );
    for ns in &state.namespaces {
        assert!(!netns::exists(ns), "{ns} left behind");
    }
}

#[test]
fn large_labs_use_permanent_neighbours() {
    require::root();
    let root = TempDir::new("labroot");
    let name = names::unique("ln");
    let _g = Guard {
        root: root.path(),
        name: name.clone(),
    };
    let s = LabSpec {
        nodes: 12,
        ..spec(&name, false)
    };
    let lab = Lab::up_in(root.path(), s, Path::new("/bin/true"), &Quiet).unwrap();
    let plan = lab.plan();
    let (first, last) = (&plan.nodes[0], &plan.nodes[11]);
    let out = std::process::Command::new("ip")
        .args(["-n", &first.netns, "neigh", "show", &last.addr.addr().to_string()])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("PERMANENT") && line.contains(&brindle_lab::topology::mac_of(last.addr.addr())),
        "{line}"
    );
    assert!(ping(&first.netns, &last.addr.addr().to_string()));
    assert!(ping(&last.netns, "192.0.2.1"));
}

/// `--ip-family dual` across two subnets, 12 nodes (permanent IPv6 neighbours too): every node
/// reaches the router, the IPv6 "internet" and every other node over IPv6, in its subnet and
/// through the router; IPv6 forwarding is on in the router and every node. `--ip-family 6`:
/// the same fabric without a single IPv4 address on the nodes.
#[test]
fn ipv6_fabric_dual_and_v6_only() {
    require::root();
    let root = TempDir::new("labroot");
    for family in [brindle_lab::spec::IpFamily::Dual, brindle_lab::spec::IpFamily::V6] {
        let name = names::unique("l6");
        let _g = Guard {
            root: root.path(),
            name: name.clone(),
        };
        let (ipip_mode, vxlan_mode) = encap_modes("vxlan", true).unwrap();
        let s = LabSpec {
            nodes: 12,
            ipip_mode,
            vxlan_mode,
            ip_family: family,
            ..spec(&name, true)
        };
        let lab = Lab::up_in(root.path(), s, Path::new("/bin/true"), &Quiet).unwrap();
        let plan = lab.plan().clone();
        let sysctl = |ns: &str, key: &str| -> String {
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", ns, "sysctl", "-n", key])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_eq!(sysctl(&plan.router, "net.ipv6.conf.all.forwarding"), "1");
        let (first, last) = (&plan.nodes[0], &plan.nodes[11]);
        let out = std::process::Command::new("ip")
            .args([
                "-n",
                &first.netns,
                "-6",
                "neigh",
                "show",
                &plan.nodes[10].addr6.addr().to_string(),
            ])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("PERMANENT"),
            "{family:?}"
        );
        for n in [first, last, &plan.nodes[1]] {
            assert_eq!(
                sysctl(&n.netns, "net.ipv6.conf.all.forwarding"),
                "1",
                "{}",
                n.name
            );
            assert!(ping(&n.netns, &n.gateway6.to_string()), "{} → router", n.name);
            assert!(ping(&n.netns, "2001:db8::1"), "{} → external", n.name);
            for m in &plan.nodes {
                assert!(
                    ping(&n.netns, &m.addr6.addr().to_string()),
                    "{} → {} over IPv6",
                    n.name,
                    m.name
                );
            }
            let v4 = std::process::Command::new("ip")
                .args(["-n", &n.netns, "-4", "addr", "show", "dev", "eth0"])
                .output()
                .unwrap();
            let v4 = String::from_utf8_lossy(&v4.stdout);
            if family.has_v4() {
                assert!(v4.contains(&n.addr.to_string()), "{v4}");
            } else {
                assert_eq!(v4, "", "{}: a v6-only node has no IPv4 address", n.name);
            }
        }
        lab.down(&Quiet).unwrap();
    }
}
