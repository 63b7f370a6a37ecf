//! Differential test: castellan's Templar against the real ansible-playbook (ansible-core 2.19),
//! on the corpus of `tests/jinja_corpus/` (expressions, `when:` conditions and template files
//! from public Ansible roles and collections; provenance and licences in its NOTICE, how it was
//! collected and recorded in its README.md).
//!
//! Every case is rendered with the variables Ansible rendered it with, plus the magic variables
//! ansible-playbook defined (`magic.json`), and compared with Ansible's output:
//! - `expr`: a YAML string as a task argument; `render_string_value` must give the same JSON
//!   value (a lone `{{ e }}` keeps its native type), or castellan's omit placeholder where
//!   Ansible omitted the argument;
//! - `cond`: `eval_cond` must give the same true/false;
//! - `template`: the template module's text, byte for byte;
//! - where Ansible failed (undefined variable, type error...), castellan must fail too.
//!
//! The test prints the match rate per category, per source and overall, and the top causes of
//! mismatch. It fails when a case outside `known_failures.txt` mismatches (a regression) or the
//! overall rate drops below `floor.txt`. `JINJA_PARITY_UPDATE=1` rewrites `known_failures.txt`
//! with today's mismatches (commit it with the change that moved them).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use castellan::playbook::keywords::OMIT;
use castellan::template::{context, Templar};
use serde_json::{json, Map, Value};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jinja_corpus")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn jsonl(name: &str) -> Vec<Value> {
    read(name)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect()
}

/// How one case came out.
enum Outcome {
    Match,
    /// Castellan failed where Ansible rendered: its message.
    Error(String),
    /// Both rendered, differently: the kind of difference, both values.
    Differs(String, String),
    /// Ansible failed, castellan rendered.
    Accepted,
}

/// The variables a case is rendered with: Ansible's magic variables, then the case's own.
fn vars_for(case: &Value, magic: &Map<String, Value>) -> Map<String, Value> {
    let mut vars = magic.clone();
    vars.insert("omit".into(), json!(OMIT));
    vars.insert("hostvars".into(), json!({ "localhost": magic }));
    if case["kind"] == "template" {
        // Defined by the template module (ansible-core's default `ansible_managed` string).
        vars.insert("ansible_managed".into(), json!("Ansible managed"));
    }
    if let Some(own) = case["vars"].as_object() {
        for (k, v) in own {
            vars.insert(k.clone(), v.clone());
        }
    }
    vars
}

fn short(s: &str) -> String {
    let one: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 160 {
        format!("{}...", one.chars().take(160).collect::<String>())
    } else {
        one
    }
}

fn render(t: &Templar, case: &Value, expected: &Value, vars: &Map<String, Value>) -> Outcome {
    let ctx = context(vars);
    let src = case["src"].as_str().unwrap_or_default();
    let got: Result<Value, String> = match case["kind"].as_str() {
        Some("expr") => t.render_string_value(src, &ctx),
        Some("cond") => t.eval_cond(src, &ctx).map(Value::Bool),
        _ => {
            let text = read(src);
            t.render_template_file(&text, &ctx).map(Value::String)
        }
    };
    let want = match expected["status"].as_str() {
        Some("ok") => Some(expected["value"].clone()),
        Some("omit") => Some(json!(OMIT)),
        _ => None,
    };
    match (got, want) {
        (Ok(g), Some(w)) if g == w => Outcome::Match,
        (Ok(g), Some(w)) => Outcome::Differs(
            difference(&g, &w),
            format!(
                "castellan {} / ansible {}",
                short(&g.to_string()),
                short(&w.to_string())
            ),
        ),
        (Err(e), Some(_)) => Outcome::Error(e),
        (Err(_), None) => Outcome::Match,
        (Ok(_), None) => Outcome::Accepted,
    }
}

/// A castellan error message with the case-specific parts taken out, to group causes.
fn cause_of(e: &str) -> String {
    if let Some(syntax) = syntax_cause(e) {
        return syntax;
    }
    let first = e
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in first.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None if c == '`' => {
                out.push(c);
                out.push('_');
                quote = Some(c);
            }
            None if c.is_ascii_digit() => {
                if !out.ends_with('N') {
                    out.push('N');
                }
            }
            None => out.push(c),
        }
    }
    short(&out)
}

