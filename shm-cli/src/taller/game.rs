//! The two sides of the game: the server creates, the client opens; both play the same rounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use shm_core::{Access, CreateOptions, DynBackend, Mapping, Segment};

use super::lines::Out;
use super::options::{Game, MODE, SIZE, ServerArgs};
use crate::backend::{Kind, key_hex, segment_ref, sysv_key};
use crate::shutdown;
use shm_bench::lockstep::{Board, CLIENT_AT, Role, SERVER_AT};

/// `shm taller server`: create, play, remove.
pub(super) fn server(backend: Arc<dyn DynBackend>, args: &ServerArgs) -> Result<()> {
    let out = Out::plain();
    let map = create(&backend, args, out)?;
    let played = play(&map, Role::Server, &args.game, out);
    let removed = remove(out);
    played.and(removed)
}

/// `shm taller client`: open, play, unmap.
pub(super) fn client(kind: Kind, backend: &dyn DynBackend, game: &Game) -> Result<()> {
    let out = Out::plain();
    let name = &game.name;
    let seg = backend.dyn_open(name, Access::ReadWrite).map_err(|e| {
        let hint = e.is_not_found().then(|| {
            // A key literal is named as the key it is, once; a name with its key, if any.
            let shown = segment_ref(kind.as_str(), name);
            let key = match sysv_key(kind, name) {
                Some(key) if shown.key().is_none() => format!(", key {}", key_hex(key)),
                _ => String::new(),
            };
            let again = match shown.key() {
                Some(k) => key_hex(k),
                None => name.to_string(),
            };
            format!(
                "no taller server is running on {shown} ({kind}{key}); start the server first: \
                 `shm --backend {kind} taller server --name {again}`"
            )
        });
        let e = anyhow::Error::new(e);
        match hint {
            Some(hint) => e.context(hint),
            None => e,
        }
    })?;
    let map = seg.map()?;
    if game.lockstep {
        claim_client_seat(&map, name)?;
    }
    out.say(start_line("opened", seg.as_ref(), Role::Client, game)?);
    play(&map, Role::Client, game, out)
    // The mapping is dropped (unmapped) here; the segment stays for the server to remove.
}

/// Byte offset of the lockstep client's seat: 0 while free, then the pid of the client that
/// took it. Beyond what the reference program touches (bytes 0 to 7).
const CLIENT_SEAT_AT: usize = 72;

/// Takes the one client seat of a lockstep game, or fails: a second client would answer moves
/// meant for the first, and both would fail while the server counted the game as won.
fn claim_client_seat(map: &Mapping, name: &shm_core::SegmentName) -> Result<()> {
    let seat = map.atomic::<AtomicU32>(CLIENT_SEAT_AT)?;
    let me = std::process::id();
    if let Err(taken) = seat.compare_exchange(0, me, SeqCst, SeqCst) {
        bail!(
            "another client (pid {taken}) is already playing on {name}; a lockstep game has one \
             client: wait for it to end, or start another server under another --name"
        );
    }
    Ok(())
}

/// The server's start: creates the segment (exclusively, unless --replace), maps it, zeroes both
/// ints, prints the start line, and hands the segment to the signal cleanup, which removes it
/// on a signal and gives it back to [`remove`] at the end.
pub(super) fn create(
    backend: &Arc<dyn DynBackend>,
    args: &ServerArgs,
    out: Out<'_>,
) -> Result<Mapping> {
    let name = &args.game.name;
    let opts = CreateOptions::new(SIZE).mode(MODE).replace(args.replace);
    // Under the lock, so that a signal sees either no segment or one that it must remove.
    let mut armed = shutdown::lock();
    if shutdown::pending() {
        bail!("interrupted before the server started");
    }
    let seg = backend.dyn_create(name, &opts).map_err(|e| {
        if e.is_already_exists() {
            // The command's own advice, in its own terms (the library's speaks of its API).
            let flag = match backend.dyn_name() {
                b if b == crate::backend::DEFAULT.as_str() => String::new(),
                b => format!("--backend {b} "),
            };
            let shown = segment_ref(backend.dyn_name(), name);
            anyhow::anyhow!(
                "cannot start the server: {shown} is taken (left by an earlier run, or a server \
                 still running); remove it with `shm {flag}rm {}` or pass --replace",
                crate::out::rm_target(&shown)
            )
        } else {
            anyhow::Error::new(e)
        }
    })?;
    // From here an error drops `seg`, which removes the segment (this handle owns it).
    let map = seg.map()?;
    for at in [SERVER_AT, CLIENT_AT] {
        map.atomic::<AtomicI32>(at)?.store(0, SeqCst);
    }
    let line = start_line("created", seg.as_ref(), Role::Server, &args.game)?;
    armed.segment = Some(seg);
    armed.prefix = out.prefix;
    drop(armed);
    out.say(line);
    Ok(map)
}

