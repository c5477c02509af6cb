//! The channel between two threads of one process, on POSIX and System V (the process tests,
//! and the third backend, are in the `shm-tests` crate: tests/tests/channel/).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use shm_channel::{Client, Error, Options, Receiver, Sender, Server};
use shm_core::{Backend, CreateOptions, Segment, SegmentName};

fn name(test: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/shmt-{}-{}-ch-{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// xorshift: lengths and bytes that a test can recompute on the other side.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn ordering_and_integrity<B: Backend + Sync>(b: &B) {
    let n = name("order");
    let opts = Options::new(8, 1000);
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    const COUNT: u64 = 100_000;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tx = Sender::open(b, &n, &opts).unwrap();
            let mut r = rng(7);
            let mut buf = vec![0u8; 1000];
            for i in 0..COUNT {
                let len = (r() % 1001) as usize;
                for (j, byte) in buf[..len].iter_mut().enumerate() {
                    *byte = (i as usize + j) as u8;
                }
                tx.send(&buf[..len]).unwrap();
            }
            tx.finish().unwrap();
        });
        let mut r = rng(7);
        let mut buf = vec![0u8; 1000];
        for i in 0..COUNT {
            let len = rx.recv_into(&mut buf).unwrap();
            assert_eq!(len, (r() % 1001) as usize, "message {i}");
            for (j, byte) in buf[..len].iter().enumerate() {
                assert_eq!(*byte, (i as usize + j) as u8, "message {i} byte {j}");
            }
        }
        assert!(matches!(rx.recv(), Err(Error::Closed)));
    });
}

fn full_empty_and_timeouts<B: Backend + Sync>(b: &B) {
    let n = name("full");
    let opts = Options::new(4, 16);
    let mut tx = Sender::create(b, &n, &opts).unwrap();
    let mut rx = Receiver::open(b, &n, &opts).unwrap();
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    let t0 = Instant::now();
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(Error::TimedOut { .. })
    ));
    assert!(t0.elapsed() >= Duration::from_millis(30));
    for i in 0..4u8 {
        tx.try_send(&[i; 3]).unwrap();
    }
    assert!(matches!(tx.try_send(b"x"), Err(Error::Full)));
    assert!(matches!(tx.try_loan(), Err(Error::Full)));
    let t0 = Instant::now();
    assert!(matches!(
        tx.send_timeout(b"x", Duration::from_millis(30)),
        Err(Error::TimedOut { .. })
    ));
    assert!(matches!(
        tx.loan_deadline(Instant::now() + Duration::from_millis(10)),
        Err(Error::TimedOut { .. })
    ));
    assert!(t0.elapsed() >= Duration::from_millis(40));
    assert!(matches!(
        tx.send(&[0; 17]),
        Err(Error::TooLarge { len: 17, max: 16 })
    ));
    for i in 0..4u8 {
        assert_eq!(rx.try_recv().unwrap().to_vec(), vec![i; 3]);
    }
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    // A loan dropped unsent sends nothing.
    {
        let _unsent = tx.loan().unwrap();
    }
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    tx.send_deadline(b"abc", Instant::now() + Duration::from_secs(1))
        .unwrap();
    assert_eq!(
        rx.recv_deadline(Instant::now() + Duration::from_secs(1))
            .unwrap()
            .to_vec(),
        b"abc"
    );
    // Closing from the receiver: the sender's next wait for a slot says Closed.
    drop(rx);
    let mut closed = false;
    for _ in 0..5 {
        if let Err(e) = tx.send(b"y") {
            assert!(matches!(e, Error::Closed), "{e}");
            closed = true;
            break;
        }
    }
    assert!(closed);
}

fn typed_and_in_place<B: Backend + Sync>(b: &B) {
    #[derive(
        Debug,
        PartialEq,
        Clone,
        Copy,
        zerocopy::FromBytes,
        zerocopy::IntoBytes,
        zerocopy::Immutable,
        zerocopy::KnownLayout,
    )]
    #[repr(C)]
    struct Point {
        x: u64,
        y: u32,
        z: u32,
    }
    let n = name("typed");
    let opts = Options::new(2, 64);
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    let mut tx = Sender::open(b, &n, &opts).unwrap();
    let p = Point { x: 1, y: 2, z: 3 };
    tx.send_value(&p).unwrap();
    assert_eq!(rx.recv_value::<Point>().unwrap(), p);
    let mut loan = tx.loan().unwrap();
    // SAFETY: the receiver is this crate's, in this process.
    let slot = unsafe { loan.as_mut_value::<Point>() }.unwrap();
    *slot = Point { x: 9, y: 8, z: 7 };
    loan.send(size_of::<Point>()).unwrap();
    let sample = rx.recv().unwrap();
    // SAFETY: the sender is this crate's, in this process.
    assert_eq!(unsafe { sample.as_value::<Point>() }.unwrap().x, 9);
    assert!(matches!(
        sample.read_value::<u64>(),
        Err(Error::WrongSize {
            len: 16,
            expected: 8
        })
    ));
    drop(sample);
    tx.send(b"12345").unwrap();
    let s = rx.recv().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { s.as_slice() }, b"12345");
}

