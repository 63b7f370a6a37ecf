//! dnf, yum and systemd paths through the recording fixtures of tests/fixtures/recording/
//! (there is no rpm database and no systemd as PID 1 on this machine): the real castellan
//! binary on a local host, the fixtures first on its PATH, each test with its own fixture state.
//! The tests assert the commands castellan ran (the fixtures' `calls.log`), the results it
//! registered, and that a second run and check mode run nothing that changes.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Fx {
    _dir: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let state = root.join("state");
        for d in ["rpmdb", "repo", "units", "unit-files", "fail"] {
            fs::create_dir_all(state.join(d)).unwrap();
        }
        Fx {
            _dir: dir,
            root,
            state,
        }
    }

    fn put(&self, rel: &str, content: &str) {
        fs::write(self.state.join(rel), content).unwrap();
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.state.join(rel)).ok()
    }

    /// A fixture package file (tests/fixtures/recording/README.md).
    fn rpm_file(&self, name: &str, evr: &str) -> String {
        let p = self.root.join(format!("{name}-{evr}.rpm"));
        fs::write(&p, format!("Name: {name}\nEVR: {evr}\nArch: noarch\n")).unwrap();
        p.display().to_string()
    }

    /// Recorded calls so far.
    fn calls(&self) -> Vec<String> {
        self.read("calls.log")
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Run `tasks` on a local host; `host_vars` are YAML lines for the host. Returns the exit
    /// code, the JSON report and the calls this run made.
    fn run(&self, tasks: &str, host_vars: &str, args: &[&str]) -> (i32, Value, Vec<String>) {
        let before = self.calls().len();
        let play = self.root.join("play.yml");
        fs::write(&play, format!("- hosts: all\n  tasks:\n{tasks}")).unwrap();
        let inv = self.root.join("inventory.yml");
        fs::write(
            &inv,
            format!("all:\n  hosts:\n    box1:\n      ansible_connection: local\n{host_vars}"),
        )
        .unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/recording");
        let path = format!(
            "{}:{}",
            fixtures.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args(["playbook"])
            .arg(&play)
            .arg("-i")
            .arg(&inv)
            .args(["--output", "json"])
            .args(args)
            .env("PATH", path)
            .env("CASTELLAN_FIXTURE_STATE", &self.state)
            .output()
            .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let calls = self.calls()[before..].to_vec();
        (out.status.code().unwrap_or(-1), doc, calls)
    }
}

/// The result of task `i` on box1.
fn task(doc: &Value, i: usize) -> &Value {
    &doc["plays"][0]["tasks"][i]["results"]["box1"]
}

/// The calls that change something (not the read-only queries).
fn changing(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| {
            !c.starts_with("rpm ")
                && !c.contains(" check-update ")
                && !c.starts_with("systemctl show")
                && !c.starts_with("systemctl is-enabled")
        })
        .cloned()
        .collect()
}

