//! The plugin's log: each line to the log file (`log_file_path`, default
//! `/var/log/brindle/cni/cni.log`) at `log_level` and above, and warnings and errors also to
//! stderr, which runtimes keep with the call (Calico logs to both the same way). Logging never
//! fails the call: a log file that cannot be written is skipped.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Brindle's default CNI log file (Calico's is `/var/log/calico/cni/cni.log`).
pub const DEFAULT_LOG_FILE: &str = "/var/log/brindle/cni/cni.log";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// Calico's `log_level` values (logrus names); unknown values mean `info`.
    pub fn parse(s: &str) -> Level {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Level::Debug,
            "warn" | "warning" => Level::Warn,
            "error" | "fatal" | "panic" => Level::Error,
            _ => Level::Info,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

struct Logger {
    level: Level,
    file: Option<Mutex<File>>,
    /// `ContainerID=…` (or nothing), appended to every line.
    context: String,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets the log up for this process (first call wins).
pub fn init(level: Option<&str>, file: Option<&Path>, container_id: &str) {
    let level = level.map(Level::parse).unwrap_or(Level::Info);
    let path = file.unwrap_or(Path::new(DEFAULT_LOG_FILE));
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()
        .map(Mutex::new);
    let context = if container_id.is_empty() {
        String::new()
    } else {
        format!(" ContainerID=\"{container_id}\"")
    };
    let _ = LOGGER.set(Logger { level, file, context });
}

fn stamp() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let rfc = brindle_model::meta::rfc3339_utc(d.as_secs() as i64);
    format!(
        "{}.{:03}",
        rfc.trim_end_matches('Z').replacen('T', " ", 1),
        d.subsec_millis()
    )
}

fn write(level: Level, msg: &str) {
    let Some(l) = LOGGER.get() else {
        if level >= Level::Warn {
            eprintln!("brindle: {msg}");
        }
        return;
    };
    if level >= Level::Warn {
        eprintln!("brindle: {msg}");
    }
    if level < l.level {
        return;
    }
    if let Some(f) = &l.file {
        let line = format!(
            "{} [{}][{}] {msg}{}\n",
            stamp(),
            level.tag(),
            std::process::id(),
            l.context
        );
        if let Ok(mut f) = f.lock() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

pub fn debug(msg: &str) {
    write(Level::Debug, msg);
}

pub fn info(msg: &str) {
    write(Level::Info, msg);
}

pub fn warn(msg: &str) {
    write(Level::Warn, msg);
}

pub fn error(msg: &str) {
    write(Level::Error, msg);
}
