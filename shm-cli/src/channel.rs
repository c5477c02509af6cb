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

/// Set by a signal that would end the command: it stops within [`TICK`] (between two messages
/// while data flows, whatever the rate) and ends its end of the channel as cut, so that the
/// other end says so; a channel it made and nobody joined is removed (once joined, its name
/// is gone anyway).
static STOP: AtomicBool = AtomicBool::new(false);

/// How often a waiting end looks at [`STOP`].
pub(crate) const TICK: Duration = Duration::from_millis(100);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Turns every catchable signal that would end the command (the same list as the other
/// commands': SIGINT, SIGTERM, SIGHUP, SIGPWR, SIGIO, SIGVTALRM, the real-time signals, ...)
/// into [`STOP`]. Without `SA_RESTART`, so that a read or write that the signal interrupts
/// returns and sees it.
pub(crate) fn catch_signals() {
    for sig in crate::shutdown::signals() {
        crate::shutdown::catch(sig, on_signal);
    }
}

/// True once a signal came.
pub(crate) fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// An error once a signal came.
pub(crate) fn check_stop() -> Result<()> {
    if STOP.load(Ordering::Relaxed) {
        bail!("interrupted; this end of the channel is closed, and nothing of it is left behind");
    }
    Ok(())
}

/// Both ends use these, so either may create the channel: 32 slots of 64 KiB (2 MiB). The
/// bridge uses them too, for the channel it carries.
pub(crate) fn options() -> Options {
    Options::new(32, 64 * 1024)
}

/// Arguments of `shm send`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The channel is made by whichever of send and recv starts first; the \
    other joins it, and its name is removed once both are there (nothing is left behind, even \
    after kill -9). send ends when its input ends and the receiver has it all: exit status 0 \
    means every byte was delivered. When the receiver stops reading early (`shm recv x | head`), \
    send stops too, quietly, with status 0, as on a pipe. When send is interrupted or cannot \
    read its input, the stream ends as cut: recv says so and exits non-zero. When recv fails \
    (a full disk, a closed stdout) or dies, send exits non-zero.\n\n\
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
    start first; it writes every byte sent to stdout and ends when the sender has ended: exit \
    status 0 only when the stream is whole. A stream cut short (send interrupted, its input \
    failed, send died) makes recv exit non-zero with a message: what it wrote is incomplete. \
    When its reader goes away (`| head -c 10`) it ends quietly, and so does the sender; any \
    other write error (a full disk, a closed stdout) makes both exit non-zero.\n\n\
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
    let (_file, fd) = open_input(a.file.as_ref())?;
    let backend = backend::get(g.backend)?;
    catch_signals();
    let mut tx = Sender::open_or_create(&backend, &a.name, &options())?;
    // Any return before `finish` drops the sender unfinished: the stream ends as cut.
    loop {
        check_stop()?;
        let mut loan = match tx.loan_timeout(TICK) {
            Ok(loan) => loan,
            Err(Error::TimedOut { .. }) => continue,
            Err(e) => return receiver_ended(e),
        };
        // SAFETY: the loan's payload and capacity, the loan alive; no reference into it.
        let n = unsafe { read_into(fd, loan.as_mut_ptr(), loan.capacity())? };
        if n == 0 {
            break; // the loan goes unsent
        }
        if let Err(e) = loan.send(n) {
            return receiver_ended(e);
        }
    }
    // The input ended: the stream is complete. Wait until the receiver has all of it (a
    // creator waits for its receiver to come first).
    loop {
        match tx.finish_timeout(TICK) {
            Ok(()) => return Ok(()),
            Err(Error::TimedOut { .. }) => check_stop()?,
            Err(e) => return receiver_ended(e),
        }
    }
}

/// The input of `shm send` and `shm pub`: the file, kept open while its descriptor is used, or
/// stdin.
pub(crate) fn open_input(path: Option<&PathBuf>) -> Result<(Option<File>, RawFd)> {
    let file = match path {
        Some(path) => {
            Some(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        }
        None => None,
    };
    let fd = file
        .as_ref()
        .map_or(io::stdin().as_raw_fd(), AsRawFd::as_raw_fd);
    Ok((file, fd))
}

/// Waits until the input `fd` has something to read (data, its end or an error), looking at
/// the stop at least every [`TICK`]: a signal that came just before a read began (after the
/// last look) would otherwise leave that read blocked for as long as the input stays open.
fn wait_readable(fd: RawFd) -> Result<()> {
    let tick = libc::c_int::try_from(TICK.as_millis()).unwrap_or(100);
    loop {
        check_stop()?;
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, ours, for the duration of the call.
        let n = unsafe { libc::poll(&mut p, 1, tick) };
        if n > 0 {
            return Ok(());
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e).context("cannot wait for the input; the stream ends as cut");
            }
        }
    }
}

