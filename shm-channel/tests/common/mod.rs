//! What several of shm-channel's async test binaries share.

use std::future::Future;

/// Runs the future `make()` makes under each executor the crate's docs name: tokio
/// (current-thread and multi-thread), `futures::executor::block_on`, smol and async-std.
pub fn on_every_executor<F: Future<Output = ()>>(make: impl Fn(&'static str) -> F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(make("current_thread"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(make("multi_thread"));
    futures::executor::block_on(make("block_on"));
    smol::block_on(make("smol"));
    async_std::task::block_on(make("async_std"));
}
