//! The `in` half: each message published on the key, sent into a local channel as its sender.

use std::sync::Arc;

use shm_channel::{Error as ChannelError, Sender};
use zenoh::Wait;
use zenoh::handlers::FifoChannel;
use zenoh::sample::{Sample, SampleKind};

use crate::bridge::{Bridge, Carried, DONE_TOKEN, End, OUT_TOKEN, TICK};
use crate::error::{Error, Result};
use crate::watch::Presence;
use crate::wire::{Header, Kind};

/// Where the stream is: the run of the `out` bridge it comes from, and the next message due.
#[derive(Debug, Default)]
struct Expect {
    run: Option<u64>,
    next: u64,
}

impl Expect {
    /// Checks a header against the stream so far: the same run, the next number.
    fn check(&mut self, h: &Header) -> Result<()> {
        match self.run {
            None if self.next == 0 => self.run = Some(h.run),
            Some(run) if run == h.run => {}
            _ => {
                return Err(Error::Protocol(format!(
                    "a message of another out bridge (run {:x}) after {} messages: the out bridge \
                     restarted, or two publish on the key",
                    h.run, self.next
                )));
            }
        }
        if h.n != self.next {
            return Err(Error::Gap {
                expected: self.next,
                found: h.n,
            });
        }
        Ok(())
    }
}

impl Bridge<'_> {
    /// Sends each message published on the key into the local channel that `tx` sends on,
    /// in order, until the end of the stream; returns what it carried.
    ///
    /// It subscribes on the key and takes the samples one by one as they come (a bounded
    /// queue of [`IN_QUEUE`](crate::bridge::IN_QUEUE) samples: when the local channel is full, the
    /// queue fills, Zenoh stops reading the link, and the far publisher blocks). The end
    /// travels: at the end of a complete stream it calls [`Sender::finish`] and returns once
    /// the local receiver has received all of it (so the receiver ends with
    /// [`Error::Closed`](ChannelError::Closed), as it would locally); at the end of an aborted
    /// one, and on any failure, it drops `tx` unfinished, which aborts the local stream (the
    /// receiver gets what was delivered, then [`Error::Aborted`](ChannelError::Aborted)).
    ///
    /// A sample with the bridge's header must be the next message of the stream (else
    /// [`Error::Gap`] or [`Error::Protocol`], and the local end is aborted); a sample without
    /// one (a plain Zenoh publisher's) is delivered as one message, unchecked. The `out`
    /// bridge's disappearance before the end (killed, link lost) is
    /// [`Error::FarSideGone`]; the local receiver leaving is [`Error::LocalGone`] (this end
    /// unsubscribes, and the `out` bridge, seeing no subscriber, stops).
    pub fn inbound(&self, mut tx: Sender) -> Result<Carried> {
        let far = Arc::new(Presence::default());
        let seen = Arc::clone(&far);
        let _liveliness = self
            .session
            .liveliness()
            .declare_subscriber(self.token(OUT_TOKEN))
            .history(true)
            .callback(move |s: Sample| seen.set(s.kind() == SampleKind::Put))
            .wait()
            .map_err(Error::zenoh("watch the out bridge's liveliness token"))?;
        let subscriber = self
            .session
            .declare_subscriber(self.key.clone())
            .with(FifoChannel::new(crate::bridge::IN_QUEUE))
            .wait()
            .map_err(Error::zenoh(format!("subscribe to {}", self.key)))?;

        let mut carried = Carried::default();
        let mut expect = Expect::default();
        loop {
            let sample = match subscriber.recv_timeout(TICK) {
                Ok(Some(sample)) => sample,
                Ok(None) => {
                    if self.stopped() {
                        abort(tx);
                        return Err(Error::Interrupted {
                            messages: carried.messages,
                        });
                    }
                    if far.left() && subscriber.is_empty() {
                        abort(tx);
                        return Err(self.far_gone_in(&carried));
                    }
                    continue;
                }
                Err(e) => return Err(Error::zenoh("receive a sample")(e)),
            };
            if sample.kind() != SampleKind::Put {
                continue; // a delete on the key: no message
            }
            let header = match sample.attachment() {
                None => None,
                Some(a) => match Header::decode(&a.to_bytes()) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        abort(tx);
                        return Err(e);
                    }
                },
            };
            if let Some(h) = &header {
                if let Err(e) = expect.check(h) {
                    abort(tx);
                    return Err(e);
                }
            }
            match header.map(|h| h.kind) {
                Some(Kind::End(end)) => {
                    carried.end = end;
                    match end {
                        End::Complete => self.finish(tx, &carried)?,
                        End::Aborted => abort(tx),
                    }
                    // The acknowledgement: the out half returns once it sees it (declared
                    // before this half's subscriber goes, on the same link).
                    let _done = self
                        .session
                        .liveliness()
                        .declare_token(self.token(DONE_TOKEN))
                        .wait()
                        .map_err(Error::zenoh("declare the in bridge's done token"))?;
                    return Ok(carried);
                }
                Some(Kind::Message) | None => {
                    let len = sample.payload().len();
                    if let Err(e) = self.deliver(&mut tx, &sample, &carried) {
                        return Err(match e {
                            Error::Channel(ChannelError::Closed) => Error::LocalGone {
                                messages: carried.messages,
                            },
                            e => {
                                abort(tx);
                                e
                            }
                        });
                    }
                    expect.next += 1;
                    carried.messages += 1;
                    carried.bytes += len as u64;
                }
            }
        }
    }

    /// Copies one sample's payload into a loaned slot, slice by slice, and sends it.
    fn deliver(&self, tx: &mut Sender, sample: &Sample, carried: &Carried) -> Result<()> {
        let payload = sample.payload();
        let len = payload.len();
        if len > tx.max_message() {
            return Err(ChannelError::TooLarge {
                len,
                max: tx.max_message(),
            }
            .into());
        }
        let mut loan = loop {
            match tx.loan_timeout(TICK) {
                Ok(loan) => break loan,
                Err(ChannelError::TimedOut { .. }) if !self.stopped() => continue,
                Err(ChannelError::TimedOut { .. }) => {
                    return Err(Error::Interrupted {
                        messages: carried.messages,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        let mut at = 0;
        for slice in payload.slices() {
            loan.write_at(at, slice)?;
            at += slice.len();
        }
        loan.send(len)?;
        Ok(())
    }

    /// Ends a complete stream ([`Sender::finish`]) and waits until the local receiver has
    /// received all of it (a creator waits for its receiver to come first).
    fn finish(&self, mut tx: Sender, carried: &Carried) -> Result<()> {
        loop {
            match tx.finish_timeout(TICK) {
                Ok(()) => return Ok(()),
                Err(ChannelError::TimedOut { .. }) if !self.stopped() => {}
                Err(ChannelError::TimedOut { .. }) => {
                    return Err(Error::Interrupted {
                        messages: carried.messages,
                    });
                }
                Err(ChannelError::Closed) => {
                    return Err(Error::LocalGone {
                        messages: carried.messages,
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn far_gone_in(&self, carried: &Carried) -> Error {
        Error::FarSideGone {
            messages: carried.messages,
            aborted: true,
        }
    }
}

/// Ends the local channel as aborted: a sender dropped unfinished aborts its stream (the
/// local receiver gets every message delivered, then [`Error::Aborted`](ChannelError::Aborted)).
fn abort(tx: Sender) {
    drop(tx);
}
