//! Unit tests: loading, precedence, patterns and errors on small inventories written to a temp dir.
use std::path::{Path, PathBuf};

use serde_json::json;

use super::*;

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn inv(text: &str) -> Inventory {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "hosts.yml", text);
    Inventory::load(&[p]).unwrap()
}

fn err(text: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "hosts.yml", text);
    let e = Inventory::load(&[p]).unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    e.to_string()
}

const PG: &str = "
all:
  hosts:
    bastion:
  children:
    postgres:
      children:
        primary:
          hosts:
            db1:
        replica:
          hosts:
            db2:
            db3:
    monitoring:
      hosts:
        mon1:
        db1:
";

#[test]
fn hosts_in_definition_order_and_group_names() {
    let i = inv(PG);
    let names: Vec<&str> = i.hosts().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["bastion", "db1", "db2", "db3", "mon1"]);
    assert_eq!(
        i.host("db1").unwrap().groups,
        ["monitoring", "postgres", "primary"]
    );
    // Ansible keeps `ungrouped` in group_names.
    assert_eq!(i.host("bastion").unwrap().groups, ["ungrouped"]);
    assert!(i.host("nope").is_none());
    let h = i.host("db1").unwrap();
    assert_eq!(h.inventory_file.file_name().unwrap(), "hosts.yml");
    assert_eq!(Some(h.inventory_dir.as_path()), h.inventory_file.parent());
}

#[test]
fn groups_magic_var() {
    let i = inv(PG);
    assert_eq!(
        i.groups_var(),
        json!({
            "all": ["bastion", "mon1", "db1", "db2", "db3"],
            "ungrouped": ["bastion"],
            "postgres": ["db1", "db2", "db3"],
            "primary": ["db1"],
            "replica": ["db2", "db3"],
            "monitoring": ["mon1", "db1"],
        })
    );
}

fn sel(i: &Inventory, p: &str) -> Vec<String> {
    i.select(p).unwrap()
}

#[test]
fn patterns_like_ansible() {
    // Expected values recorded from `ansible PATTERN --list-hosts` (ansible-core 2.19).
    let i = inv(PG);
    assert_eq!(sel(&i, "all"), ["bastion", "mon1", "db1", "db2", "db3"]);
    assert_eq!(sel(&i, "*"), sel(&i, "all"));
    assert_eq!(sel(&i, "db3,db1"), ["db3", "db1"]);
    assert_eq!(sel(&i, "replica:postgres"), ["db2", "db3", "db1"]);
    assert_eq!(sel(&i, "all:!db2"), ["bastion", "mon1", "db1", "db3"]);
    assert_eq!(sel(&i, "!db1"), ["bastion", "mon1", "db2", "db3"]);
    assert_eq!(sel(&i, "postgres:&monitoring"), ["db1"]);
    assert_eq!(sel(&i, "&monitoring:postgres"), ["db1"]);
    assert_eq!(sel(&i, "postgres[0:1]"), ["db1", "db2"]);
    assert_eq!(sel(&i, "postgres[-1]"), ["db3"]);
    assert!(sel(&i, "db[1]").is_empty()); // a subscript on `db`, not a glob
    assert_eq!(sel(&i, "~db[23]"), ["db2", "db3"]);
    assert_eq!(sel(&i, "db*:mon*"), ["db1", "db2", "db3", "mon1"]);
    assert_eq!(sel(&i, "post*"), ["db1", "db2", "db3"]);
    assert_eq!(sel(&i, "ungrouped"), ["bastion"]);
    assert_eq!(sel(&i, "db1,db1,primary"), ["db1"]);
    assert_eq!(sel(&i, "db?"), ["db1", "db2", "db3"]);
    assert!(sel(&i, "nomatch").is_empty());
    assert!(sel(&i, "postgres:!postgres").is_empty());
    assert!(i.select("postgres[7]").is_err());
    assert!(i.select("~(").is_err());
}

#[test]
fn localhost_is_implicit_unless_defined() {
    let i = inv(PG);
    assert_eq!(sel(&i, "localhost"), ["localhost"]);
    assert_eq!(sel(&i, "127.0.0.1"), ["localhost"]);
    assert_eq!(sel(&i, "db1,localhost"), ["db1", "localhost"]);
    assert!(!sel(&i, "all").contains(&"localhost".to_string()));
    let lh = i.implicit_localhost();
    assert_eq!(lh.name, "localhost");
    assert_eq!(lh.vars["ansible_connection"], json!("local"));
    assert!(lh.groups.is_empty());

    let i = inv("all:\n  hosts:\n    127.0.0.1:\n      x: 1\n");
    assert_eq!(sel(&i, "localhost"), ["127.0.0.1"]);
    assert_eq!(i.implicit_localhost().name, "127.0.0.1");
}

