//! `shm create|info|list|rm|read|write`: segments from the shell, on either backend.
//!
//! A name that is given without `--backend` is looked up in every compiled backend: found in
//! one, that one is used; found in several, the command asks for `--backend` rather than guess.
//! `create` uses the default backend.

mod channel;
mod show;
mod users;

use std::ffi::OsString;
use std::io::{self, Read, Write};

use anyhow::{Context as _, Result, bail};
use shm_core::{
    Access, Backend, CreateOptions, DynBackend, Error, Segment, SegmentName, SegmentRef,
};

use crate::backend::{self, Global, Kind};
use crate::out::{self, escape, outln};
use crate::shutdown;
use shm_units::{format_size, parse_mode, parse_offset, parse_size};

/// Arguments of `shm create`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Python: multiprocessing.shared_memory.SharedMemory(name=\"scratch\") attaches \
    to /scratch, and Python up to 3.12 removes it when that Python exits, although it only \
    attached. Pass track=False (3.13+), or right after attaching call \
    multiprocessing.resource_tracker.unregister(shm._name, \"shared_memory\").\n\n\
    Examples:\n  \
    shm create /scratch --size 1MiB\n  \
    shm --backend sysv create /scratch --size 4096 --mode 0640"
)]
pub struct CreateArgs {
    /// The segment's name (`/name` or `name`; on System V it maps to a key, see `shm info`).
    name: String,
    /// Size: 4096, 4KiB, 1MiB, 2G (K, M, G are powers of 1024; KB, MB, GB of 1000).
    #[arg(long, short, value_parser = parse_size)]
    size: usize,
    /// Permission bits in octal, applied exactly whatever the umask.
    #[arg(long, short, value_parser = parse_mode, default_value = "0600")]
    mode: u32,
    /// Do not allocate the memory now (sparse). On a full /dev/shm, `shm read` then sees zeros
    /// and `shm write` fails with "no space"; another program that maps it may die of SIGBUS.
    #[arg(long)]
    no_reserve: bool,
    /// Remove an existing segment of the same name first.
    #[arg(long)]
    replace: bool,
}

/// Arguments of `shm info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The segment's name; with `--backend sysv` also a key literal such as 0x0000abcd.
    #[arg(required_unless_present = "id")]
    name: Option<String>,
    /// System V: the segment with this identifier (shmid), also one that was removed but is
    /// still attached, or one made with IPC_PRIVATE (key 0), which no name reaches.
    #[arg(long, value_name = "SHMID", conflicts_with = "name")]
    id: Option<i32>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of `shm list`.
///
/// POSIX: every regular file in /dev/shm, glibc's named semaphores (`sem.NAME`) included with
/// the status `semaphore` (they are not segments: info, read and rm refuse them). A name that is
/// not UTF-8 shows its invalid bytes as U+FFFD. System V: every segment of the IPC namespace,
/// also removed (`dest`) and IPC_PRIVATE ones (reach those with `--id`).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Why System V segments show no name: the kernel keeps a segment's key, never the name it was \
made by. shm turns a name into a key (an FNV-1a hash), which cannot be turned back; so `list` \
shows a System V name only for the names you give it (`shm list NAME...` looks each up by its \
key), and `shm info NAME` shows it too.\n\n\
KIND and ENDS: what a channel's header says (shm-channel: stream, pair, pubsub, service; its \
ends, alive or dead); `-` for other segments. Reading a System V segment's header attaches to \
it for a moment, which makes this process its LPID and sets its attach times: so System V \
headers are read only for the segments you name, or all with --channels (`?` otherwise).")]
pub struct ListArgs {
    /// Only these segments: POSIX names, and the System V segments with the keys of these
    /// names (shown with their names).
    names: Vec<String>,
    /// Only segments that no live process uses (STATUS unused): what is safe to remove after a
    /// crash. POSIX users are found in /proc as fuser does; processes that cannot be read
    /// (another user's, without root) make it `unused?`, and a note says how many.
    #[arg(long)]
    unused: bool,
    /// Print only what names each segment, one per line: POSIX names, System V keys (what
    /// `info`, `read` and `rm` take; shell completion uses it). A name holding a control
    /// character or a backslash shows escaped (`\n`, `\e`, `\xNN`, `\\`), as in the table.
    #[arg(long, short, conflicts_with = "json")]
    quiet: bool,
    /// Print a JSON array of objects, one per segment.
    #[arg(long)]
    json: bool,
    /// Read every System V segment's header too, to show its channel kind and ends (attaching
    /// for a moment: its LPID becomes this process's).
    #[arg(long)]
    channels: bool,
}

