//! Fault tests on a real SSH fleet (issue 8): a host that dies between two tasks, and SIGINT /
//! SIGTERM delivered at ten points of a run that notifies a handler.
//!
//! The fleet is `tests/fleet/up.sh 3 --no-postgres` on its own address block (NET 13) and state
//! dir; the tests of this file take turns on it (a lock) and the last one out brings it down.
//! Needs root (sshd on port 22 of loopback addresses).
//!
//! What an interrupted run must leave, checked after every one of the ten interrupts:
//! - exit 130 for SIGINT, 143 for SIGTERM, and one JSON report on stdout;
//! - no temp file of an atomic write (`.NAME.castellan-tmp-*`) under any host's directory;
//! - no process of ours: no `ssh` to a fleet address, no `sleep` (nor the shell around it) of the
//!   run, remote (started by sshd) or local, no control directory left in the run's TMPDIR;
//! - the next run runs the handler that the interrupted run notified (the handler appends to a
//!   file), although the next run changes nothing itself.
mod fleet_common;

use fleet_common::{FleetDef, Held, Shared};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const NET: &str = "13";
const DIR: &str = "/tmp/castellan-fleet-interrupts";
const HOSTS: usize = 3;

static DEF: FleetDef = FleetDef { net: NET, dir: DIR };
static FLEET: Shared = Shared::new(&DEF, &["3", "--no-postgres"]);
/// The tests of this file take turns: one of them kills a host.
static TURN: Mutex<()> = Mutex::new(());

fn fleet_script(script: &str, args: &[&str]) -> Output {
    DEF.script(script, args)
}

/// The fleet, up while a test holds it; up.sh runs again on every hold, since that also
/// restarts a host a previous test killed.
fn fleet() -> Arc<Held> {
    let held = FLEET.get();
    fleet_script("up.sh", &[&HOSTS.to_string(), "--no-postgres"]);
    held
}

fn root(k: usize) -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/db{k}/root"))
}

/// A fresh work directory (playbook, TMPDIR) for one scenario.
fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(DIR).join("work").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("tmp")).unwrap();
    d
}

