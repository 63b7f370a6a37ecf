//! Issue 11, acceptance 5: a real Patroni cluster of 3 (tests/fleet/patroni.sh: etcd from
//! Debian's packages, Patroni from PyPI, PostgreSQL 15 run by Patroni), `playbooks/enable-mtls.yml`
//! through SSH. TLS goes on through Patroni's dynamic configuration; every member serves its new
//! certificate; no member restarts (`pg_postmaster_start_time()` unchanged); the files Patroni
//! writes carry the settings after `patronictl reload`; a re-run changes nothing; a restart-only
//! setting without `pg_tls_allow_restart` fails with the reason and restarts nothing; with it the
//! members restart one at a time, replicas first, the leader last. One test drives the steps in
//! order: they share one cluster. Needs root; net 18.
mod fleet_common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use fleet_common::FleetDef;
use serde_json::Value;

const NET: &str = "18";
const DIR: &str = "/tmp/castellan-patroni-tls";
const MEMBERS: usize = 3;

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// Brings the cluster down (and its data away) when dropped, also when the test panics.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        FLEET.script("patroni.sh", &["down", "--purge"]);
    }
}

fn member_dir(k: usize) -> PathBuf {
    PathBuf::from(format!("{DIR}/hosts/db{k}"))
}

/// psql as OS user postgres over dbK's socket.
fn local_sql(k: usize, sql: &str) -> String {
    let sock = member_dir(k).join("pgsock");
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-h"])
        .arg(&sock)
        .args(["-XAtc", sql, "postgres"])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "db{k}: {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn start_times() -> Vec<String> {
    (1..=MEMBERS)
        .map(|k| local_sql(k, "SELECT pg_postmaster_start_time()"))
        .collect()
}

fn run(pki: &Path, extra: &[&str]) -> (Output, Value) {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            repo("playbooks/enable-mtls.yml").to_str().unwrap(),
        ])
        .args(["-i", &FLEET.inventory(), "--output", "json"])
        .args(["-e", &format!("pki_dir={}", pki.display())])
        .args(extra)
        .output()
        .expect("run castellan");
    eprintln!(
        "enable-mtls.yml {extra:?}: exit {:?} in {:.1}s",
        out.status.code(),
        t.elapsed().as_secs_f64()
    );
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc)
}

/// Every result of `module` in the report: (host, result).
fn results<'a>(doc: &'a Value, module: &str) -> Vec<(String, &'a Value)> {
    let mut v = Vec::new();
    for play in doc["plays"].as_array().into_iter().flatten() {
        for t in play["tasks"].as_array().into_iter().flatten() {
            if t["module"] != module {
                continue;
            }
            for (h, r) in t["results"].as_object().into_iter().flatten() {
                v.push((h.clone(), r));
            }
        }
    }
    v
}

fn changed(doc: &Value, host: &str) -> u64 {
    doc["stats"][host]["changed"].as_u64().unwrap_or(u64::MAX)
}

