//! The engine end to end against `ansible_connection: local` hosts: check mode changes no
//! byte, the first run converges, the second changes nothing; bad input exits 4 untouched.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

fn fixture(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(p)
        .display()
        .to_string()
}

/// Every file under `dir` with its bytes and mode, and every directory with its mode.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                stack.push(e.path());
                out.insert(e.path(), (Vec::new(), mode));
            } else if meta.file_type().is_symlink() {
                let t = std::fs::read_link(e.path()).unwrap();
                out.insert(e.path(), (t.display().to_string().into_bytes(), mode));
            } else {
                out.insert(e.path(), (std::fs::read(e.path()).unwrap(), mode));
            }
        }
    }
    out
}

fn stats(out: &Output) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["stats"].clone()
}

/// Copy a directory tree (files and directories only).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn site(base: &Path, extra: &[&str]) -> Output {
    // A copy of the playbook per run: its `.castellan/pending/` state (written while a run
    // notifies) is its own, not that of the other tests running the same fixture at once.
    let copy = tempfile::tempdir().unwrap();
    for f in ["site.yml", "inventory.yml", "group_vars", "roles"] {
        let from = Path::new(&fixture("site")).join(f);
        if from.is_dir() {
            copy_tree(&from, &copy.path().join(f));
        } else {
            std::fs::copy(&from, copy.path().join(f)).unwrap();
        }
    }
    let pb = copy.path().join("site.yml").display().to_string();
    let inv = copy.path().join("inventory.yml").display().to_string();
    let b = format!("base={}", base.display());
    let mut args = vec!["playbook", &pb, "-i", &inv, "-e", &b, "--output", "json"];
    args.extend_from_slice(extra);
    castellan(&args)
}

