//! `shm create|info|list|rm|read|write` end to end, on real kernel objects: segments made by
//! `shm`, by `ipcmk` and by a plain `shm_open` in another program; bytes checked through the
//! kernel, not only through `shm` itself.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use shm_core::{Access, Backend, Segment, SegmentName};
use shm_tests::{Cleanup, shm, skip, unique_name};

/// Runs `shm ARGS`, feeding `stdin` when given.
fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = shm();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// `shm ARGS`, which must succeed; its stdout.
fn ok(args: &[&str]) -> Vec<u8> {
    let out = run_with(args, None);
    assert!(
        out.status.success(),
        "shm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ok_text(args: &[&str]) -> String {
    String::from_utf8(ok(args)).unwrap()
}

/// `shm ARGS`, which must fail with a message; its stderr.
fn fails(args: &[&str]) -> String {
    let out = run_with(args, None);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "shm {args:?} should fail");
    assert!(err.contains("error"), "shm {args:?}: no message: {err:?}");
    err
}

/// The System V key `shm` uses for `name`.
fn key_of(name: &str) -> i32 {
    shm_sysv::key_for(&SegmentName::new(name).unwrap())
        .unwrap()
        .as_raw()
}

/// Guards for `name` in both backends (whichever the test makes).
fn guards(name: &str) -> (Cleanup, Cleanup) {
    (
        Cleanup::posix(name.to_owned()),
        Cleanup::sysv_key(key_of(name)),
    )
}

fn posix_exists(name: &str) -> bool {
    std::path::Path::new("/dev/shm")
        .join(name.trim_start_matches('/'))
        .exists()
}

fn sysv_exists(key: i32) -> bool {
    // SAFETY: shmget with size 0 and no flags only looks the key up.
    unsafe { libc::shmget(key, 0, 0) >= 0 }
}

/// Makes a System V segment with `ipcmk -M SIZE -p MODE`; its id, with a guard. None (and a
/// skip message) when ipcmk is missing.
fn ipcmk(test: &str, size: usize, mode: &str) -> Option<(i32, Cleanup)> {
    let out = match Command::new("ipcmk")
        .args(["-M", &size.to_string(), "-p", mode])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            skip(test, &format!("ipcmk is not available: {e}"));
            return None;
        }
    };
    assert!(out.status.success(), "ipcmk: {:?}", out);
    let text = String::from_utf8_lossy(&out.stdout);
    // "Shared memory id: 123"
    let id: i32 = text
        .rsplit(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read the id in {text:?}"));
    Some((id, Cleanup::sysv_id(id)))
}

/// The key of System V segment `id`, from /proc/sysvipc/shm.
fn key_of_id(id: i32) -> Option<i32> {
    let text = std::fs::read_to_string("/proc/sysvipc/shm").unwrap();
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f[1].parse::<i32>().ok()? == id).then(|| f[0].parse::<i64>().ok().map(|k| k as i32))?
    })
}

fn ipcs_m() -> String {
    let out = Command::new("ipcs").arg("-m").output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn list_json(extra: &[&str]) -> Vec<Value> {
    let mut args = extra.to_vec();
    args.extend(["list", "--json"]);
    let v: Value = serde_json::from_slice(&ok(&args)).unwrap();
    v.as_array().unwrap().clone()
}

const KEYS: [&str; 11] = [
    "backend", "name", "key", "id", "size", "mode", "uid", "nattch", "cpid", "lpid", "removed",
];

fn has_keys(obj: &Value) {
    for k in KEYS {
        assert!(obj.get(k).is_some(), "key {k} missing in {obj}");
    }
}

#[test]
fn list_finds_a_segment_made_by_ipcmk() {
    let test = "list_finds_a_segment_made_by_ipcmk";
    let Some((id, _guard)) = ipcmk(test, 4096, "0640") else {
        return;
    };
    let key = key_of_id(id).unwrap();
    let all = list_json(&[]);
    let found = all
        .iter()
        .find(|o| o["backend"] == "sysv" && o["id"] == id)
        .unwrap_or_else(|| panic!("id {id} not in shm list --json"));
    has_keys(found);
    assert_eq!(found["size"], 4096);
    assert_eq!(found["mode"], "0640");
    assert_eq!(found["key"], format!("0x{:08x}", key as u32));
    assert!(found["name"].is_null());
    assert_eq!(found["nattch"], 0);
    assert!(found["cpid"].is_number());
    assert!(found["lpid"].is_number());

    // The human table shows it too, with its size in units, and --backend narrows.
    let table = ok_text(&["--backend", "sysv", "list"]);
    let line = table
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == id.to_string()))
        .unwrap_or_else(|| panic!("id {id} not in\n{table}"));
    assert!(line.contains("4.0 KiB") && line.contains("0640"), "{line}");
    assert!(
        list_json(&["--backend", "sysv"])
            .iter()
            .all(|o| o["backend"] == "sysv")
    );

    // info by its key literal finds the same segment.
    let key_hex = format!("0x{:08x}", key as u32);
    // A key is a key when the user says so: with --backend sysv. Without it, the number is a
    // POSIX name, which does not exist, and the error says how to name the key.
    let err = fails(&["info", &key_hex]);
    assert!(err.contains("--backend sysv"), "{err}");
    let info: Value =
        serde_json::from_slice(&ok(&["--backend", "sysv", "info", &key_hex, "--json"])).unwrap();
    has_keys(&info);
    assert_eq!(info["id"], id);
}

