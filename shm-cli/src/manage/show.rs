//! How segments are shown: the JSON object of a [`SegmentInfo`], the human table and detail
//! lines, times, owner names and hex dumps.

use std::ffi::CStr;
use std::io::{self, Write};

use serde_json::{Value, json};
use shm_channel::ChannelInfo;
use shm_core::SegmentInfo;

use super::channel::{self, Found};
use super::users::Usage;

use crate::backend::key_hex;
use crate::out::escape;
use shm_units::format_size;

/// The one JSON object of a segment, for `list --json` and `info --json`; `c` is the channel it
/// holds, if any.
pub fn info_json(i: &SegmentInfo, u: &Usage, c: &Found) -> Value {
    json!({
        "backend": i.backend,
        "name": i.name,
        "key": i.key.map(key_hex),
        "id": i.id,
        "size": i.size,
        "mode": format!("{:04o}", i.mode),
        "uid": i.uid,
        "gid": i.gid,
        "owner": owner(i.uid),
        "nattch": nattch(i, u),
        "pids": u.pids,
        "hidden_processes": u.pids.as_ref().map(|_| u.hidden),
        "creator_command": u.creator,
        "last_command": u.last_user,
        "unused": u.unused(i),
        "cpid": i.cpid,
        "lpid": i.lpid,
        "atime": i.atime,
        "dtime": i.dtime,
        "ctime": i.ctime,
        "mtime": i.mtime,
        "removed": i.removed,
        "locked": i.locked,
        "semaphore": i.semaphore,
        "channel": channel::json(c),
        "channel_read": c.is_ok(),
    })
}

/// The columns of `shm list`.
pub const LIST_HEADERS: [&str; 13] = [
    "BACKEND", "NAME", "KEY", "ID", "SIZE", "MODE", "OWNER", "NATTCH", "CPID", "LPID", "STATUS",
    "KIND", "ENDS",
];

/// One row of `shm list`, in [`LIST_HEADERS`] order.
pub fn list_row(i: &SegmentInfo, u: &Usage, c: &Found) -> Vec<String> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    vec![
        i.backend.to_owned(),
        opt(i.name.as_deref().map(escape)),
        opt(i.key.map(key_hex)),
        opt(i.id.map(|v| v.to_string())),
        format_size(i.size),
        format!("{:04o}", i.mode),
        escape(&owner(i.uid)),
        nattch_text(i, u),
        opt(i.cpid.map(|v| v.to_string())),
        opt(i.lpid.map(|v| v.to_string())),
        status(i, u),
        channel::kind_cell(c),
        channel::ends_cell(c),
    ]
}

/// The STATUS column: `dest` (removed, still attached), `locked` (SHM_LOCK), `unused` (no live
/// process maps or holds it), joined by commas, or `semaphore` (a glibc named semaphore, not a
/// segment), or `-`.
fn status(i: &SegmentInfo, u: &Usage) -> String {
    if i.semaphore {
        return "semaphore".to_owned();
    }
    let mut words = Vec::new();
    if i.removed {
        words.push("dest");
    }
    if i.locked {
        words.push("locked");
    }
    if u.unused(i) {
        // "unused?": none seen, but some processes could not be read.
        words.push(if u.unsure() { "unused?" } else { "unused" });
    }
    if words.is_empty() {
        "-".to_owned()
    } else {
        words.join(",")
    }
}

/// The attach count: the kernel's (System V), or the processes seen to map or hold the segment
/// (POSIX); `None` where it is unknown.
fn nattch(i: &SegmentInfo, u: &Usage) -> Option<u64> {
    i.nattch.or(u.pids.as_ref().map(|p| p.len() as u64))
}

/// NATTCH as shown: the count, with `+` when processes that could not be read may add to it.
fn nattch_text(i: &SegmentInfo, u: &Usage) -> String {
    match nattch(i, u) {
        Some(n) if u.unsure() => format!("{n}+"),
        Some(n) => n.to_string(),
        None => "-".to_owned(),
    }
}

