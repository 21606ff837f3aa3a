//! The receivers under test, each started fresh in the receiver namespace with the
//! configuration the BIRD/FRR/GoBGP anchors were measured with (docs/BENCHMARKS.md): Brindle
//! (`brindle-bgp-testd`), BIRD 2, FRR (zebra + bgpd `-n`) and GoBGP, every peer passive iBGP
//! AS 64512, hold 180 s, nothing exported.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use brindle_testkit::{Daemon, Netns, TempDir, require};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Brindle,
    /// Another build of `brindle-bgp-testd` (`BRINDLE_RACE_BASELINE`, e.g. from the commit
    /// before a change), raced in the same run for a before/after comparison.
    BrindleBase,
    Bird,
    Frr,
    Gobgp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Brindle => "brindle",
            Kind::BrindleBase => "brindle-base",
            Kind::Bird => "bird2",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "brindle" => Kind::Brindle,
            "brindle-base" => Kind::BrindleBase,
            "bird" | "bird2" => Kind::Bird,
            "frr" => Kind::Frr,
            "gobgp" => Kind::Gobgp,
            _ => return None,
        })
    }
}

const ME: &str = "10.99.0.2";

/// A receiver daemon (and FRR's zebra), killed by PID on drop.
pub struct Running {
    pub kind: Kind,
    ns: String,
    // Declared before `dir` so the daemons die before their files go.
    main: Daemon,
    zebra: Option<Daemon>,
    dir: TempDir,
}

