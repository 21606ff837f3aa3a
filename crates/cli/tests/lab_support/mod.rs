//! The harness of the lab end-to-end tests: a lab built by the real `brindle` binary under a
//! unique name, torn down by a guard (also on failure, after printing the agents' last log
//! lines), and the commands the tests run in it.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use brindle_lab::Lab;
use brindle_lab::progress::Quiet;
use brindle_testkit::{TempDir, names, require};

pub const BIN: &str = env!("CARGO_BIN_EXE_brindle");

/// A lab built by the real binary, removed on drop.
pub struct TestLab {
    pub root: TempDir,
    pub name: String,
}

impl TestLab {
    pub fn up(prefix: &str, args: &[&str]) -> TestLab {
        TestLab::up_env(prefix, args, &[])
    }

    /// [`TestLab::up`] from a caller whose environment also holds `env`.
    pub fn up_env(prefix: &str, args: &[&str], env: &[(&str, String)]) -> TestLab {
        require::root();
        let root = TempDir::new("labs");
        let name = names::unique(prefix);
        let lab = TestLab { root, name };
        let out = Command::new(BIN)
            .args(["lab", "up", "--name", &lab.name])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("BRINDLE_LAB_ROOT", lab.root.path())
            .output()
            .expect("run brindle lab up");
        assert!(
            out.status.success(),
            "lab up {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    pub fn lab(&self) -> Lab {
        Lab::open_in(self.root.path(), &self.name).expect("open lab")
    }

    /// `brindle lab exec NAME TARGET -- ARGV…`.
    pub fn exec(&self, target: &str, argv: &[&str]) -> Output {
        Command::new(BIN)
            .args(["lab", "exec", "--name", &self.name, target, "--"])
            .args(argv)
            .env("BRINDLE_LAB_ROOT", self.root.path())
            .output()
            .expect("run brindle lab exec")
    }

    pub fn stdout(&self, target: &str, argv: &[&str]) -> String {
        let o = self.exec(target, argv);
        assert!(
            o.status.success(),
            "{argv:?} on {target}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `brindle apply -f -` on `node` with `yaml` on stdin.
    pub fn apply(&self, node: &str, yaml: &str) {
        use std::io::Write;
        let mut c = Command::new(BIN)
            .args(["lab", "exec", "--name", &self.name, node, "--"])
            .args(["brindle", "apply", "-f", "-"])
            .env("BRINDLE_LAB_ROOT", self.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run brindle apply");
        c.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "apply on {node}:\n{yaml}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `brindle lab view -o FILE` on this lab; fails the test with its stderr if it fails.
    pub fn view_to(&self, file: &std::path::Path) {
        let out = Command::new(BIN)
            .args(["lab", "view", "--name", &self.name, "-o"])
            .arg(file)
            .env("BRINDLE_LAB_ROOT", self.root.path())
            .output()
            .expect("run brindle lab view");
        assert!(
            out.status.success(),
            "lab view: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn agent_log(&self, node: &str) -> String {
        let p = self.root.path().join(&self.name).join(node).join("agent.log");
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Every pod pings every pod, over each family of the lab.
    pub fn ping_all(&self) {
        for m in self.lab().ping_every_family().expect("ping") {
            assert!(m.pairs() > 0);
            assert!(
                m.failures().is_empty(),
                "pods cannot reach each other over IPv{}:\n{}",
                m.family,
                m.render()
            );
        }
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let nodes: Vec<String> = Lab::open_in(self.root.path(), &self.name)
                .map(|l| l.plan().nodes.iter().map(|n| n.name.clone()).collect())
                .unwrap_or_default();
            for n in &nodes {
                let p = self.root.path().join(&self.name).join(n).join("agent.log");
                if let Ok(t) = std::fs::read_to_string(&p) {
                    let tail: Vec<&str> = t.lines().rev().take(20).collect();
                    eprintln!("--- {n} agent log (last lines) ---");
                    for l in tail.into_iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        if let Ok(lab) = Lab::open_in(self.root.path(), &self.name)
            && let Err(e) = lab.down(&Quiet)
        {
            eprintln!("lab down {}: {e}", self.name);
        }
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 8 && b[2] == b':' && b[5] == b':' && s.chars().filter(|c| c.is_ascii_digit()).count() == 6
}

/// Pings `ip` from `netns` every 10 ms for `count` packets; returns (sent, received).
pub fn ping_stream(netns: &str, ip: &str, count: u32) -> std::thread::JoinHandle<(u32, u32)> {
    let netns = netns.to_string();
    let ip = ip.to_string();
    std::thread::spawn(move || {
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{netns}"))
            .args([
                "ping",
                "-i",
                "0.01",
                "-W",
                "1",
                "-c",
                &count.to_string(),
                "-q",
                &ip,
            ])
            .output()
            .expect("ping");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or("");
        let nums: Vec<u32> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        (
            nums.first().copied().unwrap_or(0),
            nums.get(1).copied().unwrap_or(0),
        )
    })
}
