//! `index.json`: what was issued and revoked (the expiry listing built from it: `list.rs`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::store::{read_opt, PkiDir, Txn, PUBLIC_MODE};
use super::{rfc3339, CertKind, PkiError, Result};

/// The stored status of an issued certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    /// The current certificate of its name.
    Valid,
    /// Replaced by a newer certificate of the same name (not revoked).
    Superseded,
    /// Revoked: listed in crl.pem.
    Revoked,
}

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub kind: CertKind,
    pub name: String,
    pub serial: String,
    pub subject: String,
    pub cn: String,
    #[serde(default)]
    pub sans: Vec<String>,
    pub key_type: String,
    pub not_before: String,
    pub not_after: String,
    pub sha256: String,
    pub status: EntryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    /// SHA-256 of the certificate of the CA that signed it. Absent in entries written before CA
    /// rollovers existed: those were signed by the CA that was signing then (a rollover's switch
    /// to the new CA records it in them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// What index.json records about the CA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRecord {
    pub subject: String,
    pub key_type: String,
    pub not_after: String,
    pub sha256: String,
    /// True for an imported CA certificate without its key.
    #[serde(default)]
    pub external: bool,
}

/// What index.json records about the last CRL written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlRecord {
    pub number: u64,
    pub this_update: String,
    pub next_update: String,
    /// SHA-256 of crl.pem as written, to notice a replaced file.
    pub sha256: String,
    /// SHA-256 of the CA certificate that signed it.
    pub ca_sha256: String,
    /// The serials it lists, sorted.
    pub serials: Vec<String>,
    /// During and after a CA rollover, crl.pem also holds a CRL of each other CA that still
    /// matters (the next CA, or a retired one until its last certificate expires), after the
    /// signing CA's: one record each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<OtherCrl>,
}

/// The CRL of another CA than the signing one, in crl.pem (see [`CrlRecord::others`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtherCrl {
    /// SHA-256 of that CA's certificate.
    pub ca_sha256: String,
    pub next_update: String,
    /// The serials it lists, sorted.
    pub serials: Vec<String>,
}

/// The whole index.json.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaRecord>,
    /// The last CRL number used (CRL numbers increase with every CRL written).
    #[serde(default)]
    pub crl_number: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<CrlRecord>,
    #[serde(default)]
    pub certs: Vec<IndexEntry>,
}

impl Index {
    /// Loads index.json; an absent file is an empty index.
    pub fn load(dir: &PkiDir) -> Result<Index> {
        let path = dir.index();
        match read_opt(&path)? {
            None => Ok(Index {
                version: 1,
                ..Index::default()
            }),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| PkiError::BadIndex {
                path: path.clone(),
                why: e.to_string(),
            }),
        }
    }

    /// Writes index.json as part of `txn`.
    pub(crate) fn save(&self, dir: &PkiDir, txn: &mut Txn) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| PkiError::Internal(format!("serializing index.json: {e}")))?;
        text.push('\n');
        txn.write(&dir.index(), text.as_bytes(), PUBLIC_MODE)
    }

    /// The current (latest, not superseded) entry of `kind`/`name`, if any.
    pub fn current(&self, kind: CertKind, name: &str) -> Option<&IndexEntry> {
        self.certs
            .iter()
            .rev()
            .find(|e| e.kind == kind && e.name == name && e.status != EntryStatus::Superseded)
    }

    /// The kind of the current certificate named `name`: `kind` when given, else the one kind
    /// that has such a name. Fails when no certificate has that name, or both kinds do.
    pub fn kind_of(
        &self,
        dir: &std::path::Path,
        name: &str,
        kind: Option<CertKind>,
    ) -> Result<CertKind> {
        let kinds: Vec<CertKind> = match kind {
            Some(k) => vec![k],
            None => vec![CertKind::Server, CertKind::Client],
        };
        let found: Vec<CertKind> = kinds
            .into_iter()
            .filter(|k| self.current(*k, name).is_some())
            .collect();
        match found.as_slice() {
            [] => Err(PkiError::NotFound {
                dir: dir.to_path_buf(),
                name: name.to_string(),
            }),
            [k] => Ok(*k),
            _ => Err(PkiError::Ambiguous {
                name: name.to_string(),
            }),
        }
    }

    /// The revoked entries (what the CRL lists).
    pub fn revoked(&self) -> impl Iterator<Item = &IndexEntry> {
        self.certs
            .iter()
            .filter(|e| e.status == EntryStatus::Revoked)
    }

    /// Retires every earlier certificate of `kind`/`name` before a new one signed by the CA
    /// `signing` (SHA-256 of its certificate) is recorded: the ones that have not expired yet are
    /// revoked with reason `superseded` (so the next CRL lists them: a replaced certificate must
    /// not stay usable for the rest of its life), the expired ones are only marked superseded.
    /// A certificate of another CA (replaced because a CA rollover retires its CA) is only marked
    /// superseded: it stays valid while clients may still trust nothing else, and stops being
    /// trusted when the rollover's phase 3 takes its CA out of every bundle. Returns the serials
    /// revoked.
    pub fn supersede(
        &mut self,
        kind: CertKind,
        name: &str,
        now: OffsetDateTime,
        signing: &str,
    ) -> Vec<String> {
        let mut revoked = Vec::new();
        for e in self.certs.iter_mut() {
            if e.kind != kind || e.name != name || e.status == EntryStatus::Revoked {
                continue;
            }
            if e.expired(now) || !e.issued_by(signing, signing) {
                e.status = EntryStatus::Superseded;
            } else {
                e.revoke(SUPERSEDED, now);
                revoked.push(e.serial.clone());
            }
        }
        revoked
    }

    /// The revoked entry recording the certificate whose DER has this SHA-256, if any.
    pub fn revoked_by_sha256(&self, sha256: &str) -> Option<&IndexEntry> {
        self.revoked().find(|e| e.sha256 == sha256)
    }
}

