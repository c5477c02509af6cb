//! What newcomers and embedders tripped on: the demo's order, keys shown as keys, names of
//! System V segments, who uses a segment, unused segments, completion of live names, help.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use shm_core::{Backend, CreateOptions, SegmentName};
use shm_tests::{
    Cleanup, made_posix, one_error_line, shm, shm_bin, shm_json, temp_path, unique_name,
};

/// The values X of "I am taller. X, Y" in the order the demo printed them, and whether the
/// client's "opened" line came before its first move.
fn moves(text: &str) -> (Vec<i64>, bool) {
    let mut xs = Vec::new();
    let mut client_opened = false;
    let mut opened_first = true;
    for line in text.lines() {
        let (side, rest) = line.split_once(" | ").unwrap_or(("", line));
        if side == "client" && rest.starts_with("opened ") {
            client_opened = true;
        }
        if let Some(m) = rest.strip_prefix("I am taller. ") {
            if side == "client" && !client_opened {
                opened_first = false;
            }
            xs.push(m.split(',').next().unwrap().trim().parse().unwrap());
        }
    }
    (xs, opened_first)
}

#[test]
fn the_demo_prints_moves_in_the_order_they_happened() {
    for run in 0..6 {
        for (mode, args) in [
            ("reference", &["--rounds", "6", "--interval", "5ms"][..]),
            ("lockstep", &["--lockstep", "--verbose", "--rounds", "200"]),
        ] {
            let name = unique_name(&format!("order-{mode}"));
            let _g = Cleanup::posix(name.clone());
            let out = shm()
                .args(["taller", "demo", "--name", &name])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            let text = String::from_utf8_lossy(&out.stdout);
            let (xs, opened_first) = moves(&text);
            assert!(!xs.is_empty(), "{text}");
            assert!(
                xs.windows(2).all(|w| w[0] <= w[1]),
                "run {run}, {mode}: moves out of order {xs:?}\n{text}"
            );
            assert!(
                opened_first,
                "run {run}, {mode}: a client move before its start line\n{text}"
            );
        }
    }
}

#[test]
fn keys_show_as_keys_and_a_missing_key_says_so() {
    let key = format!("0x5b{:06x}", std::process::id() & 0xffffff);
    let _s = Cleanup::sysv_name(key.clone());
    let out = shm()
        .args(["--backend", "sysv", "create", &key, "-s", "4096"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&format!("segment key {key}: id ")) && !text.contains(&format!("/{key}")),
        "{text}"
    );
    assert!(text.contains(&format!("rm --key {key}")), "{text}");
    assert!(
        shm()
            .args(["--backend", "sysv", "rm", "--key", &key])
            .status()
            .unwrap()
            .success()
    );
    let line = one_error_line(
        "missing key",
        &shm()
            .args(["--backend", "sysv", "info", &key])
            .output()
            .unwrap(),
    );
    assert!(
        line.contains(&format!("no System V segment with key {key}")),
        "{line}"
    );
    assert!(
        !line.contains("create it first") && !line.contains(&format!("/{key}")),
        "{line}"
    );
}

/// Issue 22: create, write, read, info and rm by key on System V each name the segment as a
/// key (`key 0x...`), never as a name (`/0x...`), once; a missing key says there is no System V
/// segment with it.
#[test]
fn every_command_names_a_key_as_a_key() {
    let key = format!("0x5c{:06x}", std::process::id() & 0xffffff);
    let raw = u32::from_str_radix(&key[2..], 16).unwrap() as i32;
    // Removes by key whatever the commands under test do.
    let _guard = shm_tests::Cleanup::sysv_key(raw);
    let as_key = format!("key {key}");
    let as_name = format!("/{key}");
    let run = |args: &[&str]| {
        shm()
            .args(["--backend", "sysv"])
            .args(args)
            .output()
            .unwrap()
    };
    let said = |out: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = said(&out);
        assert!(
            !text.contains(&as_name),
            "{args:?} names the key as a name: {text}"
        );
        text
    };

    let created = ok(&["create", &key, "--size", "4096"]);
    assert!(
        created.contains(&format!("segment {as_key}: id ")),
        "{created}"
    );
    assert_eq!(
        created.matches(&key).count(),
        2,
        "the key once, and in `rm --key`: {created}"
    );

    let wrote = ok(&["write", &key, "hi"]);
    assert_eq!(
        wrote.trim(),
        format!("wrote 2 bytes to {as_key} (sysv) at offset 0")
    );

    assert_eq!(ok(&["read", &key, "--len", "2"]), "hi");
    let past = one_error_line(
        "read past the end",
        &run(&["read", &key, "--offset", "5000"]),
    );
    assert!(
        past.contains(&format!("past the end of {as_key}")),
        "{past}"
    );

    let info = ok(&["info", &key]);
    assert!(
        info.lines()
            .any(|l| l.starts_with("key") && l.ends_with(&key)),
        "{info}"
    );

    let removed = ok(&["rm", &key]);
    assert_eq!(removed.trim(), format!("removed {as_key} (sysv)"));

    // Gone: every command says there is no System V segment with that key.
    let missing = format!("no System V segment with {as_key}");
    for args in [
        &["rm", &key][..],
        &["info", &key],
        &["read", &key],
        &["write", &key, "hi"],
        &["rm", "--key", &key],
    ] {
        let line = one_error_line(&format!("{args:?} when gone"), &run(args));
        assert!(line.contains(&missing), "{args:?}: {line}");
        assert!(!line.contains(&as_name), "{args:?}: {line}");
        assert_eq!(
            line.matches(&key).count(),
            1,
            "{args:?} says the key once: {line}"
        );
    }
}

