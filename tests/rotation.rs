//! Issue 13, acceptance 1 to 4, end to end: `playbooks/rotate-certs.yml` and
//! `playbooks/rotate-ca.yml` on a fleet of 3 real sshd + PostgreSQL 15 hosts (net 24; CRLs on, db3
//! also a PEM agent), while libpq clients (tests/fixtures/rotation/pgloop.c, built here) log in
//! with verify-full and a client certificate (a CAST Imaging node, cast1, and a CAP web VM,
//! capweb1, are holders too; the CAST node checks its own login at each run), a fresh connection
//! to each host every 50 ms
//! ("new") or 100 ms ("old"):
//! - "new": follows the PKI's client bundle (`client/postgres/`), as a holder that gets the new
//!   bundle and certificates; it must never fail;
//! - "old": a copy of the files from before the CA rollover (root.crt with the old CA alone); it
//!   must not fail before phase 3, and is refused after it.
//!
//! The steps: every certificate renewed (`rotate_force`), nothing due (changed=0, no reload),
//! the phase plan (`--check`), phase 1, phase 2 killed (SIGKILL) once db1 has its new certificate
//! and run again (it resumes at phase 2), phase 3; then every server serves a certificate of the
//! new CA, no bundle holds the old CA, `certs status` exits 0, no server was restarted.
mod fleet_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleet_common::FleetDef;

const NET: &str = "24";
const DIR: &str = "/tmp/castellan-rotation-fleet";
const HOSTS: usize = 3;

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn dns(k: usize) -> String {
    format!("db{k}.f{NET}.fleet.test")
}

fn tls_dir(k: usize) -> PathBuf {
    PathBuf::from(format!("/etc/postgresql/15/f{NET}db{k}"))
}

fn root(k: usize) -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/db{k}/root"))
}

/// A playbook run: its output and the JSON report.
struct Run {
    out: Output,
    doc: serde_json::Value,
}

impl Run {
    fn all_text(&self) -> String {
        format!("{}{}", text(&self.out.stdout), text(&self.out.stderr))
    }

    fn stat(&self, host: &str, key: &str) -> u64 {
        self.doc["stats"][host][key].as_u64().unwrap_or(u64::MAX)
    }

    /// The tasks that changed `host`, with their results (for messages).
    fn changed(&self, host: &str) -> String {
        let mut v = Vec::new();
        for play in self.doc["plays"].as_array().into_iter().flatten() {
            for t in play["tasks"].as_array().into_iter().flatten() {
                let r = &t["results"][host];
                if r["status"] == "changed" {
                    v.push(format!("{}: {r}", t["name"]));
                }
            }
        }
        v.join("\n")
    }

    /// The results of `host` in the tasks of `module`, with the play's name.
    fn results(&self, module: &str, host: &str) -> Vec<(String, serde_json::Value)> {
        let mut v = Vec::new();
        for play in self.doc["plays"].as_array().into_iter().flatten() {
            for t in play["tasks"].as_array().into_iter().flatten() {
                if t["module"] == module && !t["results"][host].is_null() {
                    let name = play["name"].as_str().unwrap_or_default().to_string();
                    v.push((name, t["results"][host].clone()));
                }
            }
        }
        v
    }
}

fn castellan(playbook: &str, inv: &Path, pki: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_castellan"));
    cmd.args(["playbook", repo(playbook).to_str().unwrap()])
        .args(["-i", &FLEET.inventory(), "-i", inv.to_str().unwrap()])
        .args(["-e", &format!("pki_dir={}", pki.display())])
        .args(extra);
    cmd
}

fn playbook(playbook: &str, inv: &Path, pki: &Path, extra: &[&str]) -> Run {
    let out = castellan(playbook, inv, pki, extra)
        .args(["--output", "json"])
        .output()
        .expect("run castellan");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    let run = Run { out, doc };
    assert_eq!(
        run.out.status.code(),
        Some(0),
        "{playbook}: {}",
        run.all_text()
    );
    run
}

fn sql(k: usize, q: &str) -> String {
    let out = FLEET.script("pg.sh", &[&format!("db{k}"), "psql", "-XAtc", q]);
    text(&out.stdout).trim().to_string()
}