#[test]
fn check_then_converge_then_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    std::fs::create_dir_all(base.join("node1/data")).unwrap();
    std::fs::write(
        base.join("node1/data/settings.conf"),
        "#listen = 1\nfoo = bar\n",
    )
    .unwrap();
    std::fs::write(base.join("node1/data/obsolete"), "old\n").unwrap();

    let before = snapshot(base);
    let check = site(base, &["--check", "--diff"]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(snapshot(base), before, "--check changed something on disk");
    let s = stats(&check);
    assert!(s["node1"]["changed"].as_u64().unwrap() > 0);

    let first = site(base, &[]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let s = stats(&first);
    for h in ["node1", "node2"] {
        assert!(s[h]["changed"].as_u64().unwrap() >= 8, "{h}: {}", s[h]);
        assert_eq!(s[h]["failed"], 0);
        assert_eq!(s[h]["rescued"], 1);
    }

    // What the run produced.
    let conf = std::fs::read_to_string(base.join("node1/etc/app.conf")).unwrap();
    assert_eq!(
        conf,
        "# demo on node1\nport = 5432\nuser = alice\nuser = bob\n"
    );
    let mode = |p: &str| {
        std::fs::metadata(base.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("node1/etc/app.conf"), 0o640);
    assert_eq!(mode("node1/etc/secret"), 0o600);
    assert_eq!(mode("node2/etc"), 0o750);
    let settings = std::fs::read_to_string(base.join("node1/data/settings.conf")).unwrap();
    assert!(
        settings.starts_with("listen = 5432\nfoo = bar\n# BEGIN ANSIBLE MANAGED BLOCK\n"),
        "{settings}"
    );
    let ini = std::fs::read_to_string(base.join("node2/etc/client.ini")).unwrap();
    assert_eq!(ini, "[db:5433]\nssl = true\nsslmode = verify-full\n");
    assert_eq!(
        std::fs::read_link(base.join("node1/bin/app.conf")).unwrap(),
        base.join("node1/etc/app.conf")
    );
    assert!(!base.join("node1/data/obsolete").exists());
    assert_eq!(
        std::fs::read_to_string(base.join("node1/data/reloads")).unwrap(),
        "reloaded\n"
    );

    let after_first = snapshot(base);
    let second = site(base, &[]);
    assert_eq!(second.status.code(), Some(0));
    let s = stats(&second);
    for h in ["node1", "node2"] {
        assert_eq!(
            s[h]["changed"], 0,
            "{h} changed on the second run: {}",
            s[h]
        );
    }
    assert_eq!(snapshot(base), after_first, "the second run changed files");
}

#[test]
fn secrets_stay_out_of_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let out = site(tmp.path(), &["--diff"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("secret=demo"), "no_log content leaked");
    assert!(text.contains("<redacted>"));
}

fn expect_invalid(playbook: &str, needle: &str, line_col: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let pb = fixture(&format!("errors/{playbook}"));
    let inv = fixture("errors/inventory.yml");
    let b = format!("base={}", tmp.path().display());
    let out = castellan(&["playbook", &pb, "-i", &inv, "-e", &b]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{playbook}: {err}");
    assert!(
        err.contains(&format!("{pb}:{line_col}")),
        "{playbook}: no location {line_col} in {err}"
    );
    assert!(err.contains(needle), "{playbook}: `{needle}` not in {err}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "{playbook}: something was written"
    );
}

#[test]
fn malformed_yaml_exits_4_with_location() {
    expect_invalid("malformed.yml", "YAML syntax error", "5:1");
}

#[test]
fn unknown_module_exits_4_and_suggests() {
    expect_invalid("unknown_module.yml", "did you mean `copy`?", "5:7");
}

#[test]
fn unknown_argument_exits_4_and_suggests() {
    expect_invalid("unknown_arg.yml", "did you mean `line`?", "7:15");
}

#[test]
fn undefined_variable_exits_4() {
    expect_invalid("undefined_var.yml", "undefined variable `pg_prot`", "6:14");
}

#[test]
fn template_syntax_exits_4_with_a_hint() {
    expect_invalid(
        "bad_template.yml",
        "unknown filter `defualt` (did you mean `default`?)",
        "5:14",
    );
}

#[test]
fn failing_task_exits_2_and_stops_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let pb = fixture("errors/failing.yml");
    let inv = fixture("errors/inventory.yml");
    let b = format!("base={}", tmp.path().display());
    let out = castellan(&["playbook", &pb, "-i", &inv, "-e", &b]);
    assert_eq!(out.status.code(), Some(2));
    assert!(tmp.path().join("touched").exists());
    assert!(!tmp.path().join("after-failure").exists());
}

#[test]
fn bad_flag_exits_5() {
    let out = castellan(&["playbook", "--no-such-flag", "x.yml"]);
    assert_eq!(out.status.code(), Some(5));
    let out = castellan(&["inventory", "-i", "/nonexistent/inventory.yml", "--list"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn syntax_check_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let b = format!("base={}", tmp.path().display());
    let out = castellan(&[
        "playbook",
        &fixture("site/site.yml"),
        "-i",
        &fixture("site/inventory.yml"),
        "-e",
        &b,
        "--syntax-check",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn handlers_notified_before_a_failure_run_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    // The playbook lives in its own copy, so the pending state of this test is its own.
    let dir = tmp.path().join("pb");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["site.yml", "inventory.yml"] {
        std::fs::copy(fixture(&format!("pending/{f}")), dir.join(f)).unwrap();
    }
    let base = tmp.path().join("host");
    std::fs::create_dir_all(&base).unwrap();
    let run = |version: &str, break_it: &str| {
        castellan(&[
            "playbook",
            dir.join("site.yml").to_str().unwrap(),
            "-i",
            dir.join("inventory.yml").to_str().unwrap(),
            "-e",
            &format!(
                "base={} version={version} break_it={break_it}",
                base.display()
            ),
        ])
    };
    let out = run("1", "yes");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !base.join("restarts").exists(),
        "the handler must not run on a failed host"
    );
    assert!(dir.join(".castellan/pending/local1.json").exists());
    // Same content now (no change), but the handler from the failed run is still owed.
    let out = run("1", "no");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(base.join("restarts")).unwrap(),
        "restarted\n"
    );
    assert!(!dir.join(".castellan/pending/local1.json").exists());
    let out = run("1", "no");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(base.join("restarts")).unwrap(),
        "restarted\n"
    );
}
