//! shm-channel between real processes, on POSIX, System V and the file-backed third backend
//! (tests/src/file_backend.rs, written against shm-core's public API only).
//!
//! The peer is this test binary run again with `SHM_CHANNEL_PEER` set: its `process::peer` test then
//! plays the role named there and exits. Every test owns a unique name; a guard kills its peer
//! if the test fails, and the channel ends remove what they made as they drop.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::{DEATH_BOUND, begin, sysv_id};
use shm_channel::{Client, Error, Options, Receiver, Sender, Server};
use shm_core::{Access, Backend, Segment, SegmentName};
use shm_tests::peer_process::{Peer, Under, backend, peer_backend};
use shm_tests::{Cleanup, unique_name};

const PEER: &str = "SHM_CHANNEL_PEER";

/// A pattern that both sides compute: message `i` of length `len` is `PATTERN[i % 251..][..len]`.
fn pattern() -> Vec<u8> {
    (0..1024u32).map(|k| (k * 7 + k / 251) as u8).collect()
}

fn message(pattern: &[u8], i: u64, len: usize) -> &[u8] {
    &pattern[(i % 251) as usize..][..len]
}

/// xorshift64: the same lengths on both sides.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn opts() -> Options {
    Options::new(16, 512)
}

/// The peer's side. Without `SHM_CHANNEL_PEER` this test does nothing.
#[test]
fn peer() {
    let Ok(role) = std::env::var(PEER) else {
        return;
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let b = peer_backend();
    let name = var("CH_NAME");
    let count: u64 = var("CH_COUNT").parse().unwrap_or(0);
    let pat = pattern();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let say = |what: &str| println!("{what}");
    match role.as_str() {
        "send-random" => {
            let mut tx = Sender::open(&b, &name, &opts()).unwrap();
            for i in 0..count {
                let len = (rng.next() % 513) as usize;
                tx.send(message(&pat, i, len)).unwrap();
            }
            tx.finish().unwrap();
        }
        "recv-random" => {
            let mut rx = Receiver::open(&b, &name, &opts()).unwrap();
            for i in 0..count {
                let len = (rng.next() % 513) as usize;
                let s = rx.recv().unwrap();
                // SAFETY: the sender is this crate's, in the parent test process.
                let got = unsafe { s.as_slice() };
                assert_eq!(got, message(&pat, i, len), "message {i}");
            }
            assert!(matches!(rx.recv(), Err(Error::Closed)));
        }
        "send-then-hang" => {
            let mut tx = Sender::open(&b, &name, &opts()).unwrap();
            for i in 0..count {
                tx.send(message(&pat, i, 100)).unwrap();
            }
            let mut loan = tx.loan().unwrap();
            loan.write_at(0, &[0xee; 256]).unwrap(); // half of a message, never sent
            say("MID");
            std::thread::sleep(Duration::from_secs(60));
        }
        "recv-then-hang" => {
            let mut rx = Receiver::open(&b, &name, &opts()).unwrap();
            let _held = rx.recv().unwrap(); // in the middle of reading it
            say("MID");
            std::thread::sleep(Duration::from_secs(60));
        }
        "create-then-hang" => {
            let _tx = Sender::create(&b, &name, &opts()).unwrap();
            say("READY");
            std::thread::sleep(Duration::from_secs(60));
        }
        "scribble" => {
            // Map the segment raw before joining (the name goes away once joined), join as a
            // sender, send one message, then write garbage over the header and the ring.
            let sname = SegmentName::new(&name).unwrap();
            let raw = b.open(&sname, Access::ReadWrite).unwrap().map().unwrap();
            let mut tx = Sender::open(&b, &name, &opts()).unwrap();
            tx.send(b"before").unwrap();
            let mut junk = vec![0u8; raw.len()];
            for round in 0..500u64 {
                for byte in junk.iter_mut() {
                    *byte = rng.next() as u8;
                }
                let upto = if round % 2 == 0 { raw.len() } else { 1024 };
                raw.write_at(0, &junk[..upto]).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
            say("DONE");
            std::mem::forget(tx); // leave without closing: the receiver sees a dead peer
        }
        "serve-then-hang" => {
            // Answers `count` calls (the request's bytes reversed), takes one more request
            // and never answers it.
            let mut server = Server::open(&b, &name, &opts()).unwrap();
            for _ in 0..count {
                let req = server.recv().unwrap().to_vec();
                server
                    .reply(&req.iter().rev().copied().collect::<Vec<_>>())
                    .unwrap();
            }
            let _held = server.recv().unwrap();
            say("MID");
            std::thread::sleep(Duration::from_secs(60));
        }
        "call-then-hang" => {
            let mut client = Client::open(&b, &name, &opts()).unwrap();
            for i in 0..count {
                let len = (rng.next() % 513) as usize;
                let req = message(&pat, i, len);
                let back = client.call(req).unwrap().to_vec();
                assert_eq!(back, req.iter().rev().copied().collect::<Vec<_>>());
            }
            say("MID");
            let _ = client.call(b"never answered");
        }
        "scribble-pair" => {
            let sname = SegmentName::new(&name).unwrap();
            let raw = b.open(&sname, Access::ReadWrite).unwrap().map().unwrap();
            let client = Client::open(&b, &name, &opts()).unwrap();
            let mut junk = vec![0u8; raw.len()];
            for _ in 0..500u64 {
                for byte in junk.iter_mut() {
                    *byte = rng.next() as u8;
                }
                raw.write_at(0, &junk).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
            say("DONE");
            std::mem::forget(client);
        }
        "send-n-then-hang" => {
            let mut tx = Sender::open(&b, &name, &opts()).unwrap();
            for i in 0..count {
                tx.send(message(&pat, i, 10)).unwrap();
            }
            say("SENT");
            std::thread::sleep(Duration::from_secs(60));
        }
        "recv-open-then-hang" => {
            let _rx = Receiver::open(&b, &name, &opts()).unwrap();
            say("JOINED");
            std::thread::sleep(Duration::from_secs(60));
        }
        "recv-create-then-hang" => {
            let _rx = Receiver::create(&b, &name, &opts()).unwrap();
            say("READY");
            std::thread::sleep(Duration::from_secs(60));
        }
        "create-666-then-hang" => {
            let _tx = Sender::create(&b, &name, &opts().mode(0o666)).unwrap();
            say("READY");
            std::thread::sleep(Duration::from_secs(60));
        }
        "ns-send" => {
            // Opens a channel whose creator is in another pid namespace, sends, finishes.
            let o = opts().open_timeout(Duration::from_secs(10));
            let mut tx = Sender::open(&b, &name, &o).unwrap();
            for i in 0..count {
                tx.send(message(&pat, i, 100)).unwrap();
            }
            tx.finish().unwrap();
            say("OK");
        }
        "send-666" => {
            // Another user's sender: joins (it may not remove the name), sends, finishes.
            let mut tx = Sender::open(&b, &name, &opts().mode(0o666)).unwrap();
            say("JOINED");
            for i in 0..count {
                tx.send(message(&pat, i, 100)).unwrap();
            }
            tx.finish().unwrap();
            say("OK");
        }
        "reclaim-recv" => {
            // Another user's receiver, on a name whose dead creator it may not remove.
            let mut rx = Receiver::open_or_create(&b, &name, &opts().mode(0o666)).unwrap();
            say(if rx.is_creator() { "CREATOR" } else { "OPENER" });
            for i in 0..count {
                assert_eq!(rx.recv().unwrap().to_vec(), message(&pat, i, 100));
            }
            assert!(matches!(rx.recv(), Err(Error::Closed)));
            say("OK");
        }
        "reclaim-recv-600" => {
            // As reclaim-recv, asking for a channel no one else may reach.
            match Receiver::open_or_create(&b, &name, &opts().mode(0o600)) {
                Ok(rx) => say(if rx.is_creator() { "CREATOR" } else { "OPENER" }),
                Err(e) => say(&format!("REFUSED {e}")),
            }
        }
        other => panic!("unknown peer role {other}"),
    }
}

/// A peer of `role` on `u`'s backend, for the channel `name` and `count` messages.
fn peer_of(u: &Under, role: &str, name: &str, count: u64) -> Peer {
    peer_under(u, &[], role, name, count)
}

/// As `peer_of`, run by the command `wrap` (`unshare ...`, `setpriv ...`).
fn peer_under(u: &Under, wrap: &[&str], role: &str, name: &str, count: u64) -> Peer {
    let envs = [
        ("CH_NAME", name.to_owned()),
        ("CH_COUNT", count.to_string()),
    ];
    u.spawn_peer(module_path!(), wrap, PEER, role, &envs)
}

fn million_messages_in_order(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-million");
    const COUNT: u64 = 1_000_000;
    let mut rx = Receiver::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "send-random", &name, COUNT);
    let pat = pattern();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t0 = Instant::now();
    let mut bytes = 0u64;
    for i in 0..COUNT {
        let len = (rng.next() % 513) as usize;
        let s = rx.recv().unwrap();
        // SAFETY: the sender is this crate's (the peer process).
        let got = unsafe { s.as_slice() };
        assert!(got == message(&pat, i, len), "message {i} differs");
        bytes += len as u64;
    }
    let id = sysv_id(rx.segment_info());
    assert!(matches!(rx.recv(), Err(Error::Closed)));
    println!(
        "{kind}: {COUNT} messages, {bytes} bytes in {:?}",
        t0.elapsed()
    );
    assert!(peer.finish(), "the sender failed");
    drop(rx);
    u.assert_gone(&name, id);
}

fn the_other_way(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-reverse");
    const COUNT: u64 = 200_000;
    let mut tx = Sender::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "recv-random", &name, COUNT);
    let pat = pattern();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..COUNT {
        let len = (rng.next() % 513) as usize;
        // Zero-copy on this side: write in place, then send.
        let mut loan = tx.loan().unwrap();
        loan.write_at(0, message(&pat, i, len)).unwrap();
        loan.send(len).unwrap();
    }
    let id = sysv_id(tx.segment_info());
    // Ends the stream as complete: the receiver drains, sees Closed and exits 0, and
    // finish returns once it has seen the end.
    tx.finish().unwrap();
    drop(tx);
    assert!(peer.finish(), "the receiver failed");
    u.assert_gone(&name, id);
}

/// Runs `call` on a channel whose peer was just killed: it fails with PeerDead naming the
/// peer's pid, within DEATH_BOUND.
fn dead_in_time<T: std::fmt::Debug>(
    kind: &str,
    who: &str,
    peer: &Peer,
    call: impl FnOnce() -> Result<T, Error>,
) {
    let t0 = Instant::now();
    let e = call().unwrap_err();
    let took = t0.elapsed();
    assert!(
        matches!(e, Error::PeerDead { pid } if pid == peer.pid()),
        "{e}"
    );
    println!("{kind}: the {who}'s death known after {took:?}");
    assert!(took < DEATH_BOUND, "PeerDead after {took:?}");
}

fn sender_killed_mid_message(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-kill-tx");
    let mut rx = Receiver::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "send-then-hang", &name, 5);
    peer.expect_line("MID");
    let id = sysv_id(rx.segment_info());
    peer.kill9();
    // The five complete messages arrive; the half-written one never does.
    let pat = pattern();
    for i in 0..5 {
        assert_eq!(rx.recv().unwrap().to_vec(), message(&pat, i, 100));
    }
    dead_in_time(kind, "sender", &peer, || rx.recv().map(drop));
    drop(rx);
    peer.finish();
    u.assert_gone(&name, id);
}

