//! Modules import downward only: in the crates listed here, no module reaches (through
//! `crate::...`, directly or through the crate root's re-exports) a module that reaches it back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The crates whose modules are held to it.
const CRATES: &[&str] = &["shm-core", "shm-posix", "shm-sysv"];

/// The top-level modules of a crate: `src/NAME.rs` and `src/NAME/`, but the root.
fn modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let stem = path.file_stem()?.to_str()?.to_owned();
            (stem != "lib" && stem != "main").then_some(stem)
        })
        .collect()
}

/// What the crate root re-exports, by the module it comes from: `pub use module::{A, B};`.
fn reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for item in lib.split(';') {
        let Some(rest) = item.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.trim();
            if !name.is_empty() {
                out.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    out
}

/// The first identifier of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The modules that `text` (a file of module `from`) reaches through `crate::`.
fn reached(
    text: &str,
    modules: &BTreeSet<String>,
    roots: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (at, _) in line.match_indices("crate::") {
            if line[..at].ends_with('$') {
                continue; // `$crate::` in a macro: the caller's view of the crate
            }
            let rest = &line[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(list) => list.split('}').next().unwrap_or("").split(',').collect(),
                None => vec![rest],
            };
            for name in names {
                let name = ident(name.trim());
                if modules.contains(name) {
                    out.push(name.to_owned());
                } else if let Some(m) = roots.get(name) {
                    out.push(m.clone());
                }
            }
        }
    }
    out
}

/// Every file under `dir`.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The crate's import graph: module -> the modules it reaches.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules(src);
    let roots = reexports(
        &std::fs::read_to_string(src.join("lib.rs")).unwrap(),
        &modules,
    );
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut all = Vec::new();
    files(src, &mut all);
    for path in all {
        let rel = path.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let from = first.trim_end_matches(".rs").to_owned();
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for to in reached(&text, &modules, &roots) {
            if to != from {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// The pairs of modules that reach each other, directly or not.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<(String, String)> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_owned()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let mut out = Vec::new();
    for a in graph.keys() {
        for b in reach(a) {
            if a < &b && reach(&b).contains(a) {
                out.push((a.clone(), b));
            }
        }
    }
    out
}

#[test]
fn modules_import_downward_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in CRATES {
        let src = root.join(krate).join("src");
        let graph = graph(&src);
        assert!(
            modules(&src).len() < 2 || !graph.is_empty(),
            "{krate}: no imports found between its modules, the scan is broken"
        );
        for (a, b) in circles(&graph) {
            found.push(format!("{krate}: {a} <-> {b}"));
        }
    }
    assert!(
        found.is_empty(),
        "modules that import each other: {found:?}"
    );
}

#[test]
fn a_circle_is_found() {
    let modules: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let roots = reexports("pub use c::{C, D};", &modules);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, text) in [
        ("a", "use crate::b::X;\n// crate::c in a comment"),
        ("b", "use crate::{Y, C};"),
        ("c", "fn f() { crate::a::g() }"),
    ] {
        graph
            .entry(from.to_owned())
            .or_default()
            .extend(reached(text, &modules, &roots));
    }
    assert_eq!(graph["b"], ["c".to_owned()].into());
    assert_eq!(circles(&graph).len(), 3, "{graph:?}");
}
