//! `shm taller demo`: the server in this process, the client as a second process (this same
//! program, `shm taller client`), both outputs interleaved line by line behind a prefix.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context as _, Result, bail};
use shm_core::DynBackend;

use super::game::{self, Out};
use super::{ServerArgs, client_args};
use crate::backend::Kind;
use crate::lockstep::Role;
use crate::shutdown;

const SERVER: &str = "server | ";
const CLIENT: &str = "client | ";

/// Runs the demo: creates the segment, starts the client once it exists, plays the server's
/// side, waits for the client, removes the segment. Fails when either side fails.
pub(super) fn run(kind: Kind, backend: Arc<dyn DynBackend>, args: &ServerArgs) -> Result<()> {
    let out = Out { prefix: SERVER };
    let map = game::create(&backend, args, out)?;
    let (mut child, relays) = match start_client(kind, args) {
        Ok(started) => started,
        Err(e) => {
            let _ = game::remove(out);
            return Err(e);
        }
    };
    let played = game::play(&map, Role::Server, &args.game, out);
    if played.is_err() {
        // The client cannot finish without the server: stop it rather than wait for its timeout.
        let _ = child.kill();
    }
    let status = wait_client(&mut child);
    for relay in relays {
        let _ = relay.join();
    }
    let removed = game::remove(out);
    played.context("the server failed")?;
    let status = status?;
    if !status.success() {
        bail!("the client failed ({status}); its messages are above, after `{CLIENT}`");
    }
    removed
}

/// Starts `shm taller client` with the same game, its output relayed behind [`CLIENT`].
fn start_client(kind: Kind, args: &ServerArgs) -> Result<(Child, Vec<JoinHandle<()>>)> {
    let exe = std::env::current_exe().context("cannot find this program to start the client")?;
    // Under the lock, so that a signal that comes meanwhile also stops the new child.
    let mut armed = shutdown::lock();
    let mut cmd = Command::new(&exe);
    cmd.args(client_args(kind, &args.game))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Ctrl-C and SIGTERM must end the client as usual (this process has them blocked), and
    // the client dies with this process, also when it is killed with SIGKILL.
    shutdown::unblock_in_child(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start the client ({})", exe.display()))?;
    armed.child = libc::pid_t::try_from(child.id()).ok();
    drop(armed);
    let mut relays = Vec::new();
    let streams: [(Option<Box<dyn Read + Send>>, bool); 2] = [
        (child.stdout.take().map(|s| Box::new(s) as _), false),
        (child.stderr.take().map(|s| Box::new(s) as _), true),
    ];
    for (stream, to_stderr) in streams {
        if let Some(stream) = stream {
            match relay(stream, to_stderr) {
                Ok(handle) => relays.push(handle),
                Err(e) => {
                    let _ = child.kill();
                    let _ = wait_client(&mut child);
                    return Err(e);
                }
            }
        }
    }
    Ok((child, relays))
}

/// Copies `stream` line by line to stdout (or stderr), each line after [`CLIENT`].
fn relay(stream: Box<dyn Read + Send>, to_stderr: bool) -> Result<JoinHandle<()>> {
    let handle = std::thread::Builder::new()
        .name("client-output".into())
        .spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let text = String::from_utf8_lossy(&buf);
                let line = text.trim_end_matches(['\n', '\r']);
                // A closed terminal or pipe must not stop the game: ignore write errors.
                let _ = if to_stderr {
                    writeln!(std::io::stderr(), "{CLIENT}{line}")
                } else {
                    writeln!(std::io::stdout(), "{CLIENT}{line}")
                };
            }
        })
        .context("cannot start a thread to relay the client's output")?;
    Ok(handle)
}

/// Waits for the client to exit, then reaps it with the signal cleanup disarmed, so that a
/// signal never reaches a process that has taken over the pid.
fn wait_client(child: &mut Child) -> Result<std::process::ExitStatus> {
    let pid: libc::id_t = child.id();
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of a plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer; WNOWAIT leaves the child waitable (a zombie
        // keeps its pid) so that `Child::wait` below reaps it.
        let rc =
            unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if rc == 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    let mut armed = shutdown::lock();
    armed.child = None;
    child.wait().context("cannot wait for the client")
}
