//! `lineinfile`: ensure a line is present in (or absent from) a text file, optionally replacing
//! the line matched by a regular expression or a fixed search string.
//!
//! Mirrors `ansible.builtin.lineinfile`: with `regexp`/`search_string` the LAST matching line is
//! replaced (the first with `firstmatch`); when nothing matches, the line is inserted after the
//! last `insertafter` match / before the last `insertbefore` match (first with `firstmatch`), at
//! `BOF`, or at the end of the file (also when the insert pattern matches nothing). If the exact
//! line is already in the file, nothing is inserted. With `backrefs`, the line is only written
//! when `regexp` matches, with `\1` / `\g<1>` / `\g<name>` expanded; it is never inserted.

use regex::{Captures, Regex};
use serde::Deserialize;

use super::{lenient, State};
use crate::modules::edit::Edit;
use crate::text::{compile_regex, newline_of, split_lines, strip_eol, terminate_last};

/// Argument names accepted by [`Args`], aliases included.
pub const CONTENT_ARGS: &[&str] = &[
    "regexp",
    "regex",
    "search_string",
    "line",
    "value",
    "state",
    "insertafter",
    "insertbefore",
    "backrefs",
    "firstmatch",
    "create",
];

/// The content arguments of `lineinfile`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Python-style regular expression searched (unanchored) in every line.
    #[serde(default, alias = "regex", deserialize_with = "lenient::opt_string")]
    pub regexp: Option<String>,
    /// Literal string searched in every line. Mutually exclusive with `regexp` and `backrefs`.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub search_string: Option<String>,
    /// The line to insert/replace (required with `state: present`).
    #[serde(default, alias = "value", deserialize_with = "lenient::opt_string")]
    pub line: Option<String>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: State,
    /// `EOF` (default), `BOF`, or a regular expression.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub insertafter: Option<String>,
    /// `BOF` or a regular expression.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub insertbefore: Option<String>,
    /// Expand back-references of `regexp` in `line`; never insert when `regexp` does not match.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub backrefs: bool,
    /// Use the first match of `regexp`/`insertafter`/`insertbefore` instead of the last.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub firstmatch: bool,
    /// Create the file when it does not exist (`state: present` only).
    #[serde(default, deserialize_with = "lenient::bool")]
    pub create: bool,
}

/// Where to put the line when no line matches.
enum Insert {
    Bof,
    Eof,
    After(Regex),
    Before(Regex),
}

/// Applies `args` to `current` (`None`: the file does not exist).
pub fn edit(current: Option<&str>, args: &Args) -> Result<Edit, String> {
    if args.regexp.is_some() && args.search_string.is_some() {
        return Err("parameters are mutually exclusive: regexp|search_string".into());
    }
    if args.insertafter.is_some() && args.insertbefore.is_some() {
        return Err("parameters are mutually exclusive: insertbefore|insertafter".into());
    }
    if args.backrefs && args.search_string.is_some() {
        return Err("parameters are mutually exclusive: backrefs|search_string".into());
    }
    let regexp = args
        .regexp
        .as_deref()
        .map(|p| compile_regex("regexp", p))
        .transpose()?;
    match args.state {
        State::Present => present(current, args, regexp.as_ref()),
        State::Absent => absent(current, args, regexp.as_ref()),
    }
}

