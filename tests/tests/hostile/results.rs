//! Wrong or misleading results: what a command says must be what happened, whatever the input,
//! the race or the kernel's settings.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use shm_core::{Backend, CreateOptions, Segment, SegmentName};
use shm_tests::{
    Cleanup, Reaped, is_root, one_error_line, shm, shm_exists, shm_json, skip, unique_name,
};

#[test]
fn rounds_beyond_what_an_i32_holds_are_refused() {
    let line = one_error_line(
        "rounds 2^30",
        &shm()
            .args(["taller", "demo", "--lockstep", "--rounds", "1073741824"])
            .output()
            .unwrap(),
    );
    assert!(line.contains("1073741824"), "{line}");
}

#[test]
fn a_second_lockstep_client_is_refused_and_the_game_goes_on() {
    // Both backends at once. 100 000 rounds last a second or more in a debug build: long enough
    // for the second client, started right after the first, to find the seat taken.
    std::thread::scope(|s| {
        for backend in ["posix", "sysv"] {
            s.spawn(move || {
                let name = unique_name(&format!("twoclients-{backend}"));
                let _g = Cleanup::posix(name.clone());
                let _s = Cleanup::sysv_name(name.clone());
                let game = ["--lockstep", "--rounds", "100000", "--timeout", "10s"];
                let side = |side: &str| {
                    let mut c = shm();
                    c.args(["--backend", backend, "taller", side, "--name", &name])
                        .args(game)
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    c
                };
                let mut server = side("server").spawn().unwrap();
                let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
                assert!(lines.next().unwrap().unwrap().starts_with("created "));
                let first = side("client").spawn().unwrap();
                let second = side("client").spawn().unwrap();
                let (a, b) = (
                    first.wait_with_output().unwrap(),
                    second.wait_with_output().unwrap(),
                );
                let rest: Vec<String> = lines.map_while(Result::ok).collect();
                let server = server.wait().unwrap();
                // Exactly one client played (and won its game with the server); the other was refused.
                let (won, refused) = if a.status.success() { (a, b) } else { (b, a) };
                assert!(
                    won.status.success(),
                    "{backend}: no client finished: {won:?}"
                );
                let line = one_error_line("second client", &refused);
                assert!(line.contains("another client"), "{line}");
                assert!(server.success(), "{backend}: server {server:?}; {rest:?}");
                assert!(
                    rest.iter().any(|l| l == "Quit server: 199999, 200000"),
                    "{rest:?}"
                );
            });
        }
    });
}

#[test]
fn racing_create_replace_always_ends_in_one_segment() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("racereplace-{backend}"));
        let _g = Cleanup::posix(name.clone());
        let _s = Cleanup::sysv_name(name.clone());
        for _round in 0..5 {
            let racers: Vec<_> = (0..6)
                .map(|_| {
                    shm()
                        .args([
                            "--backend",
                            backend,
                            "create",
                            &name,
                            "--size",
                            "64KiB",
                            "--replace",
                        ])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for r in racers {
                let out = r.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{backend}: a racing create --replace failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert_eq!(
                shm_json(&["--backend", backend, "info", &name, "--json"])["size"],
                65536
            );
        }
    }
}

#[test]
fn fractions_of_a_byte_are_refused() {
    let name = unique_name("fraction");
    let _g = Cleanup::posix(name.clone());
    let line = one_error_line(
        "1.5",
        &shm()
            .args(["create", &name, "--size", "1.5"])
            .output()
            .unwrap(),
    );
    assert!(line.contains("whole number of bytes"), "{line}");
    assert!(
        !shm()
            .args(["info", &name])
            .output()
            .unwrap()
            .status
            .success()
    );
}

#[test]
fn names_with_control_characters_cannot_forge_rows() {
    let name = format!("{}\nposix forged\x1b[31m", unique_name("ctrl"));
    let seg_name = SegmentName::new(&name).unwrap();
    let mut seg = shm_posix::Posix::new()
        .create(&seg_name, &CreateOptions::new(4096))
        .unwrap();
    seg.keep();
    let _g = Cleanup::posix(name.clone());
    let out = shm().args(["--backend", "posix", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains('\x1b'), "an escape reached the terminal");
    assert!(
        !text.lines().any(|l| l.starts_with("posix forged")),
        "a forged row: {text}"
    );
    let escaped = format!("{}\\nposix forged\\e[31m", unique_name_prefix(&name));
    assert!(text.contains(&escaped), "{escaped} not in {text}");
    // JSON keeps the name exact.
    let all = shm_json(&["--backend", "posix", "list", "--json"]);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name.as_str())
    );
}

fn unique_name_prefix(name: &str) -> &str {
    name.split('\n').next().unwrap()
}

/// The control characters in `text` other than the newlines that end lines: what would reach a
/// terminal as a code.
fn control_chars(text: &[u8]) -> Vec<char> {
    let text = String::from_utf8_lossy(text);
    text.chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect()
}