fn receiver_killed_mid_message(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-kill-rx");
    let mut tx = Sender::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "recv-then-hang", &name, 0);
    tx.send(b"first").unwrap();
    peer.expect_line("MID");
    let id = sysv_id(tx.segment_info());
    // Fill the ring: the receiver holds message 0, so 16 fit.
    let mut sent = 1;
    while tx.try_send(b"more").is_ok() {
        sent += 1;
    }
    assert_eq!(sent, 16);
    peer.kill9();
    dead_in_time(kind, "receiver", &peer, || tx.send(b"one too many"));
    drop(tx);
    peer.finish();
    u.assert_gone(&name, id);
}

fn creator_killed_before_a_peer_came(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-stale");
    let mut peer = peer_of(&u, "create-then-hang", &name, 0);
    peer.expect_line("READY");
    peer.kill9();
    peer.finish();
    // The segment is still there, its creator dead: the next open says so and removes it.
    let e = Receiver::open(&b, &name, &opts()).unwrap_err();
    assert!(
        matches!(e, Error::PeerDead { pid } if pid == peer.pid()),
        "{e}"
    );
    u.assert_gone(&name, None);
    // open_or_create goes on to make a fresh one.
    let mut peer = peer_of(&u, "create-then-hang", &name, 0);
    peer.expect_line("READY");
    peer.kill9();
    peer.finish();
    let rx = Receiver::open_or_create(&b, &name, &opts()).unwrap();
    assert!(rx.is_creator());
    drop(rx);
    u.assert_gone(&name, None);
}

