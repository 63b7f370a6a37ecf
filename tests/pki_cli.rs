//! `castellan pki` end to end: the real binary, checked with the real `openssl` command.
//! Acceptance 1 (OpenSSL reads everything), 3 (idempotence) and 4 (bad input changes nothing)
//! of issue 4.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs castellan, asserts exit 0, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = castellan(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "castellan {args:?} failed:\nstdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("PRIVATE KEY") && !text(&out.stderr).contains("PRIVATE KEY"),
        "key material printed by {args:?}"
    );
    stdout
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    serde_json::from_str(&ok(&a)).expect("JSON output")
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl (is it installed?)")
}

fn openssl_ok(args: &[&str]) -> String {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Path -> (type, mode, mtime, sha256) for everything under `dir`.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(md) = fs::symlink_metadata(p) else {
            return;
        };
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let mut desc = format!(
            "mode={:o} mtime={}.{}",
            md.mode(),
            md.mtime(),
            md.mtime_nsec()
        );
        if md.is_dir() {
            for e in fs::read_dir(p).unwrap() {
                walk(root, &e.unwrap().path(), out);
            }
        } else if md.is_file() {
            desc.push_str(&format!(
                " sha256={}",
                hex::encode(Sha256::digest(fs::read(p).unwrap()))
            ));
        }
        out.insert(rel, desc);
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn acceptance1_openssl_accepts_certs_keys_and_crl() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    let dir = s(&d);
    ok(&[
        "pki",
        "init-ca",
        "--dir",
        dir,
        "--cn",
        "Castellan Test CA",
        "--subject",
        "/C=FR/O=Castellan",
    ]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "db1",
        "--cn",
        "db1.example.com",
        "--san",
        "db1.example.com",
        "--san",
        "10.0.0.5",
        "--san",
        "::1",
        "--days",
        "100",
    ]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "db2",
        "--key-type",
        "rsa-2048",
        "--san",
        "db2.example.com",
    ]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "client",
        "app",
        "--cn",
        "app_user",
        "--key-type",
        "ecdsa-p384",
    ]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "client",
        "jdbc",
        "--key-type",
        "rsa-2048",
    ]);

    let ca = d.join("ca.crt");
    let ca = s(&ca);
    let certs = [
        d.join("server/db1/server.crt"),
        d.join("server/db2/server.crt"),
        d.join("client/app/client.crt"),
        d.join("client/jdbc/client.crt"),
    ];
    for c in &certs {
        let out = openssl_ok(&["verify", "-CAfile", ca, s(c)]);
        assert!(out.contains(": OK"), "{out}");
    }

    // The CA: CA:TRUE, may sign certificates and CRLs.
    let ca_text = openssl_ok(&["x509", "-in", ca, "-noout", "-text"]);
    for needle in [
        "CA:TRUE",
        "Certificate Sign",
        "CRL Sign",
        "C = FR, O = Castellan, CN = Castellan Test CA",
    ] {
        assert!(ca_text.contains(needle), "CA lacks {needle}:\n{ca_text}");
    }
    // Server: SANs, EKU, CN, dates.
    let db1 = s(&certs[0]);
    let db1_text = openssl_ok(&["x509", "-in", db1, "-noout", "-text"]);
    for needle in [
        "DNS:db1.example.com",
        "IP Address:10.0.0.5",
        "IP Address:0:0:0:0:0:0:0:1",
        "TLS Web Server Authentication",
        "Subject: CN = db1.example.com",
        "CA:FALSE",
    ] {
        assert!(
            db1_text.contains(needle),
            "server lacks {needle}:\n{db1_text}"
        );
    }
    assert!(!db1_text.contains("TLS Web Client Authentication"));
    // Valid for 100 days: still valid in 99 days, no longer in 101.
    assert!(openssl(&[
        "x509",
        "-in",
        db1,
        "-noout",
        "-checkend",
        &(99 * 86400).to_string()
    ])
    .status
    .success());
    assert!(!openssl(&[
        "x509",
        "-in",
        db1,
        "-noout",
        "-checkend",
        &(101 * 86400).to_string()
    ])
    .status
    .success());
    // Client: CN = database user, clientAuth.
    let app_text = openssl_ok(&["x509", "-in", s(&certs[2]), "-noout", "-text"]);
    assert!(app_text.contains("Subject: CN = app_user"), "{app_text}");
    assert!(
        app_text.contains("TLS Web Client Authentication"),
        "{app_text}"
    );
    assert!(app_text.contains("NIST CURVE: P-384"), "{app_text}");
    // Default 825 days for leaves.
    let db2 = s(&certs[1]);
    assert!(openssl(&[
        "x509",
        "-in",
        db2,
        "-noout",
        "-checkend",
        &(824 * 86400).to_string()
    ])
    .status
    .success());
    assert!(!openssl(&[
        "x509",
        "-in",
        db2,
        "-noout",
        "-checkend",
        &(826 * 86400).to_string()
    ])
    .status
    .success());

    // Keys: PEM readable by OpenSSL and matching their certificates; .pk8 is PKCS#8 DER.
    for (kind, name) in [
        ("server", "db1"),
        ("server", "db2"),
        ("client", "app"),
        ("client", "jdbc"),
    ] {
        let key = d.join(format!("{kind}/{name}/{kind}.key"));
        let crt = d.join(format!("{kind}/{name}/{kind}.crt"));
        assert_eq!(mode(&key), 0o600, "{}", key.display());
        assert_eq!(mode(&d.join(format!("{kind}/{name}"))), 0o700);
        assert!(fs::read_to_string(&key)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----"));
        let pub_from_key = openssl_ok(&["pkey", "-in", s(&key), "-pubout"]);
        let pub_from_cert = openssl_ok(&["x509", "-in", s(&crt), "-noout", "-pubkey"]);
        assert_eq!(
            pub_from_key, pub_from_cert,
            "{name}: key does not match cert"
        );
        if kind == "client" {
            let pk8 = d.join(format!("client/{name}/client.pk8"));
            assert_eq!(mode(&pk8), 0o600);
            let pem = openssl_ok(&["pkcs8", "-inform", "DER", "-nocrypt", "-in", s(&pk8)]);
            assert_eq!(
                pem,
                fs::read_to_string(&key).unwrap(),
                "{name}: .pk8 is not the same key"
            );
        }
    }
    assert_eq!(mode(&d.join("ca.key")), 0o600);
    assert_eq!(mode(&d), 0o700);

    // Revocation: the CRL lists the serial, and verify -crl_check rejects the certificate.
    let app_serial = openssl_ok(&["x509", "-in", s(&certs[2]), "-noout", "-serial"]);
    let app_serial = app_serial.trim().trim_start_matches("serial=").to_string();
    let out = ok_json(&[
        "pki",
        "revoke",
        "--dir",
        dir,
        "app",
        "--reason",
        "keyCompromise",
    ]);
    assert_eq!(out["changed"], true);
    assert_eq!(out["serial"].as_str().unwrap().to_uppercase(), app_serial);
    let crl = d.join("crl.pem");
    let crl_text = openssl_ok(&["crl", "-in", s(&crl), "-noout", "-text"]);
    assert!(
        crl_text.contains(&format!("Serial Number: {app_serial}")),
        "{crl_text}"
    );
    assert!(crl_text.contains("Key Compromise"), "{crl_text}");
    openssl_ok(&["crl", "-in", s(&crl), "-noout", "-CAfile", ca]); // signature verifies
    let rejected = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        ca,
        "-CRLfile",
        s(&crl),
        s(&certs[2]),
    ]);
    assert!(!rejected.status.success());
    assert!(
        text(&rejected.stdout).contains("revoked") || text(&rejected.stderr).contains("revoked")
    );
    for c in [&certs[0], &certs[1], &certs[3]] {
        openssl_ok(&[
            "verify",
            "-crl_check",
            "-CAfile",
            ca,
            "-CRLfile",
            s(&crl),
            s(c),
        ]);
    }

    // list: days left and status.
    let l = ok_json(&["pki", "list", "--dir", dir]);
    let certs = l["certs"].as_array().unwrap();
    let find = |name: &str| certs.iter().find(|c| c["name"] == name).unwrap().clone();
    // 100 days from issue, in whole days: 99 once a second has passed since, 100 within it.
    let db1_days = find("db1")["days_left"].as_i64().unwrap();
    assert!(db1_days == 99 || db1_days == 100, "{db1_days}");
    assert_eq!(find("db1")["status"], "valid");
    assert_eq!(find("app")["status"], "revoked");
    let ca_days = l["ca"]["days_left"].as_i64().unwrap();
    assert!(ca_days == 3649 || ca_days == 3650, "{ca_days}");
    assert_eq!(l["crl"]["revoked"], 1);
    let table = ok(&["pki", "list", "--dir", dir]);
    assert!(
        table.contains("db1") && table.contains("revoked") && table.contains("STATUS"),
        "{table}"
    );

    // index.json records what was issued.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(d.join("index.json")).unwrap()).unwrap();
    let entries = index["certs"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert!(entries
        .iter()
        .any(|e| e["name"] == "app" && e["status"] == "revoked"));
}

