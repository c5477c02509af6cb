//! A service for many clients: one [`Service`] (the server) answers the calls of up to a
//! configured number of [`ServiceClient`]s at once, each answer to the client that made the
//! call.
//!
//! A service is one segment: a header, a bell, and one seat per client. A seat is a
//! request/response pair's slot: its client writes a request there and rings the bell; the
//! server, waiting for "any request" ([`Service::recv`]), finds it and writes the answer in the
//! same place ([`Request::reply`]), where the client reads it in place. Nothing is copied on
//! the way but the request and the answer themselves, once each.
//!
//! - **One client at the pair's speed.** While it waits, the server looks first at the seat it
//!   served last, so a lone client's call moves the seat's cache line there and back, as a
//!   [`Server`](crate::Server)/[`Client`](crate::Client) pair does, plus the bell's line (the
//!   bench's `service_rtt_1_vs_channel_rtt` says what that costs). The pair stays: one
//!   client and one server, when that is all, cost a little less.
//! - **Fair.** The server looks at the seats in turn from the one after the seat it served
//!   last, so no client waits behind another's stream of calls.
//! - **Full.** A client beyond the limit gets [`Error::ServiceFull`] at open (a seat of a client
//!   that left or died is given again as soon as the server freed it; an open that finds only
//!   such seats asks the server to free them and waits for it, up to
//!   [`ServiceOptions::open_timeout`]).
//! - **Death.** Each end is judged as a stream's ends are (see the crate docs): a lock the
//!   kernel drops when the process dies (POSIX, files), the attach count (System V), and the
//!   process id within one pid namespace. A client that dies, in a call or not, is noticed by
//!   the server within about 40 ms of its waiting (and every 40 ms while it is busy): its seat
//!   is freed and the server goes on. A dead server is known to a waiting client within about
//!   50 ms ([`Error::PeerDead`]); the first client that learns it removes the service's name.
//! - **Failing a call.** [`Request::fail`] answers with an error the client receives as
//!   [`Error::CallFailed`]; a [`Request`] dropped without an answer fails its call so (a
//!   server that panics, or returns early, never leaves a client waiting).
//! - **Async** (feature `async`): [`ServiceClient::call_async`] and [`Service::recv_async`]
//!   (and their `_deadline_async` forms) await on the same reactor as the pair's futures: an
//!   awaiting server answers blocking clients and awaiting ones alike, and a dead server
//!   reaches an awaited call as `PeerDead` within about 50 ms.
//! - **The name** stays while the server lives, so that clients may come at any time; the
//!   server removes it when dropped. A server killed with -9 leaves it to the first client
//!   that learns of the death, or to the next server of that name, which replaces it.
//!
//! # Trust
//!
//! As for the stream: the header is read once at open and checked; after that, the server
//! reads only the bell (compared), each seat's owner record (checked as a process id), its
//! "left" flag and its slot header (its count compared with the call the server expects, its
//! length checked against the maximum), and a client only its own seat's slot header and
//! answer count. Every address is computed from private values. A client that writes garbage
//! can only spoil its own calls, and a seat whose owner record is impossible is freed.
//!
//! ```
//! use shm_channel::service::{Service, ServiceClient, ServiceOptions};
//!
//! # fn main() -> shm_channel::Result<()> {
//! let backend = shm_posix::Posix::new();
//! # let name: &'static str = Box::leak(format!("/doc-service-{}", std::process::id()).into());
//! let opts = ServiceOptions::new(4096).clients(16);
//! let mut service = Service::create(&backend, name, &opts)?;
//! let server = std::thread::spawn(move || -> shm_channel::Result<()> {
//!     for _ in 0..2 {
//!         let request = service.recv()?; // any client's
//!         let mut answer = request.to_vec();
//!         answer.reverse();
//!         request.reply(&answer)?; // to the client that called
//!     }
//!     Ok(())
//! });
//! let mut a = ServiceClient::open(&backend, name, &opts)?;
//! let mut b = ServiceClient::open(&backend, name, &opts)?;
//! assert_eq!(a.call(b"abc")?.to_vec(), b"cba");
//! assert_eq!(b.call(b"xyz")?.to_vec(), b"zyx");
//! server.join().expect("server")?;
//! # Ok(()) }
//! ```

mod describe;
pub(crate) mod ends;
mod layout;

#[cfg(doc)]
use crate::Error;

#[cfg(feature = "async")]
pub use crate::asynch::{ServiceCallFuture, ServiceRecvFuture};
pub(crate) use describe::describe;
pub use ends::{Request, Service, ServiceClient, ServiceOptions};
pub(crate) use layout::MAGIC;