#[test]
fn list_finds_a_segment_made_by_a_plain_shm_open() {
    let test = "list_finds_a_segment_made_by_a_plain_shm_open";
    let name = unique_name("plain");
    let _g = Cleanup::posix(name.clone());
    let script = "import _posixshmem, os, sys\n\
                  fd = _posixshmem.shm_open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)\n\
                  os.ftruncate(fd, 8192)\n\
                  os.close(fd)\n";
    let status = match Command::new("python3").args(["-c", script, &name]).status() {
        Ok(s) => s,
        Err(e) => return skip(test, &format!("python3 is not available: {e}")),
    };
    if !status.success() {
        return skip(test, "python3 has no _posixshmem (shm_open) module");
    }
    assert!(posix_exists(&name));
    let all = list_json(&[]);
    let found = all
        .iter()
        .find(|o| o["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in shm list --json"));
    has_keys(found);
    assert_eq!(found["backend"], "posix");
    assert_eq!(found["size"], 8192);
    assert_eq!(found["mode"], "0600");
    // POSIX keeps no attach count: shm counts the processes it sees use the segment (none).
    assert_eq!(found["nattch"], 0, "{found}");
    for null in ["key", "id", "cpid", "lpid"] {
        assert!(
            found[null].is_null(),
            "{null} should be null for posix: {found}"
        );
    }
    let table = ok_text(&["list"]);
    let line = table.lines().find(|l| l.contains(&name)).unwrap();
    assert!(line.contains("8.0 KiB") && line.contains("posix"), "{line}");
}

#[test]
fn rm_by_key_and_by_id_removes_what_ipcs_shows() {
    let test = "rm_by_key_and_by_id_removes_what_ipcs_shows";
    let Some((id_a, _ga)) = ipcmk(test, 4096, "0600") else {
        return;
    };
    let Some((id_b, _gb)) = ipcmk(test, 8192, "0600") else {
        return;
    };
    let key_a = key_of_id(id_a).unwrap();
    let key_a_hex = format!("0x{:08x}", key_a as u32);
    let before = ipcs_m();
    let shown = |text: &str, id: i32| {
        text.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
    };
    assert!(shown(&before, id_a) && shown(&before, id_b), "{before}");

    let out = ok_text(&["rm", "--key", &key_a_hex]);
    assert!(out.contains(&key_a_hex), "{out}");
    let out = ok_text(&["rm", "--id", &id_b.to_string()]);
    assert!(out.contains(&id_b.to_string()), "{out}");

    let after = ipcs_m();
    assert!(!shown(&after, id_a), "id {id_a} still in ipcs -m:\n{after}");
    assert!(!shown(&after, id_b), "id {id_b} still in ipcs -m:\n{after}");

    // Gone: again is an error, unless --force.
    let err = fails(&["rm", "--id", &id_b.to_string()]);
    assert!(err.contains(&format!("id {id_b}")), "{err}");
    fails(&["rm", "--key", &key_a_hex]);
    ok(&[
        "rm",
        "--force",
        "--id",
        &id_b.to_string(),
        "--key",
        &key_a_hex,
    ]);
    // --key and --id are System V only; key 0 names nothing.
    fails(&["--backend", "posix", "rm", "--id", "1"]);
    fails(&["rm", "--key", "0"]);
}

#[test]
fn rm_by_name_on_each_backend() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("rm-{backend}"));
        let _g = guards(&name);
        ok(&["--backend", backend, "create", &name, "--size", "4096"]);
        assert!(posix_exists(&name) == (backend == "posix"));
        assert!(sysv_exists(key_of(&name)) == (backend == "sysv"));
        // Without --backend the one backend that has it is found.
        let out = ok_text(&["rm", &name]);
        assert!(out.contains(&name) && out.contains(backend), "{out}");
        assert!(!posix_exists(&name) && !sysv_exists(key_of(&name)));
        let err = fails(&["rm", &name]);
        assert!(err.contains(&name), "{err}");
        ok(&["rm", "-f", &name]);
    }
}

