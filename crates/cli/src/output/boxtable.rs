//! ASCII box tables exactly as `olekukonko/tablewriter` v0.0.5 draws them with default settings
//! (what calicoctl up to v3.32 uses for `node status`, `ipam show` and Felix's health body):
//!
//! - `+`/`-`/`|` borders, one space of padding, rules above and below the header and at the
//!   bottom, none between rows;
//! - header text upper-cased (`_` → space, `.` → space unless between digits) and centred with
//!   `floor(gap/2)` spaces on the left;
//! - cells left-aligned, or right-aligned when the trimmed cell is a decimal number;
//! - auto-wrap at 30 display columns with tablewriter's minimum-raggedness word wrap (a word
//!   longer than 30 widens the column); continuation lines leave the other cells empty.

/// tablewriter's `MAX_ROW_WIDTH`.
pub const MAX_WIDTH: usize = 30;
const PENALTY: i64 = 100_000;

/// Display width of a string (East Asian wide characters count 2, combining marks 0), the
/// subset of go-runewidth that matters for table cells.
pub fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let u = c as u32;
            if (0x300..=0x36f).contains(&u) || u == 0x200b {
                0
            } else if (0x1100..=0x115f).contains(&u)
                || (0x2e80..=0xa4cf).contains(&u)
                || (0xac00..=0xd7a3).contains(&u)
                || (0xf900..=0xfaff).contains(&u)
                || (0xfe30..=0xfe4f).contains(&u)
                || (0xff00..=0xff60).contains(&u)
                || (0xffe0..=0xffe6).contains(&u)
                || (0x1f300..=0x1faff).contains(&u)
                || (0x20000..=0x3fffd).contains(&u)
            {
                2
            } else {
                1
            }
        })
        .sum()
}

/// tablewriter's `Title`: header formatting.
pub fn title(name: &str) -> String {
    let rs: Vec<char> = name.chars().collect();
    let num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    let mapped: String = rs
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            '_' => ' ',
            '.' if (i != 0 && !num_or_space(rs[i - 1]))
                || (i + 1 != rs.len() && !num_or_space(rs[i + 1])) =>
            {
                ' '
            }
            c => c,
        })
        .collect();
    let trimmed = mapped.trim();
    if trimmed.is_empty() && !name.is_empty() {
        return " ".into();
    }
    trimmed.to_uppercase()
}

/// tablewriter's `WrapWords`: minimum-raggedness line breaking of `words` into lines of at most
/// `lim` columns (cost = sum of squared slack, +penalty for an over-long line).
fn wrap_words(words: &[&str], lim: usize) -> Vec<Vec<String>> {
    let n = words.len();
    let lim = lim as i64;
    let w: Vec<i64> = words.iter().map(|s| display_width(s) as i64).collect();
    // length(i, j) = width of words i..=j joined by single spaces.
    let length = |i: usize, j: usize| -> i64 { w[i..=j].iter().sum::<i64>() + (j - i) as i64 };
    let mut cost = vec![i64::from(i32::MAX); n];
    let mut brk = vec![0usize; n];
    for i in (0..n).rev() {
        if length(i, n - 1) <= lim {
            cost[i] = 0;
            brk[i] = n;
        } else {
            for j in i + 1..n {
                let d = lim - length(i, j - 1);
                let mut c = d * d + cost[j];
                if length(i, j - 1) > lim {
                    c += PENALTY;
                }
                if c < cost[i] {
                    cost[i] = c;
                    brk[i] = j;
                }
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        lines.push(words[i..brk[i]].iter().map(|s| s.to_string()).collect());
        i = brk[i];
    }
    lines
}

/// tablewriter's `WrapString`: wraps at `lim`, widened to the longest word.
fn wrap_string(s: &str, lim: usize) -> Vec<String> {
    let joined = s.replace('\n', " ");
    let words: Vec<&str> = joined.split(' ').collect();
    let lim = words.iter().map(|w| display_width(w)).fold(lim, usize::max);
    wrap_words(&words, lim).into_iter().map(|l| l.join(" ")).collect()
}

/// tablewriter's `parseDimension` with auto-wrap and reflow on: the lines of one cell and the
/// width it asks for (at least `min(widest line, 30)`, even when wrapping made it narrower).
fn cell_lines(text: &str) -> (Vec<String>, usize) {
    let max = text
        .split('\n')
        .map(display_width)
        .max()
        .unwrap_or(0)
        .min(MAX_WIDTH);
    let para = text.split('\n').collect::<Vec<_>>().join(" ");
    let lines = wrap_string(&para, max);
    let width = lines.iter().map(|l| display_width(l)).fold(max, usize::max);
    (lines, width)
}

fn is_decimal(s: &str) -> bool {
    // ^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    if int.is_empty() {
        return false;
    }
    if int.bytes().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let groups: Vec<&str> = int.split(',').collect();
    (1..=3).contains(&groups[0].len())
        && groups[0].bytes().all(|c| c.is_ascii_digit())
        && groups[1..]
            .iter()
            .all(|g| g.len() == 3 && g.bytes().all(|c| c.is_ascii_digit()))
}

fn pad_right(s: &str, w: usize) -> String {
    format!("{s}{}", " ".repeat(w.saturating_sub(display_width(s))))
}

fn pad_left(s: &str, w: usize) -> String {
    format!("{}{s}", " ".repeat(w.saturating_sub(display_width(s))))
}

fn pad_center(s: &str, w: usize) -> String {
    let gap = w.saturating_sub(display_width(s));
    let left = gap / 2;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(gap - left))
}

