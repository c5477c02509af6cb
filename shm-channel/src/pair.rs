//! A request/response pair: two channels in one segment under one name, for calls.

use std::sync::Arc;
use std::time::Duration;

use shm_core::Backend;

use crate::shared::{How, Role, Shared};
use crate::{Options, Receiver, Result, Sample, Sender};

/// Ring 0 carries requests (client to server), ring 1 responses.
const REQUESTS: usize = 0;
const RESPONSES: usize = 1;

/// The serving end of a request/response pair: receives requests, sends responses.
///
/// ```no_run
/// # fn f() -> shm_channel::Result<()> {
/// use shm_channel::{Options, Server};
/// let backend = shm_posix::Posix::new();
/// let mut server = Server::create(&backend, "/adder", &Options::new(4, 64))?;
/// loop {
///     let (requests, responses) = server.parts();
///     let request = match requests.recv() {
///         Err(e) if e.is_disconnected() => break, // the client left
///         other => other?,
///     };
///     let [a, b]: [u32; 2] = request.read_value()?;
///     drop(request);
///     responses.send_value(&(a + b))?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    requests: Receiver,
    responses: Sender,
}

/// The calling end of a request/response pair: sends requests, receives responses.
///
/// ```no_run
/// # fn f() -> shm_channel::Result<()> {
/// use shm_channel::{Client, Options};
/// let backend = shm_posix::Posix::new();
/// let mut client = Client::open(&backend, "/adder", &Options::new(4, 64))?;
/// let sum: u32 = client.call(&[2u32, 3])?.read_value()?;
/// assert_eq!(sum, 5);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    requests: Sender,
    responses: Receiver,
}

impl Server {
    /// Creates the pair `name` on `backend`, as its server.
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Server> {
        Self::connect(backend, name, opts, How::Create)
    }

    /// Opens the pair `name` that a client created (same checks as [`Sender::open`]).
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Server> {
        Self::connect(backend, name, opts, How::Open)
    }

    /// Opens the pair, or creates it when there is none.
    pub fn open_or_create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Server> {
        Self::connect(backend, name, opts, How::OpenOrCreate)
    }

    fn connect<B: Backend>(backend: &B, name: &str, opts: &Options, how: How) -> Result<Server> {
        let shared = Shared::connect(backend, name, opts, Role::Server, how)?;
        Ok(Server {
            requests: Receiver::on(Arc::clone(&shared), REQUESTS),
            responses: Sender::on(shared, RESPONSES),
        })
    }

    /// The requests (to receive) and the responses (to send), both at once.
    pub fn parts(&mut self) -> (&mut Receiver, &mut Sender) {
        (&mut self.requests, &mut self.responses)
    }

    /// The next request; drop it before answering, or use [`Server::parts`].
    pub fn recv(&mut self) -> Result<Sample<'_>> {
        self.requests.recv()
    }

    /// Sends a response (a copy of `data`).
    pub fn reply(&mut self, data: &[u8]) -> Result<()> {
        self.responses.send(data)
    }

    /// Waits until a client has joined (returns at once on the end that opened).
    pub fn wait_for_peer(&self, timeout: Option<Duration>) -> Result<()> {
        self.requests.wait_for_peer(timeout)
    }
}

impl Client {
    /// Creates the pair `name` on `backend`, as its client.
    pub fn create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Client> {
        Self::connect(backend, name, opts, How::Create)
    }

    /// Opens the pair `name` that a server created (same checks as [`Sender::open`]).
    pub fn open<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Client> {
        Self::connect(backend, name, opts, How::Open)
    }

    /// Opens the pair, or creates it when there is none.
    pub fn open_or_create<B: Backend>(backend: &B, name: &str, opts: &Options) -> Result<Client> {
        Self::connect(backend, name, opts, How::OpenOrCreate)
    }

    fn connect<B: Backend>(backend: &B, name: &str, opts: &Options, how: How) -> Result<Client> {
        let shared = Shared::connect(backend, name, opts, Role::Client, how)?;
        Ok(Client {
            requests: Sender::on(Arc::clone(&shared), REQUESTS),
            responses: Receiver::on(shared, RESPONSES),
        })
    }

    /// Sends a request (a copy of the bytes of `request`, plain data) and waits for the
    /// response, received in place.
    pub fn call<T: zerocopy::IntoBytes + zerocopy::Immutable + ?Sized>(
        &mut self,
        request: &T,
    ) -> Result<Sample<'_>> {
        self.requests.send(request.as_bytes())?;
        self.responses.recv()
    }

    /// As [`Client::call`], waiting at most `timeout` for room and for the response.
    pub fn call_timeout<T: zerocopy::IntoBytes + zerocopy::Immutable + ?Sized>(
        &mut self,
        request: &T,
        timeout: Duration,
    ) -> Result<Sample<'_>> {
        let deadline = std::time::Instant::now() + timeout;
        self.requests.send_deadline(request.as_bytes(), deadline)?;
        self.responses.recv_deadline(deadline)
    }

    /// The requests (to send) and the responses (to receive), both at once.
    pub fn parts(&mut self) -> (&mut Sender, &mut Receiver) {
        (&mut self.requests, &mut self.responses)
    }

    /// Waits until a server has joined (returns at once on the end that opened).
    pub fn wait_for_peer(&self, timeout: Option<Duration>) -> Result<()> {
        self.requests.wait_for_peer(timeout)
    }
}
