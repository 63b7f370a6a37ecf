//! `ini_file`: manage individual options (and whole sections) of an INI-style file.
//!
//! Mirrors `community.general.ini_file`: comments (`#`, `;`) and order are kept; a missing section
//! is appended at the end; a missing option is added at the end of its section, before trailing
//! blank and comment lines; options before the first section are addressed with no `section`;
//! `state: absent` without `option` removes the section. Commented-out assignments
//! (`# opt = x`) are reused when `modify_inactive_option` is on (the default), but comment lines
//! that merely mention the option name (no `=`) are never touched.

use regex::Regex;
use serde::Deserialize;

use super::{lenient, State};
use crate::modules::edit::Edit;
use crate::text::{newline_of, split_lines, strip_eol};

/// Argument names accepted by [`Args`].
pub const CONTENT_ARGS: &[&str] = &[
    "section",
    "section_has_values",
    "option",
    "value",
    "values",
    "state",
    "exclusive",
    "no_extra_spaces",
    "ignore_spaces",
    "allow_no_value",
    "modify_inactive_option",
    "create",
];

fn yes() -> bool {
    true
}

/// One `section_has_values` condition: the section must contain `option` (with one of `values`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionHasValue {
    #[serde(deserialize_with = "lenient::string")]
    pub option: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    pub values: Option<Vec<String>>,
}

impl SectionHasValue {
    /// `value: v` is `values: [v]`; neither means "any value". Leading blanks are dropped,
    /// as when the value is read back (see [`read_value`]).
    fn wanted(&self) -> Vec<String> {
        match (&self.value, &self.values) {
            (Some(v), _) => vec![read_value(v).to_string()],
            (None, Some(vs)) => vs.iter().map(|v| read_value(v).to_string()).collect(),
            (None, None) => Vec::new(),
        }
    }
}

/// A value as it reads back from `option = value`: without its leading blanks (the matcher,
/// like every INI reader, skips them). Values are written and compared in this form, so that
/// `"  x"` is found again after it was written.
fn read_value(v: &str) -> &str {
    v.trim_start_matches([' ', '\t'])
}

/// The content arguments of `ini_file`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Section name; `None` (or empty) addresses the options before the first section.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub section: Option<String>,
    /// Among same-named sections, select the first one containing these options/values.
    #[serde(default)]
    pub section_has_values: Option<Vec<SectionHasValue>>,
    /// Option name; may be omitted to add/remove a whole section.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub option: Option<String>,
    /// Single value (mutually exclusive with `values`).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub value: Option<String>,
    /// Multiple values of a multi-valued option (mutually exclusive with `value`).
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    pub values: Option<Vec<String>>,
    /// `present` (default) or `absent`.
    #[serde(default)]
    pub state: State,
    /// Replace/remove all occurrences of `option` (default), or only the given values.
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub exclusive: bool,
    /// Write `option=value` instead of `option = value`.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub no_extra_spaces: bool,
    /// Leave a line alone if only the spacing around `=` differs.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub ignore_spaces: bool,
    /// Allow options without `=` and value.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub allow_no_value: bool,
    /// Reuse a commented-out `#option = value` line (default true).
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub modify_inactive_option: bool,
    /// Create the file when missing (default true).
    #[serde(default = "yes", deserialize_with = "lenient::bool")]
    pub create: bool,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            section: None,
            section_has_values: None,
            option: None,
            value: None,
            values: None,
            state: State::Present,
            exclusive: true,
            no_extra_spaces: false,
            ignore_spaces: false,
            allow_no_value: false,
            modify_inactive_option: true,
            create: true,
        }
    }
}

/// Name of the sentinel section standing for "before the first section" (as in Ansible).
const TOP: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";

/// An option line, possibly commented out.
struct OptLine {
    commented: bool,
    has_eq: bool,
    value: String,
}

/// Matches `[ws][#;][ws]option[ws](=|end)[ws]value` at the start of lines.
struct OptMatcher(Regex);

impl OptMatcher {
    fn new(option: &str) -> Result<Self, String> {
        let pattern = format!(
            r"^[ \t]*([#;]?)[ \t]*{}[ \t]*(=|$)[ \t]*(.*)",
            regex::escape(option)
        );
        Regex::new(&pattern)
            .map(OptMatcher)
            .map_err(|e| format!("cannot match option '{option}': {e}"))
    }

    /// Any line for the option, active or commented (Ansible's `match_opt`).
    fn any(&self, line: &str) -> Option<OptLine> {
        let caps = self.0.captures(line)?;
        let group = |i| caps.get(i).map_or("", |m| m.as_str());
        Some(OptLine {
            commented: !group(1).is_empty(),
            has_eq: group(2) == "=",
            value: group(3).to_string(),
        })
    }

    /// An active (not commented) line for the option (Ansible's `match_active_opt`).
    fn active(&self, line: &str) -> Option<OptLine> {
        self.any(line).filter(|m| !m.commented)
    }

    /// A line that may be rewritten: active, or a commented-out assignment when
    /// `modify_inactive` (comment lines without `=` are documentation, never options).
    fn editable(&self, line: &str, modify_inactive: bool) -> Option<OptLine> {
        self.any(line)
            .filter(|m| !m.commented || (modify_inactive && m.has_eq))
    }
}

/// Blank line or comment line.
fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.is_empty() || t.starts_with('#') || t.starts_with(';')
}

