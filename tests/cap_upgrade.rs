//! Issue 12 end to end: role `cap` through `playbooks/cap-upgrade.yml` on three CAP VMs (capweb1,
//! capweb2: group cap_web; capworker1: group cap_worker), sshd-only fleet hosts whose sessions
//! find the recording fixtures of `tests/fixtures/cap` first on their PATH (`cs`, `yum`/`rpm`,
//! `cap-health`), and one PostgreSQL host db1 with mutual TLS from `playbooks/enable-mtls.yml`
//! (`tests/fleet/up.sh 1 --cap 2:1 --fixtures tests/fixtures/cap`, net 22). Every fixture call
//! lands in one log shared by the VMs and the control node (the hooks), so the order across VMs
//! is asserted. One test drives the steps in order: they share one fleet.
//!
//! Steps: verify-full refused before anything exists; a new installation (`cs database init`);
//! an upgrade (acceptance 1: the order of installs, migrate, restarts, hooks, license; the
//! configuration byte-identical and 0600; psql "$DATABASE_URL" on a VM logs in over TLS with the
//! client certificate and the percent-encoded password); the same run again (acceptance 2:
//! nothing changed, installed, migrated or restarted); `--check` of the next upgrade (nothing
//! changes); that upgrade with an injected migrate failure (acceptance 3: no restart, maintenance
//! off, exit 2), then again without it (the owed migration and restarts are done); verify-full
//! once installed (nothing changed); SECRET_KEY rotated; and a leak scan of every output, the
//! state files and the process table for the database password, the S3 secret, every SECRET_KEY
//! and the client key.
mod fleet_common;
mod secret_scan;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleet_common::FleetDef;
use secret_scan::ps::PsWatch;
use secret_scan::Needles;

const NET: &str = "22";
const DIR: &str = "/tmp/castellan-cap-test-fleet";
const VMS: [&str; 3] = ["capweb1", "capweb2", "capworker1"];
const SERVICE_USER: &str = "capsvc";
/// The database user: `@` must be percent-encoded in the URL's user part.
const DB_USER: &str = "cap@svc";
/// Every character here but letters and digits needs percent-encoding in a URL's password.
const PASSWORD: &str = "p@ss:w/rd%&?#é'x 4711";
const S3_SECRET: &str = "s3-Secret/Key+4711abc";
/// The token in the maintenance hooks' URLs.
const HOOK_TOKEN: &str = "hook-Token-4711-xyz";

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn root(vm: &str) -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/{vm}/root"))
}

fn config_path(vm: &str) -> PathBuf {
    root(vm).join("etc/cryptosense-analyzer/config")
}

fn fixtures() -> PathBuf {
    PathBuf::from(format!("{DIR}/fixtures"))
}

/// One line of the fixtures' log: when, on which host, what.
#[derive(Debug, Clone)]
struct Call {
    at: f64,
    host: String,
    what: String,
}

fn calls() -> Vec<Call> {
    std::fs::read_to_string(fixtures().join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let at = it.next().unwrap_or("0").parse().unwrap_or(0.0);
            let host = it.next().unwrap_or("").to_string();
            let what = it.next().unwrap_or("").to_string();
            Call { at, host, what }
        })
        .collect()
}

/// The calls that change something or run CAP (the package queries `rpm -q`/`-qp` left out).
fn actions(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|c| !c.what.starts_with("rpm "))
        .cloned()
        .collect()
}

