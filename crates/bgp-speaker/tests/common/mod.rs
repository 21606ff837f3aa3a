//! Interop harness: namespaces, a Brindle speaker running inside one, and real peer daemons
//! (BIRD 2, BIRD 1.6, GoBGP, FRR, ExaBGP) started with their own sockets and pid files in a
//! TempDir. Every namespace is a `Netns`, every daemon a `Daemon` guard.
#![allow(dead_code)]

pub mod daemons;
pub mod testd;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use brindle_bgp_speaker::*;
use brindle_testkit::Netns;
use ipnet::IpNet;
use tokio::runtime::Runtime;

pub const AS: u32 = 64512;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; panics with `what` and the
/// `context` dump on timeout.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool, context: impl Fn() -> String) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}\n{}", context());
}

/// Namespaces joined on one bridge (in a fabric namespace): node `i` gets `172.20.42.(80+i)/24`
/// on `eth0`, as in the lab.
pub struct Fabric {
    pub nodes: Vec<Netns>,
    fabric: Netns,
}

impl Fabric {
    pub fn new(n: usize) -> Fabric {
        let fabric = Netns::new("bgpf");
        fabric.ip(&["link", "add", "br0", "type", "bridge"]);
        fabric.ip(&["link", "set", "br0", "up"]);
        let mut nodes = Vec::new();
        for i in 0..n {
            let ns = Netns::new("bgpn");
            let port = format!("p{i}");
            fabric.veth(&port, &ns, "eth0");
            fabric.ip(&["link", "set", &port, "master", "br0"]);
            fabric.ip(&["link", "set", &port, "up"]);
            ns.ip(&["addr", "add", &format!("172.20.42.{}/24", 80 + i), "dev", "eth0"]);
            ns.ip(&[
                "addr",
                "add",
                &format!("fd80:42::{}/64", 80 + i),
                "dev",
                "eth0",
                "nodad",
            ]);
            ns.ip(&["link", "set", "eth0", "up"]);
            nodes.push(ns);
        }
        Fabric { nodes, fabric }
    }

    pub fn addr(i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(172, 20, 42, 80 + i as u8))
    }
}

/// Short timers so restarts recover in about a second (Calico's are 2 s / 5 s / 5–30 s).
pub fn test_timers() -> PeerTimers {
    PeerTimers {
        connect_delay: Duration::from_millis(200),
        connect_retry: Duration::from_secs(1),
        error_wait_min: Duration::from_secs(1),
        error_wait_max: Duration::from_secs(4),
    }
}

pub fn peer(addr: &str, passive: bool, password: Option<&str>) -> PeerConfig {
    PeerConfig {
        passive,
        password: password.map(str::to_string),
        hold_time: 9,
        timers: test_timers(),
        ..PeerConfig::new(ip(addr), AS, PeerType::Mesh)
    }
}

/// A Brindle speaker serving inside a namespace (its own thread and runtime), with a route
/// subscription kept up to date.
pub struct BrindleNode {
    handle: SpeakerHandle,
    rt: Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    learned: RefCell<Learned>,
}

struct Learned {
    sub: RouteSubscription,
    routes: BTreeMap<IpNet, Route>,
    events: Vec<RouteEvent>,
}

impl BrindleNode {
    pub fn start(ns: &Netns, addr: IpAddr) -> BrindleNode {
        let IpAddr::V4(v4) = addr else { panic!("IPv4 node") };
        BrindleNode::start_with(ns, SpeakerConfig::new(v4, AS))
    }

    /// A dual-stack node: also listens on [::]:179 and uses `v6` as its IPv6 next hop.
    pub fn start_dual(ns: &Netns, v4: &str, v6: &str) -> BrindleNode {
        let IpAddr::V4(a4) = ip(v4) else { panic!("IPv4") };
        let IpAddr::V6(a6) = ip(v6) else { panic!("IPv6") };
        let mut cfg = SpeakerConfig::new(a4, AS);
        cfg.node_v6 = Some(a6);
        cfg.listen.push(std::net::SocketAddr::from((
            std::net::Ipv6Addr::UNSPECIFIED,
            BGP_PORT,
        )));
        BrindleNode::start_with(ns, cfg)
    }

