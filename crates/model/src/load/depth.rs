//! How deep a YAML document's flow collections (`{…}`, `[…]`) can nest, found before the YAML
//! parser sees the document.
//!
//! Why: libyaml (under serde_norway) keeps one "simple key" slot per open flow collection and
//! looks at all of them for every token, so a document nested `d` deep costs `d` × tokens: a
//! 500 KB `{a: {a: …}}` 100,000 deep took 45 s of CPU to reject. Block nesting costs no such
//! thing (and needs indentation that grows with depth, so the document size bounds it).
//!
//! The bound must never be below the depth libyaml would reach, whatever the input. Flow context
//! is simple to tokenise exactly (libyaml's rules: a token starts after another; quoted scalars,
//! comments and tags hide brackets; plain scalars end at flow indicators), but where a flow
//! collection *starts* depends on the block context around it (block scalars, multi-line plain
//! scalars, quotes), which is not. So every `[` or `{` is taken as a possible start, and from
//! each one the flow tokeniser runs until its collection closes, the deepest level seen being
//! the bound. A run passes over the brackets it opens itself; a bracket some earlier run opened
//! needs no run of its own (from there on the earlier run does exactly what it would, one or
//! more levels higher). Brackets inside what a run took for a quoted scalar or a comment get
//! their own run, so a wrong guess about where a scalar starts cannot hide a real opening.
//! Runs stop at the limit; their total work is bounded too (a document needing more is
//! refused as too complex rather than scanned at length).

/// What scanning found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// The deepest possible flow nesting, and the scanner's steps (bytes looked at).
    Within { depth: usize, steps: u64 },
    /// Some run went deeper than the limit, at this byte offset.
    TooDeep { offset: usize, steps: u64 },
    /// The runs together looked at more than their budget of bytes.
    TooComplex { steps: u64 },
}

/// Bytes the runs may look at in all: a few passes over the document (each bracket inside text
/// that is not flow YAML starts a run that ends where its brackets balance).
fn budget(len: usize) -> u64 {
    16 * len as u64 + 65_536
}

fn is_blankz(b: Option<&u8>) -> bool {
    matches!(b, None | Some(b' ' | b'\t' | b'\r' | b'\n'))
}

fn is_flow_indicator(b: u8) -> bool {
    matches!(b, b',' | b'[' | b']' | b'{' | b'}')
}

struct Runs<'a> {
    text: &'a [u8],
    /// Brackets some run has opened (a run from them would only repeat it).
    opened: Vec<bool>,
    steps: u64,
    budget: u64,
    limit: usize,
}

enum Stop {
    TooDeep(usize),
    TooComplex,
}

impl Runs<'_> {
    fn step(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > self.budget {
            return Err(Stop::TooComplex);
        }
        Ok(())
    }

    fn at_line_start(&self, i: usize) -> bool {
        i == 0 || self.text[i - 1] == b'\n'
    }

    /// `---` or `...` at the start of a line: libyaml ends a document there (an error inside a
    /// flow collection), so a run stops.
    fn document_marker(&self, i: usize) -> bool {
        self.at_line_start(i)
            && (self.text[i..].starts_with(b"---") || self.text[i..].starts_with(b"..."))
            && is_blankz(self.text.get(i + 3))
    }

    /// Runs the flow tokeniser from the bracket at `start`; returns the deepest level.
    fn run(&mut self, start: usize) -> Result<usize, Stop> {
        let t = self.text;
        let mut level = 1usize;
        let mut deepest = 1usize;
        self.opened[start] = true;
        let mut i = start + 1;
        while i < t.len() && level > 0 {
            self.step()?;
            let c = t[i];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                _ if self.document_marker(i) => return Ok(deepest),
                // A comment, wherever a token may start (libyaml does not ask for a blank
                // before it there).
                b'#' => i = self.skip_line(i)?,
                b'[' | b'{' => {
                    self.opened[i] = true;
                    level += 1;
                    deepest = deepest.max(level);
                    if level > self.limit {
                        return Err(Stop::TooDeep(i));
                    }
                    i += 1;
                }
                b']' | b'}' => {
                    level -= 1;
                    i += 1;
                }
                // Indicators: entry, key, value (in flow context `?` and `:` always are).
                b',' | b'?' | b':' => i += 1,
                b'\'' => i = self.single_quoted(i + 1)?,
                b'"' => i = self.double_quoted(i + 1)?,
                b'&' | b'*' => {
                    i += 1;
                    while i < t.len() && (t[i].is_ascii_alphanumeric() || matches!(t[i], b'-' | b'_')) {
                        self.step()?;
                        i += 1;
                    }
                }
                b'!' => i = self.tag(i + 1)?,
                // Anything else starts a plain scalar (or is an error for libyaml, after which
                // nothing it would do matters).
                _ => i = self.plain(i)?,
            }
        }
        Ok(deepest)
    }

    fn skip_line(&mut self, mut i: usize) -> Result<usize, Stop> {
        while i < self.text.len() && self.text[i] != b'\n' {
            self.step()?;
            i += 1;
        }
        Ok(i)
    }

    /// After the opening `'`: to after the closing one (`''` is a quote inside).
    fn single_quoted(&mut self, mut i: usize) -> Result<usize, Stop> {
        let t = self.text;
        while i < t.len() {
            self.step()?;
            if self.document_marker(i) {
                return Ok(t.len());
            }
            if t[i] == b'\'' {
                if t.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return Ok(i + 1);
            }
            i += 1;
        }
        Ok(i)
    }

    /// After the opening `"`: to after the closing one (`\` escapes the next byte).
    fn double_quoted(&mut self, mut i: usize) -> Result<usize, Stop> {
        let t = self.text;
        while i < t.len() {
            self.step()?;
            if self.document_marker(i) {
                return Ok(t.len());
            }
            match t[i] {
                b'\\' => i += 2,
                b'"' => return Ok(i + 1),
                _ => i += 1,
            }
        }
        Ok(i)
    }

    /// After `!`: a verbatim tag `!<…>` to its `>`, a shorthand tag to the next blank or `,`
    /// (libyaml takes no flow indicator into a shorthand tag and wants a blank or `,` after it;
    /// taking more here only hides brackets libyaml would have failed on).
    fn tag(&mut self, mut i: usize) -> Result<usize, Stop> {
        let t = self.text;
        if t.get(i) == Some(&b'<') {
            while i < t.len() && !matches!(t[i], b'>' | b' ' | b'\t' | b'\r' | b'\n') {
                self.step()?;
                i += 1;
            }
            return Ok((i + 1).min(t.len()));
        }
        while i < t.len() && !is_blankz(t.get(i)) && t[i] != b',' {
            self.step()?;
            i += 1;
        }
        Ok(i)
    }

    /// A plain scalar in flow context, from its first byte to where it ends: a flow indicator,
    /// `:` before a blank, a document marker, or `#` starting a word (a comment).
    fn plain(&mut self, mut i: usize) -> Result<usize, Stop> {
        let t = self.text;
        let mut first = true;
        loop {
            // A word.
            if !first && (i >= t.len() || self.document_marker(i) || t[i] == b'#') {
                return Ok(i);
            }
            first = false;
            while i < t.len() && !is_blankz(t.get(i)) {
                self.step()?;
                let c = t[i];
                if is_flow_indicator(c) || (c == b':' && is_blankz(t.get(i + 1))) {
                    return Ok(i);
                }
                i += 1;
            }
            // The blanks and line breaks between words.
            if i >= t.len() {
                return Ok(i);
            }
            while i < t.len() && matches!(t[i], b' ' | b'\t' | b'\r' | b'\n') {
                self.step()?;
                i += 1;
            }
        }
    }
}

