//! Certificates for keys that never leave their host: a certificate signing request made on the
//! host (module `pki_csr`, `openssl req`) is checked here and signed by the CA. The request's
//! subject is kept, the SANs, key usages, lifetime and serial are the CA's choice. The PKI
//! directory keeps the certificate (`server/NAME/server.crt`) and its index entry, never a key:
//! a private key the directory held for that name (an earlier certificate castellan made the
//! key for) is removed when the new certificate is recorded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SerialNumber,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use super::ca::{
    check_days, common_name, decode_cert, load_ca, name_attrs, parse_der, pem_encode,
    render_subject, validate_cn, Ca,
};
use super::crl::republish_crl;
use super::index::{EntryStatus, Index, IndexEntry};
use super::issue::{cert_sans, list_sans, time_of, San};
use super::key::{parse_private_key_pem, KeyType};
use super::store::{lock, read_opt, validate_name, PkiDir, Txn, PUBLIC_MODE};
use super::trust::server_chain_pem;
use super::{
    days_until, now, random_serial, rfc3339, serial_hex, sha256_hex, CertKind, PkiError, Result,
};

/// A certificate signing request, read and checked: its signature verifies with the key it
/// carries (the requester holds that key), it has a CN, and its key is one castellan signs.
#[derive(Clone, Debug)]
pub struct Csr {
    /// OpenSSL-style subject (`/C=FR/O=Example/CN=db1.example.com`), as requested.
    pub subject: String,
    pub cn: String,
    pub key_type: KeyType,
    /// The subjectPublicKey bits (what a certificate for this key carries).
    pub public_key: Vec<u8>,
    params: CertificateSigningRequestParams,
}

fn bad(why: impl Into<String>) -> PkiError {
    PkiError::BadCsr { why: why.into() }
}

/// Reads and checks a PEM certificate signing request (`BEGIN CERTIFICATE REQUEST`).
pub fn read_csr(pem: &str) -> Result<Csr> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| {
        bad("not a PEM certificate signing request (no BEGIN CERTIFICATE REQUEST block)")
    })?;
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(bad(format!(
            "the PEM block is {:?}, not a CERTIFICATE REQUEST",
            block.label
        )));
    }
    let der = block.contents;
    let (_, req) = X509CertificationRequest::from_der(&der)
        .map_err(|e| bad(format!("not a readable PKCS#10 request ({e})")))?;
    req.verify_signature().map_err(|_| {
        bad("its signature does not verify with the key it carries (it was not made with that key)")
    })?;
    let info = &req.certification_request_info;
    let cn = common_name(&info.subject).ok_or_else(|| bad("its subject has no CN"))?;
    validate_cn(&cn)?;
    let key_type = KeyType::of_spki(&info.subject_pki).ok_or_else(|| {
        bad(format!(
            "its key is {}: castellan signs {} keys",
            KeyType::describe_spki(&info.subject_pki),
            KeyType::names().join(", ")
        ))
    })?;
    let params =
        CertificateSigningRequestParams::from_der(&der.as_slice().into()).map_err(|e| {
            bad(match e {
                rcgen::Error::UnsupportedExtension => {
                    "it requests extensions castellan does not sign \
                 (only subjectAltName, keyUsage, extendedKeyUsage and basicConstraints are read)"
                        .to_string()
                }
                other => format!("rcgen cannot read it ({other})"),
            })
        })?;
    Ok(Csr {
        subject: render_subject(&name_attrs(&info.subject)),
        cn,
        key_type,
        public_key: info.subject_pki.subject_public_key.data.to_vec(),
        params,
    })
}

/// What to sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrSpec {
    pub kind: CertKind,
    /// File-system name: `server/NAME/server.crt`.
    pub name: String,
    /// The PEM request made on the host.
    pub csr_pem: String,
    /// SANs added to the certificate (a server without any gets its CN).
    pub sans: Vec<String>,
    /// The key type the request must carry (`None`: any type castellan signs).
    pub key_type: Option<KeyType>,
    pub days: u32,
    pub renew_before_days: u32,
    /// Seconds notBefore is set back from the time of signing (clock skew between hosts).
    pub not_before_margin_s: u32,
}

