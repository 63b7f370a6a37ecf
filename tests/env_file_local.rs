//! The `env_file` module through the real binary on `ansible_connection: local`: an installer
//! `.conf` set in place (owner, mode, a second run that changes nothing), diffs and their
//! redaction, secrets kept out of every output, `create: no`, values that cannot be written,
//! `state: absent`. Needs root (it gives files to another user).
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/env_file")
        .join(name);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A user other than root.
fn other_user() -> (&'static str, u32) {
    for name in ["postgres", "nobody"] {
        if let Ok(Some(u)) = nix::unistd::User::from_name(name) {
            return (name, u.uid.as_raw());
        }
    }
    panic!("neither postgres nor nobody exists")
}

/// Run `tasks` on one local host with `base` set; `args` are added to the command line.
fn play(base: &Path, tasks: &str, args: &[&str]) -> Output {
    let inv = base.join("inventory.yml");
    fs::write(
        &inv,
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n",
    )
    .unwrap();
    let pb = base.join("play.yml");
    fs::write(&pb, format!("- hosts: all\n  tasks:\n{tasks}")).unwrap();
    let b = format!("base={}", base.display());
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
        ])
        .args(["-e", &b])
        .args(args)
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

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// The result of task `index` of the first play on host `here`.
fn result(doc: &Value, index: usize) -> &Value {
    &doc["plays"][0]["tasks"][index]["results"]["here"]
}

const CSS_TASK: &str = r#"    - env_file:
        path: "{{ base }}/cast.conf"
        settings:
          CSS_SSL_ENABLED: true
          CSS_SSL_MODE: verify-full
          CSS_SSL_ROOT_CERT: "{{ ssl_dir }}/root.crt"
          CSS_SSL_CERT: "{{ ssl_dir }}/client.crt"
          CSS_SSL_KEY: "{{ ssl_dir }}/client.key"
          CSS_SSL_KEY_PEM: "{{ ssl_dir }}/client.pem.pk8"
          CSS_INI_FILE_PATH: "{{ ssl_dir }}/cast.ini"
        owner: OWNER
        mode: "0640"
      vars:
        ssl_dir: /etc/ssl/certs/cast
"#;

#[test]
fn an_installer_conf_gets_its_seven_variables_in_place_then_nothing_changes() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    let conf = base.join("cast.conf");
    fs::write(&conf, fixture("cast-installer.conf")).unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let (user, uid) = other_user();
    let tasks = CSS_TASK.replace("OWNER", user);

    let out = play(base, &tasks, &["--output", "json", "--diff"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(&conf).unwrap(),
        fixture("cast-installer.expected")
    );
    let m = fs::metadata(&conf).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o640, uid));
    let doc = json(&out);
    let r = result(&doc, 0);
    assert_eq!(r["status"], "changed", "{r}");
    let keys: Vec<&str> = r["result"]["keys_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "CSS_SSL_ENABLED",
            "CSS_SSL_MODE",
            "CSS_SSL_ROOT_CERT",
            "CSS_SSL_CERT",
            "CSS_SSL_KEY",
            "CSS_SSL_KEY_PEM",
            "CSS_INI_FILE_PATH"
        ]
    );
    // The file holds CSS_PASSWORD: its diff is never shown, nor the password.
    let diff = r["diff"].as_str().unwrap();
    assert!(diff.contains("<redacted>"), "{diff}");
    assert!(!text(&out).contains("CastAIP"), "{}", text(&out));

    // Second run: nothing to do, the file is not rewritten.
    let ino = m.ino();
    let out = play(base, &tasks, &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["stats"]["here"]["changed"], 0, "{}", text(&out));
    assert_eq!(
        result(&doc, 0)["result"]["keys_changed"],
        Value::Array(vec![])
    );
    assert_eq!(fs::metadata(&conf).unwrap().ino(), ino);
}

#[test]
fn the_diff_of_a_file_without_secrets_shows_the_changed_lines() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    fs::write(base.join("environment"), fixture("environment")).unwrap();
    let tasks = r#"    - env_file:
        path: "{{ base }}/environment"
        settings: {CASTCONNECTIONEXTRAPARAMETERS: /etc/cast/cast.ini}
"#;
    let out = play(base, tasks, &["--diff"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains("+CASTCONNECTIONEXTRAPARAMETERS=\"/etc/cast/cast.ini\"\n"),
        "{shown}"
    );
    assert_eq!(
        fs::read_to_string(base.join("environment")).unwrap(),
        fixture("environment.expected")
    );
}

