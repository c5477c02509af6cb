//! The experiments behind `shm compare`: each behaviour where the POSIX and System V models of
//! shared memory differ, probed live on both, each observation returned as a line of text.
//!
//! Start here: [`BEHAVIOURS`], the list of [`Probe`]s with their labels, and [`probe_posix`] /
//! [`probe_sysv`], which run one probe in a [`Lab`].
//!
//! Each probe works in segments of its own (`/shm-compare-PID-N-LABEL`), and the [`Lab`]
//! removes everything a probe made when the row is done ([`Lab::clean`]) or dropped, also when
//! the probe fails. Some probes make raw system calls (`shm_open`, `shmget`) to show what the
//! kernel does where the backends smooth it over (the umask, size 0). Nothing ever touches
//! memory past the end of a segment: what would fault there is told from the sizes the kernel
//! reports. A probe's error is an observation too (the command shows it in the cell), so the
//! probes return [`anyhow::Result`].

// With neither backend compiled in, no probe uses the lab's helpers (nor its `probes!`).
#[cfg_attr(
    not(any(feature = "posix", feature = "sysv")),
    allow(dead_code, unused_macros, unused_imports)
)]
mod lab;
#[cfg(feature = "posix")]
mod posix;
#[cfg(feature = "sysv")]
mod sysv;

pub use anyhow::Result;
pub use lab::{Lab, Probe};

/// Every behaviour, in table order, with its label.
pub const BEHAVIOURS: [(Probe, &str); 19] = [
    (Probe::Identity, "identity"),
    (Probe::WhereItShows, "where it shows"),
    (Probe::OddSize, "size 100 (not a page multiple)"),
    (Probe::SizeZero, "size 0"),
    (Probe::OpenLarger, "open asking for more than the size"),
    (Probe::Resize, "resize"),
    (Probe::Limits, "limits"),
    (Probe::OverTheLimit, "more than /dev/shm holds"),
    (Probe::PastTheEnd, "past the end of the size"),
    (Probe::OpenAfterRemove, "open after remove"),
    (Probe::AttachAfterRemove, "attach after remove"),
    (Probe::AttachCount, "attach count"),
    (Probe::Fork, "fork"),
    (Probe::SurvivesCreator, "survives creator exit"),
    (Probe::Umask, "umask 022 on mode 0666"),
    (Probe::OtherUserOpens, "another user opens a 0600 one"),
    (Probe::OtherUserRemoves, "another user removes it"),
    (Probe::Namespaces, "namespaces"),
    (Probe::HugePages, "huge pages"),
];

/// Probes one behaviour on POSIX shared memory.
#[cfg(feature = "posix")]
pub fn probe_posix(p: Probe, lab: &mut Lab) -> Result<String> {
    posix::probe(p, lab)
}
/// Probes one behaviour on POSIX shared memory (not compiled in: says so).
#[cfg(not(feature = "posix"))]
pub fn probe_posix(_p: Probe, _lab: &mut Lab) -> Result<String> {
    Ok("posix backend not compiled in".to_owned())
}

/// Probes one behaviour on System V shared memory.
#[cfg(feature = "sysv")]
pub fn probe_sysv(p: Probe, lab: &mut Lab) -> Result<String> {
    sysv::probe(p, lab)
}
/// Probes one behaviour on System V shared memory (not compiled in: says so).
#[cfg(not(feature = "sysv"))]
pub fn probe_sysv(_p: Probe, _lab: &mut Lab) -> Result<String> {
    Ok("sysv backend not compiled in".to_owned())
}
