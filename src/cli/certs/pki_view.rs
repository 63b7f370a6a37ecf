//! "Does this certificate match the PKI?" for `certs status`: it is the current certificate of
//! its name in the PKI directory (`server/NAME/server.crt`, `client/NAME/client.crt`), and not
//! revoked. A certificate whose name is not known matches when it is the current certificate of
//! any name of its kind. An older certificate of the name, or one from another CA, does not.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::pki::index::{EntryStatus, Index};
use crate::pki::store::PkiDir;
use crate::pki::{sha256_hex, CertKind};

/// A PKI directory, read once.
pub struct PkiView {
    layout: PkiDir,
    root: PathBuf,
    revoked: HashSet<String>,
}

/// SHA-256 of the DER certificate in a PEM file.
fn file_sha256(path: &Path) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let der = x509_parser::pem::parse_x509_pem(&pem).ok()?.1.contents;
    Some(sha256_hex(&der))
}

impl PkiView {
    /// The PKI in `dir`; `None` when it holds no CA (nothing to compare with).
    pub fn load(dir: &Path) -> Option<PkiView> {
        let layout = PkiDir::new(dir);
        if !layout.ca_cert().is_file() {
            return None;
        }
        let revoked = Index::load(&layout)
            .map(|i| {
                i.certs
                    .into_iter()
                    .filter(|e| e.status == EntryStatus::Revoked)
                    .map(|e| e.sha256)
                    .collect()
            })
            .unwrap_or_default();
        Some(PkiView {
            layout,
            root: dir.to_path_buf(),
            revoked,
        })
    }

    /// Is the certificate with fingerprint `sha256` the PKI's current one for `name` (or, without
    /// a name, for some name of `kind`)?
    pub fn matches(&self, kind: CertKind, name: Option<&str>, sha256: &str) -> bool {
        if self.revoked.contains(sha256) {
            return false;
        }
        match name {
            Some(n) => file_sha256(&self.layout.leaf_cert(kind, n)).as_deref() == Some(sha256),
            None => std::fs::read_dir(self.root.join(kind.as_str()))
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    let n = e.file_name();
                    file_sha256(&self.layout.leaf_cert(kind, &n.to_string_lossy())).as_deref()
                        == Some(sha256)
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{ensure_ca, ensure_cert, revoke, CaSpec, CertSpec, RevokeSpec};

    #[test]
    fn current_certificates_match_older_revoked_and_foreign_ones_do_not() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("pki");
        assert!(PkiView::load(&dir).is_none());
        ensure_ca(
            &dir,
            &CaSpec {
                cn: Some("View CA".into()),
                ..CaSpec::default()
            },
        )
        .unwrap();
        let mut spec = CertSpec::client("app.h1", "app");
        let old = ensure_cert(&dir, &spec).unwrap().sha256;
        // A renewal (new key type): the old certificate is no longer current.
        spec.key_type = crate::pki::KeyType::parse("ecdsa-p384").unwrap();
        let new = ensure_cert(&dir, &spec).unwrap().sha256;
        assert_ne!(old, new);
        let other = ensure_cert(&dir, &CertSpec::client("other", "other"))
            .unwrap()
            .sha256;
        let v = PkiView::load(&dir).unwrap();
        assert!(v.matches(CertKind::Client, Some("app.h1"), &new));
        assert!(v.matches(CertKind::Client, None, &new));
        assert!(!v.matches(CertKind::Client, Some("app.h1"), &old));
        assert!(!v.matches(CertKind::Client, None, &old));
        assert!(!v.matches(CertKind::Client, Some("app.h1"), &other));
        assert!(!v.matches(CertKind::Server, None, &new));
        assert!(!v.matches(CertKind::Client, None, &"0".repeat(64)));
        revoke(&dir, &RevokeSpec::new("other")).unwrap();
        let v = PkiView::load(&dir).unwrap();
        assert!(!v.matches(CertKind::Client, Some("other"), &other));
    }
}
