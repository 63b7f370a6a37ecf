//! Ansible Vault (issue 12): files and values encrypted at every run by the real `ansible-vault`
//! (PyPI `ansible-core`, installed once into a venv under target/ by
//! `tests/vault/ansible-vault.sh`) are read by castellan, 1.1 and 1.2 with a vault id, inline
//! `!vault` values in an inventory and a `group_vars` file, whole encrypted `host_vars` and vars
//! files, with an executable password file; a wrong or missing password or a damaged envelope is
//! exit 4 with `file:line:column` before any host is contacted (a listener and a tripwire `ssh`,
//! as in tests/malformed_corpus.rs); no decrypted value is printed; the `secret` module makes a
//! value once, keeps it, rotates it, and `ansible-vault view` reads what it encrypted;
//! `--ask-vault-pass` asks on a terminal (`script` gives it one) without echo.
//!
//! Hosts are local (`ansible_connection: local`) except the tripwire's, at 127.20.0.1, and the
//! acceptance test's (issue 12, acceptance 5): a fleet host (net 20, dir
//! /tmp/castellan-fleet-vault) whose PostgreSQL login works with the inventory's `!vault`
//! password, over SSH, with the process table watched, the sshd and PostgreSQL logs and the
//! state files scanned too.
mod fleet_common;
mod secret_scan;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;

