//! `shm call NAME [DATA]` and `shm serve NAME -- CMD`: a service for many clients
//! (shm-channel's `service`) from the shell. Each request `serve` receives is the standard
//! input of one run of CMD, and its standard output the answer.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};
use shm_channel::Error;
use shm_channel::service::{Request, Service, ServiceClient, ServiceOptions};

use crate::backend;
use crate::backend::Global;
use crate::channel::{TICK, catch_signals, stopped};
use shm_core::Backend as _;
use shm_units::parse_size;

/// Arguments of `shm call`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Sends DATA (or, without it, everything on stdin) as one request to the \
    service NAME that `shm serve` runs, and writes the answer to stdout. Exit status 0 when \
    the service answered; non-zero, with the server's message, when its command failed, and \
    when there is no such service, it is full, or its server died. Any number of calls may \
    run at once, up to the service's --clients; a call killed midway frees its seat.\n\n\
    Examples:\n  \
    shm call /upper hello                    prints HELLO (with `shm serve /upper -- tr a-z A-Z`)\n  \
    shm call /upper < notes.txt              stdin as the request\n  \
    shm --backend sysv call /upper hello     a service over System V"
)]
pub struct CallArgs {
    /// The service's name (`/name` or `name`).
    name: String,
    /// The request (default: stdin, all of it).
    data: Option<String>,
}

/// Arguments of `shm serve`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Serves the calls of up to --clients `shm call`s at once, one request at a \
    time: each request is the standard input of one run of CMD (run directly with its \
    arguments, never through a shell), and what CMD writes to stdout is the answer. When CMD \
    exits non-zero (or writes more than --max-message), the call fails: `shm call` prints \
    CMD's status and the last line of its stderr, and exits non-zero. serve runs until a \
    signal (Ctrl-C, SIGTERM, ...) stops it; it removes the service's name then, and a \
    client that was waiting is told the service closed.\n\n\
    Examples:\n  \
    shm serve /upper -- tr a-z A-Z           answers each request in upper case\n  \
    shm serve /sum --clients 64 -- awk '{s+=$1} END {print s}'\n  \
    shm --backend sysv serve /upper -- tr a-z A-Z"
)]
pub struct ServeArgs {
    /// The service's name (`/name` or `name`).
    name: String,
    /// The most clients at once.
    #[arg(long, default_value = "16")]
    clients: u32,
    /// The largest request or answer (4096, 64KiB, 1MiB, ...).
    #[arg(long, value_parser = parse_size, default_value = "64KiB")]
    max_message: usize,
    /// The command that answers each request, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// `shm call`.
pub fn call(g: &Global, a: &CallArgs) -> Result<()> {
    let request = match &a.data {
        Some(d) => d.clone().into_bytes(),
        None => {
            let mut v = Vec::new();
            std::io::stdin()
                .read_to_end(&mut v)
                .context("cannot read the request from stdin")?;
            v
        }
    };
    let backend = backend::get(g.backend)?;
    let mut client = match ServiceClient::open(&backend, &a.name, &ServiceOptions::default()) {
        Err(Error::Shm(e)) if e.is_not_found() => bail!(
            "no service {} is running ({}): start one with `shm serve {} -- CMD`",
            a.name,
            backend.name(),
            a.name
        ),
        other => other?,
    };
    let answer = client.call(&request[..])?.to_vec();
    let mut out = std::io::stdout().lock();
    out.write_all(&answer)
        .and_then(|()| out.flush())
        .context("cannot write the answer to stdout")
}

/// `shm serve`.
pub fn serve(g: &Global, a: &ServeArgs) -> Result<()> {
    let backend = backend::get(g.backend)?;
    catch_signals();
    let opts = ServiceOptions::new(a.max_message).clients(a.clients);
    let mut service = Service::create(&backend, &a.name, &opts)?;
    println!(
        "serving {} ({}): up to {} clients, requests and answers of at most {} bytes; each request runs {:?}",
        a.name,
        backend.name(),
        a.clients,
        a.max_message,
        a.command.join(" ")
    );
    std::io::stdout().flush().ok();
    loop {
        if stopped() {
            // Dropping the service closes it and removes its name.
            return Ok(());
        }
        match service.recv_timeout(TICK) {
            Ok(request) => answer(request, &a.command, a.max_message),
            Err(Error::TimedOut { .. }) => {}
            // A client that broke the protocol spoiled its own call only.
            Err(Error::Protocol(why)) => eprintln!("shm serve: {why}"),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs `command` with the request as its stdin; its stdout answers, or its failure fails the
/// call.
fn answer(request: Request<'_>, command: &[String], max: usize) {
    match run(command, request.to_vec(), max) {
        Ok(out) => {
            let _ = request.reply(&out);
        }
        Err(why) => {
            let _ = request.fail(&format!("{why:#}"));
        }
    }
}

/// Runs `command` (directly, no shell) on `input`; its stdout when it succeeds.
fn run(command: &[String], input: Vec<u8>, max: usize) -> Result<Vec<u8>> {
    let (program, args) = command.split_first().context("no command to run")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program:?}"))?;
    // Written from a thread: CMD may write before it has read all of its input.
    let mut stdin = child.stdin.take().context("no stdin for the command")?;
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot wait for {program:?}"))?;
    let _ = writer.join();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        bail!(
            "{program:?} {}{}",
            match out.status.code() {
                Some(code) => format!("exited with status {code}"),
                None => format!("was killed ({})", out.status),
            },
            last.map_or(String::new(), |l| format!(": {l}"))
        );
    }
    if out.stdout.len() > max {
        bail!(
            "{program:?} answered {} bytes; the service's maximum is {max}",
            out.stdout.len()
        );
    }
    Ok(out.stdout)
}