#[test]
fn acceptance3_issue_is_idempotent_and_renews_when_needed() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    let dir = s(&d);
    ok(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    let issue = |extra: &[&str]| {
        let mut a = vec![
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "db1",
            "--san",
            "db1.example.com",
        ];
        a.extend_from_slice(extra);
        ok_json(&a)
    };
    let first = issue(&["--days", "10", "--renew-before", "5"]);
    assert_eq!(first["changed"], true);
    assert_eq!(first["reason"], "new certificate");
    let before = tree(&d);

    // Twice: nothing changes, not even an mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = issue(&["--days", "10", "--renew-before", "5"]);
    assert_eq!(second["changed"], false);
    assert_eq!(second["reason"], serde_json::Value::Null);
    assert_eq!(second["serial"], first["serial"]);
    assert_eq!(
        tree(&d),
        before,
        "an unchanged issue touched the PKI directory"
    );
    let text_out = ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "db1",
        "--san",
        "db1.example.com",
        "--days",
        "10",
        "--renew-before",
        "5",
    ]);
    assert!(
        text_out.starts_with("ok: server db1 unchanged"),
        "{text_out}"
    );

    // Within renew_before (10 days left, renew 20 days before): new serial, reason given.
    let renewed = issue(&["--days", "60", "--renew-before", "20"]);
    assert_eq!(renewed["changed"], true);
    assert!(
        renewed["reason"]
            .as_str()
            .unwrap()
            .contains("within renew_before (20 days)"),
        "{renewed}"
    );
    assert_ne!(renewed["serial"], first["serial"]);
    assert_eq!(renewed["days_left"], 60);
    let again = issue(&["--days", "60", "--renew-before", "20"]);
    assert_eq!(again["changed"], false);

    // Changing the SANs re-issues.
    let mut a = vec![
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "db1",
        "--san",
        "db1.example.com",
        "--san",
        "10.1.2.3",
    ];
    a.extend(["--days", "60", "--renew-before", "20"]);
    let sans = ok_json(&a);
    assert_eq!(sans["changed"], true);
    assert!(
        sans["reason"].as_str().unwrap().starts_with("SANs changed"),
        "{sans}"
    );
    assert_ne!(sans["serial"], renewed["serial"]);
    let same = ok_json(&a); // the SAN order does not matter, but the set does
    assert_eq!(same["changed"], false);

    // Changing the CN, the key type; a key that does not match.
    a.extend(["--cn", "db1.example.com"]);
    let cn = ok_json(&a);
    assert!(
        cn["reason"].as_str().unwrap().starts_with("CN changed"),
        "{cn}"
    );
    a.extend(["--key-type", "ecdsa-p384"]);
    let kt = ok_json(&a);
    assert!(
        kt["reason"]
            .as_str()
            .unwrap()
            .contains("key type changed from ecdsa-p256 to ecdsa-p384"),
        "{kt}"
    );
    ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "other",
        "--key-type",
        "ecdsa-p384",
    ]);
    fs::copy(
        d.join("server/other/server.key"),
        d.join("server/db1/server.key"),
    )
    .unwrap();
    let mismatch = ok_json(&a);
    assert_eq!(mismatch["reason"], "server.key does not match server.crt");
    assert_eq!(ok_json(&a)["changed"], false);

    // A missing client.pk8 is rewritten from client.key; the certificate stays.
    let c1 = ok_json(&["pki", "issue", "--dir", dir, "client", "app"]);
    fs::remove_file(d.join("client/app/client.pk8")).unwrap();
    let c2 = ok_json(&["pki", "issue", "--dir", dir, "client", "app"]);
    assert_eq!(c2["changed"], true);
    assert_eq!(c2["reason"], "client.pk8 is missing");
    assert_eq!(c2["serial"], c1["serial"]);
    assert_eq!(mode(&d.join("client/app/client.pk8")), 0o600);

    // A new CA in place of the old one: every certificate is re-issued.
    fs::remove_file(d.join("ca.crt")).unwrap();
    fs::remove_file(d.join("ca.key")).unwrap();
    ok(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    let c3 = ok_json(&["pki", "issue", "--dir", dir, "client", "app"]);
    assert!(
        c3["reason"].as_str().unwrap().contains("another CA"),
        "{c3}"
    );

    // init-ca twice changes nothing either.
    let before = tree(&d);
    let ca = ok_json(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    assert_eq!(ca["changed"], false);
    assert_eq!(tree(&d), before);
}

/// Runs castellan, expecting exit 4 with `needle` in stderr and `watched` unchanged.
fn assert_rejected(watched: &Path, args: &[&str], needle: &str) {
    let before = tree(watched);
    let out = castellan(args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "castellan {args:?}: expected exit 4\nstdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(needle),
        "castellan {args:?}: stderr lacks {needle:?}: {stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"));
    assert_eq!(
        tree(watched),
        before,
        "castellan {args:?} changed {}",
        watched.display()
    );
}

