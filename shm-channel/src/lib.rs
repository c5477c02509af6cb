//! Messages between processes through shared memory, on any `shm_core::Backend`: a bounded
//! single-producer, single-consumer channel with zero-copy loans and samples, copying and typed
//! forms, blocking, non-blocking and deadline waits, closing, peer-death detection, and a
//! request/response pair.
//!
//! Start here: [`Sender::create`] and [`Receiver::open`] (or the other way round) with
//! [`Options`]; then [`Client`]/[`Server`] for calls, the [`pubsub`] and [`service`] modules
//! for one-to-many.
//!
//! ```
//! use shm_channel::{Error, Options, Receiver, Sender};
//!
//! # fn main() -> shm_channel::Result<()> {
//! let backend = shm_posix::Posix::new(); // or shm_sysv::SysV::new(), or your own backend
//! # let name: &'static str = Box::leak(format!("/doc-channel-{}", std::process::id()).into());
//! let opts = Options::new(8, 4096); // 8 slots of at most 4096 bytes
//!
//! // One process creates (here: this thread) ...
//! let mut rx = Receiver::create(&backend, name, &opts)?;
//! // ... another opens by name (here: a thread; in real life, another process).
//! let producer = std::thread::spawn(move || -> shm_channel::Result<()> {
//!     let mut tx = Sender::open(&shm_posix::Posix::new(), name, &opts)?;
//!     tx.send(b"hello")?; // a copy
//!     let mut loan = tx.loan()?; // zero-copy: write in place, then send
//!     loan.write_at(0, b"in place")?;
//!     loan.send(8)?;
//!     tx.send_value(&42u64)?; // plain data, by zerocopy's traits
//!     tx.finish() // the stream is complete: Ok once the receiver has all of it
//! });
//!
//! assert_eq!(rx.recv()?.to_vec(), b"hello");
//! let sample = rx.recv()?; // in place: the slot is released when `sample` drops
//! let mut buf = [0u8; 8];
//! sample.copy_to(&mut buf)?;
//! assert_eq!(&buf, b"in place");
//! drop(sample);
//! assert_eq!(rx.recv_value::<u64>()?, 42);
//! assert!(matches!(rx.recv(), Err(Error::Closed))); // drained, then Closed: whole
//! producer.join().expect("producer")?;
//! # Ok(()) }
//! ```
//!
//! The repository's examples run the same between real processes:
//! `cargo run --release -p shm-channel --example stream` (1 GiB, verified) and
//! `--example service` (request/response).
//!
//! # Shape
//!
//! A channel is one segment: a header (magic, layout version, slots, maximum message size,
//! the two ends' process ids), then a ring of `slots` slots, each a length word and room for
//! the largest message. One end creates it ([`Sender::create`] or [`Receiver::create`]); the
//! other opens it by name ([`open`](Receiver::open)), or both call
//! [`open_or_create`](Receiver::open_or_create) and either may start first. A
//! [`Server`]/[`Client`] pair is one segment with one slot, which carries the client's request
//! and then, in place, the server's answer: one call at a time, at the cost of two threads
//! playing ping-pong on one word (the answer travels in the cache line that brought the
//! request). A stream of messages each way needs two channels.
//!
//! - **Copying**: [`Sender::send`], [`Receiver::recv_into`], [`Sample::copy_to`],
//!   [`Sample::to_vec`].
//! - **Zero-copy**: [`Sender::loan`] gives a [`Loan`], a slot to fill in place and
//!   [`send`](Loan::send); [`Receiver::recv`] gives a [`Sample`], the message in its slot, which
//!   goes back to the sender when the sample is dropped.
//! - **Typed**: [`Sender::send_value`], [`Receiver::recv_value`], [`Sample::read_value`] for
//!   any `T` that zerocopy's derives say may be sent as bytes (`IntoBytes`) and received from
//!   any bytes (`FromBytes`).
//! - **Waiting**: every receive and send has a blocking form, a `try_` form ([`Error::Empty`],
//!   [`Error::Full`]) and `_timeout`/`_deadline` forms ([`Error::TimedOut`]). Waits use
//!   `shm_core::wait` (the strategy in [`Options::wait`]: by default spin for a few
//!   microseconds, then sleep on a futex); an idle end sleeps in the kernel and wakes every
//!   40 ms only to check that its peer lives.
//! - **Memory**: the slots made at create, nothing more; no heap allocation per message.
//!
//! # Async (feature `async`)
//!
//! Every wait has a future, driven only by `Waker`s, so it runs in any executor (tokio's
//! current-thread and multi-thread runtimes, smol, async-std and `futures::executor::block_on`
//! are tested):
//! [`Receiver::recv_async`], [`Sender::send_async`], [`Sender::loan_async`],
//! [`Client::call_async`], [`Server::recv_async`], a topic's
//! [`Subscriber::recv_async`](pubsub::Subscriber::recv_async) (and
//! [`TypedSubscriber::recv_async`](pubsub::TypedSubscriber::recv_async)), a service's
//! [`ServiceClient::call_async`](service::ServiceClient::call_async) and
//! [`Service::recv_async`](service::Service::recv_async), and
//! `wait_for_peer_async` on every end ([`Sender::wait_for_peer_async`], ...), each with a
//! `_deadline_async` form ([`Error::TimedOut`]; [`Receiver::recv_timeout_async`] too). Blocking code waits on several
//! ends at once with a [`WaitSet`] (any mix of ends: receivers, senders, clients, servers,
//! subscribers, services and their clients; a deadline per end and one for the set, peer death
//! per end).
//!
//! ```
//! # #[cfg(feature = "async")]
//! # fn main() -> shm_channel::Result<()> {
//! use shm_channel::{Options, Receiver, Sender};
//! # let name: &'static str = Box::leak(format!("/doc-async-{}", std::process::id()).into());
//! let backend = shm_posix::Posix::new();
//! let opts = Options::new(8, 64);
//! let mut rx = Receiver::create(&backend, name, &opts)?;
//! let mut tx = Sender::open(&backend, name, &opts)?;
//! futures::executor::block_on(async {
//!     tx.send_async(b"hello").await?;
//!     assert_eq!(rx.recv_async().await?.to_vec(), b"hello");
//!     Ok(())
//! })
//! # }
//! # #[cfg(not(feature = "async"))]
//! # fn main() {}
//! ```
//!
//! - **Fast when busy.** A future looks first, spinning for about a microsecond and a half as
//!   the blocking form does, and returns at once when the peer keeps up.
//! - **No thread per wait, no busy loop.** A future that must wait registers its word with
//!   `shm_core::reactor`, which wakes the registered `Waker`s when the peer's ordinary futex
//!   wake comes (the peer needs nothing new: a blocking peer wakes a future). On Linux 6.7+
//!   one waiter thread holds every word waited on as an io_uring futex wait, however many;
//!   one more thread checks the peers every 40 ms (each distinct peer once, however many
//!   ends wait on it): **two threads in all** for 1000 awaiting ends (tested, as 10 000
//!   awaits at once), and 1000 ends awaiting for a second used 1-6 ms of CPU in all on this
//!   busy machine (`tests/async_idle.rs`). Where io_uring is refused (a container's seccomp
//!   filter, `kernel.io_uring_disabled`), threads of `futex_waitv` (Linux 5.16+) serve 127
//!   words each, and without that a look every millisecond: `SHM_REACTOR=uring|waitv|poll`
//!   chooses, and `tests/async_engines.rs` runs every engine.
//! - **Cost**, measured on this project's 2-vCPU VM under a load average of 13 (`--release`,
//!   the `async_many` tests): registering a wait 3-6 µs, a wake about 5 µs per future
//!   (10 000 at once; the `futex_waitv` engine measured the same); a call whose server
//!   answers after 100 µs took 183 µs awaited against 179 µs blocking (a registration, the
//!   waiter thread's wake-up and the executor's); a call answered at once takes what the
//!   blocking one takes (no registration).
//! - **Peer death** reaches a pending future or wait set through a check every 40 ms, as for
//!   a blocking wait: 12-35 ms after a `kill -9` measured (tested under a second).
//! - **Cancellation is safe.** Dropping a future at any point takes nothing and leaves no
//!   registration: a message is taken only by the poll that returns it, a slot loaned only
//!   by the poll that returns the [`Loan`], a copy sent only by the poll that returns
//!   `Ok(())`; a call dropped after its request went is in flight, as after a
//!   [`Client::call_timeout`] that timed out (the next call takes its late answer first).
//! - **Examples**: `cargo run -p shm-channel --features async --example async_stream` (a
//!   tokio producer process and a tokio consumer process) and `--example async_service` (a
//!   tokio server answering four client processes, one task per client, on one thread).
//!
//! # Lifecycle
//!
//! - **Ending a stream.** The end of a stream says how it ended. [`Sender::finish`] ends it
//!   as complete: the receiver receives every message sent, then [`Error::Closed`], and
//!   `finish` returns `Ok` once the receiver has received it all (so a sender knows its data
//!   was delivered). A [`Sender`] dropped without `finish` (an error, a panic, a signal) ends
//!   it as **aborted**: the receiver receives every message sent, then [`Error::Aborted`],
//!   never the `Closed` of a whole stream. A sender's process that dies is
//!   [`Error::PeerDead`] for the receiver, after the messages it completed.
//! - **A receiver that stops.** Dropping the [`Receiver`] before the end is as a pipe's reader
//!   that leaves: the sender's sends (and its `finish`) fail with [`Error::Closed`] (a pipe's
//!   `EPIPE`). [`Receiver::abort`] says instead that the receiver failed: [`Error::Aborted`].
//!   So `finish` returns `Ok` only when the receiver received the end; whatever `send`
//!   accepted is either delivered or reported, a creator dropped before its receiver came
//!   included (it aborts; `finish` waits for the receiver).
//! - **Death.** Each end writes its process id, start time and pid namespace in the header,
//!   and holds a seat the kernel keeps for it: on POSIX and file-backed segments an exclusive
//!   lock on one byte of the segment's descriptor (`F_OFD_SETLK`), which the kernel drops when
//!   the process dies, in whatever pid namespace; on System V the segment's attach count. An
//!   end is dead when its seat is free (or only this end is attached), or, between ends of one
//!   pid namespace, when its process is gone, a zombie, or another process under a reused id.
//!   A pid that cannot be judged (another namespace; a `/proc` that shows another namespace,
//!   or hides the process as `hidepid=` hides another user's) is never taken for dead: only
//!   `kill` judges it then. A blocking call
//!   that has waited 40 ms checks the peer and fails with [`Error::PeerDead`], so a dead peer
//!   is known within about 50 ms; the `try_` forms check it at most every 5 ms while they find
//!   nothing to do; a sender checks whenever it finds the ring half full and the receiver not
//!   moving, so it learns of a dead receiver before the ring fills. Messages the peer completed
//!   before it died are received first. Every end can ask: `peer_alive()`.
//! - **Opening.** An open waits up to [`Options::open_timeout`] (5 s by default) for a channel
//!   whose creator is still making it (sizing the segment, writing the header).
//! - **Half-written messages.** A message exists for the receiver only once the sender
//!   published its count, after writing the bytes and the length. A sender killed in the
//!   middle of a message leaves a slot the receiver never reads.
//! - **Nothing left behind.** The name exists only until both ends are there: the end that
//!   opens removes it at once (the memory lives on while mapped, and the kernel frees it when
//!   the last end unmaps or dies). A creator dropped before a peer came removes its segment; a
//!   creator killed before a peer came leaves it until the next open or create of that name,
//!   which sees the dead creator and removes it. So however the two processes end, kill -9
//!   included, nothing stays in `/dev/shm` or `ipcs -m`. While it waits for its peer, `shm list`
//!   shows a channel as one segment of its name, sized as its header and slots need. (The
//!   removal goes through `Segment::unlink`, which removes only the segment this end opened.)
//! - **Who may remove a channel.** The system decides who may remove a name: on POSIX its
//!   owner (`/dev/shm` is sticky), on System V the owner or creator of the segment, and root.
//!   The opener removes the name as it joins when it may; when it may not (a channel between
//!   two users, mode `0o666` or so), the creator removes it as soon as it sees the join (its
//!   next wait) or when it is dropped. A name whose ends all died is removed by the next open
//!   or create of that name that may remove it; one that may not, but may write it, takes the
//!   segment over in place ([`open_or_create`](Receiver::open_or_create) writes a new header
//!   and becomes its creator), so no name refuses forever. A segment taken over stays its
//!   owner's, who can always reach it: so an end takes over another user's segment only when
//!   its own mode lets everyone read and write (`0o666`); one that asks for less gets
//!   [`Error::Busy`] naming the owner's uid. A dead lone end's seat is free: after
//!   a receiver died before any sender came, the next receiver takes its place.
//!
//! # What a peer that breaks the protocol can and cannot do
//!
//! The peer maps the same memory read-write: it can write anything there at any time. This
//! end assumes nothing about those bytes beyond what it checks.
//!
//! It **cannot** make safe code of this process read or write out of bounds, panic or hang
//! without a way out:
//!
//! - the header (magic, version, slots, maximum size, stride, total size, roles, process ids)
//!   is read once at open, checked, and kept in private memory; it is never read again, so
//!   rewriting it later changes nothing here. A stranger's segment, an older layout, other
//!   parameters, or a size that does not match are refused at open ([`Error::NotAChannel`],
//!   [`Error::Version`], [`Error::Mismatch`]);
//! - the only values read from shared memory after open are the peer's count (one load per
//!   wait, checked: at most `slots` ahead of this end's own count, else [`Error::Protocol`]),
//!   a slot's sequence word (only compared with the count this end expects), a message's
//!   length (one load, checked against the maximum, else [`Error::Protocol`]) and the
//!   connection state (in a pair: the slot's header, compared with the call this end
//!   expects, and the peer's count, which may only say the call came or the peer left);
//!   this end's own count lives in private memory, and every offset is computed from private
//!   values only, so every address touched is inside the mapping;
//! - a blocking call without a deadline waits as long as the peer's process lives (as a read
//!   from a pipe does); the `_timeout` and `try_` forms bound it. A peer that lies about its
//!   process id can only make this end think it lives.
//!
//! It **can**: change the bytes of any message at any time (a copy out may be torn: validate
//! data you did not make), send fewer or other messages than it should, and, on a backend
//! whose segments can be resized (POSIX, files), shrink the segment (see below).
//!
//! # Why `&[u8]` in place is `unsafe`
//!
//! A conforming peer never writes a slot while the other end holds it: the sender writes only
//! slots the receiver has released, and a [`Sample`] releases its slot only when dropped. But
//! no check in this process can stop a peer that breaks the protocol, and Rust assumes that
//! the bytes behind a `&[u8]` never change (and that nobody else touches those behind a
//! `&mut [u8]`). So this crate hands out no safe reference into shared memory: the safe forms
//! copy ([`Sample::copy_to`], [`Loan::write_at`]), and the in-place forms
//! ([`Sample::as_slice`], [`Sample::as_value`], [`Loan::as_mut_slice`],
//! [`Loan::as_mut_value`]) are `unsafe fn`s whose caller promises that the peer is a
//! conforming program (this crate, the same layout version), which is how the zero-copy
//! benchmark and examples use them.
//!
//! # SIGBUS
//!
//! A POSIX (or file) segment can be shrunk by a process that holds it, and a touch of a page
//! past the new end raises SIGBUS. Once both ends are there, the name is gone, so only the
//! peer itself can do that; before, anyone with permission to open the name can. The channel
//! touches its memory directly (that is its speed), so it cannot refuse such a page as
//! `Mapping::read_at` does. System V segments cannot shrink. Closing this for POSIX needs
//! sealed segments (`memfd_create` with `F_SEAL_SHRINK`) in `shm-core`.

#![deny(missing_docs)]

mod about;
#[cfg(feature = "async")]
mod asynch;
mod bytes;
pub mod discover;
mod error;
mod fields;
mod hub;
mod in_place;
mod layout;
mod lent;
mod options;
mod pair;
mod peer;
pub mod pubsub;
mod ring;
pub mod service;
mod shared;
#[cfg(feature = "async")]
mod waiting;
#[cfg(feature = "async")]
mod waitset;

pub use about::{ChannelInfo, End, Kind};
pub use error::{Error, Result};
pub use options::{DEFAULT_OPEN_TIMEOUT, Options};
pub use pair::{Client, Server};
pub use pubsub::{Policy, Publisher, Subscriber, TopicOptions};
pub use ring::{Loan, Receiver, Sample, Sender};
pub use shm_core::wait::WaitStrategy;
/// zerocopy, whose derives say which types may be sent as plain data: derive them through this
/// path (`#[zerocopy(crate = "shm_channel::zerocopy")]`) and one dependency line is enough.
pub use zerocopy;
#[cfg(feature = "async")]
pub use {
    asynch::{CallFuture, LoanFuture, RecvFuture, RequestFuture, SendFuture},
    waiting::PeerFuture,
    waitset::{Event, WaitSet, Waitable},
};
