//! Unique names and the one guard that removes what a test made, whatever happens to the test.

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use shm_core::{DynBackend, SegmentName};

/// A unique segment name for `test`: `/shmt-PID-N-TEST` (the conformance suite's prefix, so a
/// leak check finds every name a test made).
pub fn unique_name(test: &str) -> String {
    shm_core::conformance::unique_name(test).as_str().to_owned()
}

/// A fresh temporary directory path for one test (not created).
pub fn temp_path(test: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("shm-tests-{}-{n}-{test}", std::process::id()))
}

/// Does `/dev/shm/NAME` exist (as anything, a link included)?
pub fn in_dev_shm(name: &str) -> bool {
    std::fs::symlink_metadata(format!("/dev/shm/{}", name.trim_start_matches('/'))).is_ok()
}

/// What a [`Cleanup`] removes.
enum Made {
    Posix(String),
    SysvKey(i32),
    SysvId(i32),
    SysvName(String),
    On(Box<dyn DynBackend>, String),
    Path(PathBuf),
    Semaphore(CString),
}

/// Removes something a test made when dropped, also when the test fails. Errors are ignored:
/// the test may have removed it already. It removes only what the test names, never by
/// pattern, so that other programs' segments are left alone.
pub struct Cleanup(Made);

impl Cleanup {
    /// The POSIX name (`shm_unlink`, straight to the C library).
    pub fn posix(name: impl Into<String>) -> Self {
        Self(Made::Posix(name.into()))
    }

    /// The System V segment with this key (`shmget`, then `IPC_RMID`).
    pub fn sysv_key(key: i32) -> Self {
        Self(Made::SysvKey(key))
    }

    /// The System V segment with this id (`IPC_RMID`), for one made by raw calls or `ipcmk`.
    pub fn sysv_id(id: i32) -> Self {
        Self(Made::SysvId(id))
    }

    /// The System V segment of a name, as `shm --backend sysv rm -f NAME` removes it.
    pub fn sysv_name(name: impl Into<String>) -> Self {
        Self(Made::SysvName(name.into()))
    }

    /// The name on `backend`, through its own `unlink`.
    pub fn on(backend: Box<dyn DynBackend>, name: impl Into<String>) -> Self {
        Self(Made::On(backend, name.into()))
    }

    /// A file, link, socket, FIFO or directory (with what is in it).
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self(Made::Path(path.into()))
    }

    /// A POSIX named semaphore (`sem_unlink`).
    pub fn semaphore(name: &str) -> Self {
        Self(Made::Semaphore(
            CString::new(name).expect("a semaphore name without NUL"),
        ))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match &self.0 {
            Made::Posix(name) => {
                if let Ok(c) = CString::new(name.as_str()) {
                    // SAFETY: `c` is NUL-terminated and outlives the call.
                    unsafe { libc::shm_unlink(c.as_ptr()) };
                }
            }
            Made::SysvKey(key) => {
                // SAFETY: shmget/shmctl take plain values; IPC_RMID ignores the buffer.
                unsafe {
                    let id = libc::shmget(*key, 0, 0);
                    if id >= 0 {
                        libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut());
                    }
                }
            }
            Made::SysvId(id) => {
                // SAFETY: IPC_RMID ignores the buffer; a missing id is just an error.
                unsafe { libc::shmctl(*id, libc::IPC_RMID, std::ptr::null_mut()) };
            }
            Made::SysvName(name) => {
                let _ = crate::host::shm()
                    .args(["--backend", "sysv", "rm", "-f", name])
                    .output();
            }
            Made::On(backend, name) => {
                if let Ok(n) = SegmentName::new(name) {
                    let _ = backend.dyn_unlink(&n);
                }
            }
            Made::Path(path) => {
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                    let _ = std::fs::remove_dir_all(path);
                } else {
                    let _ = std::fs::remove_file(path);
                }
            }
            Made::Semaphore(name) => {
                // SAFETY: `name` is NUL-terminated and outlives the call.
                unsafe { libc::sem_unlink(name.as_ptr()) };
            }
        }
    }
}
