//! File writes over SSH under attack and faults, on a real sshd of a private test fleet (net 11,
//! its own state dir): a symlink planted at the backup name, a symlinked destination, a full
//! disk (a small tmpfs as the destination directory), and a truncated write stream (a short
//! stream fed to the real remote script, and the ssh master killed mid-transfer). Needs root.
mod fleet_common;

use fleet_common::{FleetDef, Held, Shared};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use castellan::connection::local::LocalConnection;
use castellan::connection::ssh::SshConnection;
use castellan::connection::ssh_script::{write_script, write_stream};
use castellan::connection::{Attrs, ConnError, Connection, ExecRequest, Op};

const NET: &str = "11";
const DIR: &str = "/tmp/castellan-fleet-files";

static DEF: FleetDef = FleetDef { net: NET, dir: DIR };
/// One SSH-only host, up while any test holds it; the last one out brings it down.
static FLEET: Shared = Shared::new(&DEF, &["1", "--no-postgres"]);

fn fleet() -> Arc<Held> {
    FLEET.get()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn other_user() -> (&'static str, u32) {
    for name in ["postgres", "nobody"] {
        if let Ok(Some(u)) = nix::unistd::User::from_name(name) {
            return (name, u.uid.as_raw());
        }
    }
    panic!("no user other than root");
}

fn names_in(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn write_op(path: &Path, content: Vec<u8>, backup: bool, follow: bool) -> Op {
    Op::Write {
        path: s(path).into(),
        content: Arc::new(content),
        attrs: Attrs::default(),
        backup,
        follow,
    }
}

/// Every name Ansible's backup scheme (`path.PID.YYYY-MM-DD@HH:MM:SS~`) can give `path` in the
/// next few seconds, for this process (the control node names the backup).
fn predictable_backup_names(path: &Path) -> Vec<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]@[hour]:[minute]:[second]");
    let now = time::OffsetDateTime::now_utc();
    (-1i64..6)
        .map(|sec| {
            let t = now + time::Duration::seconds(sec);
            format!(
                "{}.{}.{}~",
                path.display(),
                std::process::id(),
                t.format(&fmt).unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_over_ssh_never_writes_through_a_symlink_planted_at_its_name() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "planted");
    let (_, uid) = other_user();
    let conf = d.join("conf");
    fs::create_dir(&conf).unwrap();
    std::os::unix::fs::chown(&conf, Some(uid), None).unwrap();
    let dest = conf.join("server.key");
    fs::write(&dest, "OLD KEY\n").unwrap();
    std::os::unix::fs::chown(&dest, Some(uid), None).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
    let victim = d.join("victim");
    fs::write(&victim, "victim\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let planted = predictable_backup_names(&dest);
    for name in &planted {
        std::os::unix::fs::symlink(&victim, name).unwrap();
    }

    let out = c
        .apply(&write_op(&dest, b"NEW KEY\n".to_vec(), true, false), None)
        .await
        .unwrap();

    let vm = fs::metadata(&victim).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"victim\n");
    assert_eq!((vm.mode() & 0o7777, vm.uid(), vm.gid()), (0o644, 0, 0));
    for name in &planted {
        assert_eq!(fs::read_link(name).unwrap(), victim, "{name}");
    }
    let bk = out.backup_file.expect("a backup");
    assert!(!planted.contains(&bk), "{bk}");
    assert!(bk.starts_with(&format!("{}.", dest.display())), "{bk}");
    let bm = fs::symlink_metadata(&bk).unwrap();
    assert!(bm.is_file());
    assert_eq!((bm.mode() & 0o7777, bm.uid()), (0o600, uid));
    assert_eq!(fs::read(&bk).unwrap(), b"OLD KEY\n");
    let m = fs::metadata(&dest).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, uid));
    assert_eq!(fs::read(&dest).unwrap(), b"NEW KEY\n");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_dest_over_ssh_is_followed_or_replaced_never_widened() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "links");
    let real = d.join("real.key");
    let link = d.join("server.key");
    fs::write(&real, "OLD\n").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("real.key", &link).unwrap();
    // follow: the target is written, the link stays.
    c.apply(&write_op(&link, b"NEW\n".to_vec(), false, true), None)
        .await
        .unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&real).unwrap(), b"NEW\n");
    assert_eq!(fs::metadata(&real).unwrap().mode() & 0o7777, 0o600);
    // no follow: a regular file with the target's mode, the target untouched.
    c.apply(&write_op(&link, b"OWN\n".to_vec(), false, false), None)
        .await
        .unwrap();
    let m = fs::symlink_metadata(&link).unwrap();
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(fs::read(&link).unwrap(), b"OWN\n");
    assert_eq!(fs::read(&real).unwrap(), b"NEW\n");
    assert_eq!(names_in(&d), ["real.key", "server.key"]);
    c.close().await;
}

