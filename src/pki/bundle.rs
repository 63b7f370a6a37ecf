//! The client bundle: what a client directory holds besides `client.crt` and `client.key`, made
//! from them and the CA certificate, so that every program finds its format in one folder:
//! `client.pk8` (PKCS#8 DER, JDBC), `client.pem.pk8` (PKCS#8 PEM), `client.pfx` (PKCS#12, .NET)
//! and `root.crt` (a copy of `ca.crt`).
//!
//! [`stale`] says which of them are missing or out of date (and why) without writing; [`write`]
//! writes the ones asked for into a transaction. A `client.pfx` that opens with the password and
//! holds the current certificate, key and CA is kept as it is (its salts are random).
use rcgen::KeyPair;

use super::key::{private_key_pem, private_key_pk8};
use super::pfx::{self, Check, PfxContent, PfxPassword};
use super::store::{read_opt, LeafFile, PkiDir, Txn};
use super::{CertKind, Result};

/// The files of a client directory made from the certificate, its key and the CA certificate.
pub(crate) const DERIVED: [LeafFile; 4] = [
    LeafFile::Pk8,
    LeafFile::PemPk8,
    LeafFile::Pfx,
    LeafFile::Root,
];

/// What the bundle of client `name` is made from.
pub(crate) struct Sources<'a> {
    pub name: &'a str,
    pub key: &'a KeyPair,
    /// The client certificate, DER.
    pub cert_der: &'a [u8],
    /// The CA certificate, DER (the chain in `client.pfx`).
    pub ca_der: &'a [u8],
    /// The bytes of `ca.crt` (`root.crt` is a copy).
    pub ca_file: &'a [u8],
    pub password: &'a PfxPassword,
}

/// A derived file that is missing or out of date, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stale {
    pub file: LeafFile,
    pub why: String,
}

fn name(file: LeafFile) -> String {
    file.file_name(CertKind::Client)
}

/// The derived files of `s.name` that are missing or differ from what [`write`] would write.
/// Reads only.
pub(crate) fn stale(pki: &PkiDir, s: &Sources<'_>) -> Result<Vec<Stale>> {
    let mut out = Vec::new();
    for file in DERIVED {
        let Some(path) = pki.leaf_file(CertKind::Client, s.name, file) else {
            continue;
        };
        let Some(have) = read_opt(&path)? else {
            out.push(Stale {
                file,
                why: format!("{} is missing", name(file)),
            });
            continue;
        };
        let why = match file {
            LeafFile::Pfx => {
                match pfx::check(&have, &content(s, &private_key_pk8(s.key)), s.password) {
                    Check::Holds => None,
                    Check::WrongPassword => {
                        Some("does not open with the given password".to_string())
                    }
                    Check::Differs => Some("does not hold the current certificate and key".into()),
                    Check::Unreadable => Some("is not a PKCS#12 file castellan can read".into()),
                }
            }
            LeafFile::Root => (have != s.ca_file).then(|| "differs from ca.crt".to_string()),
            _ => (have != contents(file, s)?)
                .then(|| format!("does not match {}", name(LeafFile::Key))),
        };
        if let Some(why) = why {
            out.push(Stale {
                file,
                why: format!("{} {why}", name(file)),
            });
        }
    }
    Ok(out)
}

fn content<'a>(s: &Sources<'a>, key_pk8: &'a [u8]) -> PfxContent<'a> {
    PfxContent {
        alias: s.name,
        key_pk8,
        cert_der: s.cert_der,
        ca_der: s.ca_der,
    }
}

/// The bytes of a derived file (a new `client.pfx` each time: random salts and IV).
fn contents(file: LeafFile, s: &Sources<'_>) -> Result<Vec<u8>> {
    Ok(match file {
        LeafFile::Pk8 => private_key_pk8(s.key),
        LeafFile::PemPk8 => private_key_pem(s.key).into_bytes(),
        LeafFile::Pfx => pfx::build(&content(s, &private_key_pk8(s.key)), s.password)?,
        LeafFile::Root => s.ca_file.to_vec(),
        LeafFile::Cert | LeafFile::Key => {
            return Err(super::PkiError::Internal(format!(
                "{} is not made by the client bundle",
                name(file)
            )))
        }
    })
}

/// Writes `files` (some of [`DERIVED`]) of `s.name` with their modes into `txn`; the client's
/// directory must exist.
pub(crate) fn write(
    pki: &PkiDir,
    s: &Sources<'_>,
    files: &[LeafFile],
    txn: &mut Txn,
) -> Result<()> {
    for &file in files {
        if let Some(path) = pki.leaf_file(CertKind::Client, s.name, file) {
            txn.write(&path, &contents(file, s)?, file.mode())?;
        }
    }
    Ok(())
}

/// One reason for several stale files: "client.pfx is missing; root.crt differs from ca.crt".
pub(crate) fn reason(stale: &[Stale]) -> String {
    stale
        .iter()
        .map(|s| s.why.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}
