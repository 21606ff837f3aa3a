//! GoBGP as a peer.

use std::time::Duration;

use brindle_testkit::{Daemon, Netns, TempDir, require};

use super::{ME, PeerDaemon, THEIR_BLOCK, THEM, nscmd, output, write};

pub struct Gobgp {
    ns: String,
    dir: TempDir,
    daemon: Option<Daemon>,
    announce: bool,
}

const GOBGP_API: &str = "127.0.0.1:50051";

impl Gobgp {
    pub fn start(ns: &Netns, password: Option<&str>) -> Gobgp {
        let dir = TempDir::new("gobgp");
        let pw = password
            .map(|p| format!("    auth-password = \"{p}\"\n"))
            .unwrap_or_default();
        write(
            &dir.join("gobgpd.toml"),
            &format!(
                "[global.config]
  as = 64512
  router-id = \"{THEM}\"
  local-address-list = [\"{THEM}\"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = \"{ME}\"
    peer-as = 64512
{pw}  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.transport.config]
    local-address = \"{THEM}\"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = \"ipv4-unicast\"
"
            ),
        );
        let mut g = Gobgp {
            ns: ns.name().to_string(),
            dir,
            daemon: None,
            announce: true,
        };
        g.launch();
        g
    }

    fn launch(&mut self) {
        let mut c = nscmd(&self.ns, require::command("gobgpd", "gobgpd"));
        c.arg("-f").arg(self.dir.join("gobgpd.toml")).args([
            "-p",
            "--api-hosts",
            GOBGP_API,
            "--pprof-disable",
        ]);
        let mut d = Daemon::spawn("gobgpd", c, &self.dir.join("gobgpd.log"));
        let ns = self.ns.clone();
        d.wait_until("gobgp answers", Duration::from_secs(10), || {
            nscmd(&ns, "gobgp")
                .args(["-u", "127.0.0.1", "-p", "50051", "global"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        self.daemon = Some(d);
        if self.announce {
            self.announce_own();
        }
    }

    fn gobgp(&self, args: &[&str]) -> String {
        let mut c = nscmd(&self.ns, "gobgp");
        c.args(["-u", "127.0.0.1", "-p", "50051"]).args(args);
        output(c)
    }
}

impl PeerDaemon for Gobgp {
    fn name(&self) -> &'static str {
        "gobgp"
    }
    fn established(&self) -> bool {
        self.gobgp(&["neighbor", ME])
            .to_lowercase()
            .contains("bgp state = established")
    }
    fn has_route(&self, prefix: &str) -> bool {
        self.gobgp(&["global", "rib", prefix]).contains(prefix)
    }
    fn withdraw_own(&mut self) {
        self.announce = false;
        self.gobgp(&["global", "rib", "del", THEIR_BLOCK]);
    }
    fn announce_own(&mut self) {
        self.announce = true;
        self.gobgp(&[
            "global",
            "rib",
            "add",
            THEIR_BLOCK,
            "nexthop",
            THEM,
            "origin",
            "igp",
        ]);
    }
    fn restart(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
        self.launch();
    }
    fn dump(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.gobgp(&["neighbor", ME]),
            self.gobgp(&["global", "rib"]),
            self.daemon.as_ref().map(|d| d.log()).unwrap_or_default()
        )
    }
}