#[test]
fn implicit_localhost_gets_all_vars_but_keeps_local_connection() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "inv.yml",
        "all:\n  vars:\n    ansible_connection: ssh\n    a: inline\n  hosts:\n    h1:\n",
    );
    write(d.path(), "group_vars/all.yml", "b: file\n");
    write(d.path(), "host_vars/localhost.yml", "c: host\n");
    let i = Inventory::load(&[p]).unwrap();
    let lh = i.implicit_localhost();
    assert_eq!(
        serde_json::Value::Object(lh.vars.clone()),
        json!({"ansible_connection": "local", "a": "inline", "b": "file", "c": "host"})
    );
    assert_eq!(
        i.host_json("localhost").unwrap()["ansible_connection"],
        "local"
    );
    assert!(i.host_json("nope").is_none());
}

#[test]
fn precedence_depth_priority_name() {
    let i = inv("
all:
  vars: {v: all, w: all}
  children:
    parent:
      vars: {v: parent, w: parent}
      children:
        child:
          vars: {v: child}
          hosts: {h1: {}}
    zeta:
      vars: {w: zeta}
      hosts: {h1: }
    alpha:
      vars: {w: alpha, p: alpha}
      hosts: {h1: }
    high:
      vars: {p: high, ansible_group_priority: 5}
      hosts: {h1: }
");
    let v = &i.host("h1").unwrap().vars;
    assert_eq!(v["v"], "child"); // deeper group wins
                                 // depth 1: alpha, high(prio 5), parent, zeta -> sorted (1,1,alpha) (1,1,parent) (1,1,zeta) (1,5,high)
    assert_eq!(v["w"], "zeta");
    assert_eq!(v["p"], "high");
    assert!(!v.contains_key("ansible_group_priority"));
}

#[test]
fn group_vars_files_beat_inline_group_vars_and_host_vars_win() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "inv.yml",
        "all:\n  vars: {a: all-inline}\n  children:\n    g:\n      vars: {a: g-inline, b: g-inline, d: {x: 1}}\n      hosts:\n        h1: {c: host-inline, b: host-inline}\n",
    );
    write(d.path(), "group_vars/all.yml", "a: all-file\nb: all-file\n");
    write(d.path(), "group_vars/g.yml", "d: {y: 2}\n");
    write(d.path(), "host_vars/h1/10.yml", "c: host-file\n");
    let i = Inventory::load(&[p]).unwrap();
    let v = serde_json::Value::Object(i.host("h1").unwrap().vars.clone());
    // group_vars/all.yml beats the inline vars of `g`, as in Ansible.
    assert_eq!(v["a"], "all-file");
    assert_eq!(v["b"], "host-inline");
    assert_eq!(v["c"], "host-file");
    assert_eq!(v["d"], json!({"y": 2})); // dicts replace, no deep merge
}

#[test]
fn later_sources_override_earlier() {
    let d = tempfile::tempdir().unwrap();
    let a = write(
        d.path(),
        "a/inv.yml",
        "all:\n  vars: {x: a}\n  hosts:\n    h1: {y: a}\n",
    );
    let b = write(
        d.path(),
        "b/inv.yml",
        "all:\n  vars: {x: b}\n  children:\n    g:\n      hosts:\n        h1: {y: b}\n",
    );
    write(d.path(), "a/group_vars/g.yml", "z: a-file\n");
    write(d.path(), "b/group_vars/g.yml", "z: b-file\n");
    let i = Inventory::load(&[a.clone(), b]).unwrap();
    let h = i.host("h1").unwrap();
    assert_eq!(h.vars["x"], "b");
    assert_eq!(h.vars["y"], "b");
    assert_eq!(h.vars["z"], "b-file");
    assert_eq!(h.groups, ["g"]); // no longer ungrouped
    assert_eq!(h.inventory_file, a); // the first source that named it
    assert_eq!(i.group_hosts("ungrouped").unwrap().len(), 0);
}

#[test]
fn directory_source_reads_yaml_files_in_order() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "inv/10-a.yml", "all:\n  hosts:\n    h1: {x: 1}\n");
    write(
        d.path(),
        "inv/20-b.yaml",
        "all:\n  hosts:\n    h1: {x: 2}\n    h2:\n",
    );
    write(
        d.path(),
        "inv/sub/30.json",
        "{\"all\": {\"hosts\": {\"h3\": null}}}",
    );
    write(d.path(), "inv/.hidden.yml", "all:\n  hosts:\n    hidden:\n");
    write(d.path(), "inv/notes.txt", "not yaml: [");
    write(d.path(), "inv/group_vars/all.yml", "gv: yes\n");
    let i = Inventory::load(&[d.path().join("inv")]).unwrap();
    let names: Vec<&str> = i.hosts().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["h1", "h2", "h3"]);
    assert_eq!(i.host("h1").unwrap().vars["x"], 2);
    assert_eq!(i.host("h3").unwrap().vars["gv"], true);
    assert!(i
        .host("h3")
        .unwrap()
        .inventory_file
        .ends_with("inv/sub/30.json"));
}

