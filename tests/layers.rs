//! The layers run one way. Every `crate::` path in `src/**/*.rs` (in `use` lines, groups and inline paths,
//! test code included) and every `super::` path that leaves its top-level module must name a module on a
//! lower level than the file's own: bottom to top `sys` → `api` → `network`, `volume`, `image` → `runtime`
//! → `pod` → `standalone`, `cluster` → `cli`, and inside `cluster` the helpers `lease`, `status` below
//! `controller`, `scheduler`. Modules on one level are siblings and never import each other. `src/lib.rs`
//! states the same order, and every module it declares has a level here.

#[path = "layers/parse.rs"]
mod parse;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use parse::{code_only, paths};

/// The top-level modules, bottom to top; the modules of one entry are siblings.
const LEVELS: &[&[&str]] = &[
    &["sys"],
    &["api"],
    &["network", "volume", "image"],
    &["runtime"],
    &["pod"],
    &["standalone", "cluster"],
    &["cli"],
];

/// The levels inside `cluster`, bottom to top.
const CLUSTER_LEVELS: &[&[&str]] = &[&["lease", "status"], &["controller", "scheduler"]];

fn level_in(levels: &[&[&str]], module: &str) -> Option<usize> {
    levels.iter().position(|l| l.contains(&module))
}

/// One import of a module by a file.
#[derive(Debug)]
struct Import {
    file: PathBuf,
    line: usize,
    /// The file's module path (`["cluster", "controller", "reconcile"]`).
    from: Vec<String>,
    /// The imported module: the first two segments of the path below the crate root.
    to: Vec<String>,
}

/// A broken rule, as the test reports it.
fn violation(import: &Import) -> Option<String> {
    let (me, them) = (import.from.first()?, import.to.first()?);
    let rule = if me != them {
        let (mine, theirs) = (level_in(LEVELS, me)?, level_in(LEVELS, them)?);
        (theirs >= mine).then(|| {
            let how = if theirs == mine {
                "a sibling on its own level"
            } else {
                "a module above it"
            };
            format!("`{me}` imports `{them}`, {how}")
        })?
    } else if me == "cluster" {
        let (mine, theirs) = (import.from.get(1)?, import.to.get(1)?);
        let (a, b) = (level_in(CLUSTER_LEVELS, mine)?, level_in(CLUSTER_LEVELS, theirs)?);
        (mine != theirs && b >= a)
            .then(|| format!("`cluster::{mine}` imports `cluster::{theirs}`, not below it"))?
    } else {
        return None;
    };
    Some(format!(
        "{}:{}: {rule} (`{}`); the order, bottom to top, is {} (and in `cluster`: {})",
        import.file.display(),
        import.line,
        import.to.join("::"),
        stated_order(LEVELS),
        stated_order(CLUSTER_LEVELS),
    ))
}

/// The order as `lib.rs` states it: `` `sys` → `api` → `network`, `volume`, `image` → ... ``.
fn stated_order(levels: &[&[&str]]) -> String {
    let named: Vec<String> = levels
        .iter()
        .map(|l| l.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))
        .collect();
    named.join(" → ")
}

/// The module path of a file below `src` (`cluster/controller/mod.rs` is `cluster::controller`).
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            parts.push(stem.to_string());
        }
    }
    parts
}

