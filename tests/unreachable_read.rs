//! Issue 9, acceptance 3: a connection that drops while a module reads the host makes the host
//! `unreachable` (exit 3), not `failed`.
//!
//! Deterministic: pg_facts' read runs `psql` from `bin_dir`, here a script of the test's that
//! says it started and then blocks opening a FIFO nobody writes. Once it runs, the test kills
//! castellan's SSH master process (SIGKILL): the connection dies in the middle of the module's
//! read. Fleet net 15 (its own addresses and state dir). Needs root.
mod fleet_common;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleet_common::{FleetDef, Shared};

static DEF: FleetDef = FleetDef {
    net: "15",
    dir: "/tmp/castellan-fleet-protocol",
};
static FLEET: Shared = Shared::new(&DEF, &["1", "--no-postgres"]);

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// The `ssh` processes whose parent is `parent` (castellan's masters).
fn ssh_children(parent: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if comm.ends_with("(ssh") && ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_master_killed_during_a_read_makes_the_host_unreachable_not_failed() {
    let fleet = FLEET.get();
    let wd = fleet.workdir(1, "unreachable-read");
    let fifo = wd.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let started = wd.join("started");
    let bin = wd.join("bin");
    fs::create_dir(&bin).unwrap();
    let psql = bin.join("psql");
    fs::write(
        &psql,
        format!(
            "#!/bin/sh\n: > '{}'\nexec cat '{}'\n",
            s(&started),
            s(&fifo)
        ),
    )
    .unwrap();
    fs::set_permissions(&psql, fs::Permissions::from_mode(0o755)).unwrap();
    let play = wd.join("play.yml");
    fs::write(
        &play,
        format!(
            "- hosts: db1\n  tasks:\n    - pg_facts:\n        bin_dir: {}\n        os_user: root\n        \
             socket_dir: {}\n    - debug:\n        msg: never reached\n",
            s(&bin),
            s(&wd)
        ),
    )
    .unwrap();

    let child = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["playbook", s(&play), "-i", &fleet.inventory(), "-l", "db1"])
        .args(["--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run castellan");
    // The module is reading: its psql runs on the host and blocks.
    let t = Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the module's read never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let masters = ssh_children(child.id());
    assert_eq!(masters.len(), 1, "one SSH master per host: {masters:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(masters[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    // Let the blocked read on the host go (a writer that opens and closes the FIFO).
    let _ = fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&fifo);

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    let r = &doc["plays"][0]["tasks"][0]["results"]["db1"];
    assert_eq!(r["status"], "unreachable", "{r:#}\n{stderr}");
    assert_eq!(doc["stats"]["db1"]["unreachable"], 1, "{}", doc["stats"]);
    assert_eq!(doc["stats"]["db1"]["failed"], 0, "{}", doc["stats"]);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
}