    pub fn start_with(ns: &Netns, cfg: SpeakerConfig) -> BrindleNode {
        let (htx, hrx) = std_mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = ns.spawn_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let h = Speaker::start(cfg).expect("speaker starts");
                htx.send(h.clone()).unwrap();
                let _ = stop_rx.await;
                let _ = h.shutdown().await;
                // Let the Cease NOTIFICATIONs go out.
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
        });
        let handle = hrx.recv().expect("speaker handle");
        // As the agent does: what this node originates is known from the start (End-of-RIB
        // follows the first set_originated).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(handle.set_originated(Vec::new())).unwrap();
        let sub = rt.block_on(handle.subscribe_routes()).unwrap();
        let routes = sub.snapshot.iter().map(|r| (r.prefix, r.clone())).collect();
        BrindleNode {
            handle,
            rt,
            stop: Some(stop_tx),
            thread: Some(thread),
            learned: RefCell::new(Learned {
                sub,
                routes,
                events: Vec::new(),
            }),
        }
    }

    pub fn set_peers(&self, peers: Vec<PeerConfig>) {
        self.rt.block_on(self.handle.set_peers(peers)).unwrap();
    }

    pub fn try_set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), Error> {
        self.rt.block_on(self.handle.set_peers(peers))
    }

    /// `SpeakerHandle::reconfigure`: new settings and peers applied in place.
    pub fn reconfigure(&self, cfg: SpeakerConfig, peers: Vec<PeerConfig>) -> Result<(), Error> {
        self.rt.block_on(self.handle.reconfigure(cfg, peers))
    }

    pub fn originate(&self, prefixes: &[&str]) {
        self.rt
            .block_on(
                self.handle
                    .set_originated(prefixes.iter().map(|p| net(p)).collect()),
            )
            .unwrap();
    }

    /// What this node originates, with communities.
    pub fn originate_routes(&self, routes: Vec<Originated>) {
        self.rt
            .block_on(self.handle.set_originated_routes(routes))
            .unwrap();
    }

    pub fn status(&self) -> Vec<PeerStatus> {
        self.rt.block_on(self.handle.status()).unwrap()
    }

    pub fn peer_status(&self, addr: &str) -> PeerStatus {
        self.status()
            .into_iter()
            .find(|p| p.address == ip(addr))
            .unwrap_or_else(|| panic!("no peer {addr}"))
    }

    pub fn established(&self, addr: &str) -> bool {
        self.peer_status(addr).info == "Established"
    }

    /// The best learned routes now (applies queued events).
    pub fn routes(&self) -> BTreeMap<IpNet, Route> {
        let mut l = self.learned.borrow_mut();
        while let Ok(e) = l.sub.events.try_recv() {
            match &e {
                RouteEvent::Add(r) | RouteEvent::Replace(r) => {
                    l.routes.insert(r.prefix, r.clone());
                }
                RouteEvent::Withdraw(p) => {
                    l.routes.remove(p);
                }
            }
            l.events.push(e);
        }
        l.routes.clone()
    }

    /// Every route event seen so far.
    pub fn events(&self) -> Vec<RouteEvent> {
        self.routes();
        self.learned.borrow().events.clone()
    }

    pub fn route_via(&self, prefix: &str) -> Option<IpAddr> {
        self.routes().get(&net(prefix)).map(|r| r.next_hop)
    }

    /// The learned prefixes, as text, sorted.
    pub fn prefixes(&self) -> Vec<String> {
        self.routes().keys().map(|p| p.to_string()).collect()
    }

    pub fn dump(&self) -> String {
        format!("{:#?}\nroutes: {:#?}", self.status(), self.routes())
    }
}

impl Drop for BrindleNode {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