/// The server's end: takes the segment back from the signal cleanup and removes it (mappings
/// stay valid). A segment that another server took over (`--replace`) is left to it.
pub(super) fn remove(out: Out<'_>) -> Result<()> {
    let mut armed = shutdown::lock();
    let Some(mut seg) = armed.segment.take() else {
        return Ok(());
    };
    match seg.unlink() {
        Err(shm_core::Error::Stale { .. }) => {
            out.say(format_args!(
                "left {} alone: another server took it over",
                seg.name()
            ));
            Ok(())
        }
        other => {
            other.with_context(|| format!("cannot remove {} at the end of the game", seg.name()))
        }
    }
}

/// "created posix segment /test.shmem, 4096 bytes, mode 0600; 10 rounds, 800ms apart", with
/// the key and id for System V.
fn start_line(verb: &str, seg: &dyn Segment, role: Role, game: &Game) -> Result<String> {
    let info = seg.info()?;
    let shown = segment_ref(info.backend, seg.name());
    let mut line = format!(
        "{verb} {} segment {}",
        info.backend,
        crate::out::segment(&shown)
    );
    match (info.key, info.id) {
        // Named by its key already: the id alone.
        (Some(_), Some(id)) if shown.key().is_some() => line.push_str(&format!(" (id {id})")),
        (Some(key), Some(id)) => line.push_str(&format!(" (key {}, id {id})", key_hex(key))),
        _ => {}
    }
    line.push_str(&format!(
        ", {} bytes, mode {:04o}; {} round{}",
        info.size,
        info.mode,
        game.rounds,
        if game.rounds == 1 { "" } else { "s" }
    ));
    if game.lockstep {
        line.push_str(&format!(
            " in lockstep (wait {}, timeout {:?})",
            game.wait, game.timeout
        ));
    } else {
        line.push_str(&format!(", {:?} apart", interval(role, game)));
    }
    Ok(line)
}

/// The time between rounds: as asked, or the reference program's (server 800ms, client 500ms).
fn interval(role: Role, game: &Game) -> Duration {
    game.interval.unwrap_or(match role {
        Role::Server => Duration::from_millis(800),
        Role::Client => Duration::from_millis(500),
    })
}

/// Plays the rounds and prints the final pair ("Quit server: 14, 13").
pub(super) fn play(map: &Mapping, role: Role, game: &Game, out: Out<'_>) -> Result<()> {
    let (me, peer) = match role {
        Role::Server => ("server", "client"),
        Role::Client => ("client", "server"),
    };
    let (server_int, client_int) = if game.lockstep {
        let board = Board::new(map, role, game.wait)?;
        let played = board.play(game.rounds, game.timeout, |mine, other| {
            if game.verbose {
                out.say(format_args!("I am taller. {mine}, {other}"));
            }
        });
        if let Err(e) = played {
            let e = anyhow::Error::new(e);
            // A client that never moved never came: say how to start one in time.
            return Err(if role == Role::Server && board.pair().1 == 0 {
                e.context(format!(
                    "no client joined within {:?}: start `shm taller client --lockstep --name {}` \
                     within --timeout of the server",
                    game.timeout, game.name
                ))
            } else {
                e
            });
        }
        board.pair()
    } else {
        let server_int = map.atomic::<AtomicI32>(SERVER_AT)?;
        let client_int = map.atomic::<AtomicI32>(CLIENT_AT)?;
        let (mine, other) = match role {
            Role::Server => (server_int, client_int),
            Role::Client => (client_int, server_int),
        };
        let pause = interval(role, game);
        // The reference program's loop, round for round.
        for i in 0..game.rounds {
            let (m, o) = (mine.load(SeqCst), other.load(SeqCst));
            if m <= o {
                let m = o.wrapping_add(1);
                mine.store(m, SeqCst);
                out.say(format_args!("I am taller. {m}, {o}"));
            }
            std::thread::sleep(pause);
            out.say(format_args!("Checking {peer} {i}"));
        }
        (server_int.load(SeqCst), client_int.load(SeqCst))
    };
    out.say(format_args!("Quit {me}: {server_int}, {client_int}"));
    Ok(())
}
