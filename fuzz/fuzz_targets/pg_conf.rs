//! postgresql.conf: the lossless parser and `ConfFile::set` / `unset` (the `pg_conf` module).
//!
//! Properties: no panic; an untouched file renders back byte for byte; after an edit the file
//! still parses and renders back, has no new invalid line, and holds the value asked for (or no
//! active line after `unset`); the same edit applied again changes nothing.
#![no_main]

use castellan::postgres::conf::{same_value, ConfFile};
use castellan_fuzz::{assert_idempotent, pick, split};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "ssl",
    "ssl_cert_file",
    "listen_addresses",
    "port",
    "SSL",
    "shared_buffers",
    "log_line_prefix",
    "custom.setting",
    "include",
    "max_connections",
];
const VALUES: &[&str] = &[
    "on",
    "server.crt",
    "*",
    "5432",
    "128MB",
    "it's",
    "a b",
    "",
    "0x1F",
    "-1.5e3",
    "\\",
    "#x",
    "'",
    "%m [%p] ",
];

fuzz_target!(|data: &[u8]| {
    let (text, mut u) = split(data);
    let file = ConfFile::parse(&text);
    assert_eq!(file.render(), text, "parse+render of an untouched file");
    let invalid = file.errors().len();
    let _ = file.settings().count() + file.includes().count();

    let (Ok(name), Ok(value), Ok(unset)) = (
        pick(&mut u, NAMES),
        pick(&mut u, VALUES),
        u.arbitrary::<bool>(),
    ) else {
        return;
    };
    let mut edited = file.clone();
    if unset {
        edited.unset(&name);
        let out = edited.render();
        let again = ConfFile::parse(&out);
        assert_eq!(again.render(), out);
        assert_eq!(
            again.get(&name),
            None,
            "{name} still set after unset:\n{out:?}"
        );
        assert_eq!(
            again.errors().len(),
            invalid,
            "unset {name} made a line invalid:\n{text:?}\n->\n{out:?}"
        );
        let mut twice = again.clone();
        twice.unset(&name);
        assert_idempotent(
            || format!("unset {name} on {text:?}"),
            &out,
            &twice.render(),
            false,
        );
        return;
    }
    let Ok(first) = edited.set(&name, &value) else {
        return;
    };
    let out = edited.render();
    if !first.changed {
        assert_eq!(out, text, "set said unchanged but changed the text");
    }
    let again = ConfFile::parse(&out);
    assert_eq!(again.render(), out);
    assert_eq!(
        again.errors().len(),
        invalid,
        "set {name} = {value:?} wrote an invalid line:\n{text:?}\n->\n{out:?}"
    );
    let got = again.get(&name).map(str::to_string);
    assert!(
        got.as_deref().is_some_and(|g| same_value(g, &value)),
        "set {name} = {value:?} but the file says {got:?}:\n{out:?}"
    );
    let mut twice = again.clone();
    let second = twice
        .set(&name, &value)
        .expect("the same set failed the second time");
    assert_idempotent(
        || format!("set {name} = {value:?} on {text:?}"),
        &out,
        &twice.render(),
        second.changed,
    );
});
