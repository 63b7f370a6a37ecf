//! Unit tests of the `vagrant:` source on a saved ssh-config (the recordings of
//! tests/fixtures/vagrant/) in a temp dir: the generated inventory, groups.yml, the managed
//! known_hosts (a machine whose id and address are unchanged keeps its recorded keys; no scan).
use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::inventory::Inventory;

const LIBVIRT: &str = include_str!("../../../tests/fixtures/vagrant/ssh-config.libvirt.txt");

fn env_with_known_keys(dir: &Path) -> PathBuf {
    let saved = dir.join("ssh-config.txt");
    std::fs::write(&saved, LIBVIRT).unwrap();
    for (name, id) in [("pg15", "3f1c"), ("cast1", "9a0e")] {
        let m = dir.join(".vagrant/machines").join(name).join("libvirt");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("id"), format!("{id}\n")).unwrap();
    }
    std::fs::create_dir_all(dir.join(".castellan")).unwrap();
    // Recorded keys: with id and address unchanged, no ssh-keyscan runs (these addresses do not
    // exist here; a scan would find nothing and leave the block empty).
    std::fs::write(
        dir.join(".castellan/known_hosts"),
        "# castellan vagrant machine pg15 id 3f1c at 192.168.121.45\n\
         192.168.121.45 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPg15\n\
         # castellan vagrant machine cast1 id 9a0e at 192.168.121.112\n\
         192.168.121.112 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICast1\n\
         # castellan vagrant machine old id 77 at 192.168.121.9\n\
         192.168.121.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld\n",
    )
    .unwrap();
    saved
}

#[test]
fn saved_ssh_config_becomes_hosts_with_connection_vars_and_groups() {
    let d = tempfile::tempdir().unwrap();
    let saved = env_with_known_keys(d.path());
    std::fs::write(
        d.path().join("groups.yml"),
        "postgres:\n  hosts:\n    pg15:\n  vars:\n    pg_port: 5432\ncast_imaging:\n  hosts:\n    cast1:\n",
    )
    .unwrap();
    let spec = PathBuf::from(format!("vagrant:{}", saved.display()));
    let inv = Inventory::load(&[spec]).unwrap();
    let pg15 = inv.host("pg15").unwrap();
    let kh = d.path().join(".castellan/known_hosts");
    assert_eq!(pg15.vars["ansible_host"], json!("192.168.121.45"));
    assert_eq!(pg15.vars["ansible_port"], json!(22));
    assert_eq!(pg15.vars["ansible_user"], json!("vagrant"));
    assert_eq!(
        pg15.vars["ansible_ssh_private_key_file"],
        json!("/home/ana/castellan/vagrant/.vagrant/machines/pg15/libvirt/private_key")
    );
    assert_eq!(
        pg15.vars["castellan_known_hosts"],
        json!(kh.to_string_lossy())
    );
    assert_eq!(pg15.vars["pg_port"], json!(5432));
    assert_eq!(pg15.groups, vec!["postgres".to_string()]);
    assert_eq!(
        inv.host("cast1").unwrap().groups,
        vec!["cast_imaging".to_string()]
    );
    // Kept keys of both machines, the block of a machine no longer described dropped.
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(
        text.contains("192.168.121.45 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPg15\n"),
        "{text}"
    );
    assert!(text.contains("AAAAICast1"), "{text}");
    assert!(!text.contains("AAAAIOld"), "{text}");
    let gen = d.path().join(".castellan/vagrant-inventory.json");
    assert!(gen.is_file());
}

#[test]
fn a_new_machine_id_drops_the_recorded_keys() {
    let d = tempfile::tempdir().unwrap();
    let saved = env_with_known_keys(d.path());
    // pg15 recreated: a new id. Its old key must not be kept (a scan of an address that does not
    // answer gives no key: ssh then refuses the host, never accepts the old machine's key).
    std::fs::write(d.path().join(".vagrant/machines/pg15/libvirt/id"), "new\n").unwrap();
    // The new machine at a loopback port nothing listens on: the scan stays on this machine.
    let moved = LIBVIRT
        .replacen("192.168.121.45", "127.0.0.1", 1)
        .replacen("Port 22", "Port 9", 1);
    std::fs::write(&saved, moved).unwrap();
    let spec = PathBuf::from(format!("vagrant:{}", saved.display()));
    let _ = resolve(&spec).unwrap();
    let text = std::fs::read_to_string(d.path().join(".castellan/known_hosts")).unwrap();
    assert!(
        text.contains("# castellan vagrant machine pg15 id new at [127.0.0.1]:9\n"),
        "{text}"
    );
    assert!(!text.contains("AAAAIPg15"), "{text}");
    assert!(text.contains("AAAAICast1"), "{text}");
}

#[test]
fn missing_source_and_bad_text_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let spec = PathBuf::from(format!("vagrant:{}/nope", d.path().display()));
    let e = Inventory::load(&[spec]).unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    let saved = d.path().join("ssh-config.txt");
    std::fs::write(&saved, "Host a\n  Port 22\n").unwrap();
    let e = Inventory::load(&[PathBuf::from(format!("vagrant:{}", saved.display()))]).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:1:1: ", saved.display())),
        "{e}"
    );
    std::fs::write(&saved, "\n").unwrap();
    let e = Inventory::load(&[PathBuf::from(format!("vagrant:{}", saved.display()))]).unwrap_err();
    assert!(e.to_string().contains("no machine is described"), "{e}");
}

#[test]
fn generated_doc_shape() {
    let hosts =
        vagrant_ssh_config::parse("Host a\n  HostName 10.1.2.3\n  Port 2200\n", Path::new("x"))
            .unwrap();
    assert_eq!(
        inventory_doc(&hosts, Path::new("/e/.castellan/known_hosts")),
        json!({"all": {"vars": {"castellan_known_hosts": "/e/.castellan/known_hosts"},
                       "hosts": {"a": {"ansible_host": "10.1.2.3", "ansible_port": 2200}}}})
    );
}