/// Asserts that `out` (both streams) shows no control code, and that no line of it starts
/// with the `forged` text that a raw newline in a name would have put at a line's start.
fn assert_shown_safely(what: &str, out: &std::process::Output, forged: &str) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert_eq!(
            control_chars(bytes),
            Vec::<char>::new(),
            "{what}: control codes reached the terminal on {stream}: {text:?}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with(forged)),
            "{what}: a forged line on {stream}: {text:?}"
        );
    }
}

#[test]
fn every_human_output_escapes_a_hostile_segment_name() {
    let base = unique_name("ctrl-all");
    let name = format!("{base}\nforged\x1b]0;title\x07\x1b[2J\u{7f}\u{9b}\u{202e}gnp\u{200b}");
    let escaped =
        format!("{base}\\nforged\\e]0;title\\x07\\e[2J\\x7f\\x9b\\u{{202e}}gnp\\u{{200b}}");
    let _g = Cleanup::posix(name.clone());
    let made = shm()
        .args(["create", &name, "--size", "4096"])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    assert_shown_safely("create", &made, "forged");
    for args in [
        &["list"][..],
        &["list", &name],
        &["list", "--quiet"],
        &["list", "--unused"],
        &["info", &name],
        &["write", &name, "hello"],
        // Errors: exists already; out of range.
        &["create", &name, "--size", "4096"],
        &["write", &name, "--offset", "4096", "x"],
    ] {
        let out = shm()
            .args(["--backend", "posix"])
            .args(args)
            .output()
            .unwrap();
        assert_shown_safely(&format!("{args:?}"), &out, "forged");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(all.contains(&escaped), "{args:?}: {escaped} not in {all:?}");
    }
    // JSON keeps the name exact.
    let info = shm_json(&["--backend", "posix", "info", &name, "--json"]);
    assert_eq!(info["name"], name.as_str());
    let removed = shm().args(["rm", &name]).output().unwrap();
    assert!(removed.status.success(), "{removed:?}");
    assert_shown_safely("rm", &removed, "forged");
    assert!(String::from_utf8_lossy(&removed.stdout).contains(&escaped));
}

