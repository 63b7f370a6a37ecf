//! Issue 5 end to end: `playbooks/enable-mtls.yml` against a 3-host fleet of real sshd +
//! PostgreSQL 15 hosts; logins with psql (libpq), rolling order, idempotence without reloads,
//! plain connections blocked, certificate-only rotation by reload, rollback on a rejected
//! configuration. One test drives the steps in order: they share one fleet.
mod fleet_common;

use fleet_common::FleetDef;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NET: &str = "5";
const DIR: &str = "/tmp/castellan-mtls-test-fleet";
const HOSTS: usize = 3;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

static FLEET: FleetDef = FleetDef { net: NET, dir: DIR };

fn fleet(script: &str, args: &[&str]) -> Output {
    FLEET.script(script, args)
}

/// Run the mTLS playbook; `extra` are more arguments (`-e`, `-i`).
fn enable(pki: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    let inv = format!("{DIR}/inventory.yml");
    let pki_var = format!("pki_dir={}", pki.display());
    let out = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args([
            "playbook",
            repo("playbooks/enable-mtls.yml").to_str().unwrap(),
        ])
        .args(["-i", &inv, "-e", &pki_var, "--output", "json"])
        .args(extra)
        .output()
        .expect("run castellan");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, doc)
}

fn addr(k: usize) -> String {
    format!("127.{NET}.1.{k}")
}

fn dns(k: usize) -> String {
    format!("db{k}.f{NET}.fleet.test")
}