fn refuses_what_is_not_its_channel<B: Backend + Sync>(b: &B) {
    // A stranger's segment: random bytes, or zeros.
    for fill in [0u8, 0x5a] {
        let n = name("stranger");
        let seg = b
            .create(&SegmentName::new(&n).unwrap(), &CreateOptions::new(8192))
            .unwrap();
        seg.map().unwrap().write_at(0, &[fill; 8192]).unwrap();
        let e = Receiver::open(b, &n, &Options::new(4, 64)).unwrap_err();
        assert!(matches!(e, Error::NotAChannel { .. }), "{e}");
        assert!(e.to_string().contains("is not a channel"), "{e}");
    }
    // Other parameters, another kind, the same role twice.
    let n = name("params");
    let _tx = Sender::create(b, &n, &Options::new(4, 64)).unwrap();
    let e = Receiver::open(b, &n, &Options::new(8, 64)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Mismatch {
                what: "slots",
                expected: 8,
                found: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = Receiver::open(b, &n, &Options::new(4, 65)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Mismatch {
                what: "max message size",
                ..
            }
        ),
        "{e}"
    );
    let e = Client::open(b, &n, &Options::new(4, 64)).unwrap_err();
    assert!(matches!(e, Error::Mismatch { .. }), "{e}");
    let e = Sender::open(b, &n, &Options::new(4, 64)).unwrap_err();
    assert!(matches!(e, Error::Busy { .. }), "{e}");
    // The right one joins, and the name is gone at once; a third finds nothing.
    let _rx = Receiver::open(b, &n, &Options::new(4, 64)).unwrap();
    let e = Receiver::open(b, &n, &Options::new(4, 64)).unwrap_err();
    assert!(matches!(e, Error::Shm(ref s) if s.is_not_found()), "{e}");
    // Another layout version.
    let n = name("version");
    let tx = Sender::create(b, &n, &Options::new(4, 64)).unwrap();
    let seg = b
        .open(&SegmentName::new(&n).unwrap(), shm_core::Access::ReadWrite)
        .unwrap();
    seg.map()
        .unwrap()
        .write_at(8, &99u32.to_ne_bytes())
        .unwrap();
    let e = Receiver::open(b, &n, &Options::new(4, 64)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Version {
                found: 99,
                expected: 3,
                ..
            }
        ),
        "{e}"
    );
    drop(tx);
    // The creator dropped without a peer: its name went with it.
    assert!(
        b.open(&SegmentName::new(&n).unwrap(), shm_core::Access::ReadOnly)
            .is_err()
    );
}

/// A peer that writes garbage over the whole segment after joining: every call fails with an
/// error (or, where the garbage happens to look valid, succeeds), never panics, never hangs.
fn garbage_from_the_peer<B: Backend + Sync>(b: &B) {
    let n = name("garbage");
    let opts = Options::new(4, 64);
    let mut tx = Sender::create(b, &n, &opts).unwrap();
    // Keep a raw handle to scribble with, opened before the receiver removes the name.
    let raw = b
        .open(&SegmentName::new(&n).unwrap(), shm_core::Access::ReadWrite)
        .unwrap()
        .map()
        .unwrap();
    let mut rx = Receiver::open(b, &n, &opts).unwrap();
    tx.send(b"ok").unwrap();
    assert_eq!(rx.recv().unwrap().to_vec(), b"ok");
    let mut r = rng(99);
    for round in 0..200 {
        let mut junk = vec![0u8; raw.len()];
        for byte in junk.iter_mut() {
            *byte = r() as u8;
        }
        if round % 2 == 0 {
            raw.write_at(0, &junk).unwrap();
        } else {
            // Only the ring's words, where it hurts most.
            raw.write_at(128, &junk[..512]).unwrap();
        }
        let short = Duration::from_millis(1);
        let _ = rx.recv_timeout(short).map(|s| s.to_vec());
        let _ = rx.try_recv().map(|s| s.len());
        let _ = tx.send_timeout(b"abc", short);
        let _ = tx.try_send(b"abc");
    }
}