/// Arguments of `shm rm`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    shm rm /scratch /other\n  \
    shm rm --key 0x0000abcd --id 32769       System V segments made by other programs")]
pub struct RmArgs {
    /// Names of the segments to remove.
    #[arg(required_unless_present_any = ["keys", "ids"])]
    names: Vec<String>,
    /// System V: remove the segment with this key (0x hex or decimal), as `ipcrm -M`.
    #[arg(long = "key", value_name = "KEY", value_parser = parse_key)]
    keys: Vec<i32>,
    /// System V: remove the segment with this identifier (shmid), as `ipcrm -m`.
    #[arg(long = "id", value_name = "SHMID")]
    ids: Vec<i32>,
    /// Do not fail when a segment does not exist.
    #[arg(long, short)]
    force: bool,
}

/// Arguments of `shm read`.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// The segment's name.
    #[arg(required_unless_present = "id")]
    name: Option<String>,
    /// System V: the segment with this identifier (shmid), also a removed or IPC_PRIVATE one.
    #[arg(long, value_name = "SHMID", conflicts_with = "name")]
    id: Option<i32>,
    /// First byte to read.
    #[arg(long, short, default_value = "0", value_parser = parse_offset)]
    offset: usize,
    /// How many bytes (default: to the end of the segment).
    #[arg(long, short, value_parser = parse_offset)]
    len: Option<usize>,
    /// Print a hex dump instead of the raw bytes.
    #[arg(long, short = 'x')]
    hex: bool,
}

/// Arguments of `shm write`.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// The segment's name.
    name: String,
    /// The bytes to write (default: read from stdin).
    data: Option<OsString>,
    /// First byte to write.
    #[arg(long, short, default_value = "0", value_parser = parse_offset)]
    offset: usize,
}

/// A System V key: `0x` and hex digits, or decimal (negative too, as some tools print keys);
/// 0 (`IPC_PRIVATE`) names nothing. Read as the sysv backend reads key literals
/// (`shm_sysv::Key`).
#[cfg(feature = "sysv")]
fn parse_key(s: &str) -> Result<i32, String> {
    s.trim()
        .parse::<shm_sysv::Key>()
        .map(shm_sysv::Key::as_raw)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "sysv"))]
fn parse_key(_s: &str) -> Result<i32, String> {
    Err("--key needs the sysv backend, which is not compiled into this shm".to_owned())
}

fn name_of(s: &str) -> Result<SegmentName> {
    Ok(SegmentName::new(s)?)
}

/// Whether `backend` has a segment called `name`: a missing one or a name the backend cannot
/// hold is no; any other answer (including a permission error) is yes, and the real operation
/// reports it.
fn has(backend: &dyn DynBackend, name: &SegmentName) -> bool {
    !matches!(
        backend.dyn_info(name),
        Err(Error::NotFound { .. } | Error::InvalidName { .. })
    )
}

/// The backend that holds `name`: the one named by `--backend`, or the only compiled one that
/// has it. `Ok(None)` when none has it; an error when several do.
fn find(g: &Global, name: &SegmentName) -> Result<Option<Box<dyn DynBackend>>> {
    if g.backend.is_some() {
        return backend::get(g.backend).map(Some);
    }
    let mut found = Vec::new();
    for kind in backend::compiled() {
        // A key is a key only when the user says so (`--backend sysv`, or `--key`): without
        // it, a name that reads as a number is never taken for another program's key.
        if kind == Kind::Sysv && is_key_literal(name) {
            continue;
        }
        let b = backend::get(Some(kind))?;
        if has(b.as_ref(), name) {
            found.push((kind, b));
        }
    }
    if found.len() > 1 {
        let kinds: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        bail!(
            "{name} exists in {}; say which with --backend {}",
            kinds.join(" and "),
            kinds.join(" or --backend ")
        );
    }
    Ok(found.pop().map(|(_, b)| b))
}

