//! The `pki_ca`, `pki_cert` and `pki_crl` modules in playbooks, with the real binary, on
//! `ansible_connection: local` hosts: what they issue verifies with OpenSSL, a second run changes
//! nothing (bytes and mtimes), check mode writes nothing, bad input exits 4 before any host; a
//! client's bundle (`pem_pk8`, `pfx`, `root`) with its `pfx_password` kept out of every output.
mod secret_scan;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const INVENTORY: &str = "\
all:
  vars:
    ansible_connection: local
  hosts:
    db1: {ansible_host: 127.0.0.11}
    db2: {ansible_host: 127.0.0.12}
    db3.example.com: {}
";

/// CA, a server certificate per host, two client certificates (run_once), a CRL.
const SITE: &str = "\
- name: PKI
  hosts: all
  gather_facts: false
  tasks:
    - name: CA
      pki_ca:
        cn: Test CA
        subject: /O=Castellan Test/CN=Test CA
      run_once: true
    - name: server certificate
      pki_cert:
        kind: server
      register: srv
    - name: application client certificate
      pki_cert:
        kind: client
        name: app
        cn: app_user
        key_type: rsa-2048
      run_once: true
      register: app_cert
    - name: every host sees the client certificate's paths
      assert:
        that:
          - app_cert.cert is defined
          - app_cert.pk8 is ending_with(\"client.pk8\")
    - name: a client certificate to retire later
      pki_cert: {kind: client, name: retired}
      run_once: true
    - name: CRL
      pki_crl: {}
      run_once: true
";

struct Site {
    tmp: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("inventory.yml"), INVENTORY).unwrap();
        std::fs::write(tmp.path().join("site.yml"), SITE).unwrap();
        Site { tmp }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// The default PKI directory: `{{ inventory_dir }}/pki`.
    fn pki(&self) -> PathBuf {
        self.path("pki")
    }

    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    fn run(&self, playbook: &str, extra: &[&str]) -> Output {
        let pb = self.path(playbook).display().to_string();
        let inv = self.path("inventory.yml").display().to_string();
        let mut args = vec!["playbook", &pb, "-i", &inv, "--output", "json"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_castellan"))
            .args(&args)
            .output()
            .expect("run castellan")
    }

    /// Runs a playbook that must succeed; returns its JSON report.
    fn ok(&self, playbook: &str, extra: &[&str]) -> Value {
        let out = self.run(playbook, extra);
        let doc = report(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{playbook} {extra:?}: {doc}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        doc
    }
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The registered result of `task` on `host`.
fn result<'a>(doc: &'a Value, task: &str, host: &str) -> &'a Value {
    let t = doc["plays"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == task)
        .unwrap_or_else(|| panic!("no task {task} in {doc}"));
    &t["results"][host]["result"]
}

fn changed(doc: &Value, host: &str) -> u64 {
    doc["stats"][host]["changed"].as_u64().unwrap()
}

/// Every entry under `dir` with its bytes, mode and mtime (ns); empty when `dir` is missing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return out;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let md = std::fs::metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (Vec::new(), md.mode(), md.mtime(), md.mtime_nsec()),
        );
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p, (bytes, md.mode(), md.mtime(), md.mtime_nsec()));
            }
        }
    }
    out
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

