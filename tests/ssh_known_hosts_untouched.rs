//! castellan never writes the user's `~/.ssh/known_hosts` unasked (issue 8, defect 11).
//!
//! OpenSSH (8.5+) turns `UpdateHostKeys` on by default when the default known_hosts file is used:
//! after authenticating, a server that offers more host key types than the client knows gets them
//! appended to `~/.ssh/known_hosts`. The test runs a real sshd with two host keys (ed25519 and
//! ECDSA), a known_hosts holding only the ed25519 key, and castellan with no
//! `castellan_known_hosts` (so ssh uses `~/.ssh/known_hosts`). ssh finds `~` through the password
//! database, not `$HOME`: castellan runs in a private mount namespace whose `/etc/passwd` gives
//! root a temporary home, so the machine's real `/root/.ssh` is never involved.
//!
//! Needs root (sshd, mount namespace). Address 127.14.9.1 (helper net 14).
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADDR: &str = "127.14.9.1";
const PORT: u16 = 2222;

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keygen(kind: &str, path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

fn start_sshd(dir: &Path) -> Sshd {
    std::fs::create_dir_all("/run/sshd").unwrap();
    keygen("ed25519", &dir.join("host_ed25519"));
    keygen("ecdsa", &dir.join("host_ecdsa"));
    keygen("ed25519", &dir.join("client"));
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).unwrap();
    std::fs::create_dir_all(dir.join("home")).unwrap();
    let d = dir.display();
    let cfg = format!(
        "ListenAddress {ADDR}:{PORT}\nHostKey {d}/host_ed25519\nHostKey {d}/host_ecdsa\n\
         PidFile {d}/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
         AuthorizedKeysFile {d}/authorized_keys\nSetEnv HOME={d}/home\nUseDNS no\n\
         PrintMotd no\nLogLevel INFO\n"
    );
    std::fs::write(dir.join("sshd_config"), cfg).unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(dir.join("sshd_config"))
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start sshd");
    let sshd = Sshd(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((ADDR, PORT)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    sshd
}

/// `/etc/passwd` with root's home directory replaced by `home`.
fn passwd_with_root_home(home: &Path) -> String {
    let real = std::fs::read_to_string("/etc/passwd").unwrap();
    real.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() == 7 && f[0] == "root" {
                format!(
                    "{}:{}:{}:{}:{}:{}:{}",
                    f[0],
                    f[1],
                    f[2],
                    f[3],
                    f[4],
                    home.display(),
                    f[6]
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn user_known_hosts_is_byte_identical_after_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let _sshd = start_sshd(dir);

    // root's home in the namespace: ~/.ssh/known_hosts knows only the ed25519 host key.
    let home: PathBuf = dir.join("roothome");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    let ed = std::fs::read_to_string(dir.join("host_ed25519.pub")).unwrap();
    let mut f = ed.split_whitespace();
    let line = format!(
        "[{ADDR}]:{PORT} {} {}\n",
        f.next().unwrap(),
        f.next().unwrap()
    );
    let kh = home.join(".ssh/known_hosts");
    std::fs::write(&kh, &line).unwrap();
    std::fs::write(dir.join("passwd"), passwd_with_root_home(&home)).unwrap();

    std::fs::write(
        dir.join("inventory.yml"),
        format!(
            "all:\n  hosts:\n    target:\n      ansible_host: {ADDR}\n      ansible_port: {PORT}\n\
             \x20     ansible_user: root\n      ansible_ssh_private_key_file: {}\n",
            dir.join("client").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("play.yml"),
        "- hosts: all\n  tasks:\n    - command: \"true\"\n    - command: \"true\"\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_castellan");
    let script = format!(
        "mount --bind {}/passwd /etc/passwd && exec {bin} playbook {}/play.yml -i {}/inventory.yml",
        dir.display(),
        dir.display(),
        dir.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("TMPDIR", dir)
        .output()
        .expect("unshare");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The server offered an ECDSA key too: ssh must not have added it.
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        line,
        "~/.ssh/known_hosts was changed by the run"
    );
    let extra: Vec<_> = std::fs::read_dir(home.join(".ssh"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(extra.len(), 1, "files appeared in ~/.ssh: {extra:?}");
}