/// Working state while editing the lines of the selected section.
struct Section<'a> {
    lines: Vec<String>,
    touched: Vec<bool>,
    changed: bool,
    msg: &'static str,
    args: &'a Args,
}

impl Section<'_> {
    /// Rewrites line `index` to `new_line` (Ansible's `update_section_line`).
    fn update(&mut self, matcher: &OptMatcher, index: usize, new_line: String) {
        let mut differs = None;
        if self.args.ignore_spaces {
            if let Some(old) = matcher.any(&self.lines[index]).filter(|m| !m.commented) {
                if let Some(new) = matcher.any(&new_line) {
                    differs = Some(old.value != new.value);
                }
            }
        }
        if differs.unwrap_or(self.lines[index] != new_line) {
            self.lines[index] = new_line;
            self.changed = true;
            self.msg = "option changed";
        }
        self.touched[index] = true;
    }
}

/// Section and option names and values each end up on one line of the file: a line break
/// would split them (a header never found again, or a line of its own nobody asked for); an
/// option name starting with `[`, `#` or `;` would read as a header or a comment.
fn check_one_line(args: &Args) -> Result<(), String> {
    let mut texts: Vec<(&str, &str)> = Vec::new();
    for (what, v) in [
        ("section", &args.section),
        ("option", &args.option),
        ("value", &args.value),
    ] {
        texts.extend(v.as_deref().map(|v| (what, v)));
    }
    texts.extend(args.values.iter().flatten().map(|v| ("values", v.as_str())));
    for c in args.section_has_values.iter().flatten() {
        texts.push(("section_has_values", c.option.as_str()));
        let values = c.value.iter().chain(c.values.iter().flatten());
        texts.extend(values.map(|v| ("section_has_values", v.as_str())));
    }
    let names = args
        .option
        .iter()
        .chain(args.section_has_values.iter().flatten().map(|c| &c.option));
    for name in names {
        if name
            .trim_start_matches([' ', '\t'])
            .starts_with(['[', '#', ';'])
        {
            return Err(format!(
                "option {name:?} would read as a section header or a comment: an option name cannot start with '[', '#' or ';'"
            ));
        }
    }
    match texts.iter().find(|(_, t)| t.contains(['\n', '\r'])) {
        Some((what, text)) => Err(format!(
            "{what} {text:?} contains a line break: an INI file holds it on one line"
        )),
        None => Ok(()),
    }
}

