//! Futures dropped at every await point, at random: no message lost, duplicated or stuck,
//! no loan leaked, no registration left behind (feature `async`). One test in this binary,
//! so that the count of registrations is this test's alone.
#![cfg(all(feature = "async", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use shm_channel::pubsub::{Publisher, SubscribeOptions, Subscriber, TopicOptions};
use shm_channel::{Client, Error, Options, Receiver, Sender, Server, WaitStrategy};

fn name(test: &str) -> String {
    format!("/shmt-{}-ac-{test}", std::process::id())
}

/// xorshift.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Polls `fut` once (dropping it if it was pending: `None`), or awaits it for a random while
/// up to 2 ms (`None` if that passed), or to its end; the choice is random.
async fn maybe_cancel<F: Future>(fut: F, rng: &mut Rng) -> Option<F::Output> {
    match rng.next() % 3 {
        0 => {
            let mut fut = pin!(fut);
            std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
                Poll::Ready(v) => Poll::Ready(Some(v)),
                Poll::Pending => Poll::Ready(None),
            })
            .await
        }
        1 => tokio::time::timeout(Duration::from_micros(rng.next() % 2000), fut)
            .await
            .ok(),
        _ => Some(fut.await),
    }
}

#[test]
fn random_cancellations_lose_nothing() {
    const N: u64 = 3000;
    let backend = shm_posix::Posix::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut cancelled_tx, mut cancelled_rx) = (0, 0);
    // Hybrid ends spin before they register (a poll-once is seldom pending); block ends do
    // not, and are cancelled often.
    for (pass, strategy) in [WaitStrategy::Hybrid, WaitStrategy::Block]
        .into_iter()
        .enumerate()
    {
        let opts = Options::new(2, 16).wait(strategy);
        let n = format!("{}-{pass}", name("stream"));
        let rx = Receiver::create(&backend, &n, &opts).unwrap();
        let tx = Sender::open(&backend, &n, &opts).unwrap();
        rt.block_on(async {
            let sender = tokio::spawn(async move {
                let (mut tx, mut rng, mut cancelled) = (tx, Rng(0x9e37_79b9), 0);
                for i in 0..N {
                    loop {
                        if rng.next() % 5 == 0 {
                            // A loan taken and dropped unsent sends nothing.
                            if let Some(loan) = maybe_cancel(tx.loan_async(), &mut rng).await {
                                let mut loan = loan.unwrap();
                                loan.write_at(0, &u64::MAX.to_ne_bytes()).unwrap();
                                let _unsent = loan; // dropped here, unsent
                            }
                        }
                        match maybe_cancel(tx.send_async(&i.to_ne_bytes()), &mut rng).await {
                            Some(r) => {
                                r.unwrap();
                                break;
                            }
                            None => cancelled += 1,
                        }
                    }
                }
                // Complete, without waiting here (finish blocks): the receiver sees Closed.
                let _ = tx.finish_timeout(Duration::ZERO);
                cancelled
            });
            let receiver = tokio::spawn(async move {
                let (mut rx, mut rng, mut got, mut cancelled) =
                    (rx, Rng(0x1234_5678), Vec::new(), 0);
                loop {
                    match maybe_cancel(rx.recv_async(), &mut rng).await {
                        Some(Ok(s)) => got.push(s.read_value::<u64>().unwrap()),
                        Some(Err(Error::Closed)) => break,
                        Some(Err(e)) => panic!("{e}"),
                        None => cancelled += 1,
                    }
                }
                (got, cancelled)
            });
            cancelled_tx += sender.await.unwrap();
            let (got, c) = receiver.await.unwrap();
            cancelled_rx += c;
            assert_eq!(
                got.len() as u64,
                N,
                "{strategy}: no message lost or duplicated"
            );
            assert!(
                got.iter().copied().eq(0..N),
                "{strategy}: in order, each once"
            );
        });
    }
    println!("stream: {cancelled_tx} sends and {cancelled_rx} receives cancelled");
    assert!(cancelled_tx > 0 && cancelled_rx > 0);

    // Calls: each response that arrives answers its own request, whatever was dropped before.
    let n = name("pair");
    let opts = Options::new(1, 16).wait(WaitStrategy::Block);
    let mut client = Client::create(&backend, &n, &opts).unwrap();
    let server = std::thread::spawn({
        let n = n.clone();
        move || {
            let mut server =
                Server::open(&shm_posix::Posix::new(), &n, &Options::new(1, 16)).unwrap();
            let mut answered = 0u64;
            loop {
                let v: u64 = match server.recv() {
                    Ok(r) => r.read_value().unwrap(),
                    Err(Error::Closed) => break answered,
                    Err(e) => panic!("{e}"),
                };
                if v % 7 == 0 {
                    std::thread::sleep(Duration::from_micros(500));
                }
                server.reply_value(&(v * 2)).unwrap();
                answered += 1;
            }
        }
    });
    client.wait_for_peer(Some(Duration::from_secs(10))).unwrap();
    let (mut done, mut cancelled) = (0u64, 0u64);
    rt.block_on(async {
        let mut rng = Rng(42);
        for i in 1..=1000u64 {
            match maybe_cancel(client.call_async(&i), &mut rng).await {
                Some(r) => {
                    assert_eq!(r.unwrap().read_value::<u64>().unwrap(), i * 2);
                    done += 1;
                }
                None => cancelled += 1,
            }
        }
    });
    drop(client);
    let answered = server.join().unwrap();
    println!("calls: {done} answered to the caller, {cancelled} cancelled, {answered} served");
    assert!(done > 0 && cancelled > 0);
    assert!(answered >= done && answered <= 1000);

    // A topic (back-pressure: nothing may be missed): each message once, in order, however
    // many receives were dropped, by two subscribers at once.
    let n = name("topic");
    let topic = TopicOptions::new(4, 16).wait(WaitStrategy::Block);
    let mut publisher = Publisher::create(&backend, &n, &topic).unwrap();
    let subs: Vec<Subscriber> = (0..2)
        .map(|_| {
            Subscriber::open(
                &backend,
                &n,
                &SubscribeOptions::new().wait(WaitStrategy::Block),
            )
            .unwrap()
        })
        .collect();
    const M: u64 = 2000;
    let publishing = std::thread::spawn(move || {
        for i in 0..M {
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            publisher.publish(&i.to_ne_bytes()).unwrap();
        }
        // Complete: finish returns once each subscriber has it all; they get Closed.
        publisher.finish().unwrap();
    });
    let results: Vec<(Vec<u64>, u64)> = rt.block_on(async {
        let tasks: Vec<_> = subs
            .into_iter()
            .enumerate()
            .map(|(k, mut sub)| {
                tokio::spawn(async move {
                    let (mut rng, mut got, mut cancelled) = (Rng(77 + k as u64), Vec::new(), 0);
                    loop {
                        match maybe_cancel(sub.recv_async(), &mut rng).await {
                            Some(Ok(s)) => {
                                let mut b = [0u8; 8];
                                s.copy_to(&mut b).unwrap();
                                got.push(u64::from_ne_bytes(b));
                            }
                            Some(Err(Error::Closed)) => break,
                            Some(Err(e)) => panic!("{e}"),
                            None => cancelled += 1,
                        }
                    }
                    (got, cancelled)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    publishing.join().unwrap();
    for (got, cancelled) in &results {
        println!(
            "topic: a subscriber got {} messages, {cancelled} receives cancelled",
            got.len()
        );
        assert!(got.iter().copied().eq(0..M), "each message once, in order");
        assert!(*cancelled > 0);
    }

    drop(rt);
    assert_eq!(
        shm_core::reactor::registered(),
        0,
        "no registration left behind"
    );
}
