//! The persistent remote session (src/connection/session.rs, ssh_session.rs) against real sshd
//! hosts of a private test fleet (NET 31): many operations on one session, a killed session
//! replaced, login shells whose rc file prints junk or costs time, exact binary content, and the
//! fallback to one channel per operation. Each test uses hosts of its own (their `$HOME` rc files
//! differ). Needs root.
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use castellan::connection::ssh::SshConnection;
use castellan::connection::{Attrs, Connection, ExecRequest, Op, Want};

mod fleet_common;
use fleet_common::{FleetDef, Held, Shared};

const NET: &str = "31";
static DEF: FleetDef = FleetDef {
    net: NET,
    dir: "/tmp/castellan-fleet-h15",
};
static FLEET: Shared = Shared::new(&DEF, &["6", "--no-postgres"]);

fn fleet() -> Arc<Held> {
    FLEET.get()
}

fn home(k: usize) -> PathBuf {
    DEF.dir().join(format!("hosts/db{k}/home"))
}

/// Give dbK's login shell this `~/.bashrc` (bash, root's shell, reads it for ssh commands).
fn bashrc(k: usize, text: &str) {
    fs::write(home(k).join(".bashrc"), text).unwrap();
}

fn shell(script: &str) -> ExecRequest {
    ExecRequest {
        shell: Some(script.into()),
        ..ExecRequest::default()
    }
}

/// A plain write of `content` at `path` (no attributes, no backup, links not followed).
fn write_op(path: &std::path::Path, content: &[u8]) -> Op {
    Op::Write {
        path: path.display().to_string(),
        content: Arc::new(content.to_vec()),
        attrs: Attrs::default(),
        backup: false,
        follow: false,
    }
}

fn counter(k: usize) -> PathBuf {
    home(k).join("rc-runs")
}

fn rc_runs(k: usize) -> usize {
    fs::read_to_string(counter(k)).map_or(0, |s| s.lines().count())
}