/// Whether `name` would be read as a System V key literal (`0x1234`, `4660`, `-15`).
fn is_key_literal(name: &SegmentName) -> bool {
    #[cfg(feature = "sysv")]
    {
        shm_sysv::is_key_literal(name.as_str())
    }
    #[cfg(not(feature = "sysv"))]
    {
        let _ = name;
        false
    }
}

/// Like [`find`], but a segment that exists nowhere is an error.
fn locate(g: &Global, name: &SegmentName) -> Result<Box<dyn DynBackend>> {
    match find(g, name)? {
        Some(b) => Ok(b),
        None => {
            let kinds: Vec<&str> = backend::compiled().iter().map(|k| k.as_str()).collect();
            let key_hint = if is_key_literal(name) {
                format!(
                    "; {name} reads as a System V key, which it names only with --backend sysv \
                     (`shm --backend sysv info {}`)",
                    name.bare()
                )
            } else {
                String::new()
            };
            bail!(
                "no segment {} in {}; check the name (`shm list`), or create it with \
                 `shm create {} --size SIZE`{key_hint}",
                name.as_str(),
                kinds.join(" or "),
                name.as_str()
            )
        }
    }
}

/// `shm create`.
pub fn create(g: &Global, a: &CreateArgs) -> Result<()> {
    let name = name_of(&a.name)?;
    let backend = backend::get(g.backend)?;
    if backend.name() == "sysv" {
        refuse_rmid_forced()?;
    }
    let opts = CreateOptions::new(a.size)
        .mode(a.mode)
        .reserve(!a.no_reserve)
        .replace(a.replace);
    // Under the lock: a signal waits until the segment is either kept and reported, or removed.
    let _armed = shutdown::lock();
    if shutdown::pending() {
        bail!("interrupted");
    }
    let mut segment = backend.create(&name, &opts)?;
    // A key literal is shown as the key it is (`key 0x0bad1dea`), and removed as one.
    let seg = backend::segment_ref(backend.name(), &name);
    // Until keep() the handle owns the segment: a failure or a signal from here removes it.
    let info = match segment.info() {
        Ok(info) => info,
        // Racing `create --replace`s: another one removed ours already and made its own. Ours
        // was made as asked; what stands now is the other's.
        Err(Error::NotFound { .. } | Error::Stale { .. }) if a.replace => {
            return outln!(
                "created {} segment {}, and another `create --replace` has replaced it since",
                backend.name(),
                out::segment(&seg)
            );
        }
        Err(e) => return Err(e.into()),
    };
    if shutdown::pending() {
        bail!("interrupted; {seg} was removed again");
    }
    let mut what = Vec::new();
    match info.key {
        // Named by its key already: not twice.
        Some(key) if seg.key() != Some(key) => {
            what.push(format!("key {}", backend::key_hex(key)));
        }
        _ => {}
    }
    if let Some(id) = info.id {
        what.push(format!("id {id}"));
    }
    what.push(format!("{} bytes ({})", info.size, format_size(info.size)));
    what.push(format!("mode {:04o}", info.mode));
    let flag = match g.backend {
        Some(kind) if kind != backend::DEFAULT => format!("--backend {kind} "),
        _ => String::new(),
    };
    // Told, or not made: a create whose report cannot be written removes the segment again.
    outln!(
        "created {} segment {}: {}; it stays until `shm {flag}rm {}`",
        backend.name(),
        out::segment(&seg),
        what.join(", "),
        escape(&out::rm_target(&seg))
    )
    .with_context(|| format!("{seg} was removed again"))?;
    segment.keep();
    Ok(())
}

