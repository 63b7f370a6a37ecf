//! `castellan pki rollover` end to end, checked with the real `openssl` command (no hosts): the
//! three phases, the trust bundle, the link certificate that lets a client that trusts only the
//! old CA verify a new server certificate, a CRL per CA, `--check` writing nothing, a phase 2
//! cut short between two of its writes and converged by the next call, a new rollover after a
//! completed one.
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn castellan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_castellan"))
        .args(args)
        .output()
        .expect("run castellan")
}

/// Runs castellan, asserts exit 0, returns stdout.
fn ok(args: &[&str]) -> String {
    let out = castellan(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "castellan {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(!text(&out.stdout).contains("PRIVATE KEY"));
    text(&out.stdout)
}

fn rollover(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["pki", "rollover", "--dir", dir.to_str().unwrap()];
    a.extend(args);
    a.extend(["--output", "json"]);
    serde_json::from_str(&ok(&a)).unwrap()
}

/// `openssl verify`; (success, output).
fn verify(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("verify")
        .args(args)
        .output()
        .expect("run openssl");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// The PEM certificates of a file, each as its own PEM text.
fn pems(path: &Path) -> Vec<String> {
    let s = fs::read_to_string(path).unwrap();
    s.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|p| p.contains("BEGIN CERTIFICATE"))
        .map(str::to_string)
        .collect()
}

fn crls(path: &Path) -> usize {
    fs::read_to_string(path)
        .unwrap()
        .matches("BEGIN X509 CRL")
        .count()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, content).unwrap();
    p
}

/// Path -> (mode, mtime, bytes) of everything under `dir`.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u32, i64, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            let bytes = if md.is_dir() {
                stack.push(p.clone());
                Vec::new()
            } else {
                fs::read(&p).unwrap()
            };
            out.insert(p, (md.mode(), md.mtime(), md.mtime_nsec(), bytes));
        }
    }
    out
}

