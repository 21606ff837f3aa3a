//! No open window and no spoofing, on the suite's lab:
//! - a pod created under a policy that denies a peer is never reachable by that peer, from its
//!   first packet: the peer hammers the pod's (fixed) address from before the CNI ADD, and no
//!   answer at all (not even a refusal) may come back, while an allowed peer gets through;
//! - while bgp-master1's agent is killed (SIGKILL) and restarted, the denied peer never gets an
//!   answer from x/a and an allowed established connection to x/a keeps echoing;
//! - a chain of the agent's nftables table flushed with `nft` behind its back is back (the time
//!   it took is printed), and the policy holds again;
//! - a pod on bgp-master1 that forges the address of a pod on bgp-node1 as its source does not
//!   reach a pod on bgp-node2 (the same datagram from its own address does).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use brindle_lab::probe::{Job, Outcome, Protocol, probe_from};
use brindle_netlink::NetnsFd;

use crate::model::{Case, Reach, Step, Suite, netpol, tcp};

const X_A_FROM_B: &str = "metadata: {name: x-a-from-b, namespace: x}\nspec:\n  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}";

fn x_a_from_b() -> Reach {
    Reach::default().ingress("x/a", false).cell("x/b", "x/a", true)
}

fn netns_of(s: &Suite, pod: &str) -> String {
    s.lab.lab().state().pod(pod).expect("pod").netns.clone()
}

/// Attempts from `from` to `addr` until `stop`, each with a short timeout: (when, outcome).
fn hammer(
    s: &Suite,
    from: &str,
    addr: SocketAddr,
    stop: &AtomicBool,
) -> Result<Vec<(Duration, Outcome)>, String> {
    let ns = NetnsFd::named(&netns_of(s, from)).map_err(|e| e.to_string())?;
    let start = Instant::now();
    ns.run(|| {
        let mut seen = Vec::new();
        let jobs = [Job {
            addr,
            protocol: Protocol::Tcp,
            expect: String::new(),
        }];
        while !stop.load(Ordering::Relaxed) {
            let o = probe_from(&jobs, Duration::from_millis(150)).map_err(|e| e.to_string())?;
            seen.push((start.elapsed(), o[0].clone()));
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(seen)
    })
    .map_err(|e| e.to_string())?
}

/// An answer of any kind (a handshake or a reset) means packets got through.
fn answered(o: &Outcome) -> bool {
    matches!(o, Outcome::Connected | Outcome::Refused)
}

fn new_pod_under_deny(s: &Suite) -> Result<(), String> {
    let xa = s.ip("x/a");
    let IpAddr::V4(v4) = xa else {
        return Err("the model's pods are IPv4".into());
    };
    let o = v4.octets();
    let fixed = IpAddr::from([o[0], o[1], o[2], 200]);
    let target = SocketAddr::new(fixed, 80);
    let stop = AtomicBool::new(false);
    let forbidden = Mutex::new(None);
    let allowed = Mutex::new(None);
    let created = std::thread::scope(|sc| {
        sc.spawn(|| *forbidden.lock().unwrap() = Some(hammer(s, "z/a", target, &stop)));
        sc.spawn(|| *allowed.lock().unwrap() = Some(hammer(s, "x/b", target, &stop)));
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        let r = s.lab_file(
            "apply",
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: late\n  namespace: x\n  labels: {{pod: late}}\n  annotations: {{cni.projectcalico.org/ipAddrs: '[\"{fixed}\"]'}}\nspec:\n  nodeName: bgp-master1\n  containers: [{{name: c}}]\n"
            ),
        );
        // Hammer on while the listener starts and a while after.
        let listening = r.as_ref().ok().map(|_| {
            let mut lab = s.lab.lab();
            lab.ensure_listeners(&[80], &[Protocol::Tcp])
                .map_err(|e| e.to_string())
        });
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        (r, listening, t0.elapsed())
    });
    let (r, listening, took) = created;
    r?;
    if let Some(l) = listening {
        l?;
    }
    let forbidden = forbidden.into_inner().unwrap().expect("hammer ran")?;
    let allowed = allowed.into_inner().unwrap().expect("hammer ran")?;
    let leaks: Vec<String> = forbidden
        .iter()
        .filter(|(_, o)| answered(o))
        .map(|(t, o)| format!("{:.3}s {}", t.as_secs_f64(), o.word()))
        .collect();
    if !leaks.is_empty() {
        return Err(format!(
            "z/a got answers from x/late ({fixed}) under a policy that denies it ({} of {} attempts; the pod was made in {:.2}s): {}",
            leaks.len(),
            forbidden.len(),
            took.as_secs_f64(),
            leaks.join(", ")
        ));
    }
    if !allowed.iter().any(|(_, o)| *o == Outcome::Connected) {
        return Err(format!(
            "x/b never reached x/late ({fixed}), which the policy allows ({} attempts)",
            allowed.len()
        ));
    }
    Ok(())
}

