//! Cutting an input stream into documents while reading it, so that no more than one document
//! (at most the size limit) is ever held, and a document over the limit is refused without
//! reading the rest of it.
//!
//! YAML documents end where a line starts with `---` or `...` (YAML forbids both at the start of
//! a line inside a document, so the cut is exact). A JSON stream (one that starts with `{` or
//! `[`) is cut after each top-level value; its nesting is counted on the way (exact: JSON has
//! only strings to skip) and refused past the depth limit before the parser sees it.

use std::io::BufRead;

use super::Limits;

/// The stream's syntax, from its first non-blank byte (as `calicoctl` decides it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Json,
}

/// One document's text and the 0-based line of the stream it starts on.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub text: String,
    pub first_line: usize,
}

/// Why reading stopped: a limit, an I/O error or bytes that are not UTF-8; `line` is 1-based.
#[derive(Debug)]
pub(crate) struct SplitError {
    pub line: Option<usize>,
    pub message: String,
}

pub(crate) struct Splitter<R> {
    reader: R,
    limits: Limits,
    format: Option<Format>,
    /// Lines consumed so far (the 0-based line the next byte is on).
    line: usize,
    /// A `---` line read while finishing the previous YAML document: the next one's start.
    carry: Vec<u8>,
    carry_line: usize,
    done: bool,
}

impl<R: BufRead> Splitter<R> {
    pub(crate) fn new(reader: R, limits: Limits) -> Self {
        Splitter {
            reader,
            limits,
            format: None,
            line: 0,
            carry: Vec::new(),
            carry_line: 0,
            done: false,
        }
    }

    pub(crate) fn format(&self) -> Option<Format> {
        self.format
    }

    /// The next document, `None` at the end of the stream. After an error, `None`.
    pub(crate) fn next_chunk(&mut self) -> Option<Result<Chunk, SplitError>> {
        if self.done {
            return None;
        }
        let out = match self.detect() {
            Err(e) => Some(Err(e)),
            Ok(None) => None,
            Ok(Some(Format::Yaml)) => self.next_yaml().transpose(),
            Ok(Some(Format::Json)) => self.next_json().transpose(),
        };
        if !matches!(out, Some(Ok(_))) {
            self.done = true;
        }
        out
    }

    fn error(&self, message: String) -> SplitError {
        SplitError {
            line: Some(self.line + 1),
            message,
        }
    }

    fn too_big(&self) -> SplitError {
        self.error(format!(
            "document is larger than the limit of {} bytes (split it, or load the rest separately)",
            self.limits.max_document_bytes
        ))
    }

    /// Skips a byte-order mark and leading blanks, and decides the format (once).
    fn detect(&mut self) -> Result<Option<Format>, SplitError> {
        if let Some(f) = self.format {
            return Ok(Some(f));
        }
        let mut skipped_bom = false;
        loop {
            let line = self.line;
            let buf = self.reader.fill_buf().map_err(|e| io_error(line, e))?;
            if buf.is_empty() {
                return Ok(None);
            }
            if !skipped_bom && buf.starts_with(b"\xef\xbb\xbf") {
                skipped_bom = true;
                self.reader.consume(3);
                continue;
            }
            skipped_bom = true;
            let blanks = buf
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
                .count();
            if blanks == buf.len() {
                self.line += buf.iter().filter(|b| **b == b'\n').count();
                let n = buf.len();
                self.reader.consume(n);
                continue;
            }
            // Leading blank lines stay in the text (YAML line numbers count them); only the
            // decision needs the first other byte.
            let format = if matches!(buf[blanks], b'{' | b'[') {
                self.line += buf[..blanks].iter().filter(|b| **b == b'\n').count();
                self.reader.consume(blanks);
                Format::Json
            } else {
                Format::Yaml
            };
            self.format = Some(format);
            return Ok(Some(format));
        }
    }

    /// Appends one line (with its `\n`) to `out`, reading at most `room` bytes; `Ok(false)` at
    /// the end of the stream with nothing read.
    fn read_line(&mut self, out: &mut Vec<u8>, room: usize) -> Result<bool, SplitError> {
        let start = out.len();
        loop {
            let line = self.line;
            let buf = self.reader.fill_buf().map_err(|e| io_error(line, e))?;
            if buf.is_empty() {
                return Ok(out.len() > start);
            }
            let (take, end) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if out.len() - start + take > room {
                return Err(self.too_big());
            }
            out.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
            if end {
                return Ok(true);
            }
        }
    }

    fn next_yaml(&mut self) -> Result<Option<Chunk>, SplitError> {
        let max = self.limits.max_document_bytes;
        let mut text = std::mem::take(&mut self.carry);
        let mut first_line = if text.is_empty() {
            self.line
        } else {
            self.carry_line
        };
        loop {
            let line_no = self.line;
            let start = text.len();
            // Room for the document's remaining bytes, or for a marker line ending it.
            let room = max.saturating_sub(start).max(8);
            if !self.read_line(&mut text, room)? {
                break;
            }
            self.line += 1;
            let line = &text[start..];
            let marker = |m: &[u8]| {
                line.starts_with(m) && matches!(line.get(3), None | Some(b' ' | b'\t' | b'\r' | b'\n'))
            };
            if marker(b"---") {
                if start == 0 {
                    first_line = line_no;
                    continue;
                }
                if directives_only(&text[..start]) {
                    // `%YAML`/`%TAG` lines belong to the document this marker starts.
                    continue;
                }
                self.carry = text.split_off(start);
                self.carry_line = line_no;
                return self.finish(text, first_line).map(Some);
            }
            let end = marker(b"...");
            if text.len() > max {
                return Err(self.too_big());
            }
            if end {
                return self.finish(text, first_line).map(Some);
            }
        }
        if text.is_empty() {
            return Ok(None);
        }
        self.finish(text, first_line).map(Some)
    }