/// Issue 22 for the taller game: a game on a System V key names it as the key, once.
#[test]
fn the_taller_game_names_a_key_as_a_key() {
    let key = format!("0x5d{:06x}", std::process::id() & 0xffffff);
    let raw = u32::from_str_radix(&key[2..], 16).unwrap() as i32;
    let _guard = shm_tests::Cleanup::sysv_key(raw);
    let out = shm()
        .args(["--backend", "sysv", "taller", "demo", "--name", &key])
        .args(["--rounds", "2", "--interval", "5ms"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for verb in ["created", "opened"] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{verb} sysv segment")))
            .unwrap_or_else(|| panic!("no {verb} line: {text}"));
        assert!(line.contains(&format!("segment key {key} (id ")), "{line}");
        assert_eq!(line.matches(&key).count(), 1, "{line}");
    }
    // Taken by someone else: the key as a key, and `rm --key` to free it.
    assert!(
        shm()
            .args(["--backend", "sysv", "create", &key, "-s", "4096"])
            .status()
            .unwrap()
            .success()
    );
    let line = one_error_line(
        "server on a taken key",
        &shm()
            .args(["--backend", "sysv", "taller", "server", "--name", &key])
            .output()
            .unwrap(),
    );
    assert!(line.contains(&format!("key {key} is taken")), "{line}");
    assert!(line.contains(&format!("rm --key {key}")), "{line}");
    assert!(!line.contains(&format!("/{key}")), "{line}");
}

#[test]
fn a_system_v_name_is_shown_where_it_can_be_known() {
    let name = unique_name("sysvname");
    let _s = Cleanup::sysv_name(name.clone());
    assert!(
        shm()
            .args(["--backend", "sysv", "create", &name, "-s", "4096"])
            .status()
            .unwrap()
            .success()
    );
    let info = shm_json(&["--backend", "sysv", "info", &name, "--json"]);
    assert_eq!(info["name"], name.as_str());
    let listed = shm_json(&["list", &name, "--json"]);
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["backend"], "sysv");
    assert_eq!(rows[0]["name"], name.as_str());
    let help = String::from_utf8(shm().args(["list", "--help"]).output().unwrap().stdout).unwrap();
    assert!(help.contains("never the name"), "{help}");
}