/// The real `ansible-vault`, installed once.
fn ansible_vault() -> &'static Path {
    static AV: OnceLock<PathBuf> = OnceLock::new();
    AV.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vault/ansible-vault.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("run ansible-vault.sh");
        assert!(
            out.status.success(),
            "installing ansible-core failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// Run `ansible-vault ARGS` in `dir`; its stdout.
fn av(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(ansible_vault())
        .args(args)
        .current_dir(dir)
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .output()
        .expect("run ansible-vault");
    assert!(
        out.status.success(),
        "ansible-vault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `NAME: !vault |` and its block, indented by `indent` spaces, made by `encrypt_string`.
fn encrypt_string(dir: &Path, id: &[&str], name: &str, value: &str, indent: usize) -> String {
    let mut args = vec!["encrypt_string"];
    args.extend_from_slice(id);
    args.extend_from_slice(&["--name", name, "--", value]);
    let out = av(dir, &args);
    assert!(out.contains("!vault |"), "{out}");
    out.lines()
        .map(|l| format!("{}{l}\n", " ".repeat(indent)))
        .collect()
}

/// Encrypt a file in place with `ansible-vault encrypt`.
fn encrypt_file(dir: &Path, id: &[&str], file: &str) {
    let mut args = vec!["encrypt"];
    args.extend_from_slice(id);
    args.push(file);
    av(dir, &args);
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    assert!(text.starts_with("$ANSIBLE_VAULT;"), "{text}");
}

fn castellan(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .current_dir(dir)
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .output()
        .expect("run castellan")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(what: &str, out: &Output) {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", text(out));
}

fn write(p: &Path, s: &str) {
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(p, s).unwrap();
}

fn executable(p: &Path, s: &str) {
    write(p, s);
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// The passwords of a test: `pw.txt` (default), `pw.sh` (an executable printing it),
/// `prod.txt` (vault id `prod`).
struct Passwords {
    default: String,
    prod: String,
}

fn passwords(dir: &Path) -> Passwords {
    let n = std::process::id();
    let p = Passwords {
        default: format!("default-vault-pass-{n}-a1"),
        prod: format!("prod-vault-pass-{n}-b2"),
    };
    write(&dir.join("pw.txt"), &format!("{}\n", p.default));
    write(&dir.join("prod.txt"), &format!("{}\n", p.prod));
    executable(
        &dir.join("pw.sh"),
        &format!("#!/bin/sh\nprintf '%s\\n' '{}'\n", p.default),
    );
    p
}

/// Every form of a secret that output could hold.
fn forms(v: &str) -> Vec<String> {
    vec![
        v.to_string(),
        base64::engine::general_purpose::STANDARD.encode(v),
        serde_json::to_string(v)
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ]
}

/// `what` holds none of the forms of the secrets.
fn assert_nothing_of(secrets: &[&str], what: &str, data: &str) {
    for s in secrets {
        for f in forms(s) {
            assert!(!data.contains(&f), "{what} shows the secret {f:?}:\n{data}");
        }
    }
}

const PLAYBOOK: &str = r#"- hosts: all
  vars_files: [secrets.yml]
  tasks:
    - name: every secret in one world-readable file
      copy:
        content: "{{ db_password }}|{{ api_token }}|{{ host_secret }}|{{ file_secret }}\n"
        dest: "{{ out }}/all-{{ run }}.txt"
        mode: "0644"
      register: written
    - name: a private configuration file
      copy: {content: "password={{ db_password }}\n", dest: "{{ out }}/db-{{ run }}.conf", mode: "0600"}
    - name: a URL with the password
      debug: {msg: "url postgres://app:{{ db_password }}@db/app token {{ api_token }}"}
    - name: a derived value
      debug: {msg: "{{ db_password | b64encode }}"}
    - name: a command line with a secret
      command: "echo {{ host_secret }}"
      register: echoed
    - debug: {var: echoed}
    - debug: {var: written}
    - set_fact: {copied: "{{ file_secret }}"}
    - debug: {var: copied}
    - name: a failure quoting a secret
      fail: {msg: "failed with {{ db_password }}"}
      ignore_errors: true
"#;

/// A tree of inventory, group_vars, host_vars and a vars file, each kind of encryption once.
struct Tree {
    dir: tempfile::TempDir,
    pw: Passwords,
    secrets: Vec<String>,
}

fn tree() -> Tree {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let pw = passwords(d);
    let n = std::process::id();
    // Characters that JSON, URLs and shells treat specially.
    let db = format!("db p@ss:w/rd\"{n}'x");
    let token = format!("api-token-{n}-7f1e");
    let host = format!("host-secret-{n}-2c9d");
    let file = format!("file-secret-{n}-e4a0");
    let inv = d.join("inventory");
    std::fs::create_dir_all(inv.join("group_vars")).unwrap();
    std::fs::create_dir_all(inv.join("host_vars")).unwrap();
    let db_block = encrypt_string(
        d,
        &["--vault-password-file", "pw.txt"],
        "db_password",
        &db,
        4,
    );
    write(
        &inv.join("hosts.yml"),
        &format!(
            "all:\n  hosts:\n    h1:\n      ansible_connection: local\n      out: {}\n  vars:\n{db_block}",
            d.join("out").display()
        ),
    );
    std::fs::create_dir_all(d.join("out")).unwrap();
    let token_block = encrypt_string(d, &["--vault-id", "prod@prod.txt"], "api_token", &token, 0);
    write(&inv.join("group_vars/all.yml"), &token_block);
    write(
        &inv.join("host_vars/h1.yml"),
        &format!("host_secret: \"{host}\"\n"),
    );
    encrypt_file(
        &inv.join("host_vars"),
        &["--vault-password-file", "../../pw.txt"],
        "h1.yml",
    );
    write(&d.join("secrets.yml"), &format!("file_secret: {file}\n"));
    encrypt_file(d, &["--vault-id", "prod@prod.txt"], "secrets.yml");
    write(&d.join("pb.yml"), PLAYBOOK);
    Tree {
        dir: t,
        pw,
        secrets: vec![db, token, host, file],
    }
}

#[test]
fn files_and_values_from_ansible_vault_are_read_and_never_shown() {
    let t = tree();
    let d = t.dir.path();
    let id = [
        "--vault-password-file",
        "pw.sh",
        "--vault-id",
        "prod@prod.txt",
    ];
    let mut outputs = Vec::new();
    for (run, extra) in [("text", &[][..]), ("json", &["--output", "json"][..])] {
        let run_var = format!("run={run}");
        let mut args = vec!["playbook", "pb.yml", "-i", "inventory", "-e", &run_var];
        args.extend_from_slice(&id);
        args.extend_from_slice(&["--diff", "-vvv"]);
        args.extend_from_slice(extra);
        let out = castellan(d, &args);
        ok(run, &out);
        // Decrypted right: the file holds the four values.
        let all = std::fs::read_to_string(d.join(format!("out/all-{run}.txt"))).unwrap();
        assert_eq!(all, format!("{}\n", t.secrets.join("|")));
        outputs.push((run, text(&out)));
        if run == "json" {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let tasks = doc["plays"][0]["tasks"].as_array().unwrap();
            let task = |name: &str| -> &serde_json::Value {
                &tasks.iter().find(|x| x["name"] == name).unwrap()["results"]["h1"]
            };
            assert_eq!(
                task("a URL with the password")["result"]["msg"],
                "url postgres://app:<redacted>@db/app token <redacted>"
            );
            assert!(task("every secret in one world-readable file")["diff"]
                .as_str()
                .unwrap()
                .contains("<redacted>"));
            assert_eq!(
                task("a failure quoting a secret")["msg"],
                "failed with <redacted>"
            );
        }
    }
    let inv = castellan(
        d,
        &[
            "inventory",
            "-i",
            "inventory",
            "--list",
            id[0],
            id[1],
            id[2],
            id[3],
        ],
    );
    ok("inventory --list", &inv);
    let inv_text = text(&inv);
    assert!(
        inv_text.contains("\"db_password\": \"<redacted>\""),
        "{inv_text}"
    );
    outputs.push(("inventory", inv_text));
    let mut secrets: Vec<&str> = t.secrets.iter().map(String::as_str).collect();
    secrets.extend([t.pw.default.as_str(), t.pw.prod.as_str()]);
    for (what, out) in &outputs {
        assert_nothing_of(&secrets, what, out);
        assert!(out.contains("<redacted>"), "{what}: {out}");
    }
    println!(
        "vault: 4 values (inline 1.1, inline 1.2 prod, whole host_vars 1.1, whole vars file 1.2) \
         decrypted; {} bytes of output scanned for {} forms of 6 secrets",
        outputs.iter().map(|(_, o)| o.len()).sum::<usize>(),
        secrets.len() * 3
    );
}

/// A listener on the address of every host of the tripwire inventory, counting connections.
fn trap(addr: &'static str) -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let l = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    let c = Arc::clone(&count);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            c.fetch_add(1, Ordering::SeqCst);
            let mut s = s;
            let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = s.read(&mut [0u8; 16]);
        }
    });
    count
}

#[test]
fn a_wrong_or_missing_password_is_exit_4_before_any_host() {
    let count = trap("127.20.0.1:22");
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    passwords(d);
    write(&d.join("wrong.txt"), "not-the-password\n");
    let marker = d.join("ssh-called");
    executable(
        &d.join("bin/ssh"),
        &format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexit 255\n",
            marker.display()
        ),
    );
    let block = encrypt_string(
        d,
        &["--vault-password-file", "pw.txt"],
        "db_password",
        "tripwire-value-1",
        4,
    );
    write(
        &d.join("inventory.yml"),
        &format!("all:\n  hosts:\n    h1:\n      ansible_host: 127.20.0.1\n      ansible_user: root\n  vars:\n{block}"),
    );
    // A whole vars file with a vault id, and a damaged copy of it.
    write(&d.join("prod.yml"), "prod_secret: tripwire-value-2\n");
    encrypt_file(d, &["--vault-id", "prod@prod.txt"], "prod.yml");
    let good = std::fs::read_to_string(d.join("prod.yml")).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    lines[3] = lines[3].replacen(|c: char| c.is_ascii_hexdigit(), "z", 1);
    write(&d.join("damaged.yml"), &(lines.join("\n") + "\n"));
    write(
        &d.join("pb.yml"),
        "- hosts: all\n  tasks:\n    - command: \"true\"\n",
    );
    write(
        &d.join("pb-prod.yml"),
        "- hosts: all\n  vars_files: [prod.yml]\n  tasks:\n    - command: \"true\"\n",
    );
    write(
        &d.join("pb-damaged.yml"),
        "- hosts: all\n  vars_files: [damaged.yml]\n  tasks:\n    - command: \"true\"\n",
    );
    let path = format!(
        "{}:{}",
        d.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "wrong password",
            &["pb.yml", "--vault-password-file", "wrong.txt"],
            "inventory.yml:8:15",
            "no vault password given decrypts it (tried: password file wrong.txt)",
        ),
        (
            "no password",
            &["pb.yml"],
            "inventory.yml:8:15",
            "no vault password was given",
        ),
        (
            "no password for the vault id",
            &["pb-prod.yml", "--vault-password-file", "pw.txt"],
            "prod.yml:1:1",
            "(vault id `prod`)",
        ),
        (
            "damaged envelope",
            &[
                "pb-damaged.yml",
                "--vault-password-file",
                "pw.txt",
                "--vault-id",
                "prod@prod.txt",
            ],
            "damaged.yml:1:1",
            "malformed",
        ),
        (
            "wrong executable password file",
            &["pb.yml", "--vault-password-file", "bin/ssh"],
            "",
            "vault password script",
        ),
    ];
    for (what, args, at, says) in cases {
        let mut a = vec!["playbook"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-i", "inventory.yml"]);
        let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args(&a)
            .current_dir(d)
            .env("PATH", &path)
            .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(4), "{what}: {}", text(&out));
        if !at.is_empty() {
            let first = err.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("error: ") && first.contains(at),
                "{what}: {err}"
            );
        }
        assert!(err.contains(says), "{what}: {err}");
        assert!(!err.contains("tripwire-value"), "{what}: {err}");
        // The script above was run as a password file (it records its call): remove its trace.
        if *what == "wrong executable password file" {
            let _ = std::fs::remove_file(&marker);
        }
        assert!(!marker.exists(), "{what}: ssh was called");
    }
    // The same inventory with the right password reaches the host (so the trap works): the
    // tripwire ssh is called.
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            "pb.yml",
            "-i",
            "inventory.yml",
            "--vault-password-file",
            "pw.txt",
        ])
        .current_dir(d)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        marker.exists(),
        "the right password did not get as far as ssh"
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "a connection reached 127.20.0.1:22"
    );
}