fn garbage_from_a_peer_process(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-garbage");
    let mut rx = Receiver::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "scribble", &name, 0);
    let mut errors = 0;
    let mut outcome = |r: Result<shm_channel::Sample<'_>, Error>| match r {
        Ok(s) => {
            let _ = s.to_vec();
        }
        Err(Error::TimedOut { .. }) | Err(Error::PeerDead { .. }) => {}
        Err(e) => {
            assert!(
                matches!(e, Error::Protocol(_) | Error::Closed),
                "unexpected {e}"
            );
            errors += 1;
        }
    };
    // While the peer scribbles, and after it is gone: every call returns (a message or an
    // error) within its deadline; none panics, none hangs.
    let t0 = Instant::now();
    while peer.child.try_wait().unwrap().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the peer hangs");
        let t = Instant::now();
        outcome(rx.recv_timeout(Duration::from_millis(5)));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    for _ in 0..20 {
        let t = Instant::now();
        outcome(rx.recv_timeout(Duration::from_millis(50)));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let _ = rx.try_recv().map(|s| s.len());
    }
    println!("{kind}: {errors} protocol errors, no panic, no hang");
    peer.finish();
    drop(rx);
    u.assert_gone(&name, None);
}

fn stranger_and_wait_forms(kind: &'static str) {
    let u = Under::new(kind);
    let b = u.backend();
    // A stranger's segment.
    let name = unique_name("ch-stranger");
    let sname = SegmentName::new(&name).unwrap();
    let seg = b
        .create(&sname, &shm_core::CreateOptions::new(70_000))
        .unwrap();
    seg.map().unwrap().write_at(0, b"not a channel").unwrap();
    let e = Receiver::open(&b, &name, &opts()).unwrap_err();
    assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
    drop(seg);
    // Every wait form, on an empty and on a full ring.
    let name = unique_name("ch-waits");
    let o = Options::new(2, 8);
    let mut tx = Sender::create(&b, &name, &o).unwrap();
    let mut rx = Receiver::open(&b, &name, &o).unwrap();
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    for (i, wait) in [Duration::from_millis(20), Duration::from_millis(60)]
        .into_iter()
        .enumerate()
    {
        let t0 = Instant::now();
        let e = if i == 0 {
            rx.recv_timeout(wait).unwrap_err()
        } else {
            rx.recv_deadline(t0 + wait).unwrap_err()
        };
        assert!(matches!(e, Error::TimedOut { .. }), "{e}");
        // Not before the deadline; after it, within a bound a busy machine keeps (it must
        // return, not hang).
        let took = t0.elapsed();
        assert!(
            took >= wait && took < wait + Duration::from_secs(2),
            "{took:?}"
        );
    }
    tx.send(b"1").unwrap();
    tx.try_send(b"2").unwrap();
    assert!(matches!(tx.try_send(b"3"), Err(Error::Full)));
    let t0 = Instant::now();
    assert!(matches!(
        tx.send_timeout(b"3", Duration::from_millis(20)),
        Err(Error::TimedOut { .. })
    ));
    assert!(matches!(
        tx.loan_deadline(t0 + Duration::from_millis(50)),
        Err(Error::TimedOut { .. })
    ));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(rx.recv().unwrap().to_vec(), b"1");
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)).unwrap().to_vec(),
        b"2"
    );
    // Dropped without finishing: the stream is cut, and the receiver says so.
    drop(tx);
    assert!(matches!(rx.recv(), Err(Error::Aborted)));
    assert!(matches!(rx.try_recv(), Err(Error::Aborted)));
    drop(rx);
    u.assert_gone(&name, None);
}

