//! Bulk copies: 64 MiB into a mapping with `write_at` and back out with `read_at`, against two
//! `memcpy`s of the same size in private memory. Each sample moves 128 MiB.
//!
//! Both sides copy between buffers that were touched before the first sample, so neither pays
//! for page faults in the measurement: what is compared is the copy itself.

use std::time::Instant;

use anyhow::{Result, ensure};
use shm_core::{Backend, CreateOptions, Mapping, Segment, SegmentName};

use super::report::Section;
use super::{Case, Unit, segment_name};
use crate::backend;

/// Bytes copied each way.
pub const SIZE: usize = 64 << 20;

/// 64 MiB of a pattern that does not repeat on page boundaries (made by doubling copies:
/// quick even in a debug build).
fn pattern() -> Vec<u8> {
    let block: Vec<u8> = (0..251u8).collect();
    let mut v = block.repeat(SIZE / block.len() + 1);
    v.truncate(SIZE);
    v
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// `write_at` then `read_at` through a mapping of the default backend.
pub struct Copy {
    map: Mapping,
    src: Vec<u8>,
    dst: Vec<u8>,
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
            src: pattern(),
            dst: vec![0; SIZE],
        };
        copy.once()?;
        ensure!(
            copy.dst == copy.src,
            "the bytes read back differ from those written"
        );
        Ok(copy)
    }

    fn once(&mut self) -> Result<()> {
        self.map.write_at(0, &self.src)?;
        self.map.read_at(0, &mut self.dst)?;
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
    fn run(&mut self, out: &mut Vec<u64>) -> Result<()> {
        let start = Instant::now();
        self.once()?;
        out.push(elapsed_ns(start));
        Ok(())
    }
}

/// Two `memcpy`s in private memory: into a buffer, and back out.
pub struct Memcpy {
    src: Vec<u8>,
    mid: Vec<u8>,
    dst: Vec<u8>,
}

impl Memcpy {
    /// Buffers touched once, so that the samples pay no page faults.
    pub fn new() -> Self {
        let mut m = Self {
            src: pattern(),
            mid: vec![0; SIZE],
            dst: vec![0; SIZE],
        };
        m.once();
        m
    }

    fn once(&mut self) {
        self.mid.copy_from_slice(std::hint::black_box(&self.src));
        self.dst.copy_from_slice(std::hint::black_box(&self.mid));
        std::hint::black_box(&mut self.dst);
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
    fn run(&mut self, out: &mut Vec<u64>) -> Result<()> {
        let start = Instant::now();
        self.once();
        out.push(elapsed_ns(start));
        Ok(())
    }
}
