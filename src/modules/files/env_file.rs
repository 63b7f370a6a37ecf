//! `env_file`: set or remove variables in a KEY=VALUE file: an installer's `.conf`,
//! `/etc/environment`, a docker compose `.env`, CAP's `/etc/cryptosense-analyzer/config`.
//!
//! Ansible users reach for `lineinfile` with `regexp: '^KEY='` here. This module exists because
//! that is not the file's grammar: it reads the file as a shell does ([`crate::envfile`]), so
//! - the assignment in effect is the **last** one of the key (`lineinfile` edits the last match
//!   too, but also matches commented-out lines or `KEY2=` unless the regexp is careful);
//! - the value is written **quoted the file's way**: the line keeps its `export `, its blanks
//!   around `=`, its quotes and its trailing comment; a new key takes the file's dominant style;
//!   a value that needs quotes gets them, escaped as a shell reads them (`lineinfile` writes
//!   `line` as given: a `$` or a space in a password changes what the shell reads);
//! - a value equal to the current one is no change, however it is quoted (`KEY="1"` is `1`);
//! - a value that cannot be written in the requested style (a line break, a `'` in single
//!   quotes, characters that need quotes with `quote: none`) fails the task before any write:
//!   it never becomes a line of its own.
//!
//! | argument | |
//! |---|---|
//! | `path` (`dest`) | the file, required |
//! | `settings` | mapping KEY -> value (`state: present`); numbers as written, booleans as `true`/`false` |
//! | `keys` | list of KEYs to remove (`state: absent`) |
//! | `state` | `present` (default) or `absent`: every active assignment of `keys` is removed |
//! | `quote` | `auto` (default), `none`, `double`, `single` |
//! | `create` | create a missing file (default yes); no: a missing file fails the task |
//! | `backup`, `owner`, `group`, `mode`, `follow` | as `ini_file` |
//!
//! New keys go after the last assignment of the file, before the comments and blank lines
//! that end it (a file without assignments gets them at its end), in the order of `settings`.
//! Result keys besides the file's: `msg`, `keys_changed` (names only, never values). The diff
//! is `<redacted>` when the file holds a setting that looks secret (by its name or value: see
//! [`crate::report::secret::is_secret_setting`]), as for `no_log` and private files.

use serde_json::{json, Value};

use super::common::{attrs_only, file_result, plan_write_follow, read_text, AttrSpec};
use crate::envfile::{check_value, is_valid_key, key_error, Document, EntryKind, QuoteChoice};
use crate::modules::{Arg, Args, Kind, ModuleCtx, ModuleError, Plan};
use crate::report::secret::{is_secret_setting, is_secret_text};
use crate::template::is_template;

pub struct EnvFile;

const MODULE_ARGS: &[Arg] = &[
    Arg::new("path", Kind::Str).aliases(&["dest"]).required(),
    Arg::new("settings", Kind::Dict),
    Arg::new("keys", Kind::List),
    Arg::new("state", Kind::Str).choices(&["present", "absent"]),
    Arg::new("quote", Kind::Str).choices(&["auto", "none", "double", "single"]),
    Arg::new("create", Kind::Bool),
    Arg::new("backup", Kind::Bool),
    Arg::new("follow", Kind::Bool),
    crate::modules::args::FILE_ATTRS[0],
    crate::modules::args::FILE_ATTRS[1],
    crate::modules::args::FILE_ATTRS[2],
];

/// What a task asks for: the changes in order (`None`: remove) and the quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub changes: Vec<(String, Option<String>)>,
    pub quote: QuoteChoice,
}

/// A value as file text: strings as they are, numbers as written, booleans `true`/`false`.
fn value_text(key: &str, v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Err(format!(
            "settings: `{key}` has no value (write \"\" for an empty one)"
        )),
        _ => Err(format!(
            "settings: the value of `{key}` must be a string, a number or a boolean"
        )),
    }
}

/// The arguments a check can read now: `Some` when literal, `None` when still a template.
fn literal<'a>(args: &'a Args, name: &str) -> Option<&'a str> {
    args.str(name).filter(|s| !is_template(s))
}

