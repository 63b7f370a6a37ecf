//! Playbooks over SSH against a real local fleet (tests/fleet/up.sh): convergence with become
//! and serial batches, idempotence, no ssh process left, and hosts cut off before and during a
//! run. One test drives the steps in order, since they kill hosts of a shared fleet.
mod fleet_common;

use fleet_common::FleetDef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NET: &str = "8";
const DIR: &str = "/tmp/castellan-playbook-test-fleet";
const HOSTS: usize = 5;

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn fleet(script: &str, args: &[&str]) -> Output {
    FLEET.script(script, args)
}

fn inventory() -> String {
    format!("{DIR}/inventory.yml")
}

fn fixture(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fleet")
        .join(p)
        .display()
        .to_string()
}

fn run(playbook: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            &fixture(playbook),
            "-i",
            &inventory(),
            "--output",
            "json",
        ])
        .output()
        .expect("run castellan")
}

fn doc(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn host_root(k: usize) -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/db{k}/root"))
}

/// `ssh` processes talking to this fleet's addresses (127.NET.x.y).
fn our_ssh_processes() -> Vec<String> {
    let needle = format!("127.{NET}.");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if comm.trim() == "ssh" && cmd.contains(&needle) {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

fn no_temp_files(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            assert!(
                !name.contains("castellan-tmp"),
                "temp file left behind: {}",
                e.path().display()
            );
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
}

#[test]
fn playbooks_over_ssh() {
    let _ = std::fs::remove_dir_all(format!("{DIR}/hosts"));
    fleet("up.sh", &[&HOSTS.to_string(), "--no-postgres"]);
    let _down = FLEET.down_on_drop();

    // 1. First run: everything changes, in batches of two.
    let first = run("site.yml");
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let d = doc(&first);
    for k in 1..=HOSTS {
        let h = format!("db{k}");
        assert_eq!(d["stats"][&h]["changed"], 6, "{h}: {}", d["stats"][&h]);
        let key = host_root(k).join("pg/server.key");
        let meta = std::fs::metadata(&key).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        assert_eq!(meta.uid(), pg.uid.as_raw());
        let reloads = std::fs::read_to_string(host_root(k).join("pg/reloads")).unwrap();
        assert_eq!(reloads.lines().count(), 1, "the handler runs once per host");
    }
    // Serial 2: db3 starts only after db1 and db2 have finished the whole play.
    let tasks = d["plays"][0]["tasks"].as_array().unwrap();
    let finished = |task: &serde_json::Value, h: &str| task["results"][h]["finished_at"].as_f64();
    let last_of_batch1 = tasks
        .iter()
        .filter_map(|t| finished(t, "db2"))
        .fold(0.0f64, f64::max);
    let first_of_batch2 = tasks
        .iter()
        .filter_map(|t| finished(t, "db3"))
        .fold(f64::MAX, f64::min);
    assert!(last_of_batch1 <= first_of_batch2, "batches overlapped");
    assert!(
        our_ssh_processes().is_empty(),
        "ssh left running: {:?}",
        our_ssh_processes()
    );

    // 2. Second run: nothing changes, no handler runs.
    let second = run("site.yml");
    assert_eq!(second.status.code(), Some(0));
    let d = doc(&second);
    for k in 1..=HOSTS {
        assert_eq!(d["stats"][format!("db{k}")]["changed"], 0, "{}", d["stats"]);
        let reloads = std::fs::read_to_string(host_root(k).join("pg/reloads")).unwrap();
        assert_eq!(reloads.lines().count(), 1);
    }
    assert!(
        our_ssh_processes().is_empty(),
        "ssh left running: {:?}",
        our_ssh_processes()
    );

    // 3. A host cut off before the run: unreachable, the others finish, exit 3.
    fleet("kill.sh", &["db2"]);
    let cut = run("site.yml");
    assert_eq!(
        cut.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&cut.stdout)
    );
    let d = doc(&cut);
    assert_eq!(d["stats"]["db2"]["unreachable"], 1);
    for h in ["db1", "db3", "db4", "db5"] {
        assert_eq!(d["stats"][h]["failed"], 0);
        assert_eq!(d["stats"][h]["unreachable"], 0);
    }
    fleet("up.sh", &[&HOSTS.to_string(), "--no-postgres"]);

    // 4. A host cut off mid-run, while a command runs on it: unreachable, the others finish
    //    their later writes, and nothing on it is half-written.
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            &fixture("slow.yml"),
            "-i",
            &inventory(),
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until every host has written slow-1 (task 1 done, the sleep is running).
    while !(1..=HOSTS).all(|k| host_root(k).join("slow-1").exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "task 1 never finished"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet("kill.sh", &["db4"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let d = doc(&out);
    assert_eq!(d["stats"]["db4"]["unreachable"], 1, "{}", d["stats"]);
    for k in [1, 2, 3, 5] {
        assert_eq!(
            std::fs::read_to_string(host_root(k).join("slow-2")).unwrap(),
            "second\n"
        );
    }
    assert!(!host_root(4).join("slow-2").exists());
    assert_eq!(
        std::fs::read_to_string(host_root(4).join("slow-1")).unwrap(),
        "first\n"
    );
    for k in 1..=HOSTS {
        no_temp_files(&host_root(k));
    }
    assert!(
        our_ssh_processes().is_empty(),
        "ssh left running: {:?}",
        our_ssh_processes()
    );
}