/// The deepest flow nesting libyaml could reach in `text`, or where it would pass `limit`.
pub(crate) fn yaml_flow_depth(text: &[u8], limit: usize) -> Flow {
    let mut runs = Runs {
        text,
        opened: vec![false; text.len()],
        steps: 0,
        budget: budget(text.len()),
        limit,
    };
    let mut deepest = 0;
    for (start, byte) in text.iter().enumerate() {
        if !matches!(byte, b'[' | b'{') || runs.opened[start] {
            continue;
        }
        match runs.run(start) {
            Ok(d) => deepest = deepest.max(d),
            Err(Stop::TooDeep(offset)) => {
                return Flow::TooDeep {
                    offset,
                    steps: runs.steps,
                };
            }
            Err(Stop::TooComplex) => return Flow::TooComplex { steps: runs.steps },
        }
    }
    Flow::Within {
        depth: deepest,
        steps: runs.steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(s: &str) -> usize {
        match yaml_flow_depth(s.as_bytes(), 64) {
            Flow::Within { depth, .. } => depth,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ordinary_documents() {
        assert_eq!(depth("a: b\nc: [d, e]\n"), 1);
        assert_eq!(
            depth("metadata: {name: x, labels: {a: b}}\nspec: {peers: [{ip: 1}]}\n"),
            3
        );
        // Brackets in block-context quotes run on their own: an over-estimate, never an under.
        assert_eq!(depth("a: 'x{[{[' \nb: \"{{\\\"{\"\n"), 4);
        assert_eq!(depth("a: '{\"a\": {\"b\": [1]}}'\n"), 3);
        assert_eq!(depth("a: |\n  text { with [ brackets ] }\n"), 2);
        assert_eq!(depth("[a: http://x/y, b#c, 'd''{']"), 1);
        assert_eq!(depth("{a: !tag{{ x, b: &a1 y, c: *a1}"), 2);
        assert_eq!(depth("no brackets at all\n"), 0);
    }

    #[test]
    fn deep_nesting_stops_at_the_limit_with_little_work() {
        let deep = format!("spec: {}{}\n", "{a: ".repeat(100_000), "}".repeat(100_000));
        match yaml_flow_depth(deep.as_bytes(), 64) {
            Flow::TooDeep { offset, steps } => {
                assert_eq!(offset, 6 + 64 * 4, "stopped at the 65th bracket");
                assert!(steps < 1_000, "{steps} steps");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Text that a guess could take for a quote before the real nesting: the run from the
    /// bracket in the block scalar takes `'d` for a quote, the real opening gets its own run.
    #[test]
    fn a_wrong_guess_about_quotes_hides_nothing() {
        let nested = format!("{}{}", "{k: ".repeat(70), "}".repeat(70));
        let text = format!("a: b\n  [c, 'd\nx: {{a: \"]\", b: {nested}}}\n");
        assert!(matches!(
            yaml_flow_depth(text.as_bytes(), 64),
            Flow::TooDeep { .. }
        ));
    }

    #[test]
    fn quoted_closers_do_not_lower_the_count() {
        let mut text = String::from("x: ");
        for _ in 0..70 {
            text.push_str("{a: \"]]]\", b: ");
        }
        text.push_str(&"}".repeat(70));
        assert!(matches!(
            yaml_flow_depth(text.as_bytes(), 64),
            Flow::TooDeep { .. }
        ));
    }

    #[test]
    fn pathological_bracket_soup_is_bounded() {
        let soup = "{'".repeat(200_000);
        match yaml_flow_depth(soup.as_bytes(), 64) {
            Flow::TooDeep { steps, .. } | Flow::TooComplex { steps } => {
                assert!(steps <= budget(soup.len()) + 1)
            }
            Flow::Within { steps, .. } => assert!(steps <= budget(soup.len())),
        }
    }
}
