//! The plugin's log: each line to the log file (`log_file_path`, default
//! `/var/log/brindle/cni/cni.log`, capped and rotated as `log_file_max_size`, `log_file_max_count`
//! and `log_file_max_age` say) at `log_level` and above, and warnings and errors also to stderr,
//! which runtimes keep with the call (Calico logs to both the same way). The line format is the
//! agent's (`brindle_log`): Calico's layout, or JSON with `log_format: json`. Logging never fails
//! the call: a log file that cannot be written is skipped.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use brindle_log::{Format, Level, Line, RotatingFile, RotationPolicy};

/// Brindle's default CNI log file (Calico's is `/var/log/calico/cni/cni.log`).
pub const DEFAULT_LOG_FILE: &str = "/var/log/brindle/cni/cni.log";

/// How the plugin logs, from the network configuration.
#[derive(Debug, Clone, Default)]
pub struct LogSettings<'a> {
    pub level: Option<&'a str>,
    pub file: Option<&'a Path>,
    pub format: Option<&'a str>,
    pub max_size_mb: Option<u64>,
    pub max_count: Option<usize>,
    pub max_age_days: Option<u64>,
}

struct Logger {
    level: Level,
    format: Format,
    file: Option<RotatingFile>,
    component: &'static str,
    /// `ContainerID`, as Calico's plugin adds to every line.
    fields: Vec<(&'static str, String)>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

impl LogSettings<'_> {
    fn policy(&self) -> RotationPolicy {
        let d = RotationPolicy::default();
        RotationPolicy {
            max_bytes: self.max_size_mb.map_or(d.max_bytes, |mb| mb.max(1) * 1024 * 1024),
            max_files: self.max_count.unwrap_or(d.max_files),
            max_age: match self.max_age_days {
                None => d.max_age,
                Some(0) => None,
                Some(days) => Some(Duration::from_secs(days * 86_400)),
            },
        }
    }
}

/// Sets the log up for this process (first call wins). Calico's plugin treats an unknown
/// `log_level` as `info`; so does this one.
pub fn init(s: &LogSettings<'_>, component: &'static str, container_id: &str) {
    let level = s
        .level
        .and_then(|l| Level::parse("log_level", l).ok())
        .unwrap_or(Level::Info);
    let format = s
        .format
        .and_then(|f| Format::parse("log_format", f).ok())
        .unwrap_or_default();
    let path = s.file.unwrap_or(Path::new(DEFAULT_LOG_FILE));
    let file = RotatingFile::open(path, s.policy()).ok();
    let fields = if container_id.is_empty() {
        Vec::new()
    } else {
        vec![("ContainerID", container_id.to_string())]
    };
    let _ = LOGGER.set(Logger {
        level,
        format,
        file,
        component,
        fields,
    });
}

#[track_caller]
fn write(level: Level, msg: &str) {
    let Some(l) = LOGGER.get() else {
        if level >= Level::Warning {
            eprintln!("brindle: {msg}");
        }
        return;
    };
    if level >= Level::Warning {
        eprintln!("brindle: {msg}");
    }
    if level < l.level {
        return;
    }
    let at = std::panic::Location::caller();
    let file = at.file().rsplit('/').next().unwrap_or(at.file());
    if let Some(f) = &l.file {
        let line = Line {
            time: SystemTime::now(),
            level,
            pid: std::process::id(),
            component: l.component,
            file,
            line: at.line(),
            message: msg,
            fields: &l.fields,
        };
        let _ = f.write_line(&line.render(l.format));
    }
}

#[track_caller]
pub fn debug(msg: &str) {
    write(Level::Debug, msg);
}

#[track_caller]
pub fn info(msg: &str) {
    write(Level::Info, msg);
}

#[track_caller]
pub fn warn(msg: &str) {
    write(Level::Warning, msg);
}

#[track_caller]
pub fn error(msg: &str) {
    write(Level::Error, msg);
}