/// `openssl verify` with the CA and the CRL: Ok, or OpenSSL's message.
fn verify(pki: &Path, cert: &Path) -> Result<(), String> {
    let ca = pki.join("ca.crt").display().to_string();
    let crl = pki.join("crl.pem").display().to_string();
    let cert = cert.display().to_string();
    let out = openssl(&[
        "verify",
        "-CAfile",
        &ca,
        "-crl_check",
        "-CRLfile",
        &crl,
        &cert,
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(text)
    }
}

#[test]
fn check_then_issue_verify_and_nothing_changes_the_second_time() {
    let site = Site::new();
    let hosts = ["db1", "db2", "db3.example.com"];

    // Check mode on an empty directory: every host would change, nothing is written.
    let before = snapshot(site.tmp.path());
    let doc = site.ok("site.yml", &["--check"]);
    assert_eq!(snapshot(site.tmp.path()), before, "--check wrote something");
    assert!(!site.pki().exists());
    for h in hosts {
        assert_eq!(changed(&doc, h), 5, "{h}: {}", doc["stats"]);
    }
    let r = result(&doc, "server certificate", "db1");
    assert_eq!(r["check_mode"], true);
    assert!(
        r["reason"].as_str().unwrap().starts_with("new certificate"),
        "{r}"
    );
    assert_eq!(
        r["cert"],
        site.pki()
            .join("server/db1/server.crt")
            .display()
            .to_string()
    );

    // The real run.
    let doc = site.ok("site.yml", &[]);
    for h in hosts {
        assert_eq!(doc["stats"][h]["failed"], 0);
        assert!(changed(&doc, h) >= 1, "{h}: {}", doc["stats"]);
    }
    let text = doc.to_string();
    assert!(!text.contains("PRIVATE KEY"), "key material in the report");

    let pki = site.pki();
    let ca = result(&doc, "CA", "db1");
    assert_eq!(ca["changed"], true);
    assert_eq!(ca["subject"], "/O=Castellan Test/CN=Test CA");
    assert_eq!(ca["reason"], "CA created (ecdsa-p256, 3650 days)");

    // Default SANs: ansible_host (IP) and the inventory hostname (DNS).
    let db1 = result(&doc, "server certificate", "db1");
    assert_eq!(db1["sans"], serde_json::json!(["IP:127.0.0.11", "DNS:db1"]));
    assert_eq!(db1["cn"], "db1");
    assert_eq!(db1["reason"], "new certificate");
    let db3 = result(&doc, "server certificate", "db3.example.com");
    assert_eq!(db3["sans"], serde_json::json!(["DNS:db3.example.com"]));
    for h in hosts {
        let r = result(&doc, "server certificate", h);
        for key in [
            "cert",
            "key",
            "ca",
            "sha256",
            "serial",
            "not_after",
            "days_left",
        ] {
            assert!(!r[key].is_null(), "{h}: no {key} in {r}");
        }
        assert_eq!(r["days_left"], 825);
        assert!(r["not_after"].as_str().unwrap().ends_with('Z'));
        assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
        let cert = PathBuf::from(r["cert"].as_str().unwrap());
        assert_eq!(cert, pki.join("server").join(h).join("server.crt"));
        verify(&pki, &cert).unwrap();
        let key = std::fs::metadata(r["key"].as_str().unwrap()).unwrap();
        assert_eq!(key.mode() & 0o777, 0o600);
    }
    let app = result(&doc, "application client certificate", "db1");
    assert_eq!(app["key_type"], "rsa-2048");
    assert_eq!(app["cn"], "app_user");
    assert!(Path::new(app["pk8"].as_str().unwrap()).is_file());
    verify(&pki, &pki.join("client/app/client.crt")).unwrap();
    verify(&pki, &pki.join("client/retired/client.crt")).unwrap();
    let crl = result(&doc, "CRL", "db1");
    assert_eq!(crl["reason"], "crl.pem is missing");
    assert_eq!(crl["revoked_serials"], serde_json::json!([]));
    let x = openssl(&[
        "x509",
        "-noout",
        "-ext",
        "subjectAltName,extendedKeyUsage",
        "-in",
        &pki.join("server/db1/server.crt").display().to_string(),
    ]);
    let x = String::from_utf8_lossy(&x.stdout);
    assert!(
        x.contains("IP Address:127.0.0.11")
            && x.contains("DNS:db1")
            && x.contains("Server Authentication"),
        "{x}"
    );

    // Second run: nothing changes, not a byte, not an mtime.
    let before = snapshot(&pki);
    let doc = site.ok("site.yml", &[]);
    for h in hosts {
        assert_eq!(changed(&doc, h), 0, "{h}: {}", doc["stats"]);
        assert_eq!(doc["stats"][h]["ok"], 6);
    }
    assert_eq!(
        snapshot(&pki),
        before,
        "the second run changed the PKI directory"
    );
    let r = result(&doc, "server certificate", "db2");
    assert_eq!(r["changed"], false);
    assert!(r.get("reason").is_none(), "{r}");

    // Check mode on the converged directory: nothing to do, nothing written.
    let doc = site.ok("site.yml", &["--check"]);
    for h in hosts {
        assert_eq!(changed(&doc, h), 0, "{h}: {}", doc["stats"]);
    }
    assert_eq!(
        result(&doc, "server certificate", "db1")["sha256"],
        db1["sha256"]
    );
    assert_eq!(snapshot(&pki), before);
}

#[test]
fn a_san_change_reissues_with_the_reason() {
    let site = Site::new();
    site.ok("site.yml", &[]);
    let pki = site.pki();
    let db2_before = snapshot(&pki.join("server/db2"));
    let old = std::fs::read(pki.join("server/db1/server.crt")).unwrap();
    site.write(
        "san.yml",
        "\
- hosts: db1
  gather_facts: false
  tasks:
    - name: server certificate with a service name
      pki_cert:
        kind: server
        sans: [db1, 127.0.0.11, pg.example.com]
",
    );
    let before = snapshot(&pki);
    let doc = site.ok("san.yml", &["--check"]);
    assert_eq!(snapshot(&pki), before, "--check re-issued");
    let r = result(&doc, "server certificate with a service name", "db1");
    assert_eq!(r["changed"], true);
    assert_eq!(
        r["reason"],
        "SANs changed from [IP:127.0.0.11, DNS:db1] to [DNS:db1, IP:127.0.0.11, DNS:pg.example.com]"
    );

    let doc = site.ok("san.yml", &[]);
    let r = result(&doc, "server certificate with a service name", "db1");
    assert_eq!(r["changed"], true);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .starts_with("SANs changed from"),
        "{r}"
    );
    assert_ne!(
        std::fs::read(pki.join("server/db1/server.crt")).unwrap(),
        old
    );
    verify(&pki, &pki.join("server/db1/server.crt")).unwrap();
    assert_eq!(
        snapshot(&pki.join("server/db2")),
        db2_before,
        "db2 was touched"
    );

    let doc = site.ok("san.yml", &[]);
    assert_eq!(changed(&doc, "db1"), 0);
}

