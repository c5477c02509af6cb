//! The `shm` binary end to end, one module per command family: real `shm` processes on real
//! kernel objects, output parsed and bytes checked through the kernel.
//!
//! Run `cargo build -p shm-cli` first when running this binary alone (`cargo test --workspace`
//! builds the `shm` binary itself).

mod bench;
mod bench_channel;
mod bridge;
mod channel;
mod compare;
mod docs;
mod idle_input;
mod manage;
mod pubsub;
mod taller;
mod usability;