/// What [`ensure_signed_csr`] found or did. Contains no key material (there is none).
#[derive(Clone, Debug, Serialize)]
pub struct SignedCert {
    pub changed: bool,
    pub reason: Option<String>,
    pub kind: CertKind,
    pub name: String,
    pub subject: String,
    pub cn: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub cert_path: PathBuf,
    pub ca_path: PathBuf,
    /// The certificate, PEM (public).
    pub cert_pem: String,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub sha256: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    pub revoked_superseded: Vec<String>,
    /// Private key files of this name the PKI directory held, removed by this call.
    pub removed_keys: Vec<PathBuf>,
    pub warnings: Vec<String>,
}

/// What [`ensure_signed_csr`] would do (check mode, and the plan of `pki_csr`).
#[derive(Clone, Debug, Serialize)]
pub struct SignPlan {
    /// Why it would sign; `None` when the certificate in the PKI directory is kept.
    pub reason: Option<String>,
    /// The certificate as it is, when it is kept.
    pub current: Option<SignedCert>,
}

fn wanted_sans(spec: &CsrSpec, csr: &Csr) -> Result<Vec<San>> {
    let mut sans: Vec<San> = Vec::new();
    for s in &spec.sans {
        let san = San::parse(s)?;
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    if sans.is_empty() && spec.kind == CertKind::Server {
        sans.push(San::parse(&csr.cn).map_err(|_| {
            PkiError::InvalidArgument(format!(
                "server certificate {:?} needs at least one SAN (DNS name or IP address): the CN {:?} of the request is not a host name",
                spec.name, csr.cn
            ))
        })?);
    }
    Ok(sans)
}

/// Checks the spec and reads the request: (request, SANs).
fn validate(spec: &CsrSpec) -> Result<(Csr, Vec<San>)> {
    validate_name(&spec.name)?;
    check_days(spec.days, "days")?;
    super::validate_not_before_margin(spec.not_before_margin_s)?;
    if spec.renew_before_days >= spec.days {
        return Err(PkiError::InvalidArgument(format!(
            "renew_before ({} days) must be shorter than days ({}): otherwise every run would re-issue the certificate",
            spec.renew_before_days, spec.days
        )));
    }
    let csr = read_csr(&spec.csr_pem)?;
    if let Some(want) = spec.key_type {
        if csr.key_type != want {
            return Err(bad(format!(
                "its key is {}, not the {want} asked for: make a new key on the host",
                csr.key_type
            )));
        }
    }
    let sans = wanted_sans(spec, &csr)?;
    Ok((csr, sans))
}

/// The files holding a private key of `kind`/`name` the directory has (`server.key`, a
/// client's `client.key`, `.pk8`, `.pem.pk8`, `.pfx`).
fn key_files(pki: &PkiDir, kind: CertKind, name: &str) -> Vec<PathBuf> {
    pki.leaf_files(kind, name)
        .into_iter()
        .filter(|(f, p)| f.is_private() && std::fs::symlink_metadata(p).is_ok())
        .map(|(_, p)| p)
        .collect()
}

/// The path of the private key the PKI directory holds for `kind`/`name` when it is the key of
/// `public_key` (the subjectPublicKey bits of a request): that key was made on the control node,
/// so a host presenting it does not hold a key of its own.
pub fn control_node_key(
    dir: &Path,
    kind: CertKind,
    name: &str,
    public_key: &[u8],
) -> Result<Option<PathBuf>> {
    let pki = PkiDir::new(dir);
    let path = pki.leaf_key(kind, name);
    let Some(bytes) = read_opt(&path)? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes).unwrap_or_default();
    Ok(match parse_private_key_pem(&text) {
        Ok(key) if key.public_key_raw() == public_key => Some(path),
        _ => None,
    })
}

/// When `cert` (PEM or DER) is the certificate of the key `public_key` and it has expired or
/// expires within `renew_before_days`: why (its renewal makes a new key). `None` otherwise, also
/// for bytes that are not a certificate.
pub fn due_for_renewal(
    cert: &[u8],
    public_key: &[u8],
    renew_before_days: u32,
) -> Result<Option<String>> {
    let Ok(der) = decode_cert(cert) else {
        return Ok(None);
    };
    let Some(x509) = parse_der(&der) else {
        return Ok(None);
    };
    if x509.public_key().subject_public_key.data.as_ref() != public_key {
        return Ok(None);
    }
    let now = now()?;
    let not_after = time_of(&x509.validity().not_after)?;
    Ok(if not_after <= now {
        Some(format!("expired on {}", rfc3339(not_after)))
    } else if not_after - now <= Duration::days(i64::from(renew_before_days)) {
        Some(format!(
            "expires on {} (in {} days), within renew_before ({renew_before_days} days)",
            rfc3339(not_after),
            days_until(not_after, now)
        ))
    } else {
        None
    })
}

