//! The local PKI: a certificate authority, server and client certificates, CRLs, and the PKI
//! directory that holds them.
//!
//! Everything runs on the control node and is synchronous. The playbook modules (`pki_ca`,
//! `pki_cert`, `pki_crl`) and the `castellan pki` command line both call the `ensure_*`,
//! [`revoke`] and [`list`] functions below; in check mode the modules call the `plan_*`
//! functions instead, which decide and fail the same way but write nothing.
//!
//! ```text
//! PKI_DIR/ca.crt ca.key                      0644 / 0600 (or ca.crt alone: an external CA)
//! PKI_DIR/server/NAME/server.crt server.key   (server.crt alone: a key made on its host, csr.rs)
//! PKI_DIR/client/NAME/client.crt client.key client.pk8 client.pem.pk8 client.pfx root.crt
//!                                  (.pk8 = PKCS#8 DER for JDBC, .pem.pk8 = PKCS#8 PEM,
//!                                   .pfx = PKCS#12 for .NET, root.crt = a copy of ca.crt)
//! PKI_DIR/crl.pem                            once something was revoked (or `pki crl` ran)
//! PKI_DIR/index.json                         what was issued: serial, subject, SANs, dates, status
//! PKI_DIR/rollover.json                      a CA rollover: the phase reached (rollover.rs)
//! PKI_DIR/ca-next.crt ca-next.key            phase 1 until 2: the new CA, trusted, not signing yet
//! PKI_DIR/ca-link.crt                        phases 1-2: the new CA's key certified by the old CA
//! PKI_DIR/retired/ID/ca.crt ca.key           a CA replaced by a rollover (ID: 16 hex digits of
//!                                            its SHA-256), kept to sign its CRL
//! ```
//! `ca.crt` starts with the signing CA; during a rollover it holds the other CA after it, so every
//! copy of it (servers' and clients' `root.crt`) is the trust bundle (`trust.rs`). crl.pem then
//! holds a CRL per CA that still matters, the signing CA's first.
//! Directories are 0700, private keys 0600 from the moment they exist. Every change is written to
//! temporary files and renamed into place; when anything fails the directory is left as it was.
//! Private keys never appear in an outcome, an error or a log line.

pub mod bundle;
pub mod ca;
pub mod check;
pub mod crl;
pub mod csr;
pub mod export;
pub mod index;
pub mod issue;
pub mod key;
pub mod list;
pub mod pfx;
pub mod rollover;
pub mod store;
pub mod trust;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use ca::{ensure_ca, plan_ca, CaOutcome, CaPlan, CaSpec, DEFAULT_CA_DAYS};
pub use check::{check_server_files, CheckFailure, CheckReport, ServerCheck};
pub use crl::{
    ensure_crl, ensure_revoked, plan_crl, plan_revoked, revoke, CrlOutcome, CrlPlan, CrlSpec,
    RevocationReason, RevokeOutcome, RevokeSpec, DEFAULT_CRL_DAYS, DEFAULT_CRL_RENEW_BEFORE_DAYS,
};
pub use csr::{
    control_node_key, due_for_renewal, ensure_signed_csr, plan_signed_csr, read_csr, Csr, CsrSpec,
    SignPlan, SignedCert,
};
pub use export::{export, ExportOutcome, ExportSpec};
pub use issue::{
    ensure_cert, plan_cert, CertOutcome, CertPlan, CertSpec, San, DEFAULT_LEAF_DAYS,
    DEFAULT_RENEW_BEFORE_DAYS,
};
pub use key::KeyType;
pub use list::{list, CaInfo, CrlInfo, ListEntry, Listing};
pub use pfx::PfxPassword;

/// Result type of the PKI functions.
pub type Result<T> = std::result::Result<T, PkiError>;

/// The kind of a leaf certificate: it decides the directory, the file names and the EKU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertKind {
    /// A database server: `server/NAME/server.{crt,key}`, EKU serverAuth, SAN DNS/IP entries.
    Server,
    /// A database client: `client/NAME/client.{crt,key,pk8,pem.pk8,pfx}` and `root.crt`, EKU
    /// clientAuth, CN = database user.
    Client,
}