fn out(mut c: Command) -> String {
    c.output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Running {
    /// Starts `kind` in `ns` with passive iBGP peers `peers`, and waits until it has them all.
    pub fn start(kind: Kind, ns: &Netns, peers: &[Ipv4Addr]) -> Running {
        let dir = TempDir::new(kind.name());
        let (main, zebra) = match kind {
            Kind::Brindle => (
                brindle(ns, &dir, peers, env!("CARGO_BIN_EXE_brindle-bgp-testd")),
                None,
            ),
            Kind::BrindleBase => {
                let exe = std::env::var("BRINDLE_RACE_BASELINE")
                    .expect("brindle-base needs BRINDLE_RACE_BASELINE=<path of another brindle-bgp-testd>");
                (brindle(ns, &dir, peers, &exe), None)
            }
            Kind::Bird => (bird(ns, &dir, peers), None),
            Kind::Frr => {
                let (b, z) = frr(ns, &dir, peers);
                (b, Some(z))
            }
            Kind::Gobgp => (gobgp(ns, &dir, peers), None),
        };
        let mut r = Running {
            kind,
            ns: ns.name().to_string(),
            main,
            zebra,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while r.configured() < peers.len() {
            assert!(r.main.is_running(), "{} exited:\n{}", kind.name(), r.main.log());
            assert!(
                Instant::now() < deadline,
                "{} not ready:\n{}",
                kind.name(),
                r.main.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn pid(&self) -> u32 {
        self.main.pid()
    }

    pub fn zebra_pid(&self) -> Option<u32> {
        self.zebra.as_ref().map(Daemon::pid)
    }

    fn ctl(&self, cmd: &str) -> String {
        let Ok(mut s) = UnixStream::connect(self.dir.join("ctl")) else {
            return String::new();
        };
        let _ = s.write_all(format!("{cmd}\n").as_bytes());
        let mut o = String::new();
        let _ = s.read_to_string(&mut o);
        o
    }

    fn birdc(&self, args: &[&str]) -> String {
        let mut c = Command::new("birdc");
        c.arg("-s").arg(self.dir.join("bird.ctl")).args(args);
        out(c)
    }

    fn vtysh(&self, cmd: &str) -> String {
        let mut c = Command::new("vtysh");
        c.arg("--vty_socket")
            .arg(self.dir.path())
            .args(["-d", "bgpd", "-c", cmd]);
        out(c)
    }

    fn gobgp(&self, args: &[&str]) -> String {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.ns))
            .arg("--")
            .arg("gobgp")
            .args(["-u", "127.0.0.1", "-p", "50051"])
            .args(args);
        out(c)
    }

    /// Peers the daemon has configured (ready when all are).
    fn configured(&self) -> usize {
        match self.kind {
            Kind::Brindle | Kind::BrindleBase => self.ctl("status").lines().count(),
            Kind::Bird => {
                let o = self.birdc(&["show", "protocols"]);
                o.lines().filter(|l| l.contains(" BGP ")).count()
            }
            Kind::Frr => frr_peers(&self.vtysh("show bgp ipv4 unicast summary json")).0,
            Kind::Gobgp => self.gobgp(&["neighbor"]).lines().count().saturating_sub(1),
        }
    }

    /// Routes received from all peers, by the daemon's own counter.
    pub fn count(&self) -> usize {
        let num = |s: &str| s.trim().parse().unwrap_or(0);
        match self.kind {
            Kind::Brindle | Kind::BrindleBase => num(&self.ctl("count")),
            Kind::Bird => {
                // "N of M routes for K networks in table master4"
                let o = self.birdc(&["show", "route", "where", "source", "=", "RTS_BGP", "count"]);
                o.lines()
                    .find_map(|l| {
                        let w: Vec<&str> = l.split_whitespace().collect();
                        (w.len() > 3 && w[1] == "of").then(|| num(w[2]))
                    })
                    .unwrap_or(0)
            }
            Kind::Frr => frr_peers(&self.vtysh("show bgp ipv4 unicast summary json")).1,
            Kind::Gobgp => {
                // "Destination: N, Path: M"
                let o = self.gobgp(&["global", "rib", "summary", "-a", "ipv4"]);
                o.split("Path:")
                    .nth(1)
                    .map(|s| {
                        num(s
                            .split(|c: char| !c.is_ascii_digit() && c != ' ')
                            .next()
                            .unwrap_or(""))
                    })
                    .unwrap_or(0)
            }
        }
    }

    pub fn log(&self) -> String {
        self.main.log()
    }
}

/// (peers, sum of pfxRcd) from FRR's summary JSON.
fn frr_peers(json: &str) -> (usize, usize) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return (0, 0);
    };
    let Some(peers) = v.get("peers").and_then(|p| p.as_object()) else {
        return (0, 0);
    };
    let rcvd = peers
        .values()
        .map(|p| p.get("pfxRcd").and_then(|x| x.as_u64()).unwrap_or(0) as usize)
        .sum();
    (peers.len(), rcvd)
}

fn brindle(ns: &Netns, dir: &TempDir, peers: &[Ipv4Addr], exe: &str) -> Daemon {
    let mut c = ns.cmd(exe);
    c.args([
        "--router-id",
        ME,
        "--as",
        "64512",
        "--node-v4",
        ME,
        "--listen",
        "0.0.0.0:179",
    ])
    .arg("--ctl")
    .arg(dir.join("ctl"));
    for p in peers {
        c.arg("--peer").arg(format!("{p},passive,hold=180"));
    }
    Daemon::spawn("brindle-bgp-testd", c, &dir.join("log"))
}

fn bird(ns: &Netns, dir: &TempDir, peers: &[Ipv4Addr]) -> Daemon {
    let mut conf = format!(
        "router id {ME};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface \"*\"; }}
protocol static {{ ipv4; route 10.98.0.0/16 via 10.99.0.1; }}
protocol kernel k4 {{ ipv4 {{ import none; export none; }}; scan time 60; }}
template bgp mesh {{ local {ME} as 64512; passive on; multihop; hold time 180;
  ipv4 {{ import all; export none; gateway recursive; }}; }}
"
    );
    for (i, p) in peers.iter().enumerate() {
        conf += &format!("protocol bgp m{i} from mesh {{ neighbor {p} as 64512; }}\n");
    }
    std::fs::write(dir.join("bird.conf"), conf).unwrap();
    let mut c = ns.cmd(require::command("bird", "bird2"));
    c.arg("-f")
        .arg("-c")
        .arg(dir.join("bird.conf"))
        .arg("-s")
        .arg(dir.join("bird.ctl"));
    Daemon::spawn("bird", c, &dir.join("bird.log"))
}

fn frr(ns: &Netns, dir: &TempDir, peers: &[Ipv4Addr]) -> (Daemon, Daemon) {
    let mut conf = format!(
        "frr defaults traditional
hostname race
router bgp 64512
 bgp router-id {ME}
 neighbor MESH peer-group
 neighbor MESH remote-as 64512
 neighbor MESH passive
 neighbor MESH timers 60 180
"
    );
    for p in peers {
        conf += &format!(" neighbor {p} peer-group MESH\n");
    }
    conf += " address-family ipv4 unicast\n  neighbor MESH activate\n exit-address-family\n";
    std::fs::write(dir.join("bgpd.conf"), conf).unwrap();
    std::fs::write(dir.join("zebra.conf"), "hostname race\n").unwrap();
    let ok = Command::new("chown")
        .args(["-R", "frr:frr"])
        .arg(dir.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "chown frr:frr {}", dir.path().display());
    let d = dir.path().display().to_string();
    let mut z = ns.cmd(require::command("/usr/lib/frr/zebra", "frr"));
    z.args(["-f", &format!("{d}/zebra.conf"), "-i", &format!("{d}/zebra.pid")])
        .args(["-z", &format!("{d}/zserv.api"), "--vty_socket", &d, "-P", "0"]);
    let mut zebra = Daemon::spawn("zebra", z, &dir.join("zebra.log"));
    let api = dir.join("zserv.api");
    zebra.wait_until("zebra socket", Duration::from_secs(10), || api.exists());
    let mut b = ns.cmd(require::command("/usr/lib/frr/bgpd", "frr"));
    b.args(["-f", &format!("{d}/bgpd.conf"), "-i", &format!("{d}/bgpd.pid")])
        .args(["-z", &format!("{d}/zserv.api"), "--vty_socket", &d, "-P", "0"])
        .args(["-l", ME, "-n"]);
    (Daemon::spawn("bgpd", b, &dir.join("bgpd.log")), zebra)
}

fn gobgp(ns: &Netns, dir: &TempDir, peers: &[Ipv4Addr]) -> Daemon {
    let mut conf =
        format!("[global.config]\n  as = 64512\n  router-id = \"{ME}\"\n  local-address-list = [\"{ME}\"]\n");
    for p in peers {
        conf += &format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{p}\"\n    peer-as = 64512\n  [neighbors.timers.config]\n    hold-time = 180\n  [neighbors.transport.config]\n    passive-mode = true\n"
        );
    }
    std::fs::write(dir.join("gobgpd.toml"), conf).unwrap();
    let mut c = ns.cmd(require::command("gobgpd", "gobgpd"));
    c.arg("-f").arg(dir.join("gobgpd.toml")).args([
        "-l",
        "warn",
        "-p",
        "--api-hosts",
        "127.0.0.1:50051",
        "--pprof-disable",
    ]);
    Daemon::spawn("gobgpd", c, &dir.join("gobgpd.log"))
}
