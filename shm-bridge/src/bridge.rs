//! [`Bridge`] (one key on one session), [`Link`] (how a session reaches the far side), and
//! what a half returns ([`Carried`], [`End`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use zenoh::Session;
use zenoh::Wait;
use zenoh::key_expr::KeyExpr;

use crate::error::{Error, Result};

/// How often an idle half looks at its stop flag and the far side's presence.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// How long (µs) a publication may wait for room on the link before Zenoh closes the session:
/// a day. Zenoh's default, 5 s, closed the link under a far side that read nothing for 5 s,
/// which ended the stream aborted where back-pressure should only have slowed it down. A far
/// side that is gone is still noticed through Zenoh's lease (10 s).
pub(crate) const BLOCK_BEFORE_CLOSE_US: u64 = 24 * 60 * 60 * 1_000_000;

/// The samples the `in` half lets Zenoh queue for it (a bound on what one bridge buffers).
pub const IN_QUEUE: usize = 16;

/// The liveliness token of the `out` half, under the key.
pub(crate) const OUT_TOKEN: &str = "shm-bridge-out";

/// The liveliness token the `in` half declares once it has ended its local channel as the
/// end of the stream said: the `out` half's acknowledgement that the end arrived.
pub(crate) const DONE_TOKEN: &str = "shm-bridge-in-done";

/// How long the `out` half waits for the acknowledgement after the far side left (it comes
/// first on the same link; this only covers callbacks run out of order).
pub(crate) const DONE_GRACE: Duration = Duration::from_secs(1);

/// How a stream ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum End {
    /// The sender finished: every message it sent was carried.
    #[default]
    Complete,
    /// The sender was aborted or died: the messages it completed were carried, and the far
    /// side's receiver learns that the stream did not complete.
    Aborted,
}

/// What a half carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    /// Messages carried.
    pub messages: u64,
    /// Their bytes, in total.
    pub bytes: u64,
    /// How the stream ended.
    pub end: End,
}

/// How a bridge's Zenoh session reaches the other side: endpoints in Zenoh's form
/// (`tcp/127.0.0.1:7447`, `tcp/[::1]:7447`, `tcp/host.example:7447`).
///
/// The session is a Zenoh peer that listens on the `listen` endpoints only (none by default,
/// where Zenoh would listen on every interface) and connects to the `connect` ones (retrying
/// until the other side is there); multicast scouting is off unless `scout` is set, so that
/// bridges on one network do not find strangers, nor strangers them. A publication blocked by
/// a slow far side waits (up to a day) instead of Zenoh closing the session after 5 s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// Endpoints to listen on.
    pub listen: Vec<String>,
    /// Endpoints to connect to.
    pub connect: Vec<String>,
    /// Find peers by multicast scouting too.
    pub scout: bool,
}

impl Link {
    /// A link that listens on `endpoint`.
    pub fn listen(endpoint: impl Into<String>) -> Link {
        Link {
            listen: vec![endpoint.into()],
            ..Link::default()
        }
    }

    /// A link that connects to `endpoint`.
    pub fn connect(endpoint: impl Into<String>) -> Link {
        Link {
            connect: vec![endpoint.into()],
            ..Link::default()
        }
    }

    /// Sets multicast scouting.
    pub fn scout(mut self, scout: bool) -> Link {
        self.scout = scout;
        self
    }

    /// The Zenoh configuration of this link.
    pub fn config(&self) -> Result<zenoh::Config> {
        let mut config = zenoh::Config::default();
        let json = |v: &[String]| {
            let quoted: Vec<String> = v.iter().map(|e| format!("{e:?}")).collect();
            format!("[{}]", quoted.join(","))
        };
        let settings = [
            ("mode", "\"peer\"".to_owned()),
            ("listen/endpoints", json(&self.listen)),
            ("connect/endpoints", json(&self.connect)),
            ("scouting/multicast/enabled", self.scout.to_string()),
            (
                "transport/link/tx/queue/congestion_control/block/wait_before_close",
                BLOCK_BEFORE_CLOSE_US.to_string(),
            ),
        ];
        for (key, value) in settings {
            config
                .insert_json5(key, &value)
                .map_err(Error::zenoh(format!("set {key} to {value}")))?;
        }
        Ok(config)
    }

    /// Opens a Zenoh session on this link (blocking; it returns once the listeners are up,
    /// while connections are retried in the background).
    pub fn open(&self) -> Result<Session> {
        zenoh::open(self.config()?)
            .wait()
            .map_err(Error::zenoh("open a session"))
    }
}

/// The key a channel travels on when none is given: `shm/NAME` (a leading `/` of the name
/// dropped).
///
/// ```
/// assert_eq!(shm_bridge::default_key("/logs"), "shm/logs");
/// ```
pub fn default_key(name: &str) -> String {
    format!("shm/{}", name.trim_start_matches('/'))
}

/// One key on one session: [`out`](Bridge::out) and [`inbound`](Bridge::inbound) carry a
/// local channel over it.
#[derive(Debug)]
pub struct Bridge<'a> {
    pub(crate) session: &'a Session,
    pub(crate) key: KeyExpr<'static>,
    stop: Option<&'a AtomicBool>,
}

impl<'a> Bridge<'a> {
    /// A bridge on `key`, an exact Zenoh key (no wildcards), or [`Error::InvalidKey`].
    pub fn new(session: &'a Session, key: &str) -> Result<Bridge<'a>> {
        let invalid = |reason: String| Error::InvalidKey {
            key: key.to_owned(),
            reason,
        };
        let key_expr = KeyExpr::try_from(key.to_owned()).map_err(|e| invalid(e.to_string()))?;
        if key.contains('*') || key.contains('$') {
            return Err(invalid(
                "it has wildcards; a bridge publishes and subscribes on one exact key".to_owned(),
            ));
        }
        Ok(Bridge {
            session,
            key: key_expr,
            stop: None,
        })
    }

    /// Stops the half that runs (within 100 ms) when `flag` becomes true: the stream is ended
    /// as aborted on both sides and the half returns [`Error::Interrupted`].
    pub fn stop_on(mut self, flag: &'a AtomicBool) -> Bridge<'a> {
        self.stop = Some(flag);
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        self.key.as_str()
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stop.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// A liveliness token's key under the bridge's key.
    pub(crate) fn token(&self, what: &str) -> String {
        format!("{}/{what}", self.key)
    }
}
