//! One log record and its two renderings. Pure: the caller gives the time and the process id.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Format, Level};

/// A record: when, how severe, who (component and source location), what, and its fields.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    pub time: SystemTime,
    pub level: Level,
    pub pid: u32,
    /// `agent`, `cni-plugin`, `ipam-plugin` (Calico's `felix`, `cni-plugin`, …).
    pub component: &'a str,
    /// The source file's name (`run.rs`), empty when unknown.
    pub file: &'a str,
    pub line: u32,
    pub message: &'a str,
    /// Structured fields, `key=value` after the message (text) or top-level keys (JSON).
    pub fields: &'a [(&'a str, String)],
}

/// `2026-12-07 16:00:00.123`: Calico's timestamp (UTC, milliseconds).
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let rfc = brindle_model::meta::rfc3339_utc(d.as_secs() as i64);
    format!(
        "{}.{:03}",
        rfc.trim_end_matches('Z').replacen('T', " ", 1),
        d.subsec_millis()
    )
}

/// logrus quotes a value unless every character is a letter, a digit or one of `-._/@^+`.
fn needs_quoting(v: &str) -> bool {
    v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'))
}

/// Go's `strconv.Quote` for the characters a log value can hold.
fn go_quote(v: &str, out: &mut String) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Line<'_> {
    /// The line in `format`, with its trailing newline.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Text => self.text(),
            Format::Json => self.json(),
        }
    }

    /// Calico's layout: `TIME [LEVEL][PID] component/file line: message key=value…`.
    pub fn text(&self) -> String {
        let mut o = String::with_capacity(96 + self.message.len());
        o.push_str(&timestamp(self.time));
        o.push_str(" [");
        o.push_str(self.level.tag());
        o.push_str("][");
        o.push_str(&self.pid.to_string());
        o.push_str("] ");
        o.push_str(self.component);
        if !self.file.is_empty() {
            o.push('/');
            o.push_str(self.file);
            o.push(' ');
            o.push_str(&self.line.to_string());
        }
        o.push_str(": ");
        // One record, one line: a message with newlines keeps them escaped.
        if self.message.contains('\n') {
            o.push_str(&self.message.replace('\n', "\\n"));
        } else {
            o.push_str(self.message);
        }
        for (k, v) in self.fields {
            o.push(' ');
            o.push_str(k);
            o.push('=');
            if needs_quoting(v) {
                go_quote(v, &mut o);
            } else {
                o.push_str(v);
            }
        }
        o.push('\n');
        o
    }

    /// logrus' JSON layout: `level`, `msg`, `time` (RFC 3339 with milliseconds) and the fields
    /// at the top level (a field named like one of those keys becomes `fields.<name>`, as in
    /// logrus), plus `pid`, `component` and `file` (`run.rs:212`).
    pub fn json(&self) -> String {
        let mut m = serde_json::Map::new();
        let d = self.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let rfc = brindle_model::meta::rfc3339_utc(d.as_secs() as i64);
        let time = format!("{}.{:03}Z", rfc.trim_end_matches('Z'), d.subsec_millis());
        m.insert("level".into(), self.level.json_name().into());
        m.insert("msg".into(), self.message.into());
        m.insert("time".into(), time.into());
        m.insert("pid".into(), self.pid.into());
        m.insert("component".into(), self.component.into());
        if !self.file.is_empty() {
            m.insert("file".into(), format!("{}:{}", self.file, self.line).into());
        }
        for (k, v) in self.fields {
            let key = if m.contains_key(*k) {
                format!("fields.{k}")
            } else {
                (*k).to_string()
            };
            m.insert(key, v.clone().into());
        }
        let mut s = serde_json::Value::Object(m).to_string();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line<'a>(fields: &'a [(&'a str, String)], msg: &'a str) -> Line<'a> {
        Line {
            // 2016-11-21 09:00:00.042 UTC
            time: UNIX_EPOCH + Duration::from_millis(1_479_718_800_042),
            level: Level::Warning,
            pid: 77,
            component: "agent",
            file: "run.rs",
            line: 212,
            message: msg,
            fields,
        }
    }

    #[test]
    fn calico_text_layout() {
        let f = [
            ("node", "bgp-master1".to_string()),
            ("error", "no route to host".to_string()),
            ("empty", String::new()),
            ("path", "/var/lib/x.db".to_string()),
        ];
        assert_eq!(
            line(&f, "datastore unavailable").text(),
            "2016-11-21 09:00:00.042 [WARNING][77] agent/run.rs 212: datastore unavailable \
             node=bgp-master1 error=\"no route to host\" empty=\"\" path=/var/lib/x.db\n"
        );
        let quoted = [("v", "a\"b\\c\n\u{1}".to_string())];
        assert!(
            line(&quoted, "two\nlines")
                .text()
                .ends_with(": two\\nlines v=\"a\\\"b\\\\c\\n\\x01\"\n")
        );
        let nofile = Line {
            file: "",
            ..line(&[], "m")
        };
        assert!(nofile.text().ends_with("[WARNING][77] agent: m\n"));
    }

    #[test]
    fn json_layout() {
        let f = [("node", "n1".to_string()), ("msg", "clash".to_string())];
        let s = line(&f, "hello").json();
        assert!(s.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["level"], "warning");
        assert_eq!(v["msg"], "hello");
        assert_eq!(v["time"], "2016-11-21T09:00:00.042Z");
        assert_eq!(v["node"], "n1");
        assert_eq!(v["fields.msg"], "clash");
        assert_eq!(v["file"], "run.rs:212");
        assert_eq!(v["pid"], 77);
    }
}
