//! A service's futures (feature `async`): `Service::recv_async` and
//! `ServiceClient::call_async` under tokio's current-thread and multi-thread runtimes,
//! `futures::executor::block_on`, smol and async-std, beside blocking clients; deadlines and
//! late answers; a server that closes; a server process killed while a call is awaited.
#![cfg(all(feature = "async", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::on_every_executor;
use shm_channel::Error;
use shm_channel::service::{Service, ServiceClient, ServiceOptions};

fn name(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/shmt-{}-{}-sva-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn backend() -> shm_posix::Posix {
    shm_posix::Posix::new()
}

fn opts() -> ServiceOptions {
    ServiceOptions::new(64).clients(4)
}

/// An awaiting server answers three blocking client threads (which pause now and then, so
/// that it sleeps for some requests) and an awaiting client on its own executor thread: every
/// answer to its caller.
#[test]
fn service_futures_on_every_executor() {
    on_every_executor(|exec| async move {
        let n = name("serve");
        let mut service = Service::create(&backend(), &n, &opts()).unwrap();
        let threads: Vec<_> = (0..3u64)
            .map(|k| {
                let n = n.clone();
                std::thread::spawn(move || {
                    let mut c = ServiceClient::open(&backend(), &n, &opts()).unwrap();
                    for i in 0..50u64 {
                        if i % 10 == 0 {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        let v = k << 32 | i;
                        let back: u64 = c.call(&v).unwrap().read_value().unwrap();
                        assert_eq!(back, v + 1);
                    }
                })
            })
            .collect();
        let mut mine = ServiceClient::open(&backend(), &n, &opts()).unwrap();
        let serve = async {
            for _ in 0..200 {
                let r = service.recv_async().await.unwrap();
                let v: u64 = r.data().read_value().unwrap();
                r.reply_value(&(v + 1)).unwrap();
            }
        };
        let call = async {
            for i in 0..50u64 {
                let v = 7 << 32 | i;
                let back: u64 = mine.call_async(&v).await.unwrap().read_value().unwrap();
                assert_eq!(back, v + 1, "{exec}");
            }
        };
        futures::join!(serve, call);
        for t in threads {
            t.join().unwrap();
        }
    });
}

/// Deadlines: a server's await with no client times out; a call whose answer comes late times
/// out, and the next call takes the late answer first, then its own.
#[test]
fn deadlines_and_a_late_answer() {
    futures::executor::block_on(async {
        let n = name("late");
        let mut service = Service::create(&backend(), &n, &opts()).unwrap();
        let t0 = Instant::now();
        let r = service
            .recv_deadline_async(Instant::now() + Duration::from_millis(30))
            .await
            .map(|_| ());
        assert!(matches!(r, Err(Error::TimedOut { .. })), "{r:?}");
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let server = std::thread::spawn(move || {
            for delay in [100, 0] {
                let r = service.recv_timeout(Duration::from_secs(10)).unwrap();
                std::thread::sleep(Duration::from_millis(delay));
                let v: u64 = r.data().read_value().unwrap();
                r.reply_value(&(v * 10)).unwrap();
            }
            service
        });
        let mut c = ServiceClient::open(&backend(), &n, &opts()).unwrap();
        let r = c
            .call_deadline_async(&1u64, Instant::now() + Duration::from_millis(10))
            .await
            .map(|_| ());
        assert!(matches!(r, Err(Error::TimedOut { .. })), "{r:?}");
        let back: u64 = c.call_async(&2u64).await.unwrap().read_value().unwrap();
        assert_eq!(back, 20);
        drop(server.join().unwrap());
    });
}

/// A server dropped while a call is awaited: the call fails with `Closed`.
#[test]
fn a_closing_server_reaches_a_pending_call() {
    futures::executor::block_on(async {
        let n = name("close");
        let service = Service::create(&backend(), &n, &opts()).unwrap();
        let mut c = ServiceClient::open(&backend(), &n, &opts()).unwrap();
        let server = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(service);
        });
        let r = c.call_async(&1u64).await.map(|_| ());
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
        server.join().unwrap();
    });
}

/// Not a test on its own: the server process of `a_killed_server_reaches_a_pending_call`,
/// run by it with `SHM_SERVICE_ASYNC_PEER=name`. It serves, takes one request, never answers.
#[test]
#[ignore = "run by a_killed_server_reaches_a_pending_call as its peer process"]
fn server_process() {
    let Ok(n) = std::env::var("SHM_SERVICE_ASYNC_PEER") else {
        return;
    };
    let mut service = Service::create(&backend(), &n, &opts()).unwrap();
    println!("READY");
    let _r = service.recv().unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// A server process killed (-9) while a call is awaited: `PeerDead`, well within a second
/// (the 100 ms asserted loosely, measured and printed), and the name removed.
#[test]
fn a_killed_server_reaches_a_pending_call() {
    use std::io::BufRead;
    let n = name("killed");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_process", "--ignored", "--nocapture"])
        .env("SHM_SERVICE_ASYNC_PEER", &n)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("READY") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server ended");
    }
    let mut c = ServiceClient::open(&backend(), &n, &opts()).unwrap();
    let pid = child.id() as i32;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: our child's pid, not reaped yet.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let killed = Instant::now();
        let _ = child.wait();
        killed
    });
    let r = futures::executor::block_on(c.call_async(&1u64)).map(|_| ());
    let learned = Instant::now();
    let killed = killer.join().unwrap();
    assert!(
        matches!(r, Err(Error::PeerDead { pid: p }) if p == pid),
        "{r:?}"
    );
    let took = learned.saturating_duration_since(killed);
    println!("the server's death known to an awaited call after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(!std::path::Path::new(&format!("/dev/shm{n}")).exists());
}
