//! The watcher thread: every [`WATCH_INTERVAL`] while any registration watches a peer, asks
//! each distinct peer once whether it lives, and fires the registrations of the dead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use super::fired::Watch;

/// How often the watcher thread checks the peers of the words waited on ([`Watch::alive`]).
pub const WATCH_INTERVAL: Duration = Duration::from_millis(40);

/// Each distinct [`Watch::key`] once, with how many registrations watch it.
type Watched = HashMap<u128, (Arc<dyn Watch>, usize)>;

/// The peers watched.
struct Watches {
    peers: Mutex<Watched>,
    /// The watcher thread, once made, and the process it was made in (a fork's child has
    /// none of its parent's threads).
    thread: Mutex<Option<(u32, std::thread::Thread)>>,
}

fn watches() -> &'static Watches {
    static W: OnceLock<Watches> = OnceLock::new();
    W.get_or_init(|| Watches {
        peers: Mutex::new(HashMap::new()),
        thread: Mutex::new(None),
    })
}

/// This process's watcher thread, made the first time.
fn watcher_thread() -> std::io::Result<std::thread::Thread> {
    let mut thread = watches().thread.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if let Some((made_in, t)) = thread.as_ref() {
        if *made_in == pid {
            return Ok(t.clone());
        }
    }
    let handle = std::thread::Builder::new()
        .name("shm-async-watch".to_owned())
        .spawn(watcher)?;
    super::process::made_thread();
    let t = handle.thread().clone();
    *thread = Some((pid, t.clone()));
    Ok(t)
}

/// Counts a registration watching `watch`'s peer (making the watcher thread the first time);
/// returns its key.
pub(super) fn watch_peer(watch: Arc<dyn Watch>) -> std::io::Result<u128> {
    let w = watches();
    let thread = watcher_thread()?;
    let key = watch.key();
    let mut peers = w.peers.lock().unwrap_or_else(|e| e.into_inner());
    let first = peers.is_empty();
    peers.entry(key).or_insert_with(|| (watch, 0)).1 += 1;
    drop(peers);
    if first {
        thread.unpark();
    }
    Ok(key)
}

/// Counts a registration watching `key` no more.
pub(super) fn unwatch_peer(key: u128) {
    let mut peers = watches().peers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, n)) = peers.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            // Dropped outside the lock: the watch may hold the last hold on a mapping.
            let gone = peers.remove(&key);
            drop(peers);
            drop(gone);
        }
    }
}

/// The watcher thread: parked while nothing is watched.
fn watcher() {
    let w = watches();
    let mut wake = Vec::new();
    loop {
        if w.peers.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            std::thread::park();
            continue;
        }
        std::thread::sleep(WATCH_INTERVAL);
        let peers: Vec<(u128, Arc<dyn Watch>)> = {
            let peers = w.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .iter()
                .map(|(k, (watch, _))| (*k, watch.clone()))
                .collect()
        };
        let dead: Vec<u128> = peers
            .iter()
            .filter(|(_, watch)| !watch.alive())
            .map(|(k, _)| *k)
            .collect();
        drop(peers);
        if dead.is_empty() {
            continue;
        }
        for table in super::process::tables() {
            table.fire_dead(&dead, &mut wake);
        }
        for waker in wake.drain(..) {
            waker.wake();
        }
    }
}
