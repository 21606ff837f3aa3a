//! `brindle lab probe`: every pod connects to every pod on the given ports and protocols, at
//! once, and the result is a reachability matrix like the Kubernetes network-policy tests'
//! truth tables (rows: from, columns: to; `.` reachable, `X` not).
//!
//! A prober per source pod works inside that pod's network namespace: it opens a non-blocking
//! socket per target and port, connects them all, and waits on all of them together until
//! each has an answer or the timeout passes. TCP counts as reachable when the handshake
//! completes; UDP when the target's listener answers with its own name (a datagram answered by
//! any other pod is an error, not a pass). Targets are pod addresses, never services.
//!
//! In a dual-stack lab every pair is probed over both families at once (a policy's selectors
//! hold for both, its `nets`/`ipBlock` for one), one truth table per family, protocol and port.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::error::{Error, Result};
use crate::lab::Lab;
pub use crate::podfilter::PodFilter;
use crate::state::PodRecord;

/// A transport `lab probe` tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

impl std::str::FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(Error::Invalid(format!("--protocol {s}: expected tcp or udp"))),
        }
    }
}

/// What one connection attempt saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// TCP handshake completed, or UDP answered by the target.
    Connected,
    /// No answer within the timeout (what a policy's drop looks like).
    Timeout,
    /// Refused: a TCP reset or an ICMP port unreachable (usually: nothing listens).
    Refused,
    /// Any other error (unreachable network, an answer from the wrong pod, …).
    Failed(String),
}

impl Outcome {
    pub fn reachable(&self) -> bool {
        *self == Outcome::Connected
    }

    /// The word `-o json` uses.
    pub fn word(&self) -> String {
        match self {
            Outcome::Connected => "connected".into(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Refused => "refused".into(),
            Outcome::Failed(e) => format!("failed: {e}"),
        }
    }
}

/// One connection to try: where, how, and who must answer (UDP).
#[derive(Debug, Clone)]
pub struct Job {
    pub addr: SocketAddr,
    pub protocol: Protocol,
    pub expect: String,
}

/// What `lab probe` does.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    pub ports: Vec<u16>,
    pub protocols: Vec<Protocol>,
    pub from: Option<PodFilter>,
    pub to: Option<PodFilter>,
    /// How long an attempt may take (every attempt runs at once, so also about how long a
    /// probe with a blocked cell takes).
    pub timeout: Duration,
    /// The address families to probe (4, 6): `None` is every family the lab has.
    pub families: Option<crate::spec::IpFamily>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            ports: vec![80, 81],
            protocols: vec![Protocol::Tcp],
            from: None,
            to: None,
            timeout: Duration::from_secs(1),
            families: None,
        }
    }
}

/// A pod in a probe's matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePod {
    pub namespace: String,
    pub name: String,
    pub node: String,
    /// Its first address (IPv4 in a dual-stack lab, as Kubernetes' `podIP`).
    pub ip: IpAddr,
    /// Every address: IPv4 then IPv6.
    pub ips: Vec<IpAddr>,
}

impl ProbePod {
    /// `namespace/name`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Its address of `family` (4 or 6).
    pub fn ip_of(&self, family: u8) -> Option<IpAddr> {
        self.ips.iter().copied().find(|a| a.is_ipv6() == (family == 6))
    }
}

/// One family, protocol and port: `cells[i][j]` is from `from[i]` to `to[j]`; `None` for a pod
/// to itself (not probed: it never leaves the pod) or a pod without an address of the family.
#[derive(Debug, Clone)]
pub struct Table {
    /// 4 or 6.
    pub family: u8,
    pub protocol: Protocol,
    pub port: u16,
    pub cells: Vec<Vec<Option<Outcome>>>,
}

/// The result of a probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub from: Vec<ProbePod>,
    pub to: Vec<ProbePod>,
    pub tables: Vec<Table>,
}

impl Probe {
    /// The families probed, in order (4 before 6).
    pub fn families(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.tables.iter().map(|t| t.family).collect();
        v.dedup();
        v
    }

