//! The YAML loader (`yaml::parse_str`: yaml-rust2 events into located nodes, YAML 1.1 scalars,
//! anchors, aliases and merge keys).
//!
//! Properties: no panic, no runaway memory; an error is invalid input (exit 4) located at a
//! `file:line:column` inside the text; every node's location is inside the text; the nodes
//! convert to JSON.
#![no_main]

use std::path::Path;

use castellan::yaml::{parse_str, Node, NodeValue};
use libfuzzer_sys::fuzz_target;

fn check(n: &Node, lines: usize) {
    assert!(
        n.loc.line >= 1 && n.loc.line <= lines + 1 && n.loc.col >= 1,
        "node located outside the text: {}",
        n.loc
    );
    match &n.value {
        NodeValue::Seq(items) => items.iter().for_each(|i| check(i, lines)),
        NodeValue::Map(entries) => entries.iter().for_each(|(k, v)| {
            check(k, lines);
            check(v, lines);
        }),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // YAML's line breaks: LF, CRLF and a lone CR (YAML 1.2, 5.4), which yaml-rust2 counts.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    match parse_str(&text, Path::new("fuzz.yml")) {
        Ok(docs) => {
            for d in &docs {
                check(d, lines);
                let _ = d.to_json();
            }
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 4, "{e}");
            if let castellan::error::Error::Invalid { loc: Some(l), .. } = &e {
                assert!(l.line >= 1 && l.line <= lines + 1 && l.col >= 1, "{e}");
            }
        }
    }
});