fn shown(calls: &[Call]) -> String {
    calls
        .iter()
        .map(|c| format!("{:.3} {} {}", c.at, c.host, c.what))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A castellan run: its output, its JSON report (when it printed one) and the fixture calls it
/// made.
struct Run {
    out: Output,
    doc: serde_json::Value,
    calls: Vec<Call>,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    fn changed(&self, host: &str) -> u64 {
        self.doc["stats"][host]["changed"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }

    fn actions(&self) -> Vec<Call> {
        actions(&self.calls)
    }

    fn ok(&self, what: &str) {
        assert_eq!(
            self.code(),
            Some(0),
            "{what}: {}\n{}",
            text(&self.out),
            shown(&self.calls)
        );
    }

    /// `finished_at` of a task's result on a host.
    fn finished(&self, task: &str, host: &str) -> f64 {
        for p in self.doc["plays"].as_array().into_iter().flatten() {
            for t in p["tasks"].as_array().into_iter().flatten() {
                if t["name"].as_str() == Some(task) {
                    if let Some(f) = t["results"][host]["finished_at"].as_f64() {
                        return f;
                    }
                }
            }
        }
        panic!("no result of task `{task}` on {host}")
    }
}

/// The test's own copies of the playbooks (their `.castellan/` state stays in `dir`), the role
/// from the repository.
struct Site {
    dir: PathBuf,
    inventory: PathBuf,
}

impl Site {
    fn run(&self, playbook: &str, extra: &[&str]) -> Run {
        let before = calls().len();
        let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
            .arg("playbook")
            .arg(self.dir.join(playbook))
            .args(["-i", &FLEET.inventory(), "-i"])
            .arg(&self.inventory)
            .args(["--output", "json"])
            .args(extra)
            .env("CASTELLAN_ROLES_PATH", repo("roles"))
            .env("CASTELLAN_FIXTURE_LOG", fixtures().join("calls.log"))
            .env("CASTELLAN_FIXTURE_HOST", "control")
            .env("CASTELLAN_FIXTURE_STATE", fixtures().join("control"))
            .current_dir(&self.dir)
            .output()
            .expect("run castellan");
        let doc = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        let calls = calls().split_off(before);
        Run { out, doc, calls }
    }

    /// `playbooks/cap-upgrade.yml` for a version (its rpm files in pkgs/VERSION).
    fn cap(&self, version: &str, extra: &[&str]) -> Run {
        let v = format!("cap_version={version}");
        let d = format!(
            "cap_package_dir={}",
            self.dir.join("pkgs").join(version).display()
        );
        let mut args = vec!["-e", &v, "-e", &d];
        args.extend_from_slice(extra);
        self.run("cap-upgrade.yml", &args)
    }
}

/// A fixture package file (tests/fixtures/recording/README.md).
fn package(dir: &Path, kind: &str, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join(format!("cryptosense-analyzer-{kind}-{version}.rpm")),
        format!("Name: cryptosense-analyzer-{kind}\nEVR: 0:{version}\nArch: x86_64\n"),
    )
    .unwrap();
}

/// A recording HTTP server on 127.0.0.1 standing in for a load balancer's maintenance API and the
/// web VMs' health URL: each request becomes a line `TS control http METHOD PATH` (the query,
/// which holds the token, left out) in the fixtures' log; every answer is 200. Returns its port.
fn http_recorder() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let mut words = head.lines().next().unwrap_or("").split(' ');
            let method = words.next().unwrap_or("");
            let path = words.next().unwrap_or("").split('?').next().unwrap_or("");
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(fixtures().join("calls.log"))
                .unwrap();
            log.write_all(format!("{now:.9} control http {method} {path}\n").as_bytes())
                .unwrap();
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    port
}

