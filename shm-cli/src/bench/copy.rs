//! Bulk copies: 64 MiB into a mapping with `write_at` and back out with `read_at`, against two
//! `memcpy`s of the same size in private memory. Each sample moves 128 MiB.
//!
//! Both sides copy between buffers that were touched before the first sample, so neither pays
//! for page faults in the measurement, and every buffer starts on a page, as a mapping does
//! (`memcpy` is slower between buffers whose addresses differ in their low bits): what is
//! compared is the copy itself.

use std::time::Instant;

use anyhow::{Result, ensure};
use shm_core::{Backend, CreateOptions, Mapping, Segment, SegmentName};

use super::report::Section;
use super::{Case, Unit, segment_name};
use crate::backend;

/// Bytes copied each way.
pub const SIZE: usize = 64 << 20;

/// [`SIZE`] bytes of private memory that start on a page.
struct Buffer {
    bytes: Vec<u8>,
    at: usize,
}

impl Buffer {
    const PAGE: usize = 4096;

    /// Ones (not zeros: a zeroed allocation may be pages never touched), so that no sample
    /// pays the page faults.
    fn touched() -> Self {
        Self::from(vec![1; SIZE + Self::PAGE])
    }

    /// A pattern that does not repeat on page boundaries (made by doubling copies: quick even
    /// in a debug build).
    fn pattern() -> Self {
        let block: Vec<u8> = (0..251u8).collect();
        let mut v = block.repeat((SIZE + Self::PAGE) / block.len() + 1);
        v.truncate(SIZE + Self::PAGE);
        Self::from(v)
    }

    fn from(bytes: Vec<u8>) -> Self {
        let at = bytes.as_ptr().align_offset(Self::PAGE).min(Self::PAGE);
        Self { bytes, at }
    }

    fn get(&self) -> &[u8] {
        &self.bytes[self.at..self.at + SIZE]
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.at..self.at + SIZE]
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// `write_at` then `read_at` through a mapping of the default backend.
pub struct Copy {
    map: Mapping,
    src: Buffer,
    dst: Buffer,
}

impl Copy {
    /// Maps a fresh 64 MiB segment (its name removed at once: the mapping keeps the memory),
    /// makes one round of copies and checks that the bytes came back.
    pub fn new() -> Result<Self> {
        let name = segment_name("copy");
        let mut segment =
            backend::get(None)?.create(&SegmentName::new(&name)?, &CreateOptions::new(SIZE))?;
        let map = segment.map()?;
        segment.unlink()?;
        let mut copy = Self {
            map,
            src: Buffer::pattern(),
            dst: Buffer::touched(),
        };
        copy.once()?;
        ensure!(
            copy.dst.get() == copy.src.get(),
            "the bytes read back differ from those written"
        );
        Ok(copy)
    }

    fn once(&mut self) -> Result<()> {
        self.map.write_at(0, self.src.get())?;
        self.map.read_at(0, self.dst.get_mut())?;
        Ok(())
    }
}

impl Case for Copy {
    fn key(&self) -> &str {
        "copy"
    }
    fn what(&self) -> &str {
        "write_at, then read_at"
    }
    fn section(&self) -> Section {
        Section::Copy
    }
    fn unit(&self) -> Unit {
        Unit::Throughput {
            bytes: 2 * SIZE as u64,
        }
    }
    fn run(&mut self, out: &mut super::Samples) -> Result<()> {
        // Untimed first: whatever ran before (caches, page tables, clocks) settles here.
        self.once()?;
        let start = Instant::now();
        self.once()?;
        out.push(elapsed_ns(start));
        Ok(())
    }
}

/// Two `memcpy`s in private memory: into a buffer, and back out.
pub struct Memcpy {
    src: Buffer,
    mid: Buffer,
    dst: Buffer,
}

impl Memcpy {
    /// Buffers touched once, so that the samples pay no page faults.
    pub fn new() -> Self {
        let mut m = Self {
            src: Buffer::pattern(),
            mid: Buffer::touched(),
            dst: Buffer::touched(),
        };
        m.once();
        m
    }

    fn once(&mut self) {
        self.mid
            .get_mut()
            .copy_from_slice(std::hint::black_box(self.src.get()));
        self.dst
            .get_mut()
            .copy_from_slice(std::hint::black_box(self.mid.get()));
        std::hint::black_box(self.dst.get_mut());
    }
}

impl Case for Memcpy {
    fn key(&self) -> &str {
        "memcpy"
    }
    fn what(&self) -> &str {
        "private memory, twice"
    }
    fn section(&self) -> Section {
        Section::Copy
    }
    fn unit(&self) -> Unit {
        Unit::Throughput {
            bytes: 2 * SIZE as u64,
        }
    }
    fn run(&mut self, out: &mut super::Samples) -> Result<()> {
        // Untimed first, as for the copy.
        self.once();
        let start = Instant::now();
        self.once();
        out.push(elapsed_ns(start));
        Ok(())
    }
}
