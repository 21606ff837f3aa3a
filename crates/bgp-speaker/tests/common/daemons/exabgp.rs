//! ExaBGP as a peer.

use brindle_testkit::{Daemon, Netns, TempDir, require};

use super::{ME, PeerDaemon, THEIR_BLOCK, THEM, nscmd, write};

pub struct Exabgp {
    ns: String,
    dir: TempDir,
    daemon: Option<Daemon>,
}

impl Exabgp {
    pub fn start(ns: &Netns, password: Option<&str>) -> Exabgp {
        let dir = TempDir::new("exabgp");
        let pw = password
            .map(|p| format!("  md5-password \"{p}\";\n"))
            .unwrap_or_default();
        let d = dir.path().display();
        // Commands come from a file the test appends to; what ExaBGP receives is written as
        // JSON lines to another.
        write(
            &dir.join("cmds"),
            &format!("announce route {THEIR_BLOCK} next-hop {THEM}\n"),
        );
        // ExaBGP splits `run` on spaces (no shell quoting): give it scripts.
        for (name, body) in [
            ("ctl.sh", format!("#!/bin/sh\nexec tail -n +1 -f {d}/cmds\n")),
            // ExaBGP takes EOF on a process's stdout as its death: keep stdout open.
            (
                "watch.sh",
                format!(
                    "#!/bin/sh\nexec python3 -u -c 'import sys\nf = open(\"{d}/received\", \"a\")\nfor l in sys.stdin:\n    f.write(l)\n    f.flush()'\n"
                ),
            ),
        ] {
            let p = dir.join(name);
            write(&p, &body);
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        write(
            &dir.join("exabgp.conf"),
            &format!(
                "process ctl {{
  run {d}/ctl.sh;
  encoder text;
}}
process watch {{
  run {d}/watch.sh;
  encoder json;
}}
neighbor {ME} {{
  router-id {THEM};
  local-address {THEM};
  local-as 64512;
  peer-as 64512;
  hold-time 9;
{pw}  family {{ ipv4 unicast; }}
  api {{ processes [ ctl ]; }}
  api {{
    processes [ watch ];
    neighbor-changes;
    receive {{ parsed; update; }}
  }}
}}
"
            ),
        );
        let mut e = Exabgp {
            ns: ns.name().to_string(),
            dir,
            daemon: None,
        };
        e.launch();
        e
    }

    fn launch(&mut self) {
        let mut c = nscmd(&self.ns, "env");
        c.args([
            "exabgp.daemon.user=root",
            "exabgp.daemon.daemonize=false",
            "exabgp.log.destination=stdout",
            "exabgp.api.ack=false",
        ])
        .arg(format!("exabgp.api.pipename={}", pipe_name(&self.dir)))
        .arg(require::command("exabgp", "exabgp"))
        .arg(self.dir.join("exabgp.conf"));
        self.daemon = Some(Daemon::spawn("exabgp", c, &self.dir.join("exabgp.log")));
    }

    fn received(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("received"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn command(&self, cmd: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("cmds"))
            .expect("cmds file");
        writeln!(f, "{cmd}").unwrap();
    }
}

/// A unique name for ExaBGP's CLI pipes (it looks for them in its run dirs and only warns).
pub fn pipe_name(dir: &TempDir) -> String {
    dir.path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl PeerDaemon for Exabgp {
    fn name(&self) -> &'static str {
        "exabgp"
    }
    fn established(&self) -> bool {
        // The last neighbor-change line.
        self.received()
            .iter()
            .rev()
            .find(|l| l.contains("\"type\": \"state\""))
            .is_some_and(|l| l.contains("\"state\": \"up\""))
    }
    fn has_route(&self, prefix: &str) -> bool {
        let mut have = false;
        for l in self.received() {
            if l.contains("\"type\": \"state\"") && !l.contains("\"state\": \"up\"") {
                have = false;
            } else if l.contains(prefix) {
                if l.contains("\"announce\"") {
                    have = true;
                }
                if l.contains("\"withdraw\"") {
                    have = false;
                }
            }
        }
        have
    }
    fn withdraw_own(&mut self) {
        self.command(&format!("withdraw route {THEIR_BLOCK} next-hop {THEM}"));
    }
    fn announce_own(&mut self) {
        self.command(&format!("announce route {THEIR_BLOCK} next-hop {THEM}"));
    }
    fn restart(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill();
        }
        self.launch();
    }
    fn dump(&self) -> String {
        format!(
            "{}\n{}",
            self.received().join("\n"),
            self.daemon.as_ref().map(|d| d.log()).unwrap_or_default()
        )
    }
}
