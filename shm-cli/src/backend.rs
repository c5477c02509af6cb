//! Which backends this binary has, which one is the default, and how to get one by name.

use anyhow::{Result, bail};
use clap::ValueEnum;
use shm_core::DynBackend;

/// A backend named on the command line (`--backend`, `SHM_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Kind {
    /// POSIX shared memory: shm_open, /dev/shm.
    Posix,
    /// System V shared memory: shmget, ipcs.
    Sysv,
}

/// Options every subcommand takes: the backend.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Backend: posix or sysv (without it: see `shm --help`)
    #[arg(long, short = 'b', global = true, env = "SHM_BACKEND", value_enum)]
    pub backend: Option<Kind>,
}

impl Kind {
    /// The backend's short name, as in JSON output and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Posix => "posix",
            Kind::Sysv => "sysv",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// The default backend: the first one compiled in, POSIX first.
cfg_if::cfg_if! {
    if #[cfg(feature = "posix")] {
        /// The backend used when none is named.
        pub const DEFAULT: Kind = Kind::Posix;
    } else if #[cfg(feature = "sysv")] {
        /// The backend used when none is named.
        pub const DEFAULT: Kind = Kind::Sysv;
    } else {
        compile_error!(
            "shm-cli needs a backend: enable feature `posix` (shm_open) or `sysv` (shmget), \
             e.g. `cargo build -p shm-cli --features posix`"
        );
    }
}

/// The backends compiled into this binary.
pub fn compiled() -> Vec<Kind> {
    let mut kinds = Vec::new();
    if cfg!(feature = "posix") {
        kinds.push(Kind::Posix);
    }
    if cfg!(feature = "sysv") {
        kinds.push(Kind::Sysv);
    }
    kinds
}

/// The backend `kind`, or the default; an error names the feature to enable when it was not
/// compiled in.
pub fn get(kind: Option<Kind>) -> Result<Box<dyn DynBackend>> {
    let kind = kind.unwrap_or(DEFAULT);
    match kind {
        #[cfg(feature = "posix")]
        Kind::Posix => Ok(Box::new(shm_posix::Posix::new())),
        #[cfg(feature = "sysv")]
        Kind::Sysv => Ok(Box::new(shm_sysv::SysV::new())),
        #[allow(unreachable_patterns)]
        other => bail!(
            "backend {other} is not compiled into this shm; rebuild with `--features {other}` \
             (cargo build -p shm-cli --features {other})"
        ),
    }
}

/// The System V key and id of a name, for start lines and info (None on POSIX).
pub fn sysv_key(kind: Kind, name: &shm_core::SegmentName) -> Option<i32> {
    match kind {
        #[cfg(feature = "sysv")]
        Kind::Sysv => shm_sysv::key_for(name).ok().map(shm_sysv::Key::as_raw),
        _ => {
            let _ = name;
            None
        }
    }
}

/// How people name the segment `name` on `backend` (a backend's name, `"sysv"`): on System V a
/// key literal is the key it is (`key 0x0bad1dea`), anything else the name.
pub fn segment_ref(backend: &str, name: &shm_core::SegmentName) -> shm_core::SegmentRef {
    match backend {
        #[cfg(feature = "sysv")]
        "sysv" => shm_sysv::segment_ref(name),
        _ => shm_core::SegmentRef::from(name),
    }
}

/// A System V key as `ipcs` prints it: `0x0000abcd`.
pub fn key_hex(key: i32) -> String {
    format!("0x{:08x}", key as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_as_ipcs_prints_them() {
        assert_eq!(key_hex(0xabcd), "0x0000abcd");
        assert_eq!(key_hex(-1), "0xffffffff");
    }
}
