//! A test that the modules of a crate import downward only (every crate of the workspace): no
//! module uses one that uses it, directly or around a circle. A parent declares its children (`mod x;`), so a child that
//! reaches back into its parent (`super::Item`, `crate::Item` of the root) closes a circle too;
//! what several modules share lives in a module below all of them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The module path of a source file: `main.rs` or `lib.rs` is the root (""), `a.rs` and
/// `a/mod.rs` are `a`, `a/b.rs` is `a::b`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.len() > 1 && parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["main"] || parts == ["lib"] {
        String::new()
    } else {
        parts.join("::")
    }
}

/// The code of a file that is compiled outside tests: string literals emptied, comments
/// dropped, and everything from its inline test module on (`#[cfg(test)] mod tests {`, at the
/// end of each file).
fn code(text: &str) -> String {
    let text = without_strings(text);
    let mut end = text.len();
    for (at, _) in text.match_indices("#[cfg(test)]") {
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        let inline = rest.strip_prefix("mod ").is_some_and(|r| {
            let brace = r.find('{').unwrap_or(usize::MAX);
            brace < r.find(';').unwrap_or(usize::MAX)
        });
        if inline {
            end = at;
            break;
        }
    }
    text[..end]
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with the contents of its string literals (plain and raw) left out.
fn without_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('"') {
        let hashes = rest[..at].chars().rev().take_while(|&c| c == '#').count();
        let raw = rest[..at - hashes].ends_with('r');
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let close = if raw {
            let end = format!("\"{}", "#".repeat(hashes));
            rest.find(&end)
        } else {
            let mut escaped = false;
            rest.char_indices()
                .find(|&(_, c)| {
                    let stop = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    stop
                })
                .map(|(i, _)| i)
        };
        // Inside a string up to its close; newlines kept, so that lines stay lines.
        let Some(close) = close else { break };
        out.extend(rest[..close].chars().filter(|&c| c == '\n'));
        out.push('"');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The identifiers in a path after `prefix::` as written at `at` in `code`: `a::b::c` gives
/// [a, b, c]; a group `{x, y::z}` gives the first word of each member, as separate paths.
fn paths_after(code: &str, at: usize) -> Vec<Vec<String>> {
    let rest = &code[at..];
    if let Some(group) = rest.strip_prefix('{') {
        let inner = &group[..group.find('}').unwrap_or(group.len())];
        return inner
            .split(',')
            .map(|member| {
                member
                    .trim()
                    .split("::")
                    .map(|w| w.trim().to_owned())
                    .take_while(|w| !w.is_empty() && !w.starts_with('{'))
                    .collect()
            })
            .collect();
    }
    let path: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    vec![
        path.split("::")
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect(),
    ]
}

/// The longest module that `path` (relative to module `base`) names: `base` itself when its
/// first word is an item, not a module.
fn target(modules: &BTreeSet<String>, base: &str, path: &[String]) -> String {
    let mut found = base.to_owned();
    let mut current = base.to_owned();
    for word in path {
        current = if current.is_empty() {
            word.clone()
        } else {
            format!("{current}::{word}")
        };
        if !modules.contains(&current) {
            break;
        }
        found = current.clone();
    }
    found
}

/// The parent module of `m` ("" for a top-level module).
fn parent(m: &str) -> String {
    m.rsplit_once("::")
        .map_or(String::new(), |(p, _)| p.to_owned())
}

/// The root's imports of items (`use backend::Global;`, `pub use error::{Error, Result};`):
/// `crate::Global` in a module is the item of `backend`, and depends on `backend`, not on the
/// root. Each imported name with the path it stands for.
fn root_imports(root_code: &str) -> BTreeMap<String, Vec<String>> {
    let mut imports = BTreeMap::new();
    for (at, _) in root_code.match_indices("use ") {
        let line_start = root_code[..at].rfind('\n').map_or(0, |n| n + 1);
        let lead = root_code[line_start..at].trim();
        if !(lead.is_empty() || lead == "pub" || lead.starts_with("pub(")) {
            continue;
        }
        let body = &root_code[at + "use ".len()..];
        let Some(end) = body.find(';') else { continue };
        let statement = body[..end].split_whitespace().collect::<Vec<_>>().join(" ");
        let (prefix, members) = match statement.split_once('{') {
            Some((prefix, group)) => (prefix.trim(), group.trim_end_matches('}')),
            None => ("", statement.as_str()),
        };
        for member in members.split(',').map(str::trim) {
            if member.is_empty() || member.contains('{') {
                continue;
            }
            let (path, alias) = match member.split_once(" as ") {
                Some((path, alias)) => (path.trim(), Some(alias.trim())),
                None => (member, None),
            };
            let words: Vec<String> = format!("{prefix}{path}")
                .trim_start_matches("crate::")
                .trim_start_matches("self::")
                .split("::")
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect();
            let name = alias.map(str::to_owned).or_else(|| words.last().cloned());
            if let Some(name) = name.filter(|_| words.len() > 1) {
                imports.insert(name, words);
            }
        }
    }
    imports
}

/// Which modules each module uses: its children (it declares them), and every module that a
/// `crate::`, `super::` or child path in its code names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let root = ["main.rs", "lib.rs"]
        .iter()
        .find_map(|f| std::fs::read_to_string(src.join(f)).ok())
        .unwrap_or_default();
    let root = code(&root);
    let imports = root_imports(&root);
    let mut uses: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let me = module_of(src, file);
        let code = code(&std::fs::read_to_string(file).expect("read source"));
        let edges = uses.entry(me.clone()).or_default();
        for m in &modules {
            if !m.is_empty() && parent(m) == me {
                edges.insert(m.clone());
            }
        }
        for (prefix, base) in [("crate::", String::new()), ("super::", parent(&me))] {
            for (at, _) in code.match_indices(prefix) {
                let before = code[..at].chars().last();
                // `$crate::` in a macro is the caller's path to the macro's crate, not an import.
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
                    continue;
                }
                for mut path in paths_after(&code, at + prefix.len()) {
                    if base.is_empty() {
                        if let Some(item) = path.first().and_then(|w| imports.get(w)) {
                            path.splice(..1, item.iter().cloned());
                        }
                    }
                    let to = target(&modules, &base, &path);
                    if to != me {
                        edges.insert(to);
                    }
                }
            }
        }
    }
    uses
}

