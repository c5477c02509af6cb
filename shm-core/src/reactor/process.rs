//! This process's reactor: the engine it chose, its tables and the threads it made (a fork's
//! child starts a new one).

use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, MutexGuard};

use super::futex;
use super::shards::{self, WORDS_PER_THREAD};
use super::table::Table;
use super::uring;

/// How this process's reactor sleeps on its words (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// One thread, every word a futex wait in one io_uring (Linux 6.7+).
    Uring,
    /// A thread per [`WORDS_PER_THREAD`] words, each in one `futex_waitv` (Linux 5.16+).
    Waitv,
    /// As `Waitv`, each thread looking at its words every millisecond (no `futex_waitv`).
    Poll,
}

/// The reactor of this process: its engine, its tables, the threads it made.
pub(super) struct Process {
    pid: u32,
    engine: Option<Engine>,
    /// The ring probed by [`choose`], until its thread takes it.
    ring: Option<io_uring::IoUring>,
    uring: Option<Arc<Table>>,
    shards: Vec<Arc<Table>>,
    pub(super) threads: usize,
}

/// This process's reactor (after a fork: a new one; the parent's tables inherited stay where
/// no thread serves them, and only dropping their registrations is any use).
pub(super) fn process() -> MutexGuard<'static, Process> {
    static P: Mutex<Process> = Mutex::new(Process {
        pid: 0,
        engine: None,
        ring: None,
        uring: None,
        shards: Vec::new(),
        threads: 0,
    });
    let mut p = P.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if p.pid != pid {
        // The parent's ring, if any, is left alone: its memory is the parent's too.
        std::mem::forget(p.ring.take());
        *p = Process {
            pid,
            engine: None,
            ring: None,
            uring: None,
            shards: Vec::new(),
            threads: 0,
        };
    }
    p
}

/// The engine asked for (`SHM_REACTOR`) or the best the kernel has.
pub(super) fn choose(p: &mut Process) -> Engine {
    if let Some(e) = p.engine {
        return e;
    }
    let asked = std::env::var("SHM_REACTOR").unwrap_or_default();
    let engine = match asked.as_str() {
        "poll" => Engine::Poll,
        "waitv" => Engine::Waitv,
        _ => match uring::ring() {
            Ok(ring) => {
                p.ring = Some(ring);
                Engine::Uring
            }
            Err(_) => Engine::Waitv,
        },
    };
    let engine = if engine == Engine::Waitv && !futex::has_waitv() {
        Engine::Poll
    } else {
        engine
    };
    if engine == Engine::Poll {
        futex::use_poll();
    }
    p.engine = Some(engine);
    engine
}

/// Counts a thread made.
pub(super) fn made_thread() {
    process().threads += 1;
}

/// The tables of this process.
pub(super) fn tables() -> Vec<Arc<Table>> {
    let p = process();
    p.uring.iter().chain(p.shards.iter()).cloned().collect()
}

/// A table with room for one more registration (reserved), made with its thread when needed.
pub(super) fn place() -> std::io::Result<Arc<Table>> {
    let mut p = process();
    if choose(&mut p) == Engine::Uring {
        if p.uring.is_none() {
            if let Some(ring) = p.ring.take() {
                let table = Arc::new(Table::new(usize::MAX, true));
                let run = table.clone();
                std::thread::Builder::new()
                    .name("shm-async".to_owned())
                    .spawn(move || uring::serve(run, ring))?;
                p.threads += 1;
                p.uring = Some(table);
            }
        }
        if let Some(t) = p.uring.as_ref() {
            t.load.fetch_add(1, SeqCst);
            return Ok(t.clone());
        }
    }
    for t in p.shards.iter() {
        if t.load.load(SeqCst) < t.capacity {
            t.load.fetch_add(1, SeqCst);
            return Ok(t.clone());
        }
    }
    let table = Arc::new(Table::new(WORDS_PER_THREAD, false));
    table.load.store(1, SeqCst);
    let run = table.clone();
    std::thread::Builder::new()
        .name(format!("shm-async-{}", p.shards.len()))
        .spawn(move || shards::serve(&run))?;
    p.threads += 1;
    p.shards.push(table.clone());
    Ok(table)
}
