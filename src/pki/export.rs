//! `castellan pki export`: the files of one certificate and the CA certificate (`root.crt`),
//! copied into a folder for a person who carries them by hand, with a `README.txt` that says
//! what each file is and which program reads it.
//!
//! Every file written is 0600, whatever it holds; a folder that does not exist is created 0700.
//! A file already there with other content is only replaced with `force`; the check covers every
//! file before anything is written, and the writes are all-or-nothing.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::index::{EntryStatus, Index, IndexEntry};
use super::store::{lock, read_opt, validate_name, LeafFile, PkiDir, Txn, PRIVATE_MODE};
use super::{now, CertKind, PkiError, Result};

/// What to export, and where.
#[derive(Clone, Debug)]
pub struct ExportSpec {
    pub name: String,
    /// Server or client; `None` when only one kind has that name.
    pub kind: Option<CertKind>,
    /// The folder the files go to.
    pub to: PathBuf,
    /// Replace files of the folder that differ.
    pub force: bool,
}

/// One file of an export.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedFile {
    pub path: PathBuf,
    /// False when the file was already there with this content and mode 0600.
    pub written: bool,
    /// What it is and which program reads it (its README.txt line).
    pub about: String,
}

/// What [`export`] did. Holds paths and descriptions, never key material.
#[derive(Clone, Debug, Serialize)]
pub struct ExportOutcome {
    pub changed: bool,
    pub kind: CertKind,
    pub name: String,
    pub to: PathBuf,
    /// The certificate's files, `root.crt`, then `README.txt`.
    pub files: Vec<ExportedFile>,
    pub warnings: Vec<String>,
}

/// The README line of a file: what it is, which program reads it.
fn about(file: LeafFile, kind: CertKind) -> String {
    let name = file.file_name(kind);
    let text = match (file, kind) {
        (LeafFile::Cert, CertKind::Client) => "the client certificate (PEM X.509, CN = the database user), for libpq/psql (sslcert) and pgjdbc (sslcert)",
        (LeafFile::Key, CertKind::Client) => "its private key (PKCS#8 PEM), for libpq/psql (sslkey); libpq refuses a key file that others can read",
        (LeafFile::Cert, CertKind::Server) => "the server certificate (PEM X.509), for PostgreSQL (ssl_cert_file)",
        (LeafFile::Key, CertKind::Server) => "its private key (PKCS#8 PEM), for PostgreSQL (ssl_key_file)",
        (LeafFile::Pk8, _) => "PKCS#8 DER private key, for JDBC (pgjdbc sslkey) and CAST Imaging's Java components",
        (LeafFile::PemPk8, _) => "PKCS#8 PEM private key (the same key as client.key), for programs that ask for a PEM PKCS#8 key file",
        (LeafFile::Pfx, _) => "PKCS#12 bundle of the certificate, its private key and root.crt (AES-256-CBC with PBKDF2-HMAC-SHA256, HMAC-SHA256 MAC), for .NET (X509Certificate2, Npgsql) and Windows; its password is the one given when it was issued (none by default: then this file's mode is all that protects the key)",
        (LeafFile::Root, _) => "the CA certificate (PEM X.509), for libpq/psql and pgjdbc (sslrootcert) and PostgreSQL (ssl_ca_file): it checks the other side's certificate",
    };
    format!("{name}: {text}")
}