enum Decision {
    Keep(Vec<u8>),
    Issue(String),
}

fn decide(
    pki: &PkiDir,
    spec: &CsrSpec,
    csr: &Csr,
    sans: &[San],
    index: &Index,
    ca: &Ca,
    now: OffsetDateTime,
) -> Result<Decision> {
    let cert_path = pki.leaf_cert(spec.kind, &spec.name);
    let Some(bytes) = read_opt(&cert_path)? else {
        return Ok(Decision::Issue("new certificate".into()));
    };
    let Ok(der) = decode_cert(&bytes) else {
        return Ok(Decision::Issue(format!(
            "{} is unreadable",
            cert_path.display()
        )));
    };
    let Some(x509) = parse_der(&der) else {
        return Ok(Decision::Issue(format!(
            "{} is unreadable",
            cert_path.display()
        )));
    };
    if let Some(e) = index.revoked_by_sha256(&sha256_hex(&der)) {
        return Ok(Decision::Issue(format!(
            "the certificate was revoked (serial {})",
            e.serial
        )));
    }
    if x509.public_key().subject_public_key.data.as_ref() != csr.public_key.as_slice() {
        return Ok(Decision::Issue(
            "the host has a new key (the certificate is for another one)".into(),
        ));
    }
    let ca_x509 = parse_der(&ca.cert.der)
        .ok_or_else(|| PkiError::Internal("cannot re-read ca.crt".into()))?;
    if x509.issuer().as_raw() != ca_x509.subject().as_raw()
        || x509.verify_signature(Some(ca_x509.public_key())).is_err()
    {
        return Ok(Decision::Issue(format!(
            "it was issued by another CA ({}), not by this PKI's CA",
            x509.issuer()
        )));
    }
    let subject = render_subject(&name_attrs(x509.subject()));
    if subject != csr.subject {
        return Ok(Decision::Issue(format!(
            "subject changed from {subject} to {}",
            csr.subject
        )));
    }
    let have = cert_sans(&x509);
    let have_set: BTreeSet<&San> = have.iter().collect();
    let want_set: BTreeSet<&San> = sans.iter().collect();
    if have_set != want_set {
        return Ok(Decision::Issue(format!(
            "SANs changed from {} to {}",
            list_sans(&have),
            list_sans(sans)
        )));
    }
    let eku_ok = match x509.extended_key_usage() {
        Ok(Some(eku)) => match spec.kind {
            CertKind::Server => eku.value.server_auth,
            CertKind::Client => eku.value.client_auth,
        },
        _ => false,
    };
    if !eku_ok {
        return Ok(Decision::Issue(format!(
            "its extended key usage lacks {}",
            match spec.kind {
                CertKind::Server => "serverAuth",
                CertKind::Client => "clientAuth",
            }
        )));
    }
    let not_after = time_of(&x509.validity().not_after)?;
    if not_after <= now {
        return Ok(Decision::Issue(format!(
            "it expired on {}",
            rfc3339(not_after)
        )));
    }
    if not_after - now <= Duration::days(i64::from(spec.renew_before_days)) {
        return Ok(Decision::Issue(format!(
            "it expires on {} (in {} days), within renew_before ({} days)",
            rfc3339(not_after),
            days_until(not_after, now),
            spec.renew_before_days
        )));
    }
    if let Some(k) = key_files(pki, spec.kind, &spec.name).first() {
        return Ok(Decision::Issue(format!(
            "the PKI directory holds a private key for it ({}): the key of a host-made request stays on its host",
            k.display()
        )));
    }
    Ok(Decision::Keep(der))
}

fn entry_for(spec: &CsrSpec, der: &[u8], ca: &Ca) -> Result<IndexEntry> {
    let x509 =
        parse_der(der).ok_or_else(|| PkiError::Internal("cannot re-read a certificate".into()))?;
    Ok(IndexEntry {
        kind: spec.kind,
        name: spec.name.clone(),
        serial: serial_hex(x509.raw_serial()),
        subject: render_subject(&name_attrs(x509.subject())),
        cn: common_name(x509.subject()).unwrap_or_default(),
        sans: cert_sans(&x509).iter().map(San::to_string).collect(),
        key_type: KeyType::describe_spki(x509.public_key()),
        not_before: rfc3339(time_of(&x509.validity().not_before)?),
        not_after: rfc3339(time_of(&x509.validity().not_after)?),
        sha256: sha256_hex(der),
        status: EntryStatus::Valid,
        revoked_at: None,
        revocation_reason: None,
        ca: Some(ca.cert.sha256.clone()),
    })
}