#[test]
fn create_prints_what_it_made_and_keeps_it() {
    let name = unique_name("create");
    let _g = guards(&name);
    let out = ok_text(&["create", &name, "--size", "4KiB", "--mode", "0640"]);
    assert!(
        out.contains("posix") && out.contains(&name) && out.contains("4096"),
        "{out}"
    );
    // It stayed after the command exited, with the mode exactly (whatever the umask).
    let info: Value = serde_json::from_slice(&ok(&["info", &name, "--json"])).unwrap();
    has_keys(&info);
    assert_eq!(info["size"], 4096);
    assert_eq!(info["mode"], "0640");
    // Taken: an error naming --replace; with --replace a new one.
    let err = fails(&["create", &name, "--size", "4096"]);
    assert!(err.contains("already exists"), "{err}");
    ok(&["create", &name, "--size", "8192", "--replace"]);
    let info: Value = serde_json::from_slice(&ok(&["info", &name, "--json"])).unwrap();
    assert_eq!(info["size"], 8192);

    let out = ok_text(&["--backend", "sysv", "create", &name, "--size", "100"]);
    let key = format!("0x{:08x}", key_of(&name) as u32);
    assert!(
        out.contains("sysv") && out.contains(&key) && out.contains(" id "),
        "{out}"
    );
    // In both now: a name alone is ambiguous, --backend settles it.
    let err = fails(&["info", &name]);
    assert!(err.contains("--backend"), "{err}");
    let info: Value =
        serde_json::from_slice(&ok(&["--backend", "sysv", "info", &name, "--json"])).unwrap();
    has_keys(&info);
    assert_eq!(info["key"], key);
    assert_eq!(info["size"], 100);
    // Asked by name, the name is known (the kernel keeps only the key).
    assert_eq!(info["name"], name.as_str());
    assert!(info["id"].is_number() && info["nattch"] == 0);
    let human = ok_text(&["--backend", "sysv", "info", &name]);
    assert!(human.contains(&key) && human.contains("nattch"), "{human}");
}

#[test]
fn list_json_holds_both_backends_with_every_key() {
    let name = unique_name("listjson");
    let _g = guards(&name);
    ok(&["create", &name, "--size", "4096"]);
    ok(&[
        "-b", "sysv", "create", &name, "--size", "4096", "--mode", "0644",
    ]);
    let all = list_json(&[]);
    all.iter().for_each(has_keys);
    let posix = all.iter().find(|o| o["name"] == name.as_str()).unwrap();
    assert_eq!(posix["backend"], "posix");
    let key = format!("0x{:08x}", key_of(&name) as u32);
    let sysv = all.iter().find(|o| o["key"] == key.as_str()).unwrap();
    assert_eq!(sysv["backend"], "sysv");
    assert_eq!(sysv["mode"], "0644");
    assert!(sysv["size"].is_u64() && sysv["uid"].is_u64());
}

/// Reads `len` bytes at `offset` of a segment through the backend's own API, not the CLI.
fn kernel_bytes(backend: &str, name: &str, offset: usize, len: usize) -> Vec<u8> {
    let name = SegmentName::new(name).unwrap();
    let seg: Box<dyn Segment> = match backend {
        "posix" => Box::new(
            shm_posix::Posix::new()
                .open(&name, Access::ReadOnly)
                .unwrap(),
        ),
        _ => Box::new(shm_sysv::SysV::new().open(&name, Access::ReadOnly).unwrap()),
    };
    let mut buf = vec![0; len];
    seg.map().unwrap().read_at(offset, &mut buf).unwrap();
    buf
}

#[test]
fn read_and_write_round_trip_at_offsets() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("rw-{backend}"));
        let _g = guards(&name);
        let b = ["--backend", backend];
        ok(&[&b[..], &["create", &name, "--size", "4096"]].concat());

        // DATA on the command line, at an offset.
        let out = ok_text(&[&b[..], &["write", &name, "--offset", "100", "hello"]].concat());
        assert!(out.contains("5 bytes"), "{out}");
        assert_eq!(kernel_bytes(backend, &name, 100, 5), b"hello");
        let got = ok(&[&b[..], &["read", &name, "--offset", "100", "--len", "5"]].concat());
        assert_eq!(got, b"hello");

        // Every byte value, from stdin, at an offset with a unit.
        let all: Vec<u8> = (0..=255).collect();
        let args = [&b[..], &["write", &name, "--offset", "1KiB"]].concat();
        let out = run_with(&args, Some(&all));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(kernel_bytes(backend, &name, 1024, 256), all);
        let got = ok(&[&b[..], &["read", &name, "-o", "1024", "-l", "256"]].concat());
        assert_eq!(got, all);

        // The whole segment by default; untouched bytes are zero.
        let whole = ok(&[&b[..], &["read", &name]].concat());
        assert_eq!(whole.len(), 4096);
        assert_eq!(&whole[100..105], b"hello");
        assert!(whole[..100].iter().all(|&x| x == 0));
        assert!(whole[1280..].iter().all(|&x| x == 0));

        // A hex dump, with offsets of the segment.
        let hex = ok_text(&[&b[..], &["read", &name, "-o", "96", "-l", "16", "--hex"]].concat());
        assert_eq!(
            hex,
            "00000060  00 00 00 00 68 65 6c 6c  6f 00 00 00 00 00 00 00  |....hello.......|\n"
        );
        // The last byte can be written and read.
        ok(&[&b[..], &["write", &name, "-o", "4095", "Z"]].concat());
        assert_eq!(ok(&[&b[..], &["read", &name, "-o", "4095"]].concat()), b"Z");
    }
}

