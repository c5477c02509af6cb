//! What a segment holds when it is a channel (shm-channel's discovery): its kind and ends, for
//! `shm list` and `shm info`.

use serde_json::{Value, json};
use shm_channel::ChannelInfo;
use shm_core::SegmentInfo;

use crate::backend;

/// A System V header left unread (reading it attaches, which changes the segment's LPID):
/// KIND and ENDS show `?`, and `channel_read` is false in JSON.
#[derive(Debug)]
pub struct Unread;

/// What is known of a segment's channel: its header read (a channel, or not one), or not read.
pub type Found = Result<Option<ChannelInfo>, Unread>;

/// The channel in segment `i`, if it is one (its header read by the backend that lists it).
pub fn of(i: &SegmentInfo) -> Option<ChannelInfo> {
    let kind = backend::compiled()
        .into_iter()
        .find(|k| k.as_str() == i.backend)?;
    let b = backend::get(Some(kind)).ok()?;
    shm_channel::discover::inspect_segment(&b, i)
}

/// The `channel` member of a segment's JSON object: null when it is not a channel (or its
/// header was not read).
pub fn json(c: &Found) -> Value {
    let Ok(Some(c)) = c else {
        return Value::Null;
    };
    let ends: Vec<Value> = c
        .ends
        .iter()
        .map(|e| json!({ "role": e.role, "pid": e.pid, "alive": e.alive }))
        .collect();
    let details: serde_json::Map<String, Value> = c
        .details
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(v.as_str())))
        .collect();
    json!({
        "kind": c.kind.as_str(),
        "version": c.version,
        "slots": c.slots,
        "max_message": c.max_message,
        "max_ends": c.max_ends,
        "ends": ends,
        "alive": c.alive(),
        "dead": c.dead(),
        "details": details,
    })
}

/// The KIND column: the channel's kind, `-` (not a channel) or `?` (not read).
pub fn kind_cell(c: &Found) -> String {
    match c {
        Err(Unread) => "?".to_owned(),
        Ok(None) => "-".to_owned(),
        Ok(Some(c)) => c.kind.to_string(),
    }
}

/// The ENDS column: `2 alive`, `1 alive, 1 dead`, `-` or `?`.
pub fn ends_cell(c: &Found) -> String {
    match c {
        Err(Unread) => "?".to_owned(),
        Ok(None) => "-".to_owned(),
        Ok(Some(c)) if c.dead() == 0 => format!("{} alive", c.alive()),
        Ok(Some(c)) => format!("{} alive, {} dead", c.alive(), c.dead()),
    }
}

/// The lines `shm info` adds for a channel: kind, ends (each with role, pid and state), and
/// the facts of its kind.
pub fn lines(c: &ChannelInfo) -> Vec<(&'static str, String)> {
    let mut lines = vec![(
        "kind",
        format!("{} channel, layout version {}", c.kind, c.version),
    )];
    if c.slots > 0 {
        lines.push((
            "slots",
            format!("{} of at most {} bytes", c.slots, c.max_message),
        ));
    }
    let ends: Vec<String> = c
        .ends
        .iter()
        .map(|e| {
            let state = if e.alive { "alive" } else { "dead" };
            format!("{} {} ({state})", e.role, e.pid)
        })
        .collect();
    let mut text = format!("{} of at most {}", ends.len(), c.max_ends);
    if !ends.is_empty() {
        text.push_str(": ");
        text.push_str(&ends.join(", "));
    }
    lines.push(("ends", text));
    lines.extend(c.details.iter().cloned());
    lines
}
