//! The async forms and the wait set (feature `async`): every future under tokio's
//! current-thread and multi-thread runtimes, `futures::executor::block_on`, smol and
//! async-std, many awaits at once, deadlines, a killed peer, and a wait set over 64 ends.
#![cfg(all(feature = "async", target_os = "linux"))]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::on_every_executor;
use shm_channel::pubsub::{
    Publisher, SubscribeOptions, Subscriber, TopicOptions, TypedPublisher, TypedSubscriber,
};
use shm_channel::{Client, Error, Options, Receiver, Sender, Server, WaitSet};

fn name(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/shmt-{}-{}-as-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn backend() -> shm_posix::Posix {
    shm_posix::Posix::new()
}

/// A stream each way through the futures: every message arrives, in order, whether the
/// future found it at once or slept for it (the peer thread pauses now and then), and the
/// end of the stream is `Closed`.
#[test]
fn stream_futures_on_every_executor() {
    on_every_executor(|exec| async move {
        let n = name("stream");
        let opts = Options::new(4, 64);
        let mut rx = Receiver::create(&backend(), &n, &opts).unwrap();
        let peer = std::thread::spawn({
            let (n, opts) = (n.clone(), opts.clone());
            move || {
                let mut tx = Sender::open(&backend(), &n, &opts).unwrap();
                for i in 0..200u64 {
                    if i % 20 == 0 {
                        std::thread::sleep(Duration::from_millis(3));
                    }
                    tx.send_value(&i).unwrap();
                }
                tx.finish().unwrap();
            }
        });
        for i in 0..200u64 {
            let v: u64 = rx.recv_async().await.unwrap().read_value().unwrap();
            assert_eq!(v, i, "{exec}");
        }
        assert!(
            matches!(rx.recv_async().await, Err(Error::Closed)),
            "{exec}"
        );
        peer.join().unwrap();

        // The other way: the sender's futures wait for room (4 slots, a slow receiver).
        let n = name("stream-tx");
        let mut tx = Sender::create(&backend(), &n, &opts).unwrap();
        let peer = std::thread::spawn({
            let (n, opts) = (n.clone(), opts.clone());
            move || {
                let mut rx = Receiver::open(&backend(), &n, &opts).unwrap();
                let mut got = Vec::new();
                loop {
                    match rx.recv() {
                        Ok(s) => got.push(s.read_value::<u64>().unwrap()),
                        Err(Error::Closed) => break got,
                        Err(e) => panic!("{e}"),
                    }
                    if got.len() % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        });
        tx.wait_for_peer(Some(Duration::from_secs(10))).unwrap();
        for i in 0..100u64 {
            if i % 2 == 0 {
                tx.send_async(&i.to_ne_bytes()).await.unwrap();
            } else {
                let mut loan = tx.loan_async().await.unwrap();
                loan.write_at(0, &i.to_ne_bytes()).unwrap();
                loan.send(8).unwrap();
            }
        }
        // Complete, without waiting here (finish blocks): the peer sees Closed.
        let _ = tx.finish_timeout(Duration::ZERO);
        drop(tx);
        assert_eq!(
            peer.join().unwrap(),
            (0..100).collect::<Vec<u64>>(),
            "{exec}"
        );
    });
}

/// Calls and requests through the futures: each response answers its own request.
#[test]
fn pair_futures_on_every_executor() {
    on_every_executor(|exec| async move {
        let n = name("pair");
        let opts = Options::new(1, 64);
        let mut server = Server::create(&backend(), &n, &opts).unwrap();
        let client = std::thread::spawn({
            let (n, opts) = (n.clone(), opts.clone());
            move || {
                let mut client = Client::open(&backend(), &n, &opts).unwrap();
                for i in 0..100u64 {
                    if i % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(3));
                    }
                    let r: u64 = client.call(&i).unwrap().read_value().unwrap();
                    assert_eq!(r, i * 3);
                }
            }
        });
        for _ in 0..100 {
            let req = server.recv_async().await.unwrap();
            let v: u64 = req.read_value().unwrap();
            drop(req);
            server.reply_value(&(v * 3)).unwrap();
        }
        assert!(
            matches!(server.recv_async().await, Err(Error::Closed)),
            "{exec}"
        );
        client.join().unwrap();

        let n = name("pair-client");
        let mut client = Client::create(&backend(), &n, &opts).unwrap();
        let server = std::thread::spawn({
            let (n, opts) = (n.clone(), opts.clone());
            move || {
                let mut server = Server::open(&backend(), &n, &opts).unwrap();
                let mut answered = 0;
                loop {
                    let v: u64 = match server.recv() {
                        Ok(req) => req.read_value().unwrap(),
                        Err(Error::Closed) => break answered,
                        Err(e) => panic!("{e}"),
                    };
                    if v % 10 == 0 {
                        std::thread::sleep(Duration::from_millis(3));
                    }
                    server.reply_value(&(v + 1)).unwrap();
                    answered += 1;
                }
            }
        });
        client.wait_for_peer(Some(Duration::from_secs(10))).unwrap();
        for i in 0..100u64 {
            let r: u64 = client.call_async(&i).await.unwrap().read_value().unwrap();
            assert_eq!(r, i + 1, "{exec}");
        }
        drop(client);
        assert_eq!(server.join().unwrap(), 100, "{exec}");
    });
}

/// Deadline forms: each fails with TimedOut near its deadline (not before, not much after),
/// and leaves the end usable.
#[test]
fn deadlines_time_out_and_leave_the_end_usable() {
    on_every_executor(|exec| async move {
        let opts = Options::new(1, 64);
        let n = name("deadline");
        let mut rx = Receiver::create(&backend(), &n, &opts).unwrap();
        let mut tx = Sender::open(&backend(), &n, &opts).unwrap();
        let t0 = Instant::now();
        let err = rx
            .recv_deadline_async(t0 + Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(50), "{exec}: {took:?}");
        assert!(took < Duration::from_secs(3), "{exec}: {took:?}");
        let t0 = Instant::now();
        let err = rx
            .recv_timeout_async(Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
        assert!(t0.elapsed() >= Duration::from_millis(30), "{exec}");

        tx.send(b"x").unwrap(); // the one slot is full now
        let err = tx
            .send_deadline_async(b"y", Instant::now() + Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
        let err = tx
            .loan_deadline_async(Instant::now() + Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
        assert_eq!(rx.recv_async().await.unwrap().to_vec(), b"x", "{exec}");
        tx.send_async(b"z").await.unwrap();
        assert_eq!(rx.recv_async().await.unwrap().to_vec(), b"z", "{exec}");
        let err = tx.send_async(&[0u8; 65]).await.unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{exec}: {err}");

        // A call whose server does not answer in time; its late answer is dropped by the
        // next call, which gets its own.
        let n = name("deadline-pair");
        let mut server = Server::create(&backend(), &n, &opts).unwrap();
        let mut client = Client::open(&backend(), &n, &opts).unwrap();
        let err = client
            .call_deadline_async(&1u32, Instant::now() + Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
        let err = server
            .recv_deadline_async(Instant::now())
            .await
            .map(|r| r.read_value::<u32>().unwrap());
        assert_eq!(err.unwrap(), 1, "{exec}: the request is there");
        server.reply_value(&10u32).unwrap();
        let (answer, ()) = futures::join!(
            async { client.call_async(&2u32).await.unwrap().read_value::<u32>() },
            async {
                let v: u32 = server.recv_async().await.unwrap().read_value().unwrap();
                server.reply_value(&(v * 10)).unwrap();
            }
        );
        assert_eq!(answer.unwrap(), 20, "{exec}");
        let err = server
            .recv_deadline_async(Instant::now() + Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
    });
}

/// Many receivers awaited at once in one task set: every one gets its own message, and no
/// registration is left when they are done.
#[test]
fn hundreds_of_receivers_await_at_once() {
    const ENDS: usize = 300;
    let opts = Options::new(1, 16);
    let names: Vec<String> = (0..ENDS).map(|_| name("many")).collect();
    let rxs: Vec<Receiver> = names
        .iter()
        .map(|n| Receiver::create(&backend(), n, &opts).unwrap())
        .collect();
    let mut txs: Vec<Sender> = names
        .iter()
        .map(|n| Sender::open(&backend(), n, &opts).unwrap())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tasks: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(i, mut rx)| {
            rt.spawn(async move {
                let v: u64 = rx.recv_async().await.unwrap().read_value().unwrap();
                assert_eq!(v, i as u64 * 7);
                rx
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    for (i, tx) in txs.iter_mut().enumerate().rev() {
        tx.send_value(&(i as u64 * 7)).unwrap();
    }
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// A wait set over 64 receivers: the ends with a message are reported, and only those;
/// ends with their own deadlines report TimedOut at them; the set's own deadline is an error;
/// a dead peer is reported for its end.
#[test]
fn wait_set_over_64_ends_with_deadlines() {
    let opts = Options::new(2, 16);
    let names: Vec<String> = (0..64).map(|_| name("set")).collect();
    let mut rxs: Vec<Receiver> = names
        .iter()
        .map(|n| Receiver::create(&backend(), n, &opts).unwrap())
        .collect();
    let mut txs: Vec<Sender> = names
        .iter()
        .map(|n| Sender::open(&backend(), n, &opts).unwrap())
        .collect();

    // Nothing sent: the set's deadline passes.
    let t0 = Instant::now();
    let mut set = WaitSet::new();
    for rx in rxs.iter_mut() {
        set.add(rx);
    }
    let err = set.wait(Some(Duration::from_millis(50))).unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    assert!(t0.elapsed() >= Duration::from_millis(50));

    // Three messages, sent while the set sleeps.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        for i in [3, 17, 40] {
            txs[i].send_value(&(i as u32)).unwrap();
        }
        txs
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let mut set = WaitSet::new();
        for rx in rxs.iter_mut() {
            set.add(rx);
        }
        for e in set.wait(Some(Duration::from_secs(10))).unwrap() {
            e.result.unwrap();
            let v: u32 = rxs[e.index].try_recv().unwrap().read_value().unwrap();
            assert_eq!(v as usize, e.index);
            seen.push(e.index);
        }
    }
    seen.sort();
    assert_eq!(seen, [3, 17, 40]);
    let mut txs = sender.join().unwrap();

    // Per-end deadlines: every even end has one, 60 ms away; the odd ones have none.
    let t0 = Instant::now();
    let at = t0 + Duration::from_millis(60);
    let mut set = WaitSet::new();
    for (i, rx) in rxs.iter_mut().enumerate() {
        if i % 2 == 0 {
            set.add_deadline(rx, at);
        } else {
            set.add(rx);
        }
    }
    assert_eq!(set.len(), 64);
    let events = set.wait(Some(Duration::from_secs(10))).unwrap();
    assert!(Instant::now() >= at);
    assert_eq!(events.len(), 32, "{events:?}");
    for e in &events {
        assert_eq!(e.index % 2, 0);
        assert!(matches!(e.result, Err(Error::TimedOut { .. })), "{e:?}");
    }

    // A closed end and a full sender end are reported too, in one set.
    let mut closing = txs.remove(10); // rxs[10]'s sender ends its stream
    let _ = closing.finish_timeout(Duration::ZERO);
    drop(closing);
    let mut set = WaitSet::new();
    for rx in rxs.iter_mut() {
        set.add(rx);
    }
    let events = set.wait(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].index, 10);
    assert!(matches!(events[0].result, Err(Error::Closed)));
}

/// A wait set over the other kinds of end: a topic's subscribers (back-pressure and lossy), a
/// service's server and a stream's receiver in one set, and a service's client. Each wakes the
/// set when its event comes, and only its own index is reported; a lossy subscriber overtaken while in the set is
/// told how many it missed by the sample it takes next, and the set's look holds no slot the
/// publisher needs (it publishes on, never waiting for it).
#[test]
fn wait_set_over_subscribers_and_a_service() {
    use shm_channel::pubsub::Policy;
    use shm_channel::service::{Service, ServiceClient, ServiceOptions};
    let b = backend();
    let (topic, lossy, svc, stream) = (
        name("ws-topic"),
        name("ws-lossy"),
        name("ws-svc"),
        name("ws-stream"),
    );
    let mut publisher = Publisher::create(&b, &topic, &TopicOptions::new(4, 64)).unwrap();
    let mut sub = Subscriber::open(&b, &topic, &SubscribeOptions::new()).unwrap();
    let mut lossy_pub =
        Publisher::create(&b, &lossy, &TopicOptions::new(4, 64).policy(Policy::Lossy)).unwrap();
    let mut lossy_sub = Subscriber::open(&b, &lossy, &SubscribeOptions::new()).unwrap();
    let svc_opts = ServiceOptions::new(64).clients(4);
    let mut service = Service::create(&b, &svc, &svc_opts).unwrap();
    let opts = Options::new(4, 64);
    let mut rx = Receiver::create(&b, &stream, &opts).unwrap();
    let mut tx = Sender::open(&b, &stream, &opts).unwrap();

    macro_rules! set {
        () => {{
            let mut set = WaitSet::new();
            set.add(&mut sub);
            set.add(&mut lossy_sub);
            set.add(&mut service);
            set.add(&mut rx);
            set
        }};
    }
    // Nothing yet: the set's deadline passes.
    let err = set!().wait(Some(Duration::from_millis(50))).unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");

    // A message published while the set sleeps wakes it for the subscriber only.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        publisher.publish(b"first").unwrap();
        publisher
    });
    let events = set!().wait(Some(Duration::from_secs(10))).unwrap();
    let mut publisher = t.join().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].index, 0);
    events[0].result.as_ref().unwrap();
    assert_eq!(sub.try_recv().unwrap().to_vec(), b"first");

    // A call from a client thread while the set sleeps wakes it for the service.
    let caller = std::thread::spawn({
        let (svc, svc_opts) = (svc.clone(), svc_opts.clone());
        move || {
            let mut c = ServiceClient::open(&backend(), &svc, &svc_opts).unwrap();
            std::thread::sleep(Duration::from_millis(30));
            c.call(b"ping").unwrap().to_vec()
        }
    });
    let events = set!().wait(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].index, 2);
    events[0].result.as_ref().unwrap();
    let request = service.try_recv().unwrap();
    assert_eq!(request.to_vec(), b"ping");
    request.reply(b"pong").unwrap();
    assert_eq!(caller.join().unwrap(), b"pong");

    // A service client: ready at once with no call in flight; with a call that timed out,
    // not ready until its answer comes, then ready (and its next call goes through).
    let mut late = ServiceClient::open(&b, &svc, &svc_opts).unwrap();
    let events = {
        let mut set = WaitSet::new();
        set.add(&mut late);
        set.wait(Some(Duration::from_secs(10))).unwrap()
    };
    assert_eq!(events.len(), 1, "{events:?}");
    let err = late
        .call_timeout(b"late", Duration::from_millis(1))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    let err = {
        let mut set = WaitSet::new();
        set.add(&mut late);
        set.wait(Some(Duration::from_millis(30))).unwrap_err()
    };
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");
    let request = service.try_recv().unwrap();
    assert_eq!(request.to_vec(), b"late");
    request.reply(b"at last").unwrap();
    let events = {
        let mut set = WaitSet::new();
        set.add(&mut late);
        set.wait(Some(Duration::from_secs(10))).unwrap()
    };
    assert_eq!(events.len(), 1, "{events:?}");
    events[0].result.as_ref().unwrap();
    let caller = std::thread::spawn(move || late.call(b"again").unwrap().to_vec());
    let request = service.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(request.to_vec(), b"again");
    request.reply(b"fresh").unwrap();
    assert_eq!(caller.join().unwrap(), b"fresh");

    // Lossy: ten messages into four slots overtake the subscriber; the set reports it, and
    // the publisher goes on past the slot the set looked at without waiting for it.
    for i in 0..10u8 {
        lossy_pub.publish(&[i]).unwrap();
    }
    let events = set!().wait(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].index, 1);
    for i in 10..20u8 {
        lossy_pub
            .publish_timeout(&[i], Duration::from_secs(5))
            .expect("the set's look held a slot");
    }
    let s = lossy_sub.try_recv().unwrap();
    let seq = s.sequence();
    assert!(seq >= 16, "the oldest still there, got {seq}");
    assert_eq!(
        s.missed(),
        u64::from(seq),
        "every message before it was missed"
    );
    assert_eq!(s.to_vec(), [seq as u8]);
    drop(s);

    // Several at once, in index order: the stream and the topic; then the topic's end.
    tx.send(b"stream").unwrap();
    publisher.publish(b"second").unwrap();
    // Closed as complete; the wait for "second" to be received is cut short.
    let _ = publisher.finish_timeout(Duration::ZERO);
    let events = set!().wait(Some(Duration::from_secs(10))).unwrap();
    let indices: Vec<usize> = events.iter().map(|e| e.index).collect();
    assert_eq!(indices, [0, 1, 3], "{events:?}");
    assert_eq!(sub.try_recv().unwrap().to_vec(), b"second");
    let events = set!().wait(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(events[0].index, 0);
    assert!(matches!(events[0].result, Err(Error::Closed)), "{events:?}");
}

/// Not a test on its own: the peer process of `a_killed_peer_reaches_pending_futures`, run
/// by it with `SHM_ASYNC_PEER=role:name`. It opens its end and sleeps until killed.
#[test]
#[ignore = "run by a_killed_peer_reaches_pending_futures as its peer process"]
fn peer_process() {
    let Ok(spec) = std::env::var("SHM_ASYNC_PEER") else {
        return;
    };
    let (role, n) = spec.split_once(':').unwrap();
    let opts = Options::new(1, 64);
    let b = backend();
    let _end: Box<dyn std::any::Any> = match role {
        "sender" => Box::new(Sender::open(&b, n, &opts).unwrap()),
        "server" => Box::new(Server::open(&b, n, &opts).unwrap()),
        "publisher" => Box::new(Publisher::create(&b, n, &TopicOptions::new(4, 64)).unwrap()),
        // A server that never answers.
        "service" => {
            Box::new(shm_channel::service::Service::create(&b, n, &service_options()).unwrap())
        }
        other => panic!("role {other}"),
    };
    std::thread::sleep(Duration::from_secs(60));
}

fn service_options() -> shm_channel::service::ServiceOptions {
    shm_channel::service::ServiceOptions::new(64).clients(4)
}

struct Killed(std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_peer(role: &str, n: &str) -> Killed {
    Killed(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "peer_process", "--ignored", "--nocapture"])
            .env("SHM_ASYNC_PEER", format!("{role}:{n}"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// A wait set learns of a peer's death through the other kinds of end too: a subscriber whose
/// publisher process is killed, and a service client with a call in flight whose server process
/// is killed, each get `PeerDead` as their event; a quiet stream beside them (its peer alive)
/// gets none.
#[test]
fn a_killed_peer_reaches_a_wait_set_of_subscribers_and_service_clients() {
    use shm_channel::service::ServiceClient;
    let b = backend();
    let (topic, svc, stream) = (name("ws-dead-topic"), name("ws-dead-svc"), name("ws-quiet"));
    let opts = Options::new(4, 64);
    let mut quiet = Receiver::create(&b, &stream, &opts).unwrap();
    let _quiet_tx = Sender::open(&b, &stream, &opts).unwrap();
    let publisher = spawn_peer("publisher", &topic);
    let server = spawn_peer("service", &svc);
    let sub_opts = SubscribeOptions::new().open_timeout(Duration::from_secs(20));
    let mut sub = Subscriber::open(&b, &topic, &sub_opts).unwrap();
    // A service's name is there once its server made it.
    let since = Instant::now();
    let mut client = loop {
        match ServiceClient::open(&b, &svc, &service_options()) {
            Ok(c) => break c,
            Err(e) if since.elapsed() > Duration::from_secs(20) => panic!("{e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let err = client
        .call_timeout(b"never answered", Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, Error::TimedOut { .. }), "{err}");

    let kill_soon = |mut peer: Killed| {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let at = Instant::now();
            peer.0.kill().unwrap();
            (peer, at)
        })
    };
    let check = |set: WaitSet<'_>, killer: std::thread::JoinHandle<(Killed, Instant)>, what| {
        let mut set = set;
        let events = set.wait(Some(Duration::from_secs(10))).unwrap();
        let woke = Instant::now();
        let (_peer, killed) = killer.join().unwrap();
        println!(
            "PeerDead after the kill: {what} in a wait set {:?}",
            woke - killed
        );
        assert_eq!(events.len(), 1, "{what}: {events:?}");
        assert_eq!(events[0].index, 1, "{what}");
        assert!(
            matches!(events[0].result, Err(Error::PeerDead { .. })),
            "{what}: {events:?}"
        );
        assert!(woke - killed < Duration::from_secs(1), "{what}");
    };

    let killer = kill_soon(publisher);
    let mut set = WaitSet::new();
    set.add(&mut quiet);
    set.add(&mut sub);
    check(set, killer, "subscriber");

    let killer = kill_soon(server);
    let mut set = WaitSet::new();
    set.add(&mut quiet);
    set.add(&mut client);
    check(set, killer, "service client");
}

/// A topic's subscribers await under every executor: two subscribers (bytes and typed) get every
/// message in order, whether it was there or they slept for it, then `Closed`; a deadline
/// times out and leaves the subscriber usable.
#[test]
fn subscriber_futures_on_every_executor() {
    on_every_executor(|exec| async move {
        let n = name("topic");
        let mut publisher =
            TypedPublisher::<u64>::create(&backend(), &n, &TopicOptions::new(4, 8)).unwrap();
        let mut a = TypedSubscriber::<u64>::open(&backend(), &n, &SubscribeOptions::new()).unwrap();
        let mut b = TypedSubscriber::<u64>::open(&backend(), &n, &SubscribeOptions::new()).unwrap();
        let t0 = Instant::now();
        let r = a
            .inner()
            .recv_timeout_async(Duration::from_millis(30))
            .await
            .map(|_| ());
        assert!(matches!(r, Err(Error::TimedOut { .. })), "{exec}: {r:?}");
        assert!(t0.elapsed() >= Duration::from_millis(30), "{exec}");
        let peer = std::thread::spawn(move || {
            for i in 0..100u64 {
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(3));
                }
                publisher.publish(&i).unwrap();
            }
            // Complete: each subscriber gets Closed after the last (finish waits for them).
            publisher.inner().finish().unwrap();
        });
        for i in 0..100u64 {
            let s = a.inner().recv_async().await.unwrap();
            let mut buf = [0u8; 8];
            s.copy_to(&mut buf).unwrap();
            assert_eq!(u64::from_ne_bytes(buf), i, "{exec}");
            drop(s);
            assert_eq!(b.recv_async().await.unwrap(), i, "{exec}");
        }
        assert!(
            matches!(a.inner().recv_async().await, Err(Error::Closed)),
            "{exec}"
        );
        assert!(matches!(b.recv_async().await, Err(Error::Closed)), "{exec}");
        peer.join().unwrap();
    });
}

/// A topic's publisher process killed while a subscriber's future waits: `PeerDead`, well
/// within a second (the 100 ms asserted loosely, measured and printed).
#[test]
fn a_killed_publisher_reaches_a_pending_subscriber() {
    let n = name("dead-topic");
    let mut publisher = spawn_peer("publisher", &n);
    let opts = SubscribeOptions::new().open_timeout(Duration::from_secs(20));
    let mut sub = Subscriber::open(&backend(), &n, &opts).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let took = rt.block_on(async {
        let pending = tokio::spawn(async move { sub.recv_async().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let killed = Instant::now();
        publisher.0.kill().unwrap();
        let r = pending.await.unwrap();
        assert!(matches!(r, Err(Error::PeerDead { .. })), "{r:?}");
        killed.elapsed()
    });
    println!("PeerDead after the publisher's kill: recv_async {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(
        !std::path::Path::new(&format!("/dev/shm{n}")).exists(),
        "the subscriber that learned of the death removed the name"
    );
}

/// A peer process killed while a receive, a call and a wait set wait on it: each learns
/// PeerDead well within a second (the reactor checks peers every 40 ms; the issue asks for
/// 100 ms, which this asserts loosely on a busy machine and prints as measured).
#[test]
fn a_killed_peer_reaches_pending_futures() {
    let opts = Options::new(1, 64);
    let b = backend();
    let (n_rx, n_pair, n_quiet) = (name("dead-rx"), name("dead-pair"), name("dead-quiet"));
    let mut rx = Receiver::create(&b, &n_rx, &opts).unwrap();
    let mut client = Client::create(&b, &n_pair, &opts).unwrap();
    let mut quiet = Receiver::create(&b, &n_quiet, &opts).unwrap();
    let mut sender = spawn_peer("sender", &n_rx);
    let mut server = spawn_peer("server", &n_pair);
    let _quiet_sender = Sender::open(&b, &n_quiet, &opts).unwrap();
    rx.wait_for_peer(Some(Duration::from_secs(20))).unwrap();
    client.wait_for_peer(Some(Duration::from_secs(20))).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (recv_took, call_took) = rt.block_on(async {
        let recv = tokio::spawn(async move {
            let err = rx.recv_async().await.unwrap_err();
            (err, Instant::now())
        });
        let call = tokio::spawn(async move {
            let err = client.call_async(&1u64).await.unwrap_err();
            (err, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let killed = Instant::now();
        sender.0.kill().unwrap();
        server.0.kill().unwrap();
        let (e1, t1) = recv.await.unwrap();
        let (e2, t2) = call.await.unwrap();
        assert!(matches!(e1, Error::PeerDead { .. }), "{e1}");
        assert!(matches!(e2, Error::PeerDead { .. }), "{e2}");
        (t1 - killed, t2 - killed)
    });
    println!("PeerDead after the kill: recv_async {recv_took:?}, call_async {call_took:?}");
    assert!(recv_took < Duration::from_secs(1), "{recv_took:?}");
    assert!(call_took < Duration::from_secs(1), "{call_took:?}");

    // A wait set: the end whose peer dies says so, the quiet one (peer alive) does not.
    let n = name("dead-set");
    let mut rx = Receiver::create(&b, &n, &opts).unwrap();
    let mut peer = spawn_peer("sender", &n);
    rx.wait_for_peer(Some(Duration::from_secs(20))).unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let at = Instant::now();
        peer.0.kill().unwrap();
        (peer, at)
    });
    let mut set = WaitSet::new();
    set.add(&mut quiet);
    set.add(&mut rx);
    let events = set.wait(Some(Duration::from_secs(10))).unwrap();
    let woke = Instant::now();
    let (_peer, killed) = killer.join().unwrap();
    println!("PeerDead after the kill: wait set {:?}", woke - killed);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].index, 1);
    assert!(
        matches!(events[0].result, Err(Error::PeerDead { .. })),
        "{events:?}"
    );
    assert!(woke - killed < Duration::from_secs(1));
}

/// Runs the example `name` (building it first when this test was built alone) and returns
/// its output, checked for success.
fn run_example(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let example = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    if !example.exists() {
        // `cargo test --test async_waits` alone builds no examples: build it.
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "shm-channel",
                "--features",
                "async",
                "--example",
                name,
            ])
            .args(if cfg!(debug_assertions) {
                &[][..]
            } else {
                &["--release"][..]
            })
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = std::process::Command::new(&example).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{stdout}");
    stdout
}

/// The example `async_stream` runs: a tokio producer process and a tokio consumer process,
/// 100 000 messages checked.
#[test]
fn the_async_stream_example_runs() {
    let out = run_example("async_stream");
    assert!(out.contains("received 100000 messages"), "{out}");
}

/// The example `async_service` runs: one tokio server process, four client processes,
/// 40 000 calls checked.
#[test]
fn the_async_service_example_runs() {
    let out = run_example("async_service");
    assert!(
        out.contains("answered 40000 calls from 4 client processes"),
        "{out}"
    );
}

/// `wait_for_peer_async` on each kind of end: ready once the peer joins (at once for an
/// opener), TimedOut at its deadline when none comes.
#[test]
fn waiting_for_a_peer_asynchronously() {
    on_every_executor(|exec| async move {
        let opts = Options::new(1, 16);
        let n = name("peer");
        let rx = Receiver::create(&backend(), &n, &opts).unwrap();
        let opener = std::thread::spawn({
            let (n, opts) = (n.clone(), opts.clone());
            move || {
                std::thread::sleep(Duration::from_millis(30));
                let tx = Sender::open(&backend(), &n, &opts).unwrap();
                futures::executor::block_on(tx.wait_for_peer_async()).unwrap();
                tx
            }
        });
        assert_eq!(rx.peer_pid(), None, "{exec}");
        rx.wait_for_peer_async().await.unwrap();
        assert_eq!(rx.peer_pid(), Some(std::process::id() as i32), "{exec}");
        drop(opener.join().unwrap());

        let n = name("peer-none");
        let client = Client::create(&backend(), &n, &opts).unwrap();
        let t0 = Instant::now();
        let err = client
            .wait_for_peer_deadline_async(t0 + Duration::from_millis(40))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
        assert!(t0.elapsed() >= Duration::from_millis(40), "{exec}");
        let server = Server::open(&backend(), &n, &opts).unwrap();
        client.wait_for_peer_async().await.unwrap();
        server.wait_for_peer_async().await.unwrap();
        let tx_end = Sender::create(&backend(), &name("peer-tx"), &opts).unwrap();
        let err = tx_end
            .wait_for_peer_deadline_async(Instant::now() + Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{exec}: {err}");
    });
}
