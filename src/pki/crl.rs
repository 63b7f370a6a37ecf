//! Revocation and the CRL (`crl.pem`, signed by the CA, which has the cRLSign key usage).

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use super::ca::{check_days, load_ca, Ca};
use super::index::{CrlRecord, EntryStatus, Index, OtherCrl};
use super::store::validate_name;
use super::store::{lock, read_opt, PkiDir, Txn, PUBLIC_MODE};
use super::trust::{self, Role};
use super::{now, rfc3339, sha256_hex, CertKind, PkiError, Result};

/// Default CRL lifetime (nextUpdate - thisUpdate), in days. PostgreSQL rejects every client once
/// the CRL it was given is past its nextUpdate: run `pki crl` (or the `pki_crl` module) before.
pub const DEFAULT_CRL_DAYS: u32 = 365;
/// Default window before nextUpdate in which `ensure_crl` writes a new CRL.
pub const DEFAULT_CRL_RENEW_BEFORE_DAYS: u32 = 30;

/// RFC 5280 revocation reasons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum RevocationReason {
    #[default]
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
    CertificateHold,
    PrivilegeWithdrawn,
    AaCompromise,
}

impl RevocationReason {
    const ALL: [RevocationReason; 9] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// RFC 5280 / OpenSSL name.
    pub fn name(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
        }
    }

    /// The valid names.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|r| r.name()).collect()
    }

    /// Parses a reason name, case-insensitively (`keyCompromise`, `key-compromise`...).
    pub fn parse(s: &str) -> Result<Self> {
        let norm: String = s
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|r| r.name().to_ascii_lowercase() == norm)
            .ok_or_else(|| PkiError::UnknownReason {
                given: s.to_string(),
            })
    }

    fn to_rcgen(self) -> Option<rcgen::RevocationReason> {
        use rcgen::RevocationReason as R;
        Some(match self {
            RevocationReason::Unspecified => return None,
            RevocationReason::KeyCompromise => R::KeyCompromise,
            RevocationReason::CaCompromise => R::CaCompromise,
            RevocationReason::AffiliationChanged => R::AffiliationChanged,
            RevocationReason::Superseded => R::Superseded,
            RevocationReason::CessationOfOperation => R::CessationOfOperation,
            RevocationReason::CertificateHold => R::CertificateHold,
            RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => R::AaCompromise,
        })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeSpec {
    pub name: String,
    /// Needed only when both a server and a client certificate have this name.
    pub kind: Option<CertKind>,
    pub reason: RevocationReason,
    /// Lifetime of the CRL written, in days.
    pub crl_days: u32,
}

impl RevokeSpec {
    pub fn new(name: impl Into<String>) -> Self {
        RevokeSpec {
            name: name.into(),
            kind: None,
            reason: RevocationReason::Unspecified,
            crl_days: DEFAULT_CRL_DAYS,
        }
    }
}

/// What `revoke` did.
#[derive(Clone, Debug, Serialize)]
pub struct RevokeOutcome {
    pub changed: bool,
    pub kind: CertKind,
    pub name: String,
    pub serial: String,
    /// Every serial this call revoked: the current certificate of the name and its earlier,
    /// unexpired ones (empty when nothing changed).
    pub serials: Vec<String>,
    pub reason: String,
    pub crl_path: PathBuf,
    pub crl_number: u64,
    pub crl_next_update: String,
    /// How many certificates the CRL lists.
    pub revoked_count: usize,
}

/// How the CRL should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSpec {
    pub days: u32,
    pub renew_before_days: u32,
}

impl Default for CrlSpec {
    fn default() -> Self {
        CrlSpec {
            days: DEFAULT_CRL_DAYS,
            renew_before_days: DEFAULT_CRL_RENEW_BEFORE_DAYS,
        }
    }
}

/// What `ensure_crl` found or did.
#[derive(Clone, Debug, Serialize)]
pub struct CrlOutcome {
    pub changed: bool,
    pub reason: Option<String>,
    pub crl_path: PathBuf,
    pub number: u64,
    pub next_update: String,
    pub revoked_serials: Vec<String>,
}