/// Checks the task's arguments. At load time (`rendered: false`) templated parts are skipped
/// and checked once rendered; the rendered arguments give the changes.
fn check(args: &Args, rendered: bool) -> Result<Wanted, String> {
    let state = match literal(args, "state") {
        Some(s) => Some(s),
        None if args.has("state") => None,
        None => Some("present"),
    };
    let quote = match literal(args, "quote") {
        Some(q) => {
            Some(QuoteChoice::parse(q).ok_or_else(|| format!("quote: unknown style `{q}`"))?)
        }
        None if args.has("quote") => None,
        None => Some(QuoteChoice::Auto),
    };
    let settings = args.get("settings");
    let keys = args.get("keys");
    match state {
        Some("absent") if settings.is_some() => return Err(
            "state: absent removes `keys` (a list of names); `settings` goes with state: present"
                .into(),
        ),
        Some("absent") if keys.is_none() => {
            return Err("state: absent needs `keys`, the names to remove".into())
        }
        Some("present") if keys.is_some() => {
            return Err("`keys` goes with state: absent; state: present sets `settings`".into())
        }
        Some("present") if settings.is_none() => {
            return Err("`settings` is required (a mapping KEY: value)".into())
        }
        _ => {}
    }
    let mut changes = Vec::new();
    match settings {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                let templated = |s: &str| !rendered && is_template(s);
                if !templated(k) && !is_valid_key(k) {
                    return Err(format!("settings: {}", key_error(k)));
                }
                if matches!(v, Value::String(s) if templated(s)) || templated(k) {
                    continue;
                }
                let text = value_text(k, v)?;
                check_value(k, &text, quote.unwrap_or_default())?;
                changes.push((k.clone(), Some(text)));
            }
        }
        Some(Value::String(s)) if !rendered && is_template(s) => {}
        Some(_) => return Err("`settings` must be a mapping KEY: value".into()),
        None => {}
    }
    match keys {
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(k) if !rendered && is_template(k) => {}
                    Value::String(k) if is_valid_key(k) => changes.push((k.clone(), None)),
                    Value::String(k) => return Err(format!("keys: {}", key_error(k))),
                    other => return Err(format!("keys: `{other}` is not a variable name")),
                }
            }
        }
        Some(Value::String(s)) if !rendered && is_template(s) => {}
        Some(_) => return Err("`keys` must be a list of variable names".into()),
        None => {}
    }
    Ok(Wanted {
        changes,
        quote: quote.unwrap_or_default(),
    })
}

/// The rendered arguments of a task: its changes and quoting.
pub fn wanted(args: &Args) -> Result<Wanted, String> {
    check(args, true)
}

/// Whether `text` holds a setting that looks secret, active or commented out (a diff shows a
/// few lines around each change: any of them could be one), or key material.
pub fn holds_secret(text: &str) -> bool {
    let doc = Document::parse(text);
    doc.entries.iter().any(|e| match &e.kind {
        EntryKind::Assignment(a) => {
            let value = a
                .value
                .clone()
                .unwrap_or_else(|| e.raw[a.span.clone()].into());
            is_secret_setting(&a.key, &value)
        }
        EntryKind::Comment => {
            let body = e.raw.trim_start_matches([' ', '\t', '#']);
            holds_secret(body) || is_secret_text(&e.raw)
        }
        EntryKind::Blank => false,
        EntryKind::Other => is_secret_text(&e.raw),
    })
}

/// The pure part: `current` (the text of `path`, `None`: no file) with `want` applied: the
/// new text and the keys that changed (none: the text is `current`). A missing file with
/// `create: no` is an error only when something would be written.
pub fn edit(
    path: &str,
    current: Option<&str>,
    want: &Wanted,
    create: bool,
) -> Result<(String, Vec<String>), ModuleError> {
    let mut doc = Document::parse(current.unwrap_or_default());
    let changed = doc
        .apply(&want.changes, want.quote)
        .map_err(ModuleError::InvalidArgs)?;
    if current.is_none() && !create && !changed.is_empty() {
        return Err(ModuleError::failed(format!(
            "Destination {path} does not exist (create: no)"
        )));
    }
    let text = doc.render();
    // Steps that undo each other (a key set twice) leave the file as it was: no change.
    if changed.is_empty() || current == Some(text.as_str()) {
        return Ok((current.unwrap_or_default().to_string(), Vec::new()));
    }
    Ok((text, changed))
}

