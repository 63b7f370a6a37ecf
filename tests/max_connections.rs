//! `--max-connections N` on a real loopback fleet: at no moment more than N SSH masters (counted
//! from /proc and from the control directories), every host converged, nothing left behind; and
//! the same run without a binding cap does open more than N at once (the count can fail).
mod fleet_common;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fleet_common::FleetDef;

const HOSTS: usize = 12;
static FLEET: FleetDef = FleetDef {
    net: "32",
    dir: "/tmp/castellan-maxconn-test-fleet",
};

const PLAYBOOK: &str = r#"
- name: many hosts, few connections
  hosts: fleet
  tasks:
    - name: directory
      file: {path: "{{ fleet_root }}/maxconn", state: directory, mode: "0700"}
    - name: a file naming the host
      copy: {content: "{{ inventory_hostname }}\n", dest: "{{ fleet_root }}/maxconn/name", mode: "0600"}
    - name: a little work, so that hosts overlap
      command: sleep 0.2
    - name: a line
      lineinfile: {path: "{{ fleet_root }}/maxconn/conf", line: "ok = 1", create: yes, mode: "0600"}
"#;

/// The SSH masters of this run: ssh processes whose command line names a control directory
/// under `tmp` and asks to be a master.
fn masters_under(tmp: &Path) -> HashSet<u32> {
    let needle = tmp.join("castellan-ssh-").display().to_string();
    let mut found = HashSet::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if fs::read_to_string(format!("/proc/{pid}/comm")).map_or(true, |c| c.trim() != "ssh") {
            continue;
        }
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd);
        if cmd.contains(&needle) && (cmd.contains("ControlMaster=yes") || cmd.contains("[mux]")) {
            found.insert(pid);
        }
    }
    found
}

/// The control directories (one per master, made before it starts, removed after it exited).
fn control_dirs(tmp: &Path) -> usize {
    fs::read_dir(tmp).map_or(0, |d| {
        d.flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("castellan-ssh-")
            })
            .count()
    })
}

struct Run {
    out: Output,
    peak_masters: usize,
    peak_dirs: usize,
    all_masters: usize,
}

/// Run the playbook with `--max-connections cap`, sampling the masters every few milliseconds.
fn run(cap: usize, tmp: &Path) -> Run {
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp).unwrap();
    let book = tmp.join("book.yml");
    fs::write(&book, PLAYBOOK).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = Arc::clone(&done);
        let tmp = tmp.to_path_buf();
        std::thread::spawn(move || {
            let (mut peak_m, mut peak_d) = (0, 0);
            let mut seen = HashSet::new();
            while !done.load(Ordering::SeqCst) {
                let m = masters_under(&tmp);
                peak_m = peak_m.max(m.len());
                peak_d = peak_d.max(control_dirs(&tmp));
                seen.extend(m);
                std::thread::sleep(Duration::from_millis(3));
            }
            (peak_m, peak_d, seen.len())
        })
    };
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            &book.display().to_string(),
            "-i",
            &FLEET.inventory(),
        ])
        .args([
            "-f",
            &HOSTS.to_string(),
            "--max-connections",
            &cap.to_string(),
        ])
        .args(["--output", "json"])
        .env("TMPDIR", tmp)
        .output()
        .expect("run castellan");
    done.store(true, Ordering::SeqCst);
    let (peak_masters, peak_dirs, all_masters) = sampler.join().unwrap();
    eprintln!(
        "--max-connections {cap}: at most {peak_masters} masters and {peak_dirs} control \
         directories at once, {all_masters} masters in all"
    );
    Run {
        out,
        peak_masters,
        peak_dirs,
        all_masters,
    }
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

fn host_file(k: usize) -> PathBuf {
    PathBuf::from(format!("{}/hosts/db{k}/root/maxconn/name", FLEET.dir))
}

#[test]
fn a_cap_on_open_masters_holds_and_every_host_converges() {
    FLEET.script("up.sh", &[&HOSTS.to_string(), "--no-postgres"]);
    let _down = FLEET.down_on_drop();
    let tmp = PathBuf::from(format!("{}/tmp", FLEET.dir));
    for k in 1..=HOSTS {
        let _ = fs::remove_dir_all(host_file(k).parent().unwrap());
    }

    // 12 hosts, 12 forks, at most 3 masters.
    let r = run(3, &tmp);
    assert!(
        r.out.status.success(),
        "{}",
        String::from_utf8_lossy(&r.out.stderr)
    );
    let s = stats(&r.out);
    for k in 1..=HOSTS {
        let h = &s[format!("db{k}")];
        assert_eq!(h["failed"], 0, "db{k}: {h}");
        assert_eq!(h["unreachable"], 0, "db{k}: {h}");
        assert!(h["changed"].as_u64().unwrap() >= 3, "db{k}: {h}");
        assert_eq!(
            fs::read_to_string(host_file(k)).unwrap(),
            format!("db{k}\n")
        );
    }
    assert!(
        r.peak_masters <= 3 && r.peak_dirs <= 3,
        "{} masters and {} control directories at once with --max-connections 3",
        r.peak_masters,
        r.peak_dirs
    );
    assert!(
        r.peak_masters >= 2,
        "the sampler saw {} masters",
        r.peak_masters
    );
    // Hosts took turns: more masters over the run than at any moment. The hosts holding one
    // run each task first, so a task after the first reconnects 12 - 3 hosts, not all 12
    // (48 in all before they went first).
    assert!(r.all_masters > 3, "{} masters in all", r.all_masters);
    assert!(
        r.all_masters <= HOSTS + 3 * (HOSTS - 3),
        "{} masters in all: the hosts holding a connection did not go first",
        r.all_masters
    );
    assert!(masters_under(&tmp).is_empty(), "masters left after the run");
    assert_eq!(
        control_dirs(&tmp),
        0,
        "control directories left after the run"
    );

    // Converged: the same run with the cap changes nothing.
    let again = run(3, &tmp);
    assert!(again.out.status.success());
    let s = stats(&again.out);
    for k in 1..=HOSTS {
        let h = &s[format!("db{k}")];
        assert_eq!(h["failed"], 0, "db{k}: {h}");
        // `command` always reports a change; the file tasks do not.
        assert_eq!(h["changed"], 1, "db{k}: {h}");
    }
    assert!(
        again.peak_masters <= 3,
        "{} masters at once",
        again.peak_masters
    );

    // Without a binding cap the same run holds more than 3 masters at once: the sampler sees it.
    let free = run(HOSTS, &tmp);
    assert!(free.out.status.success());
    assert!(
        free.peak_masters > 3,
        "only {} masters at once with --max-connections {HOSTS}",
        free.peak_masters
    );
    assert!(free.peak_masters <= HOSTS);
    assert!(masters_under(&tmp).is_empty());
}