/// Applies `args` to `current` (`None`: the file does not exist).
pub fn edit(current: Option<&str>, args: &Args) -> Result<Edit, String> {
    if args.value.is_some() && args.values.is_some() {
        return Err("parameters are mutually exclusive: value|values".into());
    }
    check_one_line(args)?;
    let present = args.state == State::Present;
    let no_values = args.values.as_ref().is_none_or(|v| v.is_empty());
    if present && !args.allow_no_value && args.value.is_none() && no_values {
        return Err(
            "Parameter 'value(s)' must be defined if state=present and allow_no_value=False."
                .into(),
        );
    }
    let original = match current {
        Some(text) => text,
        None if args.create => "",
        None => return Err("file does not exist (set create: true to create it)".into()),
    };

    // Values, deduplicated in order.
    let mut values: Vec<String> = Vec::new();
    let given = match (&args.value, &args.values) {
        (Some(v), _) => std::slice::from_ref(v),
        (None, Some(vs)) => vs.as_slice(),
        (None, None) => &[],
    };
    for v in given.iter().map(|v| read_value(v)) {
        if !values.iter().any(|have| have == v) {
            values.push(v.to_string());
        }
    }
    let option = args.option.as_deref().filter(|o| !o.is_empty());
    let matcher = option.map(OptMatcher::new).transpose()?;
    let conditions: Vec<(OptMatcher, &SectionHasValue, Vec<String>)> = args
        .section_has_values
        .iter()
        .flatten()
        .map(|c| Ok((OptMatcher::new(&c.option)?, c, c.wanted())))
        .collect::<Result<_, String>>()?;

    // Like Ansible, read as text without BOM; the BOM is dropped if the file is rewritten.
    let body = original.strip_prefix('\u{feff}').unwrap_or(original);
    let nl = newline_of(body);
    let mut changed = false;
    let mut lines: Vec<String> = split_lines(body)
        .into_iter()
        .map(|l| strip_eol(l).to_string())
        .collect();
    if lines.is_empty() {
        lines.push(String::new());
    } else if !body.ends_with('\n') {
        changed = true;
    }
    lines.insert(0, format!("[{TOP}]"));
    lines.push("[".into());

    let section = args
        .section
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(TOP);
    let header = Regex::new(&format!(r"^\[\s*{}\s*]", regex::escape(section.trim())))
        .map_err(|e| format!("cannot match section '{section}': {e}"))?;
    let has_values = |section_lines: &[String]| {
        conditions.iter().all(|(m, _, wanted)| {
            section_lines.iter().any(|l| {
                m.any(l)
                    .is_some_and(|o| wanted.is_empty() || wanted.contains(&o.value))
            })
        })
    };

    // Locate the (first suitable) section: [start, end).
    let (mut within, mut start, mut end) = (false, 0, 0);
    for (index, line) in lines.iter().enumerate() {
        if within && line.starts_with('[') {
            if has_values(&lines[start..index]) {
                end = index;
                break;
            }
            within = false;
            start = 0;
        }
        if header.is_match(line) {
            within = true;
            start = index;
        }
    }
    if !within {
        start = 0;
        end = 0;
    }
    let after = lines.split_off(end);
    let section_lines = lines.split_off(start);
    let before = lines;

    let mut sec = Section {
        touched: vec![false; section_lines.len()],
        lines: section_lines,
        changed,
        msg: "OK",
        args,
    };
    let assign = |o: &str, v: &str| {
        if args.no_extra_spaces {
            format!("{o}={v}")
        } else {
            format!("{o} = {v}")
        }
    };
    let inactive = args.modify_inactive_option;
    let mut no_value_present = false;

    if present {
        if let (Some(option), Some(m)) = (option, &matcher) {
            // 1. Lines already holding one of the wanted values.
            for index in 0..sec.lines.len() {
                let Some(found) = m.editable(&sec.lines[index], inactive) else {
                    continue;
                };
                if !values.is_empty() && values.contains(&found.value) {
                    // Ansible rewrites `option =` to a bare `option` here, but writes `option = `
                    // when adding the same value: we keep whichever form is there instead.
                    let new_line = if found.value.is_empty() && args.allow_no_value && !found.has_eq
                    {
                        no_value_present = true;
                        option.to_string()
                    } else {
                        assign(option, &found.value)
                    };
                    sec.update(m, index, new_line);
                    values.retain(|v| *v != found.value);
                } else if given.is_empty() && args.allow_no_value {
                    // (Ansible also gets here once all requested values were found, turning
                    // one more `option = x` line into a bare `option` on every run.)
                    sec.update(m, index, option.to_string());
                    no_value_present = true;
                    break;
                }
            }
            if args.exclusive && !args.allow_no_value {
                // 2. Reuse the other lines of the option for the remaining values.
                if !values.is_empty() {
                    for index in 0..sec.lines.len() {
                        if !sec.touched[index] && m.editable(&sec.lines[index], inactive).is_some()
                        {
                            let value = values.remove(0);
                            sec.update(m, index, assign(option, &value));
                            if values.is_empty() {
                                break;
                            }
                        }
                    }
                }
                // 3. Drop the remaining occurrences (never the section header).
                for index in (1..sec.lines.len()).rev() {
                    if !sec.touched[index] && m.editable(&sec.lines[index], inactive).is_some() {
                        sec.lines.remove(index);
                        sec.touched.remove(index);
                        sec.changed = true;
                        sec.msg = "option changed";
                    }
                }
            }
        }
        // 4. Add what is missing after the last line that is neither blank nor a comment.
        if let Some(index) = sec.lines.iter().rposition(|l| !is_blank_or_comment(l)) {
            let at = index + 1;
            if let Some(option) = option {
                let new: Vec<String> = if !values.is_empty() {
                    values.iter().map(|v| assign(option, v)).collect()
                } else if args.allow_no_value && !no_value_present && given.is_empty() {
                    // Ansible also adds a bare `option` when all requested values were found,
                    // which makes `allow_no_value` + `value` non-idempotent; we do not.
                    vec![option.to_string()]
                } else {
                    Vec::new()
                };
                if !new.is_empty() {
                    sec.lines.splice(at..at, new);
                    sec.changed = true;
                    sec.msg = "option added";
                }
            }
        }
    } else if let Some(m) = &matcher {
        let keep = |l: &String| match m.active(l) {
            Some(_) if args.exclusive => false,
            Some(found) if !values.is_empty() => !values.contains(&found.value),
            _ => true,
        };
        if args.exclusive || !values.is_empty() {
            let kept: Vec<String> = sec.lines.iter().filter(|l| keep(l)).cloned().collect();
            if kept.len() != sec.lines.len() {
                sec.lines = kept;
                sec.changed = true;
                sec.msg = "option changed";
            }
        }
    } else if section == TOP {
        // Remove the options before the first section; the sentinel header stays.
        if sec.lines.len() > 1 {
            sec.lines.truncate(1);
            sec.changed = true;
            sec.msg = "section removed";
        }
    } else if !sec.lines.is_empty() {
        sec.lines.clear();
        sec.changed = true;
        sec.msg = "section removed";
    }

    let (mut changed, mut msg) = (sec.changed, sec.msg);
    let mut lines = before;
    lines.extend(sec.lines);
    lines.extend(after);
    lines.remove(0);
    lines.pop();

    if !within && present {
        lines.push(format!("[{section}]"));
        msg = "section and option added";
        for (_, cond, wanted) in &conditions {
            if Some(cond.option.as_str()) != option {
                if !wanted.is_empty() {
                    lines.extend(wanted.iter().map(|v| assign(&cond.option, v)));
                } else if args.allow_no_value {
                    lines.push(cond.option.clone());
                }
            } else if !args.exclusive {
                for v in wanted {
                    if !values.contains(v) {
                        values.push(v.clone());
                    }
                }
            }
        }
        match option {
            Some(option) if !values.is_empty() => {
                lines.extend(values.iter().map(|v| assign(option, v)));
            }
            Some(option) if args.allow_no_value => lines.push(option.to_string()),
            _ => msg = "only section added",
        }
        changed = true;
    }

    // A new or empty file does not start with a blank line (community.general#6297 calls
    // Ansible's leading blank line a bug; we don't reproduce it).
    if original.trim().is_empty() && lines.len() > 1 && lines.first().is_some_and(String::is_empty)
    {
        lines.remove(0);
    }
    let content: String = lines.iter().map(|l| format!("{l}{nl}")).collect();
    // An empty file is edited as a single blank line: removing that line changes nothing.
    let changed = changed && content != original;
    Ok(Edit {
        content: if changed {
            content
        } else {
            original.to_string()
        },
        changed,
        msg: if changed { msg } else { "OK" }.to_string(),
    })
}

