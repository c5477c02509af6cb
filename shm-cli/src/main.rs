//! `shm`: shared memory from the shell, over POSIX (`shm_open`) or System V (`shmget`).
//!
//! Start here: [`Cli`] and its [`Command`]s (one module per command family), dispatched in
//! [`run`]; the libraries below do the work.

mod backend;
mod bench;
mod bridge;
mod channel;
mod compare;
mod docs;
mod manage;
mod out;
mod report;
mod service;
mod shutdown;
mod table;
mod taller;
mod topic;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use backend::Global;
use out::one_line;

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
Without --backend: create, taller, send, recv, call and serve use posix (the first compiled in);
info, read, write and rm use whichever backend has the name, and refuse a name both have; list
and compare show both. A name that reads as a number (0x1234, 4660) is a System V key only with
--backend sysv.

Examples:
  shm taller demo                      play the taller game: server and client, two processes
  shm --backend sysv taller demo       the same over System V
  shm create /scratch --size 1MiB      make a segment that stays
  shm list                             every segment on the machine, POSIX and System V
  shm compare                          how the two kernels differ, observed live";

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
    /// Internal: a second process of `shm bench`, started by the bench itself.
    #[command(name = "bench-peer", hide = true)]
    BenchPeer(bench::PeerArgs),
    /// Send a byte stream (stdin or a file) through a channel to `shm recv`.
    Send(channel::SendArgs),
    /// Receive the byte stream of `shm send` on stdout.
    Recv(channel::RecvArgs),
    /// Call a service of `shm serve`: DATA (or stdin) in, the answer on stdout.
    Call(service::CallArgs),
    /// Serve many `shm call`s: each request is CMD's stdin, its stdout the answer.
    Serve(service::ServeArgs),
    /// Publish a byte stream (stdin or a file) to every `shm sub` of a topic.
    Pub(topic::PubArgs),
    /// Receive the byte stream of `shm pub` on stdout, from when this subscriber joined.
    Sub(topic::SubArgs),
    /// Carry a channel to another host over Zenoh: `out` here, `in` there.
    Bridge(bridge::BridgeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(docs::ManArgs),
}

/// The command line as `shm` parses it: the derived definition, with each subcommand's
/// examples (see [`docs::with_examples`]).
fn command() -> clap::Command {
    docs::with_examples(Cli::command())
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
        Command::BenchPeer(a) => bench::peer(g, a),
        Command::Send(a) => channel::send(g, a),
        Command::Recv(a) => channel::recv(g, a),
        Command::Call(a) => service::call(g, a),
        Command::Serve(a) => service::serve(g, a),
        Command::Pub(a) => topic::publish(g, a),
        Command::Sub(a) => topic::subscribe(g, a),
        Command::Bridge(a) => bridge::run(g, a),
        Command::Completions(a) => docs::completions(a, command()),
        Command::Man(a) => docs::man(a, command()),
    }
}

/// The subcommands named on the command line (`shm taller demo`), for errors whose text has no
/// usage line to tell it: the leading words of the arguments that are subcommands, global
/// flags skipped.
fn command_path() -> String {
    let mut cmd = command();
    let mut path = vec!["shm".to_owned()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--backend" || arg == "-b" {
            args.next();
            continue;
        }
        if arg.starts_with('-') {
            continue;
        }
        match cmd.find_subcommand(&arg) {
            Some(sub) => {
                path.push(sub.get_name().to_owned());
                cmd = sub.clone();
            }
            None => break,
        }
    }
    path.join(" ")
}

/// A command-line error of clap's in one line: its message, its indented details (missing
/// arguments, possible values, tips) joined in, and where to find help, without the usage
/// block: `unexpected argument '--frob' found; see 'shm create --help'`, which [`out::error`]
/// prints after `shm: error:` as every other error.
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
        .unwrap_or_else(command_path);
    if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // clap would print the whole help: say what is missing and where the help is.
        return format!("'{path}' needs a subcommand; see '{path} --help'");
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
    // One style for every failure (`shm: error: ...`, usage errors included): clap's prefix off.
    let line = line.strip_prefix("error: ").unwrap_or(&line);
    format!("{line}; see '{path} --help'")
}

fn main() -> ExitCode {
    // The derived definition plus each subcommand's examples (see `command`).
    let parsed = command()
        .try_get_matches()
        .and_then(|mut m| Cli::from_arg_matches_mut(&mut m));
    let cli = match parsed {
        Ok(cli) => cli,
        // --help and --version print to stdout and exit 0: clap's own way.
        Err(err) if !err.use_stderr() => err.exit(),
        // Usage errors: one line, as every other error, with clap's exit code (2).
        Err(err) => {
            out::error(&clap_one_line(&err));
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    // Every command undoes what it half made when a signal ends it: the bench, send, recv,
    // serve, pub, sub and bridge catch their signals themselves (they stop between two steps
    // and clean up as on an error); call dies of them as a process does (its seat is freed as
    // a dead client's); the others go through the signal thread.
    if !matches!(
        cli.command,
        Command::Bench(_)
            | Command::BenchPeer(_)
            | Command::Send(_)
            | Command::Recv(_)
            | Command::Call(_)
            | Command::Serve(_)
            | Command::Pub(_)
            | Command::Sub(_)
            | Command::Bridge(_)
    ) {
        if let Err(err) = shutdown::install() {
            out::error(&one_line(&err));
            return ExitCode::FAILURE;
        }
    }
    let result = run(cli);
    // A signal that came while the command worked ends the process now, with 128 + its number.
    shutdown::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            out::error(&report::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