#[test]
fn pki_crl_revokes_once_and_openssl_rejects_the_revoked_certificate() {
    let site = Site::new();
    site.ok("site.yml", &[]);
    let pki = site.pki();
    site.write(
        "revoke.yml",
        "\
- hosts: all
  gather_facts: false
  tasks:
    - name: revoke
      pki_crl:
        revoke: retired
        reason: superseded
        days: 30
        renew_before: 7
      run_once: true
",
    );
    let before = snapshot(&pki);
    let doc = site.ok("revoke.yml", &["--check"]);
    assert_eq!(snapshot(&pki), before, "--check revoked");
    assert_eq!(result(&doc, "revoke", "db1")["changed"], true);

    let doc = site.ok("revoke.yml", &[]);
    let r = result(&doc, "revoke", "db1");
    assert_eq!(r["changed"], true, "{r}");
    assert_eq!(r["revoked"], serde_json::json!(["retired"]));
    assert_eq!(r["revoked_serials"].as_array().unwrap().len(), 1);
    assert_eq!(r["crl_number"], 2);
    assert_eq!(r["days_left"], 29);
    let err = verify(&pki, &pki.join("client/retired/client.crt")).unwrap_err();
    assert!(err.contains("certificate revoked"), "{err}");
    verify(&pki, &pki.join("client/app/client.crt")).unwrap();

    let before = snapshot(&pki);
    let doc = site.ok("revoke.yml", &[]);
    assert_eq!(changed(&doc, "db1"), 0, "{}", doc["stats"]);
    assert_eq!(snapshot(&pki), before);
}

