//! KEY=VALUE files: the lossless parser `envfile::Document` and the `env_file` module's pure
//! edit (`modules::files::env_file::edit`: settings or keys, state, quote, create).
//!
//! Properties: no panic; an untouched file renders back byte for byte; an edit that reports no
//! change returns the input; after an edit every key set reads back with its value and every
//! key removed is gone, and the other entries are byte-identical, in their order; the same
//! edit applied again changes nothing.
#![no_main]

use arbitrary::{Result, Unstructured};
use castellan::envfile::{Document, Entry, Quote, QuoteChoice};
use castellan::modules::files::env_file::{edit, Wanted};
use castellan_fuzz::{assert_idempotent, assert_unchanged_is_input, existing, pick, split};
use libfuzzer_sys::fuzz_target;

const KEYS: &[&str] = &[
    "CSS_SSL_ENABLED",
    "CSS_SSL_MODE",
    "PATH",
    "export",
    "A",
    "DATABASE_URL",
    "_x1",
];
const VALUES: &[&str] = &[
    "true",
    "verify-full",
    "/etc/ssl/certs/cast/client.crt",
    "",
    "two words",
    "it's",
    "say \"hi\"",
    "$HOME",
    "`id`",
    "C:\\CAST\\ssl",
    "a\\",
    "#x",
    "postgres://u:p%40s@h/db?a=1&b=2",
    "caf\u{e9}",
    "line\nbreak",
    "~/x",
    " ",
];

fn wanted(u: &mut Unstructured<'_>) -> Result<Wanted> {
    let absent = u.ratio(1, 4)?;
    let n = u.int_in_range(1..=3)?;
    let mut changes = Vec::new();
    for _ in 0..n {
        let key = pick(u, KEYS)?;
        let value = if absent { None } else { Some(pick(u, VALUES)?) };
        changes.push((key, value));
    }
    let quote = match u.int_in_range(0..=5)? {
        0 => QuoteChoice::Always(Quote::Bare),
        1 => QuoteChoice::Always(Quote::Double),
        2 => QuoteChoice::Always(Quote::Single),
        _ => QuoteChoice::Auto,
    };
    Ok(Wanted { changes, quote })
}

/// The entries that are not assignments of `keys`, as text without their line ending (a last
/// line that got its missing newline counts as itself).
fn others(entries: &[Entry], keys: &[&str]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| !e.assignment().is_some_and(|a| keys.contains(&a.key.as_str())))
        .map(|e| e.raw.trim_end_matches(['\r', '\n']).to_string())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (text, mut u) = split(data);
    let doc = Document::parse(&text);
    assert_eq!(doc.render(), text, "parse+render of an untouched file");

    let Ok(want) = wanted(&mut u) else {
        return;
    };
    let create = !u.ratio(1, 8).unwrap_or(false);
    let current = existing(&mut u, &text);
    let Ok((out, changed)) = edit("/f", current, &want, create) else {
        return;
    };
    let ctx = || format!("edit: {want:?}\ninput: {current:?}");
    assert_unchanged_is_input(current, !changed.is_empty(), &out);
    if current.is_none() && changed.is_empty() {
        assert_eq!(out, "", "{}", ctx());
    }

    let again = Document::parse(&out);
    assert_eq!(again.render(), out);
    let keys: Vec<&str> = want.changes.iter().map(|(k, _)| k.as_str()).collect();
    for key in &keys {
        let last = want.changes.iter().rev().find(|(k, _)| k == key);
        let got = again.get(key).map(|a| a.value.clone());
        match last.map(|(_, v)| v) {
            Some(Some(v)) => assert_eq!(got, Some(Some(v.clone())), "{key}: {}", ctx()),
            _ => assert_eq!(got, None, "{key} still set: {}", ctx()),
        }
    }
    let before = Document::parse(current.unwrap_or_default());
    assert_eq!(
        others(&before.entries, &keys),
        others(&again.entries, &keys),
        "other entries changed: {}",
        ctx()
    );

    let (second, changed_again) =
        edit("/f", Some(&out), &want, create).expect("the same edit failed the second time");
    assert_idempotent(
        || format!("env_file ({})", ctx()),
        &out,
        &second,
        !changed_again.is_empty(),
    );
});