/// SQL on the socket of db1 as postgres, on stdin (the password never in a process's arguments).
fn sql(statements: &str) {
    use std::io::Write;
    let mut psql = Command::new("bash")
        .arg(repo("tests/fleet/pg.sh"))
        .args(["db1", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1"])
        .env("CASTELLAN_FLEET_NET", NET)
        .env("CASTELLAN_FLEET_DIR", DIR)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    psql.stdin
        .take()
        .unwrap()
        .write_all(statements.as_bytes())
        .unwrap();
    let out = psql.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// The address of a fleet host, from the inventory up.sh wrote.
fn address(host: &str) -> String {
    let inv = std::fs::read_to_string(FLEET.inventory()).unwrap();
    let line = inv
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{host}:")))
        .unwrap_or_else(|| panic!("{host} not in the inventory:\n{inv}"));
    let at = line.find("ansible_host: ").expect("ansible_host") + "ansible_host: ".len();
    line[at..]
        .split([',', '}', ' '])
        .next()
        .unwrap()
        .to_string()
}

/// A shell command run on a VM over SSH as root (the fleet's key, strict host keys).
fn on_vm(vm: &str, command: &str) -> Output {
    Command::new("ssh")
        .args(["-n", "-i", &format!("{DIR}/id_ed25519")])
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(["-o", "StrictHostKeyChecking=yes"])
        .args(["-o", &format!("UserKnownHostsFile={DIR}/known_hosts")])
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ControlPath=none",
        ])
        .arg(format!("root@{}", address(vm)))
        .arg(command)
        .output()
        .expect("ssh")
}

/// The value of KEY in a configuration text (as `sh` reads it: the file is sourced).
fn setting(vm: &str, key: &str) -> String {
    let out = Command::new("sh")
        .args([
            "-c",
            "set -a; . \"$1\"; eval \"printf %s \\\"\\$$2\\\"\"",
            "sh",
        ])
        .arg(config_path(vm))
        .arg(key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Mode, owner and bytes of every file under the VMs' roots, the PKI, the secrets and the
/// fixtures' shared state (not the log): what "nothing changed" compares.
fn snapshot(site: &Site) -> Vec<(PathBuf, u32, u32, i64, i64, Vec<u8>)> {
    let mut dirs: Vec<PathBuf> = VMS.iter().map(|vm| root(vm)).collect();
    dirs.push(PathBuf::from(format!("{DIR}/cap-ssl")));
    dirs.push(PathBuf::from(format!("{DIR}/secrets")));
    dirs.push(site.dir.join("pki"));
    for vm in VMS {
        dirs.push(PathBuf::from(format!("{DIR}/hosts/{vm}/fixture-state")));
    }
    let mut out = Vec::new();
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                dirs.push(p.clone());
            }
            // The recording rpm fixture logs every query there.
            if p.file_name().is_some_and(|n| n == "calls.log") {
                continue;
            }
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.push((p, m.mode(), m.uid(), m.mtime(), m.mtime_nsec(), content));
        }
    }
    for f in ["cap-database", "cap-license", "maintenance"] {
        let p = fixtures().join(f);
        out.push((p.clone(), 0, 0, 0, 0, std::fs::read(&p).unwrap_or_default()));
    }
    out.sort();
    out
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The order of one installation or upgrade run (acceptance 1), `init` or `migrate`.
fn assert_guide_order(run: &Run, kind: &str, version: &str, license: bool) {
    let a = run.actions();
    let log = shown(&a);
    let pos = |pred: &dyn Fn(&Call) -> bool| -> Vec<usize> {
        a.iter()
            .enumerate()
            .filter(|(_, c)| pred(c))
            .map(|(i, _)| i)
            .collect()
    };
    // Hooks: the backup, then maintenance on, before anything of CAP; maintenance off last.
    let backup = pos(&|c| c.what == "cap-hook backup");
    let on = pos(&|c| c.what == "cap-hook maintenance on");
    let off = pos(&|c| c.what == "cap-hook maintenance off");
    assert_eq!((backup.len(), on.len(), off.len()), (1, 1, 1), "{log}");
    assert_eq!((backup[0], on[0]), (0, 1), "{log}");
    // The worker VM is idle before anything of CAP changes.
    assert_eq!(a[2].what, "cap-idle", "{log}");
    assert_eq!(a[2].host, "capworker1", "{log}");
    assert_eq!(
        off[0],
        a.len() - 1,
        "maintenance off is the last call:\n{log}"
    );
    // Each VM installs its own package, once.
    let installs = pos(&|c| c.what.starts_with("yum ") && c.what.contains(" install "));
    assert_eq!(installs.len(), 3, "{log}");
    for (vm, kind) in [
        ("capweb1", "web"),
        ("capweb2", "web"),
        ("capworker1", "worker"),
    ] {
        let file = format!("cryptosense-analyzer-{kind}-{version}.rpm");
        assert!(
            installs
                .iter()
                .any(|&i| a[i].host == vm && a[i].what.ends_with(&file)),
            "{vm} installs {file}:\n{log}"
        );
    }
    // One `cs database init|migrate`, after every install, before every restart.
    let db = pos(&|c| c.what.starts_with("cs database "));
    assert_eq!(db.len(), 1, "{log}");
    assert_eq!(a[db[0]].what, format!("cs database {kind}"), "{log}");
    assert!(installs.iter().all(|&i| i < db[0]), "{log}");
    // The configuration was on every VM before it.
    for vm in VMS {
        assert!(
            run.finished(
                "cap : /etc/cryptosense-analyzer/config, the same bytes on every VM",
                vm
            ) < a[db[0]].at,
            "{vm}'s configuration after the migration:\n{log}"
        );
    }
    // Restarts: every VM once, after the migration, strictly one after the other, each VM
    // healthy before the next one starts.
    let starts = pos(&|c| c.what == "cs restart");
    let ends = pos(&|c| c.what == "cs restart: done");
    assert_eq!((starts.len(), ends.len()), (3, 3), "{log}");
    let mut restarted: Vec<&str> = starts.iter().map(|&i| a[i].host.as_str()).collect();
    restarted.sort();
    assert_eq!(restarted, ["capweb1", "capweb2", "capworker1"], "{log}");
    assert!(starts[0] > db[0], "{log}");
    for k in 0..3 {
        assert_eq!(a[ends[k]].host, a[starts[k]].host, "{log}");
        assert!(starts[k] < ends[k], "{log}");
        if k + 1 < 3 {
            assert!(ends[k] < starts[k + 1], "restarts overlap:\n{log}");
            let vm = &a[starts[k]].host;
            assert!(
                (ends[k]..starts[k + 1]).any(|i| a[i].what == "cap-health" && &a[i].host == vm),
                "{vm} was not checked before the next restart:\n{log}"
            );
        }
    }
    // The license: synchronized once, on one VM, before the restarts, when it changed.
    let sync = pos(&|c| c.what == "cs license synchronize");
    if license {
        assert_eq!(sync.len(), 1, "{log}");
        assert!(sync[0] > db[0] && sync[0] < starts[0], "{log}");
    } else {
        assert!(sync.is_empty(), "{log}");
    }
    assert_eq!(
        std::fs::read_to_string(fixtures().join("maintenance")).unwrap(),
        "off\n"
    );
}

/// The configuration is the same bytes on every VM, 0600, the service user's; returns it.
fn assert_same_config() -> Vec<u8> {
    let first = std::fs::read(config_path(VMS[0])).unwrap();
    for vm in VMS {
        let p = config_path(vm);
        assert_eq!(
            std::fs::read(&p).unwrap(),
            first,
            "{vm}'s configuration differs"
        );
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600, "{}", p.display());
        assert_eq!(m.uid(), uid_of(SERVICE_USER), "{}", p.display());
    }
    first
}

