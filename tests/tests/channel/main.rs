//! shm-channel between real processes, one module per kind of channel, on every backend.
//! The test binary's helpers (unique names, cleanup guards, forked and re-run children) come
//! from the test library, `shm_tests`.

mod common;
mod process;
mod pubsub;
mod service;
