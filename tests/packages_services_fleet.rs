//! Real packages, a real SysV service and real waits on a fleet host over SSH (tests/fleet,
//! net 21, its own dir), and real apt with a local `file:` repository on a local host:
//! - apt/package: a tiny package built here with `dpkg-deb --build` in two versions, installed,
//!   upgraded, left alone when older, downgraded when allowed, removed; dpkg itself is asked.
//! - service (SysV; there is no systemd as PID 1 here, the systemd path is tested with a
//!   recording fixture in packages_services_fixtures.rs): a package that ships an init script
//!   under /etc/init.d, started, reloaded, restarted, stopped, enabled and disabled with
//!   update-rc.d, the process checked with kill -0, the boot links on disk.
//! - wait_for: a port opened (and closed) by a listener this test starts late, a file written
//!   late and matched by a regex, the timeouts' messages.
//! - apt by name: `update_cache`, `cache_valid_time`, `latest` from a local (`copy:`) repository
//!   the test builds, through a private APT_CONFIG (the machine's apt sources are never touched).
//!
//! Package and service names end in 21 (the fleet's net): nothing else on the machine uses them.
mod deb_common;
mod fleet_common;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use deb_common::{installed, purge, Deb};
use fleet_common::{FleetDef, Shared};
use serde_json::{json, Value};

static FLEET: FleetDef = FleetDef {
    net: "21",
    dir: "/tmp/castellan-pkgsvc-fleet",
};
static SHARED: Shared = Shared::new(&FLEET, &["1", "--no-postgres"]);
/// dpkg is one database: the package tests take turns.
static DPKG: Mutex<()> = Mutex::new(());

/// Run `tasks` (YAML lines of a task list) on db1 over SSH; returns the exit code and the report.
fn run_fleet(tasks: &str, args: &[&str]) -> (i32, Value) {
    let dir = FLEET.dir().join("plays");
    fs::create_dir_all(&dir).unwrap();
    // One file per call: the tests of this binary run in parallel threads of one process.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let play = dir.join(format!("play-{}-{n}.yml", std::process::id()));
    fs::write(&play, format!("- hosts: db1\n  tasks:\n{tasks}")).unwrap();
    castellan(&play, &FLEET.inventory(), args, &[])
}

