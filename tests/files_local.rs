//! The promises of file writes on `ansible_connection: local`, under attack: a symlink planted at
//! the backup name, a symlinked `dest` (with and without `follow`), and `become_user`. Needs root
//! (it chowns files to another user and runs tasks as `nobody`).
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use castellan::connection::local::LocalConnection;
use castellan::connection::{Attrs, Connection, Op};

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn uid_of(user: &str) -> u32 {
    nix::unistd::User::from_name(user)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

/// A user other than root.
fn other_user() -> &'static str {
    if nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .is_some()
    {
        "postgres"
    } else {
        "nobody"
    }
}

/// A temp dir that other users can enter (tempfile makes 0700 dirs).
fn open_tempdir() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    t
}

/// Every name Ansible's backup scheme (`path.PID.YYYY-MM-DD@HH:MM:SS~`) can give `path` in the
/// next few seconds, for process `pid`.
pub fn predictable_backup_names(path: &Path, pid: u32) -> Vec<String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]@[hour]:[minute]:[second]");
    let now = time::OffsetDateTime::now_utc();
    (-1i64..6)
        .map(|s| {
            let t = now + time::Duration::seconds(s);
            format!("{}.{pid}.{}~", path.display(), t.format(&fmt).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn backup_never_writes_through_a_symlink_planted_at_its_name() {
    let t = open_tempdir();
    let d = t.path().join("conf");
    fs::create_dir(&d).unwrap();
    let user = other_user();
    let uid = uid_of(user);
    // The directory belongs to the other user (as /etc/postgresql/15/main belongs to postgres).
    std::os::unix::fs::chown(&d, Some(uid), None).unwrap();
    let dest = d.join("server.key");
    fs::write(&dest, "OLD KEY\n").unwrap();
    std::os::unix::fs::chown(&dest, Some(uid), None).unwrap();
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
    // The victim: a root file elsewhere.
    let victim = t.path().join("victim");
    fs::write(&victim, "victim\n").unwrap();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
    let planted = predictable_backup_names(&dest, std::process::id());
    for name in &planted {
        std::os::unix::fs::symlink(&victim, name).unwrap();
    }

    let c = LocalConnection::new();
    let out = c
        .apply(
            &Op::Write {
                path: dest.display().to_string(),
                content: Arc::new(b"NEW KEY\n".to_vec()),
                attrs: Attrs::default(),
                backup: true,
                follow: false,
            },
            None,
        )
        .await
        .unwrap();

    // The victim is untouched: content, mode, owner.
    let vm = fs::metadata(&victim).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"victim\n");
    assert_eq!((vm.mode() & 0o7777, vm.uid()), (0o644, 0));
    for name in &planted {
        assert_eq!(fs::read_link(name).unwrap(), victim, "{name}");
    }
    // The backup was made under another name, as the old file: content, 0600, owner.
    let bk = out.backup_file.expect("a backup");
    assert!(!planted.contains(&bk), "{bk}");
    assert!(bk.starts_with(&format!("{}.", dest.display())), "{bk}");
    let bm = fs::symlink_metadata(&bk).unwrap();
    assert!(bm.is_file());
    assert_eq!((bm.mode() & 0o7777, bm.uid()), (0o600, uid));
    assert_eq!(fs::read(&bk).unwrap(), b"OLD KEY\n");
    // The new file keeps mode and owner.
    let m = fs::symlink_metadata(&dest).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o600, uid));
    assert_eq!(fs::read(&dest).unwrap(), b"NEW KEY\n");
}

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

/// Run `tasks` (YAML, indented for a play's task list) on one local host with `base` set.
fn play(base: &Path, header: &str, tasks: &str) -> Output {
    let inv = base.join("inventory.yml");
    fs::write(
        &inv,
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n",
    )
    .unwrap();
    let pb = base.join("play.yml");
    fs::write(&pb, format!("- hosts: all\n{header}  tasks:\n{tasks}")).unwrap();
    let b = format!("base={}", base.display());
    castellan(&[
        "playbook",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        &b,
        "--output",
        "json",
    ])
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `real` with `content` and `mode`, and `link` -> `real` beside it.
fn linked(dir: &Path, real: &str, link: &str, content: &str, m: u32) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(real), content).unwrap();
    fs::set_permissions(dir.join(real), fs::Permissions::from_mode(m)).unwrap();
    std::os::unix::fs::symlink(real, dir.join(link)).unwrap();
}

fn is_link(p: &Path) -> bool {
    fs::symlink_metadata(p).unwrap().file_type().is_symlink()
}

