//! Ctrl-C, SIGTERM and SIGHUP on the server: remove the segment (and stop the demo's client),
//! then exit with 128 + the signal number.
//!
//! The signals are blocked in every thread of the process (the mask is set before any thread is
//! spawned, and threads inherit it), and one thread takes them with `sigwait`: the cleanup then
//! runs as ordinary code, not in a signal handler. What there is to clean up is kept in
//! [`Armed`] behind a mutex, so that a signal and the server's own removal never both act: the
//! server creates and removes the segment while holding the lock.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Result, bail};
use shm_core::{DynBackend, SegmentName};

/// What a signal must undo.
#[derive(Default)]
pub(super) struct Armed {
    /// The segment to remove, and the backend that made it.
    pub segment: Option<(Arc<dyn DynBackend>, SegmentName)>,
    /// A child process to stop (the demo's client), by pid; cleared once it has been waited for,
    /// so that a reused pid is never signalled.
    pub child: Option<libc::pid_t>,
    /// Printed before the line that says what was done ("server | " in the demo).
    pub prefix: &'static str,
}

/// The signals that end the server.
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Cleanup on signal, installed once per process.
pub(super) struct Shutdown {
    armed: Arc<Mutex<Armed>>,
}

impl Shutdown {
    /// Blocks the signals in this thread and starts the thread that waits for them.
    ///
    /// Call it before this process spawns any other thread, so that every thread inherits the
    /// mask and only the waiting thread ever takes the signals. A child process inherits the
    /// mask too (the standard library does not reset it): start children through
    /// [`unblock_in_child`].
    pub fn install() -> Result<Self> {
        let set = signal_set();
        // SAFETY: `set` is an initialized sigset_t; the old mask is not asked for (null).
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            bail!(
                "cannot block SIGINT and SIGTERM: {}",
                std::io::Error::from_raw_os_error(rc)
            );
        }
        let armed = Arc::new(Mutex::new(Armed::default()));
        let for_thread = Arc::clone(&armed);
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || wait_and_clean(&set, &for_thread))?;
        Ok(Self { armed })
    }

    /// Locks what a signal would undo. While the lock is held a signal waits; the server holds it
    /// while it creates and while it removes the segment.
    pub fn lock(&self) -> MutexGuard<'_, Armed> {
        lock(&self.armed)
    }
}

/// Makes `cmd`'s process start with the signals that [`Shutdown::install`] blocked unblocked
/// again, so that Ctrl-C and SIGTERM end it as usual.
pub(super) fn unblock_in_child(cmd: &mut Command) {
    let set = signal_set();
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // functions may be called: it calls only sigprocmask (async-signal-safe, and the child has
    // one thread), on a sigset_t copied into it before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

fn lock(m: &Mutex<Armed>) -> MutexGuard<'_, Armed> {
    // A panic elsewhere does not make the cleanup record wrong: use it anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value of a plain C type; sigemptyset then
    // initializes it as POSIX requires.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t and the signal numbers are valid; these calls
    // fail only on an invalid signal number.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in SIGNALS {
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

/// The signal thread: waits for one of [`SIGNALS`], undoes what is armed, exits.
fn wait_and_clean(set: &libc::sigset_t, armed: &Mutex<Armed>) {
    let sig = loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is an initialized sigset_t whose signals are blocked in every thread;
        // `sig` is a valid out-pointer.
        if unsafe { libc::sigwait(set, &mut sig) } == 0 {
            break sig;
        }
    };
    // Keep the lock until the process is gone: the server must not carry on meanwhile.
    let mut armed = lock(armed);
    let mut done = Vec::new();
    if let Some(pid) = armed.child.take() {
        // SAFETY: plain system call; `pid` is our child, not yet waited for, so not reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        done.push("stopped the client".to_owned());
    }
    if let Some((backend, name)) = armed.segment.take() {
        done.push(match backend.dyn_unlink(&name) {
            Ok(()) => format!("removed {name}"),
            Err(e) => format!("could not remove {name}: {e}"),
        });
    }
    let what = if done.is_empty() {
        String::new()
    } else {
        format!(": {}", done.join(", "))
    };
    // Not eprintln!: a closed stderr must not panic this thread and leave the process running.
    let _ = writeln!(
        std::io::stderr(),
        "{}interrupted by {}{what}",
        armed.prefix,
        signal_name(sig)
    );
    std::process::exit(128 + sig);
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