const SECRET_PLAYBOOK: &str = r#"- hosts: all
  tasks:
    - name: the session key
      secret: {name: "{{ key_name }}", bytes: 32, format: hex, rotate: "{{ rotate }}"}
      register: key
    - name: the configuration
      copy: {content: "SECRET_KEY={{ key.secret }}\n", dest: "{{ out }}/config-{{ key_name }}", mode: "0600"}
    - debug: {var: key}
"#;

#[test]
fn a_secret_is_made_once_kept_rotated_and_sealed_for_ansible_vault() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let pw = passwords(d);
    write(
        &d.join("inventory/hosts.yml"),
        &format!(
            "all:\n  hosts:\n    h1:\n      ansible_connection: local\n      out: {}\n  vars:\n    rotate: false\n",
            d.join("out").display()
        ),
    );
    std::fs::create_dir_all(d.join("out")).unwrap();
    write(&d.join("pb.yml"), SECRET_PLAYBOOK);
    let run = |name: &str, extra: &[&str]| -> (serde_json::Value, String) {
        let kv = format!("key_name={name}");
        let mut a = vec![
            "playbook",
            "pb.yml",
            "-i",
            "inventory",
            "-e",
            &kv,
            "--output",
            "json",
            "-vvv",
            "--diff",
        ];
        a.extend_from_slice(extra);
        let out = castellan(d, &a);
        ok(name, &out);
        (serde_json::from_slice(&out.stdout).unwrap(), text(&out))
    };
    let status =
        |doc: &serde_json::Value| doc["plays"][0]["tasks"][0]["results"]["h1"]["status"].clone();
    let file = d.join("inventory/secrets/session_key");
    let config = d.join("out/config-session_key");

    // Check mode creates nothing.
    let (doc, _) = run("session_key", &["--check"]);
    assert_eq!(status(&doc), "changed");
    assert!(!file.exists() && !d.join("inventory/secrets").exists());

    let (doc, out1) = run("session_key", &[]);
    assert_eq!(status(&doc), "changed");
    let v1 = std::fs::read_to_string(&file)
        .unwrap()
        .trim_end()
        .to_string();
    assert_eq!(v1.len(), 64);
    assert!(v1.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(file.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!("SECRET_KEY={v1}\n")
    );

    let (doc, out2) = run("session_key", &[]);
    assert_eq!(status(&doc), "ok");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), v1);
    assert_eq!(doc["plays"][0]["tasks"][1]["results"]["h1"]["status"], "ok");

    let (doc, out3) = run("session_key", &["-e", "rotate=true"]);
    assert_eq!(status(&doc), "changed");
    let v2 = std::fs::read_to_string(&file)
        .unwrap()
        .trim_end()
        .to_string();
    assert_ne!(v1, v2);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        format!("SECRET_KEY={v2}\n")
    );
    for (what, out) in [("run 1", &out1), ("run 2", &out2), ("rotation", &out3)] {
        assert_nothing_of(&[&v1, &v2], what, out);
    }

    // With a vault password: stored encrypted, `ansible-vault view` reads it, castellan too.
    let sealed = d.join("inventory/secrets/sealed_key");
    let (doc, out4) = run("sealed_key", &["--vault-id", "prod@prod.txt"]);
    assert_eq!(status(&doc), "changed");
    let stored = std::fs::read_to_string(&sealed).unwrap();
    assert!(
        stored.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"),
        "{stored}"
    );
    let v3 = av(
        d,
        &[
            "view",
            "--vault-id",
            "prod@prod.txt",
            sealed.to_str().unwrap(),
        ],
    );
    let v3 = v3.trim_end().to_string();
    assert_eq!(v3.len(), 64);
    assert_eq!(
        std::fs::read_to_string(d.join("out/config-sealed_key")).unwrap(),
        format!("SECRET_KEY={v3}\n")
    );
    let (doc, out5) = run("sealed_key", &["--vault-id", "prod@prod.txt"]);
    assert_eq!(status(&doc), "ok");
    assert_nothing_of(&[&v3, &pw.prod], "sealed runs", &format!("{out4}{out5}"));
    // Without the password the sealed secret cannot be read: the task fails, nothing shown.
    let kv = "key_name=sealed_key";
    let out = castellan(d, &["playbook", "pb.yml", "-i", "inventory", "-e", kv]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no vault password was given"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&sealed).unwrap(),
        stored,
        "left as it was"
    );
}

