//! A test that no safe function of the library crates takes a raw pointer it may dereference
//! (issue 17, item 15): a safe `fn f(p: *const T)` lets any caller hand it any address. Such a
//! function is an `unsafe fn` with a `# Safety` section, takes a typed view instead, or passes
//! the address only to the kernel (which checks it) and is named in [`KERNEL_ONLY`] with why.

use std::path::{Path, PathBuf};

/// Safe functions whose raw pointer only the kernel (or an address comparison) uses: a bad
/// address is an error from the system call, never a read or write of ours.
const KERNEL_ONLY: &[(&str, &str)] = &[
    // write(2) reads the range; EFAULT where it is not mapped.
    ("shm-cli/src/channel.rs", "write_all"),
    // The address is looked up in /proc/self/maps, never read.
    ("shm-compare/src/lab.rs", "mapped_len"),
    // futex_waitv and io_uring's futex wait read the word and fail with EFAULT.
    ("shm-core/src/reactor/futex.rs", "shared"),
    ("shm-core/src/reactor/uring.rs", "wait_shared"),
];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The text with `//` comments removed (doc comments too), so that prose naming a pointer
/// type is not taken for a signature.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The safe functions of `text` with a raw pointer among their parameters, by name: the
/// signature from `fn NAME(` to its closing parenthesis, where the words before `fn` on its
/// line hold neither `unsafe` nor `extern` (a signal handler's ABI is the kernel's).
fn safe_fns_taking_pointers(text: &str) -> Vec<String> {
    let code = without_comments(text);
    let mut found = Vec::new();
    for (at, _) in code.match_indices("fn ") {
        let line_start = code[..at].rfind('\n').map_or(0, |n| n + 1);
        let before = &code[line_start..at];
        if before
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
            || before.contains("unsafe")
            || before.contains("extern")
        {
            continue;
        }
        let rest = &code[at + 3..];
        let Some(open) = rest.find('(') else { continue };
        let name = rest[..open].split('<').next().unwrap_or("").trim();
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut depth = 0usize;
        let mut close = None;
        for (i, c) in rest[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(open + i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        let params = &rest[open..close];
        if params.contains("*const") || params.contains("*mut") {
            found.push(name.to_string());
        }
    }
    found
}

/// The workspace's library and command crates (`shm-*`), their `src/` only.
fn offenders() -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates: Vec<PathBuf> = std::fs::read_dir(&workspace)
        .expect("read the workspace")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("shm-"))
        })
        .collect();
    crates.sort();
    let mut files = Vec::new();
    for krate in &crates {
        sources(&krate.join("src"), &mut files);
    }
    assert!(
        files.len() > 20,
        "the scan found too few sources: {files:?}"
    );
    let mut bad = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&workspace)
            .expect("under the workspace")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).expect("read a source");
        for name in safe_fns_taking_pointers(&text) {
            if !KERNEL_ONLY.contains(&(rel.as_str(), name.as_str())) {
                bad.push(format!("{rel}: fn {name}"));
            }
        }
    }
    bad
}

#[test]
fn no_safe_function_takes_a_raw_pointer_to_dereference() {
    let bad = offenders();
    assert!(
        bad.is_empty(),
        "safe functions taking a raw pointer (make them `unsafe fn` with a # Safety section, take \
         a typed view, or name them in KERNEL_ONLY with why): {bad:#?}"
    );
}

#[test]
fn the_scan_sees_a_safe_function_taking_a_pointer() {
    let text = "\
/// fn documented(p: *const u8)
pub(crate) fn in_pair<'a>(data: *const u8,
    len: usize) -> Sample<'a> {}
pub unsafe fn fine(p: *mut u8) {}
extern \"C\" fn handler(sig: i32, info: *mut siginfo_t) {}
fn typed(words: &[AtomicU32]) {}
";
    assert_eq!(
        safe_fns_taking_pointers(text),
        ["in_pair"],
        "the scan must name exactly the safe functions with pointer parameters"
    );
}