/// Reads at most `cap` bytes of the input `fd` into a loaned slot's payload at `ptr`: how
/// many, 0 at the end of the input; an error when it fails or a stop came.
///
/// # Safety
///
/// `ptr` must be valid for writes of `cap` bytes (a loan's payload and capacity, the loan
/// alive), and no Rust reference to those bytes may exist.
pub(crate) unsafe fn read_into(fd: RawFd, ptr: *mut u8, cap: usize) -> Result<usize> {
    wait_readable(fd)?;
    let read = retry_eintr(|| {
        // SAFETY: the caller's promise: `cap` writable bytes at `ptr`, no reference to them;
        // the kernel writes at most `cap` bytes there.
        unsafe { libc::read(fd, ptr.cast(), cap) }
    });
    check_stop()?;
    read.context("cannot read the input; the stream ends as cut")
}

/// What `shm send` makes of a receiver that ended: one that stopped reading is as a pipe's
/// reader that left (quiet, status 0); one that failed or died is an error.
fn receiver_ended(e: Error) -> Result<()> {
    match e {
        Error::Closed => Ok(()),
        Error::Aborted => {
            bail!("the receiver failed before the end of the stream: not everything was delivered")
        }
        Error::PeerDead { pid } => bail!(
            "the receiver (pid {pid}) died before the end of the stream: not everything was delivered"
        ),
        e => Err(e.into()),
    }
}

/// How `shm recv`'s copy ended without error.
enum Ended {
    /// The sender finished: the whole stream is written.
    Whole,
    /// stdout's reader went away (`| head`).
    ReaderLeft,
}

/// `shm recv`.
pub fn recv(g: &Global, a: &RecvArgs) -> Result<()> {
    let backend = backend::get(g.backend)?;
    catch_signals();
    let mut rx = Receiver::open_or_create(&backend, &a.name, &options())?;
    match copy_out(&mut rx) {
        // Dropping the receiver tells the sender: the whole stream arrived, or the reader
        // left (the sender stops quietly, as on a pipe).
        Ok(Ended::Whole | Ended::ReaderLeft) => Ok(()),
        Err(e) => {
            // Anything else is a failure, and the sender learns it.
            rx.abort();
            Err(e)
        }
    }
}

/// Writes every message to stdout until the stream ends.
fn copy_out(rx: &mut Receiver) -> Result<Ended> {
    let out = io::stdout().as_raw_fd();
    loop {
        // Between two messages, whatever the rate: a stop is honoured within one message.
        check_stop()?;
        let sample = match rx.recv_timeout(TICK) {
            Ok(s) => s,
            Err(Error::TimedOut { .. }) => continue,
            Err(Error::Closed) => return Ok(Ended::Whole),
            Err(Error::Aborted) => {
                bail!("the sender stopped before the end of the stream: the output is incomplete")
            }
            Err(Error::PeerDead { pid }) => bail!(
                "the sender (pid {pid}) died before the end of the stream: the output is incomplete"
            ),
            Err(e) => return Err(e.into()),
        };
        match write_all(out, sample.as_ptr(), sample.len()) {
            Ok(()) => {}
            // The reader went away (`shm recv x | head`): not an error; dropping the
            // receiver tells the sender to stop.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Ended::ReaderLeft),
            Err(e) => {
                // A signal that interrupted the write is a stop, not a write error.
                check_stop()?;
                return Err(e).context("cannot write to stdout; the sender is told");
            }
        }
    }
}

/// Writes `len` bytes at `ptr` to `fd`, all of them. Only the kernel reads them: an address
/// outside the process's memory is an error (EFAULT), never a read of ours.
pub(crate) fn write_all(fd: RawFd, ptr: *const u8, len: usize) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        let n = retry_eintr(|| {
            // SAFETY: write(2) reads the range itself and fails with EFAULT where it is not
            // mapped; the address is computed without dereferencing (wrapping_add).
            unsafe { libc::write(fd, ptr.wrapping_add(done).cast(), len - done) }
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
pub(crate) fn retry_eintr(mut call: impl FnMut() -> isize) -> io::Result<usize> {
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
