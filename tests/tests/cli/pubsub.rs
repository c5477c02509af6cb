//! `shm pub` and `shm sub` end to end: a file byte-exact to three subscribers on both
//! backends (256 MiB in the release-build command, a smaller one here), a stream cut by a signal
//! or by kill -9 of the publisher, and a lossy publisher past a stalled subscriber.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use shm_tests::{Cleanup, Reaped, shm, shm_bin, temp_path};

use super::channel::{named, spawn};

/// Waits (at most `within`) for a child to end: its status and stderr.
fn ends_within(c: &mut Reaped, within: Duration) -> (std::process::ExitStatus, String) {
    let (status, _, err) = super::channel::ends_within(c, within);
    (status, err)
}

/// Two `shm sub NAME` (stdout from `out`), then `shm pub NAME --wait-for 2` fed `first` on a
/// stdin that stays open (returned): the subscribers, the publisher, its input.
fn two_subs_and_a_pub(
    backend: &str,
    name: &str,
    out: fn() -> Stdio,
    first: &[u8],
) -> (Vec<Reaped>, Reaped, std::process::ChildStdin) {
    let subs = (0..2)
        .map(|_| spawn(&["--backend", backend, "sub", name], Stdio::null(), out()))
        .collect();
    let mut publisher = spawn(
        &["--backend", backend, "pub", name, "--wait-for", "2"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut input = publisher.0.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, first).unwrap();
    (subs, publisher, input)
}

/// A file of `len` pseudo-random bytes.
fn random_file(path: &std::path::Path, len: usize) {
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ len as u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}

/// Asserts that the topic's name is gone on `backend`.
fn assert_gone(backend: &str, name: &str) {
    let out = shm()
        .args(["--backend", backend, "info", name])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && (err.contains("no such segment") || err.contains("no segment")),
        "{name} ({backend}) is still there: {}{err}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `shm pub NAME FILE --wait-for 3` with three `shm sub NAME > outK`: every output is the file,
/// byte for byte (`cmp`); every end exits 0 without a word; nothing is left.
fn three_subscribers(backend: &str, mib: usize) {
    let dir = temp_path("cli-pubsub");
    let _rm = Cleanup::path(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input");
    random_file(&input, mib << 20);
    let (name, _guard) = named(backend, "cli-pub");
    let mut subs: Vec<(Reaped, std::path::PathBuf)> = (0..3)
        .map(|k| {
            let out = dir.join(format!("out{k}"));
            let file = std::fs::File::create(&out).unwrap();
            let sub = spawn(
                &["--backend", backend, "sub", &name],
                Stdio::null(),
                Stdio::from(file),
            );
            (sub, out)
        })
        .collect();
    let t0 = Instant::now();
    let mut publisher = spawn(
        &[
            "--backend",
            backend,
            "pub",
            &name,
            input.to_str().unwrap(),
            "--wait-for",
            "3",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    let (st, err) = ends_within(&mut publisher, Duration::from_secs(300));
    assert!(st.success() && err.is_empty(), "pub: {st}: {err}");
    for (sub, out) in &mut subs {
        let (st, err) = ends_within(sub, Duration::from_secs(60));
        assert!(st.success() && err.is_empty(), "sub: {st}: {err}");
        let cmp = std::process::Command::new("cmp")
            .arg(&input)
            .arg(&*out)
            .output()
            .unwrap();
        assert!(
            cmp.status.success(),
            "{} differs: {}",
            out.display(),
            String::from_utf8_lossy(&cmp.stdout)
        );
    }
    println!(
        "{backend}: {mib} MiB to three subscribers, byte-exact, in {:?}",
        t0.elapsed()
    );
    assert_gone(backend, &name);
}

#[test]
fn posix_three_subscribers_get_the_whole_file() {
    three_subscribers("posix", 24);
}

#[test]
fn sysv_three_subscribers_get_the_whole_file() {
    three_subscribers("sysv", 24);
}

/// The size, on the release build: `.ci/run` runs it
/// (`cargo test --release -p shm-tests --test cli -- --ignored pubsub::`).
#[test]
#[ignore = "release build: .ci/run runs it"]
fn posix_256_mib_to_three_subscribers() {
    three_subscribers("posix", 256);
}

#[test]
#[ignore = "release build: .ci/run runs it"]
fn sysv_256_mib_to_three_subscribers() {
    three_subscribers("sysv", 256);
}

/// `shm pub` ended by SIGTERM, or killed with -9, in the middle of a stream: each `shm sub`
/// prints what came, says the stream was cut, and exits non-zero; nothing is left.
fn a_cut_stream_is_reported(backend: &str, sig: libc::c_int) {
    let (name, _guard) = named(backend, "cli-pub-cut");
    // The input stays open: the stream never ends by itself.
    let (mut subs, mut publisher, input) =
        two_subs_and_a_pub(backend, &name, Stdio::piped, b"the first words");
    for sub in &mut subs {
        let mut got = [0u8; 15];
        sub.0.stdout.as_mut().unwrap().read_exact(&mut got).unwrap();
        assert_eq!(&got, b"the first words");
    }
    publisher.signal(sig);
    let (st, _) = ends_within(&mut publisher, Duration::from_secs(20));
    assert!(!st.success(), "pub killed mid-stream exited {st}");
    for sub in &mut subs {
        let (st, err) = ends_within(sub, Duration::from_secs(20));
        assert!(!st.success(), "sub of a cut stream exited {st}: {err}");
        let why = if sig == libc::SIGKILL {
            "died"
        } else {
            "stopped"
        };
        assert!(err.contains("incomplete") && err.contains(why), "{err}");
    }
    drop(input);
    assert_gone(backend, &name);
}

#[test]
fn posix_a_cut_stream_is_reported() {
    a_cut_stream_is_reported("posix", libc::SIGTERM);
    a_cut_stream_is_reported("posix", libc::SIGKILL);
}

#[test]
fn sysv_a_cut_stream_is_reported() {
    a_cut_stream_is_reported("sysv", libc::SIGTERM);
    a_cut_stream_is_reported("sysv", libc::SIGKILL);
}

/// `shm pub --lossy` never waits for a subscriber whose reader stalled: it publishes its whole
/// input and exits 0; the stalled `shm sub` then writes what it still had, says how many
/// messages it missed, and exits non-zero. Without --lossy the same stalled reader holds the
/// publisher back.
fn lossy_passes_a_stalled_reader(backend: &str) {
    let dir = temp_path("cli-pub-lossy");
    let _rm = Cleanup::path(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input");
    // 16 MiB: far more than the ring (2 MiB) and a pipe (64 KiB) hold.
    random_file(&input, 16 << 20);
    for lossy in [true, false] {
        let (name, _guard) = named(backend, "cli-pub-lossy");
        // A sub whose stdout nobody reads: it blocks in write(2) after 64 KiB.
        let mut sub = spawn(
            &["--backend", backend, "sub", &name],
            Stdio::null(),
            Stdio::piped(),
        );
        let mut args = vec![
            "--backend",
            backend,
            "pub",
            &name,
            input.to_str().unwrap(),
            "--wait-for",
            "1",
        ];
        if lossy {
            args.push("--lossy");
        }
        let mut publisher = spawn(&args, Stdio::null(), Stdio::null());
        if lossy {
            let (st, err) = ends_within(&mut publisher, Duration::from_secs(60));
            assert!(st.success() && err.is_empty(), "pub --lossy: {st}: {err}");
        } else {
            std::thread::sleep(Duration::from_millis(500));
            assert!(
                publisher.0.try_wait().unwrap().is_none(),
                "pub without --lossy did not wait for the stalled subscriber"
            );
        }
        let mut out = Vec::new();
        sub.0.stdout.take().unwrap().read_to_end(&mut out).unwrap();
        let (st, err) = ends_within(&mut sub, Duration::from_secs(60));
        if lossy {
            assert!(!st.success(), "a sub that missed messages exited {st}");
            assert!(err.contains("missed"), "{err}");
            assert!(out.len() < 16 << 20, "it got all {} bytes", out.len());
        } else {
            assert!(st.success() && err.is_empty(), "sub: {st}: {err}");
            assert_eq!(out, std::fs::read(&input).unwrap());
            let (st, err) = ends_within(&mut publisher, Duration::from_secs(60));
            assert!(st.success() && err.is_empty(), "pub: {st}: {err}");
        }
        assert_gone(backend, &name);
    }
}

#[test]
fn posix_lossy_passes_a_stalled_reader() {
    lossy_passes_a_stalled_reader("posix");
}

#[test]
fn sysv_lossy_passes_a_stalled_reader() {
    lossy_passes_a_stalled_reader("sysv");
}

/// `shm sub NAME | head -c 10`: the subscriber leaves quietly (status 0), and the publisher and
/// the other subscriber go on to the end.
#[test]
fn a_subscriber_that_leaves_disturbs_nobody() {
    let dir = temp_path("cli-pub-head");
    let _rm = Cleanup::path(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input");
    random_file(&input, 8 << 20);
    let (name, _guard) = named("posix", "cli-pub-head");
    let mut head = Reaped(
        std::process::Command::new("sh")
            .args(["-c", "\"$0\" sub \"$1\" | head -c 10 >/dev/null"])
            .arg(shm_bin())
            .arg(&name)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = dir.join("out");
    let mut whole = spawn(
        &["sub", &name],
        Stdio::null(),
        Stdio::from(std::fs::File::create(&out).unwrap()),
    );
    let mut publisher = spawn(
        &["pub", &name, input.to_str().unwrap(), "--wait-for", "2"],
        Stdio::null(),
        Stdio::null(),
    );
    let (st, err) = ends_within(&mut head, Duration::from_secs(60));
    assert!(st.success() && err.is_empty(), "sub | head: {st}: {err}");
    let (st, err) = ends_within(&mut publisher, Duration::from_secs(60));
    assert!(st.success() && err.is_empty(), "pub: {st}: {err}");
    let (st, err) = ends_within(&mut whole, Duration::from_secs(60));
    assert!(st.success() && err.is_empty(), "sub: {st}: {err}");
    assert!(std::fs::read(&out).unwrap() == std::fs::read(&input).unwrap());
    assert_gone("posix", &name);
}

/// `shm list` and `shm info` say what a channel segment is: a topic of `shm pub` with two
/// `shm sub`, one killed with -9, shows as `pubsub` with its ends, alive and dead, in the table,
/// in `--json` and in `shm info`; a waiting `shm recv` shows as a stream with one end.
fn list_names_kinds_and_ends(backend: &str) {
    let (name, _guard) = named(backend, "cli-pub-list");
    let (mut subs, mut publisher, input) = two_subs_and_a_pub(backend, &name, Stdio::null, b"x");
    let (live, doomed) = (subs[0].0.id() as i32, subs[1].0.id() as i32);
    // Both joined once the publisher waited for them and wrote; kill one.
    let t0 = Instant::now();
    let json = |args: &[&str]| -> serde_json::Value {
        let out = shm().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The topic may not be there yet: poll until it is, with its three ends.
    let ends = || -> usize {
        let out = shm()
            .args(["--backend", backend, "info", &name, "--json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v["channel"]["ends"].as_array().map(Vec::len))
            .unwrap_or(0)
    };
    while ends() < 3 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the subscribers never joined"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    subs[1].signal(libc::SIGKILL);
    subs[1].0.wait().unwrap();
    let listed = json(&["--backend", backend, "list", &name, "--json"]);
    let c = &listed[0]["channel"];
    assert_eq!(c["kind"], "pubsub", "{listed}");
    assert_eq!(
        (c["alive"].as_u64(), c["dead"].as_u64()),
        (Some(2), Some(1)),
        "{c}"
    );
    let ends = c["ends"].as_array().unwrap();
    let has = |role: &str, pid: i32, alive: bool| {
        ends.iter()
            .any(|e| e["role"] == role && e["pid"] == pid && e["alive"] == alive)
    };
    assert!(has("publisher", publisher.0.id() as i32, true), "{c}");
    assert!(
        has("subscriber", live, true) && has("subscriber", doomed, false),
        "{c}"
    );
    let table = shm()
        .args(["--backend", backend, "list", &name])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[header.len() - 2..], ["KIND", "ENDS"], "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("pubsub  2 alive, 1 dead"),
        "{table}"
    );
    if backend == "sysv" {
        // Unnamed, a System V header is read only with --channels (reading attaches).
        let key = shm_sysv::key_for(&shm_core::SegmentName::new(&name).unwrap())
            .unwrap()
            .as_raw();
        let key = format!("0x{:08x}", key as u32);
        let entry = |args: &[&str]| {
            json(args)
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["key"] == key.as_str())
                .cloned()
                .unwrap()
        };
        let unread = entry(&["--backend", "sysv", "list", "--json"]);
        assert_eq!(unread["channel_read"], false, "{unread}");
        assert!(unread["channel"].is_null(), "{unread}");
        let read = entry(&["--backend", "sysv", "list", "--json", "--channels"]);
        assert_eq!(read["channel_read"], true, "{read}");
        assert_eq!(read["channel"]["kind"], "pubsub", "{read}");
    }
    let info = shm()
        .args(["--backend", backend, "info", &name])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("kind      pubsub channel"), "{info}");
    assert!(
        info.contains(&format!("subscriber {doomed} (dead)"))
            && info.contains(&format!("publisher {} (alive)", publisher.0.id())),
        "{info}"
    );
    drop(input);
    let (st, err) = ends_within(&mut publisher, Duration::from_secs(20));
    assert!(st.success() && err.is_empty(), "pub: {st}: {err}");
    let (st, err) = ends_within(&mut subs[0], Duration::from_secs(20));
    assert!(st.success() && err.is_empty(), "sub: {st}: {err}");
    assert_gone(backend, &name);
    // A stream waiting for its sender: one end, the receiver.
    let (stream, _guard) = named(backend, "cli-list-stream");
    let mut rx = spawn(
        &["--backend", backend, "recv", &stream],
        Stdio::null(),
        Stdio::null(),
    );
    let t0 = Instant::now();
    let c = loop {
        let out = shm()
            .args(["--backend", backend, "info", &stream, "--json"])
            .output()
            .unwrap();
        if out.status.success() {
            // The segment may be there before its header: wait for the header too.
            let c = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["channel"]
                .clone();
            if !c.is_null() {
                break c;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no stream appeared");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(c["kind"], "stream", "{c}");
    assert_eq!(c["ends"][0]["role"], "receiver", "{c}");
    assert_eq!(c["ends"][0]["pid"], rx.0.id() as i32, "{c}");
    rx.signal(libc::SIGTERM);
    ends_within(&mut rx, Duration::from_secs(20));
    assert_gone(backend, &stream);
}

#[test]
fn posix_list_names_kinds_and_ends() {
    list_names_kinds_and_ends("posix");
}

#[test]
fn sysv_list_names_kinds_and_ends() {
    list_names_kinds_and_ends("sysv");
}