fn castellan(work: &Path, playbook: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_castellan"));
    c.args(["playbook", playbook.to_str().unwrap()])
        .args(["-i", &format!("{DIR}/inventory.yml"), "--output", "json"])
        .args(extra)
        // The ssh control directories go here: checked empty after the run.
        .env("TMPDIR", work.join("tmp"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// A live (not zombie) process: its pid, comm and command line.
struct Proc {
    pid: u32,
    comm: String,
    cmdline: String,
}

fn processes() -> Vec<Proc> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) S ...`: a zombie (PID 1 here may not reap orphans) is not running.
        if stat
            .rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z'))
        {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmd).replace('\0', " ");
        v.push(Proc {
            pid,
            comm: comm.trim().to_string(),
            cmdline,
        });
    }
    v
}

/// Processes of ours still alive: ssh to the fleet's addresses, anything running `needle`.
fn leftovers(needle: &str) -> Vec<String> {
    let me = std::process::id();
    processes()
        .into_iter()
        .filter(|p| p.pid != me)
        .filter(|p| {
            (p.comm == "ssh" && p.cmdline.contains(&format!("127.{NET}.1.")))
                || p.cmdline.contains(needle)
        })
        .map(|p| format!("{} {} [{}]", p.pid, p.cmdline, p.comm))
        .collect()
}

/// Leftovers after a short grace (a signalled process takes a moment to be gone).
fn leftovers_after_grace(needle: &str) -> Vec<String> {
    let t = Instant::now();
    loop {
        let l = leftovers(needle);
        if l.is_empty() || t.elapsed() > Duration::from_secs(2) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Temp files of atomic writes anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains("castellan-tmp") || name.ends_with(".tmp") {
            out.push(p.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temp_files(&p));
        }
    }
    out
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The status of `host` for the (first) task named `name`.
fn status_of(doc: &Value, task: &str, host: &str) -> Option<String> {
    doc["plays"]
        .as_array()?
        .iter()
        .flat_map(|p| p["tasks"].as_array().into_iter().flatten())
        .find(|t| t["name"] == task)
        .and_then(|t| t["results"][host]["status"].as_str())
        .map(str::to_string)
}

/// The playbook of the interrupt scenarios. Every long step first touches a marker under the
/// host's root, so the test knows where the run is; `pause` (unique per scenario) is how long
/// the steps sleep, and what the test looks for in the process table. With `pause=0` the same
/// playbook runs straight through.
const PLAYBOOK: &str = r#"- hosts: fleet
  vars:
    pause: "0"
    stop: none
  tasks:
    - name: config
      copy:
        dest: "{{ fleet_root }}/app.conf"
        content: "version {{ version }}\n"
      notify: restart app
    - name: big file
      shell: "touch {{ fleet_root }}/s5"
    - name: write big
      copy:
        src: "{{ big }}"
        dest: "{{ fleet_root }}/big.bin"
    - name: remote sleep
      shell: "touch {{ fleet_root }}/s1; sleep {% if stop == 's1' %}{{ pause }}{% else %}0{% endif %}"
    - name: local sleep
      shell: "touch {{ fleet_root }}/s2; sleep {% if stop == 's2' %}{{ pause }}{% else %}0{% endif %}"
      delegate_to: localhost
    - name: loop sleep
      shell: "touch {{ fleet_root }}/s3; sleep {% if stop == 's3' %}{{ pause }}{% else %}0{% endif %}"
      loop: [1, 2]
    - name: retry wait
      shell: "touch {{ fleet_root }}/s4; test -e {{ fleet_root }}/again || (touch {{ fleet_root }}/again; false)"
      register: r
      until: r.rc == 0
      retries: 1
      delay: 2
  handlers:
    - name: restart app
      shell: "echo {{ version }} >> {{ fleet_root }}/restarts; touch {{ fleet_root }}/h; sleep {% if stop == 'h' %}{{ pause }}{% else %}0{% endif %}"
"#;

/// Where to interrupt: after `after_ms` from the start, or after `after_ms` once db1's marker
/// `marker` exists; then `second` (if any) 30 ms later. `stop`: the step that sleeps (holds the
/// run there).
struct Point {
    sig: Signal,
    marker: Option<&'static str>,
    after_ms: u64,
    second: Option<Signal>,
    stop: &'static str,
}

fn code_for(sig: Signal) -> i32 {
    match sig {
        Signal::SIGINT => 130,
        Signal::SIGTERM => 143,
        _ => unreachable!(),
    }
}

/// Send the point's signal(s); returns when the (first) signal was sent.
fn interrupt(child: &mut Child, p: &Point) -> Instant {
    let pid = Pid::from_raw(child.id() as i32);
    let t0 = Instant::now();
    if let Some(m) = p.marker {
        let path = root(1).join(m);
        if !wait_for(&path, Duration::from_secs(30)) {
            let _ = kill(pid, Signal::SIGKILL);
            let out = child_output(child);
            panic!(
                "marker {m} never appeared: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    std::thread::sleep(Duration::from_millis(p.after_ms));
    kill(pid, p.sig).unwrap();
    let sent = Instant::now();
    if let Some(s) = p.second {
        std::thread::sleep(Duration::from_millis(30));
        let _ = kill(pid, s);
    }
    eprintln!(
        "  {:?}{} at {:?}",
        p.sig,
        p.second.map(|s| format!("+{s:?}")).unwrap_or_default(),
        t0.elapsed()
    );
    sent
}

fn child_output(child: &mut Child) -> Output {
    use std::io::Read;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_end(&mut stderr);
    }
    let status = child.wait().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

#[test]
fn sigint_and_sigterm_at_ten_points_leave_nothing_behind_and_keep_the_handler() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let _fleet = fleet();
    let work = workdir("signals");
    let pb = work.join("site.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    // Large enough that the write takes a moment on loopback.
    let big = work.join("big.bin");
    let data: Vec<u8> = (0..4u32 << 20)
        .map(|i| i.wrapping_mul(2654435761) as u8)
        .collect();
    std::fs::write(&big, data).unwrap();
    let big_var = format!("big={}", big.display());

    use Signal::{SIGINT, SIGTERM};
    let points = [
        (SIGINT, None, 40, None, "s1"),
        (SIGTERM, Some("s5"), 20, None, "s1"),
        (SIGINT, Some("s1"), 50, None, "s1"),
        (SIGTERM, Some("s1"), 50, None, "s1"),
        (SIGINT, Some("s2"), 50, None, "s2"),
        (SIGTERM, Some("s3"), 50, None, "s3"),
        (SIGINT, Some("s4"), 50, None, "s4"),
        (SIGTERM, Some("h"), 50, None, "h"),
        (SIGINT, Some("s1"), 50, Some(SIGINT), "s1"),
        (SIGTERM, Some("s3"), 50, Some(SIGINT), "s3"),
    ];
    let mut failures = Vec::new();
    for (i, (sig, marker, after_ms, second, stop)) in points.into_iter().enumerate() {
        let p = Point {
            sig,
            marker,
            after_ms,
            second,
            stop,
        };
        let version = format!("v{i}-{}", std::process::id());
        // Unique per point: what the sleeps of this run look like in the process table.
        let pause = format!("{}.{:02}", 40 + i, std::process::id() % 100);
        for k in 1..=HOSTS {
            for m in ["s1", "s2", "s3", "s4", "s5", "h", "again", "restarts"] {
                let _ = std::fs::remove_file(root(k).join(m));
            }
        }
        let _ = std::fs::remove_dir_all(work.join("tmp"));
        std::fs::create_dir_all(work.join("tmp")).unwrap();
        eprintln!("point {i}: {:?} at {:?} (+{after_ms} ms)", sig, marker);
        let t = Instant::now();
        let mut child = castellan(
            &work,
            &pb,
            &[
                "-e",
                &format!("version={version}"),
                "-e",
                &format!("pause={pause}"),
                "-e",
                &format!("stop={}", p.stop),
                "-e",
                &big_var,
            ],
        )
        .spawn()
        .unwrap();
        let sent = interrupt(&mut child, &p);
        let out = child_output(&mut child);
        let took = t.elapsed();
        let stop = sent.elapsed();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut problems = Vec::new();
        // The commands in flight are ended, not waited for (they sleep 40 s and more).
        if stop > Duration::from_secs(8) {
            problems.push(format!("the run took {stop:?} to stop"));
        }
        if out.status.code() != Some(code_for(sig)) {
            problems.push(format!(
                "exit {:?} (expected {}), signal {:?}",
                out.status.code(),
                code_for(sig),
                std::os::unix::process::ExitStatusExt::signal(&out.status)
            ));
        } else if serde_json::from_slice::<Value>(&out.stdout).is_err() {
            problems.push(format!(
                "stdout is not one JSON report: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        let left = leftovers_after_grace(&format!("sleep {pause}"));
        if !left.is_empty() {
            problems.push(format!("processes left: {left:?}"));
        }
        for k in 1..=HOSTS {
            let tmp = temp_files(&root(k));
            if !tmp.is_empty() {
                problems.push(format!("temp files left on db{k}: {tmp:?}"));
            }
        }
        let tmp = temp_files(&work.join(".castellan"));
        if !tmp.is_empty() {
            problems.push(format!("temp files left in .castellan: {tmp:?}"));
        }
        let ctl: Vec<_> = std::fs::read_dir(work.join("tmp"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if !ctl.is_empty() {
            problems.push(format!("control directories left: {ctl:?}"));
        }
        // Did the interrupted run change the configuration? Then its handler is owed.
        let changed: Vec<bool> = (1..=HOSTS)
            .map(|k| {
                std::fs::read_to_string(root(k).join("app.conf")).unwrap_or_default()
                    == format!("version {version}\n")
            })
            .collect();
        let before: Vec<usize> = (1..=HOSTS)
            .map(|k| {
                lines(&root(k).join("restarts"))
                    .iter()
                    .filter(|l| **l == version)
                    .count()
            })
            .collect();
        // Cleanup of an earlier point must not leak into the next one: kill by pid what is left.
        for l in leftovers(&format!("sleep {pause}")) {
            if let Some(pid) = l.split_whitespace().next().and_then(|p| p.parse().ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let next = castellan(
            &work,
            &pb,
            &[
                "-e",
                &format!("version={version}"),
                "-e",
                "pause=0",
                "-e",
                &big_var,
            ],
        )
        .output()
        .unwrap();
        if next.status.code() != Some(0) {
            problems.push(format!(
                "the next run exited {:?}: {}",
                next.status.code(),
                String::from_utf8_lossy(&next.stderr)
            ));
        } else {
            let doc = json(&next);
            for k in 1..=HOSTS {
                let host = format!("db{k}");
                let after = lines(&root(k).join("restarts"))
                    .iter()
                    .filter(|l| **l == version)
                    .count();
                if after <= before[k - 1] {
                    problems.push(format!("{host}: the next run did not run the handler"));
                }
                if changed[k - 1] && status_of(&doc, "config", &host).as_deref() != Some("ok") {
                    problems.push(format!(
                        "{host}: the next run changed the config again: {:?}",
                        status_of(&doc, "config", &host)
                    ));
                }
            }
            let pending = work.join(".castellan/pending");
            let left: Vec<_> = std::fs::read_dir(&pending)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            if !left.is_empty() {
                problems.push(format!("pending state left after a full run: {left:?}"));
            }
        }
        eprintln!(
            "  interrupted run: {took:?}, exit {stop:?} after the signal, changed {changed:?}, \
             handler lines {before:?}; {}",
            if problems.is_empty() { "ok" } else { "FAILED" }
        );
        if !problems.is_empty() {
            failures.push(format!(
                "point {i} ({sig:?} at {marker:?} +{after_ms} ms): {}\n--- stderr of the interrupted run:\n{err}",
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

const KILL_PLAYBOOK: &str = r#"- hosts: fleet
  tasks:
    - name: first
      shell: "echo one > {{ fleet_root }}/first"
    - name: wait for the test
      shell: "touch {{ fleet_root }}/waiting; while [ ! -e {{ fleet_root }}/go ]; do sleep 0.02; done"
      delegate_to: localhost
    - name: second
      shell: "echo two > {{ fleet_root }}/second"
    - name: third
      copy:
        dest: "{{ fleet_root }}/third"
        content: "three\n"
"#;

#[test]
fn a_host_killed_between_two_tasks_is_unreachable_and_the_others_finish() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let _fleet = fleet();
    let work = workdir("kill");
    let pb = work.join("site.yml");
    std::fs::write(&pb, KILL_PLAYBOOK).unwrap();
    for k in 1..=HOSTS {
        for m in ["first", "waiting", "go", "second", "third"] {
            let _ = std::fs::remove_file(root(k).join(m));
        }
    }
    let mut child = castellan(&work, &pb, &[]).spawn().unwrap();
    for k in 1..=HOSTS {
        assert!(
            wait_for(&root(k).join("waiting"), Duration::from_secs(30)),
            "db{k} never reached the second task"
        );
    }
    // db2's sshd and every session under it die while the run waits between two tasks.
    fleet_script("kill.sh", &["db2"]);
    for k in 1..=HOSTS {
        std::fs::write(root(k).join("go"), "").unwrap();
    }
    let out = child_output(&mut child);
    let doc = json(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{doc:#}\n{err}");
    assert_eq!(
        status_of(&doc, "second", "db2").as_deref(),
        Some("unreachable"),
        "{doc:#}"
    );
    assert_eq!(doc["stats"]["db2"]["unreachable"], 1, "{doc:#}");
    assert_eq!(doc["stats"]["db2"]["failed"], 0, "{doc:#}");
    for k in [1, 3] {
        let host = format!("db{k}");
        assert_eq!(doc["stats"][&host]["failed"], 0, "{doc:#}");
        assert_eq!(doc["stats"][&host]["unreachable"], 0, "{doc:#}");
        assert_eq!(
            std::fs::read_to_string(root(k).join("third")).unwrap(),
            "three\n"
        );
    }
    assert!(!root(2).join("second").exists());
    assert!(!root(2).join("third").exists());
    let left = leftovers_after_grace("/go ]");
    assert!(left.is_empty(), "{left:?}");
}
