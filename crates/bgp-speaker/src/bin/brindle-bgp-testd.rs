//! `brindle-bgp-testd`: the speaker as a process of its own, for tests that `kill -9` it and
//! benchmarks that measure its RSS and CPU next to BIRD, FRR and GoBGP. Not the product (the
//! node agent embeds the speaker); a thin shell over the library's API.
//!
//! ```text
//! brindle-bgp-testd --router-id A --as N [--listen ADDR:PORT]... [--node-v4 A] [--node-v6 A]
//!     [--bind-node-ip] [--peer SPEC]... [--originate ROUTE]... [--pool PREFIX]...
//!     [--bgpfilter FILE]... [--cluster-id A] [--restarting] [--no-forwarding-state]
//!     [--deferral-s N] [--stale-s N] [--threads N] --ctl PATH
//! SPEC: ADDR[,as=N][,passive][,hold=S][,keepalive=S][,port=P][,password=X][,local-as=N]
//!       [,gr=S|gr=off][,rr-client][,next-hop=self|keep][,ttl=HOPS][,allow-local-as=N]
//!       [,no-source][,fast][,families=4|6|4+6][,filters=NAME+NAME]
//!       (fast: 200 ms connect delay, 1 s retry/error wait; families: default the address's)
//! ROUTE: PREFIX[,comm=aa:nn|aa:nn:mm]...[,iface=NAME]
//! ```
//!
//! `--bind-node-ip` is Calico's `bindMode: NodeIP`: listen on the node addresses only.
//! `--bgpfilter` reads BGPFilter resources (YAML or JSON manifests) that peers name.
//!
//! The control socket takes one command per connection: `count` (routes from all peers),
//! `status` (one line per peer: name state info routes stale), `routes` (`prefix via nh`),
//! `converged` (`yes`/`no`), `originate ROUTE...`, `filters ADDR [NAME...]` (a peer's filters,
//! changed live), `shutdown`, `shutdown-graceful`.
//! `ready` is printed on stdout once the listeners are bound.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use brindle_bgp_speaker::*;
use ipnet::IpNet;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

struct Args {
    cfg: SpeakerConfig,
    peers: Vec<PeerConfig>,
    originate: Vec<Originated>,
    filters: BTreeMap<String, BgpFilter>,
    ctl: PathBuf,
    threads: usize,
}

fn die(msg: String) -> ! {
    eprintln!("brindle-bgp-testd: {msg}");
    std::process::exit(2)
}

fn parse<T: std::str::FromStr>(what: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| die(format!("{what}: cannot parse {v:?}")))
}

/// `PREFIX[,comm=C]...[,iface=NAME]`.
fn route_spec(spec: &str) -> Result<Originated, String> {
    let mut parts = spec.split(',');
    let prefix: IpNet = parts
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| format!("bad prefix in {spec:?}"))?;
    let mut o = Originated::plain(prefix);
    let mut communities = Vec::new();
    for kv in parts {
        match kv.split_once('=') {
            Some(("comm", c)) => communities.push(c.parse::<Community>().map_err(|e| e.to_string())?),
            Some(("iface", i)) => o.interface = Some(i.to_string()),
            _ => return Err(format!("unknown route option {kv:?}")),
        }
    }
    o.communities = CommunitySet::of(communities);
    Ok(o)
}

/// The filters named `names` (`a+b`), in order.
fn pick_filters(names: &str, all: &BTreeMap<String, BgpFilter>) -> Result<Vec<BgpFilter>, String> {
    names
        .split('+')
        .filter(|n| !n.is_empty())
        .map(|n| all.get(n).cloned().ok_or_else(|| format!("no BGPFilter {n:?}")))
        .collect()
}

fn load_filters(path: &str, into: &mut BTreeMap<String, BgpFilter>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| die(format!("{path}: {e}")));
    let list = brindle_model::load_str(path, &text).unwrap_or_else(|e| die(e.to_string()));
    for r in list {
        let brindle_model::Resource::BGPFilter(f) = r else {
            die(format!("{path}: only BGPFilter resources"))
        };
        let bf = BgpFilter::from_resource(&f).unwrap_or_else(|e| die(e.to_string()));
        into.insert(bf.name.clone(), bf);
    }
}

