//! Calico-only cases on the same lab: tiers with Pass, order between Deny and Allow, a
//! GlobalNetworkPolicy with `namespaceSelector`, NetworkSet `nets`, egress to the lab router's
//! outside address (192.0.2.1), ICMP rules, `serviceAccountSelector`, named ports, Log.

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use brindle_lab::probe::{Job, Outcome, Protocol, probe_from};

use crate::lab_support::BIN;
use crate::model::{Case, Peer, Reach, Step, Suite, tcp};

fn calico(kind: &str, yaml: &str) -> Step {
    Step::Apply(format!("apiVersion: projectcalico.org/v3\nkind: {kind}\n{yaml}"))
}

/// Connects from pod `from` to `addr` over TCP (one attempt, the probe's timeout).
fn connect(s: &Suite, from: &str, addr: SocketAddr) -> Result<Outcome, String> {
    let netns = s.lab.lab().state().pod(from).expect("pod").netns.clone();
    let ns = brindle_netlink::NetnsFd::named(&netns).map_err(|e| e.to_string())?;
    let jobs = [Job {
        addr,
        protocol: Protocol::Tcp,
        expect: String::new(),
    }];
    let out = ns
        .run(|| probe_from(&jobs, Duration::from_millis(700)))
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    Ok(out[0].clone())
}

