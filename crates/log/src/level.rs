//! Calico's log levels and Brindle's two line formats.

use crate::Error;

/// A severity, ordered from the most verbose. `None` silences everything (Felix's `none`
/// for a log destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Fatal,
    Panic,
    None,
}

impl Level {
    /// Calico's spellings, any case: `Trace`, `Debug`, `Info`, `Warning` (or `warn`), `Error`,
    /// `Fatal`, `Panic`, `None` (or `off`). `setting` names the variable in the error.
    pub fn parse(setting: &str, value: &str) -> Result<Level, Error> {
        Ok(match value.trim().to_ascii_lowercase().as_str() {
            "trace" => Level::Trace,
            "debug" => Level::Debug,
            "info" => Level::Info,
            "warning" | "warn" => Level::Warning,
            "error" => Level::Error,
            "fatal" => Level::Fatal,
            "panic" => Level::Panic,
            "none" | "off" => Level::None,
            _ => {
                return Err(Error::BadSetting {
                    setting: setting.into(),
                    value: value.into(),
                    expected: "expected one of Trace, Debug, Info, Warning, Error, Fatal, Panic, None",
                });
            }
        })
    }

    /// The text layout's tag: logrus' level name in capitals (`WARNING`).
    pub fn tag(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
            Level::Panic => "PANIC",
            Level::None => "NONE",
        }
    }

    /// logrus' JSON `level` value (`warning`).
    pub fn json_name(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
            Level::Panic => "panic",
            Level::None => "none",
        }
    }

    /// The `tracing` level a record needs to be shown at this threshold (`None`: nothing is).
    pub fn tracing_filter(self) -> tracing_subscriber::filter::LevelFilter {
        use tracing_subscriber::filter::LevelFilter;
        match self {
            Level::Trace => LevelFilter::TRACE,
            Level::Debug => LevelFilter::DEBUG,
            Level::Info => LevelFilter::INFO,
            Level::Warning => LevelFilter::WARN,
            Level::Error | Level::Fatal | Level::Panic => LevelFilter::ERROR,
            Level::None => LevelFilter::OFF,
        }
    }

    /// The level of a `tracing` record.
    pub fn from_tracing(l: &tracing::Level) -> Level {
        match *l {
            tracing::Level::TRACE => Level::Trace,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warning,
            tracing::Level::ERROR => Level::Error,
        }
    }
}

/// How a line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Calico's text layout.
    #[default]
    Text,
    /// One JSON object per line (logrus' JSON formatter), for log shippers.
    Json,
}

impl Format {
    /// `text` or `json`, any case. `setting` names the variable in the error.
    pub fn parse(setting: &str, value: &str) -> Result<Format, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "text" | "" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            _ => Err(Error::BadSetting {
                setting: setting.into(),
                value: value.into(),
                expected: "expected text or json",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calico_names_any_case() {
        for (s, l) in [
            ("Info", Level::Info),
            ("WARNING", Level::Warning),
            ("warn", Level::Warning),
            ("debug", Level::Debug),
            ("Fatal", Level::Fatal),
            ("none", Level::None),
            (" trace ", Level::Trace),
        ] {
            assert_eq!(Level::parse("X", s).unwrap(), l, "{s}");
        }
        let e = Level::parse("FELIX_LOGSEVERITYSCREEN", "loud")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("FELIX_LOGSEVERITYSCREEN=loud: expected one of"),
            "{e}"
        );
        assert!(Level::Debug < Level::Info && Level::Error < Level::None);
        assert_eq!(Format::parse("F", "JSON").unwrap(), Format::Json);
        assert!(
            Format::parse("BRINDLE_LOG_FORMAT", "xml")
                .unwrap_err()
                .to_string()
                .contains("BRINDLE_LOG_FORMAT=xml")
        );
    }
}