/// A small tmpfs mounted on a directory, unmounted when dropped (also when a test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs on {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_clearly_and_leaves_the_old_file_and_no_temp_file() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "full").join("mnt");
    fs::create_dir(&d).unwrap();
    let _tmpfs = Tmpfs::mount(&d, "64k");
    let old: Vec<u8> = b"OLD CONFIG\n".repeat(100);
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let local = LocalConnection::new();
    let conns: [(&str, &dyn Connection); 2] = [("ssh", &c), ("local", &local)];
    for (how, conn) in conns {
        let dest = d.join(format!("{how}.conf"));
        fs::write(&dest, &old).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
        for backup in [false, true] {
            let e = conn
                .apply(&write_op(&dest, big.clone(), backup, false), None)
                .await
                .unwrap_err();
            let ConnError::Failed(msg) = &e else {
                panic!("{how}: {e:?}");
            };
            assert!(
                msg.starts_with(&format!("cannot write {}: ", dest.display()))
                    && msg.contains("No space left on device"),
                "{how}: {msg}"
            );
            assert_eq!(fs::read(&dest).unwrap(), old, "{how}");
            assert_eq!(fs::metadata(&dest).unwrap().mode() & 0o7777, 0o600);
        }
    }
    // Nothing but the old files: no temp file, no backup left behind.
    assert_eq!(names_in(&d), ["local.conf", "ssh.conf"]);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_stream_through_real_ssh_is_never_installed() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "short");
    let dest = d.join("server.key");
    fs::write(&dest, "OLD KEY\n").unwrap();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let script = write_script(s(&dest), &Attrs::default(), false, content.len(), None).unwrap();
    let full = write_stream(&content);
    // The real remote script, through a real channel, with less than announced on stdin.
    // (The stream: a 17-byte name line, the content, its digest line.)
    for cut in [0, 1, 17, 17 + 150_000, 17 + content.len(), full.len() - 2] {
        let out = c
            .exec(&ExecRequest {
                shell: Some(script.clone()),
                stdin: Some(full[..cut].to_vec()),
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Before the whole name line, the script cannot tell how much it read: 3 (a session
        // would end); after it, it reads to the end and fails: 1.
        let want = if cut < 17 { 3 } else { 1 };
        assert_eq!(out.rc, want, "cut at {cut}: {err}");
        assert!(err.contains("is unchanged"), "cut at {cut}: {err}");
        assert_eq!(fs::read(&dest).unwrap(), b"OLD KEY\n", "cut at {cut}");
        assert_eq!(names_in(&d), ["server.key"], "cut at {cut}: no temp file");
    }
    let out = c
        .exec(&ExecRequest {
            shell: Some(script),
            stdin: Some(full),
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(out.rc, 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fs::read(&dest).unwrap(), content);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_transfer_leaves_the_old_file_and_no_temp_file() {
    let f = fleet();
    let c = SshConnection::connect(f.params(1)).await.unwrap();
    let d = f.workdir(1, "killed");
    let dest = d.join("big.bin");
    fs::write(&dest, "OLD\n").unwrap();
    let big: Vec<u8> = (0..128u32 << 20).map(|i| (i % 249) as u8).collect();
    let pid = c.master_pid().await.expect("a master");
    let op = write_op(&dest, big, false, false);
    let c2 = c.clone();
    let write = tokio::spawn(async move { c2.apply(&op, None).await });
    // Wait until the temp file holds part of the content, then kill our end of the connection.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = 0;
    while seen == 0 {
        assert!(Instant::now() < deadline, "the temp file never grew");
        for e in fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains("castellan-tmp") {
                seen = e.metadata().map_or(0, |m| m.len());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let r = write.await.unwrap();
    assert!(
        r.is_err(),
        "the write cannot succeed without its connection"
    );
    assert!(
        seen < 128 << 20,
        "the transfer finished before the kill ({seen} bytes)"
    );
    // The remote script notices the short stream (or the hang-up) and cleans up.
    let deadline = Instant::now() + Duration::from_secs(20);
    while names_in(&d) != ["big.bin"] {
        assert!(
            Instant::now() < deadline,
            "temp file left: {:?}",
            names_in(&d)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let now = fs::read(&dest).unwrap();
    assert!(
        now == b"OLD\n",
        "{} bytes installed instead of the old file",
        now.len()
    );
    println!("killed after {seen} of {} bytes had arrived", 128u32 << 20);
}