#[test]
fn three_phases_checked_with_openssl() {
    let t = tempfile::tempdir().unwrap();
    let pki = t.path().join("pki");
    let d = pki.to_str().unwrap();
    let w = t.path();
    ok(&["pki", "init-ca", "--dir", d, "--cn", "Rollover CA"]);
    ok(&[
        "pki", "issue", "--dir", d, "server", "db1", "--san", "db1.test",
    ]);
    for c in ["app", "gone"] {
        ok(&["pki", "issue", "--dir", d, "client", c]);
    }
    ok(&["pki", "crl", "--dir", d]);
    let old_ca = write(
        w,
        "old-ca.crt",
        &fs::read_to_string(pki.join("ca.crt")).unwrap(),
    );
    let old_gone = write(
        w,
        "old-gone.crt",
        &fs::read_to_string(pki.join("client/gone/client.crt")).unwrap(),
    );

    // The plan: nothing written.
    let before = tree(&pki);
    let plan = rollover(&pki, &["--check", "--phase", "1"]);
    assert_eq!(plan["changed"], true);
    assert_eq!(plan["todo"], serde_json::json!([1, 2, 3]));
    let plan = rollover(&pki, &[]);
    assert!(plan["summary"]
        .as_str()
        .unwrap()
        .starts_with("no CA rollover yet"));
    assert_eq!(tree(&pki), before, "a plan wrote");

    // Phase 2 before phase 1: nothing to do. Phase 1: ca.crt = old + new, a CRL of each.
    assert_eq!(rollover(&pki, &["--phase", "2"])["run"], false);
    let o = rollover(&pki, &["--phase", "1"]);
    assert_eq!(
        (o["changed"].clone(), o["run"].clone()),
        (true.into(), true.into())
    );
    let bundle = pems(&pki.join("ca.crt"));
    assert_eq!(bundle.len(), 2);
    assert_eq!(bundle[0], fs::read_to_string(&old_ca).unwrap());
    assert_eq!(crls(&pki.join("crl.pem")), 2);
    // Again: converged, nothing written.
    let before = tree(&pki);
    let o = rollover(&pki, &["--phase", "1"]);
    assert_eq!(
        (o["changed"].clone(), o["run"].clone()),
        (false.into(), true.into())
    );
    assert_eq!(tree(&pki), before);
    // A client's bundle follows ca.crt (its root.crt).
    ok(&["pki", "issue", "--dir", d, "client", "app"]);
    assert_eq!(pems(&pki.join("client/app/root.crt")), bundle);
    assert_eq!(rollover(&pki, &["--phase", "1", "--done"])["changed"], true);

    // Phase 2 cut short between its writes of ca.crt and ca.key: the next call converges.
    let new_first = format!("{}{}", bundle[1], bundle[0]);
    fs::write(pki.join("ca.crt"), &new_first).unwrap();
    let o = rollover(&pki, &["--phase", "2"]);
    assert_eq!(o["changed"], true, "{o}");
    assert_eq!(
        pems(&pki.join("ca.crt")),
        vec![bundle[1].clone(), bundle[0].clone()]
    );
    ok(&["pki", "init-ca", "--dir", d, "--cn", "Rollover CA"]);
    assert!(!pki.join("ca-next.crt").exists() && !pki.join("ca-next.key").exists());
    let new_ca = write(w, "new-ca.crt", &bundle[1]);

    // Re-issued by the new CA; a server certificate goes out with the link certificate.
    let out = ok(&[
        "pki", "issue", "--dir", d, "server", "db1", "--san", "db1.test",
    ]);
    assert!(out.contains("another CA of the same name"), "{out}");
    let chain = pems(&pki.join("server/db1/server.crt"));
    assert_eq!(chain.len(), 2);
    let leaf = write(w, "leaf.crt", &chain[0]);
    let link = write(w, "link.crt", &chain[1]);
    let old = old_ca.to_str().unwrap();
    let new = new_ca.to_str().unwrap();
    let bundle_file = pki.join("ca.crt");
    let b = bundle_file.to_str().unwrap();
    let (l, lf) = (link.to_str().unwrap(), leaf.to_str().unwrap());
    // The old CA alone: through the link (self-issued, so the old CA's path length 0 holds).
    assert!(verify(&["-CAfile", old, "-untrusted", l, lf]).0);
    assert!(
        !verify(&["-CAfile", old, lf]).0,
        "verified without the link"
    );
    assert!(verify(&["-CAfile", new, lf]).0);
    assert!(verify(&["-CAfile", b, "-untrusted", l, lf]).0);
    // Clients: the replaced certificate is not revoked (it still logs in until phase 3).
    ok(&["pki", "issue", "--dir", d, "client", "gone"]);
    let crl = pki.join("crl.pem");
    let c = crl.to_str().unwrap();
    let gone_old = old_gone.to_str().unwrap();
    assert!(verify(&["-crl_check", "-CAfile", b, "-CRLfile", c, gone_old]).0);
    // Revoking the name revokes its old certificate too, in the old CA's CRL (signed by it).
    ok(&["pki", "revoke", "--dir", d, "gone"]);
    let (ok_old, msg) = verify(&["-crl_check", "-CAfile", b, "-CRLfile", c, gone_old]);
    assert!(!ok_old && msg.contains("revoked"), "{msg}");
    let gone_new = pki.join("client/gone/client.crt");
    let (ok_new, msg) = verify(&[
        "-crl_check",
        "-CAfile",
        b,
        "-CRLfile",
        c,
        gone_new.to_str().unwrap(),
    ]);
    assert!(!ok_new && msg.contains("revoked"), "{msg}");
    let app = pki.join("client/app/client.crt");
    ok(&["pki", "issue", "--dir", d, "client", "app"]);
    assert!(
        verify(&[
            "-crl_check",
            "-CAfile",
            b,
            "-CRLfile",
            c,
            app.to_str().unwrap()
        ])
        .0
    );
    rollover(&pki, &["--phase", "2", "--done"]);

    // Phase 3: the new CA alone in ca.crt; the link leaves server.crt; the old CA's CRL stays.
    rollover(&pki, &["--phase", "3"]);
    assert_eq!(pems(&pki.join("ca.crt")), vec![bundle[1].clone()]);
    assert!(!pki.join("ca-link.crt").exists());
    let out = ok(&[
        "pki", "issue", "--dir", d, "server", "db1", "--san", "db1.test",
    ]);
    assert!(
        out.contains("no longer needs the CA rollover's link certificate"),
        "{out}"
    );
    assert_eq!(
        pems(&pki.join("server/db1/server.crt")),
        vec![chain[0].clone()]
    );
    assert_eq!(crls(&pki.join("crl.pem")), 2, "the old CA's CRL is kept");
    ok(&["pki", "issue", "--dir", d, "client", "app"]);
    assert_eq!(
        pems(&pki.join("client/app/root.crt")),
        vec![bundle[1].clone()]
    );
    rollover(&pki, &["--phase", "3", "--done"]);
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(pki.join("rollover.json")).unwrap()).unwrap();
    assert_eq!(
        (state["phase"].clone(), state["done"].clone()),
        (3.into(), true.into())
    );

    // A completed rollover: the next one makes another CA.
    let o = rollover(&pki, &["--stop-after", "1"]);
    assert_eq!(o["todo"], serde_json::json!([1]));
    assert_eq!(rollover(&pki, &["--phase", "1"])["changed"], true);
    assert_eq!(pems(&pki.join("ca.crt")).len(), 2);
    assert_eq!(pems(&pki.join("ca.crt"))[0], bundle[1]);
}
