//! FRR (zebra + bgpd) as a peer.

use std::process::Command;
use std::time::Duration;

use brindle_testkit::{Daemon, Netns, TempDir, require};

use super::{ME, PeerDaemon, THEIR_BLOCK, THEM, nscmd, output, write};

pub struct Frr {
    ns: String,
    dir: TempDir,
    zebra: Option<Daemon>,
    bgpd: Option<Daemon>,
}

impl Frr {
    pub fn start(ns: &Netns, password: Option<&str>) -> Frr {
        let pw = password
            .map(|p| format!(" neighbor {ME} password {p}\n"))
            .unwrap_or_default();
        Frr::with_config(
            ns,
            &format!(
                "hostname brindle-test-bgpd
router bgp 64512
 bgp router-id {THEM}
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 3 9
 neighbor {ME} remote-as 64512
 neighbor {ME} timers connect 1
{pw} address-family ipv4 unicast
  network {THEIR_BLOCK}
 exit-address-family
"
            ),
        )
    }

    /// zebra and bgpd with a `bgpd.conf` of the test's own (zebra programs the namespace's
    /// kernel table).
    pub fn with_config(ns: &Netns, bgpd_conf: &str) -> Frr {
        let dir = TempDir::new("frr");
        write(&dir.join("zebra.conf"), "hostname brindle-test-zebra\n");
        write(&dir.join("bgpd.conf"), bgpd_conf);
        // FRR drops to the frr user and refuses `-u root` (FRR 8.4 aborts: "privs_init: user(root)
        // is not part of vty group specified(frrvty)").
        let chown = Command::new("chown")
            .args(["-R", "frr:frr"])
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(chown.success(), "chown frr:frr {}", dir.path().display());
        let mut f = Frr {
            ns: ns.name().to_string(),
            dir,
            zebra: None,
            bgpd: None,
        };
        f.launch();
        f
    }

    fn daemon(&self, name: &str) -> Daemon {
        let bin = require::command(&format!("/usr/lib/frr/{name}"), "frr");
        let mut c = nscmd(&self.ns, bin);
        c.arg("-f")
            .arg(self.dir.join(&format!("{name}.conf")))
            .arg("-i")
            .arg(self.dir.join(&format!("{name}.pid")))
            .arg("-z")
            .arg(self.dir.join("zserv.api"))
            .arg("--vty_socket")
            .arg(self.dir.path());
        Daemon::spawn(name, c, &self.dir.join(&format!("{name}.log")))
    }

    fn launch(&mut self) {
        let mut z = self.daemon("zebra");
        let api = self.dir.join("zserv.api");
        z.wait_until("zebra socket", Duration::from_secs(10), || api.exists());
        self.zebra = Some(z);
        let mut b = self.daemon("bgpd");
        let vty = self.dir.join("bgpd.vty");
        b.wait_until("bgpd vty", Duration::from_secs(10), || vty.exists());
        self.bgpd = Some(b);
    }

    pub fn vtysh(&self, cmds: &[&str]) -> String {
        let mut c = Command::new(require::command("vtysh", "frr"));
        c.arg("--vty_socket").arg(self.dir.path());
        for x in cmds {
            c.args(["-c", x]);
        }
        output(c)
    }
}

impl PeerDaemon for Frr {
    fn name(&self) -> &'static str {
        "frr"
    }
    fn established(&self) -> bool {
        self.vtysh(&[&format!("show bgp neighbors {ME}")])
            .contains("BGP state = Established")
    }
    fn has_route(&self, prefix: &str) -> bool {
        let out = self.vtysh(&[&format!("show bgp ipv4 unicast {prefix}")]);
        out.contains("available") && !out.contains("not in table")
    }
    fn withdraw_own(&mut self) {
        self.vtysh(&[
            "configure terminal",
            "router bgp 64512",
            "address-family ipv4 unicast",
            &format!("no network {THEIR_BLOCK}"),
        ]);
    }
    fn announce_own(&mut self) {
        self.vtysh(&[
            "configure terminal",
            "router bgp 64512",
            "address-family ipv4 unicast",
            &format!("network {THEIR_BLOCK}"),
        ]);
    }
    fn restart(&mut self) {
        if let Some(mut b) = self.bgpd.take() {
            b.kill();
        }
        if let Some(mut z) = self.zebra.take() {
            z.kill();
        }
        for f in ["zserv.api", "bgpd.vty", "zebra.vty"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        self.launch();
    }
    fn dump(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.vtysh(&[&format!("show bgp neighbors {ME}")]),
            self.vtysh(&["show bgp ipv4 unicast"]),
            self.bgpd.as_ref().map(|d| d.log()).unwrap_or_default()
        )
    }
}