/// A psql login; returns (success, stdout + stderr).
fn psql(conninfo: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .env_remove("PGSSLMODE")
        .env("PGCONNECT_TIMEOUT", "10")
        .args([conninfo, "-XAtc", sql])
        .output()
        .expect("run psql");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

fn mtls(k: usize, host: &str, pki: &Path, with_cert: bool) -> (bool, String) {
    let mut c = format!(
        "host={host} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
        pki.join("ca.crt").display()
    );
    if with_cert {
        c.push_str(&format!(
            " sslcert={} sslkey={}",
            pki.join("client/postgres/client.crt").display(),
            pki.join("client/postgres/client.key").display()
        ));
    }
    let _ = k;
    psql(
        &c,
        "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
}

/// Start time and configuration load time of dbK, over its socket as postgres.
fn times(k: usize) -> (String, String) {
    let out = fleet(
        "pg.sh",
        &[
            &format!("db{k}"),
            "psql",
            "-XAtc",
            "SELECT pg_postmaster_start_time(), pg_conf_load_time()",
        ],
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (a, b) = line.split_once('|').unwrap_or((&line, ""));
    (a.to_string(), b.to_string())
}

fn stats(doc: &serde_json::Value, host: &str, key: &str) -> u64 {
    doc["stats"][host][key].as_u64().unwrap_or(u64::MAX)
}

/// Every `finished_at` of a host in the rollout play (`serial: 1`). The playbook's first play,
/// for Patroni members, only reads pg_facts on these hosts, all at once.
fn stamps(doc: &serde_json::Value, host: &str) -> Vec<f64> {
    let mut v = Vec::new();
    for play in doc["plays"].as_array().into_iter().flatten() {
        if play["name"] != "Enable mutual TLS on PostgreSQL" {
            continue;
        }
        for t in play["tasks"].as_array().into_iter().flatten() {
            if let Some(f) = t["results"][host]["finished_at"].as_f64() {
                v.push(f);
            }
        }
    }
    v
}

fn pg_service_action(doc: &serde_json::Value, host: &str) -> Option<String> {
    for play in doc["plays"].as_array().into_iter().flatten() {
        for t in play["tasks"].as_array().into_iter().flatten() {
            if t["module"] == "pg_service" {
                if let Some(a) = t["results"][host]["result"]["action"].as_str() {
                    return Some(a.to_string());
                }
            }
        }
    }
    None
}

#[test]
fn enable_mtls_on_a_fleet() {
    fleet("up.sh", &[&HOSTS.to_string()]);
    let _down = FLEET.down_on_drop();
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");

    // A dry run first: nothing on the control node, nothing on the hosts.
    let conf_files = |k: usize| {
        ["postgresql.conf", "pg_hba.conf"]
            .map(|f| std::fs::read(format!("/etc/postgresql/15/f{NET}db{k}/{f}")).unwrap())
    };
    let before: Vec<_> = (1..=HOSTS).map(conf_files).collect();
    let (out, _) = enable(&pki, &["--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!pki.exists(), "--check created the PKI");
    assert_eq!(
        (1..=HOSTS).map(conf_files).collect::<Vec<_>>(),
        before,
        "--check changed a host"
    );

    // Acceptance 1: the playbook turns mTLS on everywhere.
    let (out, doc) = enable(&pki, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for k in 1..=HOSTS {
        for host in [dns(k), addr(k)] {
            let (ok, text) = mtls(k, &host, &pki, true);
            assert!(
                ok && text.starts_with("t|TLSv1."),
                "db{k} via {host}: {text}"
            );
            let (ok, text) = mtls(k, &host, &pki, false);
            assert!(
                !ok,
                "db{k} via {host}: a login without a client certificate got in: {text}"
            );
        }
        let conf = format!("/etc/postgresql/15/f{NET}db{k}");
        for f in ["server.key", "server.crt", "root.crt"] {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let m = std::fs::metadata(format!("{conf}/{f}")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{f} on db{k}");
            let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
            assert_eq!(m.uid(), pg.uid.as_raw(), "{f} on db{k}");
        }
    }
    // Acceptance 2: host N+1 is touched only after host N verified.
    for k in 1..HOSTS {
        let last_k = stamps(&doc, &format!("db{k}"))
            .into_iter()
            .fold(0.0, f64::max);
        let first_next = stamps(&doc, &format!("db{}", k + 1))
            .into_iter()
            .fold(f64::MAX, f64::min);
        assert!(
            last_k < first_next,
            "db{} started before db{k} finished",
            k + 1
        );
    }

    // `certs status` sees what the servers serve: our certificates, 824 days left.
    let status = |warn: &str| {
        Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args([
                "certs",
                "status",
                "-i",
                &format!("{DIR}/inventory.yml"),
                "--output",
                "json",
            ])
            .args(["--pki-dir", pki.to_str().unwrap(), "--warn-days", warn])
            .output()
            .unwrap()
    };
    let out = status("30");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in 1..=HOSTS {
        let h = &st["hosts"][format!("db{k}")];
        assert_eq!(h["matches_pki"], true, "{h}");
        assert!(h["days_left"].as_i64().unwrap() >= 823, "{h}");
        assert!(h["sans"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!(format!("IP:{}", addr(k)))));
    }
    assert_eq!(
        status("1000").status.code(),
        Some(2),
        "expiring within 1000 days must warn"
    );

    // A second run changes nothing and reloads nothing.
    let before: Vec<_> = (1..=HOSTS).map(times).collect();
    let (out, doc) = enable(&pki, &[]);
    assert_eq!(out.status.code(), Some(0));
    for k in 1..=HOSTS {
        assert_eq!(
            stats(&doc, &format!("db{k}"), "changed"),
            0,
            "{}",
            doc["stats"]
        );
    }
    let after: Vec<_> = (1..=HOSTS).map(times).collect();
    assert_eq!(
        before, after,
        "the second run reloaded or restarted a server"
    );

    // block_plain: a plain (sslmode=disable) login is refused by pg_hba.conf itself.
    let (out, _) = enable(&pki, &["-e", "pg_tls_block_plain=true"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for k in 1..=HOSTS {
        let (ok, text) = psql(
            &format!(
                "host={} user=postgres dbname=postgres sslmode=disable",
                addr(k)
            ),
            "SELECT 1",
        );
        assert!(
            !ok && text.contains("no pg_hba.conf entry"),
            "db{k}: {text}"
        );
        assert!(mtls(k, &dns(k), &pki, true).0);
    }

    // Acceptance 4: certificate-only rotation reloads, never restarts; the new certificate is
    // served (pg_verify checks the fingerprint of the certificate just pushed).
    let before: Vec<_> = (1..=HOSTS).map(times).collect();
    let old_cert = std::fs::read(pki.join("server/db1/server.crt")).unwrap();
    let (out, doc) = enable(
        &pki,
        &[
            "-e",
            "pg_tls_block_plain=true pg_tls_days=900 pg_tls_renew_before=826",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_ne!(
        std::fs::read(pki.join("server/db1/server.crt")).unwrap(),
        old_cert
    );
    for k in 1..=HOSTS {
        let h = format!("db{k}");
        assert_eq!(
            pg_service_action(&doc, &h).as_deref(),
            Some("reloaded"),
            "{h}"
        );
        let (start, load) = times(k);
        assert_eq!(start, before[k - 1].0, "{h} was restarted");
        assert_ne!(load, before[k - 1].1, "{h} was not reloaded");
        assert!(mtls(k, &dns(k), &pki, true).0);
    }

    // Acceptance 3a: a clientcert=1 rule is refused by validation on PostgreSQL 15 (it would
    // stop the server): db2 fails before anything is written, db3 is never touched.
    let extra = tmp.path().join("extra.yml");
    std::fs::write(
        &extra,
        "all:\n  hosts:\n    db2:\n      pg_tls_auth_method: scram-sha-256\n      pg_tls_hba_options: clientcert=1\n",
    )
    .unwrap();
    let hba2 = std::fs::read(format!("/etc/postgresql/15/f{NET}db2/pg_hba.conf")).unwrap();
    let (out, doc) = enable(
        &pki,
        &[
            "-i",
            extra.to_str().unwrap(),
            "-e",
            "pg_tls_block_plain=true pg_tls_days=900 pg_tls_renew_before=826",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stats(&doc, "db2", "failed"), 1);
    let text = doc.to_string();
    assert!(text.contains("clientcert"), "{text}");
    assert!(stamps(&doc, "db3").is_empty(), "db3 was touched");
    assert_eq!(
        std::fs::read(format!("/etc/postgresql/15/f{NET}db2/pg_hba.conf")).unwrap(),
        hba2
    );
    assert!(mtls(2, &dns(2), &pki, true).0);

    // Acceptance 3b: bypassing validation, a bad ssl_cert_file path: the server rejects the
    // reload, the host is rolled back and keeps serving on its old configuration, the run
    // stops with the server's own log line, db3 is never touched.
    std::fs::write(
        &extra,
        "all:\n  hosts:\n    db2:\n      pg_tls_extra_settings: {ssl_cert_file: /nonexistent/server.crt}\n",
    )
    .unwrap();
    let conf2 = std::fs::read(format!("/etc/postgresql/15/f{NET}db2/postgresql.conf")).unwrap();
    let (start2, _) = times(2);
    let (out, doc) = enable(
        &pki,
        &[
            "-i",
            extra.to_str().unwrap(),
            "-e",
            "pg_tls_block_plain=true pg_tls_days=900 pg_tls_renew_before=826",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stats(&doc, "db2", "failed"), 1);
    assert_eq!(
        pg_service_action(&doc, "db2").as_deref(),
        Some("rolled_back")
    );
    // The failure message carries the server's own log lines.
    let msg = doc["plays"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["tasks"].as_array().into_iter().flatten())
        .filter(|t| t["module"] == "pg_service")
        .filter_map(|t| t["results"]["db2"]["msg"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        msg.contains("SSL configuration was not reloaded")
            && msg.contains("/nonexistent/server.crt"),
        "the server's log lines are missing: {msg}"
    );
    assert!(stamps(&doc, "db3").is_empty(), "db3 was touched");
    assert_eq!(
        std::fs::read(format!("/etc/postgresql/15/f{NET}db2/postgresql.conf")).unwrap(),
        conf2,
        "postgresql.conf was not restored"
    );
    assert_eq!(times(2).0, start2, "db2 was restarted");
    assert!(
        mtls(2, &dns(2), &pki, true).0,
        "db2 is not serving on its old configuration"
    );
}
