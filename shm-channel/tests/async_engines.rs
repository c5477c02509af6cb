//! Every engine of the reactor serves the futures and the wait set (feature `async`): io_uring,
//! `futex_waitv`, and the 1 ms poll a kernel without `futex_waitv` gets. Each runs in a process
//! of its own (this binary again, `SHM_REACTOR` naming the engine), since a process chooses
//! its engine once.
#![cfg(all(feature = "async", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::io::Read;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use shm_channel::{Error, Options, Receiver, Sender, WaitSet, WaitStrategy};
use shm_core::reactor::{self, Engine};

fn name(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/shmt-{}-{}-ae-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn backend() -> shm_posix::Posix {
    shm_posix::Posix::new()
}

/// Block ends: a future registers at once when nothing is waiting (no spin first).
fn opts() -> Options {
    Options::new(2, 64).wait(WaitStrategy::Block)
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test on its own: a sender process that waits to be killed, for `workout`.
#[test]
#[ignore = "run by workout as its peer process"]
fn peer() {
    let Ok(n) = std::env::var("SHM_ENGINE_PEER") else {
        return;
    };
    let _tx = Sender::open(&backend(), &n, &opts()).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// Not a test on its own: what `every_engine_serves_the_futures` runs under each engine.
#[test]
#[ignore = "run by every_engine_serves_the_futures with SHM_REACTOR set"]
fn workout() {
    let Ok(expect) = std::env::var("SHM_ENGINE_EXPECT") else {
        return;
    };
    assert_eq!(format!("{:?}", reactor::engine()), expect);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // A stream whose sender pauses: every message arrives in order, then Closed.
    let n = name("stream");
    let mut rx = Receiver::create(&backend(), &n, &opts()).unwrap();
    let sender = std::thread::spawn({
        let n = n.clone();
        move || {
            let mut tx = Sender::open(&backend(), &n, &opts()).unwrap();
            for i in 0..60u64 {
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(3));
                }
                tx.send_value(&i).unwrap();
            }
            tx.finish().unwrap();
        }
    });
    rt.block_on(async {
        for i in 0..60u64 {
            assert_eq!(
                rx.recv_async().await.unwrap().read_value::<u64>().unwrap(),
                i
            );
        }
        assert!(matches!(rx.recv_async().await, Err(Error::Closed)));
    });
    sender.join().unwrap();

    // A deadline: TimedOut, not before it.
    let n = name("deadline");
    let mut rx = Receiver::create(&backend(), &n, &opts()).unwrap();
    let mut tx = Sender::open(&backend(), &n, &opts()).unwrap();
    let t0 = Instant::now();
    let r = rt
        .block_on(rx.recv_timeout_async(Duration::from_millis(50)))
        .map(|_| ());
    let took = t0.elapsed();
    assert!(matches!(r, Err(Error::TimedOut { .. })), "{r:?}");
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A future dropped while registered leaves nothing registered and takes nothing.
    {
        let mut fut = pin!(rx.recv_async());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        assert_eq!(reactor::registered(), 1);
    }
    assert_eq!(reactor::registered(), 0);
    tx.send_value(&9u64).unwrap();
    let v: u64 = rt.block_on(rx.recv_async()).unwrap().read_value().unwrap();
    assert_eq!(v, 9);

    // A wait set: the end that gets a message says so, the other does not.
    let n2 = name("set");
    let mut quiet = Receiver::create(&backend(), &n2, &opts()).unwrap();
    let _quiet_tx = Sender::open(&backend(), &n2, &opts()).unwrap();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        tx.send(b"late").unwrap();
        tx
    });
    let mut set = WaitSet::new();
    set.add(&mut quiet);
    set.add(&mut rx);
    let events = set.wait(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].index, 1);
    assert!(events[0].result.is_ok());
    let _tx = late.join().unwrap();

    // A peer killed while a future waits: PeerDead.
    let n = name("dead");
    let mut rx = Receiver::create(&backend(), &n, &opts()).unwrap();
    let mut peer = Killed(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "peer", "--ignored", "--nocapture"])
            .env("SHM_ENGINE_PEER", &n)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    rx.wait_for_peer(Some(Duration::from_secs(20))).unwrap();
    let took = rt.block_on(async {
        let pending = tokio::spawn(async move { rx.recv_async().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let killed = Instant::now();
        peer.0.kill().unwrap();
        let r = pending.await.unwrap();
        assert!(matches!(r, Err(Error::PeerDead { .. })), "{r:?}");
        killed.elapsed()
    });
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(reactor::registered(), 0);
    println!(
        "engine {:?}: {} threads made, PeerDead {took:?} after the kill",
        reactor::engine(),
        reactor::threads()
    );
}

/// Runs `workout` under `SHM_REACTOR=asked`, expecting `engine`.
fn run_workout(asked: &str, engine: Engine) {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "workout", "--ignored", "--nocapture"])
        .env("SHM_REACTOR", asked)
        .env("SHM_ENGINE_EXPECT", format!("{engine:?}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A lost wake-up would hang the workout: it gets a minute (a second or two here). Its
    // output is small: the pipes never fill while it runs.
    let mut child = child;
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(status.success(), "SHM_REACTOR={asked} ({status}):\n{text}");
    assert!(text.contains("1 passed"), "SHM_REACTOR={asked}:\n{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("engine "))
        .unwrap_or("");
    println!("SHM_REACTOR={asked}: {line}");
}

/// The futures, deadlines, cancellation, a wait set and a killed peer, under io_uring (where
/// this kernel allows it, as it does for the CI), `futex_waitv`, and the 1 ms poll that a
/// kernel without `futex_waitv` falls back to.
#[test]
fn every_engine_serves_the_futures() {
    if reactor::engine() == Engine::Uring {
        run_workout("uring", Engine::Uring);
    } else {
        println!(
            "SKIPPED every_engine_serves_the_futures (uring): this kernel refuses io_uring's futex wait ({:?})",
            reactor::engine()
        );
    }
    run_workout("waitv", Engine::Waitv);
    run_workout("poll", Engine::Poll);
}