/// A server killed while it holds a request: the client's call fails with PeerDead in time;
/// a client killed while it waits for an answer: the server's next receive does. Calls before
/// carry random lengths both ways, bytes checked; nothing is left behind.
fn pair_peer_killed_mid_call(kind: &'static str) {
    let u = Under::new(kind);
    let b = u.backend();
    let pat = pattern();
    // The server dies.
    let name = unique_name("ch-pair-srv");
    let mut client = Client::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "serve-then-hang", &name, 1000);
    let mut rng = Rng(7);
    for i in 0..1000 {
        let len = (rng.next() % 513) as usize;
        let req = message(&pat, i, len);
        let back = client.call(req).unwrap().to_vec();
        assert_eq!(
            back,
            req.iter().rev().copied().collect::<Vec<_>>(),
            "call {i}"
        );
    }
    let id = sysv_id(client.segment_info());
    let took = std::thread::scope(|s| {
        let call = s.spawn(|| {
            let e = client.call(b"held").unwrap_err();
            (e, Instant::now())
        });
        peer.expect_line("MID");
        peer.kill9();
        let killed = Instant::now();
        let (e, at) = call.join().unwrap();
        assert!(
            matches!(e, Error::PeerDead { pid } if pid == peer.pid()),
            "{e}"
        );
        at.duration_since(killed)
    });
    println!("{kind}: the server's death known after {took:?}");
    assert!(took < DEATH_BOUND, "PeerDead after {took:?}");
    drop(client);
    peer.finish();
    u.assert_gone(&name, id);
    // The client dies.
    let name = unique_name("ch-pair-cli");
    let mut server = Server::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "call-then-hang", &name, 1000);
    for _ in 0..1000 {
        let req = server.recv().unwrap().to_vec();
        server
            .reply(&req.iter().rev().copied().collect::<Vec<_>>())
            .unwrap();
    }
    peer.expect_line("MID");
    assert_eq!(server.recv().unwrap().to_vec(), b"never answered");
    let id = sysv_id(server.segment_info());
    peer.kill9();
    server.reply(b"too late").unwrap();
    dead_in_time(kind, "client", &peer, || server.recv().map(drop));
    drop(server);
    peer.finish();
    u.assert_gone(&name, id);
}

