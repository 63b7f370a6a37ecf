//! pg_facts, pg_service and pg_verify against a real PostgreSQL 15, driven through playbooks run
//! by the real binary on an `ansible_connection: local` host (become postgres via runuser).
//!
//! Each test starts its own throwaway cluster (initdb + pg_ctl as `postgres`, 127.0.0.1, a free
//! port, its own socket directory, TLS material from castellan's PKI library) and a Drop guard
//! stops it. Needs root and PostgreSQL 15 (`bash tests/setup.sh`).
mod pg_common;

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use castellan::pki::{ensure_ca, ensure_cert, CaSpec, CertSpec};
use pg_common::{s, text, Pg, PG_BIN};
use serde_json::Value;

/// The result of the (last) task using `module` on db1.
fn result_of<'a>(doc: &'a Value, module: &str) -> &'a Value {
    doc["plays"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["tasks"].as_array().into_iter().flatten())
        .rfind(|t| t["module"] == module)
        .map(|t| &t["results"]["db1"])
        .unwrap_or_else(|| panic!("no {module} task in {doc:#}"))
}

fn sha256_of_pem(path: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateDer::from_pem_file(path).expect("PEM certificate");
    castellan::postgres::verify::CertInfo::from_der(&der).sha256
}

#[test]
fn pg_facts_reports_the_cluster_in_one_round_trip() {
    let pg = Pg::start();
    let body = "  tasks:\n    - pg_facts:\n    - debug:\n        msg: \"conf={{ pg_facts.config_file }}\"\n";
    let t = Instant::now();
    let (code, doc, err) = pg.play(body, &[]);
    eprintln!("pg_facts playbook: {:?}", t.elapsed());
    assert_eq!(code, 0, "{doc:#}\n{err}");
    let f = &result_of(&doc, "pg_facts")["result"]["pg_facts"];
    assert!(f["server_version_num"].as_i64().unwrap() >= 150000, "{f:#}");
    assert_eq!(f["major"], 15);
    let data = s(&pg.data);
    assert_eq!(f["config_file"], format!("{data}/postgresql.conf"));
    assert_eq!(f["hba_file"], format!("{data}/pg_hba.conf"));
    assert_eq!(f["data_directory"], data);
    assert_eq!(f["data_owner"], "postgres");
    assert_eq!(f["ssl"], true);
    assert_eq!(f["ssl_cert_file"], s(&pg.ssl.join("server.crt")));
    assert_eq!(f["ssl_ca_file"], s(&pg.ssl.join("root.crt")));
    assert_eq!(f["port"], pg.port);
    assert!(f["postmaster_start_time"].as_str().is_some());
    let svc = &f["service"];
    assert_eq!(svc["method"], "pg_ctl");
    assert_eq!(svc["data_dir"], data);
    assert_eq!(svc["bin_dir"], PG_BIN);
    assert_eq!(svc["log_file"], s(&pg.log));
    // The fact is set on the host: the next task read it without `register`.
    let dbg = result_of(&doc, "debug");
    assert_eq!(
        dbg["result"]["msg"],
        format!("conf={data}/postgresql.conf"),
        "{dbg:#}"
    );
    // Read-only: it runs in check mode too.
    let (code, doc, err) = pg.play(body, &["--check"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(result_of(&doc, "pg_facts")["status"], "ok");
}

const APPLY: &str = "  handlers:\n    - name: apply\n      pg_service:\n        state: applied\n";

#[test]
fn applied_reloads_a_reloadable_change_and_a_second_run_does_nothing() {
    let pg = Pg::start();
    let before = pg.start_time();
    let body = format!(
        "  tasks:\n    - pg_facts:\n    - lineinfile:\n        path: \"{{{{ pg_facts.config_file }}}}\"\n        \
         line: \"work_mem = '8MB'\"\n        backup: yes\n      notify: apply\n{APPLY}"
    );
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 0, "{doc:#}\n{err}");
    let r = &result_of(&doc, "pg_service")["result"];
    assert_eq!(r["action"], "reloaded", "{r:#}");
    assert_eq!(r["pending_restart"], serde_json::json!([]));
    eprintln!("reload + checks: {} ms", r["reload_ms"]);
    assert_eq!(pg.sql("SHOW work_mem"), "8MB");
    assert_eq!(pg.start_time(), before, "a reload must not restart");
    // Second run: nothing changed, the handler does not run, nothing is reloaded.
    let loaded = pg.sql("SELECT pg_conf_load_time()");
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(doc["stats"]["db1"]["changed"], 0, "{doc:#}");
    assert_eq!(pg.sql("SELECT pg_conf_load_time()"), loaded);
    // Check mode says what it would do and does nothing.
    let body = "  tasks:\n    - pg_facts:\n    - pg_service:\n        state: applied\n";
    let (code, doc, _) = pg.play(body, &["--check"]);
    assert_eq!(code, 0);
    assert_eq!(result_of(&doc, "pg_service")["status"], "changed");
    assert_eq!(pg.sql("SELECT pg_conf_load_time()"), loaded);
}

#[test]
fn a_rejected_pg_hba_is_rolled_back_and_the_host_fails_with_the_server_log() {
    let pg = Pg::start();
    let hba = pg.data.join("pg_hba.conf");
    let original = fs::read(&hba).unwrap();
    let before = pg.start_time();
    // clientcert=1 was removed in PostgreSQL 14: the whole file is rejected.
    let body = "  tasks:\n    - pg_facts:\n    - copy:\n        dest: \"{{ pg_facts.hba_file }}\"\n        \
                content: \"local all all peer\\nhostssl all all 127.0.0.1/32 cert clientcert=1\\n\"\n        \
                backup: yes\n      notify: apply\n    - meta: flush_handlers\n    - debug:\n        msg: never\n"
        .to_string()
        + APPLY;
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 2, "{doc:#}\n{err}");
    let svc = result_of(&doc, "pg_service");
    assert_eq!(svc["status"], "failed", "{svc:#}");
    let msg = svc["msg"].as_str().unwrap();
    eprintln!("{msg}");
    assert!(msg.contains("invalid value for clientcert"), "{msg}");
    assert!(
        msg.contains("Server log:") && msg.contains("pg_hba.conf was not reloaded"),
        "{msg}"
    );
    assert!(
        msg.contains("restored") && msg.contains("accepts connections"),
        "{msg}"
    );
    assert_eq!(svc["result"]["action"], "rolled_back");
    assert_eq!(svc["result"]["restored"][0], s(&hba));
    // The file is back, byte for byte, still owned by postgres; the server runs on it.
    assert_eq!(fs::read(&hba).unwrap(), original);
    let meta = fs::metadata(&hba).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((meta.uid(), meta.gid()), (pg.uid, pg.gid));
    assert_eq!(
        pg.sql("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"),
        "0"
    );
    assert_eq!(pg.start_time(), before);
    // The play stopped: the task after the handler never ran.
    assert!(doc["plays"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["module"] != "debug" || t["results"]["db1"].is_null()));
}

