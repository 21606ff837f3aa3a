//! Daemons of a lab: started detached inside a namespace, identified by PID **and** start time
//! (and argv\[0\]), so a PID reused by the kernel after a crash is never signalled.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One daemon the lab started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRecord {
    /// What it is for: `agent bgp-master1`, `etcd`.
    pub role: String,
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` (clock ticks since boot) when it was started.
    pub start_time: u64,
    /// argv\[0\] it was started with.
    pub exe: PathBuf,
    pub netns: String,
    pub log: PathBuf,
}

/// What `/proc/PID/stat` says: start time and state letter.
fn stat_of(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((start, state))
}

fn argv0(pid: i32) -> Option<PathBuf> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = raw.split(|b| *b == 0).next()?;
    Some(PathBuf::from(String::from_utf8_lossy(first).into_owned()))
}

impl ProcRecord {
    /// True while the recorded process is alive: same PID, same start time, same argv\[0\], and
    /// not a zombie.
    pub fn is_alive(&self) -> bool {
        match stat_of(self.pid) {
            Some((start, state)) => {
                start == self.start_time
                    && state != 'Z'
                    && state != 'X'
                    && argv0(self.pid).as_deref() == Some(self.exe.as_path())
            }
            None => false,
        }
    }

    fn signal(&self, sig: i32) -> bool {
        if !self.is_alive() {
            return false;
        }
        // A PID just verified (start time + argv[0]) to be our daemon.
        let Ok(sig) = nix::sys::signal::Signal::try_from(sig) else {
            return false;
        };
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), sig).is_ok()
    }

    /// Reaps the process if it is our child (a no-op otherwise), so it does not linger as a
    /// zombie in a long-lived caller such as a test.
    fn reap(&self) {
        // Fails harmlessly with ECHILD if it is not our child.
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(self.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }

    /// Sends SIGKILL now (verified), and reaps it if it is our child.
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.is_alive() && Instant::now() < deadline {
            self.reap();
            std::thread::sleep(Duration::from_millis(10));
        }
        self.reap();
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL. Does nothing if the process is gone (or its
    /// PID now belongs to another process).
    pub fn stop(&self, grace: Duration) -> Result<()> {
        if !self.signal(libc::SIGTERM) {
            return Ok(());
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            self.reap();
            if !self.is_alive() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        if self.is_alive() {
            return Err(Error::step(
                format!("stop {} (pid {})", self.role, self.pid),
                "still running after SIGKILL",
            ));
        }
        Ok(())
    }
}

/// Starts `program args…` detached (own session, stdin from /dev/null, stdout and stderr
/// appended to `log`) inside the named network namespace, with `env` added to the environment.
/// The namespace is entered between fork and exec, so the mount namespace stays the host's (like
/// `nsenter --net`, unlike `ip netns exec`).
pub fn spawn_detached(
    role: &str,
    netns: &str,
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    log: &Path,
) -> Result<ProcRecord> {
    let what = format!("start {role} in namespace {netns}");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io(log, e))?;
    let err = out.try_clone().map_err(|e| Error::io(log, e))?;
    let mut cmd = Command::new(program);
    crate::env::isolate(&mut cmd);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    enter_netns(&mut cmd, netns)?;
    // SAFETY: setsid is async-signal-safe; it detaches the daemon from our terminal and process
    // group so it outlives `lab up` and ignores a Ctrl-C meant for it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Error::step(&what, e))?;
    let pid = child.id() as i32;
    let (start_time, _) = stat_of(pid).ok_or_else(|| Error::step(&what, "exited at once"))?;
    Ok(ProcRecord {
        role: role.into(),
        pid,
        start_time,
        exe: program.to_path_buf(),
        netns: netns.into(),
        log: log.to_path_buf(),
    })
}

/// Makes `cmd` enter the network namespace `/run/netns/<netns>` between fork and exec.
pub fn enter_netns(cmd: &mut Command, netns: &str) -> Result<()> {
    brindle_netlink::NetnsFd::named(netns)?.enter_on_exec(cmd);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_is_not_ours() {
        let me = std::process::id() as i32;
        let (start, _) = stat_of(me).unwrap();
        let exe = argv0(me).unwrap();
        let rec = ProcRecord {
            role: "test".into(),
            pid: me,
            start_time: start,
            exe: exe.clone(),
            netns: String::new(),
            log: PathBuf::new(),
        };
        assert!(rec.is_alive());
        // Same PID, other start time: a different process that got the PID later.
        let other = ProcRecord {
            start_time: start + 1,
            ..rec.clone()
        };
        assert!(!other.is_alive());
        let other = ProcRecord {
            exe: "/bin/somethingelse".into(),
            ..rec
        };
        assert!(!other.is_alive());
    }
}