/// A client process that scribbles over the whole pair: every receive of the server returns
/// within its deadline, with a request or an error; none panics.
fn garbage_from_a_pair_client(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-pair-garbage");
    let mut server = Server::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "scribble-pair", &name, 0);
    let (mut requests, mut errors) = (0, 0);
    let t0 = Instant::now();
    let mut rounds = 0;
    while peer.child.try_wait().unwrap().is_none() || rounds < 20 {
        rounds += 1;
        assert!(t0.elapsed() < Duration::from_secs(30), "the peer hangs");
        let t = Instant::now();
        let got = server
            .recv_timeout(Duration::from_millis(5))
            .map(|req| req.to_vec());
        match got {
            Ok(_) => {
                requests += 1;
                server.reply(b"ok").unwrap();
            }
            Err(Error::TimedOut { .. }) | Err(Error::PeerDead { .. }) => {}
            Err(e) => {
                assert!(
                    matches!(e, Error::Protocol(_) | Error::Closed),
                    "unexpected {e}"
                );
                errors += 1;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    println!("{kind}: {requests} garbage requests, {errors} protocol errors, no panic, no hang");
    peer.finish();
    drop(server);
    u.assert_gone(&name, None);
}

/// The non-blocking calls report a dead peer as the blocking ones do: `try_recv` says
/// PeerDead once the messages the sender completed are received (it said Empty forever), and a
/// sender learns of a dead receiver before the ring fills, by `send` or `try_send` (issue 18).
fn try_calls_report_a_dead_peer(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-try-dead");
    let _guard = (kind != "file").then(|| Cleanup::on(backend(kind, None), name.clone()));
    let mut rx = Receiver::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_of(&u, "send-n-then-hang", &name, 3);
    peer.expect_line("SENT");
    peer.kill9();
    let pat = pattern();
    let (t0, mut got) = (Instant::now(), 0);
    let e = loop {
        match rx.try_recv() {
            Ok(s) => {
                assert_eq!(s.to_vec(), message(&pat, got, 10));
                got += 1;
            }
            Err(Error::Empty) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "try_recv: Empty for 10 s"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => break e,
        }
    };
    assert_eq!(got, 3, "the messages sent before the death come first");
    assert!(matches!(e, Error::PeerDead { .. }), "{e}");
    println!(
        "{kind}: try_recv said PeerDead {:?} after kill -9",
        t0.elapsed()
    );
    drop(rx);
    peer.finish();
    u.assert_gone(&name, None);

    for try_form in [false, true] {
        let name = unique_name("ch-send-dead");
        let mut tx = Sender::create(&b, &name, &opts()).unwrap();
        let mut peer = peer_of(&u, "recv-open-then-hang", &name, 0);
        peer.expect_line("JOINED");
        peer.kill9();
        peer.finish();
        let mut sent = 0;
        let e = loop {
            let r = if try_form {
                tx.try_send(b"into the void")
            } else {
                tx.send(b"into the void")
            };
            match r {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(matches!(e, Error::PeerDead { .. }), "{e}");
        assert!(
            sent < opts().slots,
            "{sent} sends to a dead receiver went through: the ring filled first"
        );
        println!(
            "{kind}: the sender learned of a dead receiver after {sent} sends (try: {try_form})"
        );
        drop(tx);
        u.assert_gone(&name, None);
    }
}

/// After a receiver died before any sender came, the next receiver takes its place (it got
/// "there is no receiver end to take" forever) (issue 17 item 11).
fn a_dead_lone_end_is_replaced(kind: &'static str) {
    let (u, b, name) = begin(kind, "ch-lone");
    // The dead peer's segment, should the test fail before it is reclaimed (file: the backend's
    // directory goes with it).
    let _guard = (kind != "file").then(|| Cleanup::on(backend(kind, None), name.clone()));
    let mut peer = peer_of(&u, "recv-create-then-hang", &name, 0);
    peer.expect_line("READY");
    peer.kill9();
    peer.finish();
    let mut rx = Receiver::open_or_create(&b, &name, &opts()).unwrap();
    assert!(rx.is_creator());
    let mut tx = Sender::open(&b, &name, &opts()).unwrap();
    tx.send(b"the new receiver's").unwrap();
    assert_eq!(rx.recv().unwrap().to_vec(), b"the new receiver's");
    drop((tx, rx));
    u.assert_gone(&name, None);
}

/// An open waits, within its deadline, for a channel whose creator has not written its header
/// yet (it failed after 100 ms) (issue 17 item 10). The creator here is this test: a zero
/// segment of the channel's size, given a channel's header 300 ms later (copied from a real
/// channel of the same options that this process made, with its creator's seat taken).
fn a_channel_in_the_making_is_waited_for(kind: &'static str) {
    let u = Under::new(kind);
    let b = u.backend();
    let o = opts().open_timeout(Duration::from_secs(20));
    let model_name = unique_name("ch-model");
    let model = Sender::create(&b, &model_name, &o).unwrap();
    let mut head = vec![0u8; 384];
    let raw_model = b
        .open(&SegmentName::new(&model_name).unwrap(), Access::ReadWrite)
        .unwrap();
    raw_model.map().unwrap().read_at(0, &mut head).unwrap();
    drop(raw_model);
    let name = unique_name("ch-making");
    let sname = SegmentName::new(&name).unwrap();
    let size = o.segment_size().unwrap();
    let raw = b
        .create(&sname, &shm_core::CreateOptions::new(size))
        .unwrap();
    let map = raw.map().unwrap();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let opener = s.spawn(|| Receiver::open(&u.backend(), &name, &o));
        std::thread::sleep(Duration::from_millis(300));
        // The creator's seat, as a creator takes it (where the backend keeps a descriptor).
        if let Some(fd) = map.fd() {
            use std::os::fd::AsRawFd;
            // SAFETY: an all-zero flock is valid; fcntl reads it; the fd is the mapping's.
            unsafe {
                let mut fl: libc::flock = std::mem::zeroed();
                fl.l_type = libc::F_WRLCK as libc::c_short;
                fl.l_whence = libc::SEEK_SET as libc::c_short;
                fl.l_len = 1;
                assert_eq!(libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &mut fl), 0);
            }
        }
        map.write_at(8, &head[8..]).unwrap();
        map.write_at(0, &head[..8]).unwrap(); // the magic last, as a creator writes it
        let rx = opener.join().unwrap().unwrap();
        let took = t0.elapsed();
        println!("{kind}: the open waited {took:?} for the header");
        assert!(took >= Duration::from_millis(300));
        drop(rx);
    });
    drop(map);
    drop(raw);
    drop(model);
    u.assert_gone(&name, None);
    u.assert_gone(&model_name, None);
}

/// Why a namespace test cannot run here, if it cannot.
pub(crate) fn no_pid_namespaces() -> Option<String> {
    if !shm_tests::is_root() {
        return Some("needs root for unshare --pid".to_owned());
    }
    match Command::new("unshare")
        .args(["-p", "-f", "--kill-child", "--mount-proc", "true"])
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("unshare --pid --mount-proc true failed ({s})")),
        Err(e) => Some(format!("no unshare: {e}")),
    }
}