fn outcome(
    pki: &PkiDir,
    spec: &CsrSpec,
    ca: &Ca,
    der: &[u8],
    changed: bool,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<SignedCert> {
    let e = entry_for(spec, der, ca)?;
    let x509 =
        parse_der(der).ok_or_else(|| PkiError::Internal("cannot re-read a certificate".into()))?;
    let not_after = time_of(&x509.validity().not_after)?;
    let mut warnings = Vec::new();
    if not_after > ca.cert.not_after {
        warnings.push(format!(
            "the certificate outlives its CA, which expires on {}: clients will reject it from then on",
            rfc3339(ca.cert.not_after)
        ));
    }
    Ok(SignedCert {
        changed,
        reason,
        kind: spec.kind,
        name: spec.name.clone(),
        subject: e.subject,
        cn: e.cn,
        sans: e.sans,
        key_type: e.key_type,
        cert_path: pki.leaf_cert(spec.kind, &spec.name),
        ca_path: pki.ca_cert(),
        // A server's certificate goes out with the CA rollover's link certificate while one
        // applies (trust.rs).
        cert_pem: match spec.kind {
            CertKind::Server => server_chain_pem(pki, &ca.cert, der)?,
            CertKind::Client => pem_of(der),
        },
        sha256: e.sha256,
        serial: e.serial,
        not_before: e.not_before,
        not_after: e.not_after,
        days_left: days_until(not_after, now),
        revoked_superseded: Vec::new(),
        removed_keys: Vec::new(),
        warnings,
    })
}

fn pem_of(der: &[u8]) -> String {
    pem_encode("CERTIFICATE", der)
}

/// Signs the request: its subject and key, the SANs, key usages and lifetime of `spec`.
fn sign(spec: &CsrSpec, csr: &Csr, sans: &[San], ca: &Ca, now: OffsetDateTime) -> Result<Vec<u8>> {
    let mut params = CertificateParams::default();
    params.distinguished_name = csr.params.params.distinguished_name.clone();
    params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<Vec<_>>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if csr.key_type.is_rsa() {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = vec![match spec.kind {
        CertKind::Server => ExtendedKeyUsagePurpose::ServerAuth,
        CertKind::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    params.not_before = super::not_before(now, spec.not_before_margin_s);
    params.not_after = now + Duration::days(i64::from(spec.days));
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    let req = CertificateSigningRequestParams {
        params,
        public_key: csr.params.public_key.clone(),
    };
    let issuer = ca.issuer()?;
    Ok(req.signed_by(&issuer)?.der().to_vec())
}

fn no_revoked_name(index: &Index, spec: &CsrSpec) -> Result<()> {
    match index.current(spec.kind, &spec.name) {
        Some(e) if e.status == EntryStatus::Revoked => Err(PkiError::Revoked {
            kind: spec.kind,
            name: spec.name.clone(),
            serial: e.serial.clone(),
        }),
        _ => Ok(()),
    }
}

/// Says what [`ensure_signed_csr`] would do, failing where it would fail, writing nothing. A
/// directory without a CA yet is not an error here (check mode: the CA task did not run).
pub fn plan_signed_csr(dir: &Path, spec: &CsrSpec) -> Result<SignPlan> {
    let pki = PkiDir::new(dir);
    let (csr, sans) = validate(spec)?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Ok(SignPlan {
            reason: Some(format!(
                "new certificate (there is no CA in {} yet)",
                dir.display()
            )),
            current: None,
        });
    }
    let _lock = lock(dir)?;
    let ca = load_ca(&pki)?;
    let index = Index::load(&pki)?;
    no_revoked_name(&index, spec)?;
    let now = now()?;
    Ok(match decide(&pki, spec, &csr, &sans, &index, &ca, now)? {
        Decision::Keep(der) => SignPlan {
            reason: None,
            current: Some(outcome(&pki, spec, &ca, &der, false, None, now)?),
        },
        Decision::Issue(why) => SignPlan {
            reason: Some(why),
            current: None,
        },
    })
}

/// Makes sure the PKI directory holds a certificate for the request's key, subject and the SANs
/// of `spec`, not about to expire, signed by its CA; signs one otherwise (the earlier ones of the
/// name are revoked as superseded, as for [`super::ensure_cert`]). Removes any private key the
/// directory held for the name. An invalid request changes nothing.
pub fn ensure_signed_csr(dir: &Path, spec: &CsrSpec) -> Result<SignedCert> {
    let pki = PkiDir::new(dir);
    let (csr, sans) = validate(spec)?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    let ca = load_ca(&pki)?;
    let mut index = Index::load(&pki)?;
    no_revoked_name(&index, spec)?;
    let now = now()?;
    let mut txn = Txn::new();
    let (der, changed, reason) = match decide(&pki, spec, &csr, &sans, &index, &ca, now)? {
        Decision::Keep(der) => (der, false, None),
        Decision::Issue(why) => {
            let der = sign(spec, &csr, &sans, &ca, now)?;
            let pem = match spec.kind {
                CertKind::Server => server_chain_pem(&pki, &ca.cert, &der)?,
                CertKind::Client => pem_of(&der),
            };
            txn.create_dir_all(&pki.leaf_dir(spec.kind, &spec.name))?;
            txn.write(
                &pki.leaf_cert(spec.kind, &spec.name),
                pem.as_bytes(),
                PUBLIC_MODE,
            )?;
            (der, true, Some(why))
        }
    };
    let removed_keys = key_files(&pki, spec.kind, &spec.name);
    for k in &removed_keys {
        txn.remove(k)?;
    }
    let mut revoked_superseded = Vec::new();
    let mut warnings = Vec::new();
    let sha = sha256_hex(&der);
    if index
        .current(spec.kind, &spec.name)
        .map(|e| e.sha256.as_str())
        != Some(sha.as_str())
    {
        let entry = entry_for(spec, &der, &ca)?;
        index.version = 1;
        revoked_superseded = index.supersede(spec.kind, &spec.name, now, &ca.cert.sha256);
        index.certs.push(entry);
        if !revoked_superseded.is_empty() {
            warnings.extend(republish_crl(&pki, &ca, &mut index, now, &mut txn)?);
        }
        index.save(&pki, &mut txn)?;
    }
    txn.commit();
    let mut o = outcome(&pki, spec, &ca, &der, changed, reason, now)?;
    o.revoked_superseded = revoked_superseded;
    o.removed_keys = removed_keys;
    o.warnings.extend(warnings);
    Ok(o)
}

/// True when `key_pem` is the private key of the request (tests, and callers holding both).
pub fn csr_matches_key(csr: &Csr, key_pem: &str) -> bool {
    parse_private_key_pem(key_pem).is_ok_and(|k| k.public_key_raw() == csr.public_key.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::key::key_matches_spki;
    use crate::pki::{ensure_ca, ensure_cert, CaSpec, CertSpec};

    fn request(key: &rcgen::KeyPair, subject: &str) -> String {
        let mut params = CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        for (oid, v) in crate::pki::ca::parse_subject(subject).unwrap() {
            let ty = match oid.as_str() {
                "2.5.4.10" => rcgen::DnType::OrganizationName,
                "2.5.4.6" => rcgen::DnType::CountryName,
                _ => rcgen::DnType::CommonName,
            };
            dn.push(ty, v);
        }
        params.distinguished_name = dn;
        params.serialize_request(key).unwrap().pem().unwrap()
    }

    fn pki_dir() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        ensure_ca(
            t.path(),
            &CaSpec {
                cn: Some("csr test CA".into()),
                ..CaSpec::default()
            },
        )
        .unwrap();
        t
    }

    fn spec(pem: String) -> CsrSpec {
        CsrSpec {
            kind: CertKind::Server,
            name: "db1".into(),
            csr_pem: pem,
            sans: vec!["db1.example.com".into(), "10.0.0.1".into()],
            key_type: Some(KeyType::EcdsaP256),
            days: 100,
            renew_before_days: 10,
            not_before_margin_s: crate::pki::DEFAULT_NOT_BEFORE_MARGIN_S,
        }
    }

    #[test]
    fn signs_keeping_the_subject_adding_the_sans_and_keeps_no_key() {
        let t = pki_dir();
        let key = KeyType::EcdsaP256.generate().unwrap();
        let pem = request(&key, "/C=FR/O=Example/CN=db1.example.com");
        let o = ensure_signed_csr(t.path(), &spec(pem.clone())).unwrap();
        assert!(o.changed);
        assert_eq!(o.subject, "/C=FR/O=Example/CN=db1.example.com");
        assert_eq!(o.sans, vec!["DNS:db1.example.com", "IP:10.0.0.1"]);
        let der = decode_cert(&std::fs::read(&o.cert_path).unwrap()).unwrap();
        let x509 = parse_der(&der).unwrap();
        assert!(key_matches_spki(&key, x509.public_key()));
        assert!(
            x509.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        let pki = PkiDir::new(t.path());
        assert!(!pki.leaf_key(CertKind::Server, "db1").exists());
        assert_eq!(o.days_left, 100);
        // Again with a new request from the same key: kept, nothing written.
        let again = ensure_signed_csr(
            t.path(),
            &spec(request(&key, "/C=FR/O=Example/CN=db1.example.com")),
        )
        .unwrap();
        assert!(!again.changed, "{:?}", again.reason);
        assert_eq!(again.sha256, o.sha256);
        let plan = plan_signed_csr(t.path(), &spec(pem)).unwrap();
        assert!(plan.reason.is_none());
        // A new key: re-issued, the old one revoked as superseded.
        let key2 = KeyType::EcdsaP256.generate().unwrap();
        let plan = plan_signed_csr(t.path(), &spec(request(&key2, "/CN=db1.example.com"))).unwrap();
        assert!(plan.reason.unwrap().contains("new key"));
        let o2 = ensure_signed_csr(t.path(), &spec(request(&key2, "/CN=db1.example.com"))).unwrap();
        assert!(o2.changed);
        assert_eq!(o2.revoked_superseded, vec![o.serial]);
    }

    #[test]
    fn bad_requests_are_refused_with_the_reason() {
        let t = pki_dir();
        let key = KeyType::EcdsaP256.generate().unwrap();
        let good = request(&key, "/CN=db1.example.com");
        // Wrong key type.
        let mut s = spec(good.clone());
        s.key_type = Some(KeyType::Rsa2048);
        let e = ensure_signed_csr(t.path(), &s).unwrap_err().to_string();
        assert!(e.contains("ecdsa-p256, not the rsa-2048"), "{e}");
        // A tampered request: the signature no longer verifies.
        let (_, block) = x509_parser::pem::parse_x509_pem(good.as_bytes()).unwrap();
        let mut der = block.contents.clone();
        let n = der.len();
        der[n - 5] ^= 0x55;
        let tampered = pem_encode("CERTIFICATE REQUEST", &der);
        let e = ensure_signed_csr(t.path(), &spec(tampered))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not verify") || e.contains("not a readable"),
            "{e}"
        );
        // Not a request at all.
        let e = read_csr("hello").unwrap_err().to_string();
        assert!(e.contains("not a PEM certificate signing request"), "{e}");
        // No CN.
        let e = read_csr(&request(&key, "/O=Example"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no CN"), "{e}");
        assert!(!PkiDir::new(t.path())
            .leaf_dir(CertKind::Server, "db1")
            .exists());
    }

    #[test]
    fn a_key_the_control_node_made_is_found_and_removed() {
        let t = pki_dir();
        ensure_cert(
            t.path(),
            &CertSpec::server("db1", "db1.example.com", vec!["db1.example.com".into()]),
        )
        .unwrap();
        let pki = PkiDir::new(t.path());
        let key_text = std::fs::read_to_string(pki.leaf_key(CertKind::Server, "db1")).unwrap();
        let key = parse_private_key_pem(&key_text).unwrap();
        let csr = read_csr(&request(&key, "/CN=db1.example.com")).unwrap();
        assert!(csr_matches_key(&csr, &key_text));
        assert_eq!(
            control_node_key(t.path(), CertKind::Server, "db1", &csr.public_key).unwrap(),
            Some(pki.leaf_key(CertKind::Server, "db1"))
        );
        let host_key = KeyType::EcdsaP256.generate().unwrap();
        let host_csr = request(&host_key, "/CN=db1.example.com");
        let parsed = read_csr(&host_csr).unwrap();
        assert_eq!(
            control_node_key(t.path(), CertKind::Server, "db1", &parsed.public_key).unwrap(),
            None
        );
        let o = ensure_signed_csr(t.path(), &spec(host_csr)).unwrap();
        assert_eq!(o.removed_keys, vec![pki.leaf_key(CertKind::Server, "db1")]);
        assert!(!pki.leaf_key(CertKind::Server, "db1").exists());
    }
}