fn secret_key() -> String {
    let k = setting(VMS[0], "SECRET_KEY");
    assert_eq!(k.len(), 64, "SECRET_KEY={k}");
    assert!(k.bytes().all(|b| b.is_ascii_hexdigit()), "SECRET_KEY={k}");
    k
}

#[test]
fn cap_install_upgrade_and_failure_on_a_fleet() {
    FLEET.script(
        "up.sh",
        &[
            "1",
            "--cap",
            "2:1",
            "--fixtures",
            repo("tests/fixtures/cap").to_str().unwrap(),
        ],
    );
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    for p in ["cap-upgrade.yml", "enable-mtls.yml"] {
        std::fs::copy(repo("playbooks").join(p), dir.join(p)).unwrap();
    }
    // The fixtures' shared state starts empty; the VMs have no CAP yet.
    let _ = std::fs::remove_dir_all(fixtures());
    std::fs::create_dir_all(fixtures()).unwrap();
    for vm in VMS {
        let _ = std::fs::remove_dir_all(root(vm).join("etc"));
        let _ = std::fs::remove_dir_all(root(vm).join("var"));
        let _ = std::fs::remove_dir_all(format!("{DIR}/hosts/{vm}/fixture-state"));
    }
    let _ = std::fs::remove_dir_all(format!("{DIR}/secrets"));
    let _ = std::fs::remove_dir_all(format!("{DIR}/cap-ssl"));
    for v in ["1.0.0-1", "1.1.0-1", "1.2.0-1"] {
        package(&dir.join("pkgs").join(v), "web", v);
        package(&dir.join("pkgs").join(v), "worker", v);
    }
    std::fs::write(dir.join("license-a"), "CAP license A\n").unwrap();
    std::fs::write(dir.join("license-b"), "CAP license B\n").unwrap();
    let fx = repo("tests/fixtures/cap");
    let fx = fx.display();
    let site = Site {
        inventory: dir.join("cap.yml"),
        dir: dir.clone(),
    };
    std::fs::write(
        &site.inventory,
        format!(
            "all:\n  vars:\n    pki_dir: {pki}\n    cap_database_host: db1.f{NET}.fleet.test\n    \
             cap_database_name: cap\n    cap_database_user: {user}\n    cap_database_password: {pw}\n    \
             cap_redis_url: rediss://redis.f{NET}.fleet.test:6379/0\n    \
             cap_s3_endpoint: https://s3.f{NET}.fleet.test\n    cap_s3_bucket: cap-traces\n    \
             cap_s3_access_key_id: CAPTRACES\n    cap_s3_secret_access_key: {s3}\n    \
             cap_backup_command: {fx}/cap-hook backup\n    \
             cap_maintenance_on_command: {fx}/cap-hook maintenance on\n    \
             cap_maintenance_off_command: {fx}/cap-hook maintenance off\n    \
             cap_health_check_command: cap-health\n    cap_health_check_interval: 1\n    \
             cap_workers_idle_command: cap-idle\n    \
             cap_health_check_timeout: 20\n",
            pki = dir.join("pki").display(),
            user = serde_json::to_string(DB_USER).unwrap(),
            pw = serde_json::to_string(PASSWORD).unwrap(),
            s3 = serde_json::to_string(S3_SECRET).unwrap(),
        ),
    )
    .unwrap();

    // The database: mutual TLS on db1 (castellan's CA in pki/), CAP's user and database, and a
    // rule asking CAP's user for both its password and its certificate.
    let mtls = site.run("enable-mtls.yml", &["--limit", "postgres"]);
    mtls.ok("enable-mtls");
    sql(&format!(
        "DROP DATABASE IF EXISTS cap;\nDROP ROLE IF EXISTS \"{DB_USER}\";\n\
         CREATE ROLE \"{DB_USER}\" LOGIN PASSWORD '{}';\nCREATE DATABASE cap OWNER \"{DB_USER}\";\n",
        PASSWORD.replace('\'', "''")
    ));
    let hba = PathBuf::from(format!("/etc/postgresql/15/f{NET}db1/pg_hba.conf"));
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!(
            "hostssl cap \"{DB_USER}\" 0.0.0.0/0 scram-sha-256 clientcert=verify-full\n{rules}"
        ),
    )
    .unwrap();
    FLEET.script("pg.sh", &["db1", "reload"]);

    let watch = PsWatch::start();
    let mut runs: Vec<(String, Run)> = Vec::new();

    // verify-full, before anything exists: refused, with CAP's modes, nothing anywhere.
    let before = snapshot(&site);
    let refused = site.cap("1.0.0-1", &["-e", "cap_database_sslmode=verify-full"]);
    assert!(
        matches!(refused.code(), Some(2 | 4)),
        "{}",
        text(&refused.out)
    );
    let said = text(&refused.out);
    for mode in ["verify-full", "disable", "prefer", "require", "verify-ca"] {
        assert!(said.contains(mode), "{mode} not in:\n{said}");
    }
    assert!(refused.calls.is_empty(), "{}", shown(&refused.calls));
    assert_eq!(snapshot(&site), before, "verify-full changed something");
    assert!(!Path::new(&format!("{DIR}/secrets")).exists());
    runs.push(("verify-full before install".into(), refused));

    // A new installation: `cs database init`, the license A.
    let lic_a = format!("cap_license_file={}", dir.join("license-a").display());
    let install = site.cap("1.0.0-1", &["-e", "cap_database_init=true", "-e", &lic_a]);
    install.ok("new installation");
    assert_guide_order(&install, "init", "1.0.0-1", true);
    assert_eq!(
        std::fs::read_to_string(fixtures().join("cap-database")).unwrap(),
        "0:1.0.0-1\n"
    );
    let config_1 = assert_same_config();
    let key = secret_key();
    runs.push(("install".into(), install));

    // Acceptance 1: an upgrade, with a new license, verbose and with diffs.
    let lic_b = format!("cap_license_file={}", dir.join("license-b").display());
    let upgrade = site.cap("1.1.0-1", &["-e", &lic_b, "--diff", "-vvv"]);
    upgrade.ok("upgrade");
    assert_guide_order(&upgrade, "migrate", "1.1.0-1", true);
    assert_eq!(
        std::fs::read_to_string(fixtures().join("cap-database")).unwrap(),
        "0:1.1.0-1\n"
    );
    // Acceptance 2 (first half): identical, private, the same key as before.
    let config_2 = assert_same_config();
    assert_eq!(config_2, config_1, "an upgrade alone changes no setting");
    assert_eq!(secret_key(), key);
    runs.push(("upgrade".into(), upgrade));

    // Acceptance 2: the same run again changes nothing, installs, migrates, restarts nothing.
    let before = snapshot(&site);
    let again = site.cap("1.1.0-1", &["-e", &lic_b]);
    again.ok("second run");
    for vm in VMS {
        assert_eq!(again.changed(vm), 0, "{vm}: {}", text(&again.out));
    }
    assert!(again.actions().is_empty(), "{}", shown(&again.actions()));
    assert_eq!(snapshot(&site), before, "the second run changed something");
    assert_eq!(secret_key(), key);
    runs.push(("second run".into(), again));

    // --check of the next upgrade: it says what would change, changes nothing.
    let checked = site.cap("1.2.0-1", &["-e", &lic_b, "--check"]);
    checked.ok("--check");
    assert!(
        checked.actions().is_empty(),
        "{}",
        shown(&checked.actions())
    );
    assert_eq!(snapshot(&site), before, "--check changed something");
    runs.push(("check".into(), checked));

    // Acceptance 3: the migration fails: no VM restarted, maintenance off again, exit 2.
    std::fs::create_dir_all(fixtures().join("fail")).unwrap();
    std::fs::write(
        fixtures().join("fail/cs-database-migrate"),
        "ERROR: migration 42 failed (injected by the test)\n",
    )
    .unwrap();
    let failed = site.cap("1.2.0-1", &["-e", &lic_b]);
    assert_eq!(failed.code(), Some(2), "{}", text(&failed.out));
    let a = failed.actions();
    let log = shown(&a);
    assert!(
        a.iter()
            .any(|c| c.what == "cs-database-migrate: failed (injected)"),
        "{log}"
    );
    assert!(!a.iter().any(|c| c.what.starts_with("cs restart")), "{log}");
    assert_eq!(a[1].what, "cap-hook maintenance on", "{log}");
    assert_eq!(a.last().unwrap().what, "cap-hook maintenance off", "{log}");
    assert_eq!(
        std::fs::read_to_string(fixtures().join("maintenance")).unwrap(),
        "off\n"
    );
    assert_eq!(
        std::fs::read_to_string(fixtures().join("cap-database")).unwrap(),
        "0:1.1.0-1\n"
    );
    runs.push(("failed migration".into(), failed));

    // The next run finishes what the failed one owed: the packages no longer change, yet the
    // migration and every restart happen, under maintenance.
    std::fs::remove_file(fixtures().join("fail/cs-database-migrate")).unwrap();
    let resumed = site.cap("1.2.0-1", &["-e", &lic_b]);
    resumed.ok("resumed");
    let a = resumed.actions();
    let log = shown(&a);
    assert!(!a.iter().any(|c| c.what.starts_with("yum ")), "{log}");
    assert_eq!(
        a.iter().filter(|c| c.what == "cs database migrate").count(),
        1,
        "{log}"
    );
    assert_eq!(
        a.iter().filter(|c| c.what == "cs restart").count(),
        3,
        "{log}"
    );
    assert_eq!(a[1].what, "cap-hook maintenance on", "{log}");
    assert_eq!(a.last().unwrap().what, "cap-hook maintenance off", "{log}");
    assert_eq!(
        std::fs::read_to_string(fixtures().join("cap-database")).unwrap(),
        "0:1.2.0-1\n"
    );
    for vm in VMS {
        assert!(
            std::fs::read_dir(root(vm).join("var/lib/castellan/cap"))
                .unwrap()
                .next()
                .is_none(),
            "{vm} still owes work"
        );
    }
    runs.push(("resumed".into(), resumed));

    // verify-full on an installed site: refused, nothing changed.
    let before = snapshot(&site);
    let refused = site.cap("1.2.0-1", &["-e", "cap_database_sslmode=verify-full"]);
    assert!(
        matches!(refused.code(), Some(2 | 4)),
        "{}",
        text(&refused.out)
    );
    assert!(refused.calls.is_empty(), "{}", shown(&refused.calls));
    assert_eq!(snapshot(&site), before, "verify-full changed something");
    runs.push(("verify-full when installed".into(), refused));

    // SECRET_KEY rotated: a new key everywhere, every VM restarted, nothing installed or
    // migrated. This time maintenance goes through URLs (with a token) and the web VMs' health
    // through a URL too, all served by the recording HTTP server.
    let port = http_recorder();
    let hook =
        |what: &str| format!("http://127.0.0.1:{port}/maintenance/{what}?token={HOOK_TOKEN}");
    let on = format!("cap_maintenance_on_url={}", hook("on"));
    let off = format!("cap_maintenance_off_url={}", hook("off"));
    // JSON: `key=value` pairs end at a space.
    let health = serde_json::json!({
        "cap_health_check_url": format!("http://127.0.0.1:{port}/health/{{{{ inventory_hostname }}}}")
    })
    .to_string();
    let rotated = site.cap(
        "1.2.0-1",
        &[
            "-e",
            &lic_b,
            "-e",
            "cap_rotate_secret_key=true",
            "-e",
            "cap_maintenance_on_command=",
            "-e",
            "cap_maintenance_off_command=",
            "-e",
            &on,
            "-e",
            &off,
            "-e",
            &health,
        ],
    );
    rotated.ok("rotation");
    let a = rotated.actions();
    let log = shown(&a);
    assert_eq!(a[0].what, "http POST /maintenance/on", "{log}");
    assert_eq!(
        a.last().unwrap().what,
        "http POST /maintenance/off",
        "{log}"
    );
    assert!(!a.iter().any(|c| c.what.starts_with("cap-hook")), "{log}");
    assert!(
        !a.iter()
            .any(|c| c.what.starts_with("yum ") || c.what.starts_with("cs database")),
        "{log}"
    );
    let starts: Vec<usize> = (0..a.len())
        .filter(|&i| a[i].what == "cs restart")
        .collect();
    assert_eq!(starts.len(), 3, "{log}");
    for (k, &i) in starts.iter().enumerate() {
        let vm = a[i].host.clone();
        let next = starts.get(k + 1).copied().unwrap_or(a.len());
        let checked = (i..next).any(|j| a[j].what == format!("http GET /health/{vm}"));
        // The URL is the web VMs' check; a worker VM has none.
        assert_eq!(checked, vm.starts_with("capweb"), "{vm}:\n{log}");
    }
    assert_same_config();
    let new_key = secret_key();
    assert_ne!(new_key, key);
    runs.push(("rotation".into(), rotated));
    let seen = watch.finish();

    // Acceptance 4: DATABASE_URL read from the written configuration, psql run on a VM as the
    // service user: a TLS login with the client certificate and the password; without the
    // certificate the server refuses.
    let url = setting("capweb2", "DATABASE_URL");
    let crt = format!("{DIR}/cap-ssl/client.crt");
    assert!(url.starts_with("postgres://cap%40svc:"), "{url}");
    assert!(url.contains("sslmode=verify-ca&sslcert="), "{url}");
    assert!(url.contains(&crt), "{url}");
    assert!(
        !url.contains(PASSWORD),
        "the password is not percent-encoded: {url}"
    );
    let config = config_path("capweb2").display().to_string();
    let login = |filter: &str| {
        on_vm(
            "capweb2",
            &format!(
                "runuser -u {SERVICE_USER} -- sh -c 'set -a; . \"$1\"; \
                 exec env PGCONNECT_TIMEOUT=10 psql \"$(printf %s \"$DATABASE_URL\" | {filter})\" -XAtc \
                 \"SELECT current_user, ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()\"' \
                 sh {config}"
            ),
        )
    };
    let ok_login = login("cat");
    assert!(ok_login.status.success(), "{}", text(&ok_login));
    assert_eq!(
        String::from_utf8_lossy(&ok_login.stdout).trim(),
        format!("{DB_USER}|t|/CN={DB_USER}")
    );
    let no_cert = login("sed \"s/&sslcert=[^&]*&sslkey=[^&]*//\"");
    assert!(!no_cert.status.success(), "{}", text(&no_cert));

    // Nothing secret anywhere: every output, the state files, the fixtures' log, the process
    // table (watched during every run of the role).
    let mut needles = Needles::new();
    needles.add_literal("database password", PASSWORD);
    let encoded = url
        .split_once(':')
        .and_then(|(_, r)| r.split_once(':'))
        .and_then(|(_, r)| r.split_once('@'))
        .map(|(p, _)| p.to_string())
        .unwrap();
    needles.add_literal("database password, percent-encoded", &encoded);
    needles.add_literal("S3 secret", S3_SECRET);
    needles.add_literal("SECRET_KEY", &key);
    needles.add_literal("SECRET_KEY (rotated)", &new_key);
    let pem = std::fs::read_to_string(dir.join("pki/client/cap/client.key")).unwrap();
    needles.add_pem("CAP's client key", &pem);
    needles.add_public(&std::fs::read(dir.join("pki/client/cap/client.crt")).unwrap());
    let mut hits = Vec::new();
    for (name, run) in &runs {
        hits.extend(needles.scan_capture(&format!("{name}: stdout"), &run.out.stdout));
        hits.extend(needles.scan_capture(&format!("{name}: stderr"), &run.out.stderr));
    }
    let mut state = Vec::new();
    for d in [dir.join(".castellan"), fixtures()] {
        let mut todo = vec![d];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    todo.push(p);
                } else if let Ok(b) = std::fs::read(&p) {
                    state.push((p, b));
                }
            }
        }
    }
    for (p, b) in &state {
        hits.extend(needles.scan(&p.display().to_string(), b));
    }
    hits.extend(needles.scan("process table", &seen.text()));
    assert!(
        seen.snapshots > 10,
        "the process watcher took {} snapshots",
        seen.snapshots
    );
    assert!(hits.is_empty(), "secrets leaked: {hits:#?}");
}
