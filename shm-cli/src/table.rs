//! Tables as `shm list` and `shm compare` print them: columns as wide as their widest cell,
//! plain (as `ps` and `ipcs`) or Markdown.

/// How [`render_table`] separates columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Columns apart by two spaces, as `ps` and `ipcs` print.
    Plain,
    /// A Markdown table: `| a | b |`, with a rule under the headers.
    Markdown,
}

/// Lays out rows under headers, each column as wide as its widest cell.
pub fn render_table(headers: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        match style {
            Style::Plain => padded.join("  ").trim_end().to_owned(),
            Style::Markdown => format!("| {} |", padded.join(" | ")),
        }
    };
    let mut out = line(&mut headers.iter().copied());
    out.push('\n');
    if style == Style::Markdown {
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&line(&mut rule.iter().map(String::as_str)));
        out.push('\n');
    }
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns() {
        let t = render_table(
            &["A", "BB"],
            &[
                vec!["xyz".into(), "1".into()],
                vec!["q".into(), "22".into()],
            ],
            Style::Plain,
        );
        assert_eq!(t, "A    BB\nxyz  1\nq    22\n");
        let t = render_table(
            &["A", "BB"],
            &[vec!["xyz".into(), "1".into()]],
            Style::Markdown,
        );
        assert_eq!(t, "| A   | BB |\n| --- | -- |\n| xyz | 1  |\n");
    }
}