#[test]
fn acceptance4_bad_input_is_exit_4_and_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    let dir = s(&d);
    ok(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "db1",
        "--san",
        "db1.example.com",
    ]);
    ok(&["pki", "issue", "--dir", dir, "client", "app"]);
    ok(&["pki", "revoke", "--dir", dir, "app"]);

    // Unknown key type (the message lists the valid ones), invalid SANs and names.
    assert_rejected(
        &d,
        &[
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "db9",
            "--key-type",
            "ed25519",
        ],
        "valid key types are ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096",
    );
    assert_rejected(
        &d,
        &[
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "db1",
            "--key-type",
            "rsa-1024",
        ],
        "unknown key type",
    );
    assert_rejected(
        &d,
        &[
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "db9",
            "--san",
            "bad_name!",
        ],
        "invalid SAN",
    );
    assert_rejected(
        &d,
        &[
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "db9",
            "--san",
            "999.1.1.1",
        ],
        "invalid SAN",
    );
    assert_rejected(
        &d,
        &[
            "pki", "issue", "--dir", dir, "server", "db9", "--san", "IP:db1",
        ],
        "invalid SAN",
    );
    assert_rejected(
        &d,
        &[
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "../escape",
            "--san",
            "x.example.com",
        ],
        "invalid certificate name",
    );
    assert_rejected(
        &d,
        &[
            "pki",
            "issue",
            "--dir",
            dir,
            "server",
            "db9",
            "--cn",
            "Not A Host",
        ],
        "needs at least one --san",
    );
    assert_rejected(
        &d,
        &[
            "pki", "issue", "--dir", dir, "server", "db1", "--days", "10",
        ],
        "--renew-before",
    );
    assert_rejected(
        &d,
        &["pki", "init-ca", "--dir", dir, "--key-type", "dsa"],
        "valid key types",
    );
    // Revoked names: not issued again, not revoked twice; unknown names; unknown reasons.
    assert_rejected(
        &d,
        &["pki", "issue", "--dir", dir, "client", "app"],
        "was revoked",
    );
    assert_rejected(
        &d,
        &["pki", "revoke", "--dir", dir, "app"],
        "already revoked",
    );
    assert_rejected(
        &d,
        &["pki", "revoke", "--dir", dir, "nosuch"],
        "no certificate named",
    );
    assert_rejected(
        &d,
        &["pki", "revoke", "--dir", dir, "db1", "--reason", "lost"],
        "valid reasons are",
    );
    // The existing CA is never replaced.
    assert_rejected(
        &d,
        &["pki", "init-ca", "--dir", dir, "--cn", "Other CA"],
        "never replaces a CA",
    );
    assert_rejected(
        &d,
        &["pki", "init-ca", "--dir", dir, "--key-type", "rsa-2048"],
        "its key is ecdsa-p256",
    );

    // Importing garbage, unreadable or mismatched CA files: the new directory is not created.
    let garbage = t.path().join("garbage.pem");
    fs::write(&garbage, "this is not a certificate\n").unwrap();
    let new = t.path().join("new");
    let newdir = s(&new);
    let g = s(&garbage);
    let missing = t.path().join("missing.pem");
    let own_ca = d.join("ca.crt");
    let other_key = d.join("server/db1/server.key");
    let leaf = d.join("server/db1/server.crt");
    assert_rejected(
        t.path(),
        &["pki", "init-ca", "--dir", newdir, "--import-cert", g],
        "not a PEM or DER certificate",
    );
    assert_rejected(
        t.path(),
        &[
            "pki",
            "init-ca",
            "--dir",
            newdir,
            "--import-cert",
            s(&missing),
        ],
        "No such file",
    );
    assert_rejected(
        t.path(),
        &[
            "pki",
            "init-ca",
            "--dir",
            newdir,
            "--import-cert",
            s(&own_ca),
            "--import-key",
            g,
        ],
        "not a PEM private key",
    );
    assert_rejected(
        t.path(),
        &[
            "pki",
            "init-ca",
            "--dir",
            newdir,
            "--import-cert",
            s(&own_ca),
            "--import-key",
            s(&other_key),
        ],
        "does not match the CA certificate",
    );
    assert_rejected(
        t.path(),
        &["pki", "init-ca", "--dir", newdir, "--import-cert", s(&leaf)],
        "is not a CA certificate",
    );
    assert_rejected(
        t.path(),
        &["pki", "init-ca", "--dir", s(&garbage), "--cn", "CA"],
        "is not a directory",
    );
    assert_rejected(t.path(), &["pki", "list", "--dir", newdir], "no CA in");
    assert!(!new.exists());
    assert_rejected(
        t.path(),
        &["pki", "issue", "--dir", newdir, "server", "db1"],
        "init-ca",
    );

    // A PKI directory whose ca.crt is garbage, unreadable (a directory), or whose ca.key does
    // not match ca.crt.
    let make = |name: &str| {
        let p = t.path().join(name);
        ok(&["pki", "init-ca", "--dir", s(&p), "--cn", "CA"]);
        ok(&[
            "pki",
            "issue",
            "--dir",
            s(&p),
            "server",
            "db1",
            "--san",
            "db1.example.com",
        ]);
        p
    };
    let g1 = make("garbage-ca");
    fs::write(g1.join("ca.crt"), "garbage").unwrap();
    assert_rejected(
        &g1,
        &[
            "pki",
            "issue",
            "--dir",
            s(&g1),
            "server",
            "db2",
            "--san",
            "db2.example.com",
        ],
        "cannot use",
    );
    assert_rejected(
        &g1,
        &[
            "pki",
            "issue",
            "--dir",
            s(&g1),
            "server",
            "db1",
            "--san",
            "db1.example.com",
        ],
        "cannot use",
    );
    assert_rejected(
        &g1,
        &["pki", "revoke", "--dir", s(&g1), "db1"],
        "cannot use",
    );
    let g2 = make("unreadable-ca");
    fs::remove_file(g2.join("ca.crt")).unwrap();
    fs::create_dir(g2.join("ca.crt")).unwrap();
    assert_rejected(
        &g2,
        &[
            "pki",
            "issue",
            "--dir",
            s(&g2),
            "server",
            "db2",
            "--san",
            "db2.example.com",
        ],
        "cannot use",
    );
    let g3 = make("mismatched-ca");
    fs::copy(g3.join("server/db1/server.key"), g3.join("ca.key")).unwrap();
    assert_rejected(
        &g3,
        &[
            "pki",
            "issue",
            "--dir",
            s(&g3),
            "server",
            "db2",
            "--san",
            "db2.example.com",
        ],
        "does not match the CA certificate",
    );
    assert_rejected(
        &g3,
        &["pki", "init-ca", "--dir", s(&g3), "--cn", "CA"],
        "does not match the CA certificate",
    );
    let g4 = make("garbage-key");
    fs::write(
        g4.join("ca.key"),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_rejected(
        &g4,
        &["pki", "issue", "--dir", s(&g4), "client", "x"],
        "not a readable private key",
    );
    let g5 = make("garbage-index");
    fs::write(g5.join("index.json"), "{not json").unwrap();
    assert_rejected(
        &g5,
        &["pki", "issue", "--dir", s(&g5), "client", "x"],
        "index.json is damaged",
    );
}