/// The lines of `shm info`: label and value.
pub fn info_lines(
    i: &SegmentInfo,
    u: &Usage,
    c: Option<&ChannelInfo>,
) -> Vec<(&'static str, String)> {
    let mut lines = vec![("backend", i.backend.to_owned())];
    if let Some(name) = &i.name {
        lines.push(("name", escape(name)));
    }
    if let Some(key) = i.key {
        lines.push(("key", key_hex(key)));
    }
    if let Some(id) = i.id {
        lines.push(("id", id.to_string()));
    }
    lines.push((
        "size",
        format!("{} bytes ({})", i.size, format_size(i.size)),
    ));
    lines.push(("mode", format!("{:04o}", i.mode)));
    lines.push((
        "owner",
        format!("{} (uid {}, gid {})", escape(&owner(i.uid)), i.uid, i.gid),
    ));
    if let Some(n) = i.nattch {
        lines.push(("nattch", n.to_string()));
    }
    if let Some(pids) = &u.pids {
        let list: Vec<String> = pids.iter().map(i32::to_string).collect();
        let mut text = match list.len() {
            0 => "none (no process maps it or holds it open)".to_owned(),
            n => format!("{n}: {}", list.join(" ")),
        };
        if u.hidden > 0 {
            text.push_str(&format!(
                "; {} processes of other users could not be read (run as root to see them)",
                u.hidden
            ));
        }
        lines.push(("users", text));
    }
    let with_command = |pid: i32, command: &Option<String>| match command {
        Some(c) => format!("{pid} ({})", escape(c)),
        None => pid.to_string(),
    };
    if let Some(pid) = i.cpid {
        lines.push(("cpid", with_command(pid, &u.creator)));
    }
    if let Some(pid) = i.lpid {
        lines.push(("lpid", with_command(pid, &u.last_user)));
    }
    // System V reports attach and detach times; POSIX a modification time.
    if i.nattch.is_some() {
        lines.push(("attached", format_time(i.atime)));
        lines.push(("detached", format_time(i.dtime)));
    }
    if i.mtime.is_some() {
        lines.push(("modified", format_time(i.mtime)));
    }
    lines.push(("changed", format_time(i.ctime)));
    if i.key.is_some() || i.removed || i.locked || u.unused(i) {
        let mut status = Vec::new();
        if u.unused(i) && u.unsure() {
            status.push("unused?: no process seen using it, but some could not be read");
        } else if u.unused(i) {
            status.push("unused: no live process uses it");
        }
        if i.removed {
            status.push("removed (dest): it lives until its last detach");
        }
        if i.locked {
            status.push("locked (SHM_LOCK): kept in memory, never swapped");
        }
        if status.is_empty() {
            status.push("-");
        }
        lines.push(("status", status.join("; ")));
    }
    if let Some(c) = c {
        lines.extend(channel::lines(c));
    }
    lines
}

/// The owner's user name, or the uid when it has none.
fn owner(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// The user name of `uid` from the system's user database (`getpwuid_r`).
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: an all-zero passwd is a valid value of a plain C struct.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is the buffer's size; the
        // strings it fills in point into `buf`.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: pw_name is a NUL-terminated string inside `buf`, which is still alive.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// Seconds since the epoch as `2026-01-02 03:04:05 UTC`, or `never`.
pub fn format_time(t: Option<i64>) -> String {
    let Some(secs) = t else {
        return "never".to_owned();
    };
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Writes `bytes` as a hex dump (`hexdump -C` layout); `base` is the offset of the first byte
/// and must be a multiple of 16 for the lines to align with offsets.
pub fn hex_dump(out: &mut impl Write, base: usize, bytes: &[u8]) -> io::Result<()> {
    for (n, chunk) in bytes.chunks(16).enumerate() {
        let mut line = format!("{:08x} ", base + n * 16);
        for j in 0..16 {
            if j % 8 == 0 {
                line.push(' ');
            }
            match chunk.get(j) {
                Some(b) => line.push_str(&format!("{b:02x} ")),
                None => line.push_str("   "),
            }
        }
        line.push_str(" |");
        line.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        }));
        line.push('|');
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_dumps() {
        assert_eq!(format_time(Some(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time(Some(951_782_400)), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time(Some(1_795_788_366)), "2026-11-27 14:06:06 UTC");
        assert_eq!(format_time(None), "never");
        let mut out = Vec::new();
        hex_dump(&mut out, 16, b"hello, world\n\0ABCDEF").unwrap_or_default();
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text,
            "00000010  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 00 41 42  |hello, world..AB|\n\
             00000020  43 44 45 46                                       |CDEF|\n"
        );
    }
}