fn castellan(play: &Path, inv: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .arg("playbook")
        .arg(play)
        .args(["-i", inv, "--output", "json"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

/// The result of task `i` on `host`.
fn task<'a>(doc: &'a Value, i: usize, host: &str) -> &'a Value {
    &doc["plays"][0]["tasks"][i]["results"][host]
}

fn status(doc: &Value, i: usize, host: &str) -> String {
    task(doc, i, host)["status"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// A directory under db1's root.
fn workdir(name: &str) -> PathBuf {
    FLEET.workdir(1, name)
}

#[test]
fn apt_installs_upgrades_and_removes_a_real_deb_over_ssh() {
    let _fleet = SHARED.get();
    let _dpkg = DPKG.lock().unwrap_or_else(|e| e.into_inner());
    const PKG: &str = "castellan-demo21";
    purge(PKG);
    let w = workdir("debs");
    let v10 = Deb::new(PKG, "1.0").build(&w);
    let v11 = Deb::new(PKG, "1.1").build(&w);
    let (v10, v11) = (v10.display().to_string(), v11.display().to_string());

    // 1. The 1.0 file: installed; again: nothing to do.
    let install = format!("    - apt:\n        deb: {v10}\n");
    let (rc, doc) = run_fleet(&install, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));
    let (rc, doc) = run_fleet(&install, &[]);
    assert_eq!(rc, 0);
    assert_eq!(status(&doc, 0, "db1"), "ok", "{doc}");
    assert_eq!(task(&doc, 0, "db1")["result"]["changed"], false);

    // 2. Check mode with the 1.1 file: changed, with the versions as a diff, nothing installed.
    let upgrade = format!("    - package:\n        name: {v11}\n        state: latest\n");
    let (rc, doc) = run_fleet(&upgrade, &["--check", "--diff"]);
    assert_eq!(rc, 0);
    assert_eq!(status(&doc, 0, "db1"), "changed");
    let diff = task(&doc, 0, "db1")["diff"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        diff.contains(&format!("-{PKG} 1.0")) && diff.contains(&format!("+{PKG} 1.1")),
        "{doc}"
    );
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));

    // 3. `package` (apt found on the host) with state latest and the newer file: upgraded.
    let (rc, doc) = run_fleet(&upgrade, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    assert_eq!(installed(PKG).as_deref(), Some("1.1"));
    let (_, doc) = run_fleet(&upgrade, &[]);
    assert_eq!(status(&doc, 0, "db1"), "ok");

    // 4. The older file: latest is satisfied; present leaves it and says why; allow_downgrade
    //    installs it.
    let (_, doc) = run_fleet(
        &format!("    - apt:\n        name: {v10}\n        state: latest\n"),
        &[],
    );
    assert_eq!(status(&doc, 0, "db1"), "ok");
    let (_, doc) = run_fleet(&format!("    - apt:\n        name: {v10}\n"), &[]);
    assert_eq!(status(&doc, 0, "db1"), "ok");
    let msg = task(&doc, 0, "db1")["result"]["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains(&format!("{PKG} 1.1 is installed, newer than 1.0")),
        "{doc}"
    );
    assert_eq!(installed(PKG).as_deref(), Some("1.1"));
    let (rc, doc) = run_fleet(
        &format!("    - apt:\n        deb: {v10}\n        allow_downgrade: true\n"),
        &[],
    );
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));

    // 5. absent (purge): removed; again: nothing.
    let absent =
        format!("    - apt:\n        name: {PKG}\n        state: absent\n        purge: true\n");
    let (rc, doc) = run_fleet(&absent, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    assert_eq!(installed(PKG), None);
    assert!(!Path::new(&format!("/usr/share/doc/{PKG}/VERSION")).exists());
    let (_, doc) = run_fleet(&absent, &[]);
    assert_eq!(status(&doc, 0, "db1"), "ok");

    // 6. A file that is not there: the task fails before anything runs.
    let (rc, doc) = run_fleet(
        &format!("    - apt:\n        deb: {}/gone.deb\n", w.display()),
        &[],
    );
    assert_eq!(rc, 2);
    let msg = task(&doc, 0, "db1")["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.starts_with("Unable to install package:"), "{doc}");
}

/// The init script of the service package: a `sleep` as the daemon, its pid and every action
/// it was asked for under `dir`.
fn init_script(name: &str, dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: castellan test service
### END INIT INFO
PIDFILE={d}/pid
LOG={d}/actions
running() {{ [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }}
echo "$*" >>"$LOG"
case "$1" in
start) running && exit 0; sleep 100000 </dev/null >/dev/null 2>&1 & echo $! >"$PIDFILE" ;;
stop)
    if running; then
        pid=$(cat "$PIDFILE"); kill "$pid"
        n=0; while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    fi
    rm -f "$PIDFILE" ;;
restart) "$0" stop; "$0" start ;;
reload) running || exit 7 ;;
status) if running; then echo "{name} is running"; exit 0; fi; echo "{name} is not running"; exit 3 ;;
*) echo "Usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac
exit 0
"#
    )
}

/// Kills the test daemon and purges the package, also when the test fails.
struct ServiceCleanup {
    pkg: &'static str,
    dir: PathBuf,
}

impl Drop for ServiceCleanup {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        purge(self.pkg);
    }
}

