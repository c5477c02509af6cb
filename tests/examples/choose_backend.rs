//! Choosing the backend by cargo feature, as a crate that embeds shm would: one `cfg_if!`
//! ladder names the backend type, POSIX first, and a build with no backend feature fails with a
//! message that says which features to enable.
//!
//! ```sh
//! cargo run -p shm-tests --example choose_backend                                        # posix
//! cargo run -p shm-tests --example choose_backend --no-default-features --features sysv  # sysv
//! cargo run -p shm-tests --example choose_backend --no-default-features                  # error
//! ```
//!
//! In a crate of your own the features would also pull in the backend crates, each an optional
//! dependency:
//!
//! ```toml
//! [features]
//! default = ["posix"]
//! posix = ["dep:shm-posix"]
//! sysv = ["dep:shm-sysv"]
//! ```
//!
//! Code below the ladder is written against [`shm_core::Backend`] and never names a backend.

use shm_core::{Access, Backend, CreateOptions, Segment, SegmentName};

cfg_if::cfg_if! {
    if #[cfg(feature = "posix")] {
        /// The backend this build uses.
        type Chosen = shm_posix::Posix;
    } else if #[cfg(feature = "sysv")] {
        /// The backend this build uses.
        type Chosen = shm_sysv::SysV;
    } else {
        compile_error!(
            "choose a shared memory backend: enable feature `posix` (shm_open) or `sysv` (shmget), \
             e.g. `cargo run -p shm-tests --example choose_backend --features posix`"
        );
    }
}

fn main() -> shm_core::Result<()> {
    let backend = Chosen::new();
    let name = SegmentName::new(&format!("/choose-backend-{}", std::process::id()))?;
    let segment = backend.create(&name, &CreateOptions::new(4096))?;
    segment.map()?.write_at(0, b"hello")?;

    // A second handle, as another process would open it: the size comes from the kernel.
    let reader = backend.open(&name, Access::ReadOnly)?;
    let mut buf = [0u8; 5];
    reader.map()?.read_at(0, &mut buf)?;
    println!(
        "{}: wrote and read back {:?} through {name} ({} bytes)",
        backend.name(),
        String::from_utf8_lossy(&buf),
        reader.size()
    );
    Ok(()) // `segment` created the name: dropping it removes the segment
}
