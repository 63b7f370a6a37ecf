//! Reading ahead (src/engine/read_ahead.rs, src/connection/prefetch.rs) over real SSH, on a
//! private loopback fleet (NET 33, two hosts without PostgreSQL): a no-change run answers its
//! tasks' stats from one request per host, and nothing read ahead outlives what can make it
//! stale: a command on the same host, a command on another host, a write through a directory
//! alias, an `until` retry waiting for a file something else creates. Each of these fails if the
//! read-ahead answered. Needs root.
mod fleet_common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use fleet_common::{FleetDef, Held, Shared};

static DEF: FleetDef = FleetDef {
    net: "33",
    dir: "/tmp/castellan-read-ahead-fleet",
};
static FLEET: Shared = Shared::new(&DEF, &["2", "--no-postgres"]);

fn fleet() -> std::sync::Arc<Held> {
    FLEET.get()
}

fn run(book: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_castellan"));
    c.args([
        "playbook",
        &book.display().to_string(),
        "-i",
        &DEF.inventory(),
    ])
    .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run castellan");
    eprintln!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output) {
    assert_eq!(out.status.code(), Some(0), "the run failed");
}

/// `changed=N` of a host in the recap.
fn changed(out: &Output, host: &str) -> usize {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(host) && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap line for {host}"));
    let v = line.split("changed=").nth(1).unwrap();
    v.split_whitespace().next().unwrap().parse().unwrap()
}

