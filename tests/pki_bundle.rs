//! The client bundle of `castellan pki issue client` (issue 10, PKI): `client.pk8`,
//! `client.pem.pk8`, `client.pfx` and `root.crt` next to `client.crt`/`client.key`, read with the
//! real `openssl` command (acceptance 5: `openssl pkcs12 -info -nokeys` opens the PKCS#12 file
//! and it holds the same certificate, with an empty and with a non-empty password); a second run
//! writes nothing; directories of older versions get the missing files without a new
//! certificate; `pki list` shows the paths; `pki export` writes a 0600 bundle with a README; the
//! password never reaches argv, the process table, index.json or any output.
mod secret_scan;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use secret_scan::ps::PsWatch;

const BUNDLE: [&str; 6] = [
    "client.crt",
    "client.key",
    "client.pk8",
    "client.pem.pk8",
    "client.pfx",
    "root.crt",
];

fn castellan_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_castellan"));
    c.args(args).env_remove("CASTELLAN_PFX_PASSWORD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run castellan")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = castellan_env(args, env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "castellan {args:?}:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn ok(args: &[&str]) -> String {
    ok_env(args, &[])
}

fn ok_json_env(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--output", "json"]);
    serde_json::from_str(&ok_env(&a, env)).expect("JSON output")
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    ok_json_env(args, &[])
}

/// Runs openssl with `env`; Ok(stdout) or Err(stdout + stderr).
fn openssl_env(args: &[&str], env: &[(&str, &str)]) -> Result<String, String> {
    let out = Command::new("openssl")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run openssl (is it installed?)");
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!("{}{}", text(&out.stdout), text(&out.stderr)))
    }
}

fn openssl(args: &[&str]) -> String {
    openssl_env(args, &[]).unwrap_or_else(|e| panic!("openssl {args:?}: {e}"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Path -> (mode, mtime ns, bytes) of every file under `dir`.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, i64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else {
                let b = fs::read(&p).unwrap();
                out.insert(p, (md.mode(), md.mtime(), md.mtime_nsec(), b));
            }
        }
    }
    out
}

/// SHA-256 fingerprints of every certificate in a PEM text, by `openssl x509`.
fn fingerprints(pem_text: &str, scratch: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = pem_text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let end_marker = "-----END CERTIFICATE-----";
        let end = rest[start..].find(end_marker).unwrap() + start + end_marker.len();
        let f = scratch.join(format!("cert-{}.pem", out.len()));
        fs::write(&f, format!("{}\n", &rest[start..end])).unwrap();
        out.push(fingerprint(&f));
        rest = &rest[end..];
    }
    out
}

fn fingerprint(cert: &Path) -> String {
    openssl(&["x509", "-in", s(cert), "-noout", "-fingerprint", "-sha256"])
        .trim()
        .to_string()
}

fn pubkey_of_cert(cert: &Path) -> String {
    openssl(&["x509", "-in", s(cert), "-noout", "-pubkey"])
}

/// A PKI with a CA, in a temporary directory.
struct Pki {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        ok(&["pki", "init-ca", "--dir", s(&dir), "--cn", "Bundle CA"]);
        Pki { tmp, dir }
    }
    fn d(&self) -> &str {
        s(&self.dir)
    }
    fn leaf(&self, name: &str) -> PathBuf {
        self.dir.join("client").join(name)
    }
    fn scratch(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }
}