fn start_time(k: usize) -> String {
    sql(k, "SELECT pg_postmaster_start_time()")
}

fn load_time(k: usize) -> String {
    sql(k, "SELECT pg_conf_load_time()")
}

/// The DER certificates of a PEM file (none when it is missing).
fn certs_in(path: &Path) -> Vec<Vec<u8>> {
    let Ok(bytes) = fs::read(path) else {
        return Vec::new();
    };
    x509_parser::pem::Pem::iter_from_buffer(&bytes)
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

fn pem_blocks(path: &Path, label: &str) -> usize {
    fs::read_to_string(path)
        .unwrap_or_default()
        .matches(&format!("-----BEGIN {label}-----"))
        .count()
}

/// A verify-full login with psql (libpq) and these files; (success, output).
fn psql(k: usize, ca: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let conninfo = format!(
        "host={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
        dns(k),
        ca.display(),
        cert.display(),
        key.display()
    );
    let out = Command::new("psql")
        .env_remove("PGSSLMODE")
        .env("PGCONNECT_TIMEOUT", "10")
        .args([conninfo.as_str(), "-XAtc", "SELECT 1"])
        .output()
        .expect("run psql");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr))
            .trim()
            .to_string(),
    )
}

/// `castellan certs status` (JSON) and its exit code.
fn certs_status(pki: &Path) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "certs",
            "status",
            "-i",
            &FLEET.inventory(),
            "--output",
            "json",
        ])
        .args(["--pki-dir", pki.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_default(),
    )
}

fn served(pki: &Path) -> Vec<String> {
    let (_, st) = certs_status(pki);
    (1..=HOSTS)
        .map(|k| {
            st["hosts"][format!("db{k}")]["sha256"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The background clients: one pgloop per host.
struct Loops {
    name: &'static str,
    stop: PathBuf,
    children: Vec<Child>,
}

impl Loops {
    fn start(
        name: &'static str,
        interval: &str,
        bin: &Path,
        work: &Path,
        files: impl Fn(usize) -> (String, Vec<String>),
    ) -> Loops {
        let stop = work.join(format!("{name}.stop"));
        let _ = fs::remove_file(&stop);
        let children = (1..=HOSTS)
            .map(|k| {
                let (conninfo, follow) = files(k);
                Command::new(bin)
                    .arg(&stop)
                    .args([interval, "600", &conninfo])
                    .args(follow)
                    .env_remove("PGSSLMODE")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start pgloop")
            })
            .collect();
        Loops {
            name,
            stop,
            children,
        }
    }

    /// Stops the clients; returns (attempts, failures) and prints them with the failures.
    fn stop(self) -> (u64, u64, String) {
        fs::write(&self.stop, "").unwrap();
        let (mut attempts, mut failures) = (0, 0);
        let mut report = String::new();
        for (i, c) in self.children.into_iter().enumerate() {
            let out = c.wait_with_output().unwrap();
            let s = text(&out.stdout);
            let first = s.lines().next().unwrap_or_default().to_string();
            let num = |key: &str| -> u64 {
                first
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(key))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("pgloop db{}: {s}{}", i + 1, text(&out.stderr)))
            };
            attempts += num("attempts=");
            failures += num("failures=");
            report.push_str(&format!("  db{}: {s}", i + 1));
        }
        println!(
            "client \"{}\": {attempts} logins, {failures} failed\n{report}",
            self.name
        );
        (attempts, failures, report)
    }
}

/// Builds the libpq client.
fn build_pgloop(dir: &Path) -> PathBuf {
    let bin = dir.join("pgloop");
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&bin)
        .arg(repo("tests/fixtures/rotation/pgloop.c"))
        .args(["-I/usr/include/postgresql", "-lpq", "-lcrypto"])
        .output()
        .expect("run cc (bash tests/setup.sh installs it)");
    assert!(out.status.success(), "cc: {}", text(&out.stderr));
    bin
}

fn rollover_state(pki: &Path) -> (u64, bool) {
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(pki.join("rollover.json")).unwrap()).unwrap();
    (v["phase"].as_u64().unwrap(), v["done"].as_bool().unwrap())
}