fn pair_calls<B: Backend + Sync>(b: &B) {
    let n = name("pair");
    let opts = Options::new(2, 64);
    let mut server = Server::create(b, &n, &opts).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = Client::open(b, &n, &opts).unwrap();
            for i in 0..100_000u32 {
                // Requests and responses of every length, bytes checked both ways.
                let len = (i % 64) as usize;
                let req: Vec<u8> = (0..len).map(|k| (i as usize + k) as u8).collect();
                let resp = client.call(req.as_slice()).unwrap();
                let mut back = vec![0u8; resp.len()];
                resp.copy_to(&mut back).unwrap();
                let want: Vec<u8> = req.iter().rev().map(|x| x ^ 0x5a).collect();
                assert_eq!(back, want, "call {i}");
            }
        });
        loop {
            let req = match server.recv() {
                Err(Error::Closed) => break,
                other => other.unwrap(),
            };
            let mut got = vec![0u8; req.len()];
            req.copy_to(&mut got).unwrap();
            drop(req);
            // Until answered, the same request again.
            assert_eq!(server.recv().unwrap().to_vec(), got);
            let answer: Vec<u8> = got.iter().rev().map(|x| x ^ 0x5a).collect();
            server.reply(&answer).unwrap();
            assert!(matches!(server.reply(b"twice"), Err(Error::NoRequest)));
        }
    });
}