/// Renders a table (headers as given: they are formatted by [`title`]).
pub fn render<S: AsRef<str>>(headers: &[S], rows: &[Vec<String>]) -> String {
    let ncols = headers.len();
    let mut widths = vec![0usize; ncols];
    let mut measure = |i: usize, text: &str| {
        let (lines, w) = cell_lines(text);
        if let Some(cw) = widths.get_mut(i) {
            *cw = (*cw).max(w);
        }
        lines
    };
    let header_lines: Vec<Vec<String>> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| measure(i, h.as_ref()))
        .collect();
    let row_lines: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|r| r.iter().enumerate().map(|(i, c)| measure(i, c)).collect())
        .collect();
    let rule: String = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = rule.clone();
    let header_height = header_lines.iter().map(Vec::len).max().unwrap_or(0);
    for x in 0..header_height {
        out.push('|');
        for (y, w) in widths.iter().enumerate() {
            let h = header_lines
                .get(y)
                .and_then(|l| l.get(x))
                .map(String::as_str)
                .unwrap_or("");
            out.push(' ');
            out.push_str(&pad_center(&title(h), *w));
            out.push_str(" |");
        }
        out.push('\n');
    }
    out.push_str(&rule);
    for row in &row_lines {
        let height = row.iter().map(Vec::len).max().unwrap_or(0);
        for x in 0..height {
            for (y, lines) in row.iter().enumerate() {
                let w = widths.get(y).copied().unwrap_or(0);
                // tablewriter fills the missing continuation lines with two spaces.
                let cell = lines.get(x).map(String::as_str).unwrap_or("  ");
                out.push_str("| ");
                if is_decimal(cell.trim()) {
                    out.push_str(&pad_left(cell, w));
                } else {
                    out.push_str(&pad_right(cell, w));
                }
                out.push(' ');
            }
            out.push_str("|\n");
        }
    }
    out.push_str(&rule);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn calicoctl_node_status_table() {
        let t = render(
            &["Peer address", "Peer type", "State", "Since", "Info"],
            &[
                row(&[
                    "172.20.42.81",
                    "node-to-node mesh",
                    "up",
                    "09:00:00",
                    "Established",
                ]),
                row(&[
                    "172.20.42.82",
                    "node-to-node mesh",
                    "up",
                    "09:00:01",
                    "Established",
                ]),
            ],
        );
        assert_eq!(
            t,
            "+--------------+-------------------+-------+----------+-------------+\n\
             | PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |\n\
             +--------------+-------------------+-------+----------+-------------+\n\
             | 172.20.42.81 | node-to-node mesh | up    | 09:00:00 | Established |\n\
             | 172.20.42.82 | node-to-node mesh | up    | 09:00:01 | Established |\n\
             +--------------+-------------------+-------+----------+-------------+\n"
        );
    }

    #[test]
    fn numbers_right_aligned_and_wrapping() {
        let t = render(
            &["Grouping", "CIDR", "IPs total", "IPs in use", "IPs free"],
            &[row(&[
                "IP Pool",
                "10.65.0.0/16",
                "65536",
                "5 (0%)",
                "65531 (100%)",
            ])],
        );
        assert_eq!(
            t,
            "+----------+--------------+-----------+------------+--------------+\n\
             | GROUPING |     CIDR     | IPS TOTAL | IPS IN USE |   IPS FREE   |\n\
             +----------+--------------+-----------+------------+--------------+\n\
             | IP Pool  | 10.65.0.0/16 |     65536 | 5 (0%)     | 65531 (100%) |\n\
             +----------+--------------+-----------+------------+--------------+\n"
        );
        // calicoctl#1883: INFO longer than 30 columns wraps onto a continuation line.
        let t = render(
            &["Peer address", "Peer type", "State", "Since", "Info"],
            &[row(&[
                "10.2.147.44",
                "node-to-node mesh",
                "start",
                "00:21:18",
                "Active Socket: Connection refused",
            ])],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[3],
            "| 10.2.147.44  | node-to-node mesh | start | 00:21:18 | Active Socket: Connection      |"
        );
        assert_eq!(
            lines[4],
            "|              |                   |       |          | refused                        |"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(title("ips_total"), "IPS TOTAL");
        assert_eq!(title("v1.2"), "V1.2");
        assert_eq!(title("a.b"), "A B");
        assert!(is_decimal("1,234.5") && is_decimal("-3") && !is_decimal("5 (0%)") && !is_decimal("1,23"));
        assert_eq!(pad_center("SINCE", 8), " SINCE  ");
    }
}
