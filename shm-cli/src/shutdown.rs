//! Signals that end a command: every catchable one that would end the process (SIGINT, SIGTERM,
//! SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, the real-time signals, ...) undoes what the
//! command has half made, then exits with 128 + the signal number.
//!
//! The signals are blocked in every thread of the process (the mask is set in `main` before any
//! thread is spawned, and threads inherit it), and one thread takes them with `sigwait`: the
//! cleanup then runs as ordinary code, not in a signal handler. What there is to undo is kept
//! in [`Armed`] behind a mutex, so that a signal and the command's own work never both act: a
//! command holds the lock while it makes or removes something, and checks [`pending`] before it
//! lets what it made stand. A signal that comes meanwhile waits for the lock, and `main` lets it
//! end the process once the command has undone its work (see [`finish`]).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use anyhow::{Result, bail};
use shm_core::Segment;

/// An undo step that a signal runs: returns what it did, for the message.
pub type Undo = Box<dyn FnOnce() -> Option<String> + Send>;

/// What a signal must undo.
#[derive(Default)]
pub struct Armed {
    /// A segment this process made and removes on a signal: the handle itself, so that only
    /// that segment is removed (never one that took its name since).
    pub segment: Option<Box<dyn Segment>>,
    /// A child process to stop (the demo's client), by pid; cleared once it has been waited for,
    /// so that a reused pid is never signalled.
    pub child: Option<libc::pid_t>,
    /// Other steps, run last to first.
    pub undo: Vec<Undo>,
    /// Printed before the line that says what was done ("server | " in the demo).
    pub prefix: &'static str,
}

static ARMED: OnceLock<Mutex<Armed>> = OnceLock::new();
static PENDING: AtomicBool = AtomicBool::new(false);

/// The signals that end a command: every catchable one whose default action ends the process.
/// SIGPIPE is not among them: the standard library ignores it, and a write to a closed pipe is
/// an error that the command reports. `shm send` and `shm recv` catch the same list.
pub fn signals() -> Vec<libc::c_int> {
    let mut v = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGIO,
    ];
    #[cfg(target_os = "linux")]
    {
        v.extend([libc::SIGPWR, libc::SIGSTKFLT]);
        v.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    }
    v
}

/// Installs `handler` for `sig` without `SA_RESTART`: a blocking call the signal interrupts
/// returns EINTR, and its caller looks at the stop flag. `handler` must be async-signal-safe
/// (the commands' only store to an atomic, or do nothing).
pub fn catch(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: an all-zero sigaction is a valid value (no flags, empty mask); the handler only
    // stores to an atomic or does nothing, which is async-signal-safe; sigaction reads `action`
    // and writes nothing back (null old action).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

/// Blocks the signals in this thread and starts the thread that waits for them. Call it once,
/// first thing in `main`, before any other thread exists. A child process inherits the mask
/// (the standard library does not reset it): start children through [`unblock_in_child`].
pub fn install() -> Result<()> {
    let set = signal_set();
    // SAFETY: `set` is an initialized sigset_t; the old mask is not asked for (null).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        bail!(
            "cannot block the signals that end a command: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
    let armed = ARMED.get_or_init(|| Mutex::new(Armed::default()));
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_and_clean(&set, armed))?;
    Ok(())
}

/// Locks what a signal would undo. While the lock is held a signal waits. Without
/// [`install`] (the bench catches its own signals) the lock guards nothing a signal reads.
pub fn lock() -> MutexGuard<'static, Armed> {
    let m = ARMED.get_or_init(|| Mutex::new(Armed::default()));
    // A panic elsewhere does not make the cleanup record wrong: use it anyway.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// True once a signal has come: the command must not let anything new stand, and should stop.
pub fn pending() -> bool {
    PENDING.load(Ordering::SeqCst)
}

/// Called by `main` when the command has returned: if a signal came meanwhile, let the signal
/// thread end the process (with 128 + its number) instead of returning.
pub fn finish() {
    if pending() {
        loop {
            std::thread::park();
        }
    }
}

/// Makes `cmd`'s process start with the signals unblocked again, so that they end it as usual,
/// and die with this process (`PR_SET_PDEATHSIG`, Linux): a client whose server was killed
/// with SIGKILL must not play on alone.
pub fn unblock_in_child(cmd: &mut Command) {
    let set = signal_set();
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec, where only async-signal-safe
    // functions may be called: sigprocmask, prctl and getppid are system calls (the child has
    // one thread), on values copied into it before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            #[cfg(target_os = "linux")]
            {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before the prctl: then no signal will come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("the parent exited"));
                }
            }
            let _ = parent;
            Ok(())
        });
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value of a plain C type; sigemptyset then
    // initializes it as POSIX requires.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t and the signal numbers are valid; these calls
    // fail only on an invalid signal number.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in signals() {
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

/// The signal thread: waits for a signal, undoes what is armed, exits.
fn wait_and_clean(set: &libc::sigset_t, armed: &Mutex<Armed>) {
    let sig = loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is an initialized sigset_t whose signals are blocked in every thread;
        // `sig` is a valid out-pointer.
        if unsafe { libc::sigwait(set, &mut sig) } == 0 {
            break sig;
        }
    };
    PENDING.store(true, Ordering::SeqCst);
    // Keep the lock until the process is gone: the command must not carry on meanwhile.
    let mut armed = armed.lock().unwrap_or_else(|e| e.into_inner());
    let mut done = Vec::new();
    if let Some(pid) = armed.child.take() {
        // SAFETY: plain system call; `pid` is our child, not yet waited for, so not reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        done.push("stopped the client".to_owned());
    }
    if let Some(mut segment) = armed.segment.take() {
        let name = crate::out::escape(segment.name().as_str());
        done.push(match segment.unlink() {
            Ok(()) => format!("removed {name}"),
            Err(shm_core::Error::Stale { .. }) => {
                format!("left {name} alone (it is another process's now)")
            }
            Err(e) => format!("could not remove {name}: {e}"),
        });
    }
    while let Some(undo) = armed.undo.pop() {
        if let Some(what) = undo() {
            done.push(what);
        }
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

fn signal_name(sig: libc::c_int) -> String {
    let known = [
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGALRM, "SIGALRM"),
    ];
    match known.iter().find(|(n, _)| *n == sig) {
        Some((_, name)) => (*name).to_owned(),
        None => format!("signal {sig}"),
    }
}