/// The revocation reason recorded for a certificate replaced by a new one (RFC 5280 name).
pub(crate) const SUPERSEDED: &str = "superseded";

impl IndexEntry {
    /// True when the CA whose certificate has SHA-256 `ca` signed it; `signing` is the CA that
    /// signs now (it signed the entries that do not say, see [`IndexEntry::ca`]).
    pub fn issued_by(&self, ca: &str, signing: &str) -> bool {
        match &self.ca {
            Some(c) => c == ca,
            None => ca == signing,
        }
    }

    /// True once the certificate's notAfter is past. An unreadable date counts as not expired
    /// (revoking a certificate too many is safe, keeping one valid is not).
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        parse_time(&self.not_after).is_some_and(|t| t <= now)
    }

    /// Marks the entry revoked at `now` for `reason` (an RFC 5280 reason name).
    pub(crate) fn revoke(&mut self, reason: &str, now: OffsetDateTime) {
        self.status = EntryStatus::Revoked;
        self.revoked_at = Some(rfc3339(now));
        self.revocation_reason = Some(reason.to_string());
    }
}

/// An RFC 3339 time as `index.json` stores it.
pub(super) fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_tracks_current() {
        let e = IndexEntry {
            kind: CertKind::Server,
            name: "db1".into(),
            serial: "01".into(),
            subject: "CN=db1".into(),
            cn: "db1".into(),
            sans: vec!["DNS:db1".into()],
            key_type: "ecdsa-p256".into(),
            not_before: "2025-01-01T00:00:00Z".into(),
            not_after: "2027-01-01T00:00:00Z".into(),
            sha256: "00".into(),
            status: EntryStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            ca: None,
        };
        let mut idx = Index {
            version: 1,
            ..Index::default()
        };
        idx.certs.push(e.clone());
        let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        assert_eq!(
            idx.supersede(CertKind::Server, "db1", now, "ca1"),
            vec!["01"]
        );
        assert_eq!(idx.certs[0].status, EntryStatus::Revoked);
        assert_eq!(
            idx.certs[0].revocation_reason.as_deref(),
            Some("superseded")
        );
        idx.certs.push(IndexEntry {
            serial: "02".into(),
            ..e.clone()
        });
        assert_eq!(idx.current(CertKind::Server, "db1").unwrap().serial, "02");
        assert_eq!(idx.revoked_by_sha256("00").unwrap().serial, "01");
        // An expired certificate needs no CRL entry: only marked superseded.
        let later = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        assert!(idx
            .supersede(CertKind::Server, "db1", later, "ca1")
            .is_empty());
        assert_eq!(idx.certs[1].status, EntryStatus::Superseded);
        idx.certs.push(IndexEntry {
            serial: "03".into(),
            ..e.clone()
        });
        assert!(idx.current(CertKind::Client, "db1").is_none());
        // A certificate of another CA (a rollover replaced it) is superseded, not revoked.
        idx.certs.push(IndexEntry {
            name: "db9".into(),
            serial: "09".into(),
            ca: Some("old".into()),
            ..e.clone()
        });
        assert!(idx
            .supersede(CertKind::Server, "db9", now, "new")
            .is_empty());
        let db9 = idx.certs.iter().find(|c| c.name == "db9").unwrap();
        assert_eq!(db9.status, EntryStatus::Superseded);
        assert!(db9.issued_by("old", "new") && !db9.issued_by("new", "new"));
        let text = serde_json::to_string(&idx).unwrap();
        let back: Index = serde_json::from_str(&text).unwrap();
        assert_eq!(back, idx);
    }
}