/// System V segments outlive their creator only while `kernel.shm_rmid_forced` is 0: with 1,
/// the kernel removes a segment as soon as no process has it attached, which for `shm create`
/// is at once. Refuse rather than report a segment that is already gone.
fn refuse_rmid_forced() -> Result<()> {
    let forced = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    if forced {
        bail!(
            "kernel.shm_rmid_forced is 1: the kernel removes a System V segment as soon as no \
             process has it attached, so a segment made by `shm create` would be gone when it \
             exits; use the posix backend, or set it to 0 (sysctl -w kernel.shm_rmid_forced=0)"
        );
    }
    Ok(())
}

/// `shm info`.
pub fn info(g: &Global, a: &InfoArgs) -> Result<()> {
    let info = match (&a.name, a.id) {
        (_, Some(id)) => sysv_by_id(g, id)?,
        (Some(name), None) => {
            let name = name_of(name)?;
            locate(g, &name)?.info(&name)?
        }
        (None, None) => bail!("name a segment, or a System V segment by --id"),
    };
    let usage = users::Users::for_infos([&info]).usage(&info);
    let chan = Ok(channel::of(&info));
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&show::info_json(&info, &usage, &chan))?
        )?;
    } else {
        let mut text = String::new();
        for (label, value) in
            show::info_lines(&info, &usage, chan.as_ref().ok().and_then(Option::as_ref))
        {
            text.push_str(&format!("{label:<9} {value}\n"));
        }
        crate::out::text(&text)?;
    }
    Ok(())
}

/// What the kernel says about the System V segment with identifier `id`.
#[cfg(feature = "sysv")]
fn sysv_by_id(g: &Global, id: i32) -> Result<shm_core::SegmentInfo> {
    if g.backend == Some(Kind::Posix) {
        bail!("--id names a System V segment; drop --backend posix");
    }
    Ok(shm_sysv::SysV::new().info_id(shm_sysv::ShmId::from_raw(id))?)
}

#[cfg(not(feature = "sysv"))]
fn sysv_by_id(_g: &Global, _id: i32) -> Result<shm_core::SegmentInfo> {
    bail!("--id needs the sysv backend, which is not compiled into this shm")
}

/// `shm list`.
pub fn list(g: &Global, a: &ListArgs) -> Result<()> {
    let kinds = match g.backend {
        Some(kind) => vec![kind],
        None => backend::compiled(),
    };
    let names = a
        .names
        .iter()
        .map(|n| name_of(n))
        .collect::<Result<Vec<_>>>()?;
    let mut all = Vec::new();
    for kind in kinds {
        let listed = backend::get(Some(kind))?.list()?;
        if names.is_empty() {
            all.extend(listed);
            continue;
        }
        for name in &names {
            all.extend(listed.iter().filter_map(|i| matching(kind, i, name)));
        }
    }
    // Users are shown or filtered on except by --quiet (names only).
    let users = if a.quiet && !a.unused {
        users::Users::default()
    } else {
        users::Users::for_infos(&all)
    };
    let mut shown: Vec<_> = all
        .into_iter()
        .map(|i| {
            let u = users.usage(&i);
            // What a channel's header says (not asked by --quiet, which prints names only; on
            // System V only where asked: reading attaches, which changes LPID).
            let read = !a.quiet && (i.backend != "sysv" || a.channels || !names.is_empty());
            let c = if read {
                Ok(channel::of(&i))
            } else {
                Err(channel::Unread)
            };
            (i, u, c)
        })
        .collect();
    if a.unused {
        shown.retain(|(i, u, _)| u.unused(i));
        if let Some((_, u, _)) = shown.iter().find(|(_, u, _)| u.unsure()) {
            let _ = writeln!(
                io::stderr(),
                "shm: note: {} processes could not be read (another user's, or outside this \
                 namespace); a POSIX segment marked unused? may be theirs",
                u.hidden
            );
        }
    }
    if a.quiet {
        let mut text = String::new();
        for (i, _, _) in shown.iter().filter(|(i, _, _)| !i.semaphore) {
            match (&i.name, i.key) {
                (Some(name), _) => text.push_str(&escape(name)),
                (None, Some(key)) if key != 0 => text.push_str(&backend::key_hex(key)),
                _ => continue,
            }
            text.push('\n');
        }
        crate::out::text(&text)?;
    } else if a.json {
        let array: Vec<_> = shown
            .iter()
            .map(|(i, u, c)| show::info_json(i, u, c))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&array)?)?;
    } else if shown.is_empty() {
        outln!("no segments")?;
    } else {
        let rows: Vec<_> = shown
            .iter()
            .map(|(i, u, c)| show::list_row(i, u, c))
            .collect();
        crate::out::text(&crate::table::render_table(
            &show::LIST_HEADERS,
            &rows,
            crate::table::Style::Plain,
        ))?;
    }
    Ok(())
}