#[test]
fn posix_users_are_counted_and_named_and_unused_is_marked() {
    let (name, _g) = made_posix("users");
    // Nobody uses it yet.
    let all = shm_json(&["list", "--unused", &name, "--json"]);
    assert_eq!(all.as_array().unwrap().len(), 1, "{all}");
    assert_eq!(all[0]["unused"], true);
    assert_eq!(all[0]["nattch"], 0);
    // A process that maps it (a taller client holds a mapping for its whole game) and one that
    // holds it open.
    let mut server = shm()
        .args([
            "taller",
            "server",
            "--name",
            &format!("{name}-game"),
            "--rounds",
            "1000",
        ])
        .args(["--interval", "20ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _g2 = Cleanup::posix(format!("{name}-game"));
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("created "));
    let holder = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("exec 3</dev/shm/{}; sleep 30", name.trim_start_matches('/')),
        ])
        .spawn()
        .unwrap();
    // Until the shell holds the segment open as descriptor 3 (a loaded machine is slow).
    let fd3 = format!("/proc/{}/fd/3", holder.id());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_link(&fd3).is_ok_and(|t| t.to_string_lossy().contains(&name[1..])) {
        assert!(
            std::time::Instant::now() < until,
            "the shell never opened the segment"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let game = shm_json(&["info", &format!("{name}-game"), "--json"]);
    let held = shm_json(&["info", &name, "--json"]);
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
    let _ = server.kill();
    let _ = server.wait();
    let pids = |v: &serde_json::Value| -> Vec<u64> {
        v["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect()
    };
    assert!(pids(&game).contains(&u64::from(server.id())), "{game}");
    assert!(game["nattch"].as_u64().unwrap() >= 1, "{game}");
    assert_eq!(game["unused"], false);
    assert!(pids(&held).contains(&u64::from(holder.id())), "{held}");
    assert_eq!(held["unused"], false);
}

#[test]
fn system_v_creator_command_is_named() {
    let name = SegmentName::new(&unique_name("creator")).unwrap();
    let _s = Cleanup::sysv_name(name.as_str().to_owned());
    let seg = shm_sysv::SysV::new()
        .create(&name, &CreateOptions::new(4096))
        .unwrap();
    let me = std::fs::read_to_string("/proc/self/comm").unwrap();
    let info = shm_json(&["--backend", "sysv", "info", name.as_str(), "--json"]);
    assert_eq!(info["creator_command"], me.trim_end(), "{info}");
    drop(seg);
}

#[test]
fn bash_completes_live_segment_names() {
    let (name, _g) = made_posix("complete");
    let script = shm().args(["completions", "bash"]).output().unwrap().stdout;
    let dir = temp_path("bash-names");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shm.bash");
    std::fs::write(&file, script).unwrap();
    let bin = shm_bin();
    let partial = &name[..name.len() - 3];
    let complete = |words: &str, cword: usize| -> String {
        let prog = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _shm_names {} \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[*]}}\"",
            file.display(),
            bin.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &prog])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let info = complete(&format!("{} info {partial}", bin.display()), 2);
    let taller = complete(
        &format!("{} taller client --name {partial}", bin.display()),
        4,
    );
    let sub = complete(&format!("{} ta", bin.display()), 1);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(info.trim(), name, "info");
    assert_eq!(taller.trim(), name, "taller --name");
    assert_eq!(sub.trim(), "taller", "subcommands still complete");
}