#[test]
fn ten_hosts_issue_into_one_directory_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut inv = String::from("all:\n  vars:\n    ansible_connection: local\n  hosts:\n");
    for i in 1..=10 {
        inv.push_str(&format!("    h{i:02}.example.com: {{}}\n"));
    }
    std::fs::write(tmp.path().join("inventory.yml"), inv).unwrap();
    // Every host ensures the CA too (no run_once): they race to create it.
    std::fs::write(
        tmp.path().join("site.yml"),
        "\
- hosts: all
  gather_facts: false
  tasks:
    - name: CA
      pki_ca: {cn: Race CA}
    - name: server certificate
      pki_cert: {kind: server}
",
    )
    .unwrap();
    let site = Site { tmp };
    let doc = site.ok("site.yml", &["-f", "10"]);
    let hosts: Vec<String> = (1..=10).map(|i| format!("h{i:02}.example.com")).collect();
    let created = hosts
        .iter()
        .filter(|h| result(&doc, "CA", h)["changed"] == true)
        .count();
    assert_eq!(created, 1, "the CA was created {created} times");
    let pki = site.pki();
    let mut serials = std::collections::BTreeSet::new();
    for h in &hosts {
        let r = result(&doc, "server certificate", h);
        assert_eq!(r["changed"], true);
        serials.insert(r["serial"].as_str().unwrap().to_string());
        let out = openssl(&[
            "verify",
            "-CAfile",
            &pki.join("ca.crt").display().to_string(),
            &pki.join("server")
                .join(h)
                .join("server.crt")
                .display()
                .to_string(),
        ]);
        assert!(out.status.success(), "{h}: {out:?}");
    }
    assert_eq!(serials.len(), 10);
    let index: Value =
        serde_json::from_slice(&std::fs::read(pki.join("index.json")).unwrap()).unwrap();
    let certs = index["certs"].as_array().unwrap();
    assert_eq!(certs.len(), 10, "{index}");
    assert!(certs.iter().all(|c| c["status"] == "valid"));
    // No temporary or backup file left behind.
    let leftovers: Vec<_> = snapshot(&pki)
        .into_keys()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let before = snapshot(&pki);
    let doc = site.ok("site.yml", &["-f", "10"]);
    for h in &hosts {
        assert_eq!(changed(&doc, h), 0);
    }
    assert_eq!(snapshot(&pki), before);
}

#[test]
fn an_invalid_key_type_exits_4_with_its_location_before_any_host() {
    let site = Site::new();
    let pb = site.write(
        "bad.yml",
        "\
- hosts: all
  gather_facts: false
  tasks:
    - name: CA
      pki_ca: {cn: Test CA}
    - name: server certificate
      pki_cert:
        kind: server
        name: \"{{ inventory_hostname }}\"
        key_type: ed25519
",
    );
    let before = snapshot(site.tmp.path());
    let out = site.run("bad.yml", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains(&format!("{pb}:8:9")), "no location in {err}");
    assert!(err.contains("unknown key type \"ed25519\""), "{err}");
    assert!(err.contains("rsa-4096"), "{err}");
    assert_eq!(snapshot(site.tmp.path()), before, "something was written");

    let pb = site.write(
        "bad_kind.yml",
        "- hosts: all\n  tasks:\n    - pki_cert: {kind: sever}\n",
    );
    let out = site.run("bad_kind.yml", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains(&format!("{pb}:3:")), "{err}");
    assert!(err.contains("did you mean `server`?"), "{err}");
}

#[test]
fn a_pki_error_at_run_time_fails_the_host_with_the_library_message() {
    let site = Site::new();
    site.write(
        "no_ca.yml",
        "- hosts: db1\n  gather_facts: false\n  tasks:\n    - name: cert\n      pki_cert: {kind: server}\n",
    );
    let out = site.run("no_ca.yml", &[]);
    assert_eq!(out.status.code(), Some(2));
    let doc = report(&out);
    let r = result(&doc, "cert", "db1");
    assert!(r["msg"].as_str().unwrap().starts_with("no CA in "), "{r}");
    assert!(!site.pki().exists());
}

