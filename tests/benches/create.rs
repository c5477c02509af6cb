//! The POSIX backend against the `shared_memory` crate, doing the same work on the same sizes.
//!
//! * `create`: make a segment of the size and map it (shared_memory's `create` maps too). The
//!   backend runs with `reserve(false)`, since shared_memory does not reserve (no
//!   `posix_fallocate`); the backend still sets the mode exactly (`fchmod`) and creates
//!   atomically (the object is made whole, then named), which shared_memory does not.
//! * `open`: open an existing segment and map it (`shm_open`, `fstat`, `mmap` in both). The
//!   backend's name is parsed (checked) beforehand, as a program does once per name.
//! * `unlink`: drop a created, mapped segment (`munmap`, `shm_unlink`, `close` in both).
//!
//! Run with `cargo bench -p shm-tests --bench create`. Names are `/shmbench-PID-N`; every
//! segment is removed by its owner's drop, also when a benchmark panics.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use shared_memory::{Shmem, ShmemConf};
use shm_core::{Access, Backend, CreateOptions, Mapping, Segment, SegmentName};
use shm_posix::{Posix, PosixSegment};

const SIZES: [(usize, &str); 3] = [(4096, "4KiB"), (1 << 20, "1MiB"), (64 << 20, "64MiB")];

fn fresh_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/shmbench-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh name, also parsed (checked) for the backend, as a program does once per name.
fn fresh_names() -> (String, SegmentName) {
    let name = fresh_name();
    let parsed = SegmentName::new(&name).unwrap();
    (name, parsed)
}

fn posix_create(name: &SegmentName, size: usize) -> (Mapping, PosixSegment) {
    let seg = Posix::new()
        .create(name, &CreateOptions::new(size).reserve(false))
        .expect("posix create");
    (seg.map().expect("posix map"), seg)
}

fn crate_create(name: &str, size: usize) -> Shmem {
    ShmemConf::new()
        .size(size)
        .os_id(name)
        .create()
        .expect("shared_memory create")
}

fn create(c: &mut Criterion) {
    let mut g = c.benchmark_group("create");
    for (size, label) in SIZES {
        g.bench_function(BenchmarkId::new("shm_posix", label), |b| {
            b.iter_batched(
                fresh_names,
                |(_, name)| posix_create(&name, size),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("shared_memory", label), |b| {
            b.iter_batched(
                fresh_name,
                |name| crate_create(&name, size),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn open(c: &mut Criterion) {
    let mut g = c.benchmark_group("open");
    for (size, label) in SIZES {
        // The same creator for both: only the open differs.
        let made = || {
            let (name, parsed) = fresh_names();
            let owner = posix_create(&parsed, size);
            (name, parsed, owner)
        };
        g.bench_function(BenchmarkId::new("shm_posix", label), |b| {
            b.iter_batched(
                made,
                |(_, name, owner)| {
                    let seg = Posix::new()
                        .open(&name, Access::ReadWrite)
                        .expect("posix open");
                    (seg.map().expect("posix map"), seg, owner)
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("shared_memory", label), |b| {
            b.iter_batched(
                made,
                |(name, _, owner)| {
                    let shm = ShmemConf::new()
                        .os_id(&name)
                        .open()
                        .expect("shared_memory open");
                    (shm, owner)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn unlink(c: &mut Criterion) {
    let mut g = c.benchmark_group("unlink");
    for (size, label) in SIZES {
        g.bench_function(BenchmarkId::new("shm_posix", label), |b| {
            b.iter_batched(
                || posix_create(&fresh_names().1, size),
                // Unmap, then the owner's drop unlinks and closes.
                |(map, seg)| {
                    drop(map);
                    drop(seg);
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BenchmarkId::new("shared_memory", label), |b| {
            b.iter_batched(
                || crate_create(&fresh_name(), size),
                drop,
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = create, open, unlink
}
criterion_main!(benches);
