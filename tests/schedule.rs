//! Issue 13, scheduling: `castellan schedule install` writes systemd units that the real
//! `systemd-analyze verify` accepts (no systemd as PID 1 is needed for that), or a cron file whose
//! command a real `sh` runs; `--lock` keeps two runs from overlapping: the second names the
//! holder's PID and exits 75, having done nothing; the kernel frees the lock when the holder dies.
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run castellan")
}

fn systemd_analyze() -> &'static str {
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "systemd-analyze is missing: run tests/setup.sh");
    "systemd-analyze"
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = systemd_analyze();
    let t = tempfile::tempdir().unwrap();
    let units = t.path().join("units");
    fs::create_dir(&units).unwrap();
    let units_s = units.display().to_string();
    // An argument systemd would otherwise expand or split: spaces, quotes, %, $, a backslash.
    let tricky = r#"note=100% "done" for $HOME \o/"#;
    let out = castellan(&[
        "schedule",
        "install",
        "--name",
        "rotate",
        "--unit-dir",
        &units_s,
        "--",
        "playbook",
        "playbooks/enable-mtls.yml",
        "-i",
        "tests/fleet/inventory.yml",
        "-e",
        tricky,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("checked with systemd-analyze verify"),
        "{said}"
    );
    assert!(
        said.contains("systemctl enable --now castellan-rotate.timer"),
        "{said}"
    );
    let service = units.join("castellan-rotate.service");
    let timer = units.join("castellan-rotate.timer");
    for f in [&service, &timer] {
        assert_eq!(mode(f), 0o644, "{}", f.display());
    }
    let v = Command::new(analyze)
        .arg("verify")
        .args([&service, &timer])
        .output()
        .unwrap();
    assert!(
        v.status.success() && v.stderr.is_empty(),
        "systemd-analyze verify: {}",
        text(&v.stderr)
    );
    let timer_text = fs::read_to_string(&timer).unwrap();
    for line in [
        "OnCalendar=daily\n",
        "RandomizedDelaySec=1h\n",
        "Persistent=true\n",
        "Unit=castellan-rotate.service\n",
        "WantedBy=timers.target\n",
    ] {
        assert!(timer_text.contains(line), "{line} not in\n{timer_text}");
    }
    let service_text = fs::read_to_string(&service).unwrap();
    let exec = format!(
        "ExecStart=\"{}\" \"--lock\" \"/run/lock/castellan-rotate.lock\" \"playbook\"",
        env!("CARGO_BIN_EXE_castellan")
    );
    for line in [
        "Type=oneshot\n",
        &format!("WorkingDirectory={}\n", repo().display()),
        &exec,
        r#""-e" "note=100%% \"done\" for $$HOME \\o/" "--output" "json""#,
        "StandardOutput=append:/var/log/castellan/rotate.log\n",
        "StandardError=journal\n",
        "LogsDirectory=castellan\n",
    ] {
        assert!(service_text.contains(line), "{line} not in\n{service_text}");
    }

    // What systemd would refuse is refused before anything is written: exit 5.
    let bad = t.path().join("bad");
    fs::create_dir(&bad).unwrap();
    let out = castellan(&[
        "schedule",
        "install",
        "--name",
        "rotate",
        "--unit-dir",
        bad.to_str().unwrap(),
        "--on-calendar",
        "every day",
        "--",
        "certs",
        "status",
        "-i",
        "tests/fleet/inventory.yml",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("calendar"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read_dir(&bad).unwrap().count(), 0);
}

#[test]
fn a_command_castellan_would_refuse_is_refused_at_install() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().display().to_string();
    for (args, why) in [
        (
            vec!["--name", "x y", "--", "certs", "status", "-i", "i.yml"],
            "--name",
        ),
        (
            vec!["--name", "x", "--", "playbok", "site.yml", "-i", "i.yml"],
            "playbook",
        ),
        (
            vec![
                "--name", "x", "--", "--lock", "/tmp/l", "certs", "status", "-i", "i.yml",
            ],
            "--lock-file",
        ),
        (
            vec![
                "--name", "x", "--", "schedule", "install", "--name", "y", "--", "pki",
            ],
            "itself",
        ),
        (
            vec![
                "--name",
                "x",
                "--cron",
                "--on-calendar",
                "Mon 03:00",
                "--",
                "certs",
                "status",
                "-i",
                "i",
            ],
            "--cron-schedule",
        ),
        (
            vec![
                "--name",
                "x",
                "--log-file",
                "rel/x.log",
                "--",
                "certs",
                "status",
                "-i",
                "i",
            ],
            "absolute",
        ),
    ] {
        let mut a = vec![
            "schedule",
            "install",
            "--unit-dir",
            &dir,
            "--cron-dir",
            &dir,
        ];
        a.extend(args.iter());
        let out = castellan(&a);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert_eq!(
        fs::read_dir(t.path()).unwrap().count(),
        0,
        "something was written"
    );
}

#[test]
fn the_cron_line_runs_under_sh_with_the_lock_and_its_log() {
    let t = tempfile::tempdir().unwrap();
    let cron = t.path().join("cron.d");
    fs::create_dir(&cron).unwrap();
    // `%` ends a cron command unless escaped.
    let log = t.path().join("log/inv%d.log");
    let lock = t.path().join("inv.lock");
    let out = castellan(&[
        "schedule",
        "install",
        "--name",
        "inventory-dump",
        "--cron",
        "--cron-dir",
        cron.to_str().unwrap(),
        "--log-file",
        &log.display().to_string(),
        "--lock-file",
        lock.to_str().unwrap(),
        "--",
        "inventory",
        "-i",
        "playbooks/inventory/local.yml",
        "--list",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let file = cron.join("castellan-inventory-dump");
    assert_eq!(mode(&file), 0o644);
    let body = fs::read_to_string(&file).unwrap();
    let line = body
        .lines()
        .find(|l| !l.starts_with('#') && !l.contains('='))
        .unwrap();
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7, "{line}");
    assert!(fields[0].parse::<u32>().unwrap() < 60 && fields[1].parse::<u32>().unwrap() < 24);
    assert_eq!(fields[2..5], ["*", "*", "*"]);
    assert_eq!(fields[5], "root");
    // What cron hands to sh (`\%` becomes `%`), run by the real sh.
    let command = fields[6].replace("\\%", "%");
    let run = Command::new("sh").arg("-c").arg(&command).output().unwrap();
    assert!(run.status.success(), "{command}: {}", text(&run.stderr));
    let written = fs::read_to_string(&log).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert!(doc["_meta"]["hostvars"].is_object(), "{doc}");
    assert!(fs::read_to_string(&lock)
        .unwrap()
        .contains("command inventory"));
}

/// Waits until `lock` names `pid` as its holder.
fn wait_held(lock: &Path, pid: u32) {
    let start = Instant::now();
    while !fs::read_to_string(lock).is_ok_and(|t| t.starts_with(&format!("pid {pid}\n"))) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the lock was never taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_runs_never_overlap() {
    let t = tempfile::tempdir().unwrap();
    let inv = t.path().join("inventory.yml");
    fs::write(
        &inv,
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n",
    )
    .unwrap();
    let play = t.path().join("slow.yml");
    fs::write(
        &play,
        "- hosts: localhost\n  tasks:\n    - name: a long task\n      command: sleep 3\n",
    )
    .unwrap();
    let lock = t.path().join("run.lock");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["--lock".to_string(), lock.display().to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let playbook = args(&[
        "playbook",
        play.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
    ]);
    let first = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(&playbook)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_held(&lock, first.id());
    let started = Instant::now();
    let second = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(&playbook)
        .output()
        .unwrap();
    let err = text(&second.stderr);
    assert_eq!(second.status.code(), Some(75), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.id()))
            && err.contains("`castellan playbook`")
            && err.contains(&lock.display().to_string())
            && err.contains("did nothing"),
        "{err}"
    );
    assert!(
        second.stdout.is_empty(),
        "the second run ran: {}",
        text(&second.stdout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the second run waited"
    );
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    // Free again: the next run takes it.
    let third = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args(&["inventory", "-i", inv.to_str().unwrap(), "--list"]))
        .output()
        .unwrap();
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));

    // A holder killed with SIGKILL leaves its file, not its lock.
    let mut killed = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(&playbook)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_held(&lock, killed.id());
    killed.kill().unwrap();
    killed.wait().unwrap();
    let after = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args(&["inventory", "-i", inv.to_str().unwrap(), "--list"]))
        .output()
        .unwrap();
    assert_eq!(after.status.code(), Some(0), "{}", text(&after.stderr));
}
