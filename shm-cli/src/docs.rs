//! What `shm` says about itself: each subcommand's examples, shell completions
//! (`shm completions`) and the manual page (`shm man`), all from the one clap definition.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Command;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, roman};

/// Arguments of `shm completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Arguments of `shm man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command (shm.1, shm-taller.1, shm-taller-demo.1, ...) into this
    /// directory instead of printing shm(1).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Examples for the subcommands whose arguments carry none of their own (each text starts with
/// a newline, which is dropped). Each one was run as written.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "info",
        "
  shm info /scratch                       size, mode, owner, times
  shm info /scratch --json                the same as one JSON object
  shm --backend sysv info 0x0000abcd      a System V segment by key, as `ipcs -m` shows it",
    ),
    (
        "list",
        "
  shm list                                POSIX and System V in one table
  shm ls --backend sysv                   System V only (what `ipcs -m` shows)
  shm list --json                         a JSON array, one object per segment",
    ),
    (
        "read",
        "
  shm read /scratch --len 5               the first 5 bytes, raw
  shm read /scratch --offset 4KiB --len 64 --hex
                                          a hex dump of 64 bytes at 4096
  shm read /scratch > scratch.bin         the whole segment into a file",
    ),
    (
        "write",
        "
  shm write /scratch hello                5 bytes at offset 0
  shm write /scratch --offset 4KiB world  5 bytes at 4096
  shm write /scratch < scratch.bin        from stdin (it must fit)",
    ),
    (
        "compare",
        "
  shm compare                             every behaviour, POSIX beside System V
  shm compare --json                      the same as a JSON array
  shm compare --markdown                  one wide Markdown table
  shm --backend sysv compare              System V only",
    ),
    (
        "bench",
        "
  shm bench --quick                       a first look in about half a minute
  shm bench                               the full run
  shm bench --quick --json                the numbers as one JSON object
  shm bench --check                       exit status 1 when a target is missed",
    ),
    (
        "bridge",
        "
  shm send /logs app.log                           on host A: the file into the channel /logs
  shm bridge out /logs --listen tcp/0.0.0.0:7447   on A: /logs out to whoever connects
  shm bridge in /logs --connect tcp/A:7447         on host B: into the channel /logs there
  shm recv /logs > app.log                         on B: the file, byte for byte",
    ),
    (
        "completions",
        "
  shm completions bash > ~/.local/share/bash-completion/completions/shm
  shm completions zsh > ~/.zfunc/_shm     with `fpath+=~/.zfunc` before `compinit` in ~/.zshrc
  shm completions fish > ~/.config/fish/completions/shm.fish",
    ),
    (
        "man",
        "
  shm man | man -l -                      read it now
  shm man --dir /usr/local/share/man/man1
                                          a page per command (then `man shm-taller`)",
    ),
];

/// `cmd` (the derived definition of the command line) with each subcommand's examples after
/// whatever help text its arguments already have: the command line as `shm` parses it.
pub fn with_examples(cmd: Command) -> Command {
    cmd.mut_subcommands(|sub| {
        let Some(&(_, examples)) = EXAMPLES.iter().find(|(name, _)| *name == sub.get_name()) else {
            return sub;
        };
        let examples = examples.trim_start_matches('\n');
        let after = match sub.get_after_help().map(ToString::to_string) {
            Some(own) if own.contains("Example") => own,
            Some(own) => format!("{own}\n\nExamples:\n{examples}"),
            None => format!("Examples:\n{examples}"),
        };
        sub.after_help(after)
    })
}

/// `shm completions SHELL`: the completion script of `cmd` (the whole command line) on stdout.
pub fn completions(a: &CompletionsArgs, mut cmd: Command) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "shm", &mut script);
    // Live segment names, asked of `shm list --quiet` at completion time, where a name goes.
    match a.shell {
        clap_complete::Shell::Bash => script.extend_from_slice(BASH_NAMES.as_bytes()),
        clap_complete::Shell::Fish => script.extend_from_slice(FISH_NAMES.as_bytes()),
        _ => {}
    }
    to_stdout(&script)
}