#[test]
fn a_symlinked_dest_never_widens_the_mode_and_follow_decides_what_is_written() {
    let t = open_tempdir();
    let b = t.path();
    for d in [
        "copy", "copyf", "tmpl", "tmplf", "line", "block", "ini", "inif", "env", "envf",
    ] {
        linked(&b.join(d), "real.key", "server.key", "OLD\n", 0o600);
    }
    fs::create_dir(b.join("dangling")).unwrap();
    std::os::unix::fs::symlink("nowhere.key", b.join("dangling/server.key")).unwrap();
    fs::create_dir(b.join("danglingf")).unwrap();
    std::os::unix::fs::symlink("made.key", b.join("danglingf/server.key")).unwrap();
    fs::write(b.join("key.j2"), "NEW {{ 1 + 1 }}\n").unwrap();
    let tasks = r#"    - copy: {content: "NEW\n", dest: "{{ base }}/copy/server.key"}
    - copy: {content: "NEW\n", dest: "{{ base }}/copyf/server.key", follow: yes}
    - template: {src: "{{ base }}/key.j2", dest: "{{ base }}/tmpl/server.key"}
    - template: {src: "{{ base }}/key.j2", dest: "{{ base }}/tmplf/server.key", follow: yes}
    - lineinfile: {path: "{{ base }}/line/server.key", line: "added"}
    - blockinfile: {path: "{{ base }}/block/server.key", block: "added"}
    - ini_file: {path: "{{ base }}/ini/server.key", section: s, option: o, value: v}
    - ini_file: {path: "{{ base }}/inif/server.key", section: s, option: o, value: v, follow: yes}
    - env_file: {path: "{{ base }}/env/server.key", settings: {O: v}}
    - env_file: {path: "{{ base }}/envf/server.key", settings: {O: v}, follow: yes}
    - copy: {content: "NEW\n", dest: "{{ base }}/dangling/server.key"}
    - copy: {content: "NEW\n", dest: "{{ base }}/danglingf/server.key", follow: yes}
"#;
    // umask 077 semantics for new files: what a private write gets today.
    let out = play(b, "", tasks);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // follow: no (copy's and template's default, ini_file's and env_file's too): the link is replaced by a
    // regular file that takes the mode of the file it pointed to (never the link's 0777); the
    // old target is untouched.
    for (d, content) in [("copy", "NEW\n"), ("tmpl", "NEW 2\n")] {
        let p = b.join(d).join("server.key");
        assert!(!is_link(&p), "{d}");
        assert_eq!(mode(&p), 0o600, "{d}");
        assert_eq!(fs::read_to_string(&p).unwrap(), content, "{d}");
        assert_eq!(
            fs::read_to_string(b.join(d).join("real.key")).unwrap(),
            "OLD\n"
        );
        assert_eq!(mode(&b.join(d).join("real.key")), 0o600);
    }
    for (d, content) in [("ini", "OLD\n[s]\no = v\n"), ("env", "OLD\nO=v\n")] {
        let p = b.join(d).join("server.key");
        assert!(!is_link(&p), "{d}");
        assert_eq!(mode(&p), 0o600, "{d}");
        assert_eq!(fs::read_to_string(&p).unwrap(), content, "{d}");
        assert_eq!(
            fs::read_to_string(b.join(d).join("real.key")).unwrap(),
            "OLD\n"
        );
    }

    // follow: yes (and lineinfile/blockinfile always, as Ansible writes to the realpath): the
    // link stays, its target gets the content and keeps its mode.
    for (d, content) in [
        ("copyf", "NEW\n"),
        ("tmplf", "NEW 2\n"),
        ("line", "OLD\nadded\n"),
        (
            "block",
            "OLD\n# BEGIN ANSIBLE MANAGED BLOCK\nadded\n# END ANSIBLE MANAGED BLOCK\n",
        ),
        ("inif", "OLD\n[s]\no = v\n"),
        ("envf", "OLD\nO=v\n"),
    ] {
        let p = b.join(d).join("server.key");
        assert!(is_link(&p), "{d}");
        let real = b.join(d).join("real.key");
        assert_eq!(fs::read_to_string(&real).unwrap(), content, "{d}");
        assert_eq!(mode(&real), 0o600, "{d}");
        let names: Vec<_> = fs::read_dir(b.join(d)).unwrap().collect();
        assert_eq!(names.len(), 2, "{d}: no temp file left");
    }

    // A dangling link: no: a new regular file (0666 & ~umask); yes: the target is created.
    let umask = {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        nix::sys::stat::umask(old);
        old.bits()
    };
    let p = b.join("dangling/server.key");
    assert!(!is_link(&p));
    assert_eq!(mode(&p), 0o666 & !umask);
    assert!(is_link(&b.join("danglingf/server.key")));
    assert_eq!(
        fs::read_to_string(b.join("danglingf/made.key")).unwrap(),
        "NEW\n"
    );

    // Second run: nothing changes (the links that stay are followed, the files are right).
    let out = play(b, "", tasks);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["stats"]["here"]["changed"], 0, "{}", text(&out));
}