#[async_trait::async_trait]
impl crate::modules::Module for EnvFile {
    fn name(&self) -> &'static str {
        "env_file"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(MODULE_ARGS)
    }

    fn reads(&self, args: &Args) -> Vec<(String, crate::connection::Want)> {
        crate::modules::files::common::text_reads(args)
    }

    /// Key names and literal values are checked at load time even when other values are
    /// templates (`CSS_SSL_CERT: "{{ cast_ssl_dir }}/client.crt"`).
    fn validates_templated_args(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        check(args, false).map(|_| ())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let path = args.req("path").map_err(ModuleError::InvalidArgs)?;
        let want = wanted(args).map_err(ModuleError::InvalidArgs)?;
        let spec = AttrSpec::from_args(args).map_err(ModuleError::InvalidArgs)?;
        let (st, current) = read_text(ctx, &path).await?;
        let (content, keys_changed) =
            edit(&path, current.as_deref(), &want, args.bool("create", true))?;
        let (ops, diff) = if keys_changed.is_empty() {
            (attrs_only(&path, &st, &spec), None)
        } else {
            let (ops, mut diff) = plan_write_follow(
                &path,
                &st,
                content.clone().into_bytes(),
                &spec,
                args.bool("backup", false),
                args.bool("follow", false),
            );
            let secret =
                holds_secret(current.as_deref().unwrap_or_default()) || holds_secret(&content);
            if let Some(d) = diff.as_mut().filter(|_| secret) {
                d.secret = true;
                d.before.clear();
                d.after.clear();
            }
            (ops, diff)
        };
        let msg = match (keys_changed.is_empty(), want.changes.first()) {
            (true, _) => "OK".to_string(),
            (false, Some((_, None))) => format!("removed {}", keys_changed.join(", ")),
            (false, _) => format!("set {}", keys_changed.join(", ")),
        };
        let mut result = file_result(&path, &st, &spec, None);
        result.insert("msg".into(), json!(msg));
        result.insert("keys_changed".into(), json!(keys_changed));
        Ok(Plan::ops(ops, diff).with_result(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::args::normalize;

    fn args(json: Value) -> Args {
        let Value::Object(m) = json else {
            panic!("an object")
        };
        normalize("env_file", Some(MODULE_ARGS), &m, true).expect("arguments normalize")
    }

    fn load_error(json: Value) -> String {
        check(&args(json), false).expect_err("refused at load time")
    }

    #[test]
    fn values_become_text_the_documented_way() {
        let w = wanted(&args(json!({
            "path": "/x", "settings": {"A": true, "B": false, "C": 5432, "D": 1.5, "E": "s"}
        })))
        .unwrap();
        let got: Vec<(&str, Option<&str>)> = w
            .changes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("A", Some("true")),
                ("B", Some("false")),
                ("C", Some("5432")),
                ("D", Some("1.5")),
                ("E", Some("s"))
            ]
        );
        assert_eq!(w.quote, QuoteChoice::Auto);
        let w = wanted(&args(
            json!({"path": "/x", "keys": ["A", "B"], "state": "absent", "quote": "single"}),
        ))
        .unwrap();
        assert_eq!(
            w.changes,
            [("A".to_string(), None), ("B".to_string(), None)]
        );
    }

    #[test]
    fn bad_arguments_are_refused_at_load_time_without_showing_values() {
        for (json, words) in [
            (json!({"path": "/x", "settings": {"1BAD": "v"}}), "`1BAD`"),
            (json!({"path": "/x", "settings": {"A-B": "v"}}), "`A-B`"),
            (
                json!({"path": "/x", "keys": ["x y"], "state": "absent"}),
                "`x y`",
            ),
            (
                json!({"path": "/x", "keys": [["A"]], "state": "absent"}),
                "keys",
            ),
            (json!({"path": "/x", "settings": {"A": null}}), "no value"),
            (
                json!({"path": "/x", "settings": {"A": [1]}}),
                "string, a number",
            ),
            (
                json!({"path": "/x", "settings": {"A": "s3cret\nB=1"}}),
                "line break",
            ),
            (
                json!({"path": "/x", "settings": {"A": "s3cret word"}, "quote": "none"}),
                "needs quotes",
            ),
            (
                json!({"path": "/x", "settings": {"A": "s3cret's"}, "quote": "single"}),
                "single quotes",
            ),
            (json!({"path": "/x"}), "`settings` is required"),
            (json!({"path": "/x", "state": "absent"}), "needs `keys`"),
            (json!({"path": "/x", "keys": ["A"]}), "state: absent"),
            (
                json!({"path": "/x", "settings": {"A": "1"}, "state": "absent"}),
                "state: present",
            ),
        ] {
            let err = load_error(json.clone());
            assert!(err.contains(words), "{json}: {err}");
            assert!(!err.contains("s3cret"), "{json}: the value is shown: {err}");
        }
    }

    #[test]
    fn templated_parts_wait_for_their_values() {
        // Load time: the literal key is checked, the templated value waits.
        let a = args(json!({"path": "/x", "settings": {"A": "{{ v }}", "B": "1"}}));
        assert_eq!(check(&a, false).unwrap().changes.len(), 1);
        let a = args(json!({"path": "/x", "settings": {"1A": "{{ v }}"}}));
        assert!(check(&a, false).unwrap_err().contains("`1A`"));
        let a = args(json!({"path": "/x", "settings": "{{ all_settings }}"}));
        assert!(check(&a, false).unwrap().changes.is_empty());
        let a = args(json!({"path": "/x", "settings": {"A": "x y"}, "quote": "{{ q }}"}));
        assert!(check(&a, false).is_ok());
        // Once rendered, a template text is a value like any other.
        let a = args(json!({"path": "/x", "settings": {"A": "{{ literally }}"}}));
        assert_eq!(
            wanted(&a).unwrap().changes[0].1.as_deref(),
            Some("{{ literally }}")
        );
    }

    #[test]
    fn a_missing_file_is_created_unless_create_is_no() {
        let w = wanted(&args(json!({"path": "/x", "settings": {"A": "1"}}))).unwrap();
        assert_eq!(
            edit("/x", None, &w, true).unwrap(),
            ("A=1\n".into(), vec!["A".into()])
        );
        let err = edit("/x", None, &w, false).unwrap_err();
        assert!(
            matches!(err, ModuleError::Failed { ref msg, .. } if msg == "Destination /x does not exist (create: no)")
        );
        // Nothing to remove from a missing file: no change, no error, no file.
        let w = wanted(&args(
            json!({"path": "/x", "keys": ["A"], "state": "absent"}),
        ))
        .unwrap();
        assert_eq!(
            edit("/x", None, &w, false).unwrap(),
            (String::new(), Vec::new())
        );
    }

    /// Found by the env_file fuzz target: a key set twice in one edit (possible through the
    /// pure edit, not through `settings`, a mapping) came back to the file's text, yet the
    /// edit reported the key changed, on every run.
    #[test]
    fn steps_that_undo_each_other_are_no_change() {
        let w = Wanted {
            changes: vec![
                ("A".into(), Some("2".into())),
                ("A".into(), Some("1".into())),
            ],
            quote: QuoteChoice::Auto,
        };
        assert_eq!(
            edit("/x", Some("A=1\n"), &w, true).unwrap(),
            ("A=1\n".into(), Vec::new())
        );
    }

    #[test]
    fn an_unwritable_value_at_run_time_is_invalid_args() {
        let w = Wanted {
            changes: vec![("C".into(), Some("1".into()))],
            quote: QuoteChoice::Auto,
        };
        let err = edit("/x", Some("B=1\nA=a\\\n"), &w, true).unwrap_err();
        assert!(matches!(err, ModuleError::InvalidArgs(ref m) if m.contains("never closed")));
    }

    #[test]
    fn secrets_are_seen_in_names_values_and_comments() {
        assert!(holds_secret("A=1\nSECRET_KEY=abc\n"));
        assert!(holds_secret("DATABASE_URL=\"postgres://u:pw@h/db\"\n"));
        assert!(holds_secret("# DB_PASSWORD=old\nA=1\n"));
        assert!(holds_secret("URL=postgres://u:$PW@h/db\n"));
        assert!(!holds_secret(
            "CSS_SSL_ENABLED=true\nCSS_SSL_KEY=/etc/ssl/client.key\n# a comment\n"
        ));
    }
}