#[test]
fn strings_for_sections_and_ports() {
    let i = inv("all:\n  children:\n    g:\n      hosts: solo\n    p:\n      children: g\n  hosts:\n    db[1:2]:2222:\n");
    assert_eq!(i.group_hosts("p").unwrap(), ["solo"]);
    assert_eq!(i.host("db2").unwrap().vars["ansible_port"], 2222);
}

#[test]
fn errors_are_located() {
    let e = err("all:\n  hosts:\n    - db1\n");
    assert!(
        e.contains("hosts.yml:3:5") && e.contains("not `- name`"),
        "{e}"
    );
    let e = err("all:\n  children:\n    g:\n      host:\n        db1:\n");
    assert!(
        e.contains(":4:7") && e.contains("did you mean `hosts`"),
        "{e}"
    );
    let e = err("all:\n  hosts:\n    db1: yes\n");
    assert!(e.contains(":3:10") && e.contains("host `db1`"), "{e}");
    let e = err("web: [a, b]\n");
    assert!(e.contains(":1:6") && e.contains("group `web`"), "{e}");
    let e = err("a:\n  children:\n    b:\n      children:\n        a:\n");
    // The inner `a` is attached under `b` first, so attaching `b` under `a` closes the loop.
    assert!(
        e.contains(":3:5") && e.contains("cycle: b -> a -> b"),
        "{e}"
    );
    let e = err("a:\n  children:\n    a:\n");
    assert!(e.contains("child of itself"), "{e}");
    let e = err("g:\n  children:\n    all:\n");
    assert!(e.contains(":3:5"), "{e}");
    let e = err("all:\n  hosts:\n    1234:\n");
    assert!(e.contains("must be a string"), "{e}");
    let e = err("all:\n  hosts: [\n");
    assert!(e.contains("YAML syntax error"), "{e}");
    let e = err("plugin: aws_ec2\n");
    assert!(e.contains("plugin"), "{e}");
    let e = err("[web]\nhost1\n");
    assert!(e.contains("INI"), "{e}");
    let e = err("all:\n  hosts:\n    db[1:x]:\n");
    assert!(e.contains(":3:5"), "{e}");
}

#[test]
fn missing_source_is_usage_error() {
    let e = Inventory::load(&[PathBuf::from("/nonexistent/inv.yml")]).unwrap_err();
    assert_eq!(e.exit_code(), 5);
    assert!(e.to_string().contains("/nonexistent/inv.yml"));
    assert_eq!(Inventory::load(&[]).unwrap_err().exit_code(), 5);
}

#[test]
fn empty_file_is_empty_inventory() {
    let i = inv("# nothing here\n");
    assert_eq!(i.hosts().count(), 0);
    assert_eq!(
        i.list_json(),
        json!({"_meta": {"hostvars": {}, "profile": "inventory_legacy"}, "all": {"children": ["ungrouped"]}})
    );
}

#[test]
fn patterns_with_top_level_groups_and_explicit_ungrouped() {
    // Expected values recorded from `ansible PATTERN --list-hosts` (ansible-core 2.19).
    let i = inv("
foo:
  hosts: solo
  children: bar
all:
  hosts:
    h0:
    h1:
  children:
    bar:
      hosts:
        h1:
        x[a:c]:99:
    ungrouped:
      hosts:
        h2:
        h1:
    empty:
      children:
        emptier:
baz:
");
    assert_eq!(sel(&i, "all"), ["h0", "h1", "h2", "xa", "xb", "xc", "solo"]);
    assert_eq!(sel(&i, "bar:!h1"), ["xa", "xb", "xc"]);
    assert_eq!(sel(&i, "x*"), ["xa", "xb", "xc"]);
    assert_eq!(sel(&i, "foo[1:]"), ["h1", "xa", "xb", "xc"]);
    assert!(sel(&i, "h1:&ungrouped").is_empty());
    assert!(sel(&i, "empty").is_empty());
    assert_eq!(i.host("xb").unwrap().vars["ansible_port"], 99);
    assert_eq!(i.host("h2").unwrap().groups, ["ungrouped"]);
    assert_eq!(i.host("h1").unwrap().groups, ["bar", "foo"]);
}