/// A `.bashrc` that counts its runs (one line each) and optionally costs `sleep` seconds.
fn counting_bashrc(k: usize, sleep: &str) {
    let _ = fs::remove_file(counter(k));
    bashrc(
        k,
        &format!(
            "echo run >> {}\n{}",
            counter(k).display(),
            if sleep.is_empty() {
                String::new()
            } else {
                format!("sleep {sleep}\n")
            }
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_serves_many_operations_and_a_killed_one_is_replaced() {
    let f = fleet();
    counting_bashrc(1, "");
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "many");
    let p = d.join("f");
    let ps = p.to_str().unwrap().to_string();
    for i in 0..150 {
        let out = c.exec(&shell(&format!("printf %s {i}"))).await.unwrap();
        assert_eq!(out.stdout, i.to_string().as_bytes());
        c.apply(
            &Op::Write {
                path: ps.clone(),
                content: Arc::new(format!("v{i}").into_bytes()),
                attrs: Attrs::default(),
                backup: false,
                follow: false,
            },
            None,
        )
        .await
        .unwrap();
        let st = c
            .stat(
                &ps,
                Want {
                    content: true,
                    ..Want::default()
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(st.content.unwrap(), format!("v{i}").as_bytes());
    }
    let pids = c.session_pids().await;
    assert_eq!(pids.len(), 1, "{pids:?}");
    // 450 operations, one login shell.
    assert_eq!(rc_runs(1), 1);

    // Kill the session's shell (the fleet's hosts are processes of this machine): the next
    // operations run on a new session.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let out = c.exec(&shell("echo after")).await.unwrap();
    assert_eq!(out.stdout, b"after\n");
    let st = c.stat(&ps, Want::default(), None).await.unwrap();
    assert!(st.exists());
    let now = c.session_pids().await;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], pids[0]);
    assert_eq!(rc_runs(1), 2);

    // A become user gets a session of its own; the login user's goes on.
    let mut req = shell("id -un");
    req.become_user = Some("nobody".into());
    let out = c.exec(&req).await.unwrap();
    assert_eq!(out.stdout, b"nobody\n", "{out:?}");
    assert_eq!(c.session_pids().await.len(), 2);
    c.close().await;
    let _ = fs::remove_file(home(1).join(".bashrc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rc_junk_does_not_break_framing_and_content_is_exact() {
    let f = fleet();
    // Junk on stdout (no trailing newline, a fake ready line, a NUL) and on stderr.
    bashrc(
        2,
        "printf 'junk castellan-session-ready 0 1\\n\\000 castellan-reply x'\necho rc-noise >&2\n",
    );
    let c = SshConnection::connect(f.params(2)).await.unwrap();
    let d = f.workdir(2, "exact");
    let contents: Vec<Vec<u8>> = vec![
        b"no trailing newline".to_vec(),
        vec![0, 0, b'\n', 0, 255, 0],
        Vec::new(),
        (0..(1u32 << 20)).map(|i| (i * 31 % 256) as u8).collect(),
    ];
    for (i, content) in contents.iter().enumerate() {
        let p = d.join(format!("f{i}"));
        let ps = p.to_str().unwrap().to_string();
        c.apply(
            &Op::Write {
                path: ps.clone(),
                content: Arc::new(content.clone()),
                attrs: Attrs {
                    mode: Some(0o600),
                    ..Attrs::default()
                },
                backup: false,
                follow: false,
            },
            None,
        )
        .await
        .unwrap();
        assert_eq!(&fs::read(&p).unwrap(), content, "f{i}");
        let st = c
            .stat(
                &ps,
                Want {
                    content: true,
                    checksum: true,
                    follow: false,
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(st.content.as_ref().unwrap(), content, "f{i}");
        assert_eq!(st.mode, 0o600);
        let out = c
            .exec(&ExecRequest {
                argv: vec!["cat".into(), ps.clone()],
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(&out.stdout, content, "f{i}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The rc's output came before the session started and is nowhere in the replies.
    let out = c.exec(&shell("echo ok")).await.unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"ok\n"[..], &b""[..])
    );
    assert_eq!(c.session_pids().await.len(), 1);
    c.close().await;
    let _ = fs::remove_file(home(2).join(".bashrc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavy_rc_is_paid_once_per_host_in_a_play() {
    let f = fleet();
    for k in [3, 4] {
        counting_bashrc(k, "0.2");
    }
    let dir = tempfile::tempdir().unwrap();
    let play = dir.path().join("play.yml");
    fs::write(
        &play,
        r#"- hosts: db3:db4
  gather_facts: false
  tasks:
    - file: {path: "{{ fleet_root }}/rc", state: directory}
    - copy: {dest: "{{ fleet_root }}/rc/a", content: "one\n", mode: "0600"}
    - copy: {dest: "{{ fleet_root }}/rc/b", content: "two\n"}
    - lineinfile: {path: "{{ fleet_root }}/rc/a", line: "three"}
    - blockinfile: {path: "{{ fleet_root }}/rc/b", block: "four"}
    - command: cat {{ fleet_root }}/rc/a
      register: a
    - shell: test "$(wc -l < {{ fleet_root }}/rc/a)" -eq 2
    - stat: {path: "{{ fleet_root }}/rc/a"}
      register: st
    - assert: {that: ["st.stat.mode == '0600'", "a.stdout_lines | length == 2", "a.stdout_lines[1] == 'three'"]}
    - file: {path: "{{ fleet_root }}/rc/b", state: absent}
"#,
    )
    .unwrap();
    let play_run = |sessions: &str| {
        Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args([
                "playbook",
                play.to_str().unwrap(),
                "-i",
                &f.inventory(),
                "-v",
            ])
            .env("CASTELLAN_SSH_SESSIONS", sessions)
            .output()
            .unwrap()
    };
    // Without sessions (CASTELLAN_SSH_SESSIONS=off), the rc runs for every operation.
    let out = play_run("off");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for k in [3, 4] {
        let n = rc_runs(k);
        assert!(n >= 10, "db{k}: the rc ran only {n} times without sessions");
        let _ = fs::remove_file(counter(k));
    }
    let out = play_run("on");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("persistent session"));
    for k in [3, 4] {
        let n = rc_runs(k);
        assert!(
            (1..=2).contains(&n),
            "db{k}: the rc ran {n} times for a 10-task play"
        );
        let _ = fs::remove_file(home(k).join(".bashrc"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_cannot_start_falls_back_to_one_channel_per_operation() {
    let f = fleet();
    // mktemp -d fails in the loop: file operations through the session, commands on a
    // channel of their own.
    counting_bashrc(5, "");
    fs::write(
        home(5).join(".bashrc"),
        format!(
            "echo run >> {}\nexport TMPDIR=/nonexistent-castellan-tmp\n",
            counter(5).display()
        ),
    )
    .unwrap();
    let c = SshConnection::connect(f.params(5)).await.unwrap();
    let d = f.workdir(5, "fallback");
    let p = d.join("f");
    c.apply(&write_op(&p, b"x\0y"), None).await.unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"x\0y");
    let out = c.exec(&shell("echo fine")).await.unwrap();
    assert_eq!(out.stdout, b"fine\n");
    let out = c.exec(&shell("echo again")).await.unwrap();
    assert_eq!(out.stdout, b"again\n");
    c.apply(&write_op(&p, b"z"), None).await.unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"z");
    assert_eq!(c.session_pids().await.len(), 1, "the session goes on");
    // The session's login shell, then one per command.
    assert_eq!(rc_runs(5), 3);
    c.close().await;

    // The binary says why at -v.
    let dir = tempfile::tempdir().unwrap();
    let play = dir.path().join("play.yml");
    fs::write(
        &play,
        "- hosts: db5\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            play.to_str().unwrap(),
            "-i",
            &f.inventory(),
            "-v",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cannot run commands") && err.contains("one channel per command"),
        "{err}"
    );
    let _ = fs::remove_file(home(5).join(".bashrc"));
}

/// Writes through a session leave their directory's flush to the connection, which flushes
/// them all with one `sync` before the next command on the host and when it closes. A
/// recording `sync` fixture (first in the login shell's `PATH`, then the real one) logs each
/// call; the command logs itself too, so the order shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directories_of_writes_are_flushed_before_a_command_and_at_close() {
    let f = fleet();
    let bin = home(6).join("fixture-bin");
    fs::create_dir_all(&bin).unwrap();
    let log = home(6).join("sync-calls");
    let _ = fs::remove_file(&log);
    let fixture = bin.join("sync");
    fs::write(
        &fixture,
        format!(
            "#!/bin/sh\n# fixture: records its arguments, then the real sync\nprintf 'sync %s\\n' \"$*\" >> {}\nexec /bin/sync \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(&fixture)
        .status()
        .unwrap();
    bashrc(6, &format!("export PATH={}:$PATH\n", bin.display()));
    let a = f.workdir(6, "flush-a");
    let b = f.workdir(6, "flush-b");
    let write = |dir: &PathBuf, name: &str| write_op(&dir.join(name), b"x\n");
    let calls = || fs::read_to_string(&log).unwrap_or_default();
    let c = SshConnection::connect(f.params(6)).await.unwrap();
    for n in ["1", "2", "3"] {
        c.apply(&write(&a, n), None).await.unwrap();
    }
    assert_eq!(calls(), "", "no write flushed its directory itself");
    let out = c
        .exec(&shell(&format!("echo command >> {}", log.display())))
        .await
        .unwrap();
    assert_eq!(out.rc, 0);
    assert_eq!(
        calls(),
        format!("sync -- {}\ncommand\n", a.display()),
        "one flush of the directory, before the command"
    );
    c.apply(&write(&b, "1"), None).await.unwrap();
    c.close().await;
    assert_eq!(
        calls(),
        format!(
            "sync -- {}\ncommand\nsync -- {}\n",
            a.display(),
            b.display()
        ),
        "the last write's directory, at close"
    );
    for n in ["1", "2", "3"] {
        assert_eq!(fs::read(a.join(n)).unwrap(), b"x\n");
    }
    let _ = fs::remove_file(home(6).join(".bashrc"));
}