fn present(current: Option<&str>, args: &Args, regexp: Option<&Regex>) -> Result<Edit, String> {
    if args.backrefs && regexp.is_none() {
        return Err("regexp is required with backrefs=true".into());
    }
    let Some(line) = args.line.as_deref() else {
        return Err("line is required with state=present".into());
    };
    let insert = match (args.insertafter.as_deref(), args.insertbefore.as_deref()) {
        (Some("BOF"), _) | (None, Some("BOF")) => Insert::Bof,
        (None | Some("EOF"), None) => Insert::Eof,
        (Some(p), _) => Insert::After(compile_regex("insertafter", p)?),
        (None, Some(p)) => Insert::Before(compile_regex("insertbefore", p)?),
    };
    let original = match current {
        Some(text) => text,
        None if args.create => "",
        None => return Err("file does not exist (set create: true to create it)".into()),
    };
    let nl = newline_of(original);
    let mut lines: Vec<String> = split_lines(original)
        .into_iter()
        .map(String::from)
        .collect();

    // 1. The line matched by regexp / search_string (last one, or first with firstmatch).
    let mut matched = None;
    for (i, l) in lines.iter().enumerate() {
        let content = strip_eol(l);
        let hit = match (regexp, args.search_string.as_deref()) {
            (Some(re), _) => re.is_match(content),
            (None, Some(s)) => content.contains(s),
            (None, None) => false,
        };
        if hit {
            matched = Some(i);
            if args.firstmatch {
                break;
            }
        }
    }

    // 2. Without such a match: the exact line anywhere, else the insertion point.
    let target = match matched {
        Some(i) => Some(i),
        None => lines.iter().rposition(|l| strip_eol(l) == line),
    };

    let mut msg = "";
    if let Some(i) = target {
        let mut new_line = match (matched, regexp) {
            (Some(_), Some(re)) if args.backrefs => {
                let content = strip_eol(&lines[i]);
                match re.captures(content) {
                    Some(caps) => expand(re, &caps, line)?,
                    None => line.to_string(),
                }
            }
            _ => line.to_string(),
        };
        // The line keeps its own ending (a file may mix them); a last line without one gets
        // the file's newline.
        let own = &lines[i][strip_eol(&lines[i]).len()..];
        new_line.push_str(if own.is_empty() { nl } else { own });
        if lines[i] != new_line {
            lines[i] = new_line;
            msg = "line replaced";
        }
    } else if args.backrefs {
        // Nothing to do: without a regexp match the back-references cannot be filled.
    } else {
        let position = match &insert {
            Insert::Bof => Some(0),
            Insert::Eof => None,
            Insert::After(re) => find(&lines, re, args.firstmatch).map(|i| i + 1),
            Insert::Before(re) => find(&lines, re, args.firstmatch),
        };
        let new_line = format!("{line}{nl}");
        match position {
            Some(at) if at < lines.len() => lines.insert(at, new_line),
            _ => {
                terminate_last(&mut lines, nl);
                lines.push(new_line);
            }
        }
        msg = "line added";
    }

    let content: String = lines.concat();
    let changed = !msg.is_empty();
    Ok(Edit {
        content: if changed {
            content
        } else {
            original.to_string()
        },
        changed,
        msg: msg.to_string(),
    })
}

/// Index of the last (or first) line whose content matches `re`.
fn find(lines: &[String], re: &Regex, firstmatch: bool) -> Option<usize> {
    let mut hits = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| re.is_match(strip_eol(l)))
        .map(|(i, _)| i);
    if firstmatch {
        hits.next()
    } else {
        hits.next_back()
    }
}

fn absent(current: Option<&str>, args: &Args, regexp: Option<&Regex>) -> Result<Edit, String> {
    if args.backrefs {
        return Err("backrefs is only valid with state=present".into());
    }
    let (search, line) = (args.search_string.as_deref(), args.line.as_deref());
    if regexp.is_none() && search.is_none() && line.is_none() {
        return Err("one of line, search_string, or regexp is required with state=absent".into());
    }
    let Some(original) = current else {
        return Ok(Edit {
            content: String::new(),
            changed: false,
            msg: "file not present".into(),
        });
    };
    let matches = |l: &str| {
        let content = strip_eol(l);
        match (regexp, search, line) {
            (Some(re), _, _) => re.is_match(content),
            (None, Some(s), _) => content.contains(s),
            (None, None, Some(exact)) => content == exact,
            (None, None, None) => false,
        }
    };
    let lines = split_lines(original);
    let kept: Vec<&str> = lines.iter().copied().filter(|l| !matches(l)).collect();
    let removed = lines.len() - kept.len();
    Ok(Edit {
        content: kept.concat(),
        changed: removed > 0,
        msg: if removed > 0 {
            format!("{removed} line(s) removed")
        } else {
            String::new()
        },
    })
}

