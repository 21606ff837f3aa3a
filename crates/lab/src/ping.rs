//! `brindle lab ping`: every pod pings every other pod, per address family (ping and ping6 in
//! a dual-stack lab); the result is a matrix per family.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Result;
use crate::lab::Lab;
use crate::proc::enter_netns;

/// Who reached whom over one address family. `ok[i][j]` is `None` on the diagonal.
#[derive(Debug, Clone)]
pub struct PingMatrix {
    /// 4 or 6.
    pub family: u8,
    pub pods: Vec<(String, String)>,
    pub ok: Vec<Vec<Option<bool>>>,
}

impl PingMatrix {
    pub fn failures(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for (i, row) in self.ok.iter().enumerate() {
            for (j, cell) in row.iter().enumerate() {
                if *cell == Some(false) {
                    v.push((self.pods[i].0.clone(), self.pods[j].0.clone()));
                }
            }
        }
        v
    }

    pub fn pairs(&self) -> usize {
        self.ok.iter().flatten().filter(|c| c.is_some()).count()
    }

    /// Rows are sources, columns destinations (numbered; the legend maps numbers to pods).
    pub fn render(&self) -> String {
        let n = self.pods.len();
        let w = n.to_string().len().max(2);
        let mut out = String::new();
        for (i, (name, ip)) in self.pods.iter().enumerate() {
            out.push_str(&format!("{:>w$}  {name} ({ip})\n", i + 1));
        }
        out.push('\n');
        out.push_str(&format!("{:>w$} ", "→"));
        for j in 0..n {
            out.push_str(&format!(" {:>w$}", j + 1));
        }
        out.push('\n');
        for (i, row) in self.ok.iter().enumerate() {
            out.push_str(&format!("{:>w$} ", i + 1));
            for cell in row {
                let c = match cell {
                    None => "-",
                    Some(true) => "ok",
                    Some(false) => "XX",
                };
                out.push_str(&format!(" {c:>w$}"));
            }
            out.push('\n');
        }
        let failed = self.failures().len();
        out.push_str(&format!(
            "\n{} of {} pairs reachable{}\n",
            self.pairs() - failed,
            self.pairs(),
            if failed > 0 { " (XX: no reply)" } else { "" }
        ));
        out
    }
}

impl Lab {
    /// Pings every pod from every other pod over the lab's first family (IPv4, or IPv6 in a
    /// v6-only lab); see [`Lab::ping_family`].
    pub fn ping_all(&self) -> Result<PingMatrix> {
        let family = if self.state().spec.ip_family.has_v4() {
            4
        } else {
            6
        };
        self.ping_family(family)
    }

    /// One matrix per family of the lab: IPv4 then IPv6 (ping and ping6).
    pub fn ping_every_family(&self) -> Result<Vec<PingMatrix>> {
        let f = self.state().spec.ip_family;
        let mut v = Vec::new();
        if f.has_v4() {
            v.push(self.ping_family(4)?);
        }
        if f.has_v6() {
            v.push(self.ping_family(6)?);
        }
        Ok(v)
    }

    /// Pings every pod's address of `family` (4 or 6) from every other pod (one echo, 1 s
    /// timeout; a second try on loss so one ARP- or ND-delayed first packet is not a failure),
    /// 8 pings at a time.
    pub fn ping_family(&self, family: u8) -> Result<PingMatrix> {
        let pods: Vec<(String, String, String)> = self
            .state()
            .pods
            .iter()
            .filter_map(|p| {
                let ip = if family == 6 { p.ip6() } else { p.ip4() }?;
                Some((p.name.clone(), ip.to_string(), p.netns.clone()))
            })
            .collect();
        let n = pods.len();
        let jobs: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j)))
            .collect();
        let ok = Mutex::new(vec![vec![None; n]; n]);
        let next = AtomicUsize::new(0);
        let first_err = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    while let Some(&(i, j)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        match ping(&pods[i].2, &pods[j].1) {
                            Ok(r) => ok.lock().expect("lock")[i][j] = Some(r),
                            Err(e) => {
                                first_err.lock().expect("lock").get_or_insert(e);
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().expect("lock") {
            return Err(e);
        }
        Ok(PingMatrix {
            family,
            pods: pods.into_iter().map(|(n, ip, _)| (n, ip)).collect(),
            ok: ok.into_inner().expect("lock"),
        })
    }
}

impl Lab {
    /// Pings up to `max_pairs` pod pairs spread evenly over all pairs (for large labs where
    /// every pair would be too many). Returns (reachable, tried).
    pub fn ping_sample(&self, max_pairs: usize) -> Result<(usize, usize)> {
        let pods: Vec<(String, String)> = self
            .state()
            .pods
            .iter()
            .filter_map(|p| Some((p.netns.clone(), p.ip.clone()?)))
            .collect();
        let n = pods.len();
        let all: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..n).filter(move |j| *j != i).map(move |j| (i, j)))
            .collect();
        let step = (all.len() / max_pairs.max(1)).max(1);
        let pairs: Vec<(usize, usize)> = all.into_iter().step_by(step).take(max_pairs).collect();
        let ok = AtomicUsize::new(0);
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    while let Some(&(i, j)) = pairs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if ping(&pods[i].0, &pods[j].1).unwrap_or(false) {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        Ok((ok.into_inner(), pairs.len()))
    }
}

/// One `ping` from inside `netns` to `ip`, retried once.
pub fn ping(netns: &str, ip: &str) -> Result<bool> {
    for _ in 0..2 {
        let mut cmd = Command::new("ping");
        cmd.args(["-c", "1", "-W", "1", "-q", ip])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        enter_netns(&mut cmd, netns)?;
        let st = cmd
            .status()
            .map_err(|e| crate::error::Error::step(format!("ping {ip} from {netns}"), e))?;
        if st.success() {
            return Ok(true);
        }
    }
    Ok(false)
}
