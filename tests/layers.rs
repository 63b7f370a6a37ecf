//! Layers point one way (ARCHITECTURE.md): a file of `src/` may use its own top-level module and
//! the modules of the layers BELOW its own, never one above. The check reads every `src/**/*.rs`,
//! finds each `crate::x` path (also inside `use crate::{x, y::z}` groups and `super::super::x`
//! reaching the crate root) and each `tera::` path (tera belongs to the template layer), and
//! fails naming the file and line of each path that points up.
use std::path::{Path, PathBuf};

/// Bottom first. The same order as ARCHITECTURE.md, "Layers". `tera` is the template engine:
/// only the template layer and the layers above it may name it.
const LAYERS: &[&[&str]] = &[
    &[
        "error", "yaml", "vault", "text", "diff", "boolean", "envfile", "entropy",
    ],
    &["connection", "pki", "report"],
    &["postgres", "os"],
    &["template_filters", "jinja", "template", "tera"],
    &["vars"],
    &["inventory"],
    &["modules"],
    &["playbook"],
    &["engine"],
    &["cli", "main", "lib"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file belongs to, and its module path (`src/modules/files/copy.rs` is
/// in `modules`, path `[modules, files, copy]`; a `mod.rs` is its directory's module).
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    parts
}

/// The source without comments and string literals (so prose naming `crate::modules` is not
/// an import). Line structure is kept for line numbers.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                if b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 2;
        } else if let Some((body, hashes)) = raw_string_at(b, i) {
            let close = format!("\"{}", "#".repeat(hashes));
            let end = src[body..]
                .find(&close)
                .map_or(b.len(), |p| body + p + close.len());
            out.extend(src[i..end].chars().filter(|&c| c == '\n'));
            out.push_str("\"\"");
            i = end;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('"', '\''): skip it whole.
            let from = if b[i + 1] == b'\\' { i + 3 } else { i + 2 };
            i = b[from..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| from + p + 1);
            out.push_str("' '");
        } else {
            let ch = src[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// At `r"`, `r#"`, `br##"`...: where the body starts and how many `#` close it.
fn raw_string_at(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    if b[i] != b'r'
        || (prev_ident && !(b[i - 1] == b'b' && (i < 2 || !b[i - 2].is_ascii_alphanumeric())))
    {
        return None;
    }
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    (b.get(i + 1 + hashes) == Some(&b'"')).then_some((i + 2 + hashes, hashes))
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths that start at `rest` (just after `crate::` or the `super::`s): `a::b::X` gives
/// `[a, b, X]`; a group `a::{b::X, c}` gives `[a, b]` and `[a, c]` (each member's first name).
fn paths_at(rest: &str) -> Vec<Vec<String>> {
    let mut head = Vec::new();
    let mut rest = rest.trim_start();
    loop {
        let id = ident_at(rest);
        if id.is_empty() {
            break;
        }
        head.push(id.to_string());
        match rest[id.len()..].strip_prefix("::") {
            Some(r) => rest = r.trim_start(),
            None => return vec![head],
        }
    }
    let Some(group) = rest.strip_prefix('{') else {
        return vec![head];
    };
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (k, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && (c.is_alphanumeric() || c == '_') => {
                let mut p = head.clone();
                p.push(ident_at(&group[k..]).to_string());
                out.push(p);
                start = false;
            }
            _ => {}
        }
    }
    out
}

/// A path of the crate a file names, made absolute.
struct Named {
    line: usize,
    path: Vec<String>,
    /// Inside an inline `mod tests`.
    in_tests: bool,
}

/// Every path of the crate a file names, made absolute (`super::` resolved against the file's
/// module and its inline modules), with its line; `tera::` paths as `[tera]`.
fn crate_paths(rel: &Path, src: &str) -> Vec<Named> {
    let path = module_path(rel);
    let code = code_only(src);
    let mut out = Vec::new();
    // Inline modules (`mod tests {`): each adds one step for `super::` to climb.
    let mut depth = 0usize;
    let mut inline: Vec<(usize, String)> = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let t = line.trim_start();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        if let Some(name) = t.strip_prefix("mod ") {
            if t.trim_end().ends_with('{') {
                inline.push((depth, ident_at(name).to_string()));
            }
        }
        let in_tests = inline.iter().any(|(_, m)| m == "tests");
        let mut here = path.clone();
        here.extend(inline.iter().map(|(_, m)| m.clone()));
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if inline.last().map(|(d, _)| *d) == Some(depth) {
                        inline.pop();
                    }
                }
                _ => {}
            }
        }
        let starts_path = |k: usize| {
            !line[..k]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
        };
        for (k, _) in line.match_indices("crate::") {
            if starts_path(k) {
                for p in paths_at(&line[k + "crate::".len()..]) {
                    out.push(Named {
                        line: n + 1,
                        path: p,
                        in_tests,
                    });
                }
            }
        }
        for (k, _) in line.match_indices("super::") {
            if !starts_path(k) {
                continue; // counted from its first `super::`
            }
            let mut rest = &line[k..];
            let mut ups = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            // `super` from module `here` is its parent: `here` minus `ups` names.
            let base = &here[..here.len().saturating_sub(ups)];
            for p in paths_at(rest) {
                let mut abs = base.to_vec();
                abs.extend(p);
                out.push(Named {
                    line: n + 1,
                    path: abs,
                    in_tests,
                });
            }
        }
        for (k, _) in line.match_indices("tera::") {
            if starts_path(k) {
                out.push(Named {
                    line: n + 1,
                    path: vec!["tera".to_string()],
                    in_tests,
                });
            }
        }
    }
    out
}