/// Sends `payload` from pod `from` (its socket bound to `src`) to `dst` until `f` says stop.
fn send_from(s: &Suite, from: &str, src: IpAddr, dst: SocketAddr, payload: &[u8]) -> Result<(), String> {
    let ns = NetnsFd::named(&netns_of(s, from)).map_err(|e| e.to_string())?;
    ns.run(|| -> std::io::Result<()> {
        let u = UdpSocket::bind(SocketAddr::new(src, 0))?;
        for _ in 0..5 {
            u.send_to(payload, dst)?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("send from {from} as {src}: {e}"))
}

fn no_spoofing(s: &Suite) -> Result<(), String> {
    no_spoofing_of(s, false)
}

fn no_spoofing6(s: &Suite) -> Result<(), String> {
    no_spoofing_of(s, true)
}

/// x/a sends as y/a's address (IPv4, or IPv6 with `v6`) to x/c: dropped; its own address
/// passes (the control).
fn no_spoofing_of(s: &Suite, v6: bool) -> Result<(), String> {
    // x/a is on bgp-master1, y/a on bgp-node1, x/c on bgp-node2 (the model's placement).
    let ip = |id: &str| if v6 { s.ip6(id) } else { s.ip(id) };
    let (real, forged, dst_ip) = (ip("x/a"), ip("y/a"), ip("x/c"));
    let port = 9797;
    let any: IpAddr = if v6 {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let rx = NetnsFd::named(&netns_of(s, "x/c"))
        .and_then(|ns| ns.run(|| UdpSocket::bind((any, port))))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("bind in x/c: {e}"))?;
    rx.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let sender_ns = netns_of(s, "x/a");
    let ip = |verb: &str| {
        std::process::Command::new("ip")
            .args([
                "-n",
                &sender_ns,
                "addr",
                verb,
                &format!("{forged}/{}", if v6 { 128 } else { 32 }),
                "dev",
                "eth0",
            ])
            .args(if v6 && verb == "add" { &["nodad"][..] } else { &[] })
            .status()
            .map_err(|e| e.to_string())
    };
    ip("add")?;
    let dst = SocketAddr::new(dst_ip, port);
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 64];
    let sent = (|| -> Result<(), String> {
        while Instant::now() < deadline {
            send_from(s, "x/a", forged, dst, b"forged")?;
            send_from(s, "x/a", real, dst, b"real")?;
            while let Ok((n, from)) = rx.recv_from(&mut buf) {
                got.push((String::from_utf8_lossy(&buf[..n]).into_owned(), from));
            }
        }
        Ok(())
    })();
    let _ = ip("del");
    sent?;
    if let Some((_, from)) = got.iter().find(|(p, _)| p == "forged") {
        return Err(format!(
            "x/c received a datagram x/a sent as {forged} (y/a's address), from {from}"
        ));
    }
    if !got.iter().any(|(p, _)| p == "real") {
        return Err(format!(
            "x/c received nothing from x/a's own address {real}: the check proves nothing"
        ));
    }
    Ok(())
}

/// An echo server in pod `server` and a client in pod `client` exchanging a byte every 50 ms
/// until `stop`; the error says when the exchange first failed.
fn echo_until(s: &Suite, client: &str, server: &str, port: u16, stop: &AtomicBool) -> Result<usize, String> {
    let listener = NetnsFd::named(&netns_of(s, server))
        .and_then(|ns| ns.run(|| TcpListener::bind(("0.0.0.0", port))))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("listen in {server}: {e}"))?;
    let dst = SocketAddr::new(s.ip(server), port);
    let mut c = NetnsFd::named(&netns_of(s, client))
        .and_then(|ns| ns.run(|| TcpStream::connect_timeout(&dst, Duration::from_secs(2))))
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("connect {client} -> {dst}: {e}"))?;
    let (mut conn, _) = listener.accept().map_err(|e| e.to_string())?;
    let server_side = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        while conn.read_exact(&mut b).is_ok() {
            if conn.write_all(&b).is_err() {
                break;
            }
        }
    });
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let start = Instant::now();
    let mut n = 0;
    let mut b = [0u8; 1];
    let r = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(n);
        }
        if let Err(e) = c.write_all(b"e").and_then(|()| c.read_exact(&mut b)) {
            break Err(format!(
                "the established connection {client} -> {dst} failed after {n} echoes, at {:.3}s: {e}",
                start.elapsed().as_secs_f64()
            ));
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(c);
    let _ = server_side.join();
    r
}

