//! `shm bench`: a thin adapter over the `shm-bench` crate. It gives the bench this binary's
//! backends and the way to start this binary again as a peer (the hidden `shm bench-peer`) or as
//! the demo, turns the signals that would end the command into a stop, and prints the report.

use std::io::{IsTerminal, Write};
use std::process::Command;

use anyhow::{Context, Result, bail};
use shm_bench::{Host, Kind, Length, Options};

use crate::backend::{self, Global};

/// Arguments of `shm bench`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Prints a table of means, medians and p99s and the ratios that matter (ratios of means: a
program pays the mean), each beside its target. The machine is shared and noisy: compare
ratios, run it twice, and run it when the machine is quiet. `--quick` takes about half a minute
(fewer repetitions, the same time per case and repetition), the full run about 3-4 minutes.
With --check the exit status is 1 when a target is missed.")]
pub struct BenchArgs {
    /// Print one JSON object {"results": {...}, "ratios": {...}, "targets": {...}} instead of
    /// the table.
    #[arg(long)]
    pub json: bool,
    /// A short run: fewer repetitions (about half a minute; for CI and a first look).
    #[arg(long, conflicts_with = "smoke")]
    pub quick: bool,
    /// Every case once with tiny rounds, in a few seconds: checks that the bench works here
    /// (peers, cleanup, report); its numbers mean nothing.
    #[arg(long)]
    pub smoke: bool,
    /// Exit non-zero when a ratio misses its target (after printing the results).
    #[arg(long)]
    pub check: bool,
    /// Run only these cases (and those their ratios divide by), e.g. `channel_rtt`.
    #[arg(value_name = "CASE")]
    pub cases: Vec<String>,
}

/// Arguments of the hidden `shm bench-peer`: what the bench tells a peer to do.
#[derive(Debug, clap::Args)]
pub struct PeerArgs {
    /// The peer's words (see `shm_bench::peer`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// Runs `shm bench`.
pub fn run(_: &Global, a: &BenchArgs) -> Result<()> {
    // A signal stops the bench between two steps: it then cleans up as on an error. SIGALRM is
    // the bench's own (it interrupts blocking reads).
    shm_bench::stop_on(&crate::shutdown::signals());
    let opts = Options {
        length: if a.smoke {
            Length::Smoke
        } else if a.quick {
            Length::Quick
        } else {
            Length::Full
        },
        cases: a.cases.clone(),
        progress: std::io::stderr().is_terminal(),
    };
    let report = shm_bench::run(&host(), &opts)?;
    let text = if a.json {
        let mut json = serde_json::to_string_pretty(&report.json())?;
        json.push('\n');
        json
    } else {
        report.table()
    };
    // Everything is cleaned up by now: a failed write (a closed pipe, a full disk) is reported
    // as an error like any other, not a panic.
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing the results to stdout")?;
    let missed = report.missed();
    if a.check && !missed.is_empty() {
        bail!("--check: targets not met: {}", missed.join(", "));
    }
    Ok(())
}

/// Runs `shm bench-peer`: a second process of the bench.
pub fn peer(_: &Global, a: &PeerArgs) -> Result<()> {
    shm_bench::peer(&host(), &a.words)
}

/// This binary, as the bench sees it.
fn host() -> Host {
    Host {
        kinds: backend::compiled().into_iter().map(kind).collect(),
        backend: |k| backend::get(Some(cli_kind(k))),
        sysv_key: |name| backend::sysv_key(backend::Kind::Sysv, name),
        peer: || {
            let mut cmd = this_binary()?;
            cmd.arg("bench-peer");
            Ok(cmd)
        },
        demo: Some(demo),
    }
}

fn kind(k: backend::Kind) -> Kind {
    match k {
        backend::Kind::Posix => Kind::Posix,
        backend::Kind::Sysv => Kind::Sysv,
    }
}

fn cli_kind(k: Kind) -> backend::Kind {
    match k {
        Kind::Posix => backend::Kind::Posix,
        Kind::Sysv => backend::Kind::Sysv,
    }
}

fn this_binary() -> Result<Command> {
    let exe = std::env::current_exe().context("finding this binary to start a peer")?;
    Ok(Command::new(exe))
}

/// `shm taller demo --lockstep` on the default backend.
fn demo(name: &str, rounds: u64) -> Result<Command> {
    let mut cmd = this_binary()?;
    cmd.args(["--backend", backend::DEFAULT.as_str(), "taller", "demo"])
        .args(["--lockstep", "--rounds", &rounds.to_string()])
        .args(["--name", name]);
    Ok(cmd)
}