/// A request whose client left before the answer: asking for it again says Closed, so that
/// a server that skips a request it cannot use does not spin on it forever. A request too
/// long for the slot is a protocol error and is not counted as received.
fn unanswered_request_of_a_client_that_left<B: Backend + Sync>(b: &B) {
    let n = name("unanswered");
    let opts = Options::new(1, 8);
    let mut server = Server::create(b, &n, &opts).unwrap();
    let mut client = Client::open(b, &n, &opts).unwrap();
    let e = client
        .call_timeout(&5u64, Duration::from_millis(10))
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    assert_eq!(server.recv().unwrap().read_value::<u64>().unwrap(), 5);
    // Not answered: the same request again while the client is there ...
    assert_eq!(server.recv().unwrap().read_value::<u64>().unwrap(), 5);
    drop(client);
    // ... and Closed once it left, at once.
    let t0 = Instant::now();
    assert!(matches!(server.recv(), Err(Error::Closed)));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

/// A server dropped while a call waits for its answer: the call fails with Closed at once,
/// not at its deadline.
fn a_server_that_leaves_closes_a_waiting_call<B: Backend + Sync>(b: &B) {
    let n = name("srvleaves");
    let opts = Options::new(1, 8);
    let mut server = Server::create(b, &n, &opts).unwrap();
    let mut client = Client::open(b, &n, &opts).unwrap();
    std::thread::scope(|s| {
        let call = s.spawn(move || {
            let t0 = Instant::now();
            let e = client
                .call_timeout(&1u64, Duration::from_secs(5))
                .unwrap_err();
            (e, t0.elapsed())
        });
        assert_eq!(server.recv().unwrap().read_value::<u64>().unwrap(), 1);
        drop(server);
        let (e, took) = call.join().unwrap();
        assert!(matches!(e, Error::Closed), "{e}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    });
}

fn call_timeout_and_loan_timeout<B: Backend + Sync>(b: &B) {
    let n = name("calltimeout");
    let opts = Options::new(1, 8);
    let mut server = Server::create(b, &n, &opts).unwrap();
    let mut client = Client::open(b, &n, &opts).unwrap();
    assert!(matches!(server.reply(b"x"), Err(Error::NoRequest)));
    let t0 = Instant::now();
    // The server never answers.
    let e = client
        .call_timeout(&7u64, Duration::from_millis(30))
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    assert!(t0.elapsed() >= Duration::from_millis(30));
    // The slot is the server's until it answers: the next call waits for that answer
    // first, and times out too.
    let e = client
        .call_timeout(&9u64, Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    assert_eq!(server.recv().unwrap().read_value::<u64>().unwrap(), 7);
    server.reply(&8u64.to_ne_bytes()).unwrap();
    // The late answer to 7 is dropped; 9 goes out and is answered.
    std::thread::scope(|s| {
        s.spawn(|| {
            let v = server.recv().unwrap().read_value::<u64>().unwrap();
            server.reply_value(&(v + 1)).unwrap();
        });
        let back: u64 = client.call(&9u64).unwrap().read_value().unwrap();
        assert_eq!(back, 10);
    });
    // A request too large for the slot is refused before anything is written.
    assert!(matches!(
        client.call_timeout(&[0u8; 9], Duration::from_millis(5)),
        Err(Error::TooLarge { len: 9, max: 8 })
    ));
    // The client leaves: the server's next receive says Closed.
    drop(client);
    assert!(matches!(server.recv(), Err(Error::Closed)));
}

fn either_side_first<B: Backend + Sync>(b: &B) {
    for receiver_first in [true, false] {
        let n = name("either");
        let opts = Options::new(4, 64);
        std::thread::scope(|s| {
            let n = &n;
            let opts = &opts;
            let rx = s.spawn(move || {
                if !receiver_first {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let mut rx = Receiver::open_or_create(b, n, opts).unwrap();
                rx.recv().unwrap().to_vec()
            });
            if receiver_first {
                std::thread::sleep(Duration::from_millis(20));
            }
            let mut tx = Sender::open_or_create(b, n, opts).unwrap();
            tx.send(b"first").unwrap();
            tx.wait_for_peer(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(rx.join().unwrap(), b"first");
        });
    }
}

/// Each end can move to another thread (one thread at a time uses it: methods take `&mut`).
#[test]
fn ends_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Sender>();
    send_sync::<Receiver>();
    send_sync::<Client>();
    send_sync::<Server>();
    send_sync::<Error>();
}

macro_rules! on_backend {
    ($m:ident, $b:expr) => {
        mod $m {
            #[test]
            fn ordering_and_integrity() {
                super::ordering_and_integrity(&$b);
            }
            #[test]
            fn full_empty_and_timeouts() {
                super::full_empty_and_timeouts(&$b);
            }
            #[test]
            fn typed_and_in_place() {
                super::typed_and_in_place(&$b);
            }
            #[test]
            fn refuses_what_is_not_its_channel() {
                super::refuses_what_is_not_its_channel(&$b);
            }
            #[test]
            fn garbage_from_the_peer() {
                super::garbage_from_the_peer(&$b);
            }
            #[test]
            fn pair_calls() {
                super::pair_calls(&$b);
            }
            #[test]
            fn call_timeout_and_loan_timeout() {
                super::call_timeout_and_loan_timeout(&$b);
            }
            #[test]
            fn a_server_that_leaves_closes_a_waiting_call() {
                super::a_server_that_leaves_closes_a_waiting_call(&$b);
            }
            #[test]
            fn unanswered_request_of_a_client_that_left() {
                super::unanswered_request_of_a_client_that_left(&$b);
            }
            #[test]
            fn either_side_first() {
                super::either_side_first(&$b);
            }
            #[test]
            fn short_buffer_leaves_the_message() {
                super::short_buffer_leaves_the_message(&$b);
            }
            #[test]
            fn end_states() {
                super::end_states(&$b);
            }
            #[test]
            fn finish_before_the_receiver_came() {
                super::finish_before_the_receiver_came(&$b);
            }
            #[test]
            fn peer_alive_everywhere() {
                super::peer_alive_everywhere(&$b);
            }
        }
    };
}

/// A message longer than the buffer of `recv_into` stays in the channel, as its docs say: the
/// next receive gets it whole (issue 17 item 5).
fn short_buffer_leaves_the_message<B: Backend + Sync>(b: &B) {
    let n = name("short");
    let opts = Options::new(4, 64);
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    let mut tx = Sender::open(b, &n, &opts).unwrap();
    tx.send(b"0123456789").unwrap();
    tx.send(b"next").unwrap();
    let mut small = [0u8; 4];
    let e = rx.recv_into(&mut small).unwrap_err();
    assert!(matches!(e, Error::TooLarge { len: 10, max: 4 }), "{e}");
    let mut big = [0u8; 64];
    let len = rx.recv_into(&mut big).unwrap();
    assert_eq!(&big[..len], b"0123456789");
    let len = rx.recv_into(&mut big).unwrap();
    assert_eq!(&big[..len], b"next");
}

/// How a stream ended reaches the other end: finished (Closed, and `finish` returns once the
/// receiver has it all), cut (a sender dropped unfinished: Aborted), a receiver that left
/// (Closed for the sender, never Ok) or failed (Aborted) (issue 17 item 3).
fn end_states<B: Backend + Sync>(b: &B) {
    let opts = Options::new(4, 64);
    // Finished: delivered, and known delivered.
    let n = name("finished");
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut tx = Sender::open(b, &n, &opts).unwrap();
            for i in 0..10u8 {
                tx.send(&[i]).unwrap();
            }
            tx.finish().unwrap();
            // Later sends are refused: the stream is complete.
            assert!(matches!(tx.send(b"late"), Err(Error::Closed)));
        });
        for i in 0..10u8 {
            assert_eq!(rx.recv().unwrap().to_vec(), [i]);
        }
        assert!(matches!(rx.recv(), Err(Error::Closed)));
        assert!(matches!(rx.try_recv(), Err(Error::Closed)));
        t.join().unwrap();
    });
    drop(rx);
    // Dropped unfinished: cut, and said so once what was sent is received.
    let n = name("cut");
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    let mut tx = Sender::open(b, &n, &opts).unwrap();
    tx.send(b"a").unwrap();
    tx.send(b"b").unwrap();
    drop(tx);
    assert_eq!(rx.recv().unwrap().to_vec(), b"a");
    assert_eq!(rx.recv().unwrap().to_vec(), b"b");
    let e = rx.recv().unwrap_err();
    assert!(matches!(e, Error::Aborted), "{e}");
    assert!(e.is_disconnected());
    drop(rx);
    // A receiver that leaves before the end: finish says Closed, never Ok.
    let n = name("left");
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    let mut tx = Sender::open(b, &n, &opts).unwrap();
    tx.send(b"1").unwrap();
    tx.send(b"2").unwrap();
    assert_eq!(rx.recv().unwrap().to_vec(), b"1");
    drop(rx);
    let e = tx.finish().unwrap_err();
    assert!(matches!(e, Error::Closed), "{e}");
    drop(tx);
    // A receiver that fails: the sender's sends and finish say Aborted.
    let n = name("failed");
    let mut rx = Receiver::create(b, &n, &opts).unwrap();
    let mut tx = Sender::open(b, &n, &opts).unwrap();
    tx.send(b"1").unwrap();
    assert_eq!(rx.recv().unwrap().to_vec(), b"1");
    rx.abort();
    let mut aborted = false;
    for _ in 0..opts.slots {
        match tx.send(b"x") {
            Ok(()) => {}
            Err(e) => {
                assert!(matches!(e, Error::Aborted), "{e}");
                aborted = true;
                break;
            }
        }
    }
    assert!(aborted, "the sender never learned that the receiver failed");
    assert!(matches!(tx.finish(), Err(Error::Aborted)));
}

/// Close before join: what `send` accepted is delivered or reported. A creating sender that
/// finishes before its receiver came waits for it (TimedOut on a deadline, the stream still
/// complete), and `finish` returns Ok only once the receiver has it all.
fn finish_before_the_receiver_came<B: Backend + Sync>(b: &B) {
    let n = name("early");
    let opts = Options::new(4, 64);
    let mut tx = Sender::create(b, &n, &opts).unwrap();
    tx.send(b"sent before anyone came").unwrap();
    let e = tx.finish_timeout(Duration::from_millis(50)).unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e}");
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let mut rx = Receiver::open(b, &n, &opts).unwrap();
            assert_eq!(rx.recv().unwrap().to_vec(), b"sent before anyone came");
            assert!(matches!(rx.recv(), Err(Error::Closed)));
        });
        tx.finish().unwrap();
        t.join().unwrap();
    });
}

/// Every end can ask whether its peer lives; before a peer came there is none.
fn peer_alive_everywhere<B: Backend + Sync>(b: &B) {
    let n = name("alive");
    let opts = Options::new(4, 64);
    let rx = Receiver::create(b, &n, &opts).unwrap();
    assert_eq!(rx.peer_alive().unwrap(), None);
    let tx = Sender::open(b, &n, &opts).unwrap();
    assert_eq!(tx.peer_alive().unwrap(), Some(true));
    assert_eq!(rx.peer_alive().unwrap(), Some(true));
    let n = name("alive-pair");
    let server = Server::create(b, &n, &opts).unwrap();
    assert_eq!(server.peer_alive().unwrap(), None);
    let client = Client::open(b, &n, &opts).unwrap();
    assert_eq!(client.peer_alive().unwrap(), Some(true));
    assert_eq!(server.peer_alive().unwrap(), Some(true));
}

on_backend!(posix, shm_posix::Posix::new());
on_backend!(sysv, shm_sysv::SysV::new());
