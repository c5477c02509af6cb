//! Standard output that reports its errors instead of panicking: with stdout on a closed pipe
//! or a full disk (`shm list >/dev/full`), `println!` would panic; these return the error, and
//! the command says so in one line and exits non-zero.

use std::fmt;
use std::io::{self, Write};

use anyhow::{Context as _, Result};
use shm_core::SegmentRef;

/// Writes `args` and a newline to stdout, and flushes: an error is known at once.
pub fn line(args: fmt::Arguments<'_>) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// Writes `text` as it is to stdout, and flushes.
pub fn text(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}

/// Writes `shm: error: LINE` to stderr, `line` escaped (see [`escape`]): every error the command
/// reports goes through here, so a name, a path or a process name in it reaches the terminal as
/// text, never as control codes or extra lines. A closed stderr is ignored (not `eprintln!`,
/// which would panic).
pub fn error(line: &str) {
    let _ = writeln!(io::stderr(), "shm: error: {}", escape(line));
}

/// One line: the error and its causes, each cause once (a cause whose text the line already
/// holds is not repeated). The chain stops at an error of the shm crates: its message already
/// says what the OS error meant (a planted symlink, not "File exists"; a limit, not "Invalid
/// argument").
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        if cause.is::<shm_core::Error>() {
            break;
        }
    }
    line
}

/// `println!` that returns a write error: `outln!("removed {name}")?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// A segment as a person should see it on stdout: its [`SegmentRef`] text (the one way a
/// segment is written for people: a name as it is, a System V key as a key, `key 0x0bad1dea`,
/// never as a name, an id as `id 32769`), escaped ([`escape`]). Errors write the plain text:
/// [`error`] escapes the whole line.
pub fn segment(seg: &SegmentRef) -> String {
    escape(&seg.to_string())
}

/// What `shm rm` takes to remove `seg`: its name, `--key 0x0bad1dea` or `--id 32769`.
pub fn rm_target(seg: &SegmentRef) -> String {
    match seg {
        SegmentRef::Key(key) => format!("--key 0x{:08x}", *key as u32),
        SegmentRef::Id(id) => format!("--id {id}"),
        other => other.to_string(),
    }
}

/// A segment that is not there, as the user is told: `no segment /x`, `no System V segment with
/// key 0x0bad1dea`.
pub fn missing(seg: &SegmentRef) -> String {
    match seg {
        SegmentRef::Name(_) => format!("no segment {seg}"),
        other => format!("no System V segment with {other}"),
    }
}

/// Untrusted text (a segment name, a process name, an owner, an error line) as a person should
/// see it in a terminal: printable characters as they are, anything else (a newline, an escape,
/// a control character) as `\n`, `\e`, `\xNN` escapes, a character that reorders or hides
/// text without showing itself (a bidirectional override or isolate, a zero-width character, a
/// line or paragraph separator) as `\u{NNNN}`, and a backslash doubled, so that the text can
/// neither forge rows, send escape codes nor pass for another name, and reads back
/// unambiguously. The one function for every human output; JSON output keeps text exact.
pub fn escape(name: &str) -> String {
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\x1b' => s.push_str("\\e"),
            '\\' => s.push_str("\\\\"),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32)),
            c if invisible(c) => s.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => s.push(c),
        }
    }
    s
}

/// A character a terminal draws as nothing, or that reorders the text around it: the
/// bidirectional marks, embeddings, overrides and isolates, the zero-width space and joiners,
/// the byte order mark, and the line and paragraph separators.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape("/plain.name"), "/plain.name");
        assert_eq!(escape("/a\nb"), "/a\\nb");
        assert_eq!(escape("/\x1b[31mred"), "/\\e[31mred");
        assert_eq!(escape("/x\u{7f}\u{9b}"), "/x\\x7f\\x9b");
        assert_eq!(escape("/ünï"), "/ünï");
        // Text that shows as something else: a right-to-left override, a zero-width space.
        assert_eq!(
            escape("/a\u{202e}gnp.exe\u{200b}"),
            "/a\\u{202e}gnp.exe\\u{200b}"
        );
    }
}
