//! `shm create|info|list|rm|read|write`: segments from the shell, on either backend.
//!
//! A name that is given without `--backend` is looked up in every compiled backend: found in
//! one, that one is used; found in several, the command asks for `--backend` rather than guess.
//! `create` uses the default backend.

pub(crate) mod show;

use std::ffi::OsString;
use std::io::{self, Read, Write};

use anyhow::{Context as _, Result, bail};
use shm_core::{Access, Backend, CreateOptions, DynBackend, Error, Segment, SegmentName};

use crate::Global;
use crate::backend::{self, Kind};
use crate::units::{format_size, parse_mode, parse_offset, parse_size};

/// Arguments of `shm create`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    shm create /scratch --size 1MiB\n  \
    shm --backend sysv create /scratch --size 4096 --mode 0640")]
pub struct CreateArgs {
    /// The segment's name (`/name` or `name`; on System V it maps to a key, see `shm info`).
    name: String,
    /// Size: 4096, 4KiB, 1MiB, 2G (K, M, G are powers of 1024; KB, MB, GB of 1000).
    #[arg(long, short, value_parser = parse_size)]
    size: usize,
    /// Permission bits in octal, applied exactly whatever the umask.
    #[arg(long, short, value_parser = parse_mode, default_value = "0600")]
    mode: u32,
    /// Do not allocate the memory now (sparse; on POSIX a full /dev/shm then means SIGBUS on
    /// first touch instead of an error here).
    #[arg(long)]
    no_reserve: bool,
    /// Remove an existing segment of the same name first.
    #[arg(long)]
    replace: bool,
}

