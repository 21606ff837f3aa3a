//! BIRD 2 and BIRD 1.6 as a peer.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use brindle_testkit::{Daemon, Netns, TempDir, require};

use super::{ME, PeerDaemon, THEIR_BLOCK, THEM, nscmd, output, write};

pub struct Bird {
    v16: bool,
    ns: String,
    dir: TempDir,
    daemon: Option<Daemon>,
}

impl Bird {
    pub fn bird2(ns: &Netns, password: Option<&str>) -> Bird {
        Bird::start(false, ns, password)
    }

    pub fn bird16(ns: &Netns, password: Option<&str>) -> Bird {
        Bird::start(true, ns, password)
    }

    fn start(v16: bool, ns: &Netns, password: Option<&str>) -> Bird {
        let dir = TempDir::new(if v16 { "bird16" } else { "bird2" });
        let pw = password.map(|p| format!("password \"{p}\";")).unwrap_or_default();
        let conf = if v16 {
            // Calico's BIRD 1.x style (lab-configs/bird16-ext.conf).
            format!(
                "router id {THEM};
protocol device {{ scan time 2; }}
protocol direct {{ interface \"eth0\"; }}
protocol static own {{ route {THEIR_BLOCK} blackhole; }}
protocol bgp Mesh_172_20_42_80 {{
  description \"Connection to BGP peer\";
  local as 64512; neighbor {ME} as 64512; multihop; gateway recursive;
  import all; export where proto = \"own\"; add paths on; graceful restart;
  connect delay time 1; connect retry time 1; error wait time 1,5; hold time 9;
  source address {THEM}; {pw}
}}
"
            )
        } else {
            format!(
                "router id {THEM};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface \"eth0\"; }}
protocol static own {{ ipv4; route {THEIR_BLOCK} blackhole; }}
protocol bgp Mesh_172_20_42_80 {{
  local {THEM} as 64512; neighbor {ME} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  graceful restart; {pw}
  ipv4 {{ import all; export where proto = \"own\"; next hop self; }};
}}
"
            )
        };
        write(&dir.join("bird.conf"), &conf);
        let mut b = Bird {
            v16,
            ns: ns.name().to_string(),
            dir,
            daemon: None,
        };
        b.launch();
        b
    }

    /// BIRD 2 with a configuration of the test's own.
    pub fn with_config(ns: &Netns, conf: &str) -> Bird {
        let dir = TempDir::new("bird2");
        write(&dir.join("bird.conf"), conf);
        let mut b = Bird {
            v16: false,
            ns: ns.name().to_string(),
            dir,
            daemon: None,
        };
        b.launch();
        b
    }

    /// BIRD 2 at `THEM` with one session to `ME` named `protocol` (short timers, GR on, its
    /// own block announced), `extra` protocols and `options` added to the session.
    pub fn facing_me(ns: &Netns, protocol: &str, extra: &str, options: &str) -> Bird {
        Bird::with_config(
            ns,
            &format!(
                "router id {THEM};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface \"eth0\"; }}
protocol static own {{ ipv4; route {THEIR_BLOCK} blackhole; }}
{extra}
protocol bgp {protocol} {{
  local {THEM} as 64512; neighbor {ME} as 64512;
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9;
  graceful restart on; {options}
  ipv4 {{ import all; export where proto = \"own\"; next hop self; }};
}}
"
            ),
        )
    }

    /// BIRD 2 as a Calico mesh node at `me` with `peers`, originating `block` (Calico's
    /// `passive on` rule for each peer).
    pub fn mesh_node(ns: &Netns, me: &str, peers: &[&str], block: &str) -> Bird {
        let mut conf = format!(
            "router id {me};
protocol device {{ scan time 10; }}
protocol direct {{ ipv4; interface \"eth0\"; }}
protocol static own {{ ipv4; route {block} blackhole; }}
"
        );
        for p in peers {
            let passive = if brindle_bgp_speaker::mesh_passive(me, p) {
                "passive on;"
            } else {
                ""
            };
            conf += &format!(
                "protocol bgp Mesh_{} {{
  local {me} as 64512; neighbor {p} as 64512; {passive}
  connect delay time 1; connect retry time 1; error wait time 1, 5; hold time 9; graceful restart;
  ipv4 {{ import all; export where proto = \"own\"; next hop self; }};
}}
",
                p.replace('.', "_")
            );
        }
        Bird::with_config(ns, &conf)
    }

    fn bin(&self, prog: &str) -> PathBuf {
        if self.v16 {
            // Unpacked by .ci/deps under $BRINDLE_CI_CACHE (default /opt/brindle-ci).
            let cache = std::env::var("BRINDLE_CI_CACHE").unwrap_or_else(|_| "/opt/brindle-ci".into());
            require::command(&format!("{cache}/bird16/usr/sbin/{prog}"), "bird (run .ci/deps)")
        } else {
            require::command(prog, "bird2")
        }
    }

    fn ctl(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    fn launch(&mut self) {
        let mut c = nscmd(&self.ns, self.bin("bird"));
        c.arg("-f")
            .arg("-c")
            .arg(self.dir.join("bird.conf"))
            .arg("-s")
            .arg(self.ctl())
            .arg("-P")
            .arg(self.dir.join("bird.pid"));
        let mut d = Daemon::spawn(self.name(), c, &self.dir.join("bird.log"));
        let ctl = self.ctl();
        let birdc = self.bin("birdc");
        d.wait_until("birdc answers", Duration::from_secs(10), || {
            Command::new(&birdc)
                .arg("-s")
                .arg(&ctl)
                .arg("show status")
                .output()
                .is_ok_and(|o| {
                    o.status.success() && String::from_utf8_lossy(&o.stdout).contains("Daemon is up")
                })
        });
        self.daemon = Some(d);
    }

    pub fn birdc(&self, cmd: &str) -> String {
        let mut c = Command::new(self.bin("birdc"));
        c.arg("-s").arg(self.ctl()).args(cmd.split(' '));
        output(c)
    }
}

impl PeerDaemon for Bird {
    fn name(&self) -> &'static str {
        if self.v16 { "bird1.6" } else { "bird2" }
    }
    fn established(&self) -> bool {
        self.birdc("show protocols Mesh_172_20_42_80")
            .contains("Established")
    }
    fn has_route(&self, prefix: &str) -> bool {
        let out = self.birdc(&format!("show route {prefix}"));
        out.contains(prefix) && !out.contains("not found")
    }
    fn withdraw_own(&mut self) {
        self.birdc("disable own");
    }
    fn announce_own(&mut self) {
        self.birdc("enable own");
    }
    fn restart(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
        let _ = std::fs::remove_file(self.ctl());
        self.launch();
    }
    fn dump(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.birdc("show protocols all Mesh_172_20_42_80"),
            self.birdc("show route"),
            self.daemon.as_ref().map(|d| d.log()).unwrap_or_default()
        )
    }
}