fn pid_alive(dir: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn boot_links(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for level in ["0", "1", "2", "3", "4", "5", "6", "S"] {
        let Ok(rd) = fs::read_dir(format!("/etc/rc{level}.d")) else {
            continue;
        };
        for e in rd.flatten() {
            let f = e.file_name().to_string_lossy().to_string();
            if f.len() > 3 && &f[3..] == name {
                out.push(format!("rc{level}.d/{}", &f[..1]));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_sysv_init_script_from_a_package_runs_for_real() {
    let _fleet = SHARED.get();
    let _dpkg = DPKG.lock().unwrap_or_else(|e| e.into_inner());
    const PKG: &str = "castellan-svc21";
    purge(PKG);
    let dir = workdir("svc");
    let _cleanup = ServiceCleanup {
        pkg: PKG,
        dir: dir.clone(),
    };
    let mut deb = Deb::new(PKG, "1.0");
    deb.files
        .push(("etc/init.d/castellan-svc21", init_script(PKG, &dir), 0o755));
    deb.scripts.push((
        "postrm",
        format!("#!/bin/sh\nset -e\nif [ \"$1\" = purge ]; then update-rc.d {PKG} remove >/dev/null; fi\n"),
    ));
    let file = deb.build(&dir).display().to_string();
    let actions = || fs::read_to_string(dir.join("actions")).unwrap_or_default();

    // Installed by the apt module; the script is there, the service not running.
    let (rc, doc) = run_fleet(&format!("    - apt:\n        deb: {file}\n"), &[]);
    assert_eq!(rc, 0, "{doc}");
    assert!(Path::new("/etc/init.d/castellan-svc21").exists());

    // started (with arguments): runs; again: nothing (status says running).
    let start = format!(
        "    - service:\n        name: {PKG}\n        state: started\n        arguments: --fast\n"
    );
    let (rc, doc) = run_fleet(&start, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    let pid = pid_alive(&dir).expect("the daemon runs");
    assert!(actions().contains("start --fast"), "{}", actions());
    let (_, doc) = run_fleet(&start, &[]);
    assert_eq!(status(&doc, 0, "db1"), "ok");
    assert_eq!(pid_alive(&dir), Some(pid));

    // enabled: the boot links update-rc.d makes; again: nothing.
    let enable = format!("    - service:\n        name: {PKG}\n        enabled: true\n");
    let (rc, doc) = run_fleet(&enable, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    let links = boot_links(PKG);
    for l in ["rc2.d/S", "rc3.d/S", "rc4.d/S", "rc5.d/S", "rc0.d/K"] {
        assert!(links.contains(&l.to_string()), "{links:?}");
    }
    let (_, doc) = run_fleet(&enable, &[]);
    assert_eq!(status(&doc, 0, "db1"), "ok");

    // Check mode: stopping would change it, and nothing stops.
    let stop = format!(
        "    - service:\n        name: {PKG}\n        state: stopped\n        enabled: false\n"
    );
    let (_, doc) = run_fleet(&stop, &["--check"]);
    assert_eq!(status(&doc, 0, "db1"), "changed");
    assert_eq!(pid_alive(&dir), Some(pid));

    // reloaded, then restarted with a pause: a new process.
    let before = actions().lines().count();
    let tasks = format!(
        "    - service:\n        name: {PKG}\n        state: reloaded\n\
         \x20   - service:\n        name: {PKG}\n        state: restarted\n        sleep: 1\n"
    );
    let t0 = Instant::now();
    let (rc, doc) = run_fleet(&tasks, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let new: Vec<String> = actions().lines().skip(before).map(str::to_string).collect();
    let asked: Vec<&str> = new
        .iter()
        .filter(|l| *l != "status")
        .map(String::as_str)
        .collect();
    assert_eq!(asked, ["reload", "stop", "start"], "{new:?}");
    let pid2 = pid_alive(&dir).expect("running after the restart");
    assert_ne!(pid2, pid);

    // stopped and disabled: the process is gone, the start links are now stop links.
    let (rc, doc) = run_fleet(&stop, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "db1"), "changed");
    assert_eq!(pid_alive(&dir), None);
    // Gone, or a zombie until init reaps it (state Z).
    let gone =
        || fs::read_to_string(format!("/proc/{pid2}/stat")).map_or(true, |st| st.contains(") Z"));
    assert!(gone(), "the daemon {pid2} still runs after stop");
    assert!(
        boot_links(PKG).iter().all(|l| l.ends_with("/K")),
        "{:?}",
        boot_links(PKG)
    );
    let (_, doc) = run_fleet(&stop, &[]);
    assert_eq!(status(&doc, 0, "db1"), "ok");

    // A service without an init script.
    let (rc, doc) = run_fleet(
        "    - service:\n        name: castellan-nosuch21\n        state: started\n",
        &[],
    );
    assert_eq!(rc, 2);
    let msg = task(&doc, 0, "db1")["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.contains("cannot find an init script for service castellan-nosuch21"),
        "{msg}"
    );

    // Purged by apt: the postrm removes the links.
    let (rc, doc) = run_fleet(
        &format!("    - apt:\n        name: {PKG}\n        state: absent\n        purge: true\n"),
        &[],
    );
    assert_eq!(rc, 0, "{doc}");
    assert!(boot_links(PKG).is_empty());
    assert!(!Path::new("/etc/init.d/castellan-svc21").exists());
}

/// A port nothing listens on now.
fn free_port(addr: &str) -> u16 {
    TcpListener::bind(format!("{addr}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn wait_for_ports_and_files_on_a_fleet_host() {
    let _fleet = SHARED.get();
    let addr = FLEET.addr(1);
    let w = workdir("wait");

    // A listener that opens after 2 s, on db1's own address.
    let port = free_port(&addr);
    let a = addr.clone();
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        let l = TcpListener::bind(format!("{a}:{port}")).unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(l);
    });
    let t0 = Instant::now();
    let (rc, doc) = run_fleet(
        &format!("    - wait_for:\n        host: {addr}\n        port: {port}\n        timeout: 30\n      register: up\n"),
        &[],
    );
    assert_eq!(rc, 0, "{doc}");
    let r = &task(&doc, 0, "db1")["result"];
    assert_eq!(status(&doc, 0, "db1"), "ok", "never changed");
    assert_eq!(r["state"], "started");
    assert_eq!(r["port"], port);
    assert!(r["elapsed"].as_u64().unwrap() >= 1, "{r}");
    assert!(t0.elapsed() >= Duration::from_secs(2));
    // ... and closes 4 s later: stopped.
    let (rc, doc) = run_fleet(
        &format!("    - wait_for:\n        host: {addr}\n        port: {port}\n        state: stopped\n        timeout: 30\n"),
        &[],
    );
    assert_eq!(rc, 0, "{doc}");
    opener.join().unwrap();

    // Timeouts: Ansible's message and `elapsed`; `msg` replaces the message.
    let closed = free_port(&addr);
    let t0 = Instant::now();
    let (rc, doc) = run_fleet(
        &format!(
            "    - wait_for:\n        host: {addr}\n        port: {closed}\n        timeout: 2\n"
        ),
        &[],
    );
    assert_eq!(rc, 2);
    assert!(t0.elapsed() >= Duration::from_secs(2));
    let r = task(&doc, 0, "db1");
    assert_eq!(
        r["msg"],
        format!("Timeout when waiting for {addr}:{closed}")
    );
    assert_eq!(r["result"]["elapsed"], 2);
    let (_, doc) = run_fleet(
        &format!("    - wait_for:\n        port: {closed}\n        timeout: 1\n        msg: the app never came up\n"),
        &[],
    );
    assert_eq!(task(&doc, 0, "db1")["msg"], "the app never came up");

    // A file written after 2 s, with the line the regex waits for.
    let log = w.join("app.log");
    let l2 = log.clone();
    let writer = std::thread::spawn(move || {
        fs::write(&l2, "booting\n").unwrap();
        std::thread::sleep(Duration::from_secs(2));
        fs::write(&l2, "booting\nready pid=4242 port=8080\n").unwrap();
    });
    let (rc, doc) = run_fleet(
        &format!(
            "    - wait_for:\n        path: {}\n        search_regex: '^ready pid=(?P<pid>\\d+) port=(\\d+)$'\n        timeout: 30\n",
            log.display()
        ),
        &[],
    );
    writer.join().unwrap();
    assert_eq!(rc, 0, "{doc}");
    let r = &task(&doc, 0, "db1")["result"];
    assert_eq!(r["match_groups"], json!(["4242", "8080"]));
    assert_eq!(r["match_groupdict"], json!({"pid": "4242"}));
    assert_eq!(r["path"], log.display().to_string());

    // absent after 1 s; delay counts in elapsed; check mode skips (Ansible's wait_for does not
    // support it).
    let l3 = log.clone();
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        fs::remove_file(&l3).unwrap();
    });
    let (rc, doc) = run_fleet(
        &format!("    - wait_for:\n        path: {}\n        state: absent\n        delay: 1\n        timeout: 30\n", log.display()),
        &[],
    );
    remover.join().unwrap();
    assert_eq!(rc, 0, "{doc}");
    assert!(task(&doc, 0, "db1")["result"]["elapsed"].as_u64().unwrap() >= 1);
    let (rc, doc) = run_fleet(
        &format!(
            "    - wait_for:\n        path: {}/never\n        timeout: 60\n",
            w.display()
        ),
        &["--check"],
    );
    assert_eq!(rc, 0);
    assert_eq!(status(&doc, 0, "db1"), "skipped");
    let (_, doc) = run_fleet(
        &format!(
            "    - wait_for:\n        path: {}/never\n        timeout: 1\n",
            w.display()
        ),
        &[],
    );
    assert_eq!(
        task(&doc, 0, "db1")["msg"],
        format!("Timeout when waiting for file {}/never", w.display())
    );
}

#[test]
fn the_remote_port_check_connects_with_what_the_host_has() {
    // A port on another machine is tried with one connection (bash's /dev/tcp here): open
    // when something listens, not open when nothing does.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = l.local_addr().unwrap().port();
    let closed = free_port("127.0.0.1");
    let try_port = |port: u16| {
        let script = castellan::os::listeners::connect_script("127.0.0.1", port, 2).unwrap();
        let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
        castellan::os::listeners::parse_connect(&String::from_utf8_lossy(&out.stdout))
    };
    assert_eq!(try_port(open), ("bash".to_string(), true));
    assert_eq!(try_port(closed), ("bash".to_string(), false));
}

/// A local repository the test owns, and an APT_CONFIG that makes apt use only it (its own
/// lists and cache; the machine's sources, lists and apt.conf.d are not read). `copy:` rather
/// than `file:`: apt copies the index into its lists at `apt-get update` (for `file:` it links
/// to it, so a newly published version would be seen without an update), so the cache can be
/// stale the way a remote repository's is.
struct Repo {
    dir: PathBuf,
    conf: PathBuf,
}

impl Repo {
    fn new(dir: &Path) -> Repo {
        let _ = fs::remove_dir_all(dir);
        for d in [
            "repo",
            "parts",
            "lists/partial",
            "cache/archives/partial",
            "prefs",
        ] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        fs::write(
            dir.join("sources.list"),
            format!("deb [trusted=yes] copy:{} ./\n", dir.join("repo").display()),
        )
        .unwrap();
        let conf = dir.join("apt.conf");
        let d = dir.display();
        fs::write(
            &conf,
            format!(
                "Dir::Etc::SourceList \"{d}/sources.list\";\nDir::Etc::SourceParts \"{d}/parts\";\n\
                 Dir::Etc::Parts \"{d}/parts\";\nDir::Etc::PreferencesParts \"{d}/prefs\";\n\
                 Dir::State::Lists \"{d}/lists\";\nDir::Cache \"{d}/cache\";\nAcquire::Languages \"none\";\n"
            ),
        )
        .unwrap();
        Repo {
            dir: dir.to_path_buf(),
            conf,
        }
    }

    /// Put a package in the repository and write its index.
    fn publish(&self, deb: &Path) {
        let repo = self.dir.join("repo");
        fs::copy(deb, repo.join(deb.file_name().unwrap())).unwrap();
        let mut index = String::new();
        let mut debs: Vec<PathBuf> = fs::read_dir(&repo)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        debs.sort();
        for p in debs {
            let o = Command::new("dpkg-deb").arg("-f").arg(&p).output().unwrap();
            let bytes = fs::read(&p).unwrap();
            use sha2::Digest;
            index.push_str(String::from_utf8_lossy(&o.stdout).trim_end());
            index.push_str(&format!(
                "\nFilename: ./{}\nSize: {}\nSHA256: {}\n\n",
                p.file_name().unwrap().to_string_lossy(),
                bytes.len(),
                hex::encode(sha2::Sha256::digest(&bytes))
            ));
        }
        fs::write(repo.join("Packages"), index).unwrap();
    }

    /// Run `tasks` on a local host with this APT_CONFIG.
    fn run(&self, tasks: &str, args: &[&str]) -> (i32, Value) {
        let play = self.dir.join("play.yml");
        fs::write(&play, format!("- hosts: box1\n  tasks:\n{tasks}")).unwrap();
        let inv = self.dir.join("inventory.yml");
        fs::write(
            &inv,
            "all:\n  hosts:\n    box1:\n      ansible_connection: local\n",
        )
        .unwrap();
        let conf = self.conf.display().to_string();
        castellan(
            &play,
            &inv.display().to_string(),
            args,
            &[("APT_CONFIG", &conf)],
        )
    }
}

#[test]
fn apt_by_name_from_a_local_repository_with_update_cache_and_latest() {
    let _dpkg = DPKG.lock().unwrap_or_else(|e| e.into_inner());
    const PKG: &str = "castellan-repo21";
    purge(PKG);
    let base = tempfile::tempdir().unwrap();
    let repo = Repo::new(&base.path().join("apt"));
    let v10 = Deb::new(PKG, "1.0").build(base.path());
    let v11 = Deb::new(PKG, "1.1").build(base.path());
    repo.publish(&v10);

    // Not in the (empty) cache and no update: refused before anything runs.
    let (rc, doc) = repo.run(&format!("    - apt:\n        name: {PKG}\n"), &[]);
    assert_eq!(rc, 2, "{doc}");
    assert_eq!(
        task(&doc, 0, "box1")["msg"],
        format!("No package matching '{PKG}' is available")
    );

    // update_cache, then the install: changed, cache_updated.
    let (rc, doc) = repo.run(
        &format!("    - apt:\n        name: {PKG}\n        update_cache: true\n"),
        &[],
    );
    assert_eq!(rc, 0, "{doc}");
    let r = task(&doc, 0, "box1");
    assert_eq!(r["status"], "changed");
    assert_eq!(r["result"]["cache_updated"], true);
    assert!(r["result"]["cache_update_time"].as_i64().unwrap() > 0);
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));

    // A fresh cache is not updated again (cache_valid_time); the package is there: ok.
    let fresh = format!(
        "    - apt:\n        name: {PKG}\n        state: latest\n        cache_valid_time: 3600\n"
    );
    let (_, doc) = repo.run(&fresh, &[]);
    assert_eq!(status(&doc, 0, "box1"), "ok", "{doc}");
    assert_eq!(task(&doc, 0, "box1")["result"]["cache_updated"], false);

    // 1.1 published: the cache does not know it yet, so latest with a fresh cache stays ok;
    // with update_cache, check mode cannot know either (ok), the real run upgrades.
    repo.publish(&v11);
    let (_, doc) = repo.run(&fresh, &[]);
    assert_eq!(status(&doc, 0, "box1"), "ok");
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));
    let update = format!(
        "    - apt:\n        name: {PKG}\n        state: latest\n        update_cache: true\n"
    );
    let (_, doc) = repo.run(&update, &["--check"]);
    assert_eq!(status(&doc, 0, "box1"), "ok", "{doc}");
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));
    let (rc, doc) = repo.run(&update, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "box1"), "changed");
    assert_eq!(task(&doc, 0, "box1")["result"]["cache_updated"], true);
    assert_eq!(installed(PKG).as_deref(), Some("1.1"));
    // The cache refreshed again, nothing newer: ok, cache_updated.
    let (_, doc) = repo.run(&update, &[]);
    assert_eq!(status(&doc, 0, "box1"), "ok");
    assert_eq!(task(&doc, 0, "box1")["result"]["cache_updated"], true);
    // update_cache alone is a change (Ansible's apt).
    let (_, doc) = repo.run("    - apt:\n        update_cache: true\n", &[]);
    assert_eq!(status(&doc, 0, "box1"), "changed");

    // A pinned older version: only with allow_downgrade; then present is satisfied.
    let pin = format!("    - apt:\n        name: {PKG}=1.0\n        allow_downgrade: true\n");
    let (rc, doc) = repo.run(&pin, &[]);
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "box1"), "changed");
    assert_eq!(installed(PKG).as_deref(), Some("1.0"));
    let (_, doc) = repo.run(&pin, &[]);
    assert_eq!(status(&doc, 0, "box1"), "ok");

    // removed: gone.
    let (rc, doc) = repo.run(
        &format!("    - apt:\n        name: {PKG}\n        state: removed\n"),
        &[],
    );
    assert_eq!(rc, 0, "{doc}");
    assert_eq!(status(&doc, 0, "box1"), "changed");
    assert_eq!(installed(PKG), None);
    purge(PKG);
}