#[test]
fn a_bad_ssl_cert_file_on_reload_is_caught_from_the_log_and_rolled_back() {
    let pg = Pg::start();
    let conf = pg.data.join("postgresql.conf");
    let original = fs::read(&conf).unwrap();
    let body = "  tasks:\n    - pg_facts:\n    - lineinfile:\n        path: \"{{ pg_facts.config_file }}\"\n        \
                regexp: \"^ssl_cert_file\"\n        line: \"ssl_cert_file = '/nonexistent/server.crt'\"\n        \
                backup: yes\n    - pg_service:\n        state: applied\n";
    let (code, doc, err) = pg.play(body, &[]);
    assert_eq!(code, 2, "{doc:#}\n{err}");
    let msg = result_of(&doc, "pg_service")["msg"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("SSL configuration was not reloaded"), "{msg}");
    assert!(msg.contains("/nonexistent/server.crt"), "{msg}");
    assert_eq!(fs::read(&conf).unwrap(), original);
    assert_eq!(pg.sql("SHOW ssl_cert_file"), s(&pg.ssl.join("server.crt")));
}

/// A pg_hba.conf line PostgreSQL rejects (the whole file is then not reloaded).
const BAD_HBA: &str = "  tasks:\n    - pg_facts:\n    - lineinfile:\n        path: \"{{ pg_facts.hba_file }}\"\n        \
                       line: \"hostx all all 10.9.9.9/32 trust\"\n";

#[test]
fn a_rollback_without_a_backup_says_that_nothing_was_restored() {
    let pg = Pg::start();
    let hba = pg.data.join("pg_hba.conf");
    let body = format!("{BAD_HBA}    - pg_service:\n        state: applied\n");
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 2, "{doc:#}\n{err}");
    let svc = result_of(&doc, "pg_service");
    let msg = svc["msg"].as_str().unwrap();
    assert!(msg.contains("Nothing was restored"), "{msg}");
    assert!(
        msg.contains("still hold the rejected configuration"),
        "{msg}"
    );
    assert!(!msg.contains("on the old configuration"), "{msg}");
    assert_eq!(svc["result"]["restored"], serde_json::json!([]));
    assert!(fs::read_to_string(&hba).unwrap().contains("hostx"));
}

