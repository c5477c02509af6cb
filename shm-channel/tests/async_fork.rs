//! A child made by `fork` awaits too: it has none of its parent's waiter threads, and makes
//! its own (feature `async`). Alone in this binary: the fork happens with few threads about.
#![cfg(all(feature = "async", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use shm_channel::{Options, Receiver, Sender, WaitStrategy};

/// A message sent by a thread after a pause, awaited (a block end: it registers at once).
fn await_one(name: &str) -> Result<u64, shm_channel::Error> {
    let backend = shm_posix::Posix::new();
    let opts = Options::new(1, 16).wait(WaitStrategy::Block);
    let mut rx = Receiver::create(&backend, name, &opts)?;
    let mut tx = Sender::open(&backend, name, &opts)?;
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        tx.send_value(&7u64)
    });
    let v = futures::executor::block_on(rx.recv_async())?.read_value::<u64>()?;
    sender
        .join()
        .map_err(|_| shm_channel::Error::Protocol("sender".into()))??;
    Ok(v)
}

#[test]
fn a_forked_child_awaits_with_threads_of_its_own() {
    let pid = std::process::id();
    assert_eq!(await_one(&format!("/shmt-{pid}-af-parent")).unwrap(), 7);
    assert!(
        shm_core::reactor::threads() >= 1,
        "the parent made a waiter thread"
    );
    // SAFETY: the child runs only this test's code and leaves with _exit; an alarm ends it
    // if its await never completes.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork");
    if child == 0 {
        // SAFETY: alarm and _exit are plain system calls.
        unsafe { libc::alarm(10) };
        let ok = matches!(await_one(&format!("/shmt-{pid}-af-child")), Ok(7));
        // SAFETY: as above.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child, writing its status into `status`.
    let rc = unsafe { libc::waitpid(child, &mut status, 0) };
    assert_eq!(rc, child);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's await failed or hung (status {status:#x})"
    );
}