/// A circle through `from`, as the list of modules on it, if there is one.
fn circle(uses: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![from.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().cloned().unwrap_or_default();
        for next in uses.get(&last).into_iter().flatten() {
            if next == from {
                let mut c = path.clone();
                c.push(next.clone());
                return Some(c);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push(p);
            }
        }
    }
    None
}

fn shown(m: &str) -> &str {
    if m.is_empty() { "main" } else { m }
}

/// Every circle among the modules under `src`, each as `a -> b -> a`.
fn circles(src: &Path) -> Vec<String> {
    let uses = graph(src);
    uses.keys()
        .filter_map(|m| circle(&uses, m))
        .map(|c| c.iter().map(|m| shown(m)).collect::<Vec<_>>().join(" -> "))
        .collect()
}

/// Every member crate of the workspace (its `Cargo.toml`'s `members = [...]`).
fn members(workspace: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace.join("Cargo.toml")).expect("Cargo.toml");
    let at = manifest.find("members").expect("a members list");
    let list = &manifest[at..];
    let list = &list[list.find('[').expect("[") + 1..list.find(']').expect("]")];
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn checked_crates_import_downward_only() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    let members = members(&workspace);
    assert!(members.len() >= 7, "the workspace's members: {members:?}");
    for name in &members {
        let src = workspace.join(name).join("src");
        let uses = graph(&src);
        assert!(
            uses.contains_key(""),
            "{name}: no main.rs or lib.rs under {}",
            src.display()
        );
        found.extend(circles(&src).into_iter().map(|c| format!("{name}: {c}")));
    }
    assert!(
        found.is_empty(),
        "modules in a circle:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_a_circle() {
    // Two modules that name each other, and a child that reaches into its parent.
    let dir = std::env::temp_dir().join(format!("shm-layering-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::create_dir_all(src.join("e")).expect("mkdir");
    let files = [
        (
            "main.rs",
            "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\nuse b::Item;\nstruct Root;\n",
        ),
        ("a.rs", "mod kid;\nuse crate::b::thing;\n"),
        ("a/kid.rs", "use super::{Shared, other};\n"),
        ("b.rs", "pub fn thing() { crate::a::go() }\n"),
        (
            "c.rs",
            "// crate::a in a comment\nconst S: &str = \"crate::a\";\nuse crate::{b, Item};\n",
        ),
        ("d.rs", "use crate::Root;\n"),
        (
            "e/mod.rs",
            "mod kid;\nmacro_rules! m { () => { $crate::Root } }\n",
        ),
        ("e/kid.rs", "use super::Thing;\n"),
    ];
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("write");
    }
    let uses = graph(&src);
    let _ = std::fs::remove_dir_all(&dir);
    let lib_imports = root_imports("pub use error::{Error, Result as R};\nuse a::b::C;\n");
    assert_eq!(lib_imports["Error"], ["error", "Error"]);
    assert_eq!(lib_imports["R"], ["error", "Result"]);
    assert_eq!(lib_imports["C"], ["a", "b", "C"]);
    let found = |m: &str| {
        circle(&uses, m).map(|c| c.iter().map(|m| shown(m)).collect::<Vec<_>>().join(" -> "))
    };
    assert_eq!(found("b").as_deref(), Some("b -> a -> b"));
    assert_eq!(found("a::kid").as_deref(), Some("a::kid -> a -> a::kid"));
    assert_eq!(
        found("c"),
        None,
        "an item the root imports is its module's: {uses:?}"
    );
    assert_eq!(found("d").as_deref(), Some("d -> main -> d"), "{uses:?}");
    // `e/mod.rs` is the module `e`, so its child reaching back is a circle; `$crate::` in a
    // macro is not an import.
    assert_eq!(
        found("e::kid").as_deref(),
        Some("e::kid -> e -> e::kid"),
        "{uses:?}"
    );
    assert!(!uses["e"].contains(""), "{uses:?}");
    assert_eq!(
        without_strings("a(\"x::y\\\" z\"); r#\"q\"w\"#; \"\""),
        "a(\"\"); r#\"\"#; \"\""
    );
}