/// `info` if it is the segment `name` names on `kind` (System V: by the name's key, and then
/// shown with the name), else `None`.
fn matching(
    kind: Kind,
    info: &shm_core::SegmentInfo,
    name: &SegmentName,
) -> Option<shm_core::SegmentInfo> {
    match kind {
        Kind::Posix => (info.name.as_deref() == Some(name.as_str())).then(|| info.clone()),
        Kind::Sysv => {
            let key = backend::sysv_key(kind, name)?;
            if info.key != Some(key) || info.removed {
                return None;
            }
            let mut info = info.clone();
            if !is_key_literal(name) {
                info.name = Some(name.as_str().to_owned());
            }
            Some(info)
        }
    }
}

/// One thing `shm rm` was asked to remove.
enum Target {
    Name(SegmentName),
    Key(i32),
    Id(i32),
}

impl Target {
    /// The target as people name it: with `--backend sysv`, a name that is a key literal is
    /// that key (without it, such a name is never taken for a key: see [`find`]).
    fn shown(&self, g: &Global) -> SegmentRef {
        match self {
            Target::Name(n) => match g.backend {
                Some(kind) => backend::segment_ref(kind.as_str(), n),
                None => SegmentRef::from(n),
            },
            Target::Key(k) => SegmentRef::Key(*k),
            Target::Id(id) => SegmentRef::Id(*id),
        }
    }
}