/// tera's parse errors point a caret at the token it refused: name that token and the one
/// before it (`default(` then `[`), which is what the cause is.
fn syntax_cause(e: &str) -> Option<String> {
    if !e.contains("syntax error") {
        return None;
    }
    let lines: Vec<&str> = e.lines().collect();
    let caret = lines.iter().position(|l| {
        let t = l.trim_start();
        t.starts_with('|') && t.contains('^')
    })?;
    let code = lines.get(caret.checked_sub(1)?)?;
    let code = code.split_once(" | ").map(|(_, c)| c)?;
    // Templar::error_chain drops its native wrapper's variable name from the message, not from
    // the caret line: put it back so the caret points where tera stopped.
    let restored;
    let code = if code.starts_with("{% set ") && code.contains("__castellan_native | json_encode") {
        restored = code.replacen("{% set ", "{% set __castellan_native = ", 1);
        restored.as_str()
    } else {
        code
    };
    let bar = lines[caret].find('|')?;
    let col = lines[caret].find('^')?.checked_sub(bar + 2)?;
    let chars: Vec<char> = code.chars().collect();
    let (before, after) = chars.split_at(col.min(chars.len()));
    Some(format!(
        "syntax: `{}` then {}",
        token_before(before),
        token_at(after)
    ))
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn token_at(after: &[char]) -> String {
    let Some(&c) = after.first() else {
        return "end".into();
    };
    if c == '\'' || c == '"' {
        return "a string".into();
    }
    if c.is_ascii_digit() {
        return "a number".into();
    }
    if is_word(c) {
        let w: String = after.iter().take_while(|c| is_word(**c)).collect();
        return if KEYWORDS.contains(&w.as_str()) {
            format!("`{w}`")
        } else {
            "a name".into()
        };
    }
    let two: String = after.iter().take(2).collect();
    if ["//", "**", "%}", "}}", "==", "!=", "<=", ">="].contains(&two.as_str()) {
        return format!("`{two}`");
    }
    format!("`{c}`")
}

const KEYWORDS: [&str; 14] = [
    "if", "else", "elif", "is", "not", "in", "and", "or", "for", "set", "true", "false", "none",
    "None",
];

fn token_before(before: &[char]) -> String {
    let text: String = before.iter().collect();
    let text = text.trim_end();
    let Some(last) = text.chars().last() else {
        return "start".into();
    };
    if is_word(last) {
        let w: String = text
            .chars()
            .rev()
            .take_while(|c| is_word(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let rest = text[..text.len() - w.len()].trim_end();
        return if KEYWORDS.contains(&w.as_str()) || rest.ends_with('|') || rest.ends_with("is") {
            w
        } else if w.chars().all(|c| c.is_ascii_digit()) {
            "number".into()
        } else {
            "name".into()
        };
    }
    if last == '(' || last == '[' {
        let inner = &text[..text.len() - 1];
        let w: String = inner
            .chars()
            .rev()
            .take_while(|c| is_word(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let rest = inner[..inner.len() - w.len()].trim_end();
        if !w.is_empty() && (rest.ends_with('|') || rest.ends_with('.') || rest.ends_with("is")) {
            let dot = if rest.ends_with('.') { "." } else { "" };
            return format!("{dot}{w}{last}");
        }
        return if w.is_empty() {
            last.to_string()
        } else {
            format!("name{last}")
        };
    }
    if last == '\'' || last == '"' {
        return "string".into();
    }
    last.to_string()
}

/// Both rendered, differently: what kind of difference.
fn difference(got: &Value, want: &Value) -> String {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    match (got, want) {
        (Value::String(g), Value::String(w)) => {
            let squash = |s: &str| s.split_whitespace().collect::<String>();
            if squash(g) == squash(w) {
                "whitespace differs".into()
            } else if (w.contains("True") || w.contains("False"))
                && g.replace("true", "True").replace("false", "False") == *w
            {
                "Python True/False in text".into()
            } else if w.contains("['") || w.contains("{'") || w.contains("[]") {
                "Python list/dict str() in text".into()
            } else if w.contains("None") && g.replace("null", "None") == *w {
                "Python None in text".into()
            } else {
                "text differs".into()
            }
        }
        _ if kind(got) != kind(want) => {
            format!("castellan gives a {}, ansible a {}", kind(got), kind(want))
        }
        _ => format!("{} value differs", kind(want)),
    }
}

#[test]
fn castellan_renders_the_corpus_as_ansible_does() {
    // Deep templates: tera recurses; give it room.
    let handle = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(run)
        .unwrap();
    if let Err(p) = handle.join() {
        std::panic::resume_unwind(p);
    }
}

fn run() {
    let cases = jsonl("cases.jsonl");
    let expected: HashMap<String, Value> = jsonl("expected.jsonl")
        .into_iter()
        .map(|e| (e["id"].as_str().unwrap_or_default().to_string(), e))
        .collect();
    let magic: Map<String, Value> = serde_json::from_str(&read("magic.json")).unwrap();
    let known: BTreeSet<String> = read("known_failures.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let floor: f64 = read("floor.txt")
        .lines()
        .find(|l| !l.trim().starts_with('#') && !l.trim().is_empty())
        .and_then(|l| l.trim().trim_end_matches('%').parse().ok())
        .expect("floor.txt: a percentage");

    let templar = Templar::new();
    // (category -> (compared, matched)), the same per source.
    let mut by_kind: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut by_repo: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    // Where Ansible failed, any castellan error counts as a match: the rate on the cases
    // Ansible rendered is the stricter figure.
    let mut rendered: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut causes: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut failing: Vec<(String, String)> = Vec::new();
    let mut skipped = 0;
    for case in &cases {
        let id = case["id"].as_str().unwrap_or_default().to_string();
        let Some(exp) = expected.get(&id) else {
            panic!("{id}: no expected outcome; run tests/jinja_corpus/record.sh");
        };
        if !matches!(exp["status"].as_str(), Some("ok" | "omit" | "error")) {
            skipped += 1;
            continue;
        }
        let vars = vars_for(case, &magic);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            render(&templar, case, exp, &vars)
        }))
        .unwrap_or_else(|_| Outcome::Error("castellan panicked".into()));
        let kind = case["kind"].as_str().unwrap_or_default().to_string();
        let repo = case["repo"].as_str().unwrap_or_default().to_string();
        let ok = matches!(outcome, Outcome::Match);
        let mut maps = vec![(&mut by_kind, kind.clone()), (&mut by_repo, repo)];
        if exp["status"] != "error" {
            maps.push((&mut rendered, kind.clone()));
        }
        for (map, key) in maps {
            let e = map.entry(key).or_default();
            e.0 += 1;
            e.1 += usize::from(ok);
        }
        let cause = match outcome {
            Outcome::Match => continue,
            Outcome::Error(e) => format!("{kind}: error: {}", cause_of(&e)),
            Outcome::Differs(what, both) => format!("{kind}: {what} ({both})"),
            Outcome::Accepted => format!(
                "{kind}: accepted what Ansible refused ({})",
                short(exp["error"].as_str().unwrap_or_default())
            ),
        };
        // Group differences by their kind, without the values.
        let key = match cause.find(" (castellan ") {
            Some(i) => cause[..i].to_string(),
            None => cause.clone(),
        };
        let e = causes.entry(key).or_insert((0, id.clone()));
        e.0 += 1;
        failing.push((id, cause));
    }

    let (total, matched) = by_kind
        .values()
        .fold((0, 0), |(t, m), (a, b)| (t + a, m + b));
    let pct = |m: usize, t: usize| {
        if t == 0 {
            100.0
        } else {
            100.0 * m as f64 / t as f64
        }
    };
    println!("jinja parity against ansible-core (tests/jinja_corpus):");
    for (k, (t, m)) in &by_kind {
        println!("  {k:10} {m:5}/{t:5}  {:5.1}%", pct(*m, *t));
    }
    println!(
        "  {:10} {matched:5}/{total:5}  {:5.1}%  ({skipped} unstable cases not compared)",
        "overall",
        pct(matched, total)
    );
    println!("on the cases Ansible rendered (not an error):");
    for (k, (t, m)) in &rendered {
        println!("  {k:10} {m:5}/{t:5}  {:5.1}%", pct(*m, *t));
    }
    let (rt, rm) = rendered
        .values()
        .fold((0, 0), |(t, m), (a, b)| (t + a, m + b));
    println!("  {:10} {rm:5}/{rt:5}  {:5.1}%", "overall", pct(rm, rt));
    println!("by source:");
    for (k, (t, m)) in &by_repo {
        println!("  {k:45} {m:5}/{t:5}  {:5.1}%", pct(*m, *t));
    }
    let mut top: Vec<_> = causes.into_iter().collect();
    top.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    println!("top causes of mismatch (cases, example):");
    for (cause, (n, example)) in top.iter().take(25) {
        println!("  {n:5}  {cause}  [{example}]");
    }

    if std::env::var("JINJA_PARITY_UPDATE").is_ok_and(|v| v == "1") {
        let mut text = String::from(
            "# Corpus cases castellan does not yet render as ansible-core does (see\n\
             # tests/jinja_parity.rs). Rewritten by JINJA_PARITY_UPDATE=1 cargo test --test jinja_parity.\n",
        );
        for (id, cause) in &failing {
            text.push_str(&format!("{id}  # {}\n", cause.replace('\n', " ")));
        }
        std::fs::write(dir().join("known_failures.txt"), text).unwrap();
        println!("known_failures.txt rewritten: {} cases", failing.len());
        return;
    }

    let new: Vec<_> = failing
        .iter()
        .filter(|(id, _)| !known.contains(id))
        .collect();
    let fixed = known.len() + new.len() - failing.len();
    if fixed > 0 {
        println!(
            "{fixed} cases of known_failures.txt now match: JINJA_PARITY_UPDATE=1 shrinks the list"
        );
    }
    assert!(
        new.is_empty(),
        "{} cases mismatch that are not in known_failures.txt (regressions):\n{}",
        new.len(),
        new.iter()
            .take(40)
            .map(|(id, c)| format!("  {id}: {c}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        pct(matched, total) >= floor,
        "overall match rate {:.1}% is below the floor of {floor}% (floor.txt)",
        pct(matched, total)
    );
}