#[test]
fn an_interrupted_run_leaves_its_handler_and_backups_and_the_next_run_rolls_back() {
    use nix::sys::signal::{kill, Signal};
    let pg = Pg::start();
    let hba = pg.data.join("pg_hba.conf");
    let original = fs::read(&hba).unwrap();
    let marker = pg.root.join("changed");
    // The bad line is written (with a backup, notifying the reload), then the run is held by a
    // local `sleep` and stopped by SIGTERM before its handler runs.
    let body = format!(
        "{BAD_HBA}        backup: yes\n      notify: apply\n    - shell: \"touch {}; sleep {{{{ pause }}}}\"\n{APPLY}",
        s(&marker)
    );
    let pause = format!("37.{:03}", std::process::id() % 1000);
    let child = pg
        .command(&body, &["-e", &format!("pause={pause}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed().as_secs() < 60,
            "the run never reached its sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    // The rejected line is on disk; the server was never asked to load it.
    assert_ne!(fs::read(&hba).unwrap(), original);
    // No `sleep` of the run is left (local children die with their process group).
    let left = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(&pause))
        .count();
    assert_eq!(left, 0, "a sleep of the interrupted run is still running");
    // The next run changes nothing itself, runs the owed handler, which finds the
    // configuration rejected and restores the backup the interrupted run made.
    let (code, doc, err) = pg.play(&body, &["-e", "pause=0"]);
    assert_eq!(code, 2, "{doc:#}\n{err}");
    assert!(err.contains("handlers notified by an earlier run"), "{err}");
    let svc = result_of(&doc, "pg_service");
    let msg = svc["msg"].as_str().unwrap();
    assert!(msg.contains(&format!("restored {}", s(&hba))), "{msg}");
    assert_eq!(svc["result"]["restored"][0], s(&hba));
    assert_eq!(fs::read(&hba).unwrap(), original);
    assert_eq!(pg.sql("SELECT 1"), "1");
    // The handler ran: nothing is owed any more.
    assert!(!pg.root.join(".castellan/pending/db1.json").exists());
}

#[test]
fn a_setting_that_needs_a_restart_restarts_and_the_server_comes_back() {
    let pg = Pg::start();
    let before = pg.start_time();
    let body = format!(
        "  tasks:\n    - pg_facts:\n    - lineinfile:\n        path: \"{{{{ pg_facts.config_file }}}}\"\n        \
         regexp: \"^shared_buffers\"\n        line: \"shared_buffers = 24MB\"\n        backup: yes\n      notify: apply\n{APPLY}"
    );
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 0, "{doc:#}\n{err}");
    let r = &result_of(&doc, "pg_service")["result"];
    assert_eq!(r["action"], "restarted", "{r:#}");
    assert_eq!(r["restarted_for"], serde_json::json!(["shared_buffers"]));
    assert_eq!(r["pending_restart"], serde_json::json!([]));
    eprintln!("reload + restart + health: {} ms", r["duration_ms"]);
    assert_eq!(pg.sql("SHOW shared_buffers"), "24MB");
    assert_ne!(pg.start_time(), before);
}

#[test]
fn a_restart_that_does_not_come_back_is_rolled_back_and_started_on_the_old_config() {
    let pg = Pg::start();
    let conf = pg.data.join("postgresql.conf");
    let original = fs::read(&conf).unwrap();
    let body = "  tasks:\n    - pg_facts:\n    - lineinfile:\n        path: \"{{ pg_facts.config_file }}\"\n        \
                regexp: \"^ssl_cert_file\"\n        line: \"ssl_cert_file = '/nonexistent/server.crt'\"\n        \
                backup: yes\n    - pg_service:\n        state: restarted\n        timeout: 10\n";
    let (code, doc, err) = pg.play(body, &[]);
    assert_eq!(code, 2, "{doc:#}\n{err}");
    let svc = result_of(&doc, "pg_service");
    let msg = svc["msg"].as_str().unwrap();
    assert!(
        msg.contains("FATAL") && msg.contains("/nonexistent/server.crt"),
        "{msg}"
    );
    assert!(
        msg.contains("started on the old configuration and accepts connections"),
        "{msg}"
    );
    assert_eq!(fs::read(&conf).unwrap(), original);
    // Started with the options it ran with (socket directory, port, listen address).
    assert_eq!(pg.sql("SHOW listen_addresses"), "127.0.0.1");
}

fn verify_task(pg: &Pg, extra: &str) -> String {
    format!(
        "  tasks:\n    - pg_verify:\n        port: {}\n        ca_file: {}\n        cert_file: {}\n        key_file: {}\n{extra}",
        pg.port,
        s(&pg.pki.join("ca.crt")),
        s(&pg.pki.join("client/postgres/client.crt")),
        s(&pg.pki.join("client/postgres/client.key")),
    )
}

#[test]
fn pg_verify_logs_in_over_verify_full_mutual_tls() {
    let pg = Pg::start();
    let fp = sha256_of_pem(&pg.ssl.join("server.crt"));
    let body = verify_task(
        &pg,
        &format!(
            "        expect_fingerprint: \"{fp}\"\n        expect_refused_without_cert: yes\n"
        ),
    );
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 0, "{doc:#}\n{err}");
    let r = &result_of(&doc, "pg_verify")["result"];
    assert_eq!(r["ssl"], true, "{r:#}");
    assert!(
        r["tls_version"].as_str().unwrap().starts_with("TLSv1."),
        "{r:#}"
    );
    assert_eq!(r["server_cert_sha256"], fp);
    assert!(r["not_after"].as_str().is_some());
    assert!(
        r["refused_without_cert"]
            .as_str()
            .unwrap()
            .contains("certificate"),
        "{r:#}"
    );
    eprintln!("verify-full mTLS login: {} ms", r["login_ms"]);
    // Check mode runs it too (read-only).
    let (code, _, err) = pg.play(&body, &["--check"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn pg_verify_fails_with_a_wrong_ca_and_when_plain_logins_are_accepted() {
    let pg = Pg::start();
    let other = pg.root.join("other-pki");
    ensure_ca(
        &other,
        &CaSpec {
            cn: Some("someone else's CA".into()),
            ..CaSpec::default()
        },
    )
    .unwrap();
    let body = format!(
        "  tasks:\n    - pg_verify:\n        port: {}\n        ca_file: {}\n        cert_file: {}\n        key_file: {}\n",
        pg.port,
        s(&other.join("ca.crt")),
        s(&pg.pki.join("client/postgres/client.crt")),
        s(&pg.pki.join("client/postgres/client.key")),
    );
    let (code, doc, _) = pg.play(&body, &[]);
    assert_eq!(code, 2);
    let msg = result_of(&doc, "pg_verify")["msg"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("was not issued by the CA in"), "{msg}");
    // A trust line before the cert line: a login without a certificate gets in.
    fs::write(
        pg.data.join("pg_hba.conf"),
        "local all all peer\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    pg.sql("SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let body = verify_task(&pg, "        expect_refused_without_cert: true\n");
    let (code, doc, _) = pg.play(&body, &[]);
    assert_eq!(code, 2);
    let msg = result_of(&doc, "pg_verify")["msg"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("without a client certificate was accepted"),
        "{msg}"
    );
}

#[test]
fn a_swapped_certificate_is_stale_until_reloaded_and_a_cert_only_rotation_never_restarts() {
    let pg = Pg::start();
    let before = pg.start_time();
    let new = ensure_cert(
        &pg.pki,
        &CertSpec::server(
            "pg2",
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
        ),
    )
    .unwrap();
    // Swap the files behind the server's back (no reload).
    for (from, to) in [
        ("server/pg2/server.crt", "server.crt"),
        ("server/pg2/server.key", "server.key"),
    ] {
        let dest = pg.ssl.join(to);
        fs::copy(pg.pki.join(from), &dest).unwrap();
        chown(&dest, Some(pg.uid), Some(pg.gid)).unwrap();
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let body = verify_task(
        &pg,
        &format!("        expect_fingerprint: \"{}\"\n", new.sha256),
    );
    let (code, doc, _) = pg.play(&body, &[]);
    assert_eq!(code, 2);
    let msg = result_of(&doc, "pg_verify")["msg"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("has not loaded the new certificate"), "{msg}");
    // pg_service applied: a reload, never a restart; pg_verify then sees the new certificate.
    let body = format!(
        "  tasks:\n    - pg_facts:\n    - pg_service:\n        state: applied\n{}",
        verify_task(
            &pg,
            &format!("        expect_fingerprint: \"{}\"\n", new.sha256)
        )
        .trim_start_matches("  tasks:\n")
    );
    let (code, doc, err) = pg.play(&body, &[]);
    assert_eq!(code, 0, "{doc:#}\n{err}");
    assert_eq!(
        result_of(&doc, "pg_service")["result"]["action"],
        "reloaded"
    );
    assert_eq!(
        result_of(&doc, "pg_verify")["result"]["server_cert_sha256"],
        new.sha256
    );
    assert_eq!(pg.start_time(), before);
}
