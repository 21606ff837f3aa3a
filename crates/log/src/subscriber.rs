//! The agent's `tracing` output in Brindle's line format: [`LineFormat`] renders each event as
//! a [`Line`] (component from the event's crate, file and line from its source location, the
//! `message` field as the message, the other fields after it).

use std::fmt;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::{Format, Level, Line};

/// Renders events as [`Line`]s.
#[derive(Debug, Clone, Copy)]
pub struct LineFormat {
    pub format: Format,
    /// The component named for events from outside Brindle's crates (`agent`).
    pub component: &'static str,
}

/// `brindle_agent::run` → `agent`, `brindle_bgp_speaker::peer` → `bgp-speaker`, `hyper::proto`
/// → `hyper`: Calico names a line's origin by its package directory (`felix/…`).
pub fn component_of(target: &str) -> String {
    let first = target.split("::").next().unwrap_or(target);
    let name = first.strip_prefix("brindle_").unwrap_or(first);
    name.replace('_', "-")
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.push((field.name(), format!("{value:?}")));
        }
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let component = if meta.target().starts_with("brindle") {
            component_of(meta.target())
        } else {
            self.component.to_string()
        };
        let file = meta
            .file()
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .unwrap_or("");
        let fields: Vec<(&str, String)> = f.fields.into_iter().collect();
        let line = Line {
            time: SystemTime::now(),
            level: Level::from_tracing(meta.level()),
            pid: std::process::id(),
            component: &component,
            file,
            line: meta.line().unwrap_or(0),
            message: &f.message,
            fields: &fields,
        };
        writer.write_str(&line.render(self.format))
    }
}

/// Installs the process-wide subscriber: events at `level` and above (or as the `BRINDLE_LOG`
/// filter directive says, when set: `BRINDLE_LOG=brindle_bgp_speaker=debug,info`) written to
/// `writer` in `format`. A second call does nothing.
pub fn init<W>(level: Level, format: Format, component: &'static str, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRINDLE_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::default().add_directive(level.tracing_filter().into())
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .event_format(LineFormat { format, component })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn components_from_targets() {
        assert_eq!(component_of("brindle_agent::run"), "agent");
        assert_eq!(component_of("brindle_bgp_speaker::core::routes"), "bgp-speaker");
        assert_eq!(component_of("hyper::proto::h1"), "hyper");
    }

    #[test]
    fn events_become_lines() {
        let buf = Buf::default();
        let b2 = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_writer(move || b2.clone())
            .with_ansi(false)
            .event_format(LineFormat {
                format: Format::Text,
                component: "agent",
            })
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(node = "n1", error = %"no route", "datastore unavailable");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        // The event's target is this crate (`brindle_log`): component `log`.
        assert!(out.contains(" [WARNING]["), "{out}");
        assert!(out.contains("] log/subscriber.rs "), "{out}");
        assert!(
            out.ends_with(": datastore unavailable node=n1 error=\"no route\"\n"),
            "{out}"
        );
    }
}