    fn finish(&self, text: Vec<u8>, first_line: usize) -> Result<Chunk, SplitError> {
        let text = String::from_utf8(text).map_err(|e| SplitError {
            line: Some(first_line + 1),
            message: format!("not UTF-8 text: {}", e.utf8_error()),
        })?;
        Ok(Chunk { text, first_line })
    }

    /// One top-level JSON value: brackets counted outside strings, so the value ends where they
    /// balance, and nesting past the limit is refused as soon as it is read.
    fn next_json(&mut self) -> Result<Option<Chunk>, SplitError> {
        let max = self.limits.max_document_bytes;
        let mut text: Vec<u8> = Vec::new();
        let mut first_line = self.line;
        let mut depth = 0usize;
        let (mut in_string, mut escaped) = (false, false);
        // A scalar at the top (not a resource; the parser says so) ends at a blank.
        let mut scalar = false;
        loop {
            let line = self.line;
            let buf = self.reader.fill_buf().map_err(|e| io_error(line, e))?;
            if buf.is_empty() {
                break;
            }
            let mut used = 0;
            let mut complete = false;
            for &b in buf {
                if text.is_empty() && !scalar && depth == 0 && matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                    used += 1;
                    if b == b'\n' {
                        self.line += 1;
                        first_line = self.line;
                    }
                    continue;
                }
                if scalar && !in_string && matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'[') {
                    complete = true;
                    break;
                }
                used += 1;
                text.push(b);
                if b == b'\n' {
                    self.line += 1;
                }
                if in_string {
                    match (escaped, b) {
                        (true, _) => escaped = false,
                        (false, b'\\') => escaped = true,
                        (false, b'"') => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => {
                        in_string = true;
                        scalar |= depth == 0 && text.len() == 1;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > self.limits.max_depth {
                            self.reader.consume(used);
                            return Err(self.error(format!(
                                "nesting is deeper than the limit of {} levels",
                                self.limits.max_depth
                            )));
                        }
                    }
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            complete = true;
                            break;
                        }
                    }
                    _ => scalar |= depth == 0,
                }
                if text.len() > max {
                    break;
                }
            }
            self.reader.consume(used);
            if text.len() > max {
                return Err(self.too_big());
            }
            if complete {
                break;
            }
        }
        if text.is_empty() {
            return Ok(None);
        }
        self.finish(text, first_line).map(Some)
    }
}

/// True when `text` holds only directives (`%…`), comments and blank lines.
fn io_error(line: usize, e: std::io::Error) -> SplitError {
    SplitError {
        line: Some(line + 1),
        message: format!("reading: {e}"),
    }
}

fn directives_only(text: &[u8]) -> bool {
    let mut any = false;
    for line in text.split(|b| *b == b'\n') {
        let l = line.trim_ascii_start();
        if l.starts_with(b"%") {
            any = true;
        } else if !(l.is_empty() || l.starts_with(b"#")) {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str, limits: Limits) -> Vec<Result<(usize, String), String>> {
        let mut s = Splitter::new(text.as_bytes(), limits);
        std::iter::from_fn(|| s.next_chunk())
            .map(|c| c.map(|c| (c.first_line, c.text)).map_err(|e| e.message))
            .collect()
    }

    #[test]
    fn yaml_is_cut_at_document_markers() {
        let got = chunks("a: 1\n---\nb: 2\n--- # c\nc: 3\n...\n---\n", Limits::default());
        let got: Vec<(usize, String)> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            [
                (0, "a: 1\n".into()),
                (1, "---\nb: 2\n".into()),
                (3, "--- # c\nc: 3\n...\n".into()),
                (6, "---\n".into()),
            ]
        );
        // `----` and ` ---` are not markers; directives go with the next document.
        let got = chunks("%YAML 1.2\n---\na: ----\n ---\n", Limits::default());
        assert_eq!(got.len(), 1, "{got:?}");
    }

    #[test]
    fn json_values_are_cut_where_brackets_balance() {
        let got = chunks("{\"a\": \"}{\"}\n [1, [2]] {}", Limits::default());
        let got: Vec<(usize, String)> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            [
                (0, "{\"a\": \"}{\"}".into()),
                (1, "[1, [2]]".into()),
                (1, "{}".into())
            ]
        );
    }

    #[test]
    fn limits_stop_reading() {
        let limits = Limits {
            max_document_bytes: 100,
            ..Limits::default()
        };
        let big = format!("a: {}\n", "x".repeat(200));
        let got = chunks(&big, limits);
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .contains("larger than the limit of 100 bytes")
        );
        let got = chunks(
            &format!("{}{}", "[".repeat(65), "]".repeat(65)),
            Limits::default(),
        );
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .contains("deeper than the limit of 64 levels")
        );
        assert!(
            chunks(
                &format!("{}{}", "[".repeat(64), "]".repeat(64)),
                Limits::default()
            )[0]
            .is_ok()
        );
    }
}
