//! `shm compare`: POSIX and System V side by side, observed live. The probes are the
//! `shm-compare` crate's; this module runs them row by row under the shutdown lock and prints
//! the table (a block per behaviour, `--markdown` or `--json`).

use anyhow::{Result, bail};
use serde_json::json;

use crate::backend::Global;
use crate::table::{Style, render_table};
use shm_compare::{BEHAVIOURS, Lab, probe_posix, probe_sysv};

/// Arguments of `shm compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Print a JSON array of {"behaviour", "posix", "sysv"} objects.
    #[arg(long, conflicts_with = "markdown")]
    json: bool,
    /// Print one wide Markdown table (a row per behaviour) instead of a block per behaviour
    /// that fits the terminal.
    #[arg(long)]
    markdown: bool,
}

/// How a backend's cell is read from a row.
type Column = fn(&Row) -> Option<&String>;

/// One row of the table.
struct Row {
    behaviour: &'static str,
    posix: Option<String>,
    sysv: Option<String>,
}

/// A probe's result as a cell: the observation, or the error that stopped it.
fn cell(result: Result<String>) -> String {
    match result {
        Ok(s) => s,
        Err(e) => format!("probe failed: {}", crate::out::one_line(&e)),
    }
}

/// Runs `shm compare`. With `--backend`, only that backend is probed and shown.
pub fn run(g: &Global, a: &CompareArgs) -> Result<()> {
    let (posix_on, sysv_on) = match g.backend.map(|k| k.as_str()) {
        Some("posix") => (true, false),
        Some(_) => (false, true),
        None => (true, true),
    };
    let mut lab = Lab::new();
    let mut rows = Vec::new();
    for (probe, behaviour) in BEHAVIOURS {
        // Each probe and its cleanup under the lock: a signal waits until the row's segments
        // (also those a probe's child made) are gone, then ends the command.
        let armed = crate::shutdown::lock();
        if crate::shutdown::pending() {
            bail!("interrupted");
        }
        let posix = posix_on.then(|| cell(probe_posix(probe, &mut lab)));
        lab.clean();
        let sysv = sysv_on.then(|| cell(probe_sysv(probe, &mut lab)));
        lab.clean();
        drop(armed);
        rows.push(Row {
            behaviour,
            posix,
            sysv,
        });
    }
    drop(lab);
    let columns: Vec<(&str, Column)> = [
        ("posix", (|r: &Row| r.posix.as_ref()) as Column),
        ("sysv", |r: &Row| r.sysv.as_ref()),
    ]
    .into_iter()
    .filter(|(name, _)| if *name == "posix" { posix_on } else { sysv_on })
    .collect();
    if a.json {
        let array: Vec<_> = rows
            .iter()
            .map(|r| {
                let mut o = serde_json::Map::new();
                o.insert("behaviour".into(), json!(r.behaviour));
                for (name, get) in &columns {
                    o.insert((*name).into(), json!(get(r)));
                }
                serde_json::Value::Object(o)
            })
            .collect();
        crate::out::line(format_args!("{}", serde_json::to_string_pretty(&array)?))?;
    } else if a.markdown {
        let mut headers = vec!["behaviour"];
        headers.extend(columns.iter().map(|(name, _)| *name));
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let mut row = vec![r.behaviour.to_owned()];
                row.extend(
                    columns
                        .iter()
                        .map(|(_, get)| get(r).cloned().unwrap_or_default()),
                );
                row
            })
            .collect();
        crate::out::text(&render_table(&headers, &cells, Style::Markdown))?;
    } else {
        let width = terminal_width();
        let mut text = String::new();
        for r in &rows {
            text.push_str(r.behaviour);
            text.push('\n');
            for (name, get) in &columns {
                let value = get(r).map(String::as_str).unwrap_or_default();
                for (i, line) in wrap(value, width.saturating_sub(9).max(20))
                    .iter()
                    .enumerate()
                {
                    let label = if i == 0 { *name } else { "" };
                    text.push_str(&format!("  {label:<6} {line}\n"));
                }
            }
            text.push('\n');
        }
        crate::out::text(&text)?;
    }
    Ok(())
}

/// The terminal's width: `COLUMNS` when set, else the width of the terminal on stdout, else 80.
fn terminal_width() -> usize {
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
    {
        return n;
    }
    // SAFETY: an all-zero winsize is a valid value of a plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to a valid out-pointer; a non-terminal fails.
    if unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0
    {
        return usize::from(ws.ws_col);
    }
    80
}

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than the
/// width is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let cut: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(cut);
        }
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}