/// `openssl pkcs12 -info -nokeys` opens `pfx` with `passin` and lists client.crt and ca.crt;
/// the key it holds is client.crt's.
fn assert_pfx_holds(pki: &Pki, name: &str, passin: &str, env: &[(&str, &str)]) {
    let leaf = pki.leaf(name);
    let pfx = leaf.join("client.pfx");
    let info = openssl_env(
        &[
            "pkcs12",
            "-info",
            "-nokeys",
            "-in",
            s(&pfx),
            "-passin",
            passin,
        ],
        env,
    )
    .unwrap_or_else(|e| panic!("openssl pkcs12 -info -nokeys: {e}"));
    let scratch = pki.scratch(&format!("fp-{name}"));
    let found = fingerprints(&info, &scratch);
    let crt = fingerprint(&leaf.join("client.crt"));
    let ca = fingerprint(&pki.dir.join("ca.crt"));
    assert_eq!(found, vec![crt, ca], "{info}");
    // `-info` names the algorithms (on stderr): AES-256 PBES2 and an HMAC-SHA256 MAC.
    let out = Command::new("openssl")
        .args([
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            s(&pfx),
            "-passin",
            passin,
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("MAC: sha256")
            && all.contains("AES-256-CBC")
            && all.contains("hmacWithSHA256"),
        "{all}"
    );
    // The key inside matches the certificate.
    let key_pem = scratch.join("pfx-key.pem");
    openssl_env(
        &[
            "pkcs12",
            "-in",
            s(&pfx),
            "-passin",
            passin,
            "-nocerts",
            "-nodes",
            "-out",
            s(&key_pem),
        ],
        env,
    )
    .unwrap();
    assert_eq!(
        openssl(&["pkey", "-in", s(&key_pem), "-pubout"]),
        pubkey_of_cert(&leaf.join("client.crt"))
    );
}

#[test]
fn acceptance5_pkcs12_opens_and_holds_the_certificate_with_and_without_a_password() {
    let pki = Pki::new();
    let d = pki.d();
    // Empty password (the default).
    let out = ok_json(&[
        "pki",
        "issue",
        "--dir",
        d,
        "client",
        "empty",
        "--cn",
        "cast_user",
    ]);
    assert_eq!(out["changed"], true);
    assert_pfx_holds(&pki, "empty", "pass:", &[]);
    // A password from a file (its trailing newline is not part of it).
    let pw_file = pki.tmp.path().join("pfx.pw");
    fs::write(&pw_file, "Acceptance 5 pw\n").unwrap();
    ok(&[
        "pki",
        "issue",
        "--dir",
        d,
        "client",
        "withpw",
        "--key-type",
        "rsa-2048",
        "--pfx-password-file",
        s(&pw_file),
    ]);
    assert_pfx_holds(&pki, "withpw", "pass:Acceptance 5 pw", &[]);
    let wrong = openssl_env(
        &[
            "pkcs12",
            "-info",
            "-nokeys",
            "-in",
            s(&pki.leaf("withpw").join("client.pfx")),
            "-passin",
            "pass:wrong",
        ],
        &[],
    );
    assert!(wrong.is_err(), "a wrong password opened the file");
    let empty = openssl_env(
        &[
            "pkcs12",
            "-info",
            "-nokeys",
            "-in",
            s(&pki.leaf("withpw").join("client.pfx")),
            "-passin",
            "pass:",
        ],
        &[],
    );
    assert!(empty.is_err(), "the empty password opened a protected file");
    // A password from the environment.
    ok_env(
        &["pki", "issue", "--dir", d, "client", "fromenv"],
        &[("CASTELLAN_PFX_PASSWORD", "env pässword")],
    );
    assert_pfx_holds(&pki, "fromenv", "env:PW", &[("PW", "env pässword")]);
}

#[test]
fn every_format_parses_with_openssl_and_is_the_same_key() {
    let pki = Pki::new();
    for (name, key_type) in [("ec", "ecdsa-p384"), ("rsa", "rsa-2048")] {
        let out = ok_json(&[
            "pki",
            "issue",
            "--dir",
            pki.d(),
            "client",
            name,
            "--key-type",
            key_type,
        ]);
        let leaf = pki.leaf(name);
        for (key, path) in [
            ("cert", "client.crt"),
            ("key_path", "client.key"),
            ("pk8_path", "client.pk8"),
            ("pem_pk8_path", "client.pem.pk8"),
            ("pfx_path", "client.pfx"),
            ("root_path", "root.crt"),
        ] {
            if key != "cert" {
                assert_eq!(out[key], s(&leaf.join(path)), "{out}");
            }
        }
        for f in BUNDLE {
            let want = if f.ends_with(".crt") { 0o644 } else { 0o600 };
            assert_eq!(mode(&leaf.join(f)), want, "{name}/{f}");
        }
        assert_eq!(mode(&leaf), 0o700);
        let cert_pub = pubkey_of_cert(&leaf.join("client.crt"));
        let der_pub = openssl(&[
            "pkey",
            "-inform",
            "DER",
            "-in",
            s(&leaf.join("client.pk8")),
            "-pubout",
        ]);
        let pem_pub = openssl(&["pkey", "-in", s(&leaf.join("client.pem.pk8")), "-pubout"]);
        assert_eq!(der_pub, cert_pub, "{name}: client.pk8");
        assert_eq!(pem_pub, cert_pub, "{name}: client.pem.pk8");
        let pem = fs::read_to_string(leaf.join("client.pem.pk8")).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----"),
            "not PKCS#8 PEM"
        );
        // DER PKCS#8 as JDBC wants it: `openssl pkcs8` reads it unencrypted.
        openssl(&[
            "pkcs8",
            "-inform",
            "DER",
            "-nocrypt",
            "-in",
            s(&leaf.join("client.pk8")),
        ]);
        assert_eq!(
            fs::read(leaf.join("root.crt")).unwrap(),
            fs::read(pki.dir.join("ca.crt")).unwrap()
        );
        let v = openssl(&[
            "verify",
            "-CAfile",
            s(&leaf.join("root.crt")),
            s(&leaf.join("client.crt")),
        ]);
        assert!(v.contains(": OK"), "{v}");
    }
}