/// The `ini_file` module: the editor above, applied to `path` on the host.
pub struct IniFile;

const MODULE_ARGS: &[crate::modules::Arg] = {
    use crate::modules::{Arg, Kind};
    &[
        Arg::new("path", Kind::Str)
            .aliases(&["dest", "destfile", "name"])
            .required(),
        Arg::new("backup", Kind::Bool),
        Arg::new("section", Kind::Str),
        Arg::new("section_has_values", Kind::Raw),
        Arg::new("option", Kind::Str).aliases(&["key"]),
        Arg::new("value", Kind::Str),
        Arg::new("values", Kind::List),
        Arg::new("state", Kind::Str).choices(&["present", "absent"]),
        Arg::new("exclusive", Kind::Bool),
        Arg::new("no_extra_spaces", Kind::Bool),
        Arg::new("ignore_spaces", Kind::Bool),
        Arg::new("allow_no_value", Kind::Bool),
        Arg::new("modify_inactive_option", Kind::Bool),
        Arg::new("create", Kind::Bool),
        Arg::new("follow", Kind::Bool),
        crate::modules::args::FILE_ATTRS[0],
        crate::modules::args::FILE_ATTRS[1],
        crate::modules::args::FILE_ATTRS[2],
    ]
};

super::common::editor_module!(IniFile, "ini_file", MODULE_ARGS, CONTENT_ARGS, edit);

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

    /// Found by the ini_file fuzz target: a line break in `section`, `option` or a value was
    /// written as is: a header or option spread over two lines, never found again, so every run
    /// appended the section once more (and could add lines nobody asked for).
    #[test]
    fn line_breaks_in_names_and_values_are_refused() {
        for json in [
            r#"{"section": "a\nb", "option": "k", "value": "v"}"#,
            r#"{"section": "a", "option": "k\r", "value": "v"}"#,
            r#"{"section": "a", "option": "k", "value": "v\n[evil]"}"#,
            r#"{"section": "a", "option": "k", "values": ["v", "w\nx = y"]}"#,
            r#"{"section": "a", "option": "k", "value": "v", "section_has_values": [{"option": "o\n"}]}"#,
        ] {
            let e = fails(Some("[a]\nk = v\n"), json);
            assert!(e.contains("line break"), "{json}: {e}");
        }
    }

    /// Found by the ini_file fuzz target: a value with leading blanks (`"  x"`) is read back
    /// from `k =   x` as `x`, so with `exclusive: false` every run added the line once more.
    /// The value is written and compared without its leading blanks.
    #[test]
    fn leading_blanks_of_a_value_do_not_repeat_the_line() {
        let json = r#"{"section": "s", "option": "k", "value": "  x  ", "exclusive": false}"#;
        let first = run(Some("[s]\n"), json);
        assert_edit(&first, "[s]\nk = x  \n", true, "option added");
        let second = run(Some(&first.content), json);
        assert_edit(&second, &first.content, false, "OK");
        let json = r#"{"section": "s", "option": "k", "value": "v",
                       "section_has_values": [{"option": "k", "value": " v"}]}"#;
        let first = run(Some(""), json);
        assert_eq!(run(Some(&first.content), json).content, first.content);
    }

    /// Found by the ini_file fuzz target: an option named `[x` was written as `[x = v`, a
    /// section header to every reader (and to the next run, which added it again); `#x` and
    /// `;x` would be comments. Such names are refused.
    #[test]
    fn option_names_that_read_as_headers_or_comments_are_refused() {
        for option in ["[]TUUU", " [x", "#x", ";x", "\t# x"] {
            let json = serde_json::json!({"section": "main", "option": option, "value": "v"});
            let e = edit(Some("[main]\n"), &args(&json.to_string())).expect_err(option);
            assert!(e.contains("option"), "{option:?}: {e}");
        }
        // Inside the name these characters are fine.
        run(
            Some("[main]\n"),
            r#"{"section": "main", "option": "a[0]#b", "value": "v"}"#,
        );
    }

    // ---- arguments ----

    #[test]
    fn defaults() {
        let a = args(r#"{"section":"s","option":"o","value":1}"#);
        assert_eq!(a.value.as_deref(), Some("1"));
        assert!(a.exclusive && a.create && a.modify_inactive_option);
        assert!(!a.no_extra_spaces && !a.ignore_spaces && !a.allow_no_value);
        assert!(serde_json::from_str::<Args>(r#"{"value":"x","mode":"0644"}"#).is_err());
        assert!(serde_json::from_str::<Args>(
            r#"{"value":"x","section_has_values":[{"option":"a","bogus":1}]}"#
        )
        .is_err());
    }

    #[test]
    fn content_args_are_all_accepted() {
        for name in CONTENT_ARGS {
            let value = match *name {
                "state" => "\"absent\"".to_string(),
                "values" => "[\"a\"]".to_string(),
                "section_has_values" => "[{\"option\":\"a\",\"values\":[\"b\"]}]".to_string(),
                "exclusive"
                | "no_extra_spaces"
                | "ignore_spaces"
                | "allow_no_value"
                | "modify_inactive_option"
                | "create" => "false".to_string(),
                _ => "\"x\"".to_string(),
            };
            let json = format!("{{\"{name}\":{value}}}");
            assert!(serde_json::from_str::<Args>(&json).is_ok(), "{name}");
        }
    }

    #[test]
    fn value_required_when_present() {
        let msg = "Parameter 'value(s)' must be defined if state=present and allow_no_value=False.";
        assert_eq!(
            fails(Some(""), r#"{"section":"cars","option":"audi"}"#),
            msg
        );
        assert_eq!(
            fails(
                Some(""),
                r#"{"section":"cars","option":"audi","value":null}"#
            ),
            msg
        );
        assert_eq!(
            fails(
                Some(""),
                r#"{"section":"cars","option":"audi","values":[]}"#
            ),
            msg
        );
    }

    #[test]
    fn value_and_values_are_exclusive() {
        let err = fails(Some(""), r#"{"option":"a","value":"1","values":["2"]}"#);
        assert!(err.contains("value|values"), "{err}");
    }

    #[test]
    fn missing_file_without_create() {
        let err = fails(
            None,
            r#"{"section":"s","option":"o","value":"v","create":false}"#,
        );
        assert!(err.contains("does not exist"), "{err}");
    }

    // ---- the integration scenario of community.general (tests/01-value.yml) ----

    #[test]
    fn value_scenario() {
        let e = run(
            None,
            r#"{"section":"drinks","option":"fav","value":"lemonade"}"#,
        );
        assert_edit(
            &e,
            "[drinks]\nfav = lemonade\n",
            true,
            "section and option added",
        );
        let again = run(
            Some(&e.content),
            r#"{"section":"drinks","option":"fav","value":"lemonade"}"#,
        );
        assert_edit(&again, &e.content, false, "OK");
        let e = run(
            Some(&e.content),
            r#"{"section":"drinks","option":"beverage","value":"coke"}"#,
        );
        assert_edit(
            &e,
            "[drinks]\nfav = lemonade\nbeverage = coke\n",
            true,
            "option added",
        );
        let e = run(
            Some(&e.content),
            r#"{"section":"drinks","option":"beverage","state":"absent"}"#,
        );
        assert_edit(&e, "[drinks]\nfav = lemonade\n", true, "option changed");
        let e = run(Some(&e.content), r#"{"section":"drinks","state":"absent"}"#);
        assert_edit(&e, "", true, "section removed");
    }

    #[test]
    fn allow_no_value_scenario() {
        let e = run(
            Some("\n"),
            r#"{"section":"mysqld","option":"skip-name","allow_no_value":true}"#,
        );
        assert_edit(
            &e,
            "[mysqld]\nskip-name\n",
            true,
            "section and option added",
        );
        let again = run(
            Some(&e.content),
            r#"{"section":"mysqld","option":"skip-name","allow_no_value":true}"#,
        );
        assert_edit(&again, &e.content, false, "OK");
        let e = run(
            Some(&e.content),
            r#"{"section":"mysqld","option":"skip-name-resolve","value":null,"allow_no_value":true}"#,
        );
        let e = run(
            Some(&e.content),
            r#"{"section":"mysqld","option":"max_connections","value":"500","allow_no_value":true}"#,
        );
        assert_eq!(
            e.content,
            "[mysqld]\nskip-name\nskip-name-resolve\nmax_connections = 500\n"
        );
        let e = run(
            Some(&e.content),
            r#"{"section":"mysqld","option":"skip-name","value":"myvalue"}"#,
        );
        assert_edit(
            &e,
            "[mysqld]\nskip-name = myvalue\nskip-name-resolve\nmax_connections = 500\n",
            true,
            "option changed",
        );
        let e = run(
            Some(&e.content),
            r#"{"section":"mysqld","option":"skip-name","allow_no_value":true}"#,
        );
        assert_edit(
            &e,
            "[mysqld]\nskip-name\nskip-name-resolve\nmax_connections = 500\n",
            true,
            "option changed",
        );
        let e = run(
            Some(&e.content),
            r#"{"section":"mysqld","option":"skip-name-resolve","state":"absent"}"#,
        );
        assert_edit(
            &e,
            "[mysqld]\nskip-name\nmax_connections = 500\n",
            true,
            "option changed",
        );
    }

    #[test]
    fn only_section_added() {
        let e = run(
            Some("\n"),
            r#"{"section":"new_empty_section","allow_no_value":true}"#,
        );
        assert_edit(&e, "[new_empty_section]\n", true, "only section added");
        let again = run(
            Some(&e.content),
            r#"{"section":"new_empty_section","allow_no_value":true}"#,
        );
        assert_edit(&again, &e.content, false, "OK");
    }

    #[test]
    fn no_section_options() {
        let e = run(
            Some(""),
            r#"{"section":null,"option":"beverage","value":"coke"}"#,
        );
        assert_edit(&e, "beverage = coke\n\n", true, "option added");
        let e = run(Some(&e.content), r#"{"option":"beverage","value":"water"}"#);
        assert_edit(&e, "beverage = water\n\n", true, "option changed");
        let e = run(
            Some(&e.content),
            r#"{"option":"beverage","state":"absent"}"#,
        );
        assert_edit(&e, "\n", true, "option changed");
    }

    #[test]
    fn no_section_option_goes_before_first_section() {
        let e = run(
            Some("\n[drinks]\nbeverage = water\n"),
            r#"{"section":"","option":"like","value":"tea"}"#,
        );
        assert_edit(
            &e,
            "like = tea\n\n[drinks]\nbeverage = water\n",
            true,
            "option added",
        );
    }

    #[test]
    fn empty_string_values() {
        let mut content = String::new();
        for json in [
            r#"{"section":"extensions","option":"evolve","value":""}"#,
            r#"{"section":"extensions","option":"regress","value":""}"#,
            r#"{"section":"foobar","option":"foo","value":"","allow_no_value":true}"#,
            r#"{"section":"extensions","option":"improve","value":"","allow_no_value":true}"#,
        ] {
            content = run(Some(&content), json).content;
        }
        assert_eq!(
            content,
            "[extensions]\nevolve = \nregress = \nimprove = \n[foobar]\nfoo = \n"
        );
    }

    #[test]
    fn bom_is_dropped_on_rewrite() {
        let file = "\u{feff}[section1]\nvar1=aaa\nvar2=bbb\n[section2]\nvar3=ccc\n";
        let e = run(
            Some(file),
            r#"{"section":"section1","option":"var4","value":0}"#,
        );
        assert_edit(
            &e,
            "[section1]\nvar1=aaa\nvar2=bbb\nvar4 = 0\n[section2]\nvar3=ccc\n",
            true,
            "option added",
        );
        let e = run(
            Some(file),
            r#"{"section":"section1","option":"var1","value":"aaa","no_extra_spaces":true}"#,
        );
        assert_edit(&e, file, false, "OK");
    }

    // ---- placement ----

    #[test]
    fn option_added_before_trailing_blank_and_comment_lines() {
        let file = "[a]\nx = 1\n\n# trailing comment\n\n[b]\ny = 2\n";
        let e = run(Some(file), r#"{"section":"a","option":"z","value":"3"}"#);
        assert_edit(
            &e,
            "[a]\nx = 1\nz = 3\n\n# trailing comment\n\n[b]\ny = 2\n",
            true,
            "option added",
        );
    }

    #[test]
    fn missing_section_appended_at_end() {
        let e = run(
            Some("[a]\nx = 1\n"),
            r#"{"section":"b","option":"y","value":"2"}"#,
        );
        assert_edit(
            &e,
            "[a]\nx = 1\n[b]\ny = 2\n",
            true,
            "section and option added",
        );
    }

    #[test]
    fn missing_trailing_newline_is_added() {
        let e = run(
            Some("[a]\nx = 1"),
            r#"{"section":"a","option":"x","value":"1"}"#,
        );
        assert_edit(&e, "[a]\nx = 1\n", true, "OK");
    }

    #[test]
    fn section_header_matching() {
        let file = "[ drinks ] ; comment\nfav = tea\n[drinksmore]\nfav = x\n";
        let e = run(
            Some(file),
            r#"{"section":"drinks","option":"fav","value":"coffee"}"#,
        );
        assert_edit(
            &e,
            "[ drinks ] ; comment\nfav = coffee\n[drinksmore]\nfav = x\n",
            true,
            "option changed",
        );
        let e = run(
            Some(file),
            r#"{"section":" drinksmore ","option":"fav","value":"x"}"#,
        );
        assert!(!e.changed);
    }

    #[test]
    fn special_characters_in_option_and_section() {
        let file = "[a.b*]\nk.e+y = 1\nkxe+y = 2\n";
        let e = run(
            Some(file),
            r#"{"section":"a.b*","option":"k.e+y","value":"3"}"#,
        );
        assert_edit(&e, "[a.b*]\nk.e+y = 3\nkxe+y = 2\n", true, "option changed");
    }

    // ---- exclusive / multiple values ----

    #[test]
    fn exclusive_replaces_and_removes_duplicates() {
        let file = "[d]\nbev = a\nx = 1\nbev = b\nbev = c\n";
        let e = run(Some(file), r#"{"section":"d","option":"bev","value":"z"}"#);
        assert_edit(&e, "[d]\nbev = z\nx = 1\n", true, "option changed");
    }

    #[test]
    fn values_keep_matching_lines_and_add_missing() {
        let file = "[d]\nbev = pepsi\nbev = fanta\n";
        let e = run(
            Some(file),
            r#"{"section":"d","option":"bev","values":["coke","pepsi"]}"#,
        );
        // pepsi is kept in place, fanta is reused for coke.
        assert_edit(&e, "[d]\nbev = pepsi\nbev = coke\n", true, "option changed");
        let again = run(
            Some(&e.content),
            r#"{"section":"d","option":"bev","values":["coke","pepsi"]}"#,
        );
        assert_edit(&again, &e.content, false, "OK");
        let e = run(
            Some("[d]\n"),
            r#"{"section":"d","option":"bev","values":["a","b","a"]}"#,
        );
        assert_edit(&e, "[d]\nbev = a\nbev = b\n", true, "option added");
    }

    #[test]
    fn non_exclusive_present_adds_only_missing_values() {
        let file = "[d]\nbev = a\nbev = b\n";
        let e = run(
            Some(file),
            r#"{"section":"d","option":"bev","value":"c","exclusive":false}"#,
        );
        assert_edit(&e, "[d]\nbev = a\nbev = b\nbev = c\n", true, "option added");
        let e = run(
            Some(file),
            r#"{"section":"d","option":"bev","value":"b","exclusive":false}"#,
        );
        assert_edit(&e, file, false, "OK");
    }

    #[test]
    fn absent_exclusive_removes_all_occurrences() {
        let file = "[d]\nbev = a\n# bev = c\nbev=b\n";
        let e = run(
            Some(file),
            r#"{"section":"d","option":"bev","state":"absent"}"#,
        );
        assert_edit(&e, "[d]\n# bev = c\n", true, "option changed");
    }

    #[test]
    fn absent_non_exclusive_removes_given_values() {
        let file = "[d]\nbev = a\nbev = b\nbev = c\n";
        let e = run(
            Some(file),
            r#"{"section":"d","option":"bev","values":["a","c"],"state":"absent","exclusive":false}"#,
        );
        assert_edit(&e, "[d]\nbev = b\n", true, "option changed");
        let e = run(
            Some(file),
            r#"{"section":"d","option":"bev","state":"absent","exclusive":false}"#,
        );
        assert_edit(&e, file, false, "OK");
    }

    #[test]
    fn absent_missing_section_or_option_is_unchanged() {
        let file = "[d]\nx = 1\n";
        let e = run(Some(file), r#"{"section":"zz","state":"absent"}"#);
        assert_edit(&e, file, false, "OK");
        let e = run(
            Some(file),
            r#"{"section":"d","option":"y","state":"absent"}"#,
        );
        assert_edit(&e, file, false, "OK");
        let e = run(None, r#"{"section":"d","state":"absent"}"#);
        assert_edit(&e, "", false, "OK");
    }

    #[test]
    fn absent_section_keeps_others() {
        let file = "top = 1\n[a]\nx = 1\n\n[b]\ny = 2\n";
        let e = run(Some(file), r#"{"section":"a","state":"absent"}"#);
        assert_edit(&e, "top = 1\n[b]\ny = 2\n", true, "section removed");
        let e = run(Some(file), r#"{"state":"absent"}"#);
        assert_edit(&e, "[a]\nx = 1\n\n[b]\ny = 2\n", true, "section removed");
    }

    #[test]
    fn absent_top_level_on_empty_file_is_unchanged() {
        let e = run(Some(""), r#"{"state":"absent"}"#);
        assert_edit(&e, "", false, "OK");
    }

    // ---- spacing ----

    #[test]
    fn no_extra_spaces() {
        let e = run(
            Some("[a]\n"),
            r#"{"section":"a","option":"x","value":"1","no_extra_spaces":true}"#,
        );
        assert_edit(&e, "[a]\nx=1\n", true, "option added");
        let e = run(
            Some("[a]\nx=1\n"),
            r#"{"section":"a","option":"x","value":"1"}"#,
        );
        assert_edit(&e, "[a]\nx = 1\n", true, "option changed");
    }

    #[test]
    fn ignore_spaces() {
        let json = r#"{"section":"a","option":"x","value":"1","ignore_spaces":true}"#;
        let e = run(Some("[a]\n  x=1\n"), json);
        assert_edit(&e, "[a]\n  x=1\n", false, "OK");
        let e = run(Some("[a]\nx=2\n"), json);
        assert_edit(&e, "[a]\nx = 1\n", true, "option changed");
        // A commented-out line is always rewritten.
        let e = run(Some("[a]\n#x=1\n"), json);
        assert_edit(&e, "[a]\nx = 1\n", true, "option changed");
    }

    // ---- inactive options ----

    #[test]
    fn modify_inactive_option() {
        let e = run(
            Some("[section]\n# foo = bar\n"),
            r#"{"section":"section","option":"foo","value":"bar"}"#,
        );
        assert_edit(&e, "[section]\nfoo = bar\n", true, "option changed");
        let e = run(
            Some("[section]\n# foo = bar\n"),
            r#"{"section":"section","option":"foo","value":"bar","modify_inactive_option":false}"#,
        );
        assert_edit(
            &e,
            "[section]\nfoo = bar\n# foo = bar\n",
            true,
            "option added",
        );
        let e = run(
            Some("[s]\n  ; foo=1\n"),
            r#"{"section":"s","option":"foo","value":"2"}"#,
        );
        assert_edit(&e, "[s]\nfoo = 2\n", true, "option changed");
    }

    #[test]
    fn documentation_comments_are_kept() {
        let file = "\n[PHP]\n;   Integer = Enables the buffer.\n; output_buffering\n; Production Value: 4096\n;output_buffering = 4096\n\n";
        let e = run(
            Some(file),
            r#"{"section":"PHP","option":"output_buffering","value":"123"}"#,
        );
        assert_edit(
            &e,
            "\n[PHP]\n;   Integer = Enables the buffer.\n; output_buffering\n; Production Value: 4096\noutput_buffering = 123\n\n",
            true,
            "option changed",
        );
        let e = run(
            Some("\n[PHP]\n;output_buffering = 4096\n\n"),
            r#"{"section":"PHP","option":"output_buffering","value":"123"}"#,
        );
        assert_edit(
            &e,
            "\n[PHP]\noutput_buffering = 123\n\n",
            true,
            "option changed",
        );
    }

    // ---- section_has_values ----

    const PEERS: &str = "[Interface]\nAddress = 10.0.0.1\n\n[Peer]\nAllowedIps = 10.128.0.11/32\nPublicKey = aaa\n\n[Peer]\nAllowedIps = 10.128.0.12/32\nPublicKey = bbb\n";

    #[test]
    fn section_has_values_selects_section() {
        let e = run(
            Some(PEERS),
            r#"{"section":"Peer","section_has_values":[{"option":"AllowedIps","value":"10.128.0.12/32"}],"option":"PublicKey","value":"ccc"}"#,
        );
        assert_edit(&e, &PEERS.replace("bbb", "ccc"), true, "option changed");
    }

    #[test]
    fn section_has_values_absent_removes_one_section() {
        let e = run(
            Some(PEERS),
            r#"{"section":"Peer","section_has_values":[{"option":"AllowedIps","value":"10.128.0.11/32"}],"state":"absent"}"#,
        );
        assert_edit(
            &e,
            "[Interface]\nAddress = 10.0.0.1\n\n[Peer]\nAllowedIps = 10.128.0.12/32\nPublicKey = bbb\n",
            true,
            "section removed",
        );
    }

    #[test]
    fn section_has_values_adds_new_section_with_conditions() {
        let json = r#"{"section":"Peer","section_has_values":[{"option":"AllowedIps","values":["10.128.0.13/32"]},{"option":"Endpoint"}],"option":"PublicKey","value":"ddd"}"#;
        let e = run(Some(PEERS), json);
        assert_edit(
            &e,
            &format!("{PEERS}[Peer]\nAllowedIps = 10.128.0.13/32\nPublicKey = ddd\n"),
            true,
            "section and option added",
        );
        let again = run(Some(&e.content), json);
        assert!(
            again.changed,
            "Endpoint is required but never written (as in Ansible)"
        );
        let json = r#"{"section":"Peer","section_has_values":[{"option":"AllowedIps","value":"10.128.0.13/32"}],"option":"PublicKey","value":"ddd"}"#;
        let e = run(Some(PEERS), json);
        let again = run(Some(&e.content), json);
        assert_edit(&again, &e.content, false, "OK");
    }

    #[test]
    fn section_has_values_same_option_non_exclusive() {
        let e = run(
            Some(""),
            r#"{"section":"s","section_has_values":[{"option":"o","value":"a"}],"option":"o","value":"b","exclusive":false}"#,
        );
        assert_edit(&e, "[s]\no = b\no = a\n", true, "section and option added");
    }

    // ---- line endings ----

    #[test]
    fn crlf_file_stays_crlf() {
        let file = "[a]\r\nx = 1\r\n";
        let e = run(Some(file), r#"{"section":"a","option":"y","value":"2"}"#);
        assert_edit(&e, "[a]\r\nx = 1\r\ny = 2\r\n", true, "option added");
        let e = run(Some(file), r#"{"section":"a","option":"x","value":"1"}"#);
        assert_edit(&e, file, false, "OK");
    }

    // ---- properties ----

    fn file_strategy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(
                prop::sample::select(vec![
                    "[a]", "[b]", "x = 1", "x=2", "# x = 0", "; note x", "", "y = 3", "  x = 4",
                    "x",
                ]),
                0..8,
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
            prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
            prop::option::of(prop::sample::select(vec!["x", "y", "z"])),
            prop::collection::vec(prop::sample::select(vec!["1", "2", "5", ""]), 0..3),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(section, option, values, absent, exclusive, no_value, inactive, spaces)| Args {
                    section: section.map(String::from),
                    option: option.map(String::from),
                    values: Some(values.into_iter().map(String::from).collect()),
                    state: if absent {
                        State::Absent
                    } else {
                        State::Present
                    },
                    exclusive,
                    allow_no_value: no_value,
                    modify_inactive_option: inactive,
                    no_extra_spaces: spaces,
                    ..Args::default()
                },
            )
    }

    proptest! {
        #[test]
        fn prop_idempotent(file in file_strategy(), a in args_strategy()) {
            // Removing a section removes one of several same-named sections per run.
            let duplicated = ["[a]", "[b]"].iter().any(|h| file.matches(h).count() > 1);
            prop_assume!(!(a.state == State::Absent && a.option.is_none() && duplicated));
            let Ok(first) = edit(Some(&file), &a) else { return Ok(()); };
            let second = edit(Some(&first.content), &a).unwrap();
            prop_assert!(!second.changed, "second run changed: {:?} -> {:?}", first, second);
            prop_assert_eq!(&second.content, &first.content);
        }

        #[test]
        fn prop_unchanged_means_same_content(file in file_strategy(), a in args_strategy()) {
            if let Ok(e) = edit(Some(&file), &a) {
                if !e.changed {
                    prop_assert_eq!(&e.content, &file);
                }
                prop_assert!(e.content.is_empty() || e.content.ends_with('\n'));
            }
        }

        #[test]
        fn prop_present_value_is_in_section(file in file_strategy(), a in args_strategy()) {
            let a = Args { state: State::Present, exclusive: true, allow_no_value: false, ..a };
            let (Some(section), Some(option)) = (a.section.clone(), a.option.clone()) else {
                return Ok(());
            };
            let Ok(e) = edit(Some(&file), &a) else { return Ok(()); };
            let header = format!("[{section}]");
            let body: Vec<&str> = e.content.lines()
                .map(|l| l.trim_end_matches('\r'))
                .skip_while(|l| *l != header)
                .skip(1)
                .take_while(|l| !l.starts_with('['))
                .collect();
            for v in a.values.iter().flatten() {
                let want = if a.no_extra_spaces {
                    format!("{option}={v}")
                } else {
                    format!("{option} = {v}")
                };
                prop_assert!(body.iter().any(|l| *l == want), "{} missing in {:?}", want, body);
            }
        }
    }

    #[test]
    fn new_file_has_no_leading_blank_line() {
        let a: Args =
            serde_json::from_str(r#"{"section":"db","option":"ssl","value":"true"}"#).unwrap();
        let e = edit(None, &a).unwrap();
        assert_eq!(e.content, "[db]\nssl = true\n");
        assert!(e.changed);
    }
}