pub(crate) const UNSHARE: &[&str] = &["unshare", "-p", "-f", "--kill-child", "--mount-proc"];

/// Ends in two pid namespaces: a pid is not an identity there, so neither takes the other for
/// dead while it lives (the opener took the live creator for dead and removed the channel),
/// and the death of the one in the other namespace is still known (issue 17 item 6).
fn a_peer_in_another_pid_namespace(kind: &'static str) {
    if let Some(why) = no_pid_namespaces() {
        shm_tests::skip("a_peer_in_another_pid_namespace", &why);
        return;
    }
    let u = Under::new(kind);
    let b = u.backend();
    // The creator outside, the opener inside.
    let name = unique_name("ch-ns-in");
    let mut rx = Receiver::create(&b, &name, &opts()).unwrap();
    let mut peer = peer_under(&u, UNSHARE, "ns-send", &name, 1000);
    let pat = pattern();
    for i in 0..1000 {
        assert_eq!(
            rx.recv().unwrap().to_vec(),
            message(&pat, i, 100),
            "message {i}"
        );
    }
    assert!(matches!(rx.recv(), Err(Error::Closed)));
    assert!(peer.finish(), "the sender in the other namespace failed");
    drop(rx);
    u.assert_gone(&name, None);
    // The creator inside, the opener outside; then the one inside dies.
    let name = unique_name("ch-ns-out");
    let _guard = (kind != "file").then(|| Cleanup::on(backend(kind, None), name.clone()));
    let mut peer = peer_under(&u, UNSHARE, "create-then-hang", &name, 0);
    peer.expect_line("READY");
    let mut rx = Receiver::open(&b, &name, &opts()).unwrap();
    assert_eq!(rx.peer_alive().unwrap(), Some(true));
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(200)),
        Err(Error::TimedOut { .. })
    ));
    peer.kill9(); // unshare, and with it (--kill-child) the creator inside
    let t0 = Instant::now();
    let e = rx.recv().map(drop).unwrap_err();
    assert!(matches!(e, Error::PeerDead { .. }), "{e}");
    println!(
        "{kind}: death in another pid namespace known after {:?}",
        t0.elapsed()
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    drop(rx);
    peer.finish();
    u.assert_gone(&name, None);
}

