//! Go's `text/tabwriter` (elastic tabstops), as `calicoctl get` uses it: cells end at `\t`, every
//! column of a block of consecutive lines is padded to `max(minwidth, widest cell + padding)`.
//! calicoctl puts `\t` after every cell, so every column is padded, lines end in spaces, and the
//! text after the last tab of a line (here always empty) is not part of any column.
//! Cell widths count characters (runes), as Go's does.

/// calicoctl's settings (`tabwriter.NewWriter(os.Stdout, 5, 1, 3, ' ', 0)`).
pub const CALICOCTL: Settings = Settings {
    minwidth: 5,
    padding: 3,
};

/// The writer settings that matter with padchar `' '` and no flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub minwidth: usize,
    pub padding: usize,
}

/// Aligns `text` (lines of `\t`-terminated cells) as Go's tabwriter does.
pub fn format(text: &str, s: Settings) -> String {
    let mut lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    // A trailing newline leaves an empty last "line" that Go never prints as a line.
    let trailing_newline = text.ends_with('\n');
    if trailing_newline {
        lines.pop();
    }
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, s, &mut out);
    if !trailing_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// Go's `Writer.format`: finds the blocks of lines sharing column `widths.len()`, sizes the
/// column per block and recurses into the next column.
fn format_block(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    s: Settings,
    out: &mut String,
) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        // Only lines with a tab-terminated cell in this column take part (the last cell of a line
        // is not terminated).
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, start, this, widths, out);
        start = this;
        let mut w = s.minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(lines[this][column]) + s.padding);
            this += 1;
        }
        widths.push(w);
        format_block(lines, start, this, widths, s, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, start, line1, widths, out);
}

fn write_lines(lines: &[Vec<&str>], line0: usize, line1: usize, widths: &[usize], out: &mut String) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j) {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicoctl_wide_pool_table() {
        let text = "NAME\tCIDR\tNAT\tIPIPMODE\tVXLANMODE\tDISABLED\tSELECTOR\t\n\
                    default-pool\t10.233.64.0/18\ttrue\tAlways\tNever\tfalse\tall()\t\n";
        assert_eq!(
            format(text, CALICOCTL),
            "NAME           CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   SELECTOR   \n\
             default-pool   10.233.64.0/18   true   Always     Never       false      all()      \n"
        );
    }

    #[test]
    fn minwidth_applies_to_short_columns() {
        assert_eq!(format("A\tB\t\nx\ty\t\n", CALICOCTL), "A    B    \nx    y    \n");
    }

    #[test]
    fn blocks_are_per_column_run() {
        // Go's example: a line with fewer cells ends the block of the later columns.
        let text = "a\tbbbbbbb\tc\t\nxx\n1\t2\t3\t\n";
        assert_eq!(
            format(
                text,
                Settings {
                    minwidth: 0,
                    padding: 1
                }
            ),
            "a bbbbbbb c \nxx\n1 2 3 \n"
        );
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert_eq!(
            format(
                "é\tx\t\n",
                Settings {
                    minwidth: 0,
                    padding: 1
                }
            ),
            "é x \n"
        );
    }
}