#[test]
fn usage_errors_are_exit_5() {
    for args in [
        &["pki", "frobnicate"][..],
        &["pki", "issue", "--dir", "/nonexistent", "server"],
        &["pki", "issue", "server", "db1"],
        &["pki", "list"],
        &["pki", "list", "--dir", "/x", "--output", "yaml"],
        &["pki", "init-ca", "--dir", "/x", "--days", "many"],
    ] {
        let out = castellan(args);
        assert_eq!(
            out.status.code(),
            Some(5),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(castellan(&["pki", "--help"]).status.code(), Some(0));
}

#[test]
fn imported_openssl_ca_signs_certs_and_crls() {
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("ext.key");
    let crt = t.path().join("ext.crt");
    // A PKCS#1 RSA key and a CA made by OpenSSL (SHA-1 subject key identifier).
    openssl_ok(&["genrsa", "-traditional", "-out", s(&key), "2048"]);
    assert!(fs::read_to_string(&key)
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        s(&key),
        "-subj",
        "/O=Ext/CN=External CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        s(&crt),
    ]);
    // Certificate only: an external CA, no issuing.
    let ext = t.path().join("ext-only");
    let o = ok_json(&["pki", "init-ca", "--dir", s(&ext), "--import-cert", s(&crt)]);
    assert_eq!(o["external"], true);
    assert_rejected(
        &ext,
        &["pki", "issue", "--dir", s(&ext), "client", "x"],
        "external",
    );
    // Adding the key later makes it a full CA.
    let o = ok_json(&[
        "pki",
        "init-ca",
        "--dir",
        s(&ext),
        "--import-cert",
        s(&crt),
        "--import-key",
        s(&key),
    ]);
    assert_eq!(o["changed"], true);
    assert_eq!(o["external"], false);

    let d = t.path().join("pki");
    let dir = s(&d);
    let o = ok_json(&[
        "pki",
        "init-ca",
        "--dir",
        dir,
        "--import-cert",
        s(&crt),
        "--import-key",
        s(&key),
    ]);
    assert_eq!(o["changed"], true);
    assert_eq!(o["subject"], "/O=Ext/CN=External CA");
    assert_eq!(o["key_type"], "rsa-2048");
    assert_eq!(mode(&d.join("ca.key")), 0o600);
    let again = ok_json(&[
        "pki",
        "init-ca",
        "--dir",
        dir,
        "--import-cert",
        s(&crt),
        "--import-key",
        s(&key),
    ]);
    assert_eq!(again["changed"], false);
    let w = ok_json(&[
        "pki",
        "issue",
        "--dir",
        dir,
        "server",
        "db1",
        "--san",
        "db1.example.com",
    ]);
    assert!(
        w["warnings"][0]
            .as_str()
            .unwrap()
            .contains("outlives its CA"),
        "{w}"
    );
    ok(&["pki", "issue", "--dir", dir, "client", "app"]);
    let ca = s(&crt);
    openssl_ok(&["verify", "-CAfile", ca, s(&d.join("server/db1/server.crt"))]);
    ok(&[
        "pki",
        "revoke",
        "--dir",
        dir,
        "app",
        "--reason",
        "superseded",
    ]);
    let crl = d.join("crl.pem");
    openssl_ok(&["crl", "-in", s(&crl), "-noout", "-CAfile", ca]);
    let rejected = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        ca,
        "-CRLfile",
        s(&crl),
        s(&d.join("client/app/client.crt")),
    ]);
    assert!(!rejected.status.success());
    openssl_ok(&[
        "verify",
        "-crl_check",
        "-CAfile",
        ca,
        "-CRLfile",
        s(&crl),
        s(&d.join("server/db1/server.crt")),
    ]);
}