#[test]
fn offsets_and_lengths_past_the_end_are_refused() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("oob-{backend}"));
        let _g = guards(&name);
        let b = ["--backend", backend];
        ok(&[&b[..], &["create", &name, "--size", "4096"]].concat());
        ok(&[&b[..], &["write", &name, "-o", "4090", "abcdef"]].concat());
        for args in [
            &["read", &name, "--offset", "4097"][..],
            &["read", &name, "--offset", "4000", "--len", "97"],
            &["read", &name, "--len", "1MiB"],
            &["read", &name, "--offset", "garbage"],
            &["write", &name, "--offset", "4095", "ab"],
            &["write", &name, "--offset", "5000", "a"],
            &["write", &name, "--offset", "-1", "a"],
        ] {
            let err = fails(&[&b[..], args].concat());
            assert!(
                err.contains("past the end")
                    || err.contains("invalid")
                    || err.contains("unexpected"),
                "{args:?}: {err}"
            );
        }
        // Nothing of the refused writes landed.
        assert_eq!(kernel_bytes(backend, &name, 3990, 106)[100..], *b"abcdef");
        assert!(
            kernel_bytes(backend, &name, 3990, 100)
                .iter()
                .all(|&x| x == 0)
        );
        // stdin longer than the room left, from a file: its size is known, nothing is written.
        let path = shm_tests::temp_path(&format!("oob-stdin-{backend}"));
        std::fs::write(&path, [7u8; 200]).unwrap();
        let out = std::process::Command::new(shm_tests::shm_bin())
            .args([&b[..], &["write", &name, "--offset", "4000"]].concat())
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("fit") && err.contains("nothing was written"),
            "{err}"
        );
        assert_eq!(kernel_bytes(backend, &name, 3990, 106)[100..], *b"abcdef");
        // From a pipe, streamed: what fits is written by the time the excess shows, and the
        // error says so.
        let out = run_with(
            &[&b[..], &["write", &name, "--offset", "4000"]].concat(),
            Some(&[7u8; 200]),
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("fit") && err.contains("the first 96 were written"),
            "{err}"
        );
        assert!(
            kernel_bytes(backend, &name, 4000, 96)
                .iter()
                .all(|&x| x == 7)
        );
    }
}

#[test]
fn bad_sizes_are_refused_and_create_nothing() {
    for backend in ["posix", "sysv"] {
        let name = unique_name(&format!("badsize-{backend}"));
        let _g = guards(&name);
        for size in [
            "0",
            "-1",
            "garbage",
            "4XB",
            "99999999999999999999TiB",
            "1000TiB",
        ] {
            let arg = format!("--size={size}");
            let err = fails(&["--backend", backend, "create", &name, &arg]);
            assert!(
                err.contains("size") || err.contains("space") || err.contains("limit"),
                "{backend} {size}: {err}"
            );
            assert!(
                !posix_exists(&name),
                "{backend} {size}: left {name} in /dev/shm"
            );
            assert!(
                !sysv_exists(key_of(&name)),
                "{backend} {size}: left a sysv segment"
            );
        }
    }
}

#[test]
fn bad_names_are_refused() {
    let long = format!("/{}", "x".repeat(300));
    for name in ["/a/b", "", "/", "/..", long.as_str()] {
        for args in [
            &["create", name, "--size", "4096"][..],
            &["info", name],
            &["read", name],
            &["write", name, "x"],
            &["rm", name],
        ] {
            let err = fails(args);
            assert!(err.contains("invalid segment name"), "{args:?}: {err}");
        }
    }
    // A missing segment is a clear error too.
    let missing = unique_name("missing");
    for args in [
        &["info", &missing][..],
        &["read", &missing],
        &["write", &missing, "x"],
    ] {
        let err = fails(args);
        assert!(err.contains("no segment"), "{args:?}: {err}");
    }
}
