//! The async forms of every kind's waits (feature `async`): the futures of the stream, the
//! pair, the topic and the service, all on `shm_core::reactor` (no thread per wait). Each kind's
//! module here adds its `_async` methods to that kind's ends, below it.

mod pair;
mod pubsub;
mod ring;
mod service;

pub use pair::{CallFuture, RequestFuture};
pub use pubsub::SubRecvFuture;
pub use ring::{LoanFuture, RecvFuture, SendFuture};
pub use service::{ServiceCallFuture, ServiceRecvFuture};