#[test]
fn crl_command_is_idempotent() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    let dir = s(&d);
    ok(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    let c1 = ok_json(&["pki", "crl", "--dir", dir]);
    assert_eq!(c1["changed"], true);
    assert_eq!(c1["number"], 1);
    openssl_ok(&[
        "crl",
        "-in",
        s(&d.join("crl.pem")),
        "-noout",
        "-CAfile",
        s(&d.join("ca.crt")),
    ]);
    let before = tree(&d);
    let c2 = ok_json(&["pki", "crl", "--dir", dir]);
    assert_eq!(c2["changed"], false);
    assert_eq!(tree(&d), before);
    let c3 = ok_json(&[
        "pki",
        "crl",
        "--dir",
        dir,
        "--days",
        "400",
        "--renew-before",
        "366",
    ]);
    assert_eq!(c3["changed"], true);
    assert_eq!(c3["number"], 2);
}

#[test]
fn concurrent_ensure_cert_keeps_the_index_whole() {
    use castellan::pki::{ensure_ca, ensure_cert, list, CaSpec, CertSpec};
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    ensure_ca(
        &d,
        &CaSpec {
            cn: Some("CA".into()),
            ..CaSpec::default()
        },
    )
    .unwrap();
    std::thread::scope(|scope| {
        for i in 0..8 {
            let d = &d;
            scope.spawn(move || {
                let name = format!("db{i}");
                let spec = CertSpec::server(&name, format!("{name}.example.com"), vec![]);
                assert!(ensure_cert(d, &spec).unwrap().changed);
            });
        }
    });
    assert_eq!(list(&d).unwrap().certs.len(), 8);
}

