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
    let direct = err.downcast_ref::<shm_core::Error>().is_some()
        || err.downcast_ref::<shm_channel::Error>().is_some();
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
