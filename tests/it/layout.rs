//! The shape of the code, checked: imports point down the layers (runtime, config, passwd and
//! log at the bottom; then exec, discovery and env; then the engine; then the front ends), and
//! only front ends touch what belongs to the process (its stdio, signal handlers, the host
//! terminal, `exec`). Read from the sources as text, which is what a reviewer would grep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `crate::` modules each top-level module may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("log", &[]),
    ("passwd", &[]),
    ("config", &[]),
    ("runtime", &["log", "passwd"]),
    ("exec", &["runtime", "log"]),
    ("discovery", &["runtime", "config"]),
    ("env", &["runtime", "config", "passwd", "log"]),
    (
        "engine",
        &[
            "exec",
            "discovery",
            "env",
            "runtime",
            "config",
            "passwd",
            "log",
        ],
    ),
    (
        "agent",
        &[
            "engine",
            "exec",
            "discovery",
            "env",
            "runtime",
            "config",
            "passwd",
            "log",
        ],
    ),
    (
        "mcp",
        &[
            "agent",
            "engine",
            "exec",
            "discovery",
            "env",
            "runtime",
            "config",
            "passwd",
            "log",
        ],
    ),
    (
        "cli",
        &[
            "mcp",
            "agent",
            "engine",
            "exec",
            "discovery",
            "env",
            "runtime",
            "config",
            "passwd",
            "log",
        ],
    ),
];

/// Folders (under `src/`) and files that are front ends.
const FRONT_ENDS: &[&str] = &["cli", "agent", "mcp", "main.rs"];

/// What only a front end may do, as it reads in the source.
const PROCESS_BOUND: &[&str] = &[
    "stdin()",
    "stdout()",
    "stderr()",
    "print!(",
    "println!(",
    "eprint!(",
    "eprintln!(",
    "tokio::signal",
    "sigaction",
    "tcsetattr",
    "tcgetattr",
    "tcgetwinsize",
    "is_terminal",
    ".exec()",
];

/// Process-bound calls that act on a forked child before it execs, not on dcx's own process:
/// (file under `src/`, pattern, why).
const CHILD_SIDE: &[(&str, &str, &str)] = &[(
    "runtime/crun/direct.rs",
    "sigaction",
    "the exec'd process's signals reset to their default actions in the forked child, as \
     crun's `unblock_signals` does; dcx's own handlers are the CLI's",
)];

fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every source file, by its top-level module (`src/exec/mod.rs` → `exec`), with the text.
fn modules() -> BTreeMap<PathBuf, (String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&src).unwrap().to_path_buf();
            let first = relative.components().next().unwrap();
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            (relative, (module, text))
        })
        .collect()
}

/// How a file at `path` (under `src/`) names the crate root with `super::`: `src/a.rs` and
/// `src/a/mod.rs` with one, `src/a/b.rs` and `src/a/b/mod.rs` with two, and so on.
fn root_via_super(path: &Path) -> String {
    let mut depth = path.components().count();
    if path.file_name().is_some_and(|name| name == "mod.rs") {
        depth -= 1;
    }
    "super::".repeat(depth)
}

/// The top-level modules a source names through `crate::` (or as many `super::` as reach the
/// crate root), in `use` lines and paths.
fn crate_uses(text: &str, root: &str) -> Vec<String> {
    let mut used = Vec::new();
    for prefix in ["crate::", root] {
        used.extend(uses_after(text, prefix));
    }
    used
}

fn uses_after(text: &str, prefix: &str) -> Vec<String> {
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        // `super::super::x` is not `super::x` one level up.
        let before = &rest[..at];
        rest = &rest[at + prefix.len()..];
        if before.ends_with("super::") || rest.starts_with("super::") {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '{')
            .collect();
        if name.starts_with('{') {
            // `crate::{a, b::c}`
            let end = rest.find('}').unwrap_or(rest.len());
            for part in rest[1..end].split(',') {
                let part = part.trim();
                let head = part.split("::").next().unwrap_or_default().trim();
                if !head.is_empty() {
                    used.push(head.to_owned());
                }
            }
        } else if !name.is_empty() {
            used.push(name);
        }
    }
    used
}