/// The serials of the revoked certificates the CA whose certificate has SHA-256 `ca` signed,
/// sorted (`signing`: the signing CA, see [`super::index::IndexEntry::issued_by`]).
fn revoked_of(index: &Index, ca: &str, signing: &str) -> Vec<String> {
    let mut v: Vec<String> = index
        .revoked()
        .filter(|e| e.issued_by(ca, signing))
        .map(|e| e.serial.clone())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every serial crl.pem lists (all its CRLs), sorted.
fn all_serials(rec: &CrlRecord) -> Vec<String> {
    let mut v: Vec<String> = rec
        .serials
        .iter()
        .chain(rec.others.iter().flat_map(|o| o.serials.iter()))
        .cloned()
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The other CAs whose CRL crl.pem holds after the signing CA's (a CA rollover, trust.rs): the
/// next CA, and each retired CA that has not expired and is still in ca.crt or signed a
/// certificate that has not expired (a CA's CRL is kept until its last certificate expires).
fn crl_cas(pki: &PkiDir, index: &Index, signing: &str, now: OffsetDateTime) -> Result<Vec<Ca>> {
    let in_bundle: Vec<String> = trust::bundle(pki)?.into_iter().map(|c| c.sha256).collect();
    let mut out = Vec::new();
    for o in trust::others(pki)? {
        let sha = o.ca.cert.sha256.clone();
        let keep = match o.role {
            Role::Next => true,
            Role::Retired => {
                o.ca.cert.not_after > now
                    && (in_bundle.contains(&sha)
                        || index
                            .certs
                            .iter()
                            .any(|e| e.issued_by(&sha, signing) && !e.expired(now)))
            }
        };
        if keep && sha != signing {
            out.push(o.ca);
        }
    }
    Ok(out)
}

/// One CA's CRL (PEM): the revoked certificates it signed, numbered `number`.
fn sign_crl(
    pki: &PkiDir,
    ca: &Ca,
    index: &Index,
    signing: &str,
    number: u64,
    (now, next_update): (OffsetDateTime, OffsetDateTime),
) -> Result<String> {
    if !ca.cert.crl_sign {
        return Err(PkiError::CaCannotSignCrl {
            path: ca.cert_path.clone(),
        });
    }
    // The CRL's authority key identifier must be the CA's subject key identifier.
    let key_id = trust::subject_key_id(&ca.cert.der);
    let mut revoked = Vec::new();
    for e in index
        .revoked()
        .filter(|e| e.issued_by(&ca.cert.sha256, signing))
    {
        let serial = hex::decode(&e.serial).map_err(|_| PkiError::BadIndex {
            path: pki.index(),
            why: format!("serial {:?} is not hex", e.serial),
        })?;
        let when = e
            .revoked_at
            .as_deref()
            .and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .unwrap_or(now);
        let reason = e
            .revocation_reason
            .as_deref()
            .and_then(|r| RevocationReason::parse(r).ok())
            .unwrap_or_default();
        revoked.push(RevokedCertParams {
            serial_number: SerialNumber::from_slice(&serial),
            revocation_time: when,
            reason_code: reason.to_rcgen(),
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: revoked,
        key_identifier_method: match key_id {
            Some(id) => KeyIdMethod::PreSpecified(id),
            None => KeyIdMethod::Sha256,
        },
    };
    let issuer = ca.issuer()?;
    Ok(params.signed_by(&issuer)?.pem()?)
}

/// Signs a new CRL listing every revoked entry the CA signed, followed, during and after a CA
/// rollover, by a CRL of each other CA that still matters ([`crl_cas`]); writes crl.pem and
/// records it in the index (the caller saves the index and commits).
pub(crate) fn write_crl(
    pki: &PkiDir,
    ca: &Ca,
    index: &mut Index,
    days: u32,
    now: OffsetDateTime,
    txn: &mut Txn,
) -> Result<CrlRecord> {
    if !ca.cert.crl_sign {
        return Err(PkiError::CaCannotSignCrl {
            path: pki.ca_cert(),
        });
    }
    let signing = ca.cert.sha256.clone();
    let next_update = now + Duration::days(i64::from(days));
    let others = crl_cas(pki, index, &signing, now)?;
    index.crl_number += 1;
    let number = index.crl_number;
    let mut pem = sign_crl(pki, ca, index, &signing, number, (now, next_update))?;
    let mut other_records = Vec::new();
    for o in &others {
        index.crl_number += 1;
        let n = index.crl_number;
        pem.push_str(&sign_crl(pki, o, index, &signing, n, (now, next_update))?);
        other_records.push(OtherCrl {
            ca_sha256: o.cert.sha256.clone(),
            next_update: rfc3339(next_update),
            serials: revoked_of(index, &o.cert.sha256, &signing),
        });
    }
    txn.write(&pki.crl(), pem.as_bytes(), PUBLIC_MODE)?;
    let record = CrlRecord {
        number,
        this_update: rfc3339(now),
        next_update: rfc3339(next_update),
        sha256: sha256_hex(pem.as_bytes()),
        ca_sha256: signing.clone(),
        serials: revoked_of(index, &signing, &signing),
        others: other_records,
    };
    index.crl = Some(record.clone());
    Ok(record)
}

/// Writes a new crl.pem after [`Index::supersede`] revoked certificates, when a CRL was
/// published before (otherwise the first CRL written will list them), with the lifetime the
/// last one had. Returns a warning instead when the CA cannot sign CRLs.
pub(crate) fn republish_crl(
    pki: &PkiDir,
    ca: &Ca,
    index: &mut Index,
    now: OffsetDateTime,
    txn: &mut Txn,
) -> Result<Option<String>> {
    let Some(last) = index.crl.clone() else {
        return Ok(None);
    };
    if !ca.cert.crl_sign {
        return Ok(Some(format!(
            "{} cannot be updated (the CA lacks cRLSign): it does not list the superseded certificate(s)",
            pki.crl().display()
        )));
    }
    write_crl(pki, ca, index, last_days(&last), now, txn)?;
    Ok(None)
}

/// During a CA rollover (rollover.rs): writes crl.pem again when it was published and no longer
/// covers the CAs it must (or is otherwise stale), with the lifetime the last one had. Returns
/// why it was written.
pub(crate) fn refresh_crl(
    pki: &PkiDir,
    ca: &Ca,
    index: &mut Index,
    now: OffsetDateTime,
    txn: &mut Txn,
) -> Result<Option<String>> {
    let Some(last) = index.crl.clone() else {
        return Ok(None);
    };
    let spec = CrlSpec {
        days: last_days(&last),
        renew_before_days: DEFAULT_CRL_RENEW_BEFORE_DAYS,
    };
    let spec = if check_crl_spec(&spec).is_ok() {
        spec
    } else {
        CrlSpec::default()
    };
    let Some(why) = crl_reason(pki, ca, index, &spec, now)? else {
        return Ok(None);
    };
    write_crl(pki, ca, index, spec.days, now, txn)?;
    Ok(Some(why))
}

/// Why [`refresh_crl`] would write crl.pem, without writing anything.
pub(crate) fn crl_stale(
    pki: &PkiDir,
    ca: &Ca,
    index: &Index,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let Some(last) = &index.crl else {
        return Ok(None);
    };
    let spec = CrlSpec {
        days: last_days(last),
        renew_before_days: DEFAULT_CRL_RENEW_BEFORE_DAYS,
    };
    let spec = if check_crl_spec(&spec).is_ok() {
        spec
    } else {
        CrlSpec::default()
    };
    crl_reason(pki, ca, index, &spec, now)
}

/// The lifetime of a CRL written before, in days (the default when unreadable).
fn last_days(last: &CrlRecord) -> u32 {
    let parse = |t: &str| OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339);
    let days = match (parse(&last.this_update), parse(&last.next_update)) {
        (Ok(a), Ok(b)) => u32::try_from((b - a).whole_days()).unwrap_or(DEFAULT_CRL_DAYS),
        _ => DEFAULT_CRL_DAYS,
    };
    if check_days(days, "--crl-days").is_ok() {
        days
    } else {
        DEFAULT_CRL_DAYS
    }
}

/// The positions of the entries a revocation of the name whose current entry is at `pos` must
/// revoke: the current one unless it is revoked already, and every earlier certificate of the
/// name that is neither revoked nor expired (superseded certificates stay usable until then).
fn revocation_targets(index: &Index, pos: usize, now: OffsetDateTime) -> Vec<usize> {
    let current = &index.certs[pos];
    index
        .certs
        .iter()
        .enumerate()
        .filter(|(i, e)| {
            e.kind == current.kind
                && e.name == current.name
                && e.status != EntryStatus::Revoked
                && (*i == pos || !e.expired(now))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The kind and index position of the entry `spec` names (the current one, valid or revoked).
fn locate(dir: &Path, index: &Index, spec: &RevokeSpec) -> Result<(CertKind, usize)> {
    let kind = index.kind_of(dir, &spec.name, spec.kind)?;
    let pos = index
        .certs
        .iter()
        .rposition(|e| e.kind == kind && e.name == spec.name && e.status != EntryStatus::Superseded)
        .ok_or_else(|| PkiError::Internal("index entry vanished".into()))?;
    Ok((kind, pos))
}

/// What [`ensure_revoked`] would do, found without writing anything (check mode): `Some(why)`
/// when it would revoke, `None` when the name is already revoked. Fails where it would fail
/// (unknown or ambiguous name, CA that cannot sign CRLs). A directory without a CA yet is not an
/// error here: in check mode the tasks before it did not create anything.
pub fn plan_revoked(dir: &Path, spec: &RevokeSpec) -> Result<Option<String>> {
    let pki = PkiDir::new(dir);
    validate_name(&spec.name)?;
    check_days(spec.crl_days, "--crl-days")?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Ok(Some(format!(
            "revoke {:?} (there is no CA in {} yet)",
            spec.name,
            dir.display()
        )));
    }
    let _lock = lock(dir)?;
    let ca = load_ca(&pki)?;
    let index = Index::load(&pki)?;
    let (kind, pos) = locate(dir, &index, spec)?;
    let targets = revocation_targets(&index, pos, now()?);
    if targets.is_empty() {
        return Ok(None);
    }
    if !ca.cert.crl_sign {
        return Err(PkiError::CaCannotSignCrl {
            path: pki.ca_cert(),
        });
    }
    let serials: Vec<&str> = targets
        .iter()
        .map(|i| index.certs[*i].serial.as_str())
        .collect();
    Ok(Some(format!(
        "revoke {kind} certificate {:?} (serial {}, {})",
        spec.name,
        serials.join(", "),
        spec.reason
    )))
}

fn revoke_inner(dir: &Path, spec: &RevokeSpec, strict: bool) -> Result<RevokeOutcome> {
    let pki = PkiDir::new(dir);
    validate_name(&spec.name)?;
    check_days(spec.crl_days, "--crl-days")?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    let ca = load_ca(&pki)?;
    let mut index = Index::load(&pki)?;
    let now = now()?;
    let (kind, pos) = locate(dir, &index, spec)?;
    let entry = index.certs[pos].clone();
    let targets = revocation_targets(&index, pos, now);
    if targets.is_empty() {
        if strict {
            return Err(PkiError::AlreadyRevoked {
                kind,
                name: spec.name.clone(),
                serial: entry.serial,
                revoked_at: entry.revoked_at.unwrap_or_default(),
            });
        }
        let crl = index.crl.clone();
        return Ok(RevokeOutcome {
            changed: false,
            kind,
            name: spec.name.clone(),
            serial: entry.serial,
            serials: Vec::new(),
            reason: entry.revocation_reason.unwrap_or_default(),
            crl_path: pki.crl(),
            crl_number: crl.as_ref().map(|c| c.number).unwrap_or(0),
            crl_next_update: crl.map(|c| c.next_update).unwrap_or_default(),
            revoked_count: index.crl.as_ref().map_or(0, |c| all_serials(c).len()),
        });
    }
    let mut serials = Vec::new();
    for i in targets {
        let e = &mut index.certs[i];
        e.revoke(spec.reason.name(), now);
        serials.push(e.serial.clone());
    }
    let mut txn = Txn::new();
    let record = write_crl(&pki, &ca, &mut index, spec.crl_days, now, &mut txn)?;
    index.save(&pki, &mut txn)?;
    txn.commit();
    Ok(RevokeOutcome {
        changed: true,
        kind,
        name: spec.name.clone(),
        serial: entry.serial,
        serials,
        reason: spec.reason.name().to_string(),
        crl_path: pki.crl(),
        crl_number: record.number,
        revoked_count: all_serials(&record).len(),
        crl_next_update: record.next_update,
    })
}

/// Revokes the current certificate of a name, and every earlier certificate of that name that
/// has not expired, and writes a new crl.pem. Revoking a name that is
/// already revoked is an error ([`PkiError::AlreadyRevoked`]); see [`ensure_revoked`].
pub fn revoke(dir: &Path, spec: &RevokeSpec) -> Result<RevokeOutcome> {
    revoke_inner(dir, spec, true)
}

/// Like [`revoke`], but a name that is already revoked is fine (`changed: false`): for playbooks.
pub fn ensure_revoked(dir: &Path, spec: &RevokeSpec) -> Result<RevokeOutcome> {
    revoke_inner(dir, spec, false)
}

fn check_crl_spec(spec: &CrlSpec) -> Result<()> {
    check_days(spec.days, "--days")?;
    if spec.renew_before_days >= spec.days {
        return Err(PkiError::InvalidArgument(format!(
            "--renew-before ({} days) must be shorter than --days ({})",
            spec.renew_before_days, spec.days
        )));
    }
    Ok(())
}

/// Why crl.pem must be written again, if it must.
fn crl_reason(
    pki: &PkiDir,
    ca: &Ca,
    index: &Index,
    spec: &CrlSpec,
    now: OffsetDateTime,
) -> Result<Option<String>> {
    let signing = ca.cert.sha256.as_str();
    let want = revoked_of(index, signing, signing);
    let others = crl_cas(pki, index, signing, now)?;
    let current = read_opt(&pki.crl())?;
    let soon = |t: &str| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .ok()
            .is_none_or(|n| n - now <= Duration::days(i64::from(spec.renew_before_days)))
    };
    Ok(match (&index.crl, &current) {
        (_, None) => Some("crl.pem is missing".to_string()),
        (None, Some(_)) => Some("crl.pem is not recorded in index.json".to_string()),
        (Some(rec), Some(bytes)) => {
            let next = OffsetDateTime::parse(
                &rec.next_update,
                &time::format_description::well_known::Rfc3339,
            )
            .ok();
            if sha256_hex(bytes) != rec.sha256 {
                Some("crl.pem was changed outside castellan".to_string())
            } else if rec.ca_sha256 != ca.cert.sha256 {
                Some("crl.pem was signed by another CA".to_string())
            } else if rec
                .others
                .iter()
                .map(|o| o.ca_sha256.as_str())
                .collect::<Vec<_>>()
                != others
                    .iter()
                    .map(|o| o.cert.sha256.as_str())
                    .collect::<Vec<_>>()
            {
                Some("the CAs crl.pem must cover changed (CA rollover)".to_string())
            } else if rec.serials != want
                || rec
                    .others
                    .iter()
                    .any(|o| o.serials != revoked_of(index, &o.ca_sha256, signing))
            {
                Some("the revoked certificates changed".to_string())
            } else if rec.others.iter().any(|o| soon(&o.next_update)) {
                Some(format!(
                    "the next update of a CRL in crl.pem is within {} days",
                    spec.renew_before_days
                ))
            } else if next
                .is_none_or(|n| n - now <= Duration::days(i64::from(spec.renew_before_days)))
            {
                Some(format!(
                    "crl.pem's next update ({}) is within {} days",
                    rec.next_update, spec.renew_before_days
                ))
            } else {
                None
            }
        }
    })
}

fn unchanged(pki: &PkiDir, index: &Index) -> CrlOutcome {
    let rec = index.crl.clone().unwrap_or_else(|| CrlRecord {
        number: 0,
        this_update: String::new(),
        next_update: String::new(),
        sha256: String::new(),
        ca_sha256: String::new(),
        serials: Vec::new(),
        others: Vec::new(),
    });
    let revoked_serials = all_serials(&rec);
    CrlOutcome {
        changed: false,
        reason: None,
        crl_path: pki.crl(),
        number: rec.number,
        next_update: rec.next_update,
        revoked_serials,
    }
}

/// What [`ensure_crl`] would do, found without writing anything (check mode).
#[derive(Clone, Debug, Serialize)]
pub struct CrlPlan {
    /// Why `ensure_crl` would write crl.pem (the reason it would report); `None`: it would not.
    pub reason: Option<String>,
    /// The CRL as it is now, when `ensure_crl` would keep it.
    pub current: Option<CrlOutcome>,
}

/// Says what [`ensure_crl`] would do with the same arguments, and fails where it would fail, but
/// writes nothing. A directory without a CA yet is not an error here (check mode).
pub fn plan_crl(dir: &Path, spec: &CrlSpec) -> Result<CrlPlan> {
    let pki = PkiDir::new(dir);
    check_crl_spec(spec)?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Ok(CrlPlan {
            reason: Some(format!(
                "crl.pem is missing (there is no CA in {} yet)",
                dir.display()
            )),
            current: None,
        });
    }
    let _lock = lock(dir)?;
    let ca = load_ca(&pki)?;
    let index = Index::load(&pki)?;
    let reason = crl_reason(&pki, &ca, &index, spec, now()?)?;
    if reason.is_some() && !ca.cert.crl_sign {
        return Err(PkiError::CaCannotSignCrl {
            path: pki.ca_cert(),
        });
    }
    Ok(CrlPlan {
        current: reason.is_none().then(|| unchanged(&pki, &index)),
        reason,
    })
}

/// Makes sure crl.pem exists, lists exactly the revoked certificates, is signed by the current
/// CA and is not within `renew_before_days` of its nextUpdate; writes a new one otherwise.
pub fn ensure_crl(dir: &Path, spec: &CrlSpec) -> Result<CrlOutcome> {
    let pki = PkiDir::new(dir);
    check_crl_spec(spec)?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    let ca = load_ca(&pki)?;
    let mut index = Index::load(&pki)?;
    let now = now()?;
    match crl_reason(&pki, &ca, &index, spec, now)? {
        None => Ok(unchanged(&pki, &index)),
        Some(why) => {
            let mut txn = Txn::new();
            let rec = write_crl(&pki, &ca, &mut index, spec.days, now, &mut txn)?;
            index.version = 1;
            index.save(&pki, &mut txn)?;
            txn.commit();
            Ok(CrlOutcome {
                changed: true,
                reason: Some(why),
                crl_path: pki.crl(),
                number: rec.number,
                next_update: rec.next_update.clone(),
                revoked_serials: all_serials(&rec),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse() {
        assert_eq!(
            RevocationReason::parse("keyCompromise").unwrap(),
            RevocationReason::KeyCompromise
        );
        assert_eq!(
            RevocationReason::parse("key-compromise").unwrap(),
            RevocationReason::KeyCompromise
        );
        assert_eq!(
            RevocationReason::parse("CACOMPROMISE").unwrap(),
            RevocationReason::CaCompromise
        );
        let e = RevocationReason::parse("lost").unwrap_err().to_string();
        assert!(e.contains("superseded"), "{e}");
        assert!(RevocationReason::Unspecified.to_rcgen().is_none());
    }
}
