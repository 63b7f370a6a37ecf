//! `castellan pki list`: the CA, the CRL and the current certificate of every name, with days
//! left, status and the paths of its files, built from `index.json`, the certificates and the
//! directory; and its table rendering.
use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::index::{parse_time, EntryStatus, Index, IndexEntry};
use super::rollover::RolloverState;
use super::store::{read_opt, PkiDir};
use super::{days_until, now, rfc3339, CertKind, PkiError, Result};

/// Days before expiry from which `list` reports a certificate as `expiring`.
pub const EXPIRING_DAYS: i64 = 30;

/// The CA, as `list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CaInfo {
    pub subject: String,
    pub key_type: String,
    pub serial: String,
    pub not_after: String,
    pub days_left: i64,
    pub status: String,
    pub sha256: String,
    pub external: bool,
    /// `ca.crt`, and `ca.key` unless the CA is external.
    pub files: Vec<String>,
}

/// The CRL, as `list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CrlInfo {
    pub number: u64,
    pub next_update: String,
    pub days_left: i64,
    pub revoked: usize,
}

/// One certificate, as `list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ListEntry {
    pub kind: CertKind,
    pub name: String,
    pub cn: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    /// valid, expiring (within 30 days), expired or revoked.
    pub status: String,
    pub sha256: String,
    /// The paths of its files that exist (certificate, key, and for a client `client.pk8`,
    /// `client.pem.pk8`, `client.pfx`, `root.crt`).
    pub files: Vec<String>,
}

/// The content of a PKI directory: its CA, its CRL and the current certificate of every name.
#[derive(Clone, Debug, Serialize)]
pub struct Listing {
    pub dir: String,
    pub ca: Option<CaInfo>,
    pub crl: Option<CrlInfo>,
    pub certs: Vec<ListEntry>,
    /// The CA rollover in progress, or the last one (`rollover.json`).
    pub rollover: Option<RolloverState>,
}

/// The paths among `paths` that exist, as text.
fn existing(paths: impl IntoIterator<Item = std::path::PathBuf>) -> Vec<String> {
    paths
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .map(|p| p.display().to_string())
        .collect()
}

fn status_for(days_left: i64, revoked: bool) -> &'static str {
    if revoked {
        "revoked"
    } else if days_left < 0 {
        "expired"
    } else if days_left < EXPIRING_DAYS {
        "expiring"
    } else {
        "valid"
    }
}

/// Lists the CA, the CRL and the current certificate of every name, with days left and status.
/// Reads only; takes no lock.
pub fn list(dir: &Path) -> Result<Listing> {
    let pki = PkiDir::new(dir);
    if !dir.is_dir() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let now = now()?;
    let index = Index::load(&pki)?;
    let ca = match read_opt(&pki.ca_cert())? {
        None => None,
        Some(_) => {
            let ca = super::ca::load_ca_cert(&pki)?;
            let days_left = days_until(ca.not_after, now);
            Some(CaInfo {
                subject: ca.subject.clone(),
                key_type: ca.key_type.clone(),
                serial: ca.serial.clone(),
                not_after: rfc3339(ca.not_after),
                days_left,
                status: status_for(days_left, false).to_string(),
                sha256: ca.sha256.clone(),
                external: !pki.ca_key().exists(),
                files: existing([pki.ca_cert(), pki.ca_key()]),
            })
        }
    };
    let crl = index.crl.as_ref().map(|c| {
        let days_left = parse_time(&c.next_update)
            .map(|t| days_until(t, now))
            .unwrap_or(0);
        CrlInfo {
            number: c.number,
            next_update: c.next_update.clone(),
            days_left,
            revoked: c.serials.len(),
        }
    });
    let mut latest: BTreeMap<(CertKind, String), &IndexEntry> = BTreeMap::new();
    for e in index
        .certs
        .iter()
        .filter(|e| e.status != EntryStatus::Superseded)
    {
        latest.insert((e.kind, e.name.clone()), e);
    }
    let certs = latest
        .into_values()
        .map(|e| {
            let days_left = parse_time(&e.not_after)
                .map(|t| days_until(t, now))
                .unwrap_or(0);
            ListEntry {
                kind: e.kind,
                name: e.name.clone(),
                cn: e.cn.clone(),
                sans: e.sans.clone(),
                key_type: e.key_type.clone(),
                serial: e.serial.clone(),
                not_before: e.not_before.clone(),
                not_after: e.not_after.clone(),
                days_left,
                status: status_for(days_left, e.status == EntryStatus::Revoked).to_string(),
                sha256: e.sha256.clone(),
                files: existing(pki.leaf_files(e.kind, &e.name).into_iter().map(|(_, p)| p)),
            }
        })
        .collect();
    Ok(Listing {
        dir: dir.display().to_string(),
        ca,
        crl,
        certs,
        rollover: super::rollover::state(dir)?,
    })
}

/// The listing as a text table.
pub fn render_table(l: &Listing) -> String {
    let mut rows: Vec<[String; 8]> = vec![[
        "KIND".into(),
        "NAME".into(),
        "CN".into(),
        "KEY".into(),
        "SERIAL".into(),
        "NOT AFTER".into(),
        "DAYS".into(),
        "STATUS".into(),
    ]];
    let short = |s: &str| s.chars().take(12).collect::<String>();
    if let Some(ca) = &l.ca {
        rows.push([
            if ca.external { "ca (external)" } else { "ca" }.into(),
            "-".into(),
            ca.subject.clone(),
            ca.key_type.clone(),
            short(&ca.serial),
            ca.not_after.clone(),
            ca.days_left.to_string(),
            ca.status.clone(),
        ]);
    }
    for c in &l.certs {
        rows.push([
            c.kind.to_string(),
            c.name.clone(),
            c.cn.clone(),
            c.key_type.clone(),
            short(&c.serial),
            c.not_after.clone(),
            c.days_left.to_string(),
            c.status.clone(),
        ]);
    }
    let mut out = aligned(&rows);
    // The files, one per line, in a second table.
    let mut files: Vec<[String; 3]> = vec![["KIND".into(), "NAME".into(), "FILE".into()]];
    if let Some(ca) = &l.ca {
        for f in &ca.files {
            files.push(["ca".into(), "-".into(), f.clone()]);
        }
    }
    for c in &l.certs {
        for f in &c.files {
            files.push([c.kind.to_string(), c.name.clone(), f.clone()]);
        }
    }
    if l.ca.is_none() {
        out.push_str(&format!("(no CA in {})\n", l.dir));
    }
    if let Some(crl) = &l.crl {
        out.push_str(&format!(
            "CRL #{}: {} revoked, next update {} ({} days)\n",
            crl.number, crl.revoked, crl.next_update, crl.days_left
        ));
    }
    if let Some(r) = &l.rollover {
        out.push_str(&format!(
            "CA rollover: phase {} of {} {} ({})\n",
            r.phase,
            super::rollover::PHASES,
            if r.done {
                "complete"
            } else {
                "started, not complete"
            },
            r.updated_at
        ));
    }
    if files.len() > 1 {
        out.push('\n');
        out.push_str(&aligned(&files));
    }
    out
}

/// Rows as columns separated by two spaces, each as wide as its widest cell.
fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_thresholds() {
        assert_eq!(status_for(100, false), "valid");
        assert_eq!(status_for(29, false), "expiring");
        assert_eq!(status_for(-1, false), "expired");
        assert_eq!(status_for(100, true), "revoked");
    }
}
