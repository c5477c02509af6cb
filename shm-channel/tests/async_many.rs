//! 10 000 awaits at once in one process, on the reactor's words (feature `async`): every one
//! completes with its own value, the reactor makes one waiter thread (one per 127 words with
//! the fallback engine), and nothing stays registered. Also prints what a wait and a wake cost.
#![cfg(all(feature = "async", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::any::Any;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use shm_core::reactor::{self, Waiter, Woke};
use shm_core::wait::{Signal, WaitStrategy};

const N: usize = 10_000;

/// Awaits word `i` (of pairs value, sleepers) holding `want`.
async fn await_word(words: Arc<Vec<AtomicU32>>, i: usize, want: u32) -> u32 {
    let keep: Arc<dyn Any + Send + Sync> = words.clone();
    let signal = Signal::new(&words[2 * i], &words[2 * i + 1], WaitStrategy::Block);
    // SAFETY: the words live in the Vec that `keep` holds.
    let mut waiter = unsafe { Waiter::new(&signal, keep, None, None) };
    let woke = poll_fn(|cx| waiter.poll(cx, || Ok::<_, ()>(signal.load() == want))).await;
    assert_eq!(woke, Ok(Woke::Ready));
    signal.load()
}

#[test]
fn ten_thousand_awaits_at_once() {
    let words: Arc<Vec<AtomicU32>> = Arc::new((0..2 * N).map(|_| AtomicU32::new(0)).collect());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..N)
        .map(|i| rt.spawn(await_word(words.clone(), i, i as u32 + 1)))
        .collect();
    // Every task registered before the words change: its sleepers word says it will sleep, and
    // the reactor counts it (a task marks its word a moment before the reactor has it).
    let all_waiting = || {
        (0..N).all(|i| words[2 * i + 1].load(std::sync::atomic::Ordering::SeqCst) == 1)
            && reactor::registered() == N
    };
    while !all_waiting() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "tasks did not all register"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let registered = t0.elapsed();
    assert_eq!(reactor::registered(), N);
    let threads = reactor::threads();
    let expected = match reactor::engine() {
        // The waiter; no watcher (no watch asked).
        reactor::Engine::Uring => 1,
        _ => N.div_ceil(reactor::WORDS_PER_THREAD),
    };
    assert_eq!(threads, expected, "{:?}", reactor::engine());
    let t1 = Instant::now();
    for i in (0..N).rev() {
        Signal::new(&words[2 * i], &words[2 * i + 1], WaitStrategy::Block).store(i as u32 + 1);
    }
    let got = rt.block_on(async {
        let mut got = Vec::with_capacity(N);
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got
    });
    let woken = t1.elapsed();
    assert!(got.iter().enumerate().all(|(i, &v)| v == i as u32 + 1));
    assert_eq!(reactor::registered(), 0);
    println!(
        "{N} awaits: registered in {registered:?} ({:?} each), woken in {woken:?} ({:?} each), {threads} reactor threads ({:?})",
        registered / N as u32,
        woken / N as u32,
        reactor::engine()
    );
}

/// Not a check: prints what a round trip costs through `call_async` (a block_on client, a
/// blocking server thread) beside the blocking `call`, with the server answering at once and
/// after a 100 µs pause (so that the future registers and is woken each time).
/// `cargo test -p shm-channel --features async --release --test async_many -- --ignored reactor_costs --nocapture`
#[test]
#[ignore = "a measurement: run it by name"]
fn reactor_costs() {
    use shm_channel::{Client, Options, Server};
    for pause in [Duration::ZERO, Duration::from_micros(100)] {
        for asynchronous in [false, true] {
            let n = format!("/shmt-{}-costs", std::process::id());
            let opts = Options::new(1, 16);
            let mut client = Client::create(&shm_posix::Posix::new(), &n, &opts).unwrap();
            let server = std::thread::spawn({
                let (n, opts) = (n.clone(), opts.clone());
                move || {
                    let mut s = Server::open(&shm_posix::Posix::new(), &n, &opts).unwrap();
                    while let Ok(v) = s.recv().and_then(|r| r.read_value::<u64>()) {
                        if !pause.is_zero() {
                            let t = Instant::now();
                            while t.elapsed() < pause {}
                        }
                        s.reply_value(&v).unwrap();
                    }
                }
            });
            client.wait_for_peer(Some(Duration::from_secs(10))).unwrap();
            let calls = if pause.is_zero() { 20_000 } else { 2_000 };
            let t0 = Instant::now();
            for i in 0..calls as u64 {
                let v: u64 = if asynchronous {
                    futures::executor::block_on(client.call_async(&i))
                        .unwrap()
                        .read_value()
                        .unwrap()
                } else {
                    client.call(&i).unwrap().read_value().unwrap()
                };
                assert_eq!(v, i);
            }
            let each = t0.elapsed() / calls;
            drop(client);
            server.join().unwrap();
            println!(
                "server pause {pause:?}: {} call {each:?} per round trip",
                if asynchronous { "async" } else { "blocking" }
            );
        }
    }
}
