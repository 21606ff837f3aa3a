//! One log format for every Brindle process that logs: the agent (`brindle node run`, through
//! `tracing`) and the CNI plugin (its own small logger, short-lived processes).
//!
//! The text layout is Calico's (Felix's and the CNI plugin's logrus formatter):
//! `2026-12-07 16:00:00.123 [INFO][4321] agent/run.rs 212: startup complete node="n1"`;
//! the JSON layout is logrus' JSON formatter (`{"level":"info","msg":…,"time":…}`, fields at
//! the top level). Levels are Calico's names (`Trace`, `Debug`, `Info`, `Warning`, `Error`,
//! `Fatal`, `Panic`, and `None` to silence), as `FELIX_LOGSEVERITYSCREEN` and the CNI
//! configuration's `log_level` take them.
//!
//! Module map:
//! - [`level`]: [`Level`] and [`Format`], parsed from Calico's spellings.
//! - [`line`]: [`Line`], one record, rendered as text or JSON (pure).
//! - [`rotate`]: [`RotatingFile`], an append-only log file capped in size and rotated
//!   (`cni.log` → `cni.log.1` …), safe with several processes appending at once.
//! - [`subscriber`]: the `tracing` subscriber that writes [`Line`]s (the agent's logging).

#![forbid(unsafe_code)]

pub mod level;
pub mod line;
pub mod rotate;
pub mod subscriber;

pub use level::{Format, Level};
pub use line::Line;
pub use rotate::{RotatingFile, RotationPolicy};

/// What can go wrong configuring logging.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting has a value Brindle does not know; names the setting.
    #[error("{setting}={value}: {expected}")]
    BadSetting {
        setting: String,
        value: String,
        expected: &'static str,
    },
    #[error("log file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
