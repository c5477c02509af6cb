//! A client rings the service's bell only when the server announced that it waits
//! (`ring_if_waited`): a request put while the server goes to sleep must still wake it. Here
//! every wait of the server sleeps (the block strategy) or spins then sleeps (hybrid), with
//! four clients calling at once, pausing now and then so that the server falls asleep between
//! requests: a lost wake-up is a call that times out.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shm_channel::service::{Service, ServiceClient, ServiceOptions};
use shm_core::wait::WaitStrategy;

const CLIENTS: u64 = 4;
const CALLS: u64 = 3000;

fn name(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/shmt-{}-{}-svw-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn every_call_answered(strategy: WaitStrategy, test: &str) {
    let backend = shm_posix::Posix::new();
    let n = name(test);
    let opts = ServiceOptions::new(16)
        .clients(CLIENTS as u32)
        .wait(strategy);
    let mut service = Service::create(&backend, &n, &opts).unwrap();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (n, opts) = (n.clone(), opts.clone());
            std::thread::spawn(move || {
                let mut c = ServiceClient::open(&shm_posix::Posix::new(), &n, &opts).unwrap();
                for i in 0..CALLS {
                    if i % 97 == k {
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    let v = k << 32 | i;
                    let back: u64 = c
                        .call_timeout(&v, Duration::from_secs(10))
                        .unwrap_or_else(|e| panic!("client {k}, call {i}: {e}"))
                        .read_value()
                        .unwrap();
                    assert_eq!(back, !v, "client {k}, call {i}");
                }
            })
        })
        .collect();
    for served in 0..CLIENTS * CALLS {
        let request = service
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("request {served}: {e}"));
        let v: u64 = request.data().read_value().unwrap();
        request.reply_value(&!v).unwrap();
    }
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn a_sleeping_server_wakes_for_every_request() {
    every_call_answered(WaitStrategy::Block, "block");
}

#[test]
fn a_hybrid_server_wakes_for_every_request() {
    every_call_answered(WaitStrategy::Hybrid, "hybrid");
}
