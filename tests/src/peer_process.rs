//! Peer processes for the tests that run several ends of a channel between real processes:
//! the test binary runs itself again with a role in an environment variable, and its `peer`
//! test plays that role. [`Under`] is one backend under test with what a peer needs to reach
//! it; [`Peer`] is one such process, killed and reaped when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use shm_core::{Access, Backend, DynBackend, Segment, SegmentName};

use crate::file_backend::FileBackend;

/// The backend of `kind` (`posix`, `sysv`, `file`); for "file", over `dir`.
pub fn backend(kind: &str, dir: Option<&Path>) -> Box<dyn DynBackend> {
    match kind {
        "posix" => Box::new(shm_posix::Posix::new()),
        "sysv" => Box::new(shm_sysv::SysV::new()),
        "file" => Box::new(FileBackend::at(
            dir.expect("a directory for the file backend"),
        )),
        other => panic!("unknown backend {other}"),
    }
}

/// The environment a peer finds its backend in: `PEER_BACKEND` and, for files, `PEER_DIR`.
pub fn peer_backend() -> Box<dyn DynBackend> {
    let kind = std::env::var("PEER_BACKEND").unwrap_or_default();
    let dir = std::env::var("PEER_DIR").ok();
    backend(&kind, dir.as_deref().map(Path::new))
}

/// A peer process; killed (-9) and reaped when dropped.
pub struct Peer {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Peer {
    /// Runs the test `peer` of `module` (the caller's `module_path!()`) in this test binary
    /// again, under the command `wrap` (`unshare ...`, `setpriv ...`; empty for none), with
    /// `role_var=role` and `envs`.
    pub fn spawn(
        module: &str,
        wrap: &[&str],
        role_var: &str,
        role: &str,
        envs: &[(&str, String)],
    ) -> Peer {
        let mut cmd = crate::child::this_test_again(wrap, module, "peer");
        cmd.env(role_var, role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Peer { child, out }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads the peer's output until a line that ends with `want`; returns that line.
    pub fn expect_line(&mut self, want: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "the peer ended before saying {want}");
            // libtest prints "test peer ... " before the peer's first line.
            if line.trim_end().ends_with(want) || line.contains(want) {
                return line.trim_end().to_owned();
            }
        }
    }

    /// kill -9, not reaped: the peer stays a zombie until `finish`, as a crashed child of a
    /// careless parent would.
    pub fn kill9(&mut self) {
        // SAFETY: kill with a child's pid, which is ours until reaped.
        unsafe { libc::kill(self.pid(), libc::SIGKILL) };
    }

    /// Waits (at most 60 s) for the peer to end and returns whether it succeeded.
    pub fn finish(&mut self) -> bool {
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "the peer hangs");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One backend under test, with what a peer needs to reach it.
pub struct Under {
    pub kind: &'static str,
    file: Option<FileBackend>,
}

impl Under {
    pub fn new(kind: &'static str) -> Under {
        Under {
            kind,
            file: (kind == "file").then(FileBackend::new),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.dir())
    }

    pub fn backend(&self) -> Box<dyn DynBackend> {
        backend(self.kind, self.dir())
    }

    /// A peer of `role` (in `role_var`) on this backend, with `envs` besides: the test `peer`
    /// of `module` (the caller's `module_path!()`), run under `wrap` (see [`Peer::spawn`]).
    pub fn spawn_peer(
        &self,
        module: &str,
        wrap: &[&str],
        role_var: &str,
        role: &str,
        envs: &[(&str, String)],
    ) -> Peer {
        let mut all = vec![("PEER_BACKEND", self.kind.to_owned())];
        if let Some(d) = self.dir() {
            all.push(("PEER_DIR", d.display().to_string()));
        }
        all.extend(envs.iter().cloned());
        Peer::spawn(module, wrap, role_var, role, &all)
    }

    /// Asserts that nothing of `name` is left: no name, and (System V) no segment of the id
    /// it had.
    pub fn assert_gone(&self, name: &str, sysv_id: Option<i32>) {
        let sname = SegmentName::new(name).unwrap();
        let b = self.backend();
        match b.info(&sname) {
            Err(e) if e.is_not_found() => {}
            other => panic!("{name} ({}) is still there: {other:?}", self.kind),
        }
        if let Some(id) = sysv_id {
            let table = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
            let left = table
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()));
            assert!(!left, "System V segment id {id} is still there:\n{table}");
        }
    }
}

/// A peer that breaks every protocol: writes garbage over the whole segment `name` (every
/// other round only its first `short` bytes), `rounds` times, 300 µs apart.
pub fn scribble(b: &impl Backend, name: &str, rounds: u64, short: usize) {
    let sname = SegmentName::new(name).unwrap();
    let raw = b.open(&sname, Access::ReadWrite).unwrap().map().unwrap();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut junk = vec![0u8; raw.len()];
    for round in 0..rounds {
        for byte in junk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *byte = x as u8;
        }
        let upto = if round % 2 == 0 { raw.len() } else { short };
        raw.write_at(0, &junk[..upto.min(raw.len())]).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
}
