//! `lineinfile`: the pure editor `lineinfile::edit`, with fuzzed arguments.
//!
//! Properties: no panic; an edit that reports no change returns the input byte for byte; the
//! same edit applied to its own result changes nothing, wherever Ansible promises it: not with
//! `backrefs`, not for a `line` holding a line break, and with `regexp`/`search_string` only
//! when the new line matches them (Ansible's documented condition for idempotence).
#![no_main]

use arbitrary::{Result, Unstructured};
use castellan::modules::files::lineinfile::{edit, Args};
use castellan::modules::files::State;
use castellan_fuzz::{
    assert_idempotent, assert_unchanged_is_input, existing, pick, pick_opt, split,
};
use libfuzzer_sys::fuzz_target;

const LINES: &[&str] = &[
    "ssl = on",
    "PermitRootLogin no",
    "listen_addresses = '*'",
    "",
    "# comment",
    "x\ty",
    "port = 5433",
];
const REGEXPS: &[&str] = &[
    "^ssl\\s*=",
    "^#?PermitRootLogin",
    "^listen_addresses",
    "^(\\w+) = (.*)$",
    "port",
    "^$",
    "(?P<k>\\w+)",
    "\\Z",
    "^#",
];
const SEARCH: &[&str] = &["ssl", "PermitRootLogin", "=", " ", "#"];
const INSERT: &[&str] = &["EOF", "BOF", "^#", "^\\[", "port", "^ssl"];

fn args(u: &mut Unstructured<'_>) -> Result<Args> {
    let state = if u.ratio(1, 4)? {
        State::Absent
    } else {
        State::Present
    };
    let regexp = pick_opt(u, REGEXPS)?;
    let search_string = if regexp.is_none() {
        pick_opt(u, SEARCH)?
    } else {
        None
    };
    let (insertafter, insertbefore) = match u.int_in_range(0..=2)? {
        0 => (None, None),
        1 => (Some(pick(u, INSERT)?), None),
        _ => (None, Some(pick(u, INSERT)?)),
    };
    Ok(Args {
        regexp,
        search_string,
        line: Some(pick(u, LINES)?),
        state,
        insertafter,
        insertbefore,
        backrefs: u.ratio(1, 6)?,
        firstmatch: u.arbitrary()?,
        create: u.arbitrary()?,
    })
}

fuzz_target!(|data: &[u8]| {
    let (text, mut u) = split(data);
    let Ok(a) = args(&mut u) else {
        return;
    };
    let current = existing(&mut u, &text);
    let Ok(first) = edit(current, &a) else {
        return;
    };
    let ctx = || format!("args: {a:?}\ninput: {current:?}");
    assert_unchanged_is_input(current, first.changed, &first.content);
    if !first.changed {
        return;
    }
    let line = a.line.as_deref().unwrap_or_default();
    let promised = !a.backrefs
        && !line.contains(['\n', '\r'])
        && match (&a.regexp, &a.search_string, a.state) {
            (_, _, State::Absent) => true,
            (Some(re), _, State::Present) => {
                castellan::text::compile_regex("regexp", re).is_ok_and(|re| re.is_match(line))
            }
            (None, Some(s), State::Present) => line.contains(s.as_str()),
            (None, None, State::Present) => true,
        };
    if !promised {
        return;
    }
    let second = edit(Some(&first.content), &a).expect("the same edit failed the second time");
    assert_idempotent(
        || format!("lineinfile ({})", ctx()),
        &first.content,
        &second.content,
        second.changed,
    );
});