/// The `-v` summary of a host: (paths read ahead, requests, stats answered from them).
fn summary(out: &Output, host: &str) -> (u64, u64, u64) {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains(&format!("{host}: read ahead")))
        .unwrap_or_else(|| panic!("no read-ahead summary for {host} in:\n{err}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let n = nums.len();
    (nums[n - 3], nums[n - 2], nums[n - 1])
}

const PUSH: &str = r#"
- hosts: fleet
  tasks:
    - file: {path: "{{ dir }}/conf.d", state: directory, mode: "0750"}
    - copy: {content: "cert\n", dest: "{{ dir }}/conf.d/server.crt", mode: "0644"}
    - copy: {content: "key\n", dest: "{{ dir }}/conf.d/server.key", mode: "0600"}
    - lineinfile: {path: "{{ dir }}/conf.d/pg.conf", line: "ssl = on", create: yes, mode: "0640"}
    - lineinfile: {path: "{{ dir }}/conf.d/pg.conf", line: "ssl_cert_file = 'server.crt'"}
    - lineinfile: {path: "{{ dir }}/conf.d/pg.conf", line: "ssl_key_file = 'server.key'"}
    - lineinfile: {path: "{{ dir }}/conf.d/pg.conf", line: "ssl_ca_file = 'root.crt'"}
    - blockinfile:
        path: "{{ dir }}/conf.d/hba.conf"
        create: yes
        block: "hostssl all all 127.0.0.0/8 cert"
    - stat: {path: "{{ dir }}/conf.d/server.key"}
      register: key
    - assert: {that: ["key.stat.mode == '0600'"]}
"#;

fn book(name: &str, text: &str, dirs: &[(usize, &Path)]) -> std::path::PathBuf {
    let root = DEF.dir().join("books");
    fs::create_dir_all(&root).unwrap();
    // `dir` per host, as an inventory would give it.
    let mut vars = String::from("  vars:\n    dirs:\n");
    for (k, d) in dirs {
        vars.push_str(&format!("      db{k}: \"{}\"\n", d.display()));
    }
    let text = text.replacen(
        "- hosts: fleet\n",
        &format!("- hosts: fleet\n{vars}    dir: \"{{{{ dirs[inventory_hostname] }}}}\"\n"),
        1,
    );
    let p = root.join(name);
    fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_no_change_run_answers_every_stat_from_one_request_per_host() {
    let _f = fleet();
    let d1 = DEF.workdir(1, "push");
    let d2 = DEF.workdir(2, "push");
    let b = book("push.yml", PUSH, &[(1, &d1), (2, &d2)]);
    let first = run(&b, &["-v"], &[]);
    ok(&first);
    assert!(changed(&first, "db1") >= 5);
    let again = run(&b, &["-v"], &[]);
    ok(&again);
    for h in ["db1", "db2"] {
        assert_eq!(changed(&again, h), 0, "{h}");
        let (paths, requests, answered) = summary(&again, h);
        // file, 2 copies, pg.conf (read by 4 tasks), hba.conf, and the stat task's own want.
        assert_eq!(requests, 1, "{h}: one request read everything ahead");
        assert!(paths >= 5, "{h}: {paths} paths");
        assert!(
            answered >= 9,
            "{h}: {answered} of the 9 stats were answered from the read-ahead"
        );
    }
    assert_eq!(
        fs::read_to_string(d1.join("conf.d/pg.conf")).unwrap(),
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'root.crt'\n"
    );
    // The baseline switch: no reading ahead, same result.
    let off = run(&b, &["-v"], &[("CASTELLAN_READ_AHEAD", "off")]);
    ok(&off);
    assert_eq!(changed(&off, "db1"), 0);
    assert!(!String::from_utf8_lossy(&off.stderr).contains("read ahead"));
}

#[test]
fn a_command_on_this_or_another_host_makes_the_read_ahead_stale() {
    let _f = fleet();
    let d1 = DEF.workdir(1, "cmd");
    let d2 = DEF.workdir(2, "cmd");
    fs::write(d1.join("a.conf"), "a = 1\n").unwrap();
    fs::write(d2.join("a.conf"), "a = 1\n").unwrap();
    fs::write(d1.join("x.conf"), "x = 1\n").unwrap();
    fs::write(d2.join("x.conf"), "x = 1\n").unwrap();
    // db2's shell appends to db1's x.conf (the fleet's hosts share a filesystem: as Patroni on
    // one member rewrites another's configuration); db1's own shell appends to its a.conf.
    let text = format!(
        r#"
- hosts: fleet
  tasks:
    - lineinfile: {{path: "{{{{ dir }}}}/a.conf", line: "b = 2"}}
    - shell: "echo 'c = 3' >> {{{{ dir }}}}/a.conf"
      when: inventory_hostname == 'db1'
    - shell: "echo 'y = 2' >> {x1}"
      when: inventory_hostname == 'db2'
    - lineinfile: {{path: "{{{{ dir }}}}/a.conf", line: "d = 4"}}
    - lineinfile: {{path: "{{{{ dir }}}}/x.conf", line: "z = 3"}}
"#,
        x1 = d1.join("x.conf").display()
    );
    let b = book("cmd.yml", &text, &[(1, &d1), (2, &d2)]);
    ok(&run(&b, &[], &[]));
    assert_eq!(
        fs::read_to_string(d1.join("a.conf")).unwrap(),
        "a = 1\nb = 2\nc = 3\nd = 4\n"
    );
    assert_eq!(
        fs::read_to_string(d1.join("x.conf")).unwrap(),
        "x = 1\ny = 2\nz = 3\n",
        "db2's command changed db1's file after db1 read it ahead"
    );
    assert_eq!(
        fs::read_to_string(d2.join("a.conf")).unwrap(),
        "a = 1\nb = 2\nd = 4\n"
    );
}

#[test]
fn a_write_through_a_directory_alias_makes_the_other_name_stale() {
    let _f = fleet();
    let mut dirs = Vec::new();
    for k in [1, 2] {
        let d = DEF.workdir(k, "alias");
        fs::create_dir(d.join("real")).unwrap();
        symlink(d.join("real"), d.join("alias")).unwrap();
        fs::write(d.join("real/p.conf"), "p = 1\n").unwrap();
        dirs.push((k, d));
    }
    let text = r#"
- hosts: fleet
  tasks:
    - lineinfile: {path: "{{ dir }}/real/p.conf", line: "q = 2"}
    - lineinfile: {path: "{{ dir }}/alias/p.conf", line: "r = 3"}
    - lineinfile: {path: "{{ dir }}/real/p.conf", line: "s = 4"}
"#;
    let refs: Vec<(usize, &Path)> = dirs.iter().map(|(k, d)| (*k, d.as_path())).collect();
    let b = book("alias.yml", text, &refs);
    ok(&run(&b, &[], &[]));
    for (_, d) in &dirs {
        assert_eq!(
            fs::read_to_string(d.join("real/p.conf")).unwrap(),
            "p = 1\nq = 2\nr = 3\ns = 4\n"
        );
        assert!(fs::symlink_metadata(d.join("alias"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

#[test]
fn an_until_retry_reads_the_host_again() {
    let _f = fleet();
    let d1 = DEF.workdir(1, "until");
    let d2 = DEF.workdir(2, "until");
    let text = r#"
- hosts: fleet
  tasks:
    - stat: {path: "{{ dir }}/ready"}
      register: r
      until: r.stat.exists
      retries: 20
      delay: 0.25
"#;
    let b = book("until.yml", text, &[(1, &d1), (2, &d2)]);
    // Something else makes the file while the play polls for it.
    let (r1, r2) = (d1.join("ready"), d2.join("ready"));
    let maker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        fs::write(r1, "").unwrap();
        fs::write(r2, "").unwrap();
    });
    let out = run(&b, &[], &[]);
    maker.join().unwrap();
    ok(&out);
}