/// Timings for the closing note: `cargo test --release --test pki_cli -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_issue_times() {
    use castellan::pki::{ensure_ca, ensure_cert, CaSpec, CertSpec, KeyType};
    use std::time::Instant;
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    ensure_ca(
        &d,
        &CaSpec {
            cn: Some("CA".into()),
            ..CaSpec::default()
        },
    )
    .unwrap();
    for kt in [KeyType::Rsa4096, KeyType::EcdsaP256] {
        let mut times = Vec::new();
        for i in 0..5 {
            let mut spec = CertSpec::server(format!("{kt}-{i}"), "db.example.com", vec![]);
            spec.key_type = kt;
            let start = Instant::now();
            ensure_cert(&d, &spec).unwrap();
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{kt} server certificate: median {:.1} ms (min {:.1}, max {:.1}) over 5",
            times[2], times[0], times[4]
        );
    }
    let start = Instant::now();
    for i in 0..1000 {
        ensure_cert(
            &d,
            &CertSpec::server(format!("bulk{i}"), format!("bulk{i}.example.com"), vec![]),
        )
        .unwrap();
    }
    println!(
        "1000 ecdsa-p256 server certificates: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    for i in 0..1000 {
        assert!(
            !ensure_cert(
                &d,
                &CertSpec::server(format!("bulk{i}"), format!("bulk{i}.example.com"), vec![])
            )
            .unwrap()
            .changed
        );
    }
    println!(
        "1000 unchanged checks: {:.2} s",
        start.elapsed().as_secs_f64()
    );
}

