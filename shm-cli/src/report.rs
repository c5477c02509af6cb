//! An error as the user reads it: one line, the message and then what to do.

use shm_core::SegmentRef;

use crate::backend;
use crate::out::{self, one_line};

/// The line the user reads for an error (before [`out::error`] escapes it): the message, each
/// cause once ([`one_line`]), and then what to do. For an error of the shm crates the advice is
/// the command's own where it has some (`shm rm`, `--replace`, `shm list`), else the library's
/// [`hint`](shm_core::Error::hint); it is built from the error's typed fields (the segment as a
/// name, key or id), never read back out of its text.
pub fn error_line(err: &anyhow::Error) -> String {
    let mut line = one_line(err);
    let Some(e) = shm_error(err) else {
        return line;
    };
    // Reported as it is (not wrapped in a command's own context): the command's own words.
    // (`downcast_ref` would look through a context too: the outermost error must be it.)
    let outer = err.chain().next();
    let direct = outer.is_some_and(|e| e.is::<shm_core::Error>() || e.is::<shm_channel::Error>());
    if let (true, shm_core::Error::NotFound { ctx, .. }) = (direct, e) {
        if matches!(ctx.segment, SegmentRef::Key(_) | SegmentRef::Id(_)) {
            // Not "cannot inspect key 0x.. (sysv): no such segment": the key once, as a key.
            line = format!("cannot {}: {}", ctx.op, out::missing(&ctx.segment));
        }
    }
    if let Some(advice) = advice(e, direct) {
        line.push_str("; ");
        line.push_str(&advice);
    }
    line
}

/// The error of the shm crates in `err`'s chain, also inside a channel error (which shows it
/// transparently, so that the chain does not hold it as a cause of its own).
fn shm_error(err: &anyhow::Error) -> Option<&shm_core::Error> {
    err.chain().find_map(|cause| {
        cause.downcast_ref::<shm_core::Error>().or_else(|| {
            match cause.downcast_ref::<shm_channel::Error>() {
                Some(shm_channel::Error::Shm(e)) => Some(e),
                _ => None,
            }
        })
    })
}

/// What the user can do about `e`, in the command's terms where it has them: the library
/// advises in its own (`Backend::unlink`, `CreateOptions::replace`), the user has `shm rm` and
/// `--replace` (offered only where the error is the command's own, `direct`: a command that
/// wrapped the error has no `--replace` to offer).
fn advice(e: &shm_core::Error, direct: bool) -> Option<String> {
    use shm_core::Error as E;
    let rm = |ctx: &shm_core::Context| {
        let flag = match ctx.backend {
            b if b == backend::DEFAULT.as_str() => String::new(),
            b => format!("--backend {b} "),
        };
        format!("shm {flag}rm {}", out::rm_target(&ctx.segment))
    };
    Some(match e {
        E::AlreadyExists { ctx, .. } if direct => {
            format!("remove it with `{}` or pass --replace", rm(ctx))
        }
        E::AlreadyExists { ctx, .. } => format!("remove it with `{}`", rm(ctx)),
        E::NotFound { ctx, .. } if ctx.segment.name().is_none() => {
            format!("`shm --backend {} list` shows those there are", ctx.backend)
        }
        E::NotFound { .. } => "`shm list` shows those there are".to_owned(),
        E::Symlink { ctx, .. } => format!(
            "if you did not make it, `{}` removes the link (never its target)",
            rm(ctx)
        ),
        E::NoSpace { .. } | E::LimitExceeded { .. } => format!(
            "{}; `shm list` shows what holds it, `shm rm` frees it",
            e.hint().unwrap_or_default()
        ),
        E::TimedOut { .. } => format!(
            "{}: `shm list` shows it and `shm rm` removes it",
            e.hint().unwrap_or_default()
        ),
        _ => return e.hint(),
    })
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use anyhow::Context as _;
    use shm_core::{Context, Error, Limit, Op};

    use super::*;

    fn os(segment: SegmentRef, op: Op, errno: i32) -> Error {
        Error::from_os(
            Context::new("sysv", segment, op),
            io::Error::from_raw_os_error(errno),
        )
    }

    #[test]
    fn a_missing_key_or_id_is_named_once_as_a_key_or_id() {
        let line = error_line(&os(SegmentRef::Key(0x0bad_1dea), Op::Info, libc::ENOENT).into());
        assert_eq!(
            line,
            "cannot inspect: no System V segment with key 0x0bad1dea; `shm --backend sysv list` \
             shows those there are"
        );
        let line = error_line(&os(SegmentRef::Id(7), Op::Open, libc::ENOENT).into());
        assert!(
            line.starts_with("cannot open: no System V segment with id 7;"),
            "{line}"
        );
    }

    #[test]
    fn advice_is_the_commands_own_from_the_typed_segment() {
        // `--backend sysv` unless System V is the default (a build with it alone).
        let flag = match backend::DEFAULT {
            backend::Kind::Sysv => "",
            backend::Kind::Posix => "--backend sysv ",
        };
        let taken = os(SegmentRef::Key(0x1234), Op::Create, libc::EEXIST);
        let line = error_line(&taken.into());
        assert_eq!(
            line,
            format!(
                "cannot create key 0x00001234 (sysv): it already exists; remove it with \
                 `shm {flag}rm --key 0x00001234` or pass --replace"
            )
        );
        assert!(!line.contains("CreateOptions"), "{line}");
        // Wrapped in a command's own context: no --replace to offer.
        let wrapped = anyhow::Error::new(os(SegmentRef::Id(9), Op::Create, libc::EEXIST))
            .context("cannot start");
        let line = error_line(&wrapped);
        assert!(
            line.starts_with("cannot start: cannot create id 9 (sysv)"),
            "{line}"
        );
        assert!(
            line.ends_with(&format!("remove it with `shm {flag}rm --id 9`")),
            "{line}"
        );
    }

    #[test]
    fn the_library_hint_stands_where_the_command_has_none_of_its_own() {
        let limit = Error::LimitExceeded {
            ctx: Context::new("sysv", "/big", Op::Create),
            limit: Limit::SegmentSize {
                max: Some(4096),
                asked: 8192,
            },
            source: None,
        };
        let line = error_line(&limit.into());
        assert!(
            line.contains("kernel.shmmax = 4096 bytes; ask for less"),
            "{line}"
        );
        assert!(line.ends_with("`shm list` shows what holds it, `shm rm` frees it"));
        let timed_out = Error::TimedOut {
            after: Duration::from_secs(1),
            waited_for: "the client's move".into(),
        };
        let line = error_line(&Err::<(), _>(timed_out).context("round 3").unwrap_err());
        assert_eq!(
            line,
            "round 3: the peer stopped answering: waited 1s for the client's move; if it died, \
             what it made may be left behind: `shm list` shows it and `shm rm` removes it"
        );
        let read_only = Error::ReadOnly {
            ctx: Context::new("posix", "/r", Op::Access),
        };
        assert!(error_line(&read_only.into()).ends_with("; open it read-write to write"));
        // Not an error of the shm crates: the message alone.
        assert_eq!(error_line(&anyhow::anyhow!("plain")), "plain");
    }
}