#[test]
fn a_new_private_file_through_a_link_is_0600_under_umask_077() {
    let t = open_tempdir();
    let b = t.path();
    fs::create_dir(b.join("d")).unwrap();
    std::os::unix::fs::symlink("target.key", b.join("d/server.key")).unwrap();
    let inv = b.join("inventory.yml");
    fs::write(
        &inv,
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n",
    )
    .unwrap();
    let pb = b.join("play.yml");
    fs::write(
        &pb,
        "- hosts: all\n  tasks:\n    - copy: {content: \"K\\n\", dest: \"{{ base }}/d/server.key\", follow: yes}\n",
    )
    .unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg("umask 077; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
        ])
        .arg("-e")
        .arg(format!("base={}", b.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(mode(&b.join("d/target.key")), 0o600);
}

#[test]
fn become_user_on_the_local_connection_writes_as_that_user() {
    let t = open_tempdir();
    let b = t.path();
    let nobody = uid_of("nobody");
    fs::create_dir(b.join("mine")).unwrap();
    std::os::unix::fs::chown(b.join("mine"), Some(nobody), None).unwrap();
    fs::create_dir(b.join("rootonly")).unwrap();
    fs::write(b.join("rootonly/secret"), "root only\n").unwrap();
    fs::set_permissions(b.join("rootonly/secret"), fs::Permissions::from_mode(0o600)).unwrap();
    let tasks = r#"    - copy: {content: "hello\n", dest: "{{ base }}/mine/file"}
    - lineinfile: {path: "{{ base }}/mine/file", line: "more"}
    - command: id -un
      register: who
    - copy: {content: "{{ who.stdout }}\n", dest: "{{ base }}/mine/who"}
    - copy: {content: "x\n", dest: "{{ base }}/rootonly/new"}
      register: denied
      ignore_errors: yes
    - lineinfile: {path: "{{ base }}/rootonly/secret", line: "more"}
      register: unreadable
      ignore_errors: yes
    - copy:
        content: "{{ denied.msg }}\n{{ unreadable.msg }}\n"
        dest: "{{ base }}/mine/errors"
"#;
    let out = play(b, "  become: yes\n  become_user: nobody\n", tasks);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = fs::metadata(b.join("mine/file")).unwrap();
    assert_eq!(m.uid(), nobody, "written as nobody, not root");
    assert_eq!(
        fs::read_to_string(b.join("mine/file")).unwrap(),
        "hello\nmore\n"
    );
    assert_eq!(fs::metadata(b.join("mine/who")).unwrap().uid(), nobody);
    assert_eq!(fs::read_to_string(b.join("mine/who")).unwrap(), "nobody\n");
    // What nobody may not do fails, as it would with Ansible.
    assert!(!b.join("rootonly/new").exists());
    assert_eq!(
        fs::read_to_string(b.join("rootonly/secret")).unwrap(),
        "root only\n"
    );
    let errors = fs::read_to_string(b.join("mine/errors")).unwrap();
    assert!(errors.contains("Permission denied"), "{errors}");
    assert_eq!(errors.lines().count(), 2, "{errors}");
}

#[test]
fn every_editor_backs_up_the_old_file_as_it_was() {
    let t = open_tempdir();
    let b = t.path();
    let user = other_user();
    let uid = uid_of(user);
    for m in ["line", "block", "ini", "env", "copy"] {
        let d = b.join(m);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("f.conf"), "old = 1\n").unwrap();
        std::os::unix::fs::chown(d.join("f.conf"), Some(uid), None).unwrap();
        fs::set_permissions(d.join("f.conf"), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let tasks = r#"    - lineinfile: {path: "{{ base }}/line/f.conf", line: "new = 2", backup: yes}
      register: line
    - blockinfile: {path: "{{ base }}/block/f.conf", block: "new = 2", backup: yes}
      register: block
    - ini_file: {path: "{{ base }}/ini/f.conf", option: new, value: "2", backup: yes}
      register: ini
    - env_file: {path: "{{ base }}/env/f.conf", settings: {NEW: 2}, backup: yes}
      register: env
    - copy: {content: "new = 2\n", dest: "{{ base }}/copy/f.conf", backup: yes}
      register: copied
    - copy:
        content: "{{ line.backup_file }}\n{{ block.backup_file }}\n{{ ini.backup_file }}\n{{ env.backup_file }}\n{{ copied.backup_file }}\n"
        dest: "{{ base }}/backups"
"#;
    let out = play(b, "", tasks);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let list = fs::read_to_string(b.join("backups")).unwrap();
    let backups: Vec<&str> = list.lines().collect();
    assert_eq!(backups.len(), 5, "{list}");
    for (m, bk) in ["line", "block", "ini", "env", "copy"].iter().zip(&backups) {
        let f = b.join(m).join("f.conf");
        assert!(bk.starts_with(&format!("{}.", f.display())), "{bk}");
        let bm = fs::symlink_metadata(bk).unwrap();
        assert!(bm.is_file(), "{m}");
        assert_eq!((bm.mode() & 0o7777, bm.uid()), (0o600, uid), "{m}");
        assert_eq!(fs::read_to_string(bk).unwrap(), "old = 1\n", "{m}");
        // The file itself was replaced (a new inode), not written in place.
        let fm = fs::metadata(&f).unwrap();
        assert_ne!(fm.ino(), bm.ino(), "{m}");
        assert_eq!((fm.mode() & 0o7777, fm.uid()), (0o600, uid), "{m}");
        assert_ne!(fs::read_to_string(&f).unwrap(), "old = 1\n", "{m}");
    }
}