/// `openssl verify -crl_check` of `cert` against the CA and crl.pem of `d`: Ok(()) when the
/// certificate is accepted, Err(output) when it is rejected.
fn verify_with_crl(d: &Path, cert: &Path) -> Result<(), String> {
    let out = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        s(&d.join("ca.crt")),
        "-CRLfile",
        s(&d.join("crl.pem")),
        s(cert),
    ]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }
}

fn upper_serial(cert: &Path) -> String {
    openssl_ok(&["x509", "-in", s(cert), "-noout", "-serial"])
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

/// The CRL's entries: upper-case serial -> reason text ("" without a reason code).
fn crl_entries(crl: &Path) -> BTreeMap<String, String> {
    let t = openssl_ok(&["crl", "-in", s(crl), "-noout", "-text"]);
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in t.lines().map(str::trim) {
        if let Some(serial) = line.strip_prefix("Serial Number: ") {
            out.insert(serial.to_string(), String::new());
            last = Some(serial.to_string());
        } else if let Some(l) = &last {
            let known = [
                "Superseded",
                "Key Compromise",
                "Cessation Of Operation",
                "Unspecified",
            ];
            if let Some(k) = known.iter().find(|k| line == **k) {
                out.insert(l.clone(), k.to_string());
            }
        }
    }
    out
}

/// Issue 8, defect 6 (part 1): re-issuing a name with a new key revokes the old certificate
/// with reason superseded; the CRL written next lists it and OpenSSL rejects it. A restored old
/// certificate is not taken back as current.
#[test]
fn reissue_revokes_the_superseded_certificate() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    let dir = s(&d);
    ok(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    let issue = |sans: &[&str]| {
        let mut a = vec!["pki", "issue", "--dir", dir, "server", "db1"];
        for san in sans {
            a.extend(["--san", san]);
        }
        ok_json(&a)
    };
    issue(&["db1.example.com"]);
    let keep = t.path().join("old");
    fs::create_dir(&keep).unwrap();
    let old_cert = keep.join("server.crt");
    fs::copy(d.join("server/db1/server.crt"), &old_cert).unwrap();
    fs::copy(d.join("server/db1/server.key"), keep.join("server.key")).unwrap();
    let old_serial = upper_serial(&old_cert);

    // A CRL published before the renewal: the old certificate is still fine then.
    ok(&["pki", "crl", "--dir", dir]);
    verify_with_crl(&d, &old_cert).expect("old certificate valid before the renewal");

    // Renewal with a new key (the SANs changed).
    let renewed = issue(&["db1.example.com", "10.0.0.5"]);
    assert_eq!(renewed["changed"], true);
    let new_cert = d.join("server/db1/server.crt");
    assert_ne!(upper_serial(&new_cert), old_serial);

    // The published CRL was rewritten with the renewal: it lists the old serial as superseded
    // (`pki crl` then has nothing to do); the new certificate is accepted.
    let crl = d.join("crl.pem");
    assert_eq!(ok_json(&["pki", "crl", "--dir", dir])["changed"], false);
    let entries = crl_entries(&crl);
    assert_eq!(
        entries.get(&old_serial).map(String::as_str),
        Some("Superseded"),
        "{entries:?}"
    );
    let err = verify_with_crl(&d, &old_cert).expect_err("superseded certificate still valid");
    assert!(err.contains("revoked"), "{err}");
    verify_with_crl(&d, &new_cert).expect("new certificate rejected");
    assert_eq!(
        renewed["revoked_superseded"][0]
            .as_str()
            .unwrap()
            .to_uppercase(),
        old_serial,
        "{renewed}"
    );

    // Putting the old certificate and key back does not make them current again: re-issued.
    fs::copy(&old_cert, d.join("server/db1/server.crt")).unwrap();
    fs::copy(keep.join("server.key"), d.join("server/db1/server.key")).unwrap();
    let back = issue(&["db1.example.com"]);
    assert_eq!(back["changed"], true, "{back}");
    assert!(
        back["reason"].as_str().unwrap().contains("revoked"),
        "{back}"
    );
    assert_ne!(back["serial"].as_str().unwrap().to_uppercase(), old_serial);
    ok(&["pki", "crl", "--dir", dir]);
    let entries = crl_entries(&crl);
    assert_eq!(entries.len(), 2, "{entries:?}");
    verify_with_crl(&d, &d.join("server/db1/server.crt")).expect("current certificate rejected");
    let l = ok_json(&["pki", "list", "--dir", dir]);
    assert_eq!(l["certs"][0]["status"], "valid", "{l}");
}

/// Issue 8, defect 6 (part 2): `pki revoke NAME` revokes every unexpired certificate of the
/// name, also the superseded ones an older castellan left unrevoked in index.json.
#[test]
fn revoke_name_revokes_every_unexpired_certificate_of_it() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("pki");
    let dir = s(&d);
    ok(&["pki", "init-ca", "--dir", dir, "--cn", "CA"]);
    let keep = t.path().join("old");
    fs::create_dir(&keep).unwrap();
    let mut old = Vec::new();
    for (i, user) in ["app", "app2", "app3"].iter().enumerate() {
        ok(&["pki", "issue", "--dir", dir, "client", "app", "--cn", user]);
        let c = keep.join(format!("{i}.crt"));
        fs::copy(d.join("client/app/client.crt"), &c).unwrap();
        old.push(c);
    }
    // An index.json as castellan wrote it before: superseded entries are not revoked, and one
    // of them has expired (expired certificates need no CRL entry).
    let index_path = d.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let entries = index["certs"].as_array_mut().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries.iter_mut().take(2) {
        let o = e.as_object_mut().unwrap();
        o.insert("status".into(), "superseded".into());
        o.remove("revoked_at");
        o.remove("revocation_reason");
    }
    entries[0]["not_after"] = "2001-01-01T00:00:00Z".into();
    let expired_serial = entries[0]["serial"].as_str().unwrap().to_uppercase();
    fs::write(&index_path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();

    let out = ok_json(&[
        "pki",
        "revoke",
        "--dir",
        dir,
        "app",
        "--reason",
        "keyCompromise",
    ]);
    assert_eq!(out["changed"], true);
    let crl = d.join("crl.pem");
    let entries = crl_entries(&crl);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(!entries.contains_key(&expired_serial), "{entries:?}");
    for c in &old[1..] {
        assert_eq!(
            entries.get(&upper_serial(c)).map(String::as_str),
            Some("Key Compromise"),
            "{entries:?}"
        );
        let err = verify_with_crl(&d, c).expect_err("a certificate of a revoked name is valid");
        assert!(err.contains("revoked"), "{err}");
    }
    assert_eq!(out["serials"].as_array().unwrap().len(), 2, "{out}");
    // Revoking again: nothing left to revoke.
    let again = castellan(&["pki", "revoke", "--dir", dir, "app"]);
    assert_eq!(again.status.code(), Some(4));
    assert!(text(&again.stderr).contains("already revoked"));
}
