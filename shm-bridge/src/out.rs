//! The `out` half: a local channel's receiver, each message published on the key.

use std::sync::Arc;

use shm_channel::{Error as ChannelError, Receiver};
use zenoh::Wait;
use zenoh::qos::CongestionControl;

use crate::bridge::{Bridge, Carried, DONE_GRACE, DONE_TOKEN, End, OUT_TOKEN, TICK};
use crate::error::{Error, Result};
use crate::watch::Presence;
use crate::wire::{Header, Kind};
use zenoh::sample::{Sample, SampleKind};

impl Bridge<'_> {
    /// Carries every message of the local channel that `rx` receives to the key, in order,
    /// then the end of the stream; returns what it carried.
    ///
    /// It publishes nothing until a subscriber matches the key (the `in` half, or any Zenoh
    /// subscriber), so that no message goes to nobody; it waits for the next local message in
    /// the kernel, and every publication blocks while Zenoh cannot take it (congestion
    /// control `Block`), so a slow far side slows the local sender down, and nothing is
    /// dropped. When the local sender has ended, it publishes how: complete (it finished:
    /// [`Error::Closed`](shm_channel::Error::Closed) here) or aborted (it was dropped
    /// unfinished, or died), and returns once the far side has acknowledged the end (the `in`
    /// half does when it has ended its own channel the same way); the far side leaving
    /// without acknowledging it is [`Error::FarSideGone`].
    ///
    /// On any failure of the far side or of this half, `rx` is ended with
    /// [`Receiver::abort`]: the local sender's next send (or its `finish`) fails with
    /// [`Error::Aborted`](shm_channel::Error::Aborted), never taking a stream that did not
    /// cross for a delivered one. The failures: [`Error::FarSideGone`] (the subscriber left
    /// mid-stream), [`Error::Interrupted`] (the stop flag; the far side is told the stream was
    /// aborted), or the local channel's or Zenoh's error.
    pub fn out(&self, mut rx: Receiver) -> Result<Carried> {
        let carried = self.carry_out(&mut rx);
        if carried.is_err() {
            rx.abort();
        }
        carried
    }

    fn carry_out(&self, rx: &mut Receiver) -> Result<Carried> {
        let publisher = self
            .session
            .declare_publisher(self.key.clone())
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(Error::zenoh(format!("declare a publisher on {}", self.key)))?;
        let _token = self
            .session
            .liveliness()
            .declare_token(self.token(OUT_TOKEN))
            .wait()
            .map_err(Error::zenoh("declare the out bridge's liveliness token"))?;
        let done = Arc::new(Presence::default());
        let acked = Arc::clone(&done);
        let _done_watch = self
            .session
            .liveliness()
            .declare_subscriber(self.token(DONE_TOKEN))
            .callback(move |s: Sample| acked.set(s.kind() == SampleKind::Put))
            .wait()
            .map_err(Error::zenoh("watch the in bridge's done token"))?;
        let far = Arc::new(Presence::default());
        let seen = Arc::clone(&far);
        let _listener = publisher
            .matching_listener()
            .callback(move |status| seen.set(status.matching()))
            .wait()
            .map_err(Error::zenoh("listen for subscribers"))?;
        let status = publisher
            .matching_status()
            .wait()
            .map_err(Error::zenoh("ask for subscribers"))?;
        far.seed(status.matching());

        let run = crate::wire::new_run();
        let mut carried = Carried::default();
        let publish = |kind: Kind, n: u64, payload: Vec<u8>| -> Result<()> {
            publisher
                .put(payload)
                .attachment(Header { kind, run, n }.encode())
                .wait()
                .map_err(Error::zenoh(format!("publish on {}", self.key)))
        };
        let end = loop {
            let message = match rx.recv_timeout(TICK) {
                Ok(sample) => sample.to_vec(), // the slot goes back to the sender at once
                Err(ChannelError::TimedOut { .. }) => {
                    if self.stopped() {
                        if far.present() {
                            publish(Kind::End(End::Aborted), carried.messages, Vec::new())?;
                        }
                        return Err(Error::Interrupted {
                            messages: carried.messages,
                        });
                    }
                    if far.left() {
                        return Err(self.far_gone(&carried, false));
                    }
                    continue;
                }
                // The sender finished: the whole stream is here.
                Err(ChannelError::Closed) => break End::Complete,
                // The sender was dropped unfinished, or died: the stream is cut.
                Err(ChannelError::Aborted | ChannelError::PeerDead { .. }) => break End::Aborted,
                Err(e) => {
                    if far.present() {
                        // Best effort: the far side learns the stream will not complete.
                        let _ = publish(Kind::End(End::Aborted), carried.messages, Vec::new());
                    }
                    return Err(e.into());
                }
            };
            self.wait_present(&far, &carried)?;
            let len = message.len() as u64;
            publish(Kind::Message, carried.messages, message)?;
            carried.messages += 1;
            carried.bytes += len;
        };
        // The end must reach the far side, as every message did: wait for it to be there.
        self.wait_present(&far, &carried)?;
        publish(Kind::End(end), carried.messages, Vec::new())?;
        carried.end = end;
        // The far side acknowledges the end once it has ended its channel so; until then,
        // what was published may still be on its way. Leaving without the acknowledgement
        // (the link dropped, the far side killed) is no delivery.
        while !done.seen() {
            if self.stopped() {
                return Err(Error::Interrupted {
                    messages: carried.messages,
                });
            }
            if far.left() && !done.wait_seen(DONE_GRACE) {
                return Err(self.far_gone(&carried, false));
            }
            done.wait_seen(TICK);
        }
        Ok(carried)
    }

    /// Waits until a subscriber matches the key: at the start, the first one; once one has
    /// been there, its leaving is [`Error::FarSideGone`].
    fn wait_present(&self, far: &Presence, carried: &Carried) -> Result<()> {
        while !far.present() {
            if far.left() {
                return Err(self.far_gone(carried, false));
            }
            if self.stopped() {
                return Err(Error::Interrupted {
                    messages: carried.messages,
                });
            }
            far.wait_for(true, TICK);
        }
        Ok(())
    }

    fn far_gone(&self, carried: &Carried, aborted: bool) -> Error {
        Error::FarSideGone {
            messages: carried.messages,
            aborted,
        }
    }
}
