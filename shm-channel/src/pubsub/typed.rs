//! Typed topics: publishers and subscribers of one plain-data type, refused at open when the
//! topic's [`Fingerprint`] is not the type's.

use std::marker::PhantomData;
use std::time::Duration;

use shm_core::Backend;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::ends::{Publisher, SubSample, SubscribeOptions, Subscriber, TopicOptions};
use super::fingerprint::Fingerprint;
use crate::{Error, Result};

/// A [`Publisher`] of values of one plain-data type `T`, with `T`'s [`Fingerprint`] in the
/// topic's header. Each value is written straight into its slot (no copy in between).
///
/// ```
/// use shm_channel::pubsub::{SubscribeOptions, TopicOptions, TypedPublisher, TypedSubscriber};
/// use shm_channel::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
/// // One dependency line (shm-channel) is enough: derive through its re-export.
/// #[derive(IntoBytes, FromBytes, Immutable, KnownLayout)]
/// #[zerocopy(crate = "shm_channel::zerocopy")]
/// #[repr(C)]
/// struct Tick { seq: u64, price: f64 }
///
/// # fn main() -> shm_channel::Result<()> {
/// let backend = shm_posix::Posix::new();
/// # let name: &'static str = Box::leak(format!("/doc-ticks-{}", std::process::id()).into());
/// let mut tx = TypedPublisher::<Tick>::create(&backend, name, &TopicOptions::new(8, 0))?;
/// let mut rx = TypedSubscriber::<Tick>::open(&backend, name, &SubscribeOptions::new())?;
/// tx.publish(&Tick { seq: 1, price: 2.5 })?;
/// let t = rx.recv()?;
/// assert_eq!((t.seq, t.price), (1, 2.5));
/// // Another type under the same name is refused at open:
/// let e = TypedSubscriber::<u64>::open(&backend, name, &SubscribeOptions::new()).unwrap_err();
/// assert!(matches!(e, shm_channel::Error::WrongType { .. }), "{e}");
/// # Ok(()) }
/// ```
pub struct TypedPublisher<T> {
    inner: Publisher,
    _type: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for TypedPublisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedPublisher")
            .field("type", &std::any::type_name::<T>())
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T: IntoBytes + Immutable> TypedPublisher<T> {
    /// Creates the topic with [`Fingerprint::of::<T>()`](Fingerprint::of); `opts.max_message`
    /// is ignored (a message is one `T`).
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &TopicOptions) -> Result<Self> {
        Self::create_as(backend, name, opts, Fingerprint::of::<T>())
    }

    /// Creates the topic with a fingerprint of your choice (see [`Fingerprint::named`]); its
    /// size and alignment must be `T`'s.
    pub fn create_as<B: Backend>(
        backend: &B,
        name: &str,
        opts: &TopicOptions,
        fingerprint: Fingerprint,
    ) -> Result<Self> {
        check_type::<T>(fingerprint)?;
        let mut opts = opts.clone();
        opts.max_message = size_of::<T>().max(1);
        Ok(TypedPublisher {
            inner: Publisher::create_typed(backend, name, &opts, fingerprint)?,
            _type: PhantomData,
        })
    }

    /// Publishes `value`, written straight into its slot (waits as [`Publisher::publish`]).
    pub fn publish(&mut self, value: &T) -> Result<()> {
        let bytes = value.as_bytes();
        let mut loan = self.inner.loan()?;
        loan.write_at(0, bytes)?;
        loan.send(bytes.len())
    }

    /// Publishes `value` if that needs no wait, or [`Error::Full`].
    pub fn try_publish(&mut self, value: &T) -> Result<()> {
        self.inner.try_publish(value.as_bytes())
    }

    /// Publishes `value`, waiting at most `timeout`.
    pub fn publish_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
        self.inner.publish_timeout(value.as_bytes(), timeout)
    }

    /// The untyped publisher underneath (subscribers, peers, loans).
    pub fn inner(&mut self) -> &mut Publisher {
        &mut self.inner
    }
}

/// A [`Subscriber`] of values of one plain-data type `T` (any bit pattern is a valid `T`:
/// zerocopy's `FromBytes`), refused at open when the topic's [`Fingerprint`] is not `T`'s.
pub struct TypedSubscriber<T> {
    inner: Subscriber,
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for TypedSubscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedSubscriber")
            .field("type", &std::any::type_name::<T>())
            .field("inner", &self.inner)
            .finish()
    }
}

impl<T: FromBytes + IntoBytes + Immutable + KnownLayout> TypedSubscriber<T> {
    /// Joins the topic, whose fingerprint must be [`Fingerprint::of::<T>()`](Fingerprint::of).
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &SubscribeOptions) -> Result<Self> {
        Self::open_as(backend, name, opts, Fingerprint::of::<T>())
    }

    /// Joins the topic, whose fingerprint must be `fingerprint` (see [`Fingerprint::named`]).
    pub fn open_as<B: Backend>(
        backend: &B,
        name: &str,
        opts: &SubscribeOptions,
        fingerprint: Fingerprint,
    ) -> Result<Self> {
        check_type::<T>(fingerprint)?;
        Ok(TypedSubscriber {
            inner: Subscriber::open_typed(backend, name, opts, fingerprint)?,
            _type: PhantomData,
        })
    }

    /// Receives the next value, copied once out of its slot (safe whatever the publisher
    /// does: every bit pattern is a `T`).
    pub fn recv(&mut self) -> Result<T> {
        read::<T>(&self.inner.recv()?)
    }

    /// Receives the next value if one is there ([`Error::Empty`]).
    pub fn try_recv(&mut self) -> Result<T> {
        read::<T>(&self.inner.try_recv()?)
    }

    /// Receives the next value, waiting at most `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
        read::<T>(&self.inner.recv_timeout(timeout)?)
    }

    /// Receives the next value without blocking the thread (feature `async`; see
    /// [`Subscriber::recv_async`]): dropped before it is ready, it takes nothing.
    #[cfg(feature = "async")]
    pub async fn recv_async(&mut self) -> Result<T> {
        read::<T>(&self.inner.recv_async().await?)
    }

    /// As [`recv_async`](Self::recv_async), failing with [`Error::TimedOut`] after `timeout`.
    #[cfg(feature = "async")]
    pub async fn recv_timeout_async(&mut self, timeout: Duration) -> Result<T> {
        read::<T>(&self.inner.recv_timeout_async(timeout).await?)
    }

    /// The next message in place (for [`SubSample::as_slice`]: zero-copy, `unsafe`).
    pub fn recv_sample(&mut self) -> Result<SubSample<'_>> {
        self.inner.recv()
    }

    /// The untyped subscriber underneath (missed count, publisher's state).
    pub fn inner(&mut self) -> &mut Subscriber {
        &mut self.inner
    }
}

/// A fingerprint whose size and alignment are not `T`'s is a mistake of this program.
fn check_type<T>(f: Fingerprint) -> Result<()> {
    if f.size as usize != size_of::<T>()
        || f.align as usize != align_of::<T>()
        || f == Fingerprint::BYTES
    {
        return Err(Error::InvalidOptions(format!(
            "{f} is not the fingerprint of {} ({} bytes, alignment {})",
            std::any::type_name::<T>(),
            size_of::<T>(),
            align_of::<T>()
        )));
    }
    Ok(())
}

fn read<T: FromBytes + IntoBytes>(s: &SubSample<'_>) -> Result<T> {
    s.bytes().read_value()
}