impl CertKind {
    /// `"server"` or `"client"`: the directory name and the file stem.
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Server => "server",
            CertKind::Client => "client",
        }
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the PKI. The messages say what to do about it.
///
/// [`PkiError::exit_code`] maps invalid input to 4 and environment or internal failures to 1.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("unknown key type {given:?}: valid key types are {}", key::KeyType::names().join(", "))]
    UnknownKeyType { given: String },

    #[error("invalid SAN {san:?}: {why}; give a DNS name (db1.example.com) or an IPv4/IPv6 address, optionally prefixed with DNS: or IP:")]
    InvalidSan { san: String, why: String },

    #[error("invalid certificate name {name:?}: {why}; use letters, digits, '.', '_' and '-' (it becomes a directory name)")]
    InvalidName { name: String, why: String },

    #[error("invalid common name {cn:?}: {why}")]
    InvalidCn { cn: String, why: String },

    #[error("invalid subject {subject:?}: {why}; expected the OpenSSL form \"/C=FR/O=Example/CN=Example CA\" with C, ST, L, O, OU, CN")]
    InvalidSubject { subject: String, why: String },

    #[error("{0}")]
    InvalidArgument(String),

    #[error("invalid certificate signing request: {why}")]
    BadCsr { why: String },

    #[error("unknown revocation reason {given:?}: valid reasons are {}", crl::RevocationReason::names().join(", "))]
    UnknownReason { given: String },

    #[error("no CA in {}: create one with `castellan pki init-ca --dir {} --cn NAME` (or import one with --import-cert/--import-key)", dir.display(), dir.display())]
    NoCa { dir: PathBuf },

    #[error("cannot use {}: {why}", path.display())]
    BadCaFile { path: PathBuf, why: String },

    #[error("the CA key {} does not match the CA certificate {}: give the private key this certificate was made for", key.display(), cert.display())]
    CaKeyMismatch { cert: PathBuf, key: PathBuf },

    #[error("{} is not a CA certificate ({why}): give a certificate with basicConstraints CA:TRUE and the keyCertSign key usage", path.display())]
    NotACa { path: PathBuf, why: String },

    #[error("the CA in {} differs from what was asked: {why}. castellan never replaces a CA by itself (every certificate it signed would stop working): change the request, or move {} away to start a new PKI", dir.display(), dir.display())]
    CaMismatch { dir: PathBuf, why: String },

    #[error("the CA in {} is external (ca.crt without ca.key), so castellan cannot sign with it: have that CA's owner issue the certificate, or import its key with `castellan pki init-ca --dir {} --import-cert CA.crt --import-key CA.key`", dir.display(), dir.display())]
    ExternalCa { dir: PathBuf },

    #[error("the CA certificate {} cannot sign CRLs (its key usage lacks cRLSign): re-create or re-import a CA that has it", path.display())]
    CaCannotSignCrl { path: PathBuf },

    #[error("{kind} certificate {name:?} was revoked (serial {serial}): a revoked name is never issued again; use another name (for example {name}-2)")]
    Revoked {
        kind: CertKind,
        name: String,
        serial: String,
    },

    #[error("{kind} certificate {name:?} is already revoked (serial {serial}, on {revoked_at})")]
    AlreadyRevoked {
        kind: CertKind,
        name: String,
        serial: String,
        revoked_at: String,
    },

    #[error("no certificate named {name:?} in {}: `castellan pki list --dir {}` shows the names", dir.display(), dir.display())]
    NotFound { dir: PathBuf, name: String },

    #[error("both a server and a client certificate are named {name:?}: say which one with --kind server|client")]
    Ambiguous { name: String },

    #[error("{} is damaged ({why}): restore it from a backup or version control", path.display())]
    BadIndex { path: PathBuf, why: String },

    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("internal error: {0} (this is a bug in castellan: please report it with the command you ran)")]
    Internal(String),
}

impl PkiError {
    /// The process exit code for this error (see DESIGN.md, "Exit codes"): 4 for invalid input,
    /// 1 for I/O and internal failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            PkiError::Io { .. } | PkiError::Internal(_) => 1,
            _ => 4,
        }
    }

    /// True when the error is the user's input (exit code 4): the PKI directory was not changed.
    pub fn is_invalid_input(&self) -> bool {
        self.exit_code() == 4
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        PkiError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Internal(format!("rcgen: {e}"))
    }
}

/// Lower-case hex SHA-256 of `bytes` (certificate fingerprints use the DER).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The current time, whole seconds (certificates carry seconds only).
pub(crate) fn now() -> Result<OffsetDateTime> {
    let ts = OffsetDateTime::now_utc().unix_timestamp();
    OffsetDateTime::from_unix_timestamp(ts).map_err(|e| PkiError::Internal(format!("clock: {e}")))
}

/// RFC 3339 form of a time, as stored in index.json and printed in JSON output.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The clock-skew margin a new certificate's notBefore is set back by, in seconds (one hour):
/// a host whose clock is behind the control node's by less than this already accepts a
/// certificate issued "now". `not_before_margin` (modules) and `--not-before-margin`
/// (`castellan pki`) change it; it applies when a certificate is issued, so a kept certificate
/// keeps its dates.
pub const DEFAULT_NOT_BEFORE_MARGIN_S: u32 = 3600;

