//! `Inventory::list_json()`/`host_json()` against the output of the real `ansible-inventory`
//! (ansible-core 2.19.14), saved next to each inventory under `tests/inventories/`:
//!
//! ```text
//! ansible-inventory -i simple/hosts.yml --list                > simple/expected-list.json
//! ansible-inventory -i nested/hosts.yml --list                > nested/expected-list.json
//! ansible-inventory -i nested/hosts.yml --host db1            > nested/expected-host-db1.json
//! ansible-inventory -i ranges/hosts.yml --list                > ranges/expected-list.json
//! ansible-inventory -i split/first.yml -i split/second --list > split/expected-list.json
//! ansible-inventory -i split/first.yml -i split/second --host db1 > split/expected-host-db1.json
//! ```
//!
//! The comparison is strict: same values, same key order (Ansible sorts keys), same list order
//! (Ansible's host and children lists are deterministic for these inventories).
use std::path::{Path, PathBuf};

use castellan::inventory::Inventory;
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/inventories")
}

fn expected(rel: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load(sources: &[&str]) -> Inventory {
    let paths: Vec<PathBuf> = sources.iter().map(|s| dir().join(s)).collect();
    Inventory::load(&paths).unwrap()
}

/// Equal as JSON and in every object's key order (serde_json's `==` ignores key order).
fn assert_same(actual: &Value, expected: &Value) {
    let (a, e) = (
        serde_json::to_string_pretty(actual).unwrap(),
        serde_json::to_string_pretty(expected).unwrap(),
    );
    assert_eq!(
        a, e,
        "castellan (left) differs from ansible-inventory (right)"
    );
}

#[test]
fn simple_list() {
    let inv = load(&["simple/hosts.yml"]);
    assert_same(&inv.list_json(), &expected("simple/expected-list.json"));
}

#[test]
fn nested_with_group_vars_and_host_vars_dirs() {
    let inv = load(&["nested/hosts.yml"]);
    assert_same(&inv.list_json(), &expected("nested/expected-list.json"));
    assert_same(
        &inv.host_json("db1").unwrap(),
        &expected("nested/expected-host-db1.json"),
    );
}

#[test]
fn ranges_multiple_parents_and_yaml11_scalars() {
    let inv = load(&["ranges/hosts.yml"]);
    assert_same(&inv.list_json(), &expected("ranges/expected-list.json"));
}

#[test]
fn split_into_two_sources() {
    let inv = load(&["split/first.yml", "split/second"]);
    assert_same(&inv.list_json(), &expected("split/expected-list.json"));
    assert_same(
        &inv.host_json("db1").unwrap(),
        &expected("split/expected-host-db1.json"),
    );
}
