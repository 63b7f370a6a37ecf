//! The repo's own roles are written in Jinja2 (Ansible's syntax): every template string in their
//! YAML (and every `when:`-like condition) and every template file parses with the Jinja2
//! front-end and passes its checks (names and arity), with no fall back to tera's own syntax.
use std::path::{Path, PathBuf};

use serde_json::Value;

const CONDITION_KEYS: &[&str] = &["when", "that", "failed_when", "changed_when", "until"];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Parsed by the Jinja2 front-end (the Templar alone would fall back to tera's syntax), then
/// checked as the playbook loader checks it.
fn check(src: &str, what: &str, problems: &mut Vec<String>) {
    if let Err(e) = castellan::jinja::parse(src, true) {
        problems.push(format!("{what}: not Jinja2: {}", e.render(src)));
    }
    if let Err(e) = castellan::template::Templar::new().check(src) {
        problems.push(format!("{what}: {e}"));
    }
}

fn walk(v: &Value, key: Option<&str>, what: &str, problems: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if key.is_some_and(|k| CONDITION_KEYS.contains(&k)) && !s.contains("{{") {
                check(&format!("{{% if {s} %}}{{% endif %}}"), what, problems);
            } else if s.contains("{{") || s.contains("{%") {
                check(s, what, problems);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk(x, key, what, problems)),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| walk(x, Some(k.as_str()), what, problems)),
        _ => {}
    }
}

#[test]
fn the_repos_roles_parse_as_jinja2() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("roles");
    let mut all = Vec::new();
    files(&root, &mut all);
    let (mut strings, mut templates) = (0, 0);
    let mut problems = Vec::new();
    for p in &all {
        let what = p.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(p).unwrap();
        match p.extension().and_then(|e| e.to_str()) {
            Some("yml" | "yaml") => {
                let v: Value = serde_yaml::from_str(&text).unwrap();
                strings += 1;
                walk(&v, None, &what, &mut problems);
            }
            Some("j2") => {
                templates += 1;
                check(&text, &what, &mut problems);
            }
            _ => {}
        }
    }
    assert!(
        strings > 10 && templates > 0,
        "{strings} YAML files, {templates} templates"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