#[test]
fn reruns_write_nothing_and_a_new_password_rewrites_only_the_pfx() {
    let pki = Pki::new();
    let d = pki.d();
    let pw = [("CASTELLAN_PFX_PASSWORD", "first pw")];
    let first = ok_json_env(&["pki", "issue", "--dir", d, "client", "app"], &pw);
    assert_eq!(first["issued"], true);
    let before = tree(&pki.dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = ok_json_env(&["pki", "issue", "--dir", d, "client", "app"], &pw);
    assert_eq!(second["changed"], false, "{second}");
    assert_eq!(second["reason"], serde_json::Value::Null);
    assert_eq!(tree(&pki.dir), before, "a run with nothing to do wrote");
    let text_out = ok_env(&["pki", "issue", "--dir", d, "client", "app"], &pw);
    assert!(
        text_out.starts_with("ok: client app unchanged"),
        "{text_out}"
    );

    // Another password: client.pfx alone is rewritten, the certificate stays.
    let third = ok_json_env(
        &["pki", "issue", "--dir", d, "client", "app"],
        &[("CASTELLAN_PFX_PASSWORD", "second pw")],
    );
    assert_eq!(third["changed"], true);
    assert_eq!(third["issued"], false);
    assert_eq!(third["serial"], first["serial"]);
    assert_eq!(
        third["reason"],
        "client.pfx does not open with the given password"
    );
    let after = tree(&pki.dir);
    let differ: Vec<_> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(differ, vec!["client.pfx"]);
    assert_eq!(mode(&pki.leaf("app").join("client.pfx")), 0o600);
    assert_pfx_holds(&pki, "app", "env:PW", &[("PW", "second pw")]);
    // No password at all: the file is rewritten to open without one.
    let fourth = ok_json(&["pki", "issue", "--dir", d, "client", "app"]);
    assert_eq!(fourth["changed"], true);
    assert_pfx_holds(&pki, "app", "pass:", &[]);

    // A re-issued certificate (other key type) rewrites every file, the pfx included.
    let reissued = ok_json(&[
        "pki",
        "issue",
        "--dir",
        d,
        "client",
        "app",
        "--key-type",
        "ecdsa-p384",
    ]);
    assert_eq!(reissued["issued"], true);
    assert_pfx_holds(&pki, "app", "pass:", &[]);
}

#[test]
fn directories_of_older_versions_get_the_missing_files_without_a_new_certificate() {
    let pki = Pki::new();
    let d = pki.d();
    let first = ok_json(&["pki", "issue", "--dir", d, "client", "old"]);
    let leaf = pki.leaf("old");
    // What castellan wrote before issue 10: client.crt, client.key, client.pk8.
    for f in ["client.pem.pk8", "client.pfx", "root.crt"] {
        fs::remove_file(leaf.join(f)).unwrap();
    }
    let crt = fs::read(leaf.join("client.crt")).unwrap();
    let key = fs::read(leaf.join("client.key")).unwrap();
    let out = ok_json(&["pki", "issue", "--dir", d, "client", "old"]);
    assert_eq!(out["changed"], true);
    assert_eq!(out["issued"], false);
    assert_eq!(out["serial"], first["serial"]);
    assert_eq!(
        out["reason"],
        "client.pem.pk8 is missing; client.pfx is missing; root.crt is missing"
    );
    let text_out = ok(&["pki", "issue", "--dir", d, "client", "old"]);
    assert!(
        text_out.starts_with("ok: client old unchanged"),
        "{text_out}"
    );
    assert_eq!(fs::read(leaf.join("client.crt")).unwrap(), crt);
    assert_eq!(fs::read(leaf.join("client.key")).unwrap(), key);
    assert_pfx_holds(&pki, "old", "pass:", &[]);
    // A root.crt that no longer matches the CA certificate is put right.
    fs::write(leaf.join("root.crt"), "stale\n").unwrap();
    let out = ok(&["pki", "issue", "--dir", d, "client", "old"]);
    assert!(
        out.starts_with("changed: client old kept, files written (root.crt differs from ca.crt)"),
        "{out}"
    );
}

#[test]
fn list_shows_the_paths_of_every_file() {
    let pki = Pki::new();
    let d = pki.d();
    ok(&["pki", "issue", "--dir", d, "client", "app"]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        d,
        "server",
        "db1",
        "--san",
        "db1.example.com",
    ]);
    let l = ok_json(&["pki", "list", "--dir", d]);
    let files = |name: &str| -> Vec<String> {
        l["certs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    let app: Vec<String> = BUNDLE
        .iter()
        .map(|f| pki.leaf("app").join(f).display().to_string())
        .collect();
    assert_eq!(files("app"), app);
    let db1 = pki.dir.join("server/db1");
    assert_eq!(
        files("db1"),
        vec![
            db1.join("server.crt").display().to_string(),
            db1.join("server.key").display().to_string()
        ]
    );
    assert_eq!(
        l["ca"]["files"],
        serde_json::json!([s(&pki.dir.join("ca.crt")), s(&pki.dir.join("ca.key"))])
    );
    // The existing fields are still there.
    for k in [
        "kind",
        "name",
        "cn",
        "serial",
        "not_after",
        "days_left",
        "status",
        "sha256",
    ] {
        assert!(!l["certs"][0][k].is_null(), "{k} missing: {l}");
    }
    let table = ok(&["pki", "list", "--dir", d]);
    for (name, paths) in [("app", app.clone()), ("db1", files("db1"))] {
        for p in paths {
            assert!(
                table.lines().any(|line| line.ends_with(p.as_str())
                    && line.split_whitespace().nth(1) == Some(name)),
                "{p} not listed for {name}:\n{table}"
            );
        }
    }
    // A missing file is not listed.
    fs::remove_file(pki.leaf("app").join("client.pfx")).unwrap();
    let l = ok_json(&["pki", "list", "--dir", d]);
    let n = l["certs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "app")
        .unwrap()["files"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(n, 5);
}

/// Runs castellan expecting exit 4 with `needle` on stderr, `watched` untouched.
fn rejected(watched: &Path, args: &[&str], needle: &str) {
    let before = tree(watched);
    let out = castellan_env(args, &[]);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{args:?}: {err}{}",
        text(&out.stdout)
    );
    assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    assert_eq!(tree(watched), before, "{args:?} wrote something");
}

#[test]
fn export_writes_a_private_bundle_with_a_readme() {
    let pki = Pki::new();
    let d = pki.d();
    ok(&[
        "pki",
        "issue",
        "--dir",
        d,
        "client",
        "alice",
        "--cn",
        "alice_user",
    ]);
    let to = pki.tmp.path().join("carry/alice");
    let out = ok_json(&["pki", "export", "--dir", d, "alice", "--to", s(&to)]);
    assert_eq!(out["changed"], true);
    assert_eq!(out["kind"], "client");
    // Created 0700 (its parent too), every file 0600.
    assert_eq!(mode(&to), 0o700);
    assert_eq!(mode(to.parent().unwrap()), 0o700);
    let mut names: Vec<String> = fs::read_dir(&to)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = BUNDLE.iter().map(|s| s.to_string()).collect();
    want.push("README.txt".into());
    want.sort();
    assert_eq!(names, want);
    for n in &names {
        assert_eq!(mode(&to.join(n)), 0o600, "{n}");
    }
    for f in BUNDLE {
        assert_eq!(
            fs::read(to.join(f)).unwrap(),
            fs::read(pki.leaf("alice").join(f)).unwrap(),
            "{f}"
        );
    }
    // README: one line per file, saying what it is and what reads it.
    let readme = fs::read_to_string(to.join("README.txt")).unwrap();
    for f in BUNDLE {
        let lines: Vec<&str> = readme
            .lines()
            .filter(|l| l.starts_with(&format!("{f}: ")))
            .collect();
        assert_eq!(lines.len(), 1, "{f}:\n{readme}");
    }
    for needle in [
        "client.pk8: PKCS#8 DER private key, for JDBC (pgjdbc sslkey)",
        "client.pfx: PKCS#12",
        ".NET",
        "root.crt: the CA certificate",
        "sslrootcert",
        "CN=alice_user",
    ] {
        assert!(readme.contains(needle), "{needle:?} not in:\n{readme}");
    }
    assert!(!readme.contains("PRIVATE KEY"));
    // The exported files work: the pfx opens, the certificate verifies against root.crt.
    openssl(&[
        "pkcs12",
        "-info",
        "-nokeys",
        "-in",
        s(&to.join("client.pfx")),
        "-passin",
        "pass:",
    ]);
    openssl(&[
        "verify",
        "-CAfile",
        s(&to.join("root.crt")),
        s(&to.join("client.crt")),
    ]);

    // Again: nothing written, not even an mtime.
    let before = tree(&to);
    let again = ok_json(&["pki", "export", "--dir", d, "alice", "--to", s(&to)]);
    assert_eq!(again["changed"], false);
    assert_eq!(tree(&to), before);

    // A file that differs is only replaced with --force; nothing is written without it.
    fs::write(to.join("client.crt"), "edited\n").unwrap();
    rejected(
        &to,
        &["pki", "export", "--dir", d, "alice", "--to", s(&to)],
        "already holds client.crt with other content: use --force",
    );
    let forced = ok_json(&[
        "pki",
        "export",
        "--dir",
        d,
        "alice",
        "--to",
        s(&to),
        "--force",
    ]);
    let written: Vec<&str> = forced["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["written"] == true)
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(written, vec![s(&to.join("client.crt"))]);
    assert_eq!(
        fs::read(to.join("client.crt")).unwrap(),
        fs::read(pki.leaf("alice").join("client.crt")).unwrap()
    );
    // A loose mode is tightened.
    fs::set_permissions(to.join("root.crt"), fs::Permissions::from_mode(0o644)).unwrap();
    let o = ok_json(&["pki", "export", "--dir", d, "alice", "--to", s(&to)]);
    assert_eq!(o["changed"], true);
    assert_eq!(mode(&to.join("root.crt")), 0o600);

    // A server certificate: its two files, root.crt and the README.
    ok(&[
        "pki",
        "issue",
        "--dir",
        d,
        "server",
        "db1",
        "--san",
        "db1.example.com",
    ]);
    let srv = pki.tmp.path().join("srv");
    fs::create_dir(&srv).unwrap();
    fs::set_permissions(&srv, fs::Permissions::from_mode(0o755)).unwrap();
    let out = castellan_env(&["pki", "export", "--dir", d, "db1", "--to", s(&srv)], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("can be entered by other users"),
        "{}",
        text(&out.stderr)
    );
    let mut names: Vec<String> = fs::read_dir(&srv)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["README.txt", "root.crt", "server.crt", "server.key"]
    );
    let readme = fs::read_to_string(srv.join("README.txt")).unwrap();
    assert!(
        readme.contains("server.key: its private key (PKCS#8 PEM), for PostgreSQL (ssl_key_file)"),
        "{readme}"
    );
}

#[test]
fn export_refuses_bad_input_with_exit_4() {
    let pki = Pki::new();
    let d = pki.d();
    ok(&["pki", "issue", "--dir", d, "client", "both"]);
    ok(&[
        "pki",
        "issue",
        "--dir",
        d,
        "server",
        "both",
        "--san",
        "both.example.com",
    ]);
    ok(&["pki", "issue", "--dir", d, "client", "gone"]);
    ok(&["pki", "revoke", "--dir", d, "gone"]);
    let base = pki.tmp.path();
    let to = base.join("out");
    let to_s = s(&to);
    rejected(
        base,
        &["pki", "export", "--dir", d, "nobody", "--to", to_s],
        "no certificate named \"nobody\"",
    );
    rejected(
        base,
        &["pki", "export", "--dir", d, "both", "--to", to_s],
        "--kind server|client",
    );
    rejected(
        base,
        &["pki", "export", "--dir", d, "gone", "--to", to_s],
        "was revoked",
    );
    rejected(
        base,
        &["pki", "export", "--dir", d, "../x", "--to", to_s],
        "invalid certificate name",
    );
    fs::write(base.join("a-file"), "x").unwrap();
    rejected(
        base,
        &[
            "pki",
            "export",
            "--dir",
            d,
            "both",
            "--kind",
            "client",
            "--to",
            s(&base.join("a-file")),
        ],
        "is not a directory",
    );
    fs::remove_file(pki.leaf("both").join("client.key")).unwrap();
    rejected(
        base,
        &[
            "pki", "export", "--dir", d, "both", "--kind", "client", "--to", to_s,
        ],
        "client.key is missing",
    );
    // Usage errors are 5.
    let out = castellan_env(&["pki", "export", "--dir", d, "both"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
}

#[test]
fn the_password_never_leaves_its_file_or_variable() {
    let pki = Pki::new();
    let d = pki.d();
    let from_file = "file-pw-7c1e93b04d";
    let from_env = "env-pw-52af0d19e8";
    let pw_file = pki.tmp.path().join("pw");
    fs::write(&pw_file, from_file).unwrap();
    let watch = PsWatch::start();
    let mut outputs = Vec::new();
    for extra in [&["--output", "json"][..], &[][..]] {
        for name in ["viafile", "viafile2"] {
            let mut a = vec![
                "pki",
                "issue",
                "--dir",
                d,
                "client",
                name,
                "--pfx-password-file",
                s(&pw_file),
            ];
            a.extend_from_slice(extra);
            outputs.push(castellan_env(&a, &[]));
        }
        let mut a = vec!["pki", "issue", "--dir", d, "client", "viaenv"];
        a.extend_from_slice(extra);
        outputs.push(castellan_env(&a, &[("CASTELLAN_PFX_PASSWORD", from_env)]));
        let mut a = vec!["pki", "list", "--dir", d];
        a.extend_from_slice(extra);
        outputs.push(castellan_env(&a, &[]));
        let to = pki.tmp.path().join("export");
        let mut a = vec![
            "pki",
            "export",
            "--dir",
            d,
            "viaenv",
            "--to",
            s(&to),
            "--force",
        ];
        a.extend_from_slice(extra);
        outputs.push(castellan_env(&a, &[]));
    }
    let seen = watch.finish();
    assert!(seen.snapshots > 0);
    for o in &outputs {
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    // The passwords were used.
    assert_pfx_holds(&pki, "viafile", &format!("file:{}", s(&pw_file)), &[]);
    assert_pfx_holds(&pki, "viaenv", "env:PW", &[("PW", from_env)]);
    let mut captures: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        captures.push((format!("run {i} stdout"), o.stdout.clone()));
        captures.push((format!("run {i} stderr"), o.stderr.clone()));
    }
    for (p, (_, _, _, b)) in tree(pki.tmp.path()) {
        if p != pw_file {
            captures.push((p.display().to_string(), b));
        }
    }
    captures.push(("process table".into(), seen.text()));
    assert!(captures.iter().any(|(n, _)| n.ends_with("index.json")));
    for (name, data) in &captures {
        for pw in [from_file, from_env] {
            assert!(
                !data.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "the password is in {name}"
            );
        }
    }
    // Bad passwords are refused (exit 4) without being quoted, and write nothing.
    let bad = "bad-pw-\u{1F511}-91d2";
    fs::write(&pw_file, bad).unwrap();
    let out = castellan_env(
        &[
            "pki",
            "issue",
            "--dir",
            d,
            "client",
            "viafile",
            "--pfx-password-file",
            s(&pw_file),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(
        text(&out.stderr).contains("Basic Multilingual Plane"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("bad-pw"));
    let out = castellan_env(
        &[
            "pki",
            "issue",
            "--dir",
            d,
            "client",
            "viafile",
            "--pfx-password-file",
            "/nonexistent/pw",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    // There is no way to give it on the command line.
    let out = castellan_env(
        &[
            "pki",
            "issue",
            "--dir",
            d,
            "client",
            "x",
            "--pfx-password",
            "argv-pw",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(5));
}