/// Every up-pointing path in one file: `file:line: own -> named`.
fn up_paths(rel: &Path, src: &str) -> Vec<String> {
    let path = module_path(rel);
    let Some(own) = path.first().cloned() else {
        return Vec::new();
    };
    let own_layer = layer_of(&own);
    let mut out = Vec::new();
    for Named { line, path: p, .. } in crate_paths(rel, src) {
        let Some(m) = p.first() else { continue };
        if *m == own || m == "self" {
            continue;
        }
        let bad = match (own_layer, layer_of(m)) {
            (Some(o), Some(t)) => t > o,
            // A top-level module missing from LAYERS: place it first.
            (None, _) => true,
            (_, None) => m.chars().next().is_some_and(char::is_lowercase),
        };
        if bad {
            out.push(format!("{}:{line}: {own} -> {m}", rel.display()));
        }
    }
    out
}

/// The files of the same directory a file uses (`super::x` and `crate::dir::x` from
/// `src/dir/y.rs`), by name; its tests may use any (`ssh_script.rs` checks itself against
/// `local.rs`).
fn siblings_used(rel: &Path, src: &str) -> std::collections::BTreeSet<String> {
    let path = module_path(rel);
    let Some((me, dir)) = path.split_last() else {
        return Default::default();
    };
    crate_paths(rel, src)
        .into_iter()
        .filter(|n| !n.in_tests && n.path.len() > dir.len() && n.path[..dir.len()] == *dir)
        .map(|n| n.path[dir.len()].clone())
        .filter(|s| s != me)
        .collect()
}