/// Why a two-user test cannot run here, if it cannot.
fn no_second_user() -> Option<String> {
    if !shm_tests::is_root() {
        return Some("needs root to run a peer as another user (setpriv)".to_owned());
    }
    let exe = std::env::current_exe().unwrap();
    match Command::new("setpriv")
        .args(NOBODY)
        .arg(&exe)
        .args(["--list"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "uid 65534 cannot run {} ({s}): its directories are not open to others",
            exe.display()
        )),
        Err(e) => Some(format!("no setpriv: {e}")),
    }
}

const NOBODY: &[&str] = &["--reuid=65534", "--regid=65534", "--clear-groups"];

/// A channel between two users (issue 17 item 9): the opener may not remove the creator's name,
/// so the creator removes it once it sees the join; and a name whose creator died, which the
/// next user may not remove, is taken over in place by that user's `open_or_create` (it refused
/// every open before, in the name of a dead pid).
fn a_channel_between_two_users(kind: &'static str) {
    if let Some(why) = no_second_user() {
        shm_tests::skip("a_channel_between_two_users", &why);
        return;
    }
    let u = Under::new(kind);
    let b = u.backend();
    let wrap: Vec<&str> = std::iter::once("setpriv")
        .chain(NOBODY.iter().copied())
        .collect();
    // Root creates, nobody joins: the name is gone once root has seen the join.
    let name = unique_name("ch-users");
    let _guard = Cleanup::on(backend(kind, None), name.clone());
    let mut rx = Receiver::create(&b, &name, &opts().mode(0o666)).unwrap();
    let mut peer = peer_under(&u, &wrap, "send-666", &name, 100);
    let pat = pattern();
    for i in 0..100 {
        assert_eq!(rx.recv().unwrap().to_vec(), message(&pat, i, 100));
    }
    assert!(matches!(rx.recv(), Err(Error::Closed)));
    assert!(peer.finish(), "the other user's sender failed");
    let id = sysv_id(rx.segment_info());
    u.assert_gone(&name, None);
    drop(rx);
    u.assert_gone(&name, id);
    // Root's creator dies before anyone came: nobody may not remove the name, and takes it over.
    let name = unique_name("ch-users-stale");
    let _guard = Cleanup::on(backend(kind, None), name.clone());
    let mut dead = peer_of(&u, "create-666-then-hang", &name, 0);
    dead.expect_line("READY");
    dead.kill9();
    dead.finish();
    let mut peer = peer_under(&u, &wrap, "reclaim-recv", &name, 100);
    peer.expect_line("CREATOR");
    let mut tx = Sender::open(&b, &name, &opts().mode(0o666)).unwrap();
    for i in 0..100 {
        tx.send(message(&pat, i, 100)).unwrap();
    }
    tx.finish().unwrap();
    peer.expect_line("OK");
    assert!(peer.finish(), "the other user's receiver failed");
    let id = sysv_id(tx.segment_info());
    drop(tx);
    u.assert_gone(&name, id);
    // The same, by an end that asks for mode 0600: taken over, the segment would stay root's,
    // whom that end never let in. It is refused, saying whose it is.
    let name = unique_name("ch-users-private");
    let _guard = Cleanup::on(backend(kind, None), name.clone());
    let mut dead = peer_of(&u, "create-666-then-hang", &name, 0);
    dead.expect_line("READY");
    dead.kill9();
    dead.finish();
    let mut peer = peer_under(&u, &wrap, "reclaim-recv-600", &name, 0);
    let said = peer.expect_line("REFUSED");
    assert!(said.contains("uid 0"), "{said}");
    assert!(peer.finish(), "the other user's receiver failed");
}

