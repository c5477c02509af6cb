//! What `shm` says about itself: `--version`, every subcommand's examples (and that the
//! management examples run as written), shell completions that the shells accept, and a man
//! page that groff renders without a warning.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use shm_tests::{Cleanup, shm, shm_bin, skip, temp_path, unique_name};

/// `shm ARGS`, which must succeed; its stdout.
fn ok(args: &[&str]) -> String {
    let out = shm().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "shm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands that `shm --help` lists, without `help`.
fn subcommands() -> Vec<String> {
    let help = ok(&["--help"]);
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect();
    for expected in ["taller", "create", "list", "compare", "completions", "man"] {
        assert!(
            list.iter().any(|n| n == expected),
            "{expected} missing from {list:?}"
        );
    }
    list
}

/// Whether `program` can be started.
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a shell command line, which must succeed.
fn sh(shell: &str, args: &[&str]) -> Output {
    let out = Command::new(shell).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{shell} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The command lines of the `Examples:` block of a help text (`shm ...`, without the comment
/// that follows two or more spaces).
fn examples(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .filter_map(|l| l.strip_prefix("  shm "))
        .map(|l| format!("shm {}", l.split("  ").next().unwrap().trim_end()))
        .collect()
}

#[test]
fn version_names_the_package_version() {
    let version = ok(&["--version"]);
    assert_eq!(version.trim(), format!("shm {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn every_subcommand_help_has_examples() {
    for sub in subcommands() {
        for flag in ["--help", "-h"] {
            let help = ok(&[sub.as_str(), flag]);
            let found = examples(&help);
            assert!(
                found.iter().any(|e| e.contains(sub.as_str())),
                "`shm {sub} {flag}` shows no example of itself:\n{help}"
            );
        }
    }
}

#[test]
fn examples_of_the_segment_commands_run_as_written() {
    // create, then read (which writes scratch.bin), write (which reads it back), info, list;
    // the System V variants name other segments and are left out.
    let name = unique_name("docs-examples");
    let _guard = Cleanup::posix(name.clone());
    let dir = temp_path("docs-examples");
    std::fs::create_dir_all(&dir).unwrap();
    let path = format!(
        "{}:{}",
        shm_bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = Vec::new();
    for sub in ["create", "read", "write", "info", "list"] {
        for example in examples(&ok(&[sub, "--help"])) {
            if example.contains("sysv") {
                continue;
            }
            let line = example.replace("/scratch", &name);
            let out = Command::new("sh")
                .args(["-c", &line])
                .current_dir(&dir)
                .env("PATH", &path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "`{line}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ran.push(example);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
    ok(&["rm", &name]);
    assert!(ran.len() >= 10, "too few examples ran: {ran:?}");
    assert!(ran.iter().any(|e| e.contains("> scratch.bin")), "{ran:?}");
    assert!(ran.iter().any(|e| e.contains("< scratch.bin")), "{ran:?}");
}

#[test]
fn bash_accepts_the_completion_script_and_completes_with_it() {
    let script = ok(&["completions", "bash"]);
    let dir = temp_path("bash-completion");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shm.bash");
    std::fs::write(&file, &script).unwrap();
    let file = file.to_str().unwrap();
    sh("bash", &["-n", file]);
    // Complete `shm ta` and `shm --backend ` as bash would on TAB.
    let complete = |words: &str, cword: usize| -> String {
        let prog = format!(
            "source {file}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _shm shm \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[*]}}\""
        );
        String::from_utf8(sh("bash", &["-c", &prog]).stdout).unwrap()
    };
    let taller = complete("shm ta", 1);
    let backends = complete("shm --backend ''", 2);
    let registered =
        String::from_utf8(sh("bash", &["-c", &format!("source {file}; complete -p shm")]).stdout)
            .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(taller.trim(), "taller");
    assert_eq!(backends.trim(), "posix sysv");
    assert!(registered.contains("-F _shm"), "{registered}");
}

#[test]
fn zsh_and_fish_get_completion_scripts() {
    let zsh = ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef shm"), "{zsh}");
    assert!(zsh.contains("completions") && zsh.contains("taller"));
    let fish = ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c shm"), "{fish}");
    assert!(fish.contains("taller"));
    let dir = temp_path("completions");
    std::fs::create_dir_all(&dir).unwrap();
    for (shell, script, check) in [("zsh", &zsh, "-n"), ("fish", &fish, "--no-execute")] {
        if !have(shell) {
            skip(
                "zsh_and_fish_get_completion_scripts",
                &format!("{shell} is not installed: its script was not parsed"),
            );
            continue;
        }
        let file = dir.join(shell);
        std::fs::write(&file, script).unwrap();
        sh(shell, &[check, file.to_str().unwrap()]);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn man_page_is_roff_with_every_subcommand_and_examples() {
    let page = ok(&["man"]);
    // Past the two lines of apostrophe handling that every clap_mangen page starts with.
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap();
    assert!(first.starts_with(".TH shm 1"), "{first}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH SUBCOMMANDS",
        ".SH EXAMPLES",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    for sub in subcommands() {
        assert!(page.contains(&format!("shm\\-{sub}(1)")), "{sub} missing");
    }
    groff_has_no_warnings(&page);
}

#[test]
fn man_dir_writes_one_page_per_command() {
    let dir = temp_path("man-pages");
    ok(&["man", "--dir", dir.to_str().unwrap()]);
    // Every command's page; the nested ones (taller server, client, demo) carry no examples.
    let mut pages = vec!["shm".to_owned()];
    pages.extend(subcommands().iter().map(|s| format!("shm-{s}")));
    pages.push("shm-taller-demo".to_owned());
    let read = |p: &str| std::fs::read_to_string(Path::new(&dir).join(format!("{p}.1")));
    let texts: Vec<(String, std::io::Result<String>)> =
        pages.iter().map(|p| (p.clone(), read(p))).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    for (p, text) in texts {
        let text = text.unwrap_or_else(|e| panic!("{p}.1: {e}"));
        assert!(text.contains(&format!(".TH {p} 1")), "{p}.1:\n{text}");
        assert!(
            text.contains(".SH EXAMPLES") || p == "shm-taller-demo",
            "{p}.1 has no examples"
        );
    }
}

/// groff renders the page with every warning on and prints none.
fn groff_has_no_warnings(page: &str) {
    if !have("groff") {
        skip(
            "man_page_is_roff_with_every_subcommand_and_examples",
            "groff is not installed: the page was not rendered",
        );
        return;
    }
    let dir = temp_path("man-render");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shm.1");
    std::fs::write(&file, page).unwrap();
    let out = sh(
        "groff",
        &["-man", "-Tutf8", "-ww", "-z", file.to_str().unwrap()],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.stderr.is_empty(),
        "groff warns: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
