//! The `plan_*` functions decide like the `ensure_*` ones and never write.
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;

/// Every entry under `dir`: bytes (files), mode and mtime (nanoseconds).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let md = std::fs::metadata(&d).unwrap();
        out.insert(
            d.clone(),
            (Vec::new(), md.mode(), md.mtime(), md.mtime_nsec()),
        );
        for e in rd {
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

fn ca_spec() -> CaSpec {
    CaSpec {
        cn: Some("Test CA".into()),
        ..CaSpec::default()
    }
}

#[test]
fn plans_write_nothing_and_agree_with_ensure() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("pki");

    // Nothing yet: everything would be created, and no directory appears.
    let p = plan_ca(&dir, &ca_spec()).unwrap();
    assert!(p.reason.unwrap().starts_with("CA created"));
    assert!(p.current.is_none());
    let server = CertSpec::server("db1", "db1", vec!["db1".into(), "10.0.0.1".into()]);
    assert!(plan_cert(&dir, &server)
        .unwrap()
        .reason
        .unwrap()
        .starts_with("new certificate"));
    assert!(plan_crl(&dir, &CrlSpec::default())
        .unwrap()
        .reason
        .is_some());
    assert!(plan_revoked(&dir, &RevokeSpec::new("db1"))
        .unwrap()
        .is_some());
    assert!(!dir.exists(), "a plan created the directory");

    // The same invalid input fails the plan and the ensure alike.
    let bad = CaSpec {
        days: 0,
        ..ca_spec()
    };
    assert!(plan_ca(&dir, &bad).is_err() && ensure_ca(&dir, &bad).is_err());

    ensure_ca(&dir, &ca_spec()).unwrap();
    let p = plan_ca(&dir, &ca_spec()).unwrap();
    assert_eq!(p.reason, None);
    assert!(p.current.unwrap().sha256.len() == 64);
    let other = CaSpec {
        cn: Some("Other CA".into()),
        ..CaSpec::default()
    };
    assert!(matches!(
        plan_ca(&dir, &other),
        Err(PkiError::CaMismatch { .. })
    ));

    let before = snapshot(&dir);
    let p = plan_cert(&dir, &server).unwrap();
    assert_eq!(p.reason.as_deref(), Some("new certificate"));
    assert_eq!(snapshot(&dir), before);

    let issued = ensure_cert(&dir, &server).unwrap();
    assert!(issued.changed);
    let before = snapshot(&dir);
    let p = plan_cert(&dir, &server).unwrap();
    assert_eq!(p.reason, None);
    assert_eq!(p.current.unwrap().sha256, issued.sha256);
    let moved = CertSpec::server("db1", "db1", vec!["db1".into(), "10.0.0.2".into()]);
    let why = plan_cert(&dir, &moved).unwrap().reason.unwrap();
    assert!(why.starts_with("SANs changed"), "{why}");
    let rsa = CertSpec {
        key_type: KeyType::Rsa2048,
        ..server.clone()
    };
    assert!(plan_cert(&dir, &rsa)
        .unwrap()
        .reason
        .unwrap()
        .starts_with("key type changed"));

    let why = plan_crl(&dir, &CrlSpec::default()).unwrap().reason.unwrap();
    assert_eq!(why, "crl.pem is missing");
    let why = plan_revoked(&dir, &RevokeSpec::new("db1"))
        .unwrap()
        .unwrap();
    assert!(why.contains(&issued.serial), "{why}");
    assert!(matches!(
        plan_revoked(&dir, &RevokeSpec::new("nobody")),
        Err(PkiError::NotFound { .. })
    ));
    assert_eq!(snapshot(&dir), before, "a plan changed the PKI directory");

    ensure_crl(&dir, &CrlSpec::default()).unwrap();
    assert_eq!(plan_crl(&dir, &CrlSpec::default()).unwrap().reason, None);
    ensure_revoked(&dir, &RevokeSpec::new("db1")).unwrap();
    assert_eq!(plan_revoked(&dir, &RevokeSpec::new("db1")).unwrap(), None);
    assert_eq!(plan_crl(&dir, &CrlSpec::default()).unwrap().reason, None);
    assert!(matches!(
        plan_cert(&dir, &server),
        Err(PkiError::Revoked { .. })
    ));
}

#[test]
fn concurrent_ensure_ca_on_a_missing_directory() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("a/pki");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || ensure_ca(&dir, &ca_spec()).map(|o| o.changed))
        })
        .collect();
    let changed: Vec<bool> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    assert_eq!(changed.iter().filter(|c| **c).count(), 1, "{changed:?}");
}

#[test]
fn a_client_bundle_is_planned_like_it_is_ensured() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("pki");
    ensure_ca(&dir, &ca_spec()).unwrap();
    let spec = CertSpec {
        pfx_password: PfxPassword::new("plan pw").unwrap(),
        ..CertSpec::client("app", "app")
    };
    let issued = ensure_cert(&dir, &spec).unwrap();
    assert!(issued.issued);
    let leaf = dir.join("client/app");
    assert_eq!(
        issued.pfx_path.as_deref(),
        Some(leaf.join("client.pfx").as_path())
    );
    assert_eq!(
        issued.root_path.as_deref(),
        Some(leaf.join("root.crt").as_path())
    );
    assert_eq!(plan_cert(&dir, &spec).unwrap().reason, None);
    // Nothing in the outcome or the spec's Debug shows the password.
    let shown = format!(
        "{issued:?} {spec:?} {}",
        serde_json::to_string(&issued).unwrap()
    );
    assert!(!shown.contains("plan pw"), "{shown}");

    // Files missing, a changed password: the plan says what ensure then does, and writes nothing.
    std::fs::remove_file(leaf.join("root.crt")).unwrap();
    let other = CertSpec {
        pfx_password: PfxPassword::default(),
        ..spec.clone()
    };
    let before = snapshot(&dir);
    let p = plan_cert(&dir, &other).unwrap();
    let why = "client.pfx does not open with the given password; root.crt is missing";
    assert_eq!(p.reason.as_deref(), Some(why));
    assert_eq!(p.current.unwrap().serial, issued.serial);
    assert_eq!(snapshot(&dir), before, "a plan changed the PKI directory");
    let o = ensure_cert(&dir, &other).unwrap();
    assert!(o.changed && !o.issued);
    assert_eq!(o.reason.as_deref(), Some(why));
    assert_eq!(o.serial, issued.serial);
    assert_eq!(plan_cert(&dir, &other).unwrap().reason, None);
    let again = ensure_cert(&dir, &other).unwrap();
    assert!(!again.changed);
}
