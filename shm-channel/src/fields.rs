//! Fields read out of a copy of a segment's bytes, as discovery reads them (never trusted:
//! each caller checks what it gets): little-endian words and end records.

use std::mem::offset_of;

use crate::layout::EndRecord;
use crate::peer::Proc;

/// The little-endian 32-bit word at `off` in `bytes`.
pub(crate) fn u32_at(bytes: &[u8], off: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[off..off + 4]);
    u32::from_le_bytes(w)
}

/// The little-endian 64-bit word at `off` in `bytes`.
pub(crate) fn u64_at(bytes: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[off..off + 8]);
    u64::from_le_bytes(w)
}

/// The process the end record at `at` in `bytes` announces (`None`: no process could have
/// its id).
pub(crate) fn end_at(bytes: &[u8], at: usize) -> Option<Proc> {
    Proc::checked(
        u32_at(bytes, at + offset_of!(EndRecord, pid)),
        u64_at(bytes, at + offset_of!(EndRecord, start)),
        u64_at(bytes, at + offset_of!(EndRecord, pidns)),
    )
}
