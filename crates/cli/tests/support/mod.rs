//! Runs the real `brindle` binary against a datastore of its own. (Each test file uses a part.)
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use brindle_testkit::TempDir;

pub const SEED_POOL: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-pool
spec:
  cidr: 10.233.64.0/18
  blockSize: 24
  ipipMode: Always
  natOutgoing: true
";

/// The result of one run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self
    }

    #[track_caller]
    pub fn fails(self) -> Run {
        assert_eq!(self.code, 1, "expected exit 1: {self:?}");
        self
    }
}

/// A scratch directory with its own SQLite store; files written here; the binary run with the
/// store selected by flags (and no calicoctl.cfg, no datastore environment).
pub struct Env {
    pub dir: TempDir,
    pub binary: PathBuf,
    pub extra_args: Vec<String>,
}

impl Env {
    pub fn sqlite() -> Env {
        let dir = TempDir::new("brindle-cli");
        let db = dir.join("brindle.db");
        // A connection file of its own that selects nothing: the host's calicoctl.cfg is
        // never read.
        let cfg = dir.join("calicoctl.cfg");
        std::fs::write(&cfg, "kind: CalicoAPIConfig\nspec: {}\n").expect("write calicoctl.cfg");
        Env {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_brindle")),
            extra_args: vec![
                "--datastore-type".into(),
                "sqlite".into(),
                "--datastore-path".into(),
                db.display().to_string(),
                "--config".into(),
                cfg.display().to_string(),
            ],
            dir,
        }
    }

    /// The same store, reached through a link named `calicoctl`.
    pub fn as_calicoctl(&self) -> PathBuf {
        let link = self.dir.join("calicoctl");
        if !link.exists() {
            std::os::unix::fs::symlink(&self.binary, &link).expect("symlink calicoctl");
        }
        link
    }

    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write test file");
        p.display().to_string()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(&self.binary, args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        self.run_with(&self.binary, args, Some(stdin))
    }

    pub fn run_with(&self, binary: &Path, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_env(binary, args, stdin, &[])
    }

    /// Runs with `vars` added to a clean datastore environment.
    pub fn run_env(&self, binary: &Path, args: &[&str], stdin: Option<&str>, vars: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .args(&self.extra_args)
            .env_remove("BRINDLE_CONFIG")
            .env_remove("CNI_COMMAND")
            .env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .env_remove("BRINDLE_DATASTORE_TYPE")
            .env_remove("BRINDLE_DATASTORE_PATH")
            .envs(vars.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run brindle");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for brindle");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }
}

/// Replaces the values that differ between runs (uid, creation time) with fixed text.
pub fn mask(text: &str) -> String {
    text.lines()
        .map(|l| {
            for key in ["uid", "creationTimestamp"] {
                for (pre, quote) in [(format!("{key}: "), ""), (format!("\"{key}\": "), "\"")] {
                    if let Some(i) = l.find(&pre) {
                        let tail = if l.trim_end().ends_with(',') { "," } else { "" };
                        return format!("{}{pre}{quote}<{key}>{quote}{tail}", &l[..i]);
                    }
                }
            }
            l.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}
