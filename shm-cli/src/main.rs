//! `shm`: shared memory from the shell, over POSIX (`shm_open`) or System V (`shmget`).

mod backend;
mod bench;
mod channel;
mod compare;
mod docs;
mod lockstep;
mod manage;
mod taller;
mod units;

use std::process::ExitCode;

use clap::{FromArgMatches, Parser, Subcommand};

/// Shared memory from the shell: play the taller game, manage segments, compare POSIX and
/// System V live, and measure them.
#[derive(Debug, Parser)]
#[command(name = "shm", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "\
Examples:
  shm taller demo                      play the taller game: server and client, two processes
  shm --backend sysv taller demo       the same over System V
  shm create /scratch --size 1MiB      make a segment that stays
  shm list                             every segment on the machine, POSIX and System V
  shm compare                          how the two kernels differ, observed live";

/// Options every subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Backend to use (default: posix when compiled in). `list` shows both unless one is named.
    #[arg(long, short = 'b', global = true, env = "SHM_BACKEND", value_enum)]
    pub backend: Option<backend::Kind>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The taller game of the original C++ program: server, client, or both at once (demo).
    Taller(taller::TallerArgs),
    /// Create a segment that stays after the command exits.
    Create(manage::CreateArgs),
    /// Show what the kernel says about a segment.
    Info(manage::InfoArgs),
    /// List every segment on the machine, POSIX and System V.
    #[command(visible_alias = "ls")]
    List(manage::ListArgs),
    /// Remove segments.
    Rm(manage::RmArgs),
    /// Write a segment's bytes to stdout.
    Read(manage::ReadArgs),
    /// Write bytes into a segment.
    Write(manage::WriteArgs),
    /// Run, live, each behaviour where POSIX and System V differ, and show both side by side.
    Compare(compare::CompareArgs),
    /// Measure round trips, create/map/unlink cycles and copies against their floors.
    Bench(bench::BenchArgs),
    /// Send a byte stream (stdin or a file) through a channel to `shm recv`.
    Send(channel::SendArgs),
    /// Receive the byte stream of `shm send` on stdout.
    Recv(channel::RecvArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(docs::ManArgs),
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match &cli.command {
        Command::Taller(a) => taller::run(g, a),
        Command::Create(a) => manage::create(g, a),
        Command::Info(a) => manage::info(g, a),
        Command::List(a) => manage::list(g, a),
        Command::Rm(a) => manage::rm(g, a),
        Command::Read(a) => manage::read(g, a),
        Command::Write(a) => manage::write(g, a),
        Command::Compare(a) => compare::run(g, a),
        Command::Bench(a) => bench::run(g, a),
        Command::Send(a) => channel::send(g, a),
        Command::Recv(a) => channel::recv(g, a),
        Command::Completions(a) => docs::completions(a),
        Command::Man(a) => docs::man(a),
    }
}

/// One line: the error and its causes, each cause once (a cause whose text the line already
/// holds is not repeated). The chain stops at an error of the shm crates: its message already
/// says what the OS error meant (a planted symlink, not "File exists"; a limit, not "Invalid
/// argument").
fn one_line(err: &anyhow::Error) -> String {
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

/// A command-line error of clap's in one line: its message, its indented details (missing
/// arguments, possible values, tips) joined in, and where to find help, without the usage
/// block: `error: unexpected argument '--frob' found; see 'shm create --help'`.
fn clap_one_line(err: &clap::Error) -> String {
    let text = err.render().to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // `Usage: shm create [OPTIONS] ...`: the command path names the help to read.
    let path = lines
        .iter()
        .find_map(|l| l.strip_prefix("Usage:"))
        .map(|usage| {
            let words = usage.split_whitespace();
            let path: Vec<&str> = words
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase()))
                .collect();
            path.join(" ")
        })
        .unwrap_or_else(|| "shm".to_owned());
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap would print the whole help: say what is missing and where the help is.
        return format!("error: '{path}' needs a subcommand; see '{path} --help'");
    }
    let mut line = String::new();
    for l in lines {
        if l.starts_with("Usage:") || l.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(l);
    }
    format!("{line}; see '{path} --help'")
}

fn main() -> ExitCode {
    // The derived definition plus each subcommand's examples (see `docs::command`).
    let parsed = docs::command()
        .try_get_matches()
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
        Ok(cli) => cli,
        // --help and --version print to stdout and exit 0: clap's own way.
        Err(err) if !err.use_stderr() => err.exit(),
        // Usage errors: one line, as every other error, with clap's exit code (2).
        Err(err) => {
            eprintln!("{}", clap_one_line(&err));
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shm: error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}