/// `shm rm`.
pub fn rm(g: &Global, a: &RmArgs) -> Result<()> {
    if (!a.keys.is_empty() || !a.ids.is_empty()) && g.backend == Some(Kind::Posix) {
        bail!("--key and --id name System V segments; drop --backend posix");
    }
    let mut targets = Vec::new();
    for n in &a.names {
        targets.push(Target::Name(name_of(n)?));
    }
    targets.extend(a.keys.iter().map(|&k| Target::Key(k)));
    targets.extend(a.ids.iter().map(|&id| Target::Id(id)));
    let mut errors = Vec::new();
    // A report that cannot be written does not stop the removals: every target is acted on,
    // and the first write error is reported at the end.
    let mut write_error = None;
    for target in &targets {
        // Each removal under the lock: a signal ends the command between two, never in one.
        let armed = shutdown::lock();
        if shutdown::pending() {
            break;
        }
        let removed = remove(g, target);
        drop(armed);
        match removed {
            Ok(Some(line)) => {
                if let Err(e) = outln!("removed {line}") {
                    write_error.get_or_insert(e);
                }
            }
            Ok(None) if a.force => {}
            Ok(None) => {
                let seg = target.shown(g);
                let list = match seg {
                    SegmentRef::Name(_) => "shm list",
                    _ => "shm --backend sysv list",
                };
                errors.push(anyhow::anyhow!(
                    "{}; see `{list}` (--force ignores this)",
                    out::missing(&seg)
                ))
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(e) = write_error {
        errors.push(e);
    }
    match (errors.len(), targets.len()) {
        (0, _) => Ok(()),
        (_, 1) => Err(errors.remove(0)),
        (failed, all) => {
            for e in &errors {
                crate::out::error(&crate::report::error_line(e));
            }
            bail!("{failed} of {all} failed")
        }
    }
}

/// Removes one target; `Ok(None)` when it does not exist, `Ok(Some(what))` when removed.
fn remove(g: &Global, target: &Target) -> Result<Option<String>> {
    let not_found = |r: shm_core::Result<()>| match r {
        Ok(()) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    };
    match target {
        Target::Name(name) => {
            let Some(b) = find(g, name)? else {
                return Ok(None);
            };
            let done = not_found(b.unlink(name))?;
            let seg = backend::segment_ref(b.name(), name);
            Ok(done.then(|| format!("{} ({})", out::segment(&seg), b.name())))
        }
        Target::Key(key) => remove_sysv(*key, None),
        Target::Id(id) => remove_sysv(0, Some(*id)),
    }
}

/// Removes the System V segment with `key` (when `id` is None) or with `id`.
#[cfg(feature = "sysv")]
fn remove_sysv(key: i32, id: Option<i32>) -> Result<Option<String>> {
    let sysv = shm_sysv::SysV::new();
    let id = match id {
        Some(id) => id,
        None => {
            // Removed segments keep their id but their key becomes 0: only live ones match.
            let live = sysv.list()?.into_iter().find(|i| i.key == Some(key));
            match live.and_then(|i| i.id) {
                Some(id) => id,
                None => return Ok(None),
            }
        }
    };
    // A segment removed already (dest) keeps its id until its last detach: removing it again
    // does nothing, and saying "removed" would be wrong.
    if let Ok(info) = sysv.info_id(shm_sysv::ShmId::from_raw(id)) {
        if info.removed {
            bail!(
                "id {id} (sysv) was already removed; it lives on until its last detach ({} \
                 attached)",
                info.nattch.unwrap_or(0)
            );
        }
    }
    match sysv.unlink_id(shm_sysv::ShmId::from_raw(id)) {
        Ok(()) if key != 0 => Ok(Some(format!(
            "{} (sysv, id {id})",
            out::segment(&SegmentRef::Key(key))
        ))),
        Ok(()) => Ok(Some(format!(
            "{} (sysv)",
            out::segment(&SegmentRef::Id(id))
        ))),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(feature = "sysv"))]
fn remove_sysv(_key: i32, _id: Option<i32>) -> Result<Option<String>> {
    bail!("--key and --id need the sysv backend, which is not compiled into this shm")
}

/// Checks that `offset..offset+len` lies inside a segment of `size` bytes; the error says what
/// fits.
fn check_range(name: &SegmentRef, size: usize, offset: usize, len: usize) -> Result<()> {
    if offset > size {
        bail!("offset {offset} is past the end of {name} ({size} bytes)");
    }
    if len > size - offset {
        bail!(
            "{len} bytes from offset {offset} reach past the end of {name} ({size} bytes; at \
             most {} fit there)",
            size - offset
        );
    }
    Ok(())
}

/// The segment `shm read`/`shm write` act on: by name (any backend that has it) or by System V
/// id; with its backend's name and the segment as people name it.
fn open_target(
    g: &Global,
    name: Option<&str>,
    id: Option<i32>,
    access: Access,
) -> Result<(Box<dyn shm_core::Segment>, &'static str, SegmentRef)> {
    match (name, id) {
        (_, Some(id)) => {
            let (segment, backend) = open_sysv_id(g, id, access)?;
            Ok((segment, backend, SegmentRef::Id(id)))
        }
        (Some(name), None) => {
            let name = name_of(name)?;
            let backend = locate(g, &name)?;
            let shown = backend::segment_ref(backend.name(), &name);
            Ok((backend.open(&name, access)?, backend.name(), shown))
        }
        (None, None) => bail!("name a segment, or a System V segment by --id"),
    }
}

#[cfg(feature = "sysv")]
fn open_sysv_id(
    g: &Global,
    id: i32,
    access: Access,
) -> Result<(Box<dyn shm_core::Segment>, &'static str)> {
    if g.backend == Some(Kind::Posix) {
        bail!("--id names a System V segment; drop --backend posix");
    }
    Ok((
        Box::new(shm_sysv::SysV::new().open_id(shm_sysv::ShmId::from_raw(id), access)?),
        "sysv",
    ))
}

#[cfg(not(feature = "sysv"))]
fn open_sysv_id(
    _g: &Global,
    _id: i32,
    _access: Access,
) -> Result<(Box<dyn shm_core::Segment>, &'static str)> {
    bail!("--id needs the sysv backend, which is not compiled into this shm")
}

/// Copies are made in slices of this size, so that no buffer grows with the segment.
const CHUNK: usize = 64 * 1024;

/// `shm read`.
pub fn read(g: &Global, a: &ReadArgs) -> Result<()> {
    let (segment, _, name) = open_target(g, a.name.as_deref(), a.id, Access::ReadOnly)?;
    let size = segment.size();
    check_range(&name, size, a.offset, 0)?;
    let len = a.len.unwrap_or(size - a.offset);
    check_range(&name, size, a.offset, len)?;
    if len == 0 {
        return Ok(());
    }
    let map = segment.map()?;
    let mut out = io::stdout().lock();
    let mut buf = vec![0u8; CHUNK.min(len)];
    let mut done = 0;
    while done < len {
        if shutdown::pending() {
            break;
        }
        let n = CHUNK.min(len - done);
        let at = a.offset + done;
        // Never SIGBUS: a copy that meets an end someone moved down is an error.
        map.read_at(at, &mut buf[..n])
            .with_context(|| format!("{done} bytes were written to stdout before"))?;
        let written = if a.hex {
            show::hex_dump(&mut out, at, &buf[..n])
        } else {
            out.write_all(&buf[..n])
        };
        match written {
            // The reader went away (`shm read x | head`): that is not an error.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            other => other.context("cannot write to stdout")?,
        }
        done += n;
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// The bytes left to read in stdin, where it is a regular file (`< file`): known before
/// anything is written. `None` for a pipe or terminal.
fn stdin_file_left() -> Option<u64> {
    use std::os::fd::AsRawFd;
    let fd = io::stdin().as_raw_fd();
    // SAFETY: an all-zero stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer; a bad descriptor is an error return.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    // SAFETY: lseek with SEEK_CUR and offset 0 only reports the position.
    let pos = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    let (size, pos) = (u64::try_from(st.st_size).ok()?, u64::try_from(pos).ok()?);
    Some(size.saturating_sub(pos))
}

/// `shm write`.
pub fn write(g: &Global, a: &WriteArgs) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let (segment, backend, name) = open_target(g, Some(&a.name), None, Access::ReadWrite)?;
    let size = segment.size();
    check_range(&name, size, a.offset, 0)?;
    if let Some(d) = &a.data {
        let data = d.as_bytes();
        check_range(&name, size, a.offset, data.len())?;
        segment.map()?.write_at(a.offset, data)?;
        return outln!(
            "wrote {} bytes to {} ({backend}) at offset {}",
            data.len(),
            out::segment(&name),
            a.offset
        );
    }
    // From stdin, streamed in slices: memory stays small whatever the input's size. One byte
    // more than fits tells "too long"; what came before it is written by then, and the error
    // says how much.
    let room = size - a.offset;
    if let Some(left) = stdin_file_left() {
        if left > room as u64 {
            bail!(
                "stdin holds {left} bytes, more than the {room} that fit in {} from offset {}; \
                 nothing was written",
                name,
                a.offset
            );
        }
    }
    let map = segment.map()?;
    let mut stdin = io::stdin().lock();
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0usize;
    loop {
        if shutdown::pending() {
            bail!("interrupted after {done} bytes");
        }
        let n = match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read stdin ({done} bytes written)"));
            }
        };
        if n > room - done {
            let fit = room - done;
            map.write_at(a.offset + done, &buf[..fit])?;
            bail!(
                "stdin holds more than the {room} bytes that fit in {} from offset {}; the first \
                 {room} were written",
                name,
                a.offset
            );
        }
        map.write_at(a.offset + done, &buf[..n])?;
        done += n;
    }
    outln!(
        "wrote {done} bytes to {} ({backend}) at offset {}",
        out::segment(&name),
        a.offset
    )
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(feature = "sysv")]
    fn keys() {
        use super::parse_key;
        assert_eq!(parse_key("0x1234"), Ok(0x1234));
        assert_eq!(parse_key("4660"), Ok(0x1234));
        assert_eq!(parse_key("0xffffffff"), Ok(-1));
        assert_eq!(parse_key("-1"), Ok(-1));
        assert!(parse_key("0").is_err());
        assert!(parse_key("0x").is_err());
        assert!(parse_key("0x123456789").is_err());
        assert!(parse_key("abc").is_err());
    }
}