macro_rules! on_backend {
    ($m:ident, $kind:literal) => {
        mod $m {
            #[test]
            fn million_messages_in_order() {
                super::million_messages_in_order($kind);
            }
            #[test]
            fn the_other_way() {
                super::the_other_way($kind);
            }
            #[test]
            fn sender_killed_mid_message() {
                super::sender_killed_mid_message($kind);
            }
            #[test]
            fn receiver_killed_mid_message() {
                super::receiver_killed_mid_message($kind);
            }
            #[test]
            fn creator_killed_before_a_peer_came() {
                super::creator_killed_before_a_peer_came($kind);
            }
            #[test]
            fn garbage_from_a_peer_process() {
                super::garbage_from_a_peer_process($kind);
            }
            #[test]
            fn stranger_and_wait_forms() {
                super::stranger_and_wait_forms($kind);
            }
            #[test]
            fn pair_peer_killed_mid_call() {
                super::pair_peer_killed_mid_call($kind);
            }
            #[test]
            fn garbage_from_a_pair_client() {
                super::garbage_from_a_pair_client($kind);
            }
            #[test]
            fn try_calls_report_a_dead_peer() {
                super::try_calls_report_a_dead_peer($kind);
            }
            #[test]
            fn a_dead_lone_end_is_replaced() {
                super::a_dead_lone_end_is_replaced($kind);
            }
            #[test]
            fn a_channel_in_the_making_is_waited_for() {
                super::a_channel_in_the_making_is_waited_for($kind);
            }
            #[test]
            fn a_peer_in_another_pid_namespace() {
                super::a_peer_in_another_pid_namespace($kind);
            }
        }
    };
}

#[test]
fn posix_a_channel_between_two_users() {
    a_channel_between_two_users("posix");
}

#[test]
fn sysv_a_channel_between_two_users() {
    a_channel_between_two_users("sysv");
}

on_backend!(posix, "posix");
on_backend!(sysv, "sysv");
on_backend!(file, "file");