/// Arguments of `shm info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The segment's name; on System V also a key literal such as 0x0000abcd.
    name: String,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Arguments of `shm list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array of objects, one per segment.
    #[arg(long)]
    json: bool,
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
    name: String,
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

/// A System V key: `0x` and hex digits, or decimal; 0 (`IPC_PRIVATE`) names nothing.
fn parse_key(s: &str) -> Result<i32, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t
            .parse::<u32>()
            .ok()
            .or_else(|| t.parse::<i32>().ok().map(|k| k as u32)),
    };
    match parsed {
        Some(0) => Err("key 0 is IPC_PRIVATE, which names no segment".to_owned()),
        Some(k) => Ok(k as i32),
        None => Err(format!(
            "invalid key {s:?}: expected 0x and up to 8 hex digits, or a decimal number"
        )),
    }
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

/// Like [`find`], but a segment that exists nowhere is an error.
fn locate(g: &Global, name: &SegmentName) -> Result<Box<dyn DynBackend>> {
    match find(g, name)? {
        Some(b) => Ok(b),
        None => {
            let kinds: Vec<&str> = backend::compiled().iter().map(|k| k.as_str()).collect();
            bail!(
                "no segment {name} in {}; check the name (`shm list`), or create it with \
                 `shm create {name} --size SIZE`",
                kinds.join(" or ")
            )
        }
    }
}

/// `shm create`.
pub fn create(g: &Global, a: &CreateArgs) -> Result<()> {
    let name = name_of(&a.name)?;
    let backend = backend::get(g.backend)?;
    let opts = CreateOptions::new(a.size)
        .mode(a.mode)
        .reserve(!a.no_reserve)
        .replace(a.replace);
    let mut segment = backend.create(&name, &opts)?;
    // Until keep() the handle owns the segment: a failure here removes what was made.
    let info = segment.info()?;
    segment.keep();
    let mut what = Vec::new();
    if let Some(key) = info.key {
        what.push(format!("key {}", show::key_hex(key)));
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
    println!(
        "created {} segment {name}: {}; it stays until `shm {flag}rm {name}`",
        backend.name(),
        what.join(", ")
    );
    Ok(())
}

/// `shm info`.
pub fn info(g: &Global, a: &InfoArgs) -> Result<()> {
    let name = name_of(&a.name)?;
    let info = locate(g, &name)?.info(&name)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&show::info_json(&info))?);
    } else {
        for (label, value) in show::info_lines(&info) {
            println!("{label:<9} {value}");
        }
    }
    Ok(())
}

/// `shm list`.
pub fn list(g: &Global, a: &ListArgs) -> Result<()> {
    let kinds = match g.backend {
        Some(kind) => vec![kind],
        None => backend::compiled(),
    };
    let mut all = Vec::new();
    for kind in kinds {
        all.extend(backend::get(Some(kind))?.list()?);
    }
    if a.json {
        let array: Vec<_> = all.iter().map(show::info_json).collect();
        println!("{}", serde_json::to_string_pretty(&array)?);
    } else if all.is_empty() {
        println!("no segments");
    } else {
        let rows: Vec<_> = all.iter().map(show::list_row).collect();
        print!(
            "{}",
            show::render_table(&show::LIST_HEADERS, &rows, show::Style::Plain)
        );
    }
    Ok(())
}

/// One thing `shm rm` was asked to remove.
enum Target {
    Name(SegmentName),
    Key(i32),
    Id(i32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(n) => write!(f, "{n}"),
            Target::Key(k) => write!(f, "key {}", show::key_hex(*k)),
            Target::Id(id) => write!(f, "id {id}"),
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
    for target in &targets {
        match remove(g, target) {
            Ok(Some(line)) => println!("removed {line}"),
            Ok(None) if a.force => {}
            Ok(None) => errors.push(anyhow::anyhow!(
                "no segment {target}; see `shm list` (--force ignores this)"
            )),
            Err(e) => errors.push(e),
        }
    }
    match (errors.len(), targets.len()) {
        (0, _) => Ok(()),
        (_, 1) => Err(errors.remove(0)),
        (failed, all) => {
            for e in &errors {
                eprintln!("shm: error: {}", crate::one_line(e));
            }
            bail!("{failed} of {all} not removed")
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
            Ok(done.then(|| format!("{name} ({})", b.name())))
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
    match sysv.unlink_id(id) {
        Ok(()) if key != 0 => Ok(Some(format!("key {} (sysv, id {id})", show::key_hex(key)))),
        Ok(()) => Ok(Some(format!("id {id} (sysv)"))),
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
fn check_range(name: &SegmentName, size: usize, offset: usize, len: usize) -> Result<()> {
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

/// `shm read`.
pub fn read(g: &Global, a: &ReadArgs) -> Result<()> {
    let name = name_of(&a.name)?;
    let segment = locate(g, &name)?.open(&name, Access::ReadOnly)?;
    let size = segment.size();
    check_range(&name, size, a.offset, 0)?;
    let len = a.len.unwrap_or(size - a.offset);
    check_range(&name, size, a.offset, len)?;
    if len == 0 {
        return Ok(());
    }
    let map = segment.map()?;
    let mut out = io::stdout().lock();
    // Copy in slices, so that a large segment never needs a buffer of its size.
    const CHUNK: usize = 64 * 1024;
    let mut buf = vec![0u8; CHUNK.min(len)];
    let mut done = 0;
    while done < len {
        let n = CHUNK.min(len - done);
        let at = a.offset + done;
        map.read_at(at, &mut buf[..n])?;
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

/// `shm write`.
pub fn write(g: &Global, a: &WriteArgs) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let name = name_of(&a.name)?;
    let backend = locate(g, &name)?;
    let segment = backend.open(&name, Access::ReadWrite)?;
    let size = segment.size();
    check_range(&name, size, a.offset, 0)?;
    let data = match &a.data {
        Some(d) => d.as_bytes().to_vec(),
        None => {
            // One byte more than fits tells "too long" without reading an endless stdin.
            let room = (size - a.offset) as u64;
            let mut data = Vec::new();
            io::stdin()
                .lock()
                .take(room + 1)
                .read_to_end(&mut data)
                .context("cannot read stdin")?;
            if data.len() as u64 > room {
                bail!(
                    "stdin holds more than the {room} bytes that fit in {name} from offset {}",
                    a.offset
                );
            }
            data
        }
    };
    check_range(&name, size, a.offset, data.len())?;
    segment.map()?.write_at(a.offset, &data)?;
    println!(
        "wrote {} bytes to {name} ({}) at offset {}",
        data.len(),
        backend.name(),
        a.offset
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
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