    /// The table of `protocol`/`port` over the first family probed.
    pub fn table(&self, protocol: Protocol, port: u16) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.protocol == protocol && t.port == port)
    }

    /// The table of `protocol`/`port` over `family` (4 or 6).
    pub fn table_of(&self, family: u8, protocol: Protocol, port: u16) -> Option<&Table> {
        self.tables
            .iter()
            .find(|t| t.family == family && t.protocol == protocol && t.port == port)
    }

    /// Whether `from` reached `to` (`namespace/name` each) over `protocol`/`port`, over the
    /// first family probed.
    pub fn reachable(&self, protocol: Protocol, port: u16, from: &str, to: &str) -> Option<bool> {
        let family = *self.families().first()?;
        self.reachable_over(family, protocol, port, from, to)
    }

    /// Whether `from` reached `to` over `family` (4 or 6), `protocol` and `port`.
    pub fn reachable_over(
        &self,
        family: u8,
        protocol: Protocol,
        port: u16,
        from: &str,
        to: &str,
    ) -> Option<bool> {
        let t = self.table_of(family, protocol, port)?;
        let i = self.from.iter().position(|p| p.id() == from)?;
        let j = self.to.iter().position(|p| p.id() == to)?;
        t.cells[i][j].as_ref().map(Outcome::reachable)
    }

    /// The matrices as text: one per protocol and port, then notes on attempts that were not
    /// simply unanswered (a refusal usually means nothing listens).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let several = self.families().len() > 1;
        for t in &self.tables {
            let cells: Vec<Vec<Option<bool>>> = t
                .cells
                .iter()
                .map(|r| r.iter().map(|c| c.as_ref().map(Outcome::reachable)).collect())
                .collect();
            out.push_str(&format!(
                "{}{}/{} (rows: from, columns: to; . reachable, X not)\n",
                if several {
                    format!("IPv{} ", t.family)
                } else {
                    String::new()
                },
                t.protocol.to_string().to_uppercase(),
                t.port
            ));
            out.push_str(&render_matrix(&self.from, &self.to, &cells));
            let total = cells.iter().flatten().filter(|c| c.is_some()).count();
            let ok = cells.iter().flatten().filter(|c| **c == Some(true)).count();
            out.push_str(&format!("{ok} of {total} reachable\n"));
            for (i, row) in t.cells.iter().enumerate() {
                for (j, c) in row.iter().enumerate() {
                    if let Some(o @ (Outcome::Refused | Outcome::Failed(_))) = c {
                        out.push_str(&format!(
                            "  note: {} -> {} ({}): {}\n",
                            self.from[i].id(),
                            self.to[j].id(),
                            self.to[j].ip_of(t.family).unwrap_or(self.to[j].ip),
                            o.word()
                        ));
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// `-o json`: the pods, then one object per attempt.
    pub fn to_json(&self) -> serde_json::Value {
        let pods = |v: &[ProbePod]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|p| {
                    let ips: Vec<String> = p.ips.iter().map(IpAddr::to_string).collect();
                    serde_json::json!({"namespace": p.namespace, "name": p.name, "node": p.node,
                                       "ip": p.ip.to_string(), "ips": ips})
                })
                .collect()
        };
        let mut results = Vec::new();
        for t in &self.tables {
            for (i, row) in t.cells.iter().enumerate() {
                for (j, c) in row.iter().enumerate() {
                    if let Some(o) = c {
                        results.push(serde_json::json!({
                            "family": t.family,
                            "protocol": t.protocol.to_string().to_uppercase(),
                            "port": t.port,
                            "from": self.from[i].id(),
                            "to": self.to[j].id(),
                            "reachable": o.reachable(),
                            "outcome": o.word(),
                        }));
                    }
                }
            }
        }
        serde_json::json!({"from": pods(&self.from), "to": pods(&self.to), "results": results})
    }
}

/// A truth table as text: a header of column names (numbers with a legend when there are
/// many), then one row per source; `.` true, `X` false, `-` not decided (a pod to itself).
pub fn render_matrix(from: &[ProbePod], to: &[ProbePod], cells: &[Vec<Option<bool>>]) -> String {
    let numbered = to.len() > 16;
    let heads: Vec<String> = if numbered {
        (1..=to.len()).map(|j| j.to_string()).collect()
    } else {
        to.iter().map(ProbePod::id).collect()
    };
    let row_w = from.iter().map(|p| p.id().len()).max().unwrap_or(1).max(2);
    let mut out = String::new();
    if numbered {
        for (j, p) in to.iter().enumerate() {
            out.push_str(&format!("  {:>3} = {}\n", j + 1, p.id()));
        }
    }
    out.push_str(&format!("{:<row_w$}", "-"));
    for h in &heads {
        out.push_str(&format!("  {h}"));
    }
    out.push('\n');
    for (i, p) in from.iter().enumerate() {
        out.push_str(&format!("{:<row_w$}", p.id()));
        for (j, h) in heads.iter().enumerate() {
            let c = match cells[i][j] {
                Some(true) => ".",
                Some(false) => "X",
                None => "-",
            };
            out.push_str(&format!("  {c:<w$}", w = h.len()));
        }
        out.push('\n');
    }
    out
}

/// A probe's socket: TCP connecting, or UDP connected and waiting for its answer.
enum Sock {
    Tcp(Socket),
    Udp(std::net::UdpSocket),
}

impl Sock {
    fn fd(&self) -> i32 {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Udp(s) => s.as_raw_fd(),
        }
    }
}