/// A client bundle with a PKCS#12 password from a vars file.
const BUNDLE_SITE: &str = "\
- name: bundle
  hosts: db1
  gather_facts: false
  vars_files: [secret.yml]
  tasks:
    - name: CA
      pki_ca: {cn: Bundle CA}
    - name: client bundle
      pki_cert:
        kind: client
        name: cast
        cn: cast_user
        pfx_password: \"{{ cast_pfx_password }}\"
      register: bundle
    - name: show it
      debug: {var: bundle}
    - name: the paths are registered
      assert:
        that:
          - bundle.pem_pk8 is ending_with(\"client/cast/client.pem.pk8\")
          - bundle.pfx is ending_with(\"client/cast/client.pfx\")
          - bundle.root is ending_with(\"client/cast/root.crt\")
          - bundle.pk8 is ending_with(\"client/cast/client.pk8\")
";

/// The certificate `openssl pkcs12` finds in `pfx` (password in `$PW`) is `crt`.
fn pfx_holds(pfx: &Path, crt: &Path, password: &str, scratch: &Path) {
    let out = scratch.join("from-pfx.pem");
    let o = Command::new("openssl")
        .args([
            "pkcs12", "-info", "-nokeys", "-clcerts", "-passin", "env:PW", "-in",
        ])
        .arg(pfx)
        .arg("-out")
        .arg(&out)
        .env("PW", password)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fp = |p: &Path| {
        let o = openssl(&[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            p.to_str().unwrap(),
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(fp(crt).contains("Fingerprint="));
    assert_eq!(fp(&out), fp(crt));
}

#[test]
fn a_client_bundle_with_a_pfx_password_converges_and_the_password_stays_secret() {
    let site = Site::new();
    site.write("bundle.yml", BUNDLE_SITE);
    let (pw1, pw2) = ("module-pw-4e8a1c07", "module-pw-b93d6f25");
    site.write("secret.yml", &format!("cast_pfx_password: \"{pw1}\"\n"));
    let watch = secret_scan::ps::PsWatch::start();
    let mut outputs: Vec<Output> = Vec::new();
    let mut run = |extra: &[&str]| -> Value {
        let mut a = vec!["--diff", "-vvv"];
        a.extend_from_slice(extra);
        let out = site.run("bundle.yml", &a);
        let doc = report(&out);
        assert_eq!(out.status.code(), Some(0), "{doc}");
        outputs.push(out);
        doc
    };
    let pki = site.pki();
    let leaf = pki.join("client/cast");

    // Check mode: the paths, the reason, nothing written.
    let doc = run(&["--check"]);
    assert!(!pki.exists(), "check mode wrote");
    let r = result(&doc, "client bundle", "db1");
    assert_eq!(r["pfx"], leaf.join("client.pfx").display().to_string());
    assert_eq!(r["root"], leaf.join("root.crt").display().to_string());

    // The real run: every file, the pfx opens with the password and holds client.crt.
    let doc = run(&[]);
    let r = result(&doc, "client bundle", "db1").clone();
    assert_eq!(r["changed"], true);
    for (key, file) in [
        ("cert", "client.crt"),
        ("key", "client.key"),
        ("pk8", "client.pk8"),
        ("pem_pk8", "client.pem.pk8"),
        ("pfx", "client.pfx"),
        ("root", "root.crt"),
    ] {
        assert_eq!(r[key], leaf.join(file).display().to_string(), "{key}: {r}");
        let want = if file.ends_with(".crt") { 0o644 } else { 0o600 };
        let md = std::fs::metadata(leaf.join(file)).unwrap();
        assert_eq!(md.mode() & 0o777, want, "{file}");
    }
    pfx_holds(
        &leaf.join("client.pfx"),
        &leaf.join("client.crt"),
        pw1,
        site.tmp.path(),
    );

    // Again: nothing changes, in check mode or not.
    let before = snapshot(&pki);
    let doc = run(&[]);
    assert_eq!(changed(&doc, "db1"), 0, "{}", doc["stats"]);
    let doc = run(&["--check"]);
    assert_eq!(changed(&doc, "db1"), 0, "{}", doc["stats"]);
    assert_eq!(snapshot(&pki), before, "a run with nothing to do wrote");

    // A directory of an older castellan (three files): the rest is written, same certificate.
    for f in ["client.pem.pk8", "client.pfx", "root.crt"] {
        std::fs::remove_file(leaf.join(f)).unwrap();
    }
    let doc = run(&[]);
    let r2 = result(&doc, "client bundle", "db1");
    assert_eq!(changed(&doc, "db1"), 1);
    assert_eq!(r2["serial"], r["serial"]);
    assert_eq!(
        r2["reason"],
        "client.pem.pk8 is missing; client.pfx is missing; root.crt is missing"
    );
    pfx_holds(
        &leaf.join("client.pfx"),
        &leaf.join("client.crt"),
        pw1,
        site.tmp.path(),
    );

    // A new password: check mode says so and writes nothing; the run rewrites client.pfx only.
    site.write("secret.yml", &format!("cast_pfx_password: \"{pw2}\"\n"));
    let before = snapshot(&pki);
    let doc = run(&["--check"]);
    assert_eq!(
        result(&doc, "client bundle", "db1")["reason"],
        "client.pfx does not open with the given password"
    );
    assert_eq!(snapshot(&pki), before);
    let doc = run(&[]);
    assert_eq!(changed(&doc, "db1"), 1);
    assert_eq!(result(&doc, "client bundle", "db1")["serial"], r["serial"]);
    let after = snapshot(&pki);
    let differ: Vec<_> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p.clone())
        .collect();
    assert_eq!(differ, vec![leaf.clone(), leaf.join("client.pfx")]);
    pfx_holds(
        &leaf.join("client.pfx"),
        &leaf.join("client.crt"),
        pw2,
        site.tmp.path(),
    );

    // A text run too (what a person sees with -vvv --diff).
    let pb = site.path("bundle.yml").display().to_string();
    let inv = site.path("inventory.yml").display().to_string();
    let text_run = Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(["playbook", &pb, "-i", &inv, "--diff", "-vvv"])
        .output()
        .unwrap();
    assert_eq!(text_run.status.code(), Some(0));
    outputs.push(text_run);
    let seen = watch.finish();

    // Neither password anywhere: outputs, index.json, state files, the process table.
    let mut captures: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, o) in outputs.iter().enumerate() {
        captures.push((format!("run {i} stdout"), o.stdout.clone()));
        captures.push((format!("run {i} stderr"), o.stderr.clone()));
    }
    for (p, (bytes, ..)) in snapshot(site.tmp.path()) {
        if p != site.path("secret.yml") {
            captures.push((p.display().to_string(), bytes));
        }
    }
    captures.push(("process table".into(), seen.text()));
    assert!(captures.iter().any(|(n, _)| n.ends_with("index.json")));
    assert!(seen.snapshots > 0);
    for (name, data) in &captures {
        for pw in [pw1, pw2] {
            assert!(
                !data.windows(pw.len()).any(|w| w == pw.as_bytes()),
                "the password is in {name}"
            );
        }
    }
}

#[test]
fn a_bad_pfx_password_exits_4_at_load_time_without_showing_it() {
    let site = Site::new();
    for (body, needle) in [
        (
            "kind: server\n        pfx_password: srv-pw-1",
            "is for client certificates",
        ),
        (
            "kind: client\n        name: app\n        pfx_password: [list-pw-2]",
            "must be a string",
        ),
        (
            "kind: client\n        name: app\n        pfx_password: \"emoji-pw-3-\u{1F511}\"",
            "Basic Multilingual Plane",
        ),
    ] {
        let pb = site.write(
            "bad_pw.yml",
            &format!(
                "- hosts: db1\n  gather_facts: false\n  tasks:\n    - name: cert\n      pki_cert:\n        {body}\n"
            ),
        );
        let before = snapshot(site.tmp.path());
        let out = site.run("bad_pw.yml", &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(err.contains(&format!("{pb}:")), "no location in {err}");
        assert!(err.contains(needle), "{needle:?} not in {err}");
        assert!(!err.contains("-pw-"), "the password is shown: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("-pw-"));
        assert_eq!(snapshot(site.tmp.path()), before);
    }
}