/// Every import of a module in one file: `crate::` paths, and `super::` paths resolved from the file.
fn imports(src: &Path, file: &Path, text: &str) -> Vec<Import> {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let from = module_of(relative);
    let code: Vec<char> = code_only(text).chars().collect();
    let mut found: Vec<Import> = Vec::new();
    for start in 0..code.len() {
        let boundary = start == 0
            || !(code[start - 1].is_alphanumeric() || code[start - 1] == '_' || code[start - 1] == ':');
        if !boundary {
            continue;
        }
        let rest = &code[start..];
        let (base, after) = if rest.starts_with(&"crate::".chars().collect::<Vec<_>>()) {
            (Vec::new(), start + 7)
        } else if rest.starts_with(&"super::".chars().collect::<Vec<_>>()) {
            let mut base = from.clone();
            let mut k = start;
            while code[k..].starts_with(&"super::".chars().collect::<Vec<_>>()) {
                base.pop();
                k += 7;
            }
            (base, k)
        } else {
            continue;
        };
        let line = 1 + code[..start].iter().filter(|c| **c == '\n').count();
        for path in paths(&code[after..]) {
            let mut to = [base.clone(), path].concat();
            to.truncate(2);
            let seen = found.iter().any(|f| f.line == line && f.to == to);
            if !seen && (to.len() == 2 || to.first().is_some_and(|m| level_in(LEVELS, m).is_some())) {
                found.push(Import {
                    file: file.to_path_buf(),
                    line,
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every broken rule in the tree below `src`.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        out.extend(imports(src, &file, &text).iter().filter_map(violation));
    }
    out
}

#[test]
fn modules_import_only_lower_layers() {
    let found = violations(&src());
    let mut report = String::new();
    for v in &found {
        let _ = writeln!(report, "{v}");
    }
    assert!(
        found.is_empty(),
        "{} imports against the layers:\n{report}",
        found.len()
    );
}

#[test]
fn lib_rs_states_the_order_and_places_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let header: String = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let order = stated_order(LEVELS);
    assert!(header.contains(&order), "src/lib.rs must state the order {order}");
    for line in lib.lines() {
        if let Some(module) = line.strip_prefix("pub mod ").and_then(|m| m.strip_suffix(';')) {
            assert!(
                level_in(LEVELS, module).is_some(),
                "src/lib.rs declares `{module}`, which has no level in tests/layers.rs"
            );
        }
    }
}

/// The checker itself: each way an import can break the order is caught and named.
#[test]
fn the_checker_catches_each_kind_of_violation() {
    let src = Path::new("/src");
    let cases = [
        (
            "api/validation/security.rs",
            "use crate::runtime::sysctl::{self, Namespace};",
            "`api` imports `runtime`, a module above it",
        ),
        (
            "volume/mod.rs",
            "use crate::{api::env::expand, runtime::spec::BindMount};",
            "`volume` imports `runtime`, a module above it",
        ),
        (
            "image/pull.rs",
            "let s = crate::network::cni::x();",
            "`image` imports `network`, a sibling on its own level",
        ),
        (
            "cluster/scheduler/mod.rs",
            "use crate::cluster::controller::lease;",
            "`cluster::scheduler` imports `cluster::controller`",
        ),
        (
            "cluster/controller/mod.rs",
            "use super::scheduler;",
            "`cluster::controller` imports `cluster::scheduler`",
        ),
        (
            "cluster/status.rs",
            "use super::controller::Agent;",
            "`cluster::status` imports `cluster::controller`",
        ),
        (
            "runtime/resources/tests.rs",
            "fn f() {\n    crate::pod::qos::pod_qos(&spec);\n}",
            "`runtime` imports `pod`, a module above it",
        ),
    ];
    for (file, text, want) in cases {
        let found: Vec<String> = imports(src, &src.join(file), text)
            .iter()
            .filter_map(violation)
            .collect();
        assert_eq!(found.len(), 1, "{file}: {text}: {found:?}");
        assert!(found[0].contains(want), "{found:?} should say {want}");
        assert!(
            found[0].starts_with(&format!("/src/{file}:")),
            "{found:?} names the file"
        );
    }
    let line = imports(src, &src.join("runtime/x.rs"), "\n\nfn f() { crate::pod::g() }");
    assert_eq!(
        line.iter()
            .filter_map(violation)
            .next()
            .map(|v| v.contains("x.rs:3:")),
        Some(true)
    );
}

/// Downward imports, `super::` inside a module, and paths in comments and strings pass.
#[test]
fn the_checker_passes_what_runs_downwards() {
    let src = Path::new("/src");
    let fine = [
        (
            "runtime/container.rs",
            "use crate::{api::sysctl, sys, volume::BindMount};",
        ),
        (
            "cluster/controller/mod.rs",
            "use crate::cluster::status::StatusUpdate;\nuse super::lease;",
        ),
        (
            "pod/act.rs",
            "// crate::cli::run is mentioned in a comment\nlet s = \"crate::cli::x\";",
        ),
        ("api/x.rs", "#[cfg(test)]\nmod tests {\n    use super::*;\n}"),
        (
            "cli/run.rs",
            "use crate::{cluster::controller, standalone, pod::worker::Context};",
        ),
    ];
    for (file, text) in fine {
        let found: Vec<String> = imports(src, &src.join(file), text)
            .iter()
            .filter_map(violation)
            .collect();
        assert!(found.is_empty(), "{file}: {text}: {found:?}");
    }
}