fn readme(kind: CertKind, e: &IndexEntry, lines: &[String]) -> String {
    let mut out = format!(
        "{kind} certificate {:?} (CN={}, serial {}, valid until {}), from a castellan PKI.\n",
        e.name, e.cn, e.serial, e.not_after
    );
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(
        "Every file here is mode 0600: whoever can read the key files can pass for this certificate's CN.\n",
    );
    out
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Copies the files of `spec.name` and the CA certificate into `spec.to`, with a README.txt.
/// Unknown, ambiguous or revoked names, a missing certificate or key, and files of `spec.to` that
/// differ (without `force`) are errors (exit 4) and write nothing.
pub fn export(dir: &Path, spec: &ExportSpec) -> Result<ExportOutcome> {
    let pki = PkiDir::new(dir);
    validate_name(&spec.name)?;
    if !dir.is_dir() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    let index = Index::load(&pki)?;
    let kind = index.kind_of(dir, &spec.name, spec.kind)?;
    let entry = index
        .current(kind, &spec.name)
        .ok_or_else(|| PkiError::Internal("index entry vanished".into()))?;
    if entry.status == EntryStatus::Revoked {
        return Err(PkiError::InvalidArgument(format!(
            "{kind} certificate {:?} was revoked (serial {}): there is nothing valid to export; issue a certificate under another name",
            spec.name, entry.serial
        )));
    }
    let mut warnings = Vec::new();
    if entry.expired(now()?) {
        warnings.push(format!(
            "{kind} certificate {:?} expired on {}: `castellan pki issue` renews it",
            spec.name, entry.not_after
        ));
    }

    // What goes out: the leaf's files (root.crt from ca.crt), then README.txt.
    let mut out: Vec<(String, Vec<u8>, String)> = Vec::new();
    for (file, source) in pki.leaf_files(kind, &spec.name) {
        if file == LeafFile::Root {
            continue;
        }
        match read_opt(&source)? {
            Some(bytes) => out.push((file.file_name(kind), bytes, about(file, kind))),
            None if matches!(file, LeafFile::Cert | LeafFile::Key) => {
                return Err(PkiError::InvalidArgument(format!(
                    "{} is missing: `castellan pki issue --dir {} {kind} {}` writes it again",
                    source.display(),
                    dir.display(),
                    spec.name
                )))
            }
            None => warnings.push(format!(
                "{} is missing, so it is not exported: `castellan pki issue --dir {} {kind} {}` writes it",
                source.display(),
                dir.display(),
                spec.name
            )),
        }
    }
    let ca = read_opt(&pki.ca_cert())?.ok_or_else(|| PkiError::NoCa {
        dir: dir.to_path_buf(),
    })?;
    out.push(("root.crt".into(), ca, about(LeafFile::Root, kind)));
    let lines: Vec<String> = out.iter().map(|(_, _, a)| a.clone()).collect();
    out.push((
        "README.txt".into(),
        readme(kind, entry, &lines).into_bytes(),
        "README.txt: what each file is".into(),
    ));

    // Check every destination before writing any.
    match std::fs::metadata(&spec.to) {
        Ok(md) if !md.is_dir() => {
            return Err(PkiError::InvalidArgument(format!(
                "{} exists and is not a directory: give a folder to export to",
                spec.to.display()
            )))
        }
        Ok(md) if md.permissions().mode() & 0o077 != 0 => warnings.push(format!(
            "{} can be entered by other users (mode {:o}): the files are 0600, but a folder of mode 0700 keeps even their names private",
            spec.to.display(),
            md.permissions().mode() & 0o777
        )),
        _ => {}
    }
    let mut plan = Vec::new();
    let mut conflicts = Vec::new();
    for (name, bytes, about) in out {
        let path = spec.to.join(&name);
        let have = read_opt(&path)?;
        let same = have.as_deref() == Some(bytes.as_slice());
        let private = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o777 == PRIVATE_MODE);
        if have.is_some() && !same && !spec.force {
            conflicts.push(file_label(&path));
        }
        plan.push((path, bytes, about, !(same && private)));
    }
    if !conflicts.is_empty() {
        return Err(PkiError::InvalidArgument(format!(
            "{} already holds {} with other content: use --force to replace what is there, or export to another folder",
            spec.to.display(),
            conflicts.join(", ")
        )));
    }
    let mut txn = Txn::new();
    txn.create_dir_all(&spec.to)?;
    let mut files = Vec::new();
    for (path, bytes, about, write) in plan {
        if write {
            txn.write(&path, &bytes, PRIVATE_MODE)?;
        }
        files.push(ExportedFile {
            path,
            written: write,
            about,
        });
    }
    txn.commit();
    Ok(ExportOutcome {
        changed: files.iter().any(|f| f.written),
        kind,
        name: spec.name.clone(),
        to: spec.to.clone(),
        files,
        warnings,
    })
}
