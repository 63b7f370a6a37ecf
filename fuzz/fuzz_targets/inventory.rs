//! The inventory loader (`Inventory::load` of a YAML inventory file: groups, children, vars,
//! host ranges, host patterns).
//!
//! Properties: no panic, no runaway memory or time; a bad file is invalid input (exit 4);
//! a loaded inventory lists as JSON and its `all` pattern selects every host.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use castellan::inventory::Inventory;
use libfuzzer_sys::fuzz_target;

fn file() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("hosts.yml");
        (dir, path)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    let path = file();
    std::fs::write(path, data).expect("write the inventory");
    match Inventory::load(std::slice::from_ref(path)) {
        Ok(inv) => {
            let _ = inv.list_json();
            let n = inv.hosts().count();
            if let Ok(all) = inv.select("all") {
                assert_eq!(all.len(), n, "`all` does not select every host");
            }
            for h in inv.hosts() {
                assert!(inv.host_json(&h.name).is_some());
            }
        }
        Err(e) => assert_eq!(e.exit_code(), 4, "{e}"),
    }
});