/// Makes a non-blocking socket for `job` and starts connecting (UDP: sends the first probe).
fn start(job: &Job) -> std::io::Result<Sock> {
    let ty = match job.protocol {
        Protocol::Tcp => Type::STREAM,
        Protocol::Udp => Type::DGRAM,
    };
    let s = Socket::new(Domain::for_address(job.addr), ty, None)?;
    s.set_nonblocking(true)?;
    match s.connect(&job.addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(match job.protocol {
        Protocol::Tcp => Sock::Tcp(s),
        Protocol::Udp => {
            let u: std::net::UdpSocket = s.into();
            send_udp(&u);
            Sock::Udp(u)
        }
    })
}

fn send_udp(s: &std::net::UdpSocket) {
    // A lost datagram is resent; a refused one shows up on the next receive.
    let _ = s.send(b"probe");
}

fn io_outcome(e: &std::io::Error) -> Outcome {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Outcome::Refused,
        _ => Outcome::Failed(e.to_string()),
    }
}

/// Runs `jobs` from the calling thread's network namespace, all at once, and returns their
/// outcomes in order. Sockets that cannot even be made are errors (not outcomes).
pub fn probe_from(jobs: &[Job], timeout: Duration) -> Result<Vec<Outcome>> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    let mut socks = Vec::with_capacity(jobs.len());
    for job in jobs {
        let s = start(job).map_err(|e| Error::step(format!("probe {}/{}", job.protocol, job.addr), e))?;
        socks.push(s);
    }
    let deadline = Instant::now() + timeout;
    let resend = Duration::from_millis(250);
    let mut next_resend = Instant::now() + resend;
    let mut buf = [0u8; 512];
    loop {
        let pending: Vec<usize> = (0..jobs.len()).filter(|i| outcomes[*i].is_none()).collect();
        let now = Instant::now();
        if pending.is_empty() || now >= deadline {
            break;
        }
        if now >= next_resend {
            for &i in &pending {
                if let Sock::Udp(u) = &socks[i] {
                    send_udp(u);
                }
            }
            next_resend = now + resend;
        }
        let mut fds: Vec<libc::pollfd> = pending
            .iter()
            .map(|&i| libc::pollfd {
                fd: socks[i].fd(),
                events: match jobs[i].protocol {
                    Protocol::Tcp => libc::POLLOUT,
                    Protocol::Udp => libc::POLLIN,
                },
                revents: 0,
            })
            .collect();
        let wait = deadline.min(next_resend).saturating_duration_since(now);
        // SAFETY: `fds` is a valid array of pollfd for its length; the sockets outlive the call.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait.as_millis() as i32 + 1,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::step("poll the probes", e));
        }
        for (k, &i) in pending.iter().enumerate() {
            if fds[k].revents == 0 {
                continue;
            }
            outcomes[i] = match &socks[i] {
                Sock::Tcp(s) => match s.take_error() {
                    Ok(None) => Some(Outcome::Connected),
                    Ok(Some(e)) | Err(e) => Some(io_outcome(&e)),
                },
                Sock::Udp(u) => match u.recv(&mut buf) {
                    Ok(n) if buf[..n] == *jobs[i].expect.as_bytes() => Some(Outcome::Connected),
                    Ok(n) => Some(Outcome::Failed(format!(
                        "answered by {:?}, not {}",
                        String::from_utf8_lossy(&buf[..n]),
                        jobs[i].expect
                    ))),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                    Err(e) => Some(io_outcome(&e)),
                },
            };
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Timeout))
        .collect())
}

/// Sources probed at once, and attempts in flight per source: together under the default
/// limit of 1024 open files.
const PARALLEL_SOURCES: usize = 8;
const BATCH: usize = 100;