#[test]
fn dnf_installs_upgrades_downgrades_and_removes_through_the_recording_fixture() {
    let fx = Fx::new();
    fx.put("repo/demo-tool", "0:1.0-1 noarch\n");
    let web20 = fx.rpm_file("cs-web", "0:2.0-1");
    let web21 = fx.rpm_file("cs-web", "0:2.1-1");

    // 1. A name from the repository and a local file: one install.
    let install = format!("    - dnf:\n        name: [demo-tool, {web20}]\n");
    let (rc, doc, calls) = fx.run(&install, "", &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert_eq!(
        changing(&calls),
        [format!("dnf -y install demo-tool {web20}")]
    );
    assert_eq!(
        task(&doc, 0)["result"]["results"],
        serde_json::json!(["Installed: cs-web-2.0-1", "Installed: demo-tool-1.0-1"])
    );
    assert_eq!(fx.read("rpmdb/cs-web").as_deref(), Some("0:2.0-1 noarch\n"));

    // 2. Again: the installed versions match, nothing runs.
    let (rc, doc, calls) = fx.run(&install, "", &[]);
    assert_eq!(rc, 0);
    assert_eq!(task(&doc, 0)["status"], "ok");
    assert_eq!(task(&doc, 0)["result"]["msg"], "Nothing to do");
    assert!(changing(&calls).is_empty(), "{calls:?}");

    // 3. Check mode with the newer file: changed, with a diff, nothing run.
    let newer = format!("    - dnf:\n        name: {web21}\n");
    let (rc, doc, calls) = fx.run(&newer, "", &["--check", "--diff"]);
    assert_eq!(rc, 0);
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert!(changing(&calls).is_empty(), "{calls:?}");
    assert_eq!(fx.read("rpmdb/cs-web").as_deref(), Some("0:2.0-1 noarch\n"));

    // 4. The newer file, for real: an upgrade, reported as dnf does.
    let (_, doc, calls) = fx.run(&newer, "", &[]);
    assert_eq!(changing(&calls), [format!("dnf -y install {web21}")]);
    assert_eq!(
        task(&doc, 0)["result"]["results"],
        serde_json::json!(["Installed: cs-web-2.1-1", "Removed: cs-web-2.0-1"])
    );

    // 5. The older file: left alone (and said), unless allow_downgrade.
    let older = format!("    - dnf:\n        name: {web20}\n");
    let (_, doc, calls) = fx.run(&older, "", &[]);
    assert_eq!(task(&doc, 0)["status"], "ok");
    let msg = task(&doc, 0)["result"]["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains("cs-web 2.1-1 is installed, newer than 2.0-1"),
        "{msg}"
    );
    assert!(changing(&calls).is_empty());
    let (_, doc, calls) = fx.run(&format!("{older}        allow_downgrade: true\n"), "", &[]);
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert_eq!(changing(&calls), [format!("dnf -y downgrade {web20}")]);
    assert_eq!(fx.read("rpmdb/cs-web").as_deref(), Some("0:2.0-1 noarch\n"));

    // 6. latest: the cached metadata says 1.1 is available; options reach the command line.
    fx.put("repo/demo-tool", "0:1.1-1 noarch\n");
    let latest = "    - dnf:\n        name: demo-tool\n        state: latest\n        \
                  disable_gpg_check: true\n        enablerepo: cap\n";
    let (_, doc, calls) = fx.run(latest, "", &[]);
    assert!(
        calls.contains(&"dnf -q -C check-update demo-tool".to_string()),
        "{calls:?}"
    );
    assert_eq!(
        changing(&calls),
        ["dnf -y --nogpgcheck --enablerepo=cap upgrade demo-tool"]
    );
    assert_eq!(task(&doc, 0)["status"], "changed");
    let (_, doc, calls) = fx.run(latest, "", &[]);
    assert_eq!(task(&doc, 0)["status"], "ok");
    assert!(changing(&calls).is_empty());

    // 7. absent, by name and by file: one remove; then nothing.
    let absent =
        format!("    - dnf:\n        name: [demo-tool, {web21}]\n        state: removed\n");
    let (_, doc, calls) = fx.run(&absent, "", &[]);
    assert_eq!(changing(&calls), ["dnf -y remove demo-tool cs-web"]);
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert!(fx.read("rpmdb/demo-tool").is_none() && fx.read("rpmdb/cs-web").is_none());
    let (_, doc, calls) = fx.run(&absent, "", &[]);
    assert_eq!(task(&doc, 0)["status"], "ok");
    assert!(changing(&calls).is_empty());
}

#[test]
fn a_failing_install_fails_the_task_with_the_managers_message() {
    let fx = Fx::new();
    fx.put(
        "fail/install",
        "Error: Unable to find a match: cryptosense-analyzer-web\n",
    );
    let (rc, doc, calls) = fx.run(
        "    - dnf:\n        name: cryptosense-analyzer-web\n",
        "",
        &[],
    );
    assert_eq!(rc, 2, "{doc}");
    assert_eq!(
        changing(&calls),
        ["dnf -y install cryptosense-analyzer-web"]
    );
    let r = task(&doc, 0);
    assert_eq!(r["status"], "failed");
    assert_eq!(
        r["result"]["msg"],
        "'dnf -y install cryptosense-analyzer-web' failed: Error: Unable to find a match: cryptosense-analyzer-web"
    );
    assert_eq!(r["result"]["rc"], 1);
}

#[test]
fn yum_and_package_pick_their_commands() {
    let fx = Fx::new();
    fx.put("rpmdb/demo-lib", "0:1.0-1 noarch\n");
    fx.put("repo/demo-lib", "0:1.2-1 noarch\n");
    fx.put("repo/demo-tool", "0:3.0-1 noarch\n");
    let tasks = "    - yum:\n        name: demo-lib\n        state: latest\n\
                 \x20   - package:\n        name: demo-tool\n        state: present\n        use: yum\n\
                 \x20   - package:\n        name: demo-tool\n        state: absent\n";
    // `use: auto` takes ansible_pkg_mgr from the inventory.
    let (rc, doc, calls) = fx.run(tasks, "      ansible_pkg_mgr: dnf\n", &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(
        changing(&calls),
        [
            "yum -y update demo-lib",
            "yum -y install demo-tool",
            "dnf -y remove demo-tool"
        ]
    );
    for i in 0..3 {
        assert_eq!(task(&doc, i)["status"], "changed", "task {i}: {doc}");
    }
    // update_cache alone is no change (Ansible's dnf: "Cache updated").
    let (_, doc, calls) = fx.run("    - dnf:\n        update_cache: true\n", "", &[]);
    assert_eq!(changing(&calls), ["dnf -y makecache"]);
    assert_eq!(task(&doc, 0)["status"], "ok");
    assert_eq!(task(&doc, 0)["result"]["msg"], "Cache updated");
}

#[test]
fn systemd_through_the_recording_systemctl() {
    let fx = Fx::new();
    fx.put("units/cs-web.service", "");
    fx.put("unit-files/cs-worker.service", "");

    // started + enabled: enable, start; again: nothing; status registered.
    let up = "    - systemd:\n        name: cs-web\n        state: started\n        enabled: true\n      register: r\n";
    let (rc, doc, calls) = fx.run(up, "", &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(
        changing(&calls),
        ["systemctl enable cs-web", "systemctl start cs-web"]
    );
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert_eq!(task(&doc, 0)["result"]["status"]["ActiveState"], "inactive");
    assert_eq!(task(&doc, 0)["result"]["enabled"], true);
    assert_eq!(task(&doc, 0)["result"]["state"], "started");
    let (_, doc, calls) = fx.run(up, "", &[]);
    assert_eq!(task(&doc, 0)["status"], "ok");
    assert!(changing(&calls).is_empty(), "{calls:?}");
    assert_eq!(task(&doc, 0)["result"]["status"]["ActiveState"], "active");

    // restarted always acts; reloaded on a stopped unit starts it; check mode runs nothing.
    let (_, doc, calls) = fx.run(
        "    - systemd_service:\n        name: cs-web\n        state: restarted\n        no_block: true\n",
        "",
        &["--check"],
    );
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert!(changing(&calls).is_empty(), "{calls:?}");
    let tasks = "    - service:\n        name: cs-web\n        state: restarted\n        use: systemd\n\
                 \x20   - systemd:\n        name: cs-web\n        state: stopped\n        enabled: false\n\
                 \x20   - systemd:\n        name: cs-web\n        state: reloaded\n\
                 \x20   - systemd:\n        name: cs-web\n        masked: true\n        state: stopped\n";
    let (rc, doc, calls) = fx.run(tasks, "", &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(
        changing(&calls),
        [
            "systemctl restart cs-web",
            "systemctl disable cs-web",
            "systemctl stop cs-web",
            "systemctl start cs-web",
            "systemctl mask cs-web",
            "systemctl stop cs-web"
        ]
    );

    // A unit file copied in: daemon_reload first (not a change by itself), then start.
    let (_, doc, calls) = fx.run(
        "    - systemd:\n        daemon_reload: true\n",
        "",
        &["--check"],
    );
    assert_eq!(task(&doc, 0)["status"], "ok", "{doc}");
    assert!(calls.is_empty());
    let (_, doc, calls) = fx.run("    - systemd:\n        daemon_reload: true\n", "", &[]);
    assert_eq!(task(&doc, 0)["status"], "ok");
    assert_eq!(calls, ["systemctl daemon-reload"]);
    let (_, doc, calls) = fx.run(
        "    - systemd:\n        name: cs-worker\n        state: started\n        daemon_reload: true\n",
        "",
        &[],
    );
    assert_eq!(task(&doc, 0)["status"], "changed");
    assert_eq!(
        changing(&calls),
        ["systemctl daemon-reload", "systemctl start cs-worker"]
    );

    // An unknown unit, and a start that fails.
    let (rc, doc, _) = fx.run(
        "    - systemd:\n        name: nosuch\n        state: started\n",
        "",
        &[],
    );
    assert_eq!(rc, 2);
    assert_eq!(
        task(&doc, 0)["result"]["msg"],
        "Could not find the requested service nosuch: host box1"
    );
    fx.put(
        "fail/start",
        "Job for cs-worker.service failed because the control process exited with error code.\n",
    );
    fx.run(
        "    - systemd:\n        name: cs-worker\n        state: stopped\n",
        "",
        &[],
    );
    let (rc, doc, _) = fx.run(
        "    - systemd:\n        name: cs-worker\n        state: started\n",
        "",
        &[],
    );
    assert_eq!(rc, 2);
    let msg = task(&doc, 0)["result"]["msg"].as_str().unwrap();
    assert!(
        msg.starts_with("Unable to start service cs-worker: Job for cs-worker.service failed"),
        "{msg}"
    );
}
