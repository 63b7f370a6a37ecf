//! `ini_file`: the pure editor `ini_file::edit`, with fuzzed arguments.
//!
//! Properties: no panic; an edit that reports no change returns the input byte for byte; the
//! same edit applied to its own result changes nothing.
#![no_main]

use arbitrary::{Result, Unstructured};
use castellan::modules::files::ini_file::{edit, Args};
use castellan::modules::files::State;
use castellan_fuzz::{
    assert_idempotent, assert_unchanged_is_input, existing, pick, pick_some, split,
};
use libfuzzer_sys::fuzz_target;

const SECTIONS: &[&str] = &["main", "postgresql", "", "section with spaces", "a.b"];
const OPTIONS: &[&str] = &["key", "port", "ssl", "name with space", "x"];
const VALUES: &[&str] = &["value", "5432", "", "a = b", "on", "#x", "  spaced  "];

fn args(u: &mut Unstructured<'_>) -> Result<Args> {
    let (value, values) = match u.int_in_range(0..=3)? {
        0 | 1 => (Some(pick(u, VALUES)?), None),
        2 => {
            let n = u.int_in_range(0..=3)?;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(pick(u, VALUES)?);
            }
            (None, Some(v))
        }
        _ => (None, None),
    };
    Ok(Args {
        section: pick_some(u, SECTIONS)?,
        section_has_values: None,
        option: pick_some(u, OPTIONS)?,
        value,
        values,
        state: if u.ratio(1, 4)? {
            State::Absent
        } else {
            State::Present
        },
        exclusive: !u.ratio(1, 4)?,
        no_extra_spaces: u.arbitrary()?,
        ignore_spaces: u.arbitrary()?,
        allow_no_value: u.ratio(1, 4)?,
        modify_inactive_option: !u.ratio(1, 4)?,
        create: !u.ratio(1, 8)?,
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
    // As in Ansible, `absent` without `option` removes the first section of that name: with
    // several, one per run. Not promised idempotent then.
    let section = a.section.as_deref().unwrap_or_default().trim();
    let headers = text
        .lines()
        .filter(|l| {
            l.strip_prefix('[')
                .and_then(|l| l.split_once(']'))
                .is_some_and(|(name, _)| name.trim() == section)
        })
        .count();
    if a.state == State::Absent && a.option.as_deref().unwrap_or_default().is_empty() && headers > 1
    {
        return;
    }
    let second = edit(Some(&first.content), &a).expect("the same edit failed the second time");
    assert_idempotent(
        || format!("ini_file ({})", ctx()),
        &first.content,
        &second.content,
        second.changed,
    );
});
