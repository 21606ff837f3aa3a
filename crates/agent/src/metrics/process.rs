//! `process_*` series as Prometheus' client libraries export them (from `/proc/self`), and
//! `brindle_build_info`.

use std::fmt;

use nix::sys::resource::{Resource, getrlimit};
use nix::unistd::SysconfVar;

use super::encode::Families;

/// What `/proc` says about this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub virtual_bytes: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub start_time_seconds: f64,
    pub threads: f64,
}

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses),
/// numbered as proc(5) numbers them minus 3 (index 0 is field 3, the state).
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default()
}

fn sysconf(var: SysconfVar, fallback: f64) -> f64 {
    match nix::unistd::sysconf(var) {
        Ok(Some(v)) if v > 0 => v as f64,
        _ => fallback,
    }
}

fn clock_ticks() -> f64 {
    sysconf(SysconfVar::CLK_TCK, 100.0)
}

fn page_size() -> f64 {
    sysconf(SysconfVar::PAGE_SIZE, 4096.0)
}

/// Seconds since the epoch the machine booted (`btime` of `/proc/stat`).
fn boot_time() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
}

impl ProcessStats {
    /// Reads this process's figures; what cannot be read stays 0.
    pub fn read() -> ProcessStats {
        let mut p = ProcessStats::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            let f = stat_fields(&stat);
            let num = |field: usize| -> f64 { f.get(field - 3).and_then(|v| v.parse().ok()).unwrap_or(0.0) };
            let ticks = clock_ticks();
            p.cpu_seconds = (num(14) + num(15)) / ticks;
            p.threads = num(20);
            p.start_time_seconds = boot_time() + num(22) / ticks;
            p.virtual_bytes = num(23);
            p.resident_bytes = num(24) * page_size();
        }
        p.open_fds = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count() as f64)
            .unwrap_or(0.0);
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            p.max_fds = soft as f64;
        }
        p
    }

    pub(super) fn write(&self, f: &mut Families<'_>) -> fmt::Result {
        f.counter(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            &[(Vec::new(), self.cpu_seconds)],
        )?;
        f.one(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            self.resident_bytes,
        )?;
        f.one(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            self.virtual_bytes,
        )?;
        f.one(
            "process_open_fds",
            "Number of open file descriptors.",
            self.open_fds,
        )?;
        f.one(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            self.max_fds,
        )?;
        f.one(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds,
        )?;
        f.one(
            "process_threads",
            "Number of OS threads in the process.",
            self.threads,
        )
    }
}

/// `brindle_build_info{version, calico_version} 1`.
pub(super) fn write_build_info(f: &mut Families<'_>, calico_version: &str) -> fmt::Result {
    f.gauge(
        "brindle_build_info",
        "Brindle's version and the Calico version it reports itself as; always 1.",
        &[(
            vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                ("calico_version", calico_version.to_string()),
            ],
            1.0,
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let p = ProcessStats::read();
        assert!(p.resident_bytes > 1e6, "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes);
        assert!(p.open_fds >= 3.0 && p.max_fds >= p.open_fds);
        assert!(p.threads >= 1.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(p.start_time_seconds > now - 86_400.0 * 365.0 && p.start_time_seconds <= now + 1.0);
        assert_eq!(stat_fields("1 (a b) c) S 0 1")[0], "S");
    }
}
