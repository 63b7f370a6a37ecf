//! Layers point one way (ARCHITECTURE.md): a file of `src/` may use its own top-level module and
//! the modules of the layers BELOW its own, never one above. The check reads every `src/**/*.rs`,
//! finds each `crate::x` path (also inside `use crate::{x, y::z}` groups and `super::super::x`
//! reaching the crate root) and each `tera::` path (tera belongs to the template layer), and
//! fails naming the file and line of each path that points up.
use std::path::{Path, PathBuf};

/// Bottom first. The same order as ARCHITECTURE.md, "Layers". `tera` is the template engine:
/// only the template layer and the layers above it may name it.
const LAYERS: &[&[&str]] = &[
    &["error", "yaml", "text", "diff", "boolean"],
    &["connection", "pki", "report"],
    &["postgres"],
    &["template_filters", "template", "tera"],
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

/// The top-level modules named by `crate::` after position `at` in `code`: one, or each member
/// of a `{...}` group (nested groups name the same top-level module as their head).
fn crate_targets(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
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
                    out.push(ident_at(&group[k..]).to_string());
                    start = false;
                }
                _ => {}
            }
        }
        out
    } else {
        vec![ident_at(rest).to_string()]
    }
}

/// Every up-pointing path in one file: `(line, what it names)`.
fn up_paths(rel: &Path, src: &str) -> Vec<String> {
    let path = module_path(rel);
    let Some(own) = path.first().cloned() else {
        return Vec::new();
    };
    let own_layer = layer_of(&own);
    let code = code_only(src);
    let mut out = Vec::new();
    // Inline modules (`mod tests {`): each adds one step for `super::` to climb.
    let mut depth = 0usize;
    let mut inline: Vec<usize> = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let t = line.trim_start();
        let t = t.strip_prefix("pub ").unwrap_or(t);
        if t.starts_with("mod ") && t.trim_end().ends_with('{') {
            inline.push(depth);
        }
        let steps = path.len() + inline.len();
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if inline.last() == Some(&depth) {
                        inline.pop();
                    }
                }
                _ => {}
            }
        }
        let mut named: Vec<String> = Vec::new();
        for (k, _) in line.match_indices("crate::") {
            let before = line[..k].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `castellan_crate::`, not ours
            }
            named.extend(crate_targets(&line[k + "crate::".len()..]));
        }
        for (k, _) in line.match_indices("super::") {
            let before = line[..k].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue; // counted from its first `super::`
            }
            let mut rest = &line[k..];
            let mut ups = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                ups += 1;
                rest = r;
            }
            // A file's own module is `path`; `super` goes to its parent. The crate root is
            // reached after `path.len()` steps (a `mod tests` inside the file adds one).
            if ups >= steps {
                named.extend(crate_targets(rest));
            }
        }
        for (k, _) in line.match_indices("tera::") {
            let before = line[..k].chars().next_back();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                named.push("tera".to_string());
            }
        }
        for m in named {
            if m == own || m == "self" || m.is_empty() {
                continue;
            }
            let bad = match (own_layer, layer_of(&m)) {
                (Some(o), Some(t)) => t > o,
                // A top-level module missing from LAYERS: place it first.
                (None, _) => true,
                (_, None) => m.chars().next().is_some_and(char::is_lowercase),
            };
            if bad {
                out.push(format!("{}:{}: {own} -> {m}", rel.display(), n + 1));
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

#[test]
fn no_file_of_src_points_up_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 50, "read {} files", files.len());
    let mut bad = Vec::new();
    let mut tops = std::collections::BTreeSet::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        tops.insert(module_path(rel)[0].clone());
        let text = std::fs::read_to_string(f).unwrap();
        bad.extend(up_paths(rel, &text));
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
