//! Deleting the conntrack flows of one address from a big table: Brindle's
//! [`Conntrack::delete_flows_of`] (one ctnetlink dump, one batch of deletes) against the anchor,
//! Debian's `conntrack` tool run the way Felix runs it (`felix/conntrack/conntrack.go`: one
//! `conntrack --family ipv4 --delete --orig-src ADDR` and one `--reply-src ADDR`), interleaved
//! round by round in one namespace of our own. Also the listing alone (`Conntrack::flows` vs
//! `conntrack -L`).
//!
//! The table: N background flows (UDP from another address of the pod to many ports of the
//! node) and M flows of the address to delete, made again before every round.
//!
//! `cargo bench -p brindle-netlink --bench conntrack [-- N M ROUNDS]` (default 100000 100 5;
//! needs root and the `conntrack` package).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

use brindle_netlink::{Conntrack, NetnsFd};
use brindle_testkit::Netns;

const NODE: &str = "10.98.0.1";
const DOOMED: &str = "10.98.0.2";
const BACKGROUND: &str = "10.98.0.3";

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// Sends one datagram from each of `sockets` ephemeral ports of `src` to each of `ports` ports
/// of the node: `sockets × ports` flows.
fn flows(pod: &Netns, src: &str, sockets: usize, ports: u16) {
    let src: IpAddr = src.parse().unwrap();
    pod.spawn_in(move || {
        for _ in 0..sockets {
            let s = UdpSocket::bind(SocketAddr::new(src, 0)).unwrap();
            for p in 0..ports {
                let to = SocketAddr::new(NODE.parse().unwrap(), 10000 + p);
                s.send_to(b"x", to).unwrap();
            }
        }
    })
    .join()
    .unwrap();
}

fn count(ct: &mut Conntrack, addr: IpAddr) -> (usize, usize) {
    let all = ct.flows(false).unwrap();
    let of = all.iter().filter(|f| f.involves(addr)).count();
    (all.len(), of)
}

/// User-space CPU seconds of this process so far.
fn user_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_utime.tv_sec as f64 + u.ru_utime.tv_usec as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    brindle_testkit::require::root();
    brindle_testkit::require::command("conntrack", "conntrack");
    brindle_testkit::require::command("nft", "nftables");
    let (n, m, rounds) = (arg(1, 100_000), arg(2, 100), arg(3, 5));
    let node = Netns::new("ctbn");
    let pod = Netns::new("ctbp");
    node.veth("ct0", &pod, "eth0");
    node.ip(&["addr", "add", &format!("{NODE}/24"), "dev", "ct0"]);
    node.ip(&["link", "set", "ct0", "up"]);
    // BACKGROUND first: the ping below leaves from the primary address.
    for a in [BACKGROUND, DOOMED] {
        pod.ip(&["addr", "add", &format!("{a}/24"), "dev", "eth0"]);
    }
    pod.ip(&["link", "set", "eth0", "up"]);
    // Conntrack on in the node, flows kept for the whole run.
    node.run(
        "nft",
        &[
            "add table ip ctbench; add chain ip ctbench input { type filter hook input priority 0; }; \
           add rule ip ctbench input ct state established accept",
        ],
    );
    node.sysctl("net.netfilter.nf_conntrack_udp_timeout", "3600");
    assert!(pod.reach(NODE), "veth passes no traffic");
    let mut ct = Conntrack::open(&NetnsFd::named(node.name()).unwrap()).unwrap();
    let ports = 1000u16.min(n as u16).max(1);
    flows(&pod, BACKGROUND, n.div_ceil(usize::from(ports)), ports);
    let doomed: IpAddr = DOOMED.parse().unwrap();
    let (total, _) = count(&mut ct, doomed);
    println!("table: {total} flows ({n} asked) + {m} of {DOOMED} per round, {rounds} rounds");

    let (mut ours, mut tool, mut list_ours, mut list_tool) = (vec![], vec![], vec![], vec![]);
    let mut ours_user = vec![];
    for round in 0..rounds {
        for first_ours in [round % 2 == 0, round % 2 != 0] {
            flows(&pod, DOOMED, 1, m as u16);
            let (_, before) = count(&mut ct, doomed);
            assert_eq!(before, m, "the round's flows are not all there");
            let t = Instant::now();
            if first_ours {
                let u = user_cpu();
                let d = ct.delete_flows_of(&[doomed]).unwrap();
                ours.push(t.elapsed().as_secs_f64());
                ours_user.push(user_cpu() - u);
                assert_eq!(d.deleted, m);
            } else {
                for dir in ["--orig-src", "--reply-src"] {
                    // Exit status 1 with "0 flow entries" when there is nothing to delete.
                    let _ = node
                        .cmd("conntrack")
                        .args(["--family", "ipv4", "--delete", dir, DOOMED])
                        .output()
                        .unwrap();
                }
                tool.push(t.elapsed().as_secs_f64());
            }
            assert_eq!(count(&mut ct, doomed).1, 0, "flows of {DOOMED} left");
        }
        let t = Instant::now();
        let listed = ct.flows(false).unwrap().len();
        list_ours.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let out = node.cmd("conntrack").args(["-L", "-f", "ipv4"]).output().unwrap();
        list_tool.push(t.elapsed().as_secs_f64());
        assert!(listed + 10 >= out.stdout.iter().filter(|b| **b == b'\n').count());
    }
    let ms = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{:.1}", x * 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (mo, mt) = (median(&mut ours), median(&mut tool));
    let (lo, lt) = (median(&mut list_ours), median(&mut list_tool));
    println!("delete the flows of one address:");
    println!(
        "  brindle (dump + batched deletes): median {:.1} ms  [{}]",
        mo * 1e3,
        ms(&ours)
    );
    println!(
        "    of which user-space CPU: median {:.1} ms",
        median(&mut ours_user) * 1e3
    );
    println!(
        "  conntrack -D --orig-src, --reply-src (Felix): median {:.1} ms  [{}]",
        mt * 1e3,
        ms(&tool)
    );
    println!("  ratio brindle / conntrack tool: {:.2}", mo / mt);
    println!("list the table:");
    println!("  brindle Conntrack::flows: median {:.1} ms", lo * 1e3);
    println!("  conntrack -L: median {:.1} ms", lt * 1e3);
    println!("  ratio: {:.2}", lo / lt);
}