impl Lab {
    /// Starts (or reuses) a listener in every pod, then probes from every pod `opts.from`
    /// selects to every pod `opts.to` selects, on every port and protocol.
    pub fn probe(&mut self, opts: &ProbeOptions) -> Result<Probe> {
        if opts.ports.is_empty() || opts.protocols.is_empty() {
            return Err(Error::Invalid(
                "lab probe: no ports or no protocols to probe".into(),
            ));
        }
        let lab_families = self.state().spec.ip_family;
        let families = match opts.families {
            None => lab_families,
            Some(f) if (f.has_v4() && !lab_families.has_v4()) || (f.has_v6() && !lab_families.has_v6()) => {
                return Err(Error::Invalid(format!(
                    "lab probe --ip-family {}: lab {} has no {} (it was made with --ip-family {})",
                    f.as_str(),
                    self.name(),
                    if f.has_v6() && !lab_families.has_v6() {
                        "IPv6"
                    } else {
                        "IPv4"
                    },
                    lab_families.as_str()
                )));
            }
            Some(f) => f,
        };
        let families: Vec<u8> = [(4, families.has_v4()), (6, families.has_v6())]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
            .collect();
        self.ensure_listeners(&opts.ports, &opts.protocols)?;
        let mut pods: Vec<PodRecord> = self
            .state()
            .pods
            .iter()
            .filter(|p| p.ip.is_some())
            .cloned()
            .collect();
        pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let pick = |f: &Option<PodFilter>| -> Vec<PodRecord> {
            pods.iter()
                .filter(|p| f.as_ref().is_none_or(|f| f.matches(p)))
                .cloned()
                .collect()
        };
        let (from, to) = (pick(&opts.from), pick(&opts.to));
        let as_probe_pod = |p: &PodRecord| -> Result<ProbePod> {
            let ips = p
                .addresses()
                .into_iter()
                .map(|a| {
                    a.parse::<IpAddr>()
                        .map_err(|_| Error::Invalid(format!("pod {}/{}: address {a:?}", p.namespace, p.name)))
                })
                .collect::<Result<Vec<IpAddr>>>()?;
            Ok(ProbePod {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                node: p.node.clone(),
                ip: *ips
                    .first()
                    .ok_or_else(|| Error::Invalid(format!("pod {}/{}: no address", p.namespace, p.name)))?,
                ips,
            })
        };
        let from_pods: Vec<ProbePod> = from.iter().map(as_probe_pod).collect::<Result<_>>()?;
        let to_pods: Vec<ProbePod> = to.iter().map(as_probe_pod).collect::<Result<_>>()?;
        let mut keys = Vec::new();
        for &family in &families {
            for &protocol in &opts.protocols {
                for &port in &opts.ports {
                    keys.push((family, protocol, port));
                }
            }
        }
        let rows = std::sync::Mutex::new(vec![Vec::new(); from.len()]);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let first_error = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..PARALLEL_SOURCES.min(from.len()) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(src) = from.get(i) else { break };
                        match probe_row(src, &from_pods[i], &to_pods, &keys, opts.timeout) {
                            Ok(r) => rows.lock().expect("lock")[i] = r,
                            Err(e) => {
                                first_error.lock().expect("lock").get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().expect("lock") {
            return Err(e);
        }
        let rows = rows.into_inner().expect("lock");
        let tables = keys
            .iter()
            .enumerate()
            .map(|(k, &(family, protocol, port))| Table {
                family,
                protocol,
                port,
                cells: rows
                    .iter()
                    .map(|r| r.iter().map(|c: &Vec<Option<Outcome>>| c[k].clone()).collect())
                    .collect(),
            })
            .collect();
        Ok(Probe {
            from: from_pods,
            to: to_pods,
            tables,
        })
    }
}

/// One source's attempts: for each target, an outcome per (family, protocol, port) key (none
/// where either pod has no address of the family).
fn probe_row(
    src: &PodRecord,
    me: &ProbePod,
    to: &[ProbePod],
    keys: &[(u8, Protocol, u16)],
    timeout: Duration,
) -> Result<Vec<Vec<Option<Outcome>>>> {
    let mut jobs = Vec::new();
    let mut index = Vec::new();
    for (j, t) in to.iter().enumerate() {
        if t == me {
            continue;
        }
        for (k, &(family, protocol, port)) in keys.iter().enumerate() {
            let (Some(_), Some(ip)) = (me.ip_of(family), t.ip_of(family)) else {
                continue;
            };
            index.push((j, k));
            jobs.push(Job {
                addr: SocketAddr::new(ip, port),
                protocol,
                expect: t.id(),
            });
        }
    }
    let ns = brindle_netlink::NetnsFd::named(&src.netns)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for batch in jobs.chunks(BATCH) {
        outcomes.extend(ns.run(|| probe_from(batch, timeout))??);
    }
    let mut row = vec![vec![None; keys.len()]; to.len()];
    for ((j, k), o) in index.into_iter().zip(outcomes) {
        row[j][k] = Some(o);
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!("UDP".parse::<Protocol>().unwrap(), Protocol::Udp);
        let e = "sctp".parse::<Protocol>().unwrap_err().to_string();
        assert!(e.contains("--protocol sctp"), "{e}");
    }

    #[test]
    fn matrix_text() {
        let p = |ns: &str, n: &str| ProbePod {
            namespace: ns.into(),
            name: n.into(),
            node: "n".into(),
            ip: "10.0.0.1".parse().unwrap(),
            ips: vec!["10.0.0.1".parse().unwrap()],
        };
        let pods = vec![p("x", "a"), p("x", "b"), p("y", "a")];
        let cells = vec![
            vec![None, Some(true), Some(false)],
            vec![Some(false), None, Some(true)],
            vec![Some(true), Some(true), None],
        ];
        assert_eq!(
            render_matrix(&pods, &pods, &cells),
            "-    x/a  x/b  y/a\nx/a  -    .    X  \nx/b  X    -    .  \ny/a  .    .    -  \n"
        );
    }
}