#[test]
fn taller_sides_have_examples_that_explain_the_numbers() {
    for side in ["server", "client", "demo"] {
        let help = String::from_utf8(
            shm()
                .args(["taller", side, "--help"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(
            help.contains("Examples:") && help.contains(&format!("shm taller {side}")),
            "{help}"
        );
        assert!(
            help.contains("I am taller. X, Y") && help.contains("Quit server: S, C"),
            "{help}"
        );
    }
    let demo = String::from_utf8(
        shm()
            .args(["taller", "demo", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(demo.contains("--interval sets both sides"), "{demo}");
}

#[test]
fn library_errors_advise_in_library_terms() {
    let name = SegmentName::new(&unique_name("libterms")).unwrap();
    let posix = shm_posix::Posix::new();
    let first = posix.create(&name, &CreateOptions::new(4096)).unwrap();
    let err = posix.create(&name, &CreateOptions::new(4096)).unwrap_err();
    drop(first);
    // The advice is the hint, apart from the message; the report has both.
    let (msg, hint) = (err.to_string(), err.hint().unwrap_or_default());
    assert!(msg.ends_with("it already exists"), "{msg}");
    assert!(
        hint.contains("CreateOptions::replace") && !hint.contains("shm rm"),
        "{hint}"
    );
    assert_eq!(err.report().to_string(), format!("{msg}; {hint}"));
    // The CLI adds its own.
    let cli = unique_name("cliterms");
    let _g = Cleanup::posix(cli.clone());
    assert!(
        shm()
            .args(["create", &cli, "-s", "4096"])
            .status()
            .unwrap()
            .success()
    );
    let line = one_error_line(
        "taken",
        &shm().args(["create", &cli, "-s", "4096"]).output().unwrap(),
    );
    assert!(
        line.contains(&format!("shm rm {cli}")) && line.contains("--replace"),
        "{line}"
    );
    assert!(!line.contains("CreateOptions"), "{line}");
}

#[test]
fn the_backend_flag_is_one_line_everywhere_and_shm_help_says_what_its_absence_means() {
    for sub in [
        &["completions"][..],
        &["man"],
        &["list"],
        &["taller", "demo"],
    ] {
        let help =
            String::from_utf8(shm().args(sub).arg("--help").output().unwrap().stdout).unwrap();
        let at = help.find("--backend <BACKEND>").unwrap();
        let described: Vec<&str> = help[at..]
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with('-'))
            .filter(|l| !l.contains("[env:") && !l.contains("[possible values"))
            .collect();
        assert_eq!(described.len(), 1, "{sub:?}: {described:?}");
    }
    let top = String::from_utf8(shm().arg("--help").output().unwrap().stdout).unwrap();
    assert!(top.contains("Without --backend: create, taller"), "{top}");
}

/// Segment names that a hostile local user can plant in the world-writable /dev/shm: one that
/// runs `touch PWNED` wherever a shell evaluates it, one that holds an escape sequence and a
/// newline, one with a backslash (shown escaped, so it cannot be offered as it is). All start
/// with `base` and are removed on drop.
struct Planted {
    base: String,
    code: String,
    control: String,
    _guards: [Cleanup; 4],
}

impl Planted {
    fn new(test: &str) -> Self {
        let base = unique_name(test);
        let code = format!("{base}-x_$(touch PWNED)");
        let control = format!("{base}-esc\x1b[31mred\nnl\x07");
        let backslash = format!("{base}-back\\slash");
        // Shows as another name: a right-to-left override reverses what follows it.
        let reversed = format!("{base}-rtl\u{202e}gnp.exe");
        let guards = [
            Cleanup::posix(code.clone()),
            Cleanup::posix(control.clone()),
            Cleanup::posix(backslash.clone()),
            Cleanup::posix(reversed.clone()),
        ];
        for name in [&code, &control, &backslash, &reversed] {
            std::fs::File::create(format!("/dev/shm{name}")).unwrap();
        }
        Self {
            base,
            code,
            control,
            _guards: guards,
        }
    }
}

/// A fresh empty directory (removed on drop) for a shell to run in: a planted name that ran
/// would leave `PWNED` in it.
struct Cwd(std::path::PathBuf);

impl Cwd {
    fn new(test: &str) -> Self {
        let dir = temp_path(test);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// What is in the directory besides `keep`.
    fn stray(&self, keep: &str) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != keep)
            .collect()
    }
}

impl Drop for Cwd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn bash_completion_offers_hostile_names_as_literals_and_never_runs_them() {
    let planted = Planted::new("complete-hostile");
    let cwd = Cwd::new("complete-hostile");
    let script = shm().args(["completions", "bash"]).output().unwrap().stdout;
    std::fs::write(cwd.0.join("shm.bash"), script).unwrap();
    let bin = shm_bin();
    // TAB after `shm info BASE`, then each offered word parsed as bash would parse it once it is
    // on the line (Enter): the word must be the exact name, and nothing may run on the way.
    let prog = format!(
        "source ./shm.bash; COMP_WORDS=({bin} info {base}); COMP_CWORD=2; \
         _shm_names {bin} {base} info; \
         for word in \"${{COMPREPLY[@]}}\"; do \
             printf 'offered %s\\0' \"$word\"; eval \"parsed=( $word )\"; \
             printf 'parsed %s\\0' \"${{parsed[@]}}\"; \
         done",
        bin = bin.display(),
        base = planted.base,
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &prog])
        .current_dir(&cwd.0)
        .output()
        .unwrap();
    let stray = cwd.stray("shm.bash");
    let text = String::from_utf8(out.stdout).unwrap();
    let words: Vec<&str> = text.split('\0').filter(|w| !w.is_empty()).collect();
    assert!(
        stray.is_empty(),
        "completing ran code from a segment name: {stray:?}"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        words,
        [
            format!("offered {}", shell_quoted(&planted.code)),
            format!("parsed {}", planted.code)
        ],
        "the hostile name must be offered once, quoted, and the names with control characters \
         ({:?}) or a backslash skipped",
        planted.control
    );
}

/// `name` as bash's `printf %q` quotes it (for the names of these tests: a backslash before
/// each character that the shell would act on).
fn shell_quoted(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if !(c.is_ascii_alphanumeric() || "/-_.,:@%+=".contains(c)) {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

#[test]
fn fish_completion_offers_hostile_names_as_literals_and_never_runs_them() {
    if std::process::Command::new("fish")
        .arg("--version")
        .output()
        .is_err()
    {
        shm_tests::skip(
            "fish_completion_offers_hostile_names_as_literals_and_never_runs_them",
            "fish is not installed",
        );
        return;
    }
    let planted = Planted::new("complete-fish");
    let cwd = Cwd::new("complete-fish");
    let script = shm().args(["completions", "fish"]).output().unwrap().stdout;
    std::fs::write(cwd.0.join("shm.fish"), script).unwrap();
    let path = format!(
        "{}:{}",
        shm_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("fish")
        .args([
            "--no-config",
            "-c",
            &format!("source ./shm.fish; complete -C 'shm info {}'", planted.base),
        ])
        .current_dir(&cwd.0)
        .env("PATH", path)
        .output()
        .unwrap();
    let stray = cwd.stray("shm.fish");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        stray.is_empty(),
        "completing ran code from a segment name: {stray:?}"
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offered: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        offered,
        [planted.code.as_str()],
        "the hostile name must be offered once as it is, and the names with control characters \
         ({:?}) or a backslash skipped",
        planted.control
    );
}