fn peer_spec(spec: &str, local_as: u32, filters: &BTreeMap<String, BgpFilter>) -> PeerConfig {
    let mut parts = spec.split(',');
    let addr: IpAddr = parse("peer address", parts.next().unwrap_or_default());
    let mut p = PeerConfig::new(addr, local_as, PeerType::Global);
    for kv in parts {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "as" => p.remote_as = parse(k, v),
            "passive" => p.passive = true,
            "hold" => p.hold_time = parse(k, v),
            "keepalive" => p.keepalive = Some(parse(k, v)),
            "port" => p.port = parse(k, v),
            "password" => p.password = Some(v.to_string()),
            "local-as" => p.local_as = Some(parse(k, v)),
            "gr" if v == "off" => p.graceful_restart_time = None,
            "gr" => p.graceful_restart_time = Some(parse(k, v)),
            "rr-client" => p.rr_client = true,
            "next-hop" if v == "self" => p.next_hop = NextHopMode::SetSelf,
            "next-hop" if v == "keep" => p.next_hop = NextHopMode::Keep,
            "ttl" => p.ttl_security = Some(parse(k, v)),
            "allow-local-as" => p.allow_local_as = parse(k, v),
            "no-source" => p.use_node_ip = false,
            "families" => {
                p.families = v
                    .split('+')
                    .map(|f| match f {
                        "4" => Family::IPV4_UNICAST,
                        "6" => Family::IPV6_UNICAST,
                        _ => die(format!("families: {v:?} is not 4, 6 or 4+6")),
                    })
                    .collect()
            }
            "filters" => p.filters = pick_filters(v, filters).unwrap_or_else(|e| die(e)).into(),
            "mesh" => p.peer_type = PeerType::Mesh,
            "fast" => {
                p.timers = PeerTimers {
                    connect_delay: Duration::from_millis(200),
                    connect_retry: Duration::from_secs(1),
                    error_wait_min: Duration::from_secs(1),
                    error_wait_max: Duration::from_secs(4),
                }
            }
            _ => die(format!("unknown peer option {kv:?}")),
        }
    }
    p
}

fn args() -> Args {
    let mut it = std::env::args().skip(1);
    let mut router_id = None;
    let mut asn = None;
    let mut rest: Vec<(String, String)> = Vec::new();
    let mut flags = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--restarting" | "--no-forwarding-state" | "--bind-node-ip" => flags.push(a),
            "--router-id" => router_id = Some(parse::<Ipv4Addr>(&a, &it.next().unwrap_or_default())),
            "--as" => asn = Some(parse::<u32>(&a, &it.next().unwrap_or_default())),
            _ if a.starts_with("--") => {
                let v = it.next().unwrap_or_else(|| die(format!("{a} needs a value")));
                rest.push((a, v));
            }
            _ => die(format!("unexpected argument {a:?}")),
        }
    }
    let router_id = router_id.unwrap_or_else(|| die("--router-id is required".into()));
    let asn = asn.unwrap_or_else(|| die("--as is required".into()));
    let mut cfg = SpeakerConfig::new(router_id, asn);
    cfg.restarting = flags.iter().any(|f| f == "--restarting");
    cfg.forwarding_preserved = !flags.iter().any(|f| f == "--no-forwarding-state");
    let mut listen = Vec::new();
    let (mut peer_specs, mut originate, mut ctl, mut threads) = (Vec::new(), Vec::new(), None, 1);
    let mut filters = BTreeMap::new();
    for (k, v) in rest {
        match k.as_str() {
            "--listen" => listen.push(parse::<SocketAddr>(&k, &v)),
            "--node-v4" => cfg.node_v4 = Some(parse(&k, &v)),
            "--node-v6" => cfg.node_v6 = Some(parse(&k, &v)),
            "--peer" => peer_specs.push(v),
            "--bgpfilter" => load_filters(&v, &mut filters),
            "--originate" => originate.push(route_spec(&v).unwrap_or_else(|e| die(e))),
            "--pool" => cfg.export.learned_to_ebgp.push(parse(&k, &v)),
            "--cluster-id" => cfg.cluster_id = Some(parse(&k, &v)),
            "--deferral-s" => cfg.selection_deferral = Duration::from_secs(parse(&k, &v)),
            "--stale-s" => cfg.stale_routes_time = Duration::from_secs(parse(&k, &v)),
            "--ctl" => ctl = Some(PathBuf::from(v)),
            "--threads" => threads = parse(&k, &v),
            _ => die(format!("unknown option {k}")),
        }
    }
    if !listen.is_empty() {
        cfg.listen = listen;
    }
    if flags.iter().any(|f| f == "--bind-node-ip") {
        let port = cfg.listen.first().map_or(BGP_PORT, SocketAddr::port);
        cfg.listen_on_node_addresses(port);
    }
    let peers = peer_specs.iter().map(|s| peer_spec(s, asn, &filters)).collect();
    Args {
        cfg,
        peers,
        originate,
        filters,
        ctl: ctl.unwrap_or_else(|| die("--ctl is required".into())),
        threads,
    }
}

/// The learned routes, kept from a subscription taken on the first `routes` command (a
/// subscriber costs the speaker work per change, which benchmarks must not pay).
struct Routes {
    sub: Option<RouteSubscription>,
    table: BTreeMap<IpNet, Route>,
}

