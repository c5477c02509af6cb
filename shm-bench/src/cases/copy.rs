//! Bulk copies: 64 MiB into a mapping with `write_at` and back out with `read_at`, against two
//! `memcpy`s of the same size in private memory. Each sample moves 128 MiB.
//!
//! Both sides copy between buffers that were touched before the first sample, so neither pays
//! for page faults in the measurement, and every buffer starts on a page, as a mapping does
//! (`memcpy` is slower between buffers whose addresses differ in their low bits): what is
//! compared is the copy itself.

use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use shm_core::{Backend, CreateOptions, Mapping, Segment, SegmentName};

use crate::case::Section;
use crate::case::{Case, Samples, Unit, segment_name};
use crate::host::{Host, Kind};

/// Bytes copied each way.
pub const SIZE: usize = 64 << 20;
/// Bytes copied each way in a smoke run.
pub const SMOKE_SIZE: usize = 4 << 20;

/// `size` bytes of private memory that start on a page.
struct Buffer {
    bytes: Vec<u8>,
    at: usize,
    size: usize,
}

impl Buffer {
    const PAGE: usize = 4096;

    /// Ones (not zeros: a zeroed allocation may be pages never touched), so that no sample
    /// pays the page faults.
    fn touched(size: usize) -> Self {
        Self::from(vec![1; size + Self::PAGE], size)
    }

    /// A pattern that does not repeat on page boundaries (made by doubling copies: quick even
    /// in a debug build).
    fn pattern(size: usize) -> Self {
        let block: Vec<u8> = (0..251u8).collect();
        let mut v = block.repeat((size + Self::PAGE) / block.len() + 1);
        v.truncate(size + Self::PAGE);
        Self::from(v, size)
    }

    fn from(bytes: Vec<u8>, size: usize) -> Self {
        let at = bytes.as_ptr().align_offset(Self::PAGE).min(Self::PAGE);
        Self { bytes, at, size }
    }

    fn get(&self) -> &[u8] {
        &self.bytes[self.at..self.at + self.size]
    }

    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[self.at..self.at + self.size]
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
    /// Maps a fresh segment of `size` bytes (its name removed at once: the mapping keeps the
    /// memory), makes one round of copies and checks that the bytes came back.
    pub fn new(host: &Host, size: usize) -> Result<Self> {
        let name = segment_name("copy");
        let mut segment = host
            .default_backend()?
            .create(&SegmentName::new(&name)?, &CreateOptions::new(size))?;
        let map = segment.map()?;
        segment.unlink()?;
        let mut copy = Self {
            map,
            src: Buffer::pattern(size),
            dst: Buffer::touched(size),
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
        Section::Copy(self.src.size)
    }
    fn unit(&self) -> Unit {
        Unit::Throughput {
            bytes: 2 * self.src.size as u64,
        }
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
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
    pub fn new(size: usize) -> Self {
        let mut m = Self {
            src: Buffer::pattern(size),
            mid: Buffer::touched(size),
            dst: Buffer::touched(size),
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
        Section::Copy(self.src.size)
    }
    fn unit(&self) -> Unit {
        Unit::Throughput {
            bytes: 2 * self.src.size as u64,
        }
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        // Untimed first, as for the copy.
        self.once();
        let start = Instant::now();
        self.once();
        out.push(elapsed_ns(start));
        Ok(())
    }
}

/// Bytes in one small copy: a cache line, a typical message header.
pub const SMALL: usize = 64;

/// Small copies in a batch per sample: the clock's steps are far coarser than one copy.
const SMALL_BATCH: u64 = 2000;

/// How a small copy is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmallWay {
    /// `Mapping::read_at` of [`SMALL`] bytes.
    Read,
    /// `Mapping::write_at` of [`SMALL`] bytes.
    Write,
    /// What `read_at` did on POSIX before it copied under a SIGBUS guard: ask the kernel for
    /// the object's size (`fstat`), then copy. The same bytes, for the before-and-after ratio.
    FstatThenCopy,
}

/// [`SMALL`]-byte copies out of (or into) a mapping of `kind`, at offsets that walk a page.
pub struct Small {
    key: String,
    way: SmallWay,
    map: Mapping,
    /// The POSIX segment's descriptor, for [`SmallWay::FstatThenCopy`].
    fd: Option<std::fs::File>,
    buf: [u8; SMALL],
}

impl Small {
    /// A fresh one-page segment of `kind` (its name removed at once: the mapping keeps it).
    pub fn new(host: &Host, kind: Kind, way: SmallWay) -> Result<Self> {
        let name = segment_name("small");
        let mut segment =
            (host.backend)(kind)?.create(&SegmentName::new(&name)?, &CreateOptions::new(4096))?;
        let map = segment.map()?;
        // The old way needs the object's descriptor: open it by name before it goes.
        let fd = match way {
            SmallWay::FstatThenCopy => Some(
                std::fs::File::open(format!("/dev/shm{name}"))
                    .with_context(|| format!("cannot open /dev/shm{name}"))?,
            ),
            _ => None,
        };
        segment.unlink()?;
        let what = match way {
            SmallWay::Read => "read",
            SmallWay::Write => "write",
            SmallWay::FstatThenCopy => "read_fstat",
        };
        Ok(Self {
            key: format!("small_{what}_{kind}"),
            way,
            map,
            fd,
            buf: [7; SMALL],
        })
    }

    fn batch(&mut self) -> Result<()> {
        for i in 0..SMALL_BATCH as usize {
            let at = (i * SMALL) % (4096 - SMALL);
            match self.way {
                SmallWay::Read => self.map.read_at(at, &mut self.buf)?,
                SmallWay::Write => self.map.write_at(at, &self.buf)?,
                SmallWay::FstatThenCopy => {
                    if let Some(fd) = &self.fd {
                        let size = fd.metadata()?.len();
                        ensure!(size as usize >= at + SMALL, "the segment shrank");
                    }
                    // SAFETY: `at + SMALL` lies inside the one-page mapping (checked against
                    // its size just above, as the old read_at did); `buf` is private memory.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.map.as_ptr().add(at),
                            self.buf.as_mut_ptr(),
                            SMALL,
                        )
                    };
                }
            }
            std::hint::black_box(&mut self.buf);
        }
        Ok(())
    }
}

impl Case for Small {
    fn key(&self) -> &str {
        &self.key
    }
    fn what(&self) -> &str {
        match self.way {
            SmallWay::Read => "read_at of 64 bytes",
            SmallWay::Write => "write_at of 64 bytes",
            SmallWay::FstatThenCopy => "fstat, then copy 64 bytes (read_at before)",
        }
    }
    fn section(&self) -> Section {
        Section::Small
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        // Untimed first, as for the bulk copy.
        self.batch()?;
        for _ in 0..20 {
            let start = Instant::now();
            self.batch()?;
            out.push_batch(u128::from(elapsed_ns(start)), SMALL_BATCH);
        }
        Ok(())
    }
}