fn patronictl(args: &[&str]) -> String {
    let out = FLEET.script("patroni.sh", &[&["ctl"], args].concat());
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The leader's name, from `patronictl list`.
fn leader() -> String {
    let list: Value = serde_json::from_str(&patronictl(&["list", "f18", "-f", "json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|m| m["Role"] == "Leader")
        .map(|m| m["Member"].as_str().unwrap().to_string())
        .expect("a leader")
}

#[test]
fn tls_through_patroni_without_a_restart_behind_its_back() {
    // A clean cluster: an earlier run's dynamic configuration must not be found.
    FLEET.script("patroni.sh", &["down", "--purge"]);
    let t = Instant::now();
    let up = FLEET.script("patroni.sh", &["up", &MEMBERS.to_string()]);
    eprintln!(
        "cluster up in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&up.stdout).trim()
    );
    let _purge = Purge;
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let before = start_times();

    // pg_facts finds Patroni on every member.
    let (out, doc) = run(&pki, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let facts = results(&doc, "pg_facts");
    assert!(!facts.is_empty());
    for (h, r) in &facts {
        let f = &r["result"]["pg_facts"];
        assert_eq!(f["manager"], "patroni", "{h}: {f}");
        assert_eq!(f["patroni"]["name"], h.as_str(), "{h}");
        assert_eq!(f["patroni"]["scope"], "f18", "{h}");
        assert_eq!(f["service"]["method"], "patroni", "{h}");
    }
    // The cluster-wide change was made once, at the first member's turn.
    let edits: Vec<_> = results(&doc, "patroni_config")
        .into_iter()
        .filter(|(_, r)| r["status"] == "changed")
        .collect();
    assert_eq!(edits.len(), 1, "{edits:?}");
    // No member restarted: Patroni applied everything with reloads.
    assert_eq!(start_times(), before, "a member restarted");
    // castellan never wrote postgresql.conf or pg_hba.conf itself.
    for (h, r) in results(&doc, "pg_conf")
        .into_iter()
        .chain(results(&doc, "pg_hba"))
    {
        assert_eq!(r["status"], "skipped", "{h}: {r}");
    }

    // Every member serves its new certificate (pg_verify checked the fingerprint; certs status
    // compares with the PKI) and takes a verify-full login with a client certificate.
    let verified = results(&doc, "pg_verify");
    for k in 1..=MEMBERS {
        let h = format!("db{k}");
        assert!(
            verified.iter().any(|(vh, r)| *vh == h
                && r["result"]["fingerprint_matches"] == true
                && r["status"] == "ok"),
            "{h}: {verified:?}"
        );
        let conn = format!(
            "host=db{k}.f{NET}.fleet.test user=postgres dbname=postgres sslmode=verify-full \
             sslrootcert={} sslcert={} sslkey={}",
            pki.join("ca.crt").display(),
            pki.join("client/postgres/client.crt").display(),
            pki.join("client/postgres/client.key").display()
        );
        let login = Command::new("psql")
            .env("PGCONNECT_TIMEOUT", "10")
            .args([
                &conn,
                "-XAtc",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&login.stdout).trim(),
            "t",
            "db{k}: {}",
            String::from_utf8_lossy(&login.stderr)
        );
    }
    let status = Command::new(env!("CARGO_BIN_EXE_castellan"))
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
    let st: Value = serde_json::from_slice(&status.stdout).unwrap();
    for k in 1..=MEMBERS {
        assert_eq!(st["hosts"][format!("db{k}")]["matches_pki"], true, "{st}");
    }

    // The files Patroni generates carry our settings, also after `patronictl reload` (Patroni
    // rewrites them from its configuration).
    patronictl(&["reload", "f18", "--force"]);
    std::thread::sleep(std::time::Duration::from_secs(5));
    for k in 1..=MEMBERS {
        let conf = std::fs::read_to_string(member_dir(k).join("pgdata/postgresql.conf")).unwrap();
        assert!(
            conf.contains("ssl_cert_file = 'server.crt'"),
            "db{k}: {conf}"
        );
        assert!(conf.contains("ssl = 'on'"), "db{k}: {conf}");
        let hba = std::fs::read_to_string(member_dir(k).join("pgdata/pg_hba.conf")).unwrap();
        let lines: Vec<&str> = hba.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(
            lines[1].starts_with("hostssl") && lines[2].starts_with("hostssl"),
            "{hba}"
        );
        assert!(
            hba.contains("host replication replicator 127.0.0.0/8 scram-sha-256"),
            "Patroni's replication rule is gone: {hba}"
        );
        assert_eq!(local_sql(k, "SHOW ssl"), "on", "db{k}");
    }
    assert_eq!(start_times(), before, "a member restarted");

    // Again: nothing to do.
    let (out, doc) = run(&pki, &[]);
    assert_eq!(out.status.code(), Some(0));
    for k in 1..=MEMBERS {
        assert_eq!(
            changed(&doc, &format!("db{k}")),
            0,
            "db{k} changed on a re-run"
        );
    }

    // A setting PostgreSQL reads only at start, without pg_tls_allow_restart: the first host
    // fails with the reason, the rollout stops, nothing restarts.
    let restart_only = r#"{"pg_tls_extra_settings": {"max_connections": 150}}"#;
    let (out, doc) = run(&pki, &["-e", restart_only]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let failed: Vec<_> = results(&doc, "pg_service")
        .into_iter()
        .filter(|(_, r)| r["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let msg = failed[0].1["msg"].as_str().unwrap_or_default().to_string();
    assert!(
        msg.contains("max_connections")
            && msg.contains("pg_tls_allow_restart")
            && msg.contains("nothing was restarted"),
        "{msg}"
    );
    assert_eq!(
        start_times(),
        before,
        "a member restarted without permission"
    );
    // Patroni reports the pending restart.
    let list = patronictl(&["list", "f18", "-e", "-f", "json"]);
    assert!(list.contains("max_connections: 100->150"), "{list}");

    // With it: replicas first, the leader last, one at a time.
    let lead = leader();
    let (out, doc) = run(
        &pki,
        &["-e", restart_only, "-e", "pg_tls_allow_restart=true"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let order: Vec<String> = results(&doc, "pg_service")
        .into_iter()
        .filter_map(|(_, r)| r["result"]["restarted_members"].as_array().cloned())
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(order.len(), MEMBERS, "{order:?}");
    assert_eq!(
        order.last(),
        Some(&lead),
        "the leader is not last: {order:?}"
    );
    let after = start_times();
    let mut by_start: Vec<(String, String)> = (1..=MEMBERS)
        .map(|k| (after[k - 1].clone(), format!("db{k}")))
        .collect();
    by_start.sort();
    let started: Vec<String> = by_start.into_iter().map(|(_, h)| h).collect();
    assert_eq!(
        started, order,
        "start times disagree with the order reported"
    );
    for k in 1..=MEMBERS {
        assert_ne!(after[k - 1], before[k - 1], "db{k} did not restart");
        assert_eq!(local_sql(k, "SHOW max_connections"), "150", "db{k}");
    }
    let list = patronictl(&["list", "f18", "-e", "-f", "json"]);
    assert!(!list.contains("100->150"), "still pending: {list}");
}