static FLEET: fleet_common::FleetDef = fleet_common::FleetDef {
    net: "20",
    dir: "/tmp/castellan-fleet-vault",
};

const FLEET_PLAYBOOK: &str = r#"- hosts: postgres
  tasks:
    - name: a .pgpass with the vault password
      copy: {content: "*:5432:postgres:vault_app:{{ db_password }}\n", dest: "{{ fleet_root }}/vault/pgpass", mode: "0600"}
    - name: a world-readable file with the password
      copy: {content: "password={{ db_password }}\n", dest: "{{ fleet_root }}/vault/app-{{ run }}.conf", mode: "0644"}
    - name: log in with it over TCP
      shell: "sleep 1; PGPASSFILE={{ fleet_root }}/vault/pgpass psql -h {{ ansible_host }} -p 5432 -U vault_app -d postgres -XAtc 'select current_user'"
      register: login
      changed_when: false
    - debug: {var: login}
    - name: a URL with the password
      debug: {msg: "postgres://vault_app:{{ db_password }}@{{ ansible_host }}/postgres"}
    - name: the password on stdin
      shell: "cat > {{ fleet_root }}/vault/from-stdin-{{ run }}"
      args: {stdin: "{{ db_password }}"}
    - name: a failure quoting it
      fail: {msg: "failed with {{ db_password }}"}
      ignore_errors: true
