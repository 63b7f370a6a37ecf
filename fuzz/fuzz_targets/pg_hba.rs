//! pg_hba.conf: the lossless parser and `hba::apply` (the `pg_hba` module), with fuzzed rules,
//! positions, `state`, `block_plain` and server versions.
//!
//! Properties: no panic; an untouched file renders back byte for byte; after an edit the file
//! still parses and renders back, every wanted rule is there (or none is, for `absent`), no
//! record became invalid; the same edit applied again changes nothing.
#![no_main]

use arbitrary::{Result, Unstructured};
use castellan::postgres::hba::{apply, HbaEdit, HbaFile, Position, RuleSpec, Want};
use castellan_fuzz::{assert_idempotent, pick, split};
use libfuzzer_sys::fuzz_target;
use regex::Regex;

const TYPES: &[&str] = &["hostssl", "local", "host", "hostnossl", "hostgssenc"];
const FIELDS: &[&str] = &[
    "all",
    "app",
    "\"all\"",
    "db1,db2",
    "replication",
    "+admins",
    "\"my db\"",
    "@file",
    "sameuser",
];
const ADDRESSES: &[&str] = &[
    "10.0.0.0/8",
    "127.0.0.1/32",
    "::1/128",
    "all",
    "samenet",
    ".example.com",
    "db1.example.com",
    "10.0.0.1",
    "0.0.0.0/0",
];
const MASKS: &[&str] = &["255.255.255.0", "255.0.0.0", "ffff:ffff::"];
const METHODS: &[&str] = &["cert", "scram-sha-256", "reject", "trust", "md5", "peer"];
const OPTIONS: &[(&str, &str)] = &[
    ("clientcert", "verify-full"),
    ("clientcert", "verify-ca"),
    ("clientcert", "1"),
    ("map", "ssl"),
    ("clientname", "DN"),
];
const PATTERNS: &[&str] = &["^local", "^host ", "#", "TYPE", "all", "^$", "(?m)x"];
const VERSIONS: &[i64] = &[150004, 11, 13, 90624, 16];

fn rule(u: &mut Unstructured<'_>) -> Result<RuleSpec> {
    let conn_type = pick(u, TYPES)?;
    let address = if conn_type == "local" {
        None
    } else {
        Some(pick(u, ADDRESSES)?)
    };
    let netmask = if address.as_deref().is_some_and(|a| !a.contains('/')) && u.arbitrary()? {
        Some(pick(u, MASKS)?)
    } else {
        None
    };
    let n = u.int_in_range(0..=2)?;
    let mut options = Vec::new();
    for _ in 0..n {
        let i = u.choose_index(OPTIONS.len())?;
        options.push((OPTIONS[i].0.to_string(), OPTIONS[i].1.to_string()));
    }
    if u.ratio(1, 8)? {
        options.push((u.arbitrary()?, u.arbitrary()?));
    }
    Ok(RuleSpec {
        conn_type,
        database: pick(u, FIELDS)?,
        user: pick(u, FIELDS)?,
        address,
        netmask,
        method: pick(u, METHODS)?,
        options,
    })
}

fn position(u: &mut Unstructured<'_>) -> Result<Option<Position>> {
    Ok(match u.int_in_range(0..=4)? {
        0 => Some(Position::BeforeFirstHost),
        1 => Some(Position::Top),
        2 => Some(Position::Bottom),
        k => {
            let Ok(re) = Regex::new(&pick(u, PATTERNS)?) else {
                return Ok(None);
            };
            Some(if k == 3 {
                Position::Before(re)
            } else {
                Position::After(re)
            })
        }
    })
}

fn edit(u: &mut Unstructured<'_>) -> Result<Option<HbaEdit>> {
    let n = u.int_in_range(1..=3)?;
    let mut rules = Vec::new();
    for _ in 0..n {
        rules.push(rule(u)?);
    }
    let state = if u.ratio(1, 4)? {
        Want::Absent
    } else {
        Want::Present
    };
    let Some(position) = position(u)? else {
        return Ok(None);
    };
    let block_plain = u.arbitrary()?;
    let server_version = if u.arbitrary()? {
        None
    } else {
        Some(VERSIONS[u.choose_index(VERSIONS.len())?])
    };
    Ok(Some(HbaEdit {
        rules,
        state,
        position,
        block_plain,
        server_version,
    }))
}

fuzz_target!(|data: &[u8]| {
    let (text, mut u) = split(data);
    let file = HbaFile::parse(&text);
    assert_eq!(file.render(), text, "parse+render of an untouched file");
    let invalid = file.errors().len();
    let _ = file.rules().count();

    let Ok(Some(e)) = edit(&mut u) else {
        return;
    };
    let mut edited = file.clone();
    let Ok(report) = apply(&mut edited, &e) else {
        return;
    };
    let out = edited.render();
    if !report.changed() {
        assert_eq!(out, text, "apply said unchanged but changed the text");
    }
    let again = HbaFile::parse(&out);
    assert_eq!(again.render(), out);
    assert_eq!(
        again.records, edited.records,
        "the edited records differ from what their text parses to"
    );
    assert!(
        again.errors().len() <= invalid,
        "apply {e:?} wrote an invalid record:\n{text:?}\n->\n{out:?}"
    );
    // Every wanted rule is there (present), or none (absent).
    let keys: Vec<_> = again.rules().map(|r| r.key()).collect();
    for spec in &e.rules {
        let line = castellan::postgres::hba::normalize(spec, e.server_version)
            .expect("apply accepted it")
            .line();
        let rec = castellan::postgres::hba::parse_record(&line);
        let key = rec.rule().expect("a rule").key();
        match e.state {
            Want::Present => assert!(keys.contains(&key), "`{line}` missing after apply:\n{out}"),
            Want::Absent => assert!(!keys.contains(&key), "`{line}` still there:\n{out}"),
        }
    }
    let mut twice = again.clone();
    let second = apply(&mut twice, &e).expect("the same edit failed the second time");
    assert_idempotent(
        || format!("apply {e:?} to {text:?}: first {report:?}, second {second:?}"),
        &out,
        &twice.render(),
        second.changed(),
    );
});