/// Retries `f` until it returns true or the case's settling time passes.
fn eventually(what: &str, mut f: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        if f()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("never true: {what}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ping(s: &Suite, from: &str, to: &str) -> bool {
    let o = s
        .lab
        .exec(from, &["ping", "-c", "1", "-W", "1", &s.ip(to).to_string()]);
    o.status.success()
}

/// A listener on the lab router's 192.0.2.1 (in its namespace `<lab>-ext`), stopped on drop.
struct Outside(Child);

impl Outside {
    fn start(s: &Suite, port: u16) -> Outside {
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}-ext", s.lab.name))
            .args([
                BIN,
                "lab",
                "serve",
                "--identity",
                "outside",
                "--tcp",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the outside listener");
        Outside(child)
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const NF_LOG_ALL_NETNS: &str = "/proc/sys/net/netfilter/nf_log_all_netns";

pub fn all() -> Vec<Case> {
    vec![
        Case::new(
            "calico: a tier's Pass goes on to the next tier (default), where a deny applies",
            |_| {
                vec![
                    calico("Tier", "metadata: {name: security}\nspec: {order: 100}"),
                    calico(
                        "GlobalNetworkPolicy",
                        "metadata: {name: security.pass-y}\nspec:\n  tier: security\n  selector: projectcalico.org/namespace == 'x'\n  types: [Ingress]\n  ingress:\n  - action: Pass\n    source: {namespaceSelector: ns == 'y'}\n  - action: Deny",
                    ),
                    tcp(
                        80,
                        Reach::default().peer(Peer::ns("x"), Peer::ns("x"), false).peer(
                            Peer::ns("z"),
                            Peer::ns("x"),
                            false,
                        ),
                    ),
                    crate::model::netpol(
                        "metadata: {name: deny-a, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]",
                    ),
                    tcp(
                        80,
                        Reach::default()
                            .peer(Peer::ns("x"), Peer::ns("x"), false)
                            .peer(Peer::ns("z"), Peer::ns("x"), false)
                            .ingress("x/a", false),
                    ),
                ]
            },
        ),
        Case::new("calico: the lower order wins between Deny and Allow", |_| {
            let allow = |order: u32| {
                calico(
                    "GlobalNetworkPolicy",
                    &format!(
                        "metadata: {{name: allow-x}}\nspec:\n  order: {order}\n  selector: projectcalico.org/namespace == 'x'\n  types: [Ingress]\n  ingress:\n  - action: Allow"
                    ),
                )
            };
            vec![
                calico(
                    "GlobalNetworkPolicy",
                    "metadata: {name: deny-z-to-x}\nspec:\n  order: 10\n  selector: projectcalico.org/namespace == 'x'\n  types: [Ingress]\n  ingress:\n  - action: Deny\n    source: {namespaceSelector: ns == 'z'}",
                ),
                allow(20),
                tcp(80, Reach::default().peer(Peer::ns("z"), Peer::ns("x"), false)),
                allow(5),
                tcp(80, Reach::default()),
            ]
        }),
        Case::new("calico: GlobalNetworkPolicy with namespaceSelector", |_| {
            vec![
                calico(
                    "GlobalNetworkPolicy",
                    "metadata: {name: y-from-x}\nspec:\n  namespaceSelector: ns == 'y'\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    source: {namespaceSelector: ns == 'x'}",
                ),
                tcp(
                    80,
                    Reach::default().peer(Peer::ns("y"), Peer::ns("y"), false).peer(
                        Peer::ns("z"),
                        Peer::ns("y"),
                        false,
                    ),
                ),
            ]
        }),
        Case::new("calico: NetworkSet nets as a source", |s| {
            vec![
                calico(
                    "NetworkSet",
                    &format!(
                        "metadata: {{name: trusted, namespace: x, labels: {{role: trusted}}}}\nspec:\n  nets: [{}/32, '{}/128']",
                        s.ip("y/b"),
                        s.ip6("y/b")
                    ),
                ),
                calico(
                    "NetworkPolicy",
                    "metadata: {name: from-trusted, namespace: x}\nspec:\n  selector: pod == 'a'\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    source: {selector: role == 'trusted'}",
                ),
                tcp(
                    80,
                    Reach::default().ingress("x/a", false).cell("y/b", "x/a", true),
                ),
            ]
        }),
        Case::new("calico: serviceAccountSelector", |_| {
            vec![
                calico(
                    "NetworkPolicy",
                    "metadata: {name: from-api, namespace: x}\nspec:\n  selector: pod == 'a'\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    source:\n      namespaceSelector: ns == 'y'\n      serviceAccounts: {names: [api]}",
                ),
                tcp(
                    80,
                    Reach::default().ingress("x/a", false).cell("y/b", "x/a", true),
                ),
            ]
        }),
        Case::new("calico: named ports in a Calico rule", |_| {
            vec![
                calico(
                    "NetworkPolicy",
                    "metadata: {name: named, namespace: x}\nspec:\n  selector: all()\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [serve-81-tcp]}",
                ),
                tcp(81, Reach::default()),
                tcp(80, Reach::default().peer(Peer::ANY, Peer::ns("x"), false)),
            ]
        }),
        Case::new(
            "calico: ICMP rules (echo allowed, TCP denied; then ICMP denied, TCP allowed)",
            |_| {
                let icmp_ok = |want: bool| {
                    Step::Check(Box::new(move |s: &Suite| {
                        eventually(&format!("ping y/a -> x/a is {want}"), || {
                            Ok(ping(s, "y/a", "x/a") == want)
                        })
                    }))
                };
                vec![
                    calico(
                        "NetworkPolicy",
                        "metadata: {name: icmp, namespace: x}\nspec:\n  selector: pod == 'a'\n  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 8}",
                    ),
                    tcp(80, Reach::default().ingress("x/a", false)),
                    icmp_ok(true),
                    calico(
                        "NetworkPolicy",
                        "metadata: {name: icmp, namespace: x}\nspec:\n  selector: pod == 'a'\n  types: [Ingress]\n  ingress:\n  - action: Deny\n    protocol: ICMP\n  - action: Allow",
                    ),
                    tcp(80, Reach::default()),
                    icmp_ok(false),
                ]
            },
        ),
        Case::new(
            "calico: egress to the lab router's outside address 192.0.2.1",
            |_| {
                vec![
                    calico(
                        "NetworkPolicy",
                        "metadata: {name: out-80, namespace: x}\nspec:\n  selector: all()\n  types: [Egress]\n  egress:\n  - action: Allow\n    protocol: TCP\n    destination: {nets: [192.0.2.1/32], ports: [80]}",
                    ),
                    tcp(80, Reach::default().peer(Peer::ns("x"), Peer::ANY, false)),
                    Step::Check(Box::new(|s: &Suite| {
                        let _l80 = Outside::start(s, 80);
                        let _l81 = Outside::start(s, 81);
                        let out = |port: u16| SocketAddr::new(IpAddr::from([192, 0, 2, 1]), port);
                        eventually("x/a reaches 192.0.2.1:80", || {
                            Ok(connect(s, "x/a", out(80))?.reachable())
                        })?;
                        eventually("y/a reaches 192.0.2.1:81", || {
                            Ok(connect(s, "y/a", out(81))?.reachable())
                        })?;
                        match connect(s, "x/a", out(81))? {
                            Outcome::Timeout => Ok(()),
                            other => Err(format!(
                                "x/a -> 192.0.2.1:81 should be dropped, was {}",
                                other.word()
                            )),
                        }
                    })),
                ]
            },
        ),
        Case::new(
            "calico: Log writes a kernel log line with the prefix, then the next rule applies",
            |_| {
                vec![
                    calico(
                        "NetworkPolicy",
                        "metadata: {name: log-z, namespace: x}\nspec:\n  selector: pod == 'a'\n  types: [Ingress]\n  ingress:\n  - action: Log\n    source: {namespaceSelector: ns == 'z'}\n  - action: Deny\n    source: {namespaceSelector: ns == 'z'}\n  - action: Allow",
                    ),
                    tcp(80, Reach::default().peer(Peer::ns("z"), Peer::pod("x/a"), false)),
                    Step::Check(Box::new(|s: &Suite| {
                        // Netfilter logs from namespaces other than the first only with this set.
                        let before = std::fs::read_to_string(NF_LOG_ALL_NETNS)
                            .map_err(|e| format!("{NF_LOG_ALL_NETNS}: {e}"))?;
                        std::fs::write(NF_LOG_ALL_NETNS, "1")
                            .map_err(|e| format!("{NF_LOG_ALL_NETNS}: {e}"))?;
                        let (za, xa) = (s.ip("z/a"), s.ip("x/a"));
                        let want = format!("SRC={za} DST={xa} ");
                        let r = eventually(&format!("a `calico-packet` line with `{want}` in dmesg"), || {
                            let _ = connect(s, "z/a", SocketAddr::new(xa, 81))?;
                            let d = Command::new("dmesg").output().map_err(|e| e.to_string())?;
                            let text = String::from_utf8_lossy(&d.stdout);
                            Ok(text.lines().any(|l| {
                                l.contains("calico-packet") && l.contains(&want) && l.contains("DPT=81 ")
                            }))
                        });
                        let _ = std::fs::write(NF_LOG_ALL_NETNS, before.trim());
                        r
                    })),
                ]
            },
        ),
    ]
}