/// Bash: segment names for `info`, `read`, `write`, `rm`, `send`, `recv` (a channel waiting
/// for its peer), `sub` and `taller --name`, from the backend
/// named on the line (posix when none), else clap's completion.
const BASH_NAMES: &str = r#"
# Live segment names where a name goes (shm list --quiet), else the completion above.
_shm_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local i sub="" backend=posix
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            --backend|-b) backend="${COMP_WORDS[i+1]}" ;;
            --backend=*) backend="${COMP_WORDS[i]#--backend=}" ;;
            info|read|write|rm|send|recv|sub|taller) [[ -z $sub ]] && sub="${COMP_WORDS[i]}" ;;
        esac
    done
    # The word right after the subcommand (rm also after a name), or after taller's --name.
    if [[ $cur != -* && ( ( -n $sub && $sub != taller && ( $prev == "$sub" || ( $sub == rm && $prev != -* ) ) ) || $prev == --name ) ]]; then
        # Names are untrusted (anyone may create one): each line is taken as a literal, never
        # expanded, and offered quoted; a name shown escaped (a control character or a
        # backslash in it) cannot be given back as it is, and is skipped.
        local line quoted
        COMPREPLY=()
        while IFS= read -r line; do
            [[ -z $line || $line == *\\* || $line == *[[:cntrl:]]* ]] && continue
            printf -v quoted '%q' "$line"
            [[ $line == "$cur"* || $quoted == "$cur"* ]] && COMPREPLY+=("$quoted")
        done < <("${COMP_WORDS[0]}" --backend "$backend" list --quiet 2>/dev/null)
        return 0
    fi
    _shm "$@"
}
complete -F _shm_names -o bashdefault -o default shm
"#;

/// Fish: the same names for the same places (fish never expands what a command substitution
/// printed, and quotes what it inserts).
const FISH_NAMES: &str = r#"
# Live segment names where a name goes (shm list --quiet); a name shown escaped (a control
# character or a backslash in it) cannot be given back as it is, and is skipped.
function __shm_names
    shm list --quiet 2>/dev/null | string match -rv '[\\\\[:cntrl:]]'
end
complete -c shm -n '__fish_seen_subcommand_from info read write rm send recv sub' -f -a '(__shm_names)'
complete -c shm -n '__fish_seen_subcommand_from taller' -l name -r -f -a '(__shm_names)'
"#;

/// `shm man`: shm(1) on stdout, or every page into `--dir`, of `cmd` (the whole command line).
pub fn man(a: &ManArgs, cmd: Command) -> Result<()> {
    // As clap_mangen does: no `help` subcommand in the pages, and built, so that subcommands
    // know their full names (`shm-taller`).
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    match &a.dir {
        None => to_stdout(&page(&cmd)?),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            write_pages(&cmd, dir)
        }
    }
}

/// Writes the page of `cmd` and of each of its visible subcommands into `dir`.
fn write_pages(cmd: &Command, dir: &Path) -> Result<()> {
    let path = dir.join(Man::new(cmd.clone()).get_filename());
    replace_file(&path, &page(cmd)?).with_context(|| format!("cannot write {}", path.display()))?;
    to_stdout(format!("wrote {}\n", path.display()).as_bytes())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    Ok(())
}

/// Writes `bytes` as the file `path` without ever writing through what stands there: into a new
/// file of its own (created exclusively, so a planted link cannot be followed), renamed over
/// `path`. A symlink or hard link planted at `path` is replaced, and its target left untouched.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    for n in 0..100u32 {
        let tmp = dir.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return written;
    }
    Err(std::io::Error::other("no free temporary name"))
}

/// The roff page of `cmd`. The after-help text becomes NOTES and EXAMPLES sections, the
/// examples kept line by line (clap_mangen would fill them into one paragraph), before VERSION.
fn page(cmd: &Command) -> Result<Vec<u8>> {
    let after = cmd.get_after_help().map(ToString::to_string);
    let mut buf = Vec::new();
    Man::new(cmd.clone().after_help(None::<&str>))
        .render(&mut buf)
        .context("cannot render the manual page")?;
    let Some(after) = after else {
        return Ok(buf);
    };
    let (notes, examples) = match after.split_once("Examples:\n") {
        Some((notes, examples)) => (notes.trim(), examples),
        None => (after.trim(), ""),
    };
    let mut extra = Roff::new();
    if !notes.is_empty() {
        extra.control("SH", ["NOTES"]).text([roman(notes)]);
    }
    if !examples.is_empty() {
        extra.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in examples.lines() {
            extra.text([roman(line.trim_end())]);
        }
        extra.control("fi", []);
    }
    let text = String::from_utf8(buf).context("the manual page is not UTF-8")?;
    let at = text.find(".SH VERSION").unwrap_or(text.len());
    let mut out = text[..at].to_owned();
    out.push_str(&extra.to_roff());
    out.push_str(&text[at..]);
    Ok(out.into_bytes())
}

/// Writes `bytes` to stdout; a reader that went away (`shm man | head`) is not an error.
fn to_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}
