//! The SSH connection against real sshd hosts of a private test fleet (tests/fleet/up.sh with its
//! own address block and state dir, so it does not collide with other fleets). Needs root.
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use castellan::connection::ssh::SshConnection;
use castellan::connection::{local, Attrs, ConnError, Connection, ExecRequest, FileKind, Op, Want};
use sha2::Digest;

mod fleet_common;
mod ssh_common;
use ssh_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_round_trip_with_stdin_binary_chdir_and_become() {
    let f = fleet();
    let c = SshConnection::new(f.params(1));
    let out = c
        .exec(&argv(&["printf", "%s|", "a b", "$HOME", "it's"]))
        .await
        .unwrap();
    assert_eq!(out.rc, 0);
    assert_eq!(out.stdout, b"a b|$HOME|it's|");

    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let out = c
        .exec(&ExecRequest {
            argv: vec!["cat".into()],
            stdin: Some(bytes.clone()),
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(out.stdout, bytes);

    let d = f.workdir(1, "exec");
    let out = c
        .exec(&ExecRequest {
            shell: Some("pwd; echo err >&2; printf '\\377\\376'; exit 3".into()),
            chdir: Some(s(&d).into()),
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(out.rc, 3);
    assert_eq!(
        out.stdout,
        [format!("{}\n", d.display()).as_bytes(), b"\xff\xfe"].concat()
    );
    assert_eq!(out.stderr, b"err\n");

    let out = c.exec(&argv(&["no-such-program-xyz"])).await.unwrap();
    assert_eq!(out.rc, 2);

    let user = other_user();
    let mut req = argv(&["id", "-un"]);
    req.become_user = Some(user.into());
    let out = c.exec(&req).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), user, "{out:?}");
    req.become_user = Some("root".into());
    let out = c.exec(&req).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "root");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stat_matches_local_for_file_dir_link_missing() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "stat");
    let file = d.join("data.bin");
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(&file, &data).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("data.bin", d.join("link")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    let want_all = [
        Want::default(),
        Want {
            checksum: true,
            ..Want::default()
        },
        Want {
            checksum: true,
            content: true,
            follow: false,
        },
        Want {
            checksum: true,
            content: false,
            follow: true,
        },
    ];
    for name in ["data.bin", "", "link", "dangling", "missing", "data.bin/x"] {
        let p = d.join(name);
        for want in want_all {
            let a = c.stat(s(&p), want, None).await.unwrap();
            let b = local::stat_path(s(&p), want).unwrap();
            assert_eq!(a.kind, b.kind, "{name} {want:?}");
            assert_eq!(
                (a.mode, a.uid, a.gid, a.size, &a.owner, &a.group),
                (b.mode, b.uid, b.gid, b.size, &b.owner, &b.group),
                "{name}"
            );
            assert!((a.mtime - b.mtime).abs() < 1e-6);
            assert_eq!(a.link_target, b.link_target, "{name}");
            assert_eq!(
                (&a.sha256, &a.sha1),
                (&b.sha256, &b.sha1),
                "{name} {want:?}"
            );
            assert_eq!(a.content, b.content, "{name}");
        }
    }
    let st = c
        .stat(
            s(&file),
            Want {
                checksum: true,
                ..Want::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(st.kind, FileKind::File);
    assert_eq!(st.sha256.unwrap(), hex::encode(sha2::Sha256::digest(&data)));
    assert!(!c
        .stat(s(&d.join("missing")), Want::default(), None)
        .await
        .unwrap()
        .exists());
    c.close().await;
}

/// Watch a directory in a tight loop until `stop`; return every (name, mode) seen.
fn watch(
    dir: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(usize, Vec<(String, u32)>)> {
    std::thread::spawn(move || {
        let mut bad = Vec::new();
        let mut seen = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if let Ok(m) = fs::symlink_metadata(e.path()) {
                    seen += 1;
                    if m.mode() & 0o077 != 0 {
                        bad.push((e.file_name().to_string_lossy().into_owned(), m.mode()));
                    }
                }
            }
        }
        (seen, bad)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_write_is_never_visible_with_another_mode() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "private");
    let dest = d.join("server.key");
    let user = other_user();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch(d.clone(), Arc::clone(&stop));
    let attrs = Attrs {
        owner: Some(user.into()),
        group: Some(user.into()),
        mode: Some(0o600),
    };
    for i in 0..200 {
        let content = Arc::new(format!("-----BEGIN PRIVATE KEY----- {i}\n").into_bytes());
        let out = c
            .apply(
                &Op::Write {
                    path: s(&dest).into(),
                    content,
                    attrs: attrs.clone(),
                    backup: false,
                    follow: false,
                },
                None,
            )
            .await
            .unwrap();
        assert!(out.backup_file.is_none());
    }
    stop.store(true, Ordering::Relaxed);
    let (seen, bad) = watcher.join().unwrap();
    assert!(bad.is_empty(), "seen with group/other bits: {bad:?}");
    assert!(seen > 200, "the watcher saw only {seen} entries");
    let m = fs::metadata(&dest).unwrap();
    let uid = nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, uid));
    assert_eq!(
        fs::read(&dest).unwrap(),
        b"-----BEGIN PRIVATE KEY----- 199\n"
    );
    // Only the key is left: no temp file.
    assert_eq!(fs::read_dir(&d).unwrap().count(), 1);

    // Without attrs the owner and mode stay; a backup keeps the old content.
    let out = c
        .apply(
            &Op::Write {
                path: s(&dest).into(),
                content: Arc::new(b"new".to_vec()),
                attrs: Attrs::default(),
                backup: true,
                follow: false,
            },
            None,
        )
        .await
        .unwrap();
    let bk = out.backup_file.expect("backup made");
    assert!(
        bk.starts_with(&format!("{}.", dest.display())) && bk.ends_with('~'),
        "{bk}"
    );
    assert_eq!(fs::read(&bk).unwrap(), b"-----BEGIN PRIVATE KEY----- 199\n");
    let m = fs::metadata(&dest).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, uid));

    // A missing directory fails cleanly.
    let e = c
        .apply(
            &Op::Write {
                path: s(&d.join("nodir/x")).into(),
                content: Arc::new(b"x".to_vec()),
                attrs: Attrs::default(),
                backup: false,
                follow: false,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnError::Failed(m) if m.contains("does not exist")),
        "{e:?}"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_never_appears_in_process_arguments() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "secret");
    let marker = format!("castellan-secret-{}-", std::process::id());
    let mut secret = Vec::with_capacity(10 << 20);
    while secret.len() < 10 << 20 {
        secret.extend_from_slice(marker.as_bytes());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let done = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let done2 = Arc::clone(&done);
    let needle = marker.clone().into_bytes();
    let scanner = std::thread::spawn(move || {
        let mut scans = 0u32;
        let mut hits = HashSet::new();
        while !stop2.load(Ordering::Relaxed) {
            scans += 1;
            done2.store(scans, Ordering::Relaxed);
            for e in fs::read_dir("/proc").unwrap().flatten() {
                if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
                    if cmd.windows(needle.len()).any(|w| w == needle.as_slice()) {
                        hits.insert(
                            String::from_utf8_lossy(&cmd[..cmd.len().min(200)]).into_owned(),
                        );
                    }
                }
            }
        }
        (scans, hits)
    });
    let dest = d.join("big.key");
    // At least 3 writes, and more while the scanner has not gone through /proc 3 times (a
    // loaded machine scans slowly; the persistent session writes fast).
    let mut writes = 0;
    while writes < 3 || (done.load(Ordering::Relaxed) < 4 && writes < 50) {
        writes += 1;
        c.apply(
            &Op::Write {
                path: s(&dest).into(),
                content: Arc::new(secret.clone()),
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
    }
    stop.store(true, Ordering::Relaxed);
    let (scans, hits) = scanner.join().unwrap();
    assert!(hits.is_empty(), "secret in process arguments: {hits:?}");
    assert!(scans >= 3, "only {scans} scans of /proc");
    assert_eq!(fs::read(&dest).unwrap(), secret);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_ops_match_local_semantics() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "ops");
    let user = other_user();
    let deep = d.join("a/b c/d");
    c.apply(
        &Op::Mkdir {
            path: s(&deep).into(),
            attrs: Attrs {
                owner: Some(user.into()),
                mode: Some(0o750),
                ..Attrs::default()
            },
        },
        None,
    )
    .await
    .unwrap();
    for p in [d.join("a"), d.join("a/b c"), deep.clone()] {
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o750, "{}", p.display());
    }
    // Become: a write as the other user into its own directory is owned by it.
    let own = deep.join("own.txt");
    c.apply(
        &Op::Write {
            path: s(&own).into(),
            content: Arc::new(b"mine".to_vec()),
            attrs: Attrs::default(),
            backup: false,
            follow: false,
        },
        Some(user),
    )
    .await
    .unwrap();
    let uid = nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(fs::metadata(&own).unwrap().uid(), uid);
    let st = c
        .stat(
            s(&own),
            Want {
                content: true,
                ..Want::default()
            },
            Some(user),
        )
        .await
        .unwrap();
    assert_eq!(st.content.as_deref(), Some(&b"mine"[..]));

    let t = d.join("t");
    c.apply(
        &Op::Touch {
            path: s(&t).into(),
            attrs: Attrs {
                mode: Some(0o604),
                ..Attrs::default()
            },
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(fs::metadata(&t).unwrap().mode() & 0o7777, 0o604);
    let l = d.join("l");
    c.apply(
        &Op::Symlink {
            src: "t".into(),
            path: s(&l).into(),
            force: false,
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(fs::read_link(&l).unwrap(), Path::new("t"));
    let e = c
        .apply(
            &Op::Symlink {
                src: "x".into(),
                path: s(&t).into(),
                force: false,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("refusing to convert from file to symlink"));
    c.apply(
        &Op::SetAttrs {
            path: s(&t).into(),
            attrs: Attrs {
                group: Some(user.into()),
                mode: Some(0o640),
                ..Attrs::default()
            },
            follow: true,
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(fs::metadata(&t).unwrap().mode() & 0o7777, 0o640);
    let e = c
        .apply(
            &Op::SetAttrs {
                path: s(&t).into(),
                attrs: Attrs {
                    owner: Some("no-such-user-xyz".into()),
                    ..Attrs::default()
                },
                follow: true,
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "chown failed: failed to look up user no-such-user-xyz"
    );
    let out = c
        .apply(&Op::Exec(argv(&["id", "-un"])), Some(user))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.exec.unwrap().stdout).trim(),
        user
    );
    c.apply(
        &Op::Remove {
            path: s(&d.join("a")).into(),
        },
        None,
    )
    .await
    .unwrap();
    assert!(!d.join("a").exists());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_is_unreachable_with_advice() {
    let f = fleet();
    let mut p = f.params(1);
    let empty = f.dir().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    p.known_hosts = Some(empty.clone());
    p.common_args.clear(); // the inventory's -o UserKnownHostsFile would win
    let c = SshConnection::new(p.clone());
    let e = c.exec(&argv(&["true"])).await.unwrap_err();
    match &e {
        ConnError::Unreachable(m) => assert!(
            m.starts_with(&format!(
                "host key for 127.{NET}.1.1 is unknown or changed; add it to {} or use --accept-new-host-keys",
                empty.display()
            )),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    // Later calls fail the same way, at once.
    let t = Instant::now();
    assert!(matches!(
        c.exec(&argv(&["true"])).await,
        Err(ConnError::Unreachable(_))
    ));
    assert!(t.elapsed() < Duration::from_millis(100));
    assert_eq!(
        fs::read_to_string(&empty).unwrap(),
        "",
        "known_hosts written"
    );

    // accept-new with our own file: the key is added and the connection works.
    p.accept_new_host_keys = true;
    let c = SshConnection::new(p);
    assert_eq!(c.exec(&argv(&["true"])).await.unwrap().rc, 0);
    assert!(fs::read_to_string(&empty).unwrap().contains("ssh-ed25519"));
    c.close().await;
    let _ = fs::remove_file(&empty);
}

/// A command killed by a signal on a host that is still up is a failed command, not a lost
/// host: the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_killed_by_a_signal_fails_and_the_host_stays_reachable() {
    let f = fleet();
    let c = SshConnection::new(f.params(3));
    // On a channel of its own, ssh reports the signal; in the persistent session, the shell
    // that ran the command reports 128 + SIGKILL, as any shell does.
    let res = c
        .exec(&ExecRequest {
            shell: Some("kill -9 $$".into()),
            ..ExecRequest::default()
        })
        .await;
    assert!(
        matches!(&res, Err(ConnError::Failed(m)) if m.contains("terminated by a signal"))
            || matches!(&res, Ok(out) if out.rc == 137),
        "{res:?}"
    );
    let out = c.exec(&argv(&["echo", "still here"])).await.unwrap();
    assert_eq!(out.stdout, b"still here\n");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_host_is_unreachable_quickly_and_close_leaves_nothing() {
    let f = fleet();
    let c = SshConnection::connect(f.params(2)).await.unwrap();
    let ctl = c.control_path().await.unwrap();
    let ctl_s = ctl.to_string_lossy().into_owned();
    assert_eq!(ssh_processes_with(&ctl_s).len(), 1);
    let dir_mode = fs::metadata(ctl.parent().unwrap()).unwrap().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert_eq!(c.exec(&argv(&["true"])).await.unwrap().rc, 0);

    // A long command is running when the host dies.
    let c2 = c.clone();
    let running = tokio::spawn(async move { c2.exec(&argv(&["sleep", "30"])).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    fleet_cmd("kill.sh", &["db2"]);
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("running command returned within 5 s")
        .unwrap();
    assert!(matches!(r, Err(ConnError::Unreachable(_))), "{r:?}");
    let r = tokio::time::timeout(Duration::from_secs(5), c.exec(&argv(&["true"])))
        .await
        .expect("no hang");
    match r {
        Err(ConnError::Unreachable(m)) => {
            assert!(m.contains("connection to 127.7.1.2 lost"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    // New connections are refused with a clear message.
    let e = SshConnection::new(f.params(2))
        .exec(&argv(&["true"]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("connection refused"), "{e}");
    c.close().await;
    assert!(ssh_processes_with(&ctl_s).is_empty());
    assert!(!ctl.parent().unwrap().exists());
    fleet_cmd("up.sh", &[&HOSTS.to_string(), "--no-postgres"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_latency() {
    let f = fleet();
    let c = SshConnection::new(f.params(1));
    let t = Instant::now();
    c.exec(&argv(&["true"])).await.unwrap();
    let connect = t.elapsed();
    let mut times = Vec::new();
    for _ in 0..100 {
        let t = Instant::now();
        assert_eq!(c.exec(&argv(&["true"])).await.unwrap().rc, 0);
        times.push(t.elapsed());
    }
    times.sort();
    let d = f.workdir(1, "measure");
    let file = d.join("one-mb");
    fs::write(&file, vec![7u8; 1 << 20]).unwrap();
    let mut stat_times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let st = c
            .stat(
                s(&file),
                Want {
                    checksum: true,
                    ..Want::default()
                },
                None,
            )
            .await
            .unwrap();
        assert!(st.sha256.is_some());
        stat_times.push(t.elapsed());
    }
    stat_times.sort();
    eprintln!(
        "ssh: first command incl. connect {:?}; exec(true) p50 {:?} p90 {:?}; stat+checksum 1 MB p50 {:?}",
        connect, times[50], times[90], stat_times[10]
    );
    assert!(times[50] < Duration::from_millis(100));
    c.close().await;
}