"#;

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => files_under(&p, out),
            Ok(m) if m.is_file() => {
                if let Ok(b) = std::fs::read(&p) {
                    out.push((p, b));
                }
            }
            _ => {}
        }
    }
}

#[test]
fn a_vault_password_in_the_inventory_logs_in_on_a_fleet_and_is_never_shown() {
    FLEET.script("up.sh", &["1"]);
    let _down = FLEET.down_on_drop();
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let pw = passwords(d);
    // `:` and `\` would need escaping in .pgpass: not here.
    let password = format!("fleet p@ss w/rd\"-{}", std::process::id());
    // The role, made over the socket with the SQL on stdin (never in a process's arguments).
    let mut psql = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fleet/pg.sh"))
        .args(["db1", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1"])
        .env("CASTELLAN_FLEET_NET", FLEET.net)
        .env("CASTELLAN_FLEET_DIR", FLEET.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sql = format!(
        "DROP ROLE IF EXISTS vault_app;\nCREATE ROLE vault_app LOGIN PASSWORD '{}';\n",
        password.replace('\'', "''")
    );
    psql.stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = psql.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    FLEET.workdir(1, "vault");
    let block = encrypt_string(
        d,
        &["--vault-password-file", "pw.txt"],
        "db_password",
        &password,
        4,
    );
    write(
        &d.join("vault-inventory.yml"),
        &format!("all:\n  vars:\n{block}"),
    );
    write(&d.join("pb.yml"), FLEET_PLAYBOOK);

    let watch = secret_scan::ps::PsWatch::start();
    let inv = FLEET.inventory();
    let mut runs = Vec::new();
    for (run, extra) in [("text", &[][..]), ("json", &["--output", "json"][..])] {
        let run_var = format!("run={run}");
        let mut args = vec![
            "playbook",
            "pb.yml",
            "-i",
            &inv,
            "-i",
            "vault-inventory.yml",
            "-e",
            &run_var,
            "--vault-password-file",
            "pw.sh",
            "--diff",
            "-vvv",
        ];
        args.extend_from_slice(extra);
        let out = castellan(d, &args);
        ok(run, &out);
        runs.push((run, out));
    }
    let seen = watch.finish();

    // It worked: the login over TCP with the decrypted password.
    let doc: serde_json::Value = serde_json::from_slice(&runs[1].1.stdout).unwrap();
    let tasks = doc["plays"][0]["tasks"].as_array().unwrap();
    let login = &tasks
        .iter()
        .find(|x| x["name"] == "log in with it over TCP")
        .unwrap()["results"]["db1"];
    assert_eq!(login["status"], "ok", "{login}");
    assert_eq!(login["result"]["stdout"], "vault_app", "{login}");
    let root = FLEET.dir().join("hosts/db1/root/vault");
    assert_eq!(
        std::fs::read_to_string(root.join("app-json.conf")).unwrap(),
        format!("password={password}\n")
    );
    assert_eq!(
        std::fs::read_to_string(root.join("from-stdin-json")).unwrap(),
        format!("{password}\n")
    );
    assert!(
        seen.saw(&["sleep", "1"]),
        "the process watcher saw no task ({} snapshots)",
        seen.snapshots
    );

    let mut captures: Vec<(String, Vec<u8>)> = Vec::new();
    for (run, out) in &runs {
        captures.push((format!("{run} stdout"), out.stdout.clone()));
        captures.push((format!("{run} stderr"), out.stderr.clone()));
    }
    let mut state = Vec::new();
    files_under(&d.join(".castellan"), &mut state);
    for (p, b) in state {
        captures.push((p.display().to_string(), b));
    }
    for log in ["sshd.log", "postgresql.log"] {
        let p = FLEET.dir().join("hosts/db1").join(log);
        captures.push((
            p.display().to_string(),
            std::fs::read(&p).unwrap_or_default(),
        ));
    }
    captures.push(("process table".into(), seen.text()));
    let mut needles = forms(&password);
    needles.extend(forms(&pw.default));
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    needles.push(encoded);
    let mut scanned = 0;
    for (what, data) in &captures {
        scanned += data.len();
        let data = String::from_utf8_lossy(data);
        for n in &needles {
            assert!(!data.contains(n.as_str()), "{what} shows {n:?}");
        }
    }
    let all = String::from_utf8_lossy(&runs[0].1.stdout);
    assert!(all.contains("postgres://vault_app:<redacted>@"), "{all}");
    println!(
        "vault on a fleet: login over TCP with the decrypted password; {} captures ({scanned} bytes, \
         {} process-table snapshots) scanned for {} forms of the password and the vault password: \
         none found",
        captures.len(),
        seen.snapshots,
        needles.len()
    );
}

#[test]
fn ask_vault_pass_asks_on_the_terminal_without_echo() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault");
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let value = std::fs::read_to_string(fixtures.join("string-1.1.yml")).unwrap();
    let block: String = value.lines().map(|l| format!("    {l}\n")).collect();
    write(
        &d.join("inv.yml"),
        &format!("all:\n  hosts:\n    h1: {{ansible_connection: local}}\n  vars:\n{block}"),
    );
    let password = std::fs::read_to_string(fixtures.join("password.txt")).unwrap();
    let cmd = format!(
        "{} inventory -i inv.yml --list --ask-vault-pass",
        env!("CARGO_BIN_EXE_castellan")
    );
    // `script` gives castellan a terminal; the password is typed once the prompt is up.
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stdin.write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.starts_with("Vault password: "), "{screen}");
    assert!(
        screen.contains("\"db_password\": \"<redacted>\""),
        "{screen}"
    );
    assert!(
        !screen.contains(password.trim()),
        "the password was echoed: {screen}"
    );
    assert!(!screen.contains("inline-pass-4f2a"), "{screen}");
    // Without a terminal (a new session has none): a usage error, nothing read.
    let out = Command::new("setsid")
        .args(["-w", env!("CARGO_BIN_EXE_castellan")])
        .args(["inventory", "-i", "inv.yml", "--list", "--ask-vault-pass"])
        .current_dir(d)
        .stdin(std::process::Stdio::null())
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("needs a terminal"), "{}", text(&out));
}