/// The largest margin accepted: 7 days.
pub const MAX_NOT_BEFORE_MARGIN_S: u32 = 7 * 86_400;

/// Checks a notBefore margin (0 to [`MAX_NOT_BEFORE_MARGIN_S`] seconds).
pub fn validate_not_before_margin(secs: u32) -> Result<()> {
    if secs > MAX_NOT_BEFORE_MARGIN_S {
        return Err(PkiError::InvalidArgument(format!(
            "the notBefore margin must be between 0 and {MAX_NOT_BEFORE_MARGIN_S} seconds (7 days), not {secs}"
        )));
    }
    Ok(())
}

/// The notBefore of a certificate issued at `now`: `now` set back by `margin_s` seconds.
pub(crate) fn not_before(now: OffsetDateTime, margin_s: u32) -> OffsetDateTime {
    now - time::Duration::seconds(i64::from(margin_s))
}

/// Whole days from `now` to `t` (negative once `t` is past).
pub(crate) fn days_until(t: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let secs = (t - now).whole_seconds();
    secs.div_euclid(86_400)
}

/// Random positive serial number, 16 bytes (RFC 5280 allows up to 20).
pub(crate) fn random_serial() -> Result<Vec<u8>> {
    let mut serial = vec![0u8; 16];
    crate::entropy::fill(&mut serial).map_err(PkiError::Internal)?;
    // Positive and without a leading zero byte, so its DER INTEGER is exactly these 16 bytes.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    Ok(serial)
}

/// Serial number as lower-case hex without leading zero bytes (what index.json stores).
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let trimmed: &[u8] = match raw.iter().position(|b| *b != 0) {
        Some(i) => &raw[i..],
        None => &[0],
    };
    hex::encode(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_random_and_16_bytes() {
        let a = random_serial().unwrap();
        let b = random_serial().unwrap();
        assert_eq!(a.len(), 16);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
        assert_ne!(a, b);
        assert_eq!(serial_hex(&a).len(), 32);
        assert_eq!(serial_hex(&[0, 0, 0x12]), "12");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            PkiError::UnknownKeyType { given: "x".into() }.exit_code(),
            4
        );
        assert_eq!(PkiError::Internal("x".into()).exit_code(), 1);
        let msg = PkiError::UnknownKeyType {
            given: "ed25519".into(),
        }
        .to_string();
        assert!(
            msg.contains("ecdsa-p256") && msg.contains("rsa-4096"),
            "{msg}"
        );
    }

    /// notBefore of the PEM certificate at `path`, as seconds before now.
    fn backdated_by(path: &std::path::Path) -> i64 {
        let pem = std::fs::read(path).unwrap();
        let der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
        let (_, c) = x509_parser::parse_x509_certificate(&der).unwrap();
        now().unwrap().unix_timestamp() - c.validity().not_before.timestamp()
    }

    #[test]
    fn the_not_before_margin_is_the_one_asked_for_and_bounded() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("pki");
        let ca = ensure_ca(
            &dir,
            &CaSpec {
                cn: Some("Margin CA".into()),
                not_before_margin_s: 0,
                ..CaSpec::default()
            },
        )
        .unwrap();
        assert!((0..=5).contains(&backdated_by(&ca.cert_path)));
        let mut spec = CertSpec::server("db1", "db1.example.com", vec![]);
        let o = ensure_cert(&dir, &spec).unwrap();
        let d = backdated_by(&o.cert_path);
        assert!((3600..=3605).contains(&d), "default margin: {d} s");
        spec.name = "db2".into();
        spec.not_before_margin_s = 7200;
        let o = ensure_cert(&dir, &spec).unwrap();
        let d = backdated_by(&o.cert_path);
        assert!((7200..=7205).contains(&d), "7200 s asked: {d} s");
        spec.name = "db3".into();
        spec.not_before_margin_s = MAX_NOT_BEFORE_MARGIN_S + 1;
        let e = ensure_cert(&dir, &spec).unwrap_err();
        assert_eq!(e.exit_code(), 4, "{e}");
        assert!(!dir.join("server/db3").exists());
    }

    #[test]
    fn days_until_rounds_down() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        assert_eq!(days_until(now + time::Duration::hours(47), now), 1);
        assert_eq!(days_until(now - time::Duration::hours(1), now), -1);
    }
}

#[cfg(test)]
mod plan_tests;