/// Expands a Python `re` replacement template (`match.expand`): `\1`..`\99`, `\g<1>`,
/// `\g<name>`, the escapes `\n \t \r \a \f \v \b \\`, and octal `\0`, `\0oo`.
/// Groups that did not participate expand to nothing; unknown groups or letter escapes fail.
fn expand(re: &Regex, caps: &Captures, template: &str) -> Result<String, String> {
    let group = |out: &mut String, name: &str| -> Result<(), String> {
        let value = if let Ok(n) = name.parse::<usize>() {
            if n >= re.captures_len() {
                return Err(format!("invalid group reference {n} in line '{template}'"));
            }
            caps.get(n)
        } else {
            if !re.capture_names().any(|c| c == Some(name)) {
                return Err(format!("unknown group name '{name}' in line '{template}'"));
            }
            caps.name(name)
        };
        out.push_str(value.map_or("", |m| m.as_str()));
        Ok(())
    };
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err(format!("bad escape (end of pattern) in line '{template}'"));
        };
        match e {
            'g' => {
                if chars.next() != Some('<') {
                    return Err(format!("missing < after \\g in line '{template}'"));
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(ch) => name.push(ch),
                        None => {
                            return Err(format!("missing > after \\g<{name} in line '{template}'"))
                        }
                    }
                }
                group(&mut out, &name)?;
            }
            '0' => {
                let mut code = 0u32;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            code = code * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(code).unwrap_or('\u{0}'));
            }
            '1'..='9' => {
                let mut name = e.to_string();
                if let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    name.push(*d);
                    chars.next();
                }
                group(&mut out, &name)?;
            }
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'b' => out.push('\u{8}'),
            '\\' => out.push('\\'),
            other if other.is_ascii_alphabetic() => {
                return Err(format!("bad escape \\{other} in line '{template}'"));
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// The `lineinfile` module: the editor above, applied to `path` on the host.
pub struct LineInFile;

const MODULE_ARGS: &[crate::modules::Arg] = {
    use crate::modules::{Arg, Kind};
    &[
        Arg::new("path", Kind::Str)
            .aliases(&["dest", "destfile", "name"])
            .required(),
        Arg::new("backup", Kind::Bool),
        Arg::new("regexp", Kind::Str).aliases(&["regex"]),
        Arg::new("search_string", Kind::Str),
        Arg::new("line", Kind::Str).aliases(&["value"]),
        Arg::new("state", Kind::Str).choices(&["present", "absent"]),
        Arg::new("insertafter", Kind::Str),
        Arg::new("insertbefore", Kind::Str),
        Arg::new("backrefs", Kind::Bool),
        Arg::new("firstmatch", Kind::Bool),
        Arg::new("create", Kind::Bool),
        crate::modules::args::FILE_ATTRS[0],
        crate::modules::args::FILE_ATTRS[1],
        crate::modules::args::FILE_ATTRS[2],
    ]
};

super::common::editor_module!(LineInFile, "lineinfile", MODULE_ARGS, CONTENT_ARGS, edit);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(json: &str) -> Args {
        serde_json::from_str(json).expect("valid args")
    }

    fn run(current: Option<&str>, json: &str) -> Edit {
        edit(current, &args(json)).expect("edit succeeds")
    }

    fn fails(current: Option<&str>, json: &str) -> String {
        edit(current, &args(json)).expect_err("edit fails")
    }

    fn assert_edit(e: &Edit, content: &str, changed: bool, msg: &str) {
        assert_eq!(e.content, content, "content");
        assert_eq!(e.changed, changed, "changed");
        assert_eq!(e.msg, msg, "msg");
    }

    /// Found by the lineinfile fuzz target: in a file whose lines end differently (a CRLF file
    /// with one LF line, or a last line ending in CR), the line already there was "replaced" by
    /// the same text with the file's newline on every run, and the run after changed it back.
    #[test]
    fn a_present_line_keeps_its_own_line_ending() {
        let e = run(Some("x\r\nssl = on\n"), r#"{"line": "ssl = on"}"#);
        assert_edit(&e, "x\r\nssl = on\n", false, "");
        let e = run(
            Some("a\nssl = off\r\n"),
            r#"{"line": "ssl = on", "regexp": "^ssl"}"#,
        );
        assert_edit(&e, "a\nssl = on\r\n", true, "line replaced");
        let first = run(Some("# Do not edit\r"), r#"{"line": ""}"#);
        assert!(first.changed);
        let second = run(Some(&first.content), r#"{"line": ""}"#);
        assert_edit(&second, &first.content, false, "");
    }

    // ---- argument handling ----

    #[test]
    fn aliases_and_unknown_fields() {
        let a = args(r#"{"regex":"^a","value":"a=1"}"#);
        assert_eq!(a.regexp.as_deref(), Some("^a"));
        assert_eq!(a.line.as_deref(), Some("a=1"));
        assert!(serde_json::from_str::<Args>(r#"{"line":"a","path":"/x"}"#).is_err());
        assert!(serde_json::from_str::<Args>(r#"{"line":"a","state":"gone"}"#).is_err());
        let a = args(r#"{"line":5,"create":"yes","backrefs":"no","regexp":"5"}"#);
        assert_eq!(a.line.as_deref(), Some("5"));
        assert!(a.create);
        assert!(!a.backrefs);
    }

    #[test]
    fn content_args_are_all_accepted() {
        for name in CONTENT_ARGS {
            let value = match *name {
                "state" => "\"present\"",
                "backrefs" | "firstmatch" | "create" => "true",
                _ => "\"x\"",
            };
            let json = format!("{{\"{name}\":{value}}}");
            assert!(
                serde_json::from_str::<Args>(&json).is_ok(),
                "{name} should be accepted"
            );
        }
    }

    #[test]
    fn missing_file_without_create_fails() {
        let err = fails(None, r#"{"line":"a"}"#);
        assert!(err.contains("does not exist"), "{err}");
        assert!(err.contains("create"), "{err}");
    }

    #[test]
    fn line_required_for_present() {
        assert_eq!(
            fails(Some(""), r#"{"regexp":"a"}"#),
            "line is required with state=present"
        );
    }

    #[test]
    fn backrefs_requires_regexp() {
        assert_eq!(
            fails(Some(""), r#"{"line":"a","backrefs":true}"#),
            "regexp is required with backrefs=true"
        );
    }

    #[test]
    fn backrefs_invalid_with_absent() {
        let err = fails(
            Some("a\n"),
            r#"{"regexp":"a","backrefs":true,"state":"absent"}"#,
        );
        assert!(err.contains("backrefs"), "{err}");
    }

    #[test]
    fn mutually_exclusive_parameters() {
        let err = fails(Some(""), r#"{"line":"a","regexp":"a","search_string":"a"}"#);
        assert!(err.contains("regexp|search_string"), "{err}");
        let err = fails(
            Some(""),
            r#"{"line":"a","insertafter":"a","insertbefore":"b"}"#,
        );
        assert!(err.contains("insertbefore|insertafter"), "{err}");
        let err = fails(
            Some(""),
            r#"{"line":"a","search_string":"a","backrefs":true}"#,
        );
        assert!(err.contains("backrefs|search_string"), "{err}");
    }

    #[test]
    fn absent_needs_something_to_match() {
        let err = fails(Some("a\n"), r#"{"state":"absent"}"#);
        assert_eq!(
            err,
            "one of line, search_string, or regexp is required with state=absent"
        );
    }

    #[test]
    fn invalid_regexes_are_named() {
        let err = fails(Some(""), r#"{"line":"a","regexp":"(a"}"#);
        assert!(err.contains("regexp") && err.contains("'(a'"), "{err}");
        let err = fails(Some(""), r#"{"line":"a","insertafter":"[z"}"#);
        assert!(err.contains("insertafter") && err.contains("'[z'"), "{err}");
        let err = fails(Some(""), r#"{"line":"a","insertbefore":"(?<=x)y"}"#);
        assert!(err.contains("insertbefore"), "{err}");
    }

    // ---- present: appending / creating ----

    #[test]
    fn creates_missing_file() {
        let e = run(None, r#"{"line":"hello","create":true}"#);
        assert_edit(&e, "hello\n", true, "line added");
    }

    #[test]
    fn appends_to_empty_file() {
        let e = run(Some(""), r#"{"line":"hello"}"#);
        assert_edit(&e, "hello\n", true, "line added");
    }

    #[test]
    fn appends_at_eof_by_default() {
        let e = run(Some("a\nb\n"), r#"{"line":"c"}"#);
        assert_edit(&e, "a\nb\nc\n", true, "line added");
    }

    #[test]
    fn adds_missing_trailing_newline_before_appending() {
        let e = run(Some("a\nb"), r#"{"line":"c"}"#);
        assert_edit(&e, "a\nb\nc\n", true, "line added");
    }

    #[test]
    fn existing_line_is_unchanged() {
        let e = run(Some("a\nb\nc\n"), r#"{"line":"b"}"#);
        assert_edit(&e, "a\nb\nc\n", false, "");
    }

    #[test]
    fn existing_line_without_trailing_newline_gets_one() {
        // Ansible rewrites the matched line with a line separator.
        let e = run(Some("a\nb"), r#"{"line":"b"}"#);
        assert_edit(&e, "a\nb\n", true, "line replaced");
    }

    #[test]
    fn crlf_file_stays_crlf() {
        let e = run(Some("a\r\nb\r\n"), r#"{"line":"c"}"#);
        assert_edit(&e, "a\r\nb\r\nc\r\n", true, "line added");
        let e = run(Some("a\r\nb"), r#"{"line":"c"}"#);
        assert_edit(&e, "a\r\nb\r\nc\r\n", true, "line added");
        let e = run(Some("a\r\nb\r\n"), r#"{"line":"b"}"#);
        assert_edit(&e, "a\r\nb\r\n", false, "");
        let e = run(Some("x=1\r\ny=2\r\n"), r#"{"regexp":"^x=","line":"x=3"}"#);
        assert_edit(&e, "x=3\r\ny=2\r\n", true, "line replaced");
    }

    // ---- present: regexp ----

    #[test]
    fn regexp_replaces_last_match() {
        let e = run(Some("x=1\ny=2\nx=3\n"), r#"{"regexp":"^x=","line":"x=9"}"#);
        assert_edit(&e, "x=1\ny=2\nx=9\n", true, "line replaced");
    }

    #[test]
    fn regexp_firstmatch_replaces_first_match() {
        let e = run(
            Some("x=1\ny=2\nx=3\n"),
            r#"{"regexp":"^x=","line":"x=9","firstmatch":true}"#,
        );
        assert_edit(&e, "x=9\ny=2\nx=3\n", true, "line replaced");
    }

    #[test]
    fn regexp_is_an_unanchored_search() {
        let e = run(
            Some("# SELINUX=enforcing\nfoo\n"),
            r#"{"regexp":"SELINUX=","line":"SELINUX=disabled"}"#,
        );
        assert_edit(&e, "SELINUX=disabled\nfoo\n", true, "line replaced");
    }

    #[test]
    fn regexp_match_already_correct_is_unchanged() {
        let e = run(Some("x=9\n"), r#"{"regexp":"^x=","line":"x=9"}"#);
        assert_edit(&e, "x=9\n", false, "");
    }

    #[test]
    fn regexp_dollar_matches_end_of_line() {
        let e = run(Some("a 1\nb\n"), r#"{"regexp":"1$","line":"a 2"}"#);
        assert_edit(&e, "a 2\nb\n", true, "line replaced");
        let e = run(Some("a 1\r\nb\r\n"), r#"{"regexp":"1$","line":"a 2"}"#);
        assert_edit(&e, "a 2\r\nb\r\n", true, "line replaced");
    }

    #[test]
    fn regexp_without_match_appends() {
        let e = run(Some("a\n"), r#"{"regexp":"^x=","line":"x=1"}"#);
        assert_edit(&e, "a\nx=1\n", true, "line added");
    }

    #[test]
    fn regexp_without_match_but_exact_line_present_is_unchanged() {
        let e = run(Some("x=1\nb\n"), r#"{"regexp":"^nomatch","line":"x=1"}"#);
        assert_edit(&e, "x=1\nb\n", false, "");
    }

    #[test]
    fn regexp_match_wins_over_insertafter() {
        let e = run(
            Some("a\nx=1\nb\n"),
            r#"{"regexp":"^x=","line":"x=2","insertafter":"^a"}"#,
        );
        assert_edit(&e, "a\nx=2\nb\n", true, "line replaced");
    }

    #[test]
    fn duplicates_of_the_line_are_left_alone() {
        let e = run(Some("a\na\n"), r#"{"line":"a"}"#);
        assert_edit(&e, "a\na\n", false, "");
        let e = run(Some("x=1\nx=1\n"), r#"{"regexp":"^x=","line":"x=2"}"#);
        assert_edit(&e, "x=1\nx=2\n", true, "line replaced");
    }

    #[test]
    fn empty_regexp_matches_every_line() {
        let e = run(Some("a\nb\n"), r#"{"regexp":"","line":"z"}"#);
        assert_edit(&e, "a\nz\n", true, "line replaced");
    }

    // ---- present: search_string ----

    #[test]
    fn search_string_replaces_last_line_containing_it() {
        let e = run(
            Some("Listen 80\nfoo\nListen 8080\n"),
            r#"{"search_string":"Listen ","line":"Listen 443"}"#,
        );
        assert_edit(&e, "Listen 80\nfoo\nListen 443\n", true, "line replaced");
    }

    #[test]
    fn search_string_is_literal() {
        let e = run(
            Some("a.b\naxb\n"),
            r#"{"search_string":"a.b","line":"c","firstmatch":true}"#,
        );
        assert_edit(&e, "c\naxb\n", true, "line replaced");
        let e = run(Some("axb\n"), r#"{"search_string":"a.b","line":"c"}"#);
        assert_edit(&e, "axb\nc\n", true, "line added");
    }

    // ---- present: insertafter / insertbefore ----

    #[test]
    fn insertafter_last_match() {
        let e = run(
            Some("[a]\nx\n[a]\ny\n"),
            r#"{"line":"new","insertafter":"^\\[a\\]"}"#,
        );
        assert_edit(&e, "[a]\nx\n[a]\nnew\ny\n", true, "line added");
    }

    #[test]
    fn insertafter_firstmatch() {
        let e = run(
            Some("[a]\nx\n[a]\ny\n"),
            r#"{"line":"new","insertafter":"^\\[a\\]","firstmatch":true}"#,
        );
        assert_edit(&e, "[a]\nnew\nx\n[a]\ny\n", true, "line added");
    }

    #[test]
    fn insertafter_match_on_last_line() {
        let e = run(Some("a\nb\n"), r#"{"line":"new","insertafter":"^b"}"#);
        assert_edit(&e, "a\nb\nnew\n", true, "line added");
        let e = run(Some("a\nb"), r#"{"line":"new","insertafter":"^b"}"#);
        assert_edit(&e, "a\nb\nnew\n", true, "line added");
    }

    #[test]
    fn insertafter_no_match_falls_back_to_eof() {
        let e = run(Some("a\nb\n"), r#"{"line":"new","insertafter":"^zzz"}"#);
        assert_edit(&e, "a\nb\nnew\n", true, "line added");
    }

    #[test]
    fn insertafter_eof_and_bof() {
        let e = run(Some("a\n"), r#"{"line":"new","insertafter":"EOF"}"#);
        assert_edit(&e, "a\nnew\n", true, "line added");
        let e = run(Some("a\n"), r#"{"line":"new","insertafter":"BOF"}"#);
        assert_edit(&e, "new\na\n", true, "line added");
    }

    #[test]
    fn insertbefore_last_match() {
        let e = run(
            Some("a\nx\nb\nx\n"),
            r#"{"line":"new","insertbefore":"^x"}"#,
        );
        assert_edit(&e, "a\nx\nb\nnew\nx\n", true, "line added");
    }

    #[test]
    fn insertbefore_firstmatch() {
        let e = run(
            Some("a\nx\nb\nx\n"),
            r#"{"line":"new","insertbefore":"^x","firstmatch":true}"#,
        );
        assert_edit(&e, "a\nnew\nx\nb\nx\n", true, "line added");
    }

    #[test]
    fn insertbefore_first_line() {
        let e = run(Some("x\na\n"), r#"{"line":"new","insertbefore":"^x"}"#);
        assert_edit(&e, "new\nx\na\n", true, "line added");
    }

    #[test]
    fn insertbefore_no_match_falls_back_to_eof() {
        let e = run(Some("a\nb"), r#"{"line":"new","insertbefore":"^zzz"}"#);
        assert_edit(&e, "a\nb\nnew\n", true, "line added");
    }

    #[test]
    fn insertbefore_bof() {
        let e = run(Some("a\nb\n"), r#"{"line":"new","insertbefore":"BOF"}"#);
        assert_edit(&e, "new\na\nb\n", true, "line added");
        let e = run(Some(""), r#"{"line":"new","insertbefore":"BOF"}"#);
        assert_edit(&e, "new\n", true, "line added");
        let e = run(None, r#"{"line":"new","insertbefore":"BOF","create":true}"#);
        assert_edit(&e, "new\n", true, "line added");
    }

    #[test]
    fn insert_is_skipped_when_line_exists_elsewhere() {
        let e = run(Some("new\na\nb\n"), r#"{"line":"new","insertafter":"^b"}"#);
        assert_edit(&e, "new\na\nb\n", false, "");
        let e = run(
            Some("a\nb\nnew\n"),
            r#"{"line":"new","insertbefore":"BOF"}"#,
        );
        assert_edit(&e, "a\nb\nnew\n", false, "");
    }

    #[test]
    fn docs_example_insert_after_listen() {
        let e = run(
            Some("#Listen 12345\nListen 80\n"),
            r#"{"regexp":"^Listen ","insertafter":"^#Listen ","line":"Listen 8080"}"#,
        );
        assert_edit(&e, "#Listen 12345\nListen 8080\n", true, "line replaced");
        let e = run(
            Some("#Listen 12345\nfoo\n"),
            r#"{"regexp":"^Listen ","insertafter":"^#Listen ","line":"Listen 8080"}"#,
        );
        assert_edit(&e, "#Listen 12345\nListen 8080\nfoo\n", true, "line added");
    }

    #[test]
    fn docs_example_insert_before_include() {
        let e = run(
            Some("foo\nInclude x\n"),
            r#"{"regexp":"^#?LoadModule ssl","insertbefore":"^Include","line":"LoadModule ssl"}"#,
        );
        assert_edit(&e, "foo\nLoadModule ssl\nInclude x\n", true, "line added");
    }

    // ---- present: backrefs ----

    #[test]
    fn backrefs_expand_numbered_and_g_groups() {
        let e = run(
            Some("host=old\nother\n"),
            r#"{"regexp":"^(host=).*","line":"\\g<1>new","backrefs":true}"#,
        );
        assert_edit(&e, "host=new\nother\n", true, "line replaced");
        let e = run(
            Some("key: a b\n"),
            r#"{"regexp":"^(\\w+): (\\w) (\\w)","line":"\\1=\\3\\2","backrefs":true}"#,
        );
        assert_edit(&e, "key=ba\n", true, "line replaced");
    }

    #[test]
    fn backrefs_named_groups() {
        let e = run(
            Some("port 80\n"),
            r#"{"regexp":"^port (?P<num>\\d+)","line":"listen \\g<num>","backrefs":true}"#,
        );
        assert_edit(&e, "listen 80\n", true, "line replaced");
    }

    #[test]
    fn backrefs_no_match_does_nothing() {
        let e = run(
            Some("a\nb"),
            r#"{"regexp":"^(zzz)","line":"\\1","backrefs":true}"#,
        );
        assert_edit(&e, "a\nb", false, "");
        let e = run(
            Some("a\n"),
            r#"{"regexp":"^(zzz)","line":"x","backrefs":true,"insertbefore":"BOF"}"#,
        );
        assert_edit(&e, "a\n", false, "");
    }

    #[test]
    fn backrefs_missing_file_with_create_does_not_create() {
        let e = run(
            None,
            r#"{"regexp":"^(a)","line":"\\1","backrefs":true,"create":true}"#,
        );
        assert!(!e.changed);
    }

    #[test]
    fn backrefs_idempotent_and_literal_without_backrefs() {
        let e = run(
            Some("host=new\n"),
            r#"{"regexp":"^(host=).*","line":"\\g<1>new","backrefs":true}"#,
        );
        assert_edit(&e, "host=new\n", false, "");
        // Without backrefs the line is written verbatim.
        let e = run(Some("host=x\n"), r#"{"regexp":"^(host=).*","line":"\\1y"}"#);
        assert_edit(&e, "\\1y\n", true, "line replaced");
    }

    #[test]
    fn backrefs_template_escapes() {
        let re = Regex::new(r"^(a)(b)?(?P<c>c)?").unwrap();
        let caps = re.captures("a").unwrap();
        assert_eq!(expand(&re, &caps, r"\1-\2-\g<c>").unwrap(), "a--");
        assert_eq!(expand(&re, &caps, r"x\\y\tz").unwrap(), "x\\y\tz");
        assert_eq!(expand(&re, &caps, r"\.").unwrap(), "\\.");
        assert_eq!(expand(&re, &caps, r"\0101").unwrap(), "\u{8}1");
        assert_eq!(expand(&re, &caps, r"\0").unwrap(), "\u{0}");
        assert!(expand(&re, &caps, r"\9")
            .unwrap_err()
            .contains("invalid group"));
        assert!(expand(&re, &caps, r"\g<nope>")
            .unwrap_err()
            .contains("nope"));
        assert!(expand(&re, &caps, r"\q")
            .unwrap_err()
            .contains("bad escape"));
        assert!(expand(&re, &caps, "x\\").is_err());
        assert!(expand(&re, &caps, r"\g<1").is_err());
        assert!(expand(&re, &caps, r"\gx").is_err());
    }

    #[test]
    fn backrefs_invalid_group_is_an_error() {
        let err = fails(
            Some("a\n"),
            r#"{"regexp":"^(a)","line":"\\2","backrefs":true}"#,
        );
        assert!(err.contains("invalid group reference 2"), "{err}");
    }

    // ---- absent ----

    #[test]
    fn absent_missing_file() {
        let e = run(None, r#"{"line":"a","state":"absent"}"#);
        assert_edit(&e, "", false, "file not present");
    }

    #[test]
    fn absent_removes_all_exact_lines() {
        let e = run(Some("a\nb\na\nab\n"), r#"{"line":"a","state":"absent"}"#);
        assert_edit(&e, "b\nab\n", true, "2 line(s) removed");
    }

    #[test]
    fn absent_removes_all_regexp_matches() {
        let e = run(
            Some("x=1\ny\nx=2\n"),
            r#"{"regexp":"^x=","state":"absent"}"#,
        );
        assert_edit(&e, "y\n", true, "2 line(s) removed");
    }

    #[test]
    fn absent_regexp_takes_precedence_over_line() {
        let e = run(
            Some("x=1\ny\n"),
            r#"{"regexp":"^x=","line":"y","state":"absent"}"#,
        );
        assert_edit(&e, "y\n", true, "1 line(s) removed");
    }

    #[test]
    fn absent_search_string() {
        let e = run(
            Some("a.b\naxb\n"),
            r#"{"search_string":"a.b","state":"absent"}"#,
        );
        assert_edit(&e, "axb\n", true, "1 line(s) removed");
    }

    #[test]
    fn absent_nothing_matches() {
        let e = run(Some("a\nb"), r#"{"line":"c","state":"absent"}"#);
        assert_edit(&e, "a\nb", false, "");
    }

    #[test]
    fn absent_last_line_without_newline_and_crlf() {
        let e = run(Some("a\nb"), r#"{"line":"b","state":"absent"}"#);
        assert_edit(&e, "a\n", true, "1 line(s) removed");
        let e = run(Some("a\r\nb\r\n"), r#"{"line":"a","state":"absent"}"#);
        assert_edit(&e, "b\r\n", true, "1 line(s) removed");
    }

    // ---- properties ----

    fn file_strategy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(
                prop::sample::select(vec!["a", "b", "x=1", "x=2", "# x=0", "", "y=3"]),
                0..6,
            ),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(lines, crlf, trailing)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut text = lines.join(nl);
                if trailing && !lines.is_empty() {
                    text.push_str(nl);
                }
                text
            })
    }

    fn args_strategy() -> impl Strategy<Value = Args> {
        (
            prop::sample::select(vec!["x=5", "a", "b", "new", "x=1"]),
            0..4u8,
            0..6u8,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(line, matcher, insert, firstmatch, absent)| {
                let key = line.split('=').next().unwrap_or(line);
                let mut a = Args {
                    line: Some(line.to_string()),
                    firstmatch,
                    create: true,
                    ..Args::default()
                };
                match matcher {
                    1 => a.regexp = Some(format!("^{}", regex::escape(key))),
                    2 => a.search_string = Some(key.to_string()),
                    3 if line.contains('=') => {
                        a.regexp = Some("^(x=).*".to_string());
                        a.line = Some(format!("\\g<1>{}", &line[2..]));
                        a.backrefs = true;
                    }
                    _ => {}
                }
                match insert {
                    1 => a.insertafter = Some("^a".into()),
                    2 => a.insertbefore = Some("^b".into()),
                    3 => a.insertafter = Some("BOF".into()),
                    4 => a.insertbefore = Some("BOF".into()),
                    5 => a.insertafter = Some("EOF".into()),
                    _ => {}
                }
                if absent {
                    a.state = State::Absent;
                    a.backrefs = false;
                }
                a
            })
    }

    proptest! {
        #[test]
        fn prop_idempotent(file in file_strategy(), a in args_strategy()) {
            let first = edit(Some(&file), &a).unwrap();
            let second = edit(Some(&first.content), &a).unwrap();
            prop_assert!(!second.changed, "second run changed: {:?} -> {:?}", first, second);
            prop_assert_eq!(&second.content, &first.content);
        }

        #[test]
        fn prop_changed_iff_content_differs(file in file_strategy(), a in args_strategy()) {
            let e = edit(Some(&file), &a).unwrap();
            prop_assert_eq!(e.changed, e.content != file);
        }

        #[test]
        fn prop_present_line_ends_up_in_file(file in file_strategy(), a in args_strategy()) {
            if a.backrefs {
                return Ok(());
            }
            let a = Args { state: State::Present, ..a };
            let e = edit(Some(&file), &a).unwrap();
            let line = a.line.clone().unwrap_or_default();
            prop_assert!(e.content.lines().any(|l| l.trim_end_matches('\r') == line));
        }

        #[test]
        fn prop_absent_removes_every_occurrence(file in file_strategy(), a in args_strategy()) {
            let a = Args { state: State::Absent, regexp: None, search_string: None, backrefs: false, ..a };
            let e = edit(Some(&file), &a).unwrap();
            let line = a.line.clone().unwrap_or_default();
            prop_assert!(!e.content.lines().any(|l| l.trim_end_matches('\r') == line));
        }
    }
}
