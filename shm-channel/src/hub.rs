//! One segment that many processes join by name (a publish/subscribe topic, a service): the
//! segment handle, its mapping, and removing its name once.
//!
//! Unlike a stream's two ends, whose name goes away as soon as both are there, a segment of
//! many ends keeps its name while its owner (the publisher, the server) lives, so that new ends
//! can join at any time. The owner removes the name when it drops; when the owner dies, the
//! first end that learns it removes the name (a word in the segment says it was done, so that
//! only one end does it), and so does the next owner that finds the stale segment in its way.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shm_core::{Access, Backend, CreateOptions, Mapping, Segment, SegmentName};

use crate::{Error, Result};

/// How long an opener waits for a creator to finish writing a header it found zero.
pub(crate) const HEADER_WAIT: Duration = Duration::from_millis(100);

/// One end's hold on a segment of many ends.
pub(crate) struct Hub {
    pub name: String,
    pub backend: &'static str,
    segment: Mutex<Box<dyn Segment>>,
    /// Declared last: dropped after everything that points into it.
    map: Mapping,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("len", &self.map.len())
            .finish()
    }
}

impl Hub {
    /// Creates the segment `name` of `size` bytes (zero-filled) with permission bits `mode`.
    pub fn create<B: Backend>(
        backend: &B,
        name: &SegmentName,
        size: usize,
        mode: u32,
    ) -> Result<Hub> {
        let segment = backend.create(name, &CreateOptions::new(size).mode(mode))?;
        let map = segment.map()?;
        Ok(Hub {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            segment: Mutex::new(Box::new(segment)),
            map,
        })
    }

    /// Opens the segment `name`, waiting until `deadline` (if any) for it to appear.
    pub fn open<B: Backend>(
        backend: &B,
        name: &SegmentName,
        deadline: Option<Instant>,
    ) -> Result<Hub> {
        let segment = loop {
            match backend.open(name, Access::ReadWrite) {
                Ok(s) => break s,
                Err(e) if e.is_not_found() && deadline.is_some_and(|d| Instant::now() < d) => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let map = segment.map()?;
        Ok(Hub {
            name: name.as_str().to_owned(),
            backend: backend.name(),
            segment: Mutex::new(Box::new(segment)),
            map,
        })
    }

    /// The first byte of the mapping.
    pub fn base(&self) -> *mut u8 {
        self.map.as_ptr()
    }

    /// The mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// The mapping's length.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Waits up to [`HEADER_WAIT`] for the 64-bit word at offset 0 to become non-zero (a
    /// creator writes its magic last) and returns it; 0 when it stayed zero.
    pub fn magic(&self) -> u64 {
        if self.map.len() < 8 {
            return 0;
        }
        // SAFETY: the mapping is page-aligned and at least 8 bytes long (checked above), and
        // lives as long as &self.
        let word = unsafe { &*self.map.as_ptr().cast::<std::sync::atomic::AtomicU64>() };
        let t0 = Instant::now();
        loop {
            let m = word.load(Ordering::Acquire);
            if m != 0 || t0.elapsed() >= HEADER_WAIT {
                return m;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The kernel's view of the segment.
    pub fn segment_info(&self) -> Result<shm_core::SegmentInfo> {
        match self.segment.lock() {
            Ok(seg) => Ok(seg.info()?),
            Err(_) => Err(Error::Protocol(
                "a thread panicked holding the segment".to_owned(),
            )),
        }
    }

    /// Removes the name once: only the end whose compare-exchange of `done` (a word of this
    /// segment) from 0 to 1 succeeds removes it. Returns whether this end did.
    pub fn remove_name_once(&self, done: &AtomicU32) -> bool {
        if done
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        // Already gone is fine; anything else leaves the name, which `shm rm` removes.
        let _ = self.remove_name();
        true
    }

    /// Removes the name now, whatever any flag says (only the segment this handle opened or
    /// made: a name that stands for another segment since is left alone). The memory lives on
    /// while mapped.
    pub fn remove_name(&self) -> Result<()> {
        let mut seg = self
            .segment
            .lock()
            .map_err(|_| Error::Protocol("a thread panicked holding the segment".to_owned()))?;
        match seg.unlink() {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Keeps the name when this handle drops (it was removed by another end, or must stay).
    pub fn keep(&self) {
        if let Ok(mut seg) = self.segment.lock() {
            seg.keep();
        }
    }
}