#[test]
fn rotation_and_ca_rollover_without_a_failed_login() {
    let t0 = Instant::now();
    let mark = |what: &str| {
        println!(
            "rotation test: {:>5.1} s {what}",
            t0.elapsed().as_secs_f64()
        )
    };
    // Fresh clusters: a fleet left by an earlier run has keys and settings on it.
    FLEET.script("down.sh", &["--purge"]);
    FLEET.script(
        "up.sh",
        &[&HOSTS.to_string(), "--cast", "1", "--cap", "1:0"],
    );
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let work = tmp.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let inv = tmp.path().join("rotation.yml");
    fs::write(
        &inv,
        format!(
            "all:
  vars:
    pg_tls_crl: true
  children:
    pem_agents:
      hosts:
        db3: {{pem_agent_ssl_dir: {r3}/pem, pem_agent_cfg: {r3}/agent.cfg}}
",
            r3 = root(3).display()
        ),
    )
    .unwrap();
    fs::write(root(3).join("agent.cfg"), "[PEM/agent]\nagent_id=3\n").unwrap();

    // Mutual TLS on the servers, a client certificate for the PEM agent and the CAST node.
    mark("fleet up");
    let run = playbook("playbooks/pem-backend.yml", &inv, &pki, &[]);
    let pem_agent = root(3).join("pem/agent1.crt");
    assert!(pem_agent.exists(), "{}", run.all_text());
    playbook("playbooks/cast-imaging.yml", &inv, &pki, &[]);
    let cast_ssl = PathBuf::from(format!("{DIR}/hosts/cast1/root/etc/cast-imaging/ssl"));
    let cast_cert = cast_ssl.join("client.crt");
    // The CAP VM gets its client files from the first rotation (no CAP installed here).
    let cap_ssl = PathBuf::from(format!("{DIR}/cap-ssl"));
    assert!(!cap_ssl.join("client.crt").exists());
    let started: Vec<String> = (1..=HOSTS).map(start_time).collect();
    let bin = build_pgloop(&work);
    let client = pki.join("client/postgres");
    let base = |k: usize| {
        format!(
            "host={} user=postgres dbname=postgres sslmode=verify-full connect_timeout=10",
            dns(k)
        )
    };
    let new = Loops::start("new", "50", &bin, &work, |k| {
        // Each client keeps its copies of the files in its own directory.
        let own = work.join(format!("new-db{k}"));
        fs::create_dir_all(&own).unwrap();
        (
            base(k),
            vec![client.display().to_string(), own.display().to_string()],
        )
    });

    // Acceptance 1, first part: every certificate renewed (servers, the PKI's client bundle, the
    // PEM agent), pushed, reloaded (never restarted), the new one served.
    let before = served(&pki);
    let agent_before = fs::read(&pem_agent).unwrap();
    let cast_before = fs::read(&cast_cert).unwrap();
    let client_before = fs::read(client.join("client.crt")).unwrap();
    mark("mutual TLS on (pem-backend.yml, cast-imaging.yml)");
    let run = playbook(
        "playbooks/rotate-certs.yml",
        &inv,
        &pki,
        &["-e", "rotate_force=true"],
    );
    let after = served(&pki);
    for k in 0..HOSTS {
        assert_ne!(
            before[k],
            after[k],
            "db{} serves its old certificate",
            k + 1
        );
        let actions: Vec<String> = run
            .results("pg_service", &format!("db{}", k + 1))
            .into_iter()
            .filter_map(|(_, r)| r["result"]["action"].as_str().map(str::to_string))
            .collect();
        // Reloaded for its files, and again for the final CRL: never restarted.
        assert!(
            !actions.is_empty() && actions.iter().all(|a| a == "reloaded"),
            "db{}: {actions:?}",
            k + 1
        );
    }
    assert_ne!(fs::read(&pem_agent).unwrap(), agent_before, "PEM agent");
    assert_ne!(fs::read(&cast_cert).unwrap(), cast_before, "CAST node");
    assert_eq!(
        certs_in(&cap_ssl.join("client.crt")),
        certs_in(&pki.join("client/cap/client.crt")),
        "CAP VM"
    );
    assert_ne!(
        fs::read(client.join("client.crt")).unwrap(),
        client_before,
        "the PKI's client bundle"
    );

    mark("rotate-certs.yml, everything due");
    // Acceptance 4: nothing due: changed=0 everywhere and no reload.
    let loaded: Vec<String> = (1..=HOSTS).map(load_time).collect();
    let run = playbook("playbooks/rotate-certs.yml", &inv, &pki, &[]);
    for h in ["db1", "db2", "db3", "cast1", "capweb1"] {
        assert_eq!(run.stat(h, "changed"), 0, "{h}: {}", run.changed(h));
    }
    assert_eq!(
        (1..=HOSTS).map(load_time).collect::<Vec<_>>(),
        loaded,
        "a run with nothing due reloaded a server"
    );

    mark("rotate-certs.yml, nothing due");
    // A client that keeps what it has now: the old CA alone, its current certificate.
    let old_dir = work.join("old");
    fs::create_dir_all(&old_dir).unwrap();
    for f in ["root.crt", "client.crt", "client.key"] {
        fs::copy(client.join(f), old_dir.join(f)).unwrap();
    }
    let old_ca = certs_in(&pki.join("ca.crt"));
    assert_eq!(old_ca.len(), 1);
    let old_files = |k: usize| {
        format!(
            "{} sslrootcert={d}/root.crt sslcert={d}/client.crt sslkey={d}/client.key",
            base(k),
            d = old_dir.display()
        )
    };
    let old = Loops::start("old", "100", &bin, &work, |k| (old_files(k), Vec::new()));

    // --check prints the phase plan and changes nothing.
    let hashes = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut v: Vec<_> = walk(dir)
            .into_iter()
            .map(|p| (p.clone(), fs::read(&p).unwrap()))
            .collect();
        v.sort();
        v
    };
    let pki_before = hashes(&pki);
    let roots: Vec<Vec<u8>> = (1..=HOSTS)
        .map(|k| fs::read(tls_dir(k).join("root.crt")).unwrap())
        .collect();
    let out = castellan(
        "playbooks/rotate-ca.yml",
        &inv,
        &pki,
        &["--check", "--limit", "db1"],
    )
    .output()
    .unwrap();
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", text(&out.stderr));
    assert!(
        shown.contains("no CA rollover yet; to do (a new rollover): phase 1:")
            && shown.contains("phase 2: the new CA signs")
            && shown.contains("phase 3: the old CA leaves"),
        "no phase plan: {shown}"
    );
    assert_eq!(hashes(&pki), pki_before, "--check changed the PKI");
    assert_eq!(
        (1..=HOSTS)
            .map(|k| fs::read(tls_dir(k).join("root.crt")).unwrap())
            .collect::<Vec<_>>(),
        roots,
        "--check changed a server"
    );

    mark("rotate-ca.yml --check");
    // Phase 1: every bundle becomes old CA + new CA, every server has a CRL of each.
    playbook(
        "playbooks/rotate-ca.yml",
        &inv,
        &pki,
        &["-e", "rotate_ca_stop_after=1"],
    );
    assert_eq!(rollover_state(&pki), (1, true));
    let bundle = certs_in(&pki.join("ca.crt"));
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle[0], old_ca[0], "the old CA signs until phase 2");
    for k in 1..=HOSTS {
        assert_eq!(certs_in(&tls_dir(k).join("root.crt")), bundle, "db{k}");
        assert_eq!(
            pem_blocks(&tls_dir(k).join("root.crl"), "X509 CRL"),
            2,
            "db{k}"
        );
    }
    assert_eq!(certs_in(&client.join("root.crt")), bundle);
    assert_eq!(certs_in(&cast_ssl.join("root.crt")), bundle, "CAST node");
    assert_eq!(certs_in(&cap_ssl.join("root.crt")), bundle, "CAP VM");

    mark("phase 1");
    // Phase 2, killed once db1 serves its new certificate (with the link certificate after it).
    let log = fs::File::create(work.join("killed.log")).unwrap();
    let mut child = castellan(
        "playbooks/rotate-ca.yml",
        &inv,
        &pki,
        &["-e", "rotate_ca_stop_after=2"],
    )
    .stdout(log.try_clone().unwrap())
    .stderr(log)
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while certs_in(&tls_dir(1).join("server.crt")).len() < 2 {
        assert!(
            Instant::now() < deadline,
            "db1 never got its new certificate: {}",
            fs::read_to_string(work.join("killed.log")).unwrap_or_default()
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended first: {}",
            fs::read_to_string(work.join("killed.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(rollover_state(&pki), (2, false), "the phase reached");

    mark("phase 2, killed");
    // Acceptance 3: the next run resumes at phase 2 (phase 1 is not done again).
    let run = playbook(
        "playbooks/rotate-ca.yml",
        &inv,
        &pki,
        &["-e", "rotate_ca_stop_after=2"],
    );
    for (play, r) in run.results("pki_rollover", "db1") {
        let phase = r["result"]["phase"].as_u64().unwrap_or_default();
        if phase == 1 && play.contains("database servers") {
            assert_eq!(r["result"]["run"], false, "phase 1 again: {r}");
        }
    }
    assert_eq!(rollover_state(&pki), (2, true));
    let (attempts, failures, report) = old.stop();
    assert!(attempts > 0);
    assert_eq!(
        failures, 0,
        "the client with the old CA alone failed before phase 3:\n{report}"
    );

    mark("phase 2, resumed");
    // Phase 3.
    playbook("playbooks/rotate-ca.yml", &inv, &pki, &[]);
    assert_eq!(rollover_state(&pki), (3, true));
    let (attempts, failures, report) = new.stop();
    assert!(attempts > 0);
    assert_eq!(failures, 0, "failed logins:\n{report}");

    mark("phase 3");
    // Acceptance 2: every server serves a certificate of the new CA (a login that trusts the
    // new CA alone), no bundle holds the old CA, certs status exits 0, nobody restarted.
    let new_ca = certs_in(&pki.join("ca.crt"));
    assert_eq!(new_ca.len(), 1);
    assert_ne!(new_ca[0], old_ca[0]);
    let new_only = work.join("new-ca.crt");
    fs::copy(pki.join("ca.crt"), &new_only).unwrap();
    for k in 1..=HOSTS {
        let (ok, msg) = psql(
            k,
            &new_only,
            &client.join("client.crt"),
            &client.join("client.key"),
        );
        assert!(ok, "db{k}: {msg}");
        assert_eq!(
            certs_in(&tls_dir(k).join("server.crt")).len(),
            1,
            "db{k} still sends the link certificate"
        );
        let (ok, _) = psql(
            k,
            &old_dir.join("root.crt"),
            &old_dir.join("client.crt"),
            &old_dir.join("client.key"),
        );
        assert!(!ok, "db{k}: the old CA alone still logs in after phase 3");
    }
    let mut bundles: Vec<PathBuf> = vec![pki.join("ca.crt")];
    bundles.extend((1..=HOSTS).map(|k| tls_dir(k).join("root.crt")));
    bundles.push(cast_ssl.join("root.crt"));
    bundles.push(cap_ssl.join("root.crt"));
    // Every client holder got a certificate of the new CA.
    for cert in [&cast_cert, &cap_ssl.join("client.crt"), &pem_agent] {
        let out = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&new_only)
            .arg(cert)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            cert.display(),
            text(&out.stderr)
        );
    }
    bundles.extend(
        walk(&pki.join("client"))
            .into_iter()
            .filter(|p| p.ends_with("root.crt")),
    );
    for b in &bundles {
        let certs = certs_in(b);
        assert!(!certs.is_empty(), "{}", b.display());
        assert!(
            !certs.contains(&old_ca[0]),
            "{} still holds the old CA",
            b.display()
        );
    }
    let (code, st) = certs_status(&pki);
    assert_eq!(code, Some(0), "certs status: {st}");
    assert_eq!(
        (1..=HOSTS).map(start_time).collect::<Vec<_>>(),
        started,
        "a server was restarted"
    );
    mark("checks");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