impl Routes {
    async fn current(&mut self, h: &SpeakerHandle) -> String {
        if self.sub.is_none() {
            match h.subscribe_routes().await {
                Ok(s) => {
                    self.table = s.snapshot.iter().map(|r| (r.prefix, r.clone())).collect();
                    self.sub = Some(s);
                }
                Err(e) => return format!("error {e}\n"),
            }
        }
        if let Some(s) = &mut self.sub {
            while let Ok(ev) = s.events.try_recv() {
                match ev {
                    RouteEvent::Add(r) | RouteEvent::Replace(r) => {
                        self.table.insert(r.prefix, r);
                    }
                    RouteEvent::Withdraw(p) => {
                        self.table.remove(&p);
                    }
                }
            }
        }
        self.table
            .values()
            .map(|r| format!("{} via {} from {}\n", r.prefix, r.next_hop, r.peer))
            .collect()
    }
}

/// What the control socket can change: the peer list (for `filters`).
struct State {
    peers: Vec<PeerConfig>,
    filters: BTreeMap<String, BgpFilter>,
}

async fn answer(cmd: &str, h: &SpeakerHandle, routes: &mut Routes, st: &mut State) -> (String, bool) {
    let mut words = cmd.split_whitespace();
    let reply = match words.next().unwrap_or_default() {
        "count" => match h.status().await {
            Ok(st) => format!("{}\n", st.iter().map(|p| p.routes_imported).sum::<usize>()),
            Err(e) => format!("error {e}\n"),
        },
        "status" => match h.status().await {
            Ok(st) => st
                .iter()
                .map(|p| {
                    format!(
                        "{} {} {:?} {} {} {}\n",
                        p.name, p.state, p.bgp_state, p.routes_imported, p.routes_stale, p.info
                    )
                })
                .collect(),
            Err(e) => format!("error {e}\n"),
        },
        "routes" => routes.current(h).await,
        "converged" => {
            let c = *h.initial_convergence().borrow();
            format!("{}\n", if c { "yes" } else { "no" })
        }
        "originate" => {
            let list: Result<Vec<Originated>, _> = words.map(route_spec).collect();
            match list {
                Ok(l) => match h.set_originated_routes(l).await {
                    Ok(()) => "ok\n".into(),
                    Err(e) => format!("error {e}\n"),
                },
                Err(e) => format!("error {e}\n"),
            }
        }
        "filters" => {
            let addr: Option<IpAddr> = words.next().and_then(|a| a.parse().ok());
            let names: Vec<&str> = words.collect();
            match (addr, pick_filters(&names.join("+"), &st.filters)) {
                (Some(a), Ok(fs)) => {
                    let mut peers = st.peers.clone();
                    peers
                        .iter_mut()
                        .filter(|p| p.address == a)
                        .for_each(|p| p.filters = fs.clone().into());
                    match h.set_peers(peers.clone()).await {
                        Ok(()) => {
                            st.peers = peers;
                            "ok\n".into()
                        }
                        Err(e) => format!("error {e}\n"),
                    }
                }
                (None, _) => "error filters ADDR [NAME...]\n".into(),
                (_, Err(e)) => format!("error {e}\n"),
            }
        }
        "shutdown" => {
            let _ = h.shutdown().await;
            return ("ok\n".into(), true);
        }
        "shutdown-graceful" => {
            let _ = h.shutdown_graceful().await;
            return ("ok\n".into(), true);
        }
        other => format!("error unknown command {other:?}\n"),
    };
    (reply, false)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let a = args();
    let rt = if a.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(a.threads)
            .enable_all()
            .build()
    }
    .unwrap_or_else(|e| die(format!("tokio runtime: {e}")));
    rt.block_on(async move {
        let h = Speaker::start(a.cfg).unwrap_or_else(|e| die(e.to_string()));
        h.set_peers(a.peers.clone())
            .await
            .unwrap_or_else(|e| die(e.to_string()));
        h.set_originated_routes(a.originate)
            .await
            .unwrap_or_else(|e| die(e.to_string()));
        let mut state = State {
            peers: a.peers,
            filters: a.filters,
        };
        let _ = std::fs::remove_file(&a.ctl);
        let ctl = UnixListener::bind(&a.ctl)
            .unwrap_or_else(|e| die(format!("control socket {}: {e}", a.ctl.display())));
        println!("ready");
        let mut routes = Routes {
            sub: None,
            table: BTreeMap::new(),
        };
        loop {
            let Ok((stream, _)) = ctl.accept().await else {
                continue;
            };
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            if BufReader::new(rd).read_line(&mut line).await.is_err() {
                continue;
            }
            let (reply, stop) = answer(line.trim(), &h, &mut routes, &mut state).await;
            let _ = wr.write_all(reply.as_bytes()).await;
            let _ = wr.shutdown().await;
            if stop {
                // Let the last messages (Cease, or the bare FIN) go out.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        }
    });
}
