//! [`Lent`]: a [`Signal`] kept beside the owner of the memory its words are in, and lent out
//! only for a borrow of itself.
//!
//! An end of a ring or topic owns (through an `Arc`) the mapping its signals' words live in,
//! and keeps each signal for its whole life, because a hybrid signal learns its spin budget as
//! it waits. The signal's true lifetime is "as long as that `Arc` is held", which a field cannot
//! name (a struct cannot borrow from another of its fields). `Lent` stores the signal with that
//! lifetime erased, behind an `unsafe` constructor whose caller promises that the words outlive
//! the `Lent`, and gives it back only as `&'b Signal<'b>` for a borrow `'b` of the `Lent`
//! ([`Lent::get`]). Nothing derived from it (`Signal::words`, a clone) can outlive that borrow,
//! so nothing ever sees the erased lifetime: it is private to this module.

use shm_core::wait::Signal;

/// A signal whose words the caller of [`Lent::new`] keeps valid while it lives.
#[derive(Debug)]
pub(crate) struct Lent(
    /// Not `'static` in truth: "while this `Lent` lives" (see the module docs). Private to this
    /// module, and read only by [`Lent::get`].
    Signal<'static>,
);

impl Lent {
    /// Keeps `signal` beside the owner of its words.
    ///
    /// # Safety
    ///
    /// The two words `signal` is over stay valid (mapped at the same address) for as long as
    /// the returned `Lent` lives: for instance, they are inside a mapping that an `Arc` held
    /// by the same struct keeps, and that struct declares the `Lent` before the `Arc` (so it
    /// is dropped first).
    pub(crate) unsafe fn new(signal: Signal<'_>) -> Lent {
        // SAFETY: the same type with only its lifetime erased; the caller keeps the words valid
        // while the Lent lives, and `get` hands the signal out for a borrow of the Lent only.
        Lent(unsafe { std::mem::transmute::<Signal<'_>, Signal<'static>>(signal) })
    }

    /// The signal, for as long as `self` is borrowed (`Signal` is covariant: `&'b Signal<'b>`).
    #[inline]
    pub(crate) fn get(&self) -> &Signal<'_> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lent_signal_works_through_its_borrow() {
        use shm_core::wait::{Signal, WaitStrategy};
        use std::sync::atomic::AtomicU32;
        let words = Box::new((AtomicU32::new(0), AtomicU32::new(0)));
        // SAFETY: `words` outlives `lent` (dropped after it, at the end of the scope).
        let lent = unsafe { super::Lent::new(Signal::new(&words.0, &words.1, WaitStrategy::Spin)) };
        lent.get().store(5);
        assert_eq!(lent.get().load(), 5);
        assert_eq!(words.0.load(std::sync::atomic::Ordering::SeqCst), 5);
    }
}