#[test]
fn secrets_never_show_in_check_mode_diffs_or_results() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    let cfg = base.join("config");
    fs::write(&cfg, fixture("cap-config")).unwrap();
    fs::set_permissions(&cfg, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&cfg).unwrap();
    let tasks = r#"    - env_file:
        path: "{{ base }}/config"
        settings:
          DATABASE_URL: "postgres://cap:{{ db_password }}@db1/cap?sslmode=verify-ca"
          SECRET_KEY: "{{ secret_key }}"
      register: r
    - debug: {var: r}
"#;
    let password = "Pw0rd-in-the-URL";
    let secret = "5ec2e7f00d5ec2e7f00d5ec2e7f00d5e";
    let vars = format!("{{\"db_password\": \"{password}\", \"secret_key\": \"{secret}\"}}");
    for extra in [
        &["--check", "--diff", "-v"][..],
        &["--check", "--diff", "--output", "json"][..],
    ] {
        let mut args = vec!["-e", &vars];
        args.extend_from_slice(extra);
        let out = play(base, tasks, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let shown = text(&out);
        assert!(
            !shown.contains(password) && !shown.contains(secret),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(fs::read(&cfg).unwrap(), before, "check mode wrote the file");
    }
    let out = play(base, tasks, &["-e", &vars, "--diff", "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(
        !shown.contains(password) && !shown.contains(secret),
        "{shown}"
    );
    let written = fs::read_to_string(&cfg).unwrap();
    assert!(written.contains(&format!(
        "DATABASE_URL=\"postgres://cap:{password}@db1/cap?sslmode=verify-ca\"\n"
    )));
    assert!(written.contains(&format!("SECRET_KEY={secret}\n")));
    // The file is readable by others (0644): the redaction came from the settings' names.
    assert_eq!(fs::metadata(&cfg).unwrap().mode() & 0o7777, 0o644);
}

#[test]
fn create_no_fails_on_a_missing_file_and_create_makes_it() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    let tasks = r#"    - env_file:
        path: "{{ base }}/missing.env"
        settings: {A: 1}
        create: no
"#;
    let out = play(base, tasks, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("missing.env does not exist (create: no)"),
        "{}",
        text(&out)
    );
    assert!(!base.join("missing.env").exists());
    let tasks = r#"    - env_file:
        path: "{{ base }}/new.env"
        settings: {A: 1, B: "two words"}
        mode: "0600"
"#;
    let out = play(base, tasks, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(base.join("new.env")).unwrap(),
        "A=1\nB=\"two words\"\n"
    );
    assert_eq!(
        fs::metadata(base.join("new.env")).unwrap().mode() & 0o7777,
        0o600
    );
}

#[test]
fn a_value_that_cannot_be_written_fails_the_task_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    let f = base.join("app.env");
    fs::write(&f, "A='1'\n").unwrap();
    // Values known only once rendered: a line break, a quote single quotes cannot hold.
    for (value, quote, words) in [
        ("s3cret\\nINJECTED=1", "auto", "line break"),
        ("s3cret's", "single", "single quotes cannot hold"),
    ] {
        let tasks = format!(
            "    - env_file:\n        path: \"{{{{ base }}}}/app.env\"\n        settings: {{A: \"{{{{ v }}}}\"}}\n        quote: {quote}\n"
        );
        let vars = format!("{{\"v\": \"{value}\"}}");
        let out = play(base, &tasks, &["-e", &vars]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let shown = text(&out);
        assert!(shown.contains(words), "{shown}");
        assert!(!shown.contains("s3cret"), "the value is shown: {shown}");
        assert_eq!(fs::read_to_string(&f).unwrap(), "A='1'\n");
    }
}

#[test]
fn absent_removes_every_active_assignment_and_keeps_comments() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path();
    let f = base.join("app.env");
    fs::write(&f, "# OLD=commented\nOLD=1\nKEEP=2\nexport OLD=\"3\"\n").unwrap();
    let tasks = r#"    - env_file:
        path: "{{ base }}/app.env"
        keys: [OLD, NEVER_THERE]
        state: absent
      register: r
    - copy: {content: "{{ r.keys_changed | join(sep=\",\") }}", dest: "{{ base }}/changed"}
"#;
    let out = play(base, tasks, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(fs::read_to_string(&f).unwrap(), "# OLD=commented\nKEEP=2\n");
    assert_eq!(fs::read_to_string(base.join("changed")).unwrap(), "OLD");
    let out = play(base, tasks, &["--output", "json"]);
    assert_eq!(result(&json(&out), 0)["status"], "ok", "{}", text(&out));
}