#[test]
fn imports_point_down_the_layers() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (path, (module, text)) in modules() {
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(may_use) = allowed.get(module.as_str()) else {
            wrong.push(format!("{}: module {module} has no layer", path.display()));
            continue;
        };
        for used in crate_uses(&text, &root_via_super(&path)) {
            if used != module && !may_use.contains(&used.as_str()) {
                wrong.push(format!("{}: {module} uses crate::{used}", path.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_front_ends_touch_the_process() {
    let mut wrong = Vec::new();
    for (path, (_, text)) in modules() {
        let first = path
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        if FRONT_ENDS.contains(&first.as_ref()) {
            continue;
        }
        for (number, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let code = line;
            for pattern in PROCESS_BOUND {
                let child_side = CHILD_SIDE
                    .iter()
                    .any(|(file, allowed, _)| path == Path::new(file) && pattern == allowed);
                if code.contains(pattern) && !child_side {
                    wrong.push(format!(
                        "{}:{}: {}",
                        path.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "process-bound code outside the front ends:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(
        crate_uses(
            "use crate::runtime::X;\nuse crate::{log::Log, env};\nx(crate::cli::run)",
            "super::"
        ),
        ["runtime", "log", "env", "cli"]
    );
    // From src/exec/mod.rs, `super::` is the crate; from src/exec/stdin.rs, `super::super::`.
    assert_eq!(root_via_super(Path::new("exec/mod.rs")), "super::");
    assert_eq!(root_via_super(Path::new("exec/stdin.rs")), "super::super::");
    assert_eq!(root_via_super(Path::new("log.rs")), "super::");
    assert_eq!(crate_uses("use super::cli::run;", "super::"), ["cli"]);
    assert_eq!(
        crate_uses(
            "use super::Input; use super::super::engine::X;",
            "super::super::"
        ),
        ["engine"]
    );
}

/// The sibling files a source file of `src/DIR/` names, through `super::NAME` or
/// `crate::DIR::NAME` (doc comments, `mod.rs` and tests aside).
fn sibling_uses(dir: &str, text: &str, siblings: &[String]) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut used: Vec<String> = siblings
        .iter()
        .filter(|name| {
            [format!("super::{name}"), format!("crate::{dir}::{name}")]
                .iter()
                .any(|path| {
                    code.match_indices(path.as_str()).any(|(at, _)| {
                        !code[at + path.len()..]
                            .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                })
        })
        .cloned()
        .collect();
    used.sort();
    used
}

#[test]
fn the_files_of_a_front_end_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for dir in ["agent", "mcp", "cli"] {
        let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let files: Vec<PathBuf> = std::fs::read_dir(src.join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "rs") || path.join("mod.rs").exists()
            })
            .collect();
        let name = |path: &Path| path.file_stem().unwrap().to_string_lossy().into_owned();
        let siblings: Vec<String> = files
            .iter()
            .map(|path| name(path))
            .filter(|name| name != "mod" && name != "tests")
            .collect();
        for path in &files {
            let own = name(path);
            if !siblings.contains(&own) {
                continue;
            }
            let mut texts = Vec::new();
            if path.is_dir() {
                let mut inner = Vec::new();
                sources(path, &mut inner);
                texts.extend(
                    inner
                        .iter()
                        .map(|file| std::fs::read_to_string(file).unwrap()),
                );
            } else {
                texts.push(std::fs::read_to_string(path).unwrap());
            }
            // Inside a folder module, its own files reach siblings through one more `super::`.
            let uses = texts
                .iter()
                .flat_map(|text| {
                    let text = text.replace("super::super::", "super::");
                    sibling_uses(dir, &text, &siblings)
                })
                .filter(|used| *used != own)
                .collect();
            edges.insert(own, uses);
        }
        // A depth-first walk: a file met again on its own path is a circle.
        fn walk(
            node: &str,
            edges: &BTreeMap<String, Vec<String>>,
            path: &mut Vec<String>,
            done: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            if let Some(at) = path.iter().position(|seen| seen == node) {
                let mut circle = path[at..].to_vec();
                circle.push(node.to_owned());
                return Some(circle);
            }
            if done.iter().any(|seen| seen == node) {
                return None;
            }
            path.push(node.to_owned());
            for next in edges.get(node).into_iter().flatten() {
                if let Some(circle) = walk(next, edges, path, done) {
                    return Some(circle);
                }
            }
            path.pop();
            done.push(node.to_owned());
            None
        }
        let mut done = Vec::new();
        for node in edges.keys() {
            let circle = walk(node, &edges, &mut Vec::new(), &mut done);
            assert!(
                circle.is_none(),
                "src/{dir}: a circle of imports: {circle:?} ({edges:?})"
            );
        }
        // The check sees what it looks for: the agent's methods use its service.
        if dir == "agent" {
            assert!(
                edges["methods"].contains(&"service".to_owned()),
                "{edges:?}"
            );
        }
    }
}
