//! `shm send NAME [FILE]` and `shm recv NAME`: a byte stream through a channel (shm-channel),
//! between two shells, like a named pipe.
//!
//! Bytes go from the input straight into a slot (`read(2)` into the loaned slot) and from a
//! slot straight to the output (`write(2)` from the sample): the kernel copies, this process
//! never forms a Rust reference into shared memory, so nothing the peer does to the slot can
//! break this process's assumptions.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use shm_channel::{Error, Options, Receiver, Sender};

use crate::backend;
use crate::backend::Global;

/// Set by Ctrl-C, SIGTERM or SIGHUP: the command stops within [`TICK`] and drops its end, so
/// that a channel it made and nobody joined is removed (once joined, its name is gone anyway).
static STOP: AtomicBool = AtomicBool::new(false);

/// How often a waiting end looks at [`STOP`].
const TICK: Duration = Duration::from_millis(100);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Turns the signals that would end the command at once into [`STOP`]. Without `SA_RESTART`,
/// so that a read of the input that the signal interrupts returns and sees it.
fn catch_signals() {
    for sig in crate::shutdown::STOP_SIGNALS
        .into_iter()
        .chain([libc::SIGALRM])
    {
        crate::shutdown::catch(sig, on_signal);
    }
}

/// An error once a signal came.
fn check_stop() -> Result<()> {
    if STOP.load(Ordering::Relaxed) {
        bail!("interrupted; this end of the channel is closed, and nothing of it is left behind");
    }
    Ok(())
}

/// Both ends use these, so either may create the channel: 32 slots of 64 KiB (2 MiB).
fn options() -> Options {
    Options::new(32, 64 * 1024)
}

/// Arguments of `shm send`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The channel is made by whichever of send and recv starts first; the \
    other joins it, and its name is removed once both are there (nothing is left behind, even \
    after kill -9). send ends when its input ends and the receiver has it all; when the \
    receiver stops early (`shm recv x | head`), send stops too, quietly, with status 0.\n\n\
    Examples:\n  \
    shm send /logs < app.log                 stdin into the channel /logs\n  \
    shm send /logs app.log                   the same from a file\n  \
    tar c dir | shm --backend sysv send /t   a stream over System V (recv with --backend sysv)"
)]
pub struct SendArgs {
    /// The channel's name (`/name` or `name`).
    name: String,
    /// The file to send (default: stdin).
    file: Option<PathBuf>,
}

/// Arguments of `shm recv`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "recv creates the channel or joins the sender's, so either side may \
    start first; it writes every byte sent to stdout and ends when the sender has ended. When \
    its reader goes away (`| head -c 10`) it ends quietly, and so does the sender.\n\n\
    Examples:\n  \
    shm recv /logs > copy.log                everything sent to /logs, into a file\n  \
    shm recv /logs | head -c 10              the first 10 bytes; both ends stop cleanly\n  \
    shm --backend sysv recv /t | tar x       the other end of `tar c dir | shm --backend sysv send /t`"
)]
pub struct RecvArgs {
    /// The channel's name (`/name` or `name`).
    name: String,
}

/// `shm send`.
pub fn send(g: &Global, a: &SendArgs) -> Result<()> {
    let file = match &a.file {
        Some(path) => {
            Some(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        None => None,
    };
    let fd = file
        .as_ref()
        .map_or(io::stdin().as_raw_fd(), AsRawFd::as_raw_fd);
    let backend = backend::get(g.backend)?;
    catch_signals();
    let mut tx = Sender::open_or_create(&backend, &a.name, &options())?;
    loop {
        let mut loan = match tx.loan_timeout(TICK) {
            Ok(loan) => loan,
            Err(Error::TimedOut { .. }) => {
                check_stop()?;
                continue;
            }
            Err(Error::Closed) => return Ok(()), // the receiver stopped reading: as EPIPE
            Err(e) => return Err(e.into()),
        };
        let cap = loan.capacity();
        let ptr = loan.as_mut_ptr();
        let read = retry_eintr(|| {
            // SAFETY: `ptr` is the loaned slot's payload, `cap` bytes inside the mapping; the
            // kernel writes at most `cap` bytes there, and no Rust reference to it exists.
            unsafe { libc::read(fd, ptr.cast(), cap) }
        });
        check_stop()?;
        let n = read.context("cannot read the input")?;
        if n == 0 {
            break; // the loan goes unsent
        }
        match loan.send(n) {
            Ok(()) => {}
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    // A creator dropped before its receiver came would take the bytes with it: wait for the
    // receiver; then dropping closes the channel, and the receiver drains it.
    loop {
        match tx.wait_for_peer(Some(TICK)) {
            Err(Error::TimedOut { .. }) => check_stop()?,
            other => return Ok(other?),
        }
    }
}

/// `shm recv`.
pub fn recv(g: &Global, a: &RecvArgs) -> Result<()> {
    let backend = backend::get(g.backend)?;
    catch_signals();
    let mut rx = Receiver::open_or_create(&backend, &a.name, &options())?;
    let out = io::stdout().as_raw_fd();
    loop {
        let sample = match rx.recv_timeout(TICK) {
            Ok(s) => s,
            Err(Error::TimedOut { .. }) => {
                check_stop()?;
                continue;
            }
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        match write_all(out, sample.as_ptr(), sample.len()) {
            Ok(()) => {}
            // The reader went away (`shm recv x | head`): not an error; dropping the
            // receiver tells the sender to stop.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e).context("cannot write to stdout"),
        }
    }
}

/// Writes `len` bytes at `ptr` to `fd`, all of them.
fn write_all(fd: RawFd, ptr: *const u8, len: usize) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        let n = retry_eintr(|| {
            // SAFETY: `ptr..ptr+len` is a received message inside the mapping (its length was
            // checked against the slot at receive); the kernel only reads it.
            unsafe { libc::write(fd, ptr.add(done).cast(), len - done) }
        })?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        done += n;
    }
    Ok(())
}

/// Runs a read or write system call again while it is interrupted by anything but a stop
/// signal; its count, or the error.
fn retry_eintr(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted || STOP.load(Ordering::Relaxed) {
            return Err(e);
        }
    }
}