#[test]
fn a_hostile_process_name_reaches_the_terminal_escaped() {
    // A process's command name (/proc/PID/comm) is whatever its program file is called: here
    // `shm` itself under a name holding an escape sequence, a newline and a bell (15 bytes,
    // what comm keeps), running a System V taller server that `info` names as the creator.
    let comm = "s\x1b[2J\nforged\x07";
    let dir = shm_tests::temp_path("ctrl-comm");
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = Cleanup::path(dir.clone());
    let program = dir.join(comm);
    std::os::unix::fs::symlink(shm_tests::shm_bin(), &program).unwrap();
    let name = unique_name("ctrl-comm");
    let _seg = Cleanup::sysv_name(name.clone());
    let server = std::process::Command::new(&program)
        .args(["--backend", "sysv", "taller", "server", "--name", &name])
        .args(["--rounds", "1000", "--interval", "1s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Reaped(server);
    let started = std::time::Instant::now();
    while !shm_exists("sysv", &name) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the server made no segment"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let info = shm_json(&["--backend", "sysv", "info", &name, "--json"]);
    assert_eq!(
        info["creator_command"], comm,
        "JSON keeps the command exact"
    );
    let out = shm()
        .args(["--backend", "sysv", "info", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_shown_safely("info", &out, "forged");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(s\\e[2J\\nforged\\x07)"), "{text}");
}

#[test]
fn man_dir_replaces_a_planted_symlink_and_leaves_its_target_alone() {
    let dir = shm_tests::temp_path("mandir");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.with_extension("target");
    std::fs::write(&target, b"precious").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("shm.1")).unwrap();
    let out = shm().args(["man", "--dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let target_now = std::fs::read(&target).unwrap();
    let page = std::fs::symlink_metadata(dir.join("shm.1")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&target);
    assert_eq!(
        target_now, b"precious",
        "man --dir wrote through the planted link"
    );
    assert!(page.is_file(), "shm.1 is not a page of its own");
}

#[test]
fn create_refuses_what_shm_rmid_forced_would_remove_at_once() {
    let test = "create_refuses_what_shm_rmid_forced_would_remove_at_once";
    if !is_root() {
        return skip(test, "needs root for a private IPC namespace");
    }
    let name = unique_name("rmidforced");
    let script = format!(
        "echo 1 > /proc/sys/kernel/shm_rmid_forced && exec {} --backend sysv create {name} --size 4096",
        shm_tests::shm_bin().display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-i", "sh", "-c", &script])
        .output();
    let Ok(out) = out else {
        return skip(test, "unshare is not installed");
    };
    let line = one_error_line("shm_rmid_forced", &out);
    assert!(line.contains("shm_rmid_forced"), "{line}");
}

#[test]
fn locked_segments_show_as_locked() {
    let test = "locked_segments_show_as_locked";
    if !is_root() {
        return skip(test, "SHM_LOCK needs CAP_IPC_LOCK");
    }
    let name = unique_name("locked");
    let _s = Cleanup::sysv_name(name.clone());
    let seg = shm_sysv::SysV::new()
        .create(&SegmentName::new(&name).unwrap(), &CreateOptions::new(4096))
        .unwrap();
    // SAFETY: SHM_LOCK on our own segment; the buffer is ignored.
    let rc = unsafe { libc::shmctl(seg.id().as_raw(), libc::SHM_LOCK, std::ptr::null_mut()) };
    assert_eq!(rc, 0);
    let info = shm_json(&["--backend", "sysv", "info", &name, "--json"]);
    assert_eq!(info["locked"], true, "{info}");
    let text = String::from_utf8_lossy(
        &shm()
            .args(["--backend", "sysv", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let key = format!(
        "0x{:08x}",
        shm_sysv::key_for(&SegmentName::new(&name).unwrap())
            .unwrap()
            .as_raw() as u32
    );
    let row = text
        .lines()
        .find(|l| l.contains(&key))
        .unwrap_or_default()
        .to_owned();
    // STATUS, then KIND and ENDS (`-` and `-`: not a channel).
    assert!(
        row.split_whitespace()
            .rev()
            .nth(2)
            .unwrap_or_default()
            .contains("locked"),
        "{row}"
    );
}

#[test]
fn negative_keys_are_keys_and_oversized_ones_are_refused() {
    // Python's sysv_ipc prints key 0xfffffff1 as -15. Ours is -15 minus the pid's low bits.
    let key: i32 = -(1 + (std::process::id() as i32 & 0x7fff));
    // SAFETY: plain system call.
    let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    if id < 0 {
        return skip("negative_keys", "the key is taken");
    }
    let _rm = Cleanup::sysv_id(id);
    let info = shm_json(&[
        "--backend",
        "sysv",
        "info",
        "--json",
        "--",
        &key.to_string(),
    ]);
    assert_eq!(info["id"], id, "{info}");
    assert_eq!(info["key"], format!("0x{:08x}", key as u32));
    for big in ["0x100000000", "99999999999"] {
        let line = one_error_line(
            big,
            &shm()
                .args(["--backend", "sysv", "info", big])
                .output()
                .unwrap(),
        );
        assert!(line.contains("does not fit in 32 bits"), "{line}");
    }
}

#[test]
fn the_owner_in_json_is_what_the_text_shows() {
    let test = "the_owner_in_json_is_what_the_text_shows";
    if !is_root() {
        return skip(
            test,
            "giving a segment to a uid without a passwd entry needs root",
        );
    }
    let name = unique_name("owner");
    let _g = Cleanup::posix(name.clone());
    assert!(
        shm()
            .args(["create", &name, "-s", "4096"])
            .output()
            .unwrap()
            .status
            .success()
    );
    let path = format!("/dev/shm/{}", name.trim_start_matches('/'));
    std::os::unix::fs::chown(&path, Some(54321), None).unwrap();
    let info = shm_json(&["info", &name, "--json"]);
    assert_eq!(info["owner"], "54321", "{info}");
    let text =
        String::from_utf8_lossy(&shm().args(["info", &name]).output().unwrap().stdout).into_owned();
    assert!(text.contains("54321 (uid 54321"), "{text}");
}

#[test]
fn a_size_no_mapping_could_hold_is_refused_at_create() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("huge-{backend}"));
        let _g = Cleanup::posix(name.clone());
        let _s = Cleanup::sysv_name(name.clone());
        let out = shm()
            .args([
                "--backend",
                backend,
                "create",
                &name,
                "--size",
                "200TiB",
                "--no-reserve",
            ])
            .output()
            .unwrap();
        let line = one_error_line("200TiB", &out);
        assert!(
            line.contains("could never be mapped") || line.contains("limit"),
            "{line}"
        );
        assert!(!shm_exists(backend, &name));
    }
}

#[test]
fn mode_bits_beyond_permissions_never_reach_a_segment() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("suid-{backend}"));
        let _g = Cleanup::posix(name.clone());
        let _s = Cleanup::sysv_name(name.clone());
        let seg = SegmentName::new(&name).unwrap();
        let opts = CreateOptions::new(4096).mode(0o4777);
        let err = match backend {
            "posix" => shm_posix::Posix::new().create(&seg, &opts).map(drop),
            _ => shm_sysv::SysV::new().create(&seg, &opts).map(drop),
        }
        .unwrap_err();
        assert!(matches!(err, shm_core::Error::InvalidMode { .. }), "{err}");
        for mode in ["4777", "2755", "1777"] {
            let out = shm()
                .args([
                    "--backend",
                    backend,
                    "create",
                    &name,
                    "-s",
                    "4k",
                    "-m",
                    mode,
                ])
                .output()
                .unwrap();
            one_error_line(mode, &out);
        }
        assert!(!shm_exists(backend, &name));
    }
}