/// Pairs of files of one directory that use each other: `a.rs <-> b.rs`.
fn sibling_cycles(files: &[(PathBuf, String)]) -> Vec<String> {
    let uses: Vec<(Vec<String>, std::collections::BTreeSet<String>)> = files
        .iter()
        .filter(|(rel, _)| rel.file_name().is_some_and(|n| n != "mod.rs"))
        .map(|(rel, src)| (module_path(rel), siblings_used(rel, src)))
        .collect();
    let mut out = Vec::new();
    for (a, ua) in &uses {
        for (b, ub) in &uses {
            let (Some((na, da)), Some((nb, db))) = (a.split_last(), b.split_last()) else {
                continue;
            };
            if da == db && na < nb && ua.contains(nb) && ub.contains(na) {
                out.push(format!("{}: {na}.rs <-> {nb}.rs", da.join("/")));
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `src/**/*.rs`, as (path under `src/`, text).
fn src_files() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 50, "read {} files", files.len());
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().to_path_buf();
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .collect()
}

#[test]
fn no_two_files_of_a_directory_use_each_other() {
    let cycles = sibling_cycles(&src_files());
    assert!(
        cycles.is_empty(),
        "files that use each other (move what both need to a third file):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_checker_sees_two_files_that_use_each_other() {
    let f = |p: &str, s: &str| (PathBuf::from(p), s.to_string());
    let ca = f(
        "pki/ca.rs",
        "use super::index::{CaRecord, Index};\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
    );
    let index = f(
        "pki/index.rs",
        "fn l() { let c = super::ca::load_ca_cert(); }",
    );
    let list = f("pki/list.rs", "use crate::pki::{ca, index::Index};");
    assert_eq!(
        sibling_cycles(&[ca.clone(), index.clone()]),
        ["pki: ca.rs <-> index.rs"]
    );
    assert!(sibling_cycles(&[ca.clone(), list.clone()]).is_empty());
    let index_in_tests = f(
        "pki/index.rs",
        "#[cfg(test)]\nmod tests {\n    use super::super::ca;\n}\n",
    );
    assert!(sibling_cycles(&[ca.clone(), index_in_tests]).is_empty());
    let index_via_crate = f("pki/index.rs", "use crate::pki::{ca::load_ca_cert, store};");
    assert_eq!(sibling_cycles(&[ca, index_via_crate, list]).len(), 1);
    // Same names in different directories are not siblings.
    let a = f("modules/pki/ca.rs", "use crate::pki::index;");
    let b = f("pki/index.rs", "use crate::modules::pki::ca;");
    assert!(sibling_cycles(&[a, b]).is_empty());
}

#[test]
fn no_file_of_src_points_up_a_layer() {
    let mut bad = Vec::new();
    let mut tops = std::collections::BTreeSet::new();
    for (rel, text) in src_files() {
        tops.insert(module_path(&rel)[0].clone());
        bad.extend(up_paths(&rel, &text));
    }
    let unplaced: Vec<_> = tops.iter().filter(|t| layer_of(t).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "top-level modules with no layer (add them to LAYERS and ARCHITECTURE.md): {unplaced:?}"
    );
    assert!(
        bad.is_empty(),
        "paths that point up a layer (ARCHITECTURE.md):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_checker_sees_a_postgres_file_that_uses_modules() {
    let f = Path::new("postgres/target.rs");
    assert!(up_paths(f, "use crate::connection::quote::quote_str;\n").is_empty());
    let bad = up_paths(f, "use serde_json::Value;\nuse crate::modules::Args;\n");
    assert_eq!(bad, ["postgres/target.rs:2: postgres -> modules"]);
    // In a group, in an expression, and through `super::super` from a nested file.
    assert_eq!(
        up_paths(f, "use crate::{connection::quote, modules::{Args, Arg}};").len(),
        1
    );
    assert_eq!(up_paths(f, "let a = crate::modules::args::x();").len(), 1);
    let nested = Path::new("postgres/hba/rule.rs");
    assert_eq!(
        up_paths(nested, "use super::super::super::modules::Args;").len(),
        1
    );
    assert!(up_paths(nested, "use super::super::conf;").is_empty());
    let tests_mod = "#[cfg(test)]\nmod tests {\n    use super::super::super::conf;\n}\nuse super::super::super::modules;";
    assert_eq!(
        up_paths(nested, tests_mod),
        ["postgres/hba/rule.rs:5: postgres -> modules"]
    );
    // tera is the template layer's: postgres and pki may not name it.
    assert_eq!(up_paths(f, "fn f(v: &tera::Context) {}").len(), 1);
    // Prose and strings are not imports.
    assert!(up_paths(
        f,
        "// see crate::modules::Args\nlet s = \"crate::modules\";"
    )
    .is_empty());
    assert!(up_paths(f, "/* crate::modules */ let c = '\"'; let d = 1;").is_empty());
    // Downward and same-module paths are fine.
    let m = Path::new("modules/postgres/pg_facts.rs");
    assert!(up_paths(
        m,
        "use crate::postgres::target::PgTarget;\nuse crate::modules::Args;"
    )
    .is_empty());
    assert_eq!(
        up_paths(m, "use crate::engine::x;"),
        ["modules/postgres/pg_facts.rs:1: modules -> engine"]
    );
    // A new top-level module must be placed in LAYERS.
    assert_eq!(
        up_paths(Path::new("newthing.rs"), "use crate::yaml;").len(),
        1
    );
}