fn restart_without_a_window(s: &Suite) -> Result<(), String> {
    let target = SocketAddr::new(s.ip("x/a"), 80);
    let stop = AtomicBool::new(false);
    let (forbidden, echoed, restarted) = std::thread::scope(|sc| {
        let f = sc.spawn(|| hammer(s, "z/a", target, &stop));
        let e = sc.spawn(|| echo_until(s, "x/b", "x/a", 9898, &stop));
        std::thread::sleep(Duration::from_millis(500));
        let out = Command::new(crate::lab_support::BIN)
            .args(["lab", "restart", "--name", &s.lab.name, "bgp-master1", "--kill"])
            .env("BRINDLE_LAB_ROOT", s.lab.root.path())
            .output();
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        (f.join().unwrap(), e.join().unwrap(), out)
    });
    let out = restarted.map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "lab restart failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let echoes = echoed?;
    let forbidden = forbidden?;
    let leaks: Vec<String> = forbidden
        .iter()
        .filter(|(_, o)| answered(o))
        .map(|(t, o)| format!("{:.3}s {}", t.as_secs_f64(), o.word()))
        .collect();
    if !leaks.is_empty() {
        return Err(format!(
            "z/a got answers from x/a while bgp-master1's agent restarted ({} of {}): {}",
            leaks.len(),
            forbidden.len(),
            leaks.join(", ")
        ));
    }
    eprintln!(
        "  restart: {echoes} echoes on the established connection, {} denied attempts",
        forbidden.len()
    );
    Ok(())
}

fn nft_in(s: &Suite, node: &str, args: &[&str]) -> Result<String, String> {
    let o = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}-{node}", s.lab.name))
        .arg("nft")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "nft {args:?} on {node}: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The rules of a chain as `nft list chain` prints them (the lines between the braces that are
/// not the chain's header or comments).
fn rule_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("table")
                && !l.starts_with("chain")
                && *l != "}"
                && !l.starts_with('#')
        })
        .count()
}

fn tampered_chain_comes_back(s: &Suite) -> Result<(), String> {
    let host_if = s
        .lab
        .lab()
        .state()
        .pod("x/a")
        .expect("x/a")
        .host_if
        .clone()
        .expect("x/a's veth");
    let chain = format!("filter-cali-tw-{host_if}");
    let before = nft_in(s, "bgp-master1", &["list", "chain", "ip", "brindle", &chain])?;
    if rule_lines(&before) == 0 {
        return Err(format!("x/a's ingress chain {chain} has no rules:\n{before}"));
    }
    nft_in(s, "bgp-master1", &["flush", "chain", "ip", "brindle", &chain])?;
    let flushed = Instant::now();
    loop {
        let now = nft_in(s, "bgp-master1", &["list", "chain", "ip", "brindle", &chain])?;
        if rule_lines(&now) == rule_lines(&before) {
            eprintln!(
                "  nft: {chain} flushed behind the agent's back was back in {:.0} ms",
                flushed.elapsed().as_secs_f64() * 1000.0
            );
            return Ok(());
        }
        if flushed.elapsed() > Duration::from_secs(5) {
            return Err(format!("{chain} still not repaired 5 s after a flush:\n{now}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn all() -> Vec<Case> {
    vec![
        Case::new(
            "no open window: a pod made under a deny policy is never reachable by the denied peer",
            |_| {
                vec![
                    netpol(
                        "metadata: {name: locked, namespace: x}\nspec:\n  podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, late]}]}\n  ingress:\n  - from:\n    - podSelector: {matchLabels: {pod: b}}",
                    ),
                    // The policy is on bgp-master1 (x/a is there) before the pod is made there.
                    tcp(
                        80,
                        Reach::default().ingress("x/a", false).cell("x/b", "x/a", true),
                    ),
                    Step::Check(Box::new(new_pod_under_deny)),
                ]
            },
        ),
        Case::new(
            "no open window: bgp-master1's agent killed and restarted under a policy",
            |_| {
                vec![
                    netpol(X_A_FROM_B),
                    tcp(80, x_a_from_b()),
                    Step::Check(Box::new(restart_without_a_window)),
                    tcp(80, x_a_from_b()),
                ]
            },
        ),
        Case::new(
            "no open window: a chain flushed with nft behind the agent's back is repaired",
            |_| {
                vec![
                    netpol(X_A_FROM_B),
                    tcp(80, x_a_from_b()),
                    Step::Check(Box::new(tampered_chain_comes_back)),
                    tcp(80, x_a_from_b()),
                ]
            },
        ),
        Case::new(
            "no spoofing: a pod forging another node's pod address does not reach a third node's pod",
            |_| vec![Step::Check(Box::new(no_spoofing))],
        ),
        Case::new(
            "no spoofing (IPv6): a pod forging another node's pod IPv6 address does not reach a third node's pod",
            |_| vec![Step::Check(Box::new(no_spoofing6))],
        ),
    ]
}
