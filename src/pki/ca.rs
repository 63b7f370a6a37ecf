//! The certificate authority: create, import, load, and check that its key matches.

use std::path::{Path, PathBuf};

use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

use super::index::{CaRecord, Index};
use super::key::{key_matches_spki, parse_private_key_pem, private_key_pem, KeyType};
use super::store::{lock, read_opt, PkiDir, Txn, PRIVATE_MODE, PUBLIC_MODE};
use super::{days_until, now, random_serial, rfc3339, serial_hex, sha256_hex, PkiError, Result};

/// Default CA lifetime in days.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// Longest lifetime accepted, in days (100 years).
pub const MAX_DAYS: u32 = 36_500;

/// What the CA should be.
#[derive(Clone, Debug)]
pub struct CaSpec {
    /// Common name of a new CA; when the CA exists, it must have this CN.
    pub cn: Option<String>,
    /// Full subject, OpenSSL style (`/C=FR/O=Example/CN=Example CA`); `cn` may be left out then.
    pub subject: Option<String>,
    /// Key type of a new CA (default ecdsa-p256); when the CA exists, it must have this type.
    pub key_type: Option<KeyType>,
    /// Lifetime of a new CA in days.
    pub days: u32,
    /// Import this CA certificate (PEM or DER) instead of creating one.
    pub import_cert: Option<PathBuf>,
    /// The private key of `import_cert` (PEM: PKCS#8, SEC1 or PKCS#1). Without it the CA is
    /// "external": castellan can verify with it but not issue.
    pub import_key: Option<PathBuf>,
    /// Seconds a new CA's notBefore is set back from its creation (clock skew between hosts).
    pub not_before_margin_s: u32,
}

impl Default for CaSpec {
    fn default() -> Self {
        CaSpec {
            cn: None,
            subject: None,
            key_type: None,
            days: DEFAULT_CA_DAYS,
            import_cert: None,
            import_key: None,
            not_before_margin_s: super::DEFAULT_NOT_BEFORE_MARGIN_S,
        }
    }
}

/// What `ensure_ca` found or did.
#[derive(Clone, Debug, Serialize)]
pub struct CaOutcome {
    pub changed: bool,
    /// Why something changed ("created", "imported", ...); `None` when nothing did.
    pub reason: Option<String>,
    pub cert_path: PathBuf,
    /// `None` for an external CA (certificate only).
    pub key_path: Option<PathBuf>,
    pub subject: String,
    pub key_type: String,
    pub serial: String,
    pub not_after: String,
    pub days_left: i64,
    pub sha256: String,
    pub external: bool,
    pub warnings: Vec<String>,
}

/// A parsed CA certificate.
#[derive(Clone, Debug)]
pub(crate) struct CaCert {
    pub der: Vec<u8>,
    pub pem: String,
    pub subject: String,
    pub subject_attrs: Vec<(String, String)>,
    pub key_type: String,
    pub key_type_enum: Option<KeyType>,
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub sha256: String,
    pub crl_sign: bool,
}

impl CaCert {
    pub fn record(&self, external: bool) -> CaRecord {
        CaRecord {
            subject: self.subject.clone(),
            key_type: self.key_type.clone(),
            not_after: rfc3339(self.not_after),
            sha256: self.sha256.clone(),
            external,
        }
    }
}

/// A CA that can sign: its certificate and its key.
pub(crate) struct Ca {
    pub cert: CaCert,
    pub key: KeyPair,
    pub cert_path: PathBuf,
}

impl Ca {
    /// The rcgen issuer (subject, key identifier and key usages taken from the certificate).
    pub fn issuer(&self) -> Result<Issuer<'static, &KeyPair>> {
        Issuer::from_ca_cert_pem(&self.cert.pem, &self.key).map_err(|e| PkiError::BadCaFile {
            path: self.cert_path.clone(),
            why: format!("rcgen cannot use it as an issuer: {e}"),
        })
    }
}

/// Subject attributes we accept in `--subject`: (short name, OID).
const SUBJECT_ATTRS: [(&str, &str); 6] = [
    ("C", "2.5.4.6"),
    ("ST", "2.5.4.8"),
    ("L", "2.5.4.7"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("CN", "2.5.4.3"),
];
const CN_OID: &str = "2.5.4.3";

fn short_name(oid: &str) -> String {
    SUBJECT_ATTRS
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(s, _)| s.to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// `/C=FR/O=Example/CN=Name` from (OID, value) pairs.
pub(crate) fn render_subject(attrs: &[(String, String)]) -> String {
    attrs
        .iter()
        .map(|(oid, v)| format!("/{}={}", short_name(oid), v.replace('/', "\\/")))
        .collect()
}

/// The (OID, value) pairs of an X.509 name, in order.
pub(crate) fn name_attrs(name: &X509Name<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rdn in name.iter() {
        for atv in rdn.iter() {
            let value = atv
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|_| format!("#{}", hex::encode(atv.attr_value().data)));
            out.push((atv.attr_type().to_id_string(), value));
        }
    }
    out
}

/// The common name of an X.509 name, if it has one.
pub(crate) fn common_name(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_string)
}

/// Checks a common name: not empty, at most 64 characters (X.509's limit), no control characters.
pub(crate) fn validate_cn(cn: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(PkiError::InvalidCn {
            cn: cn.to_string(),
            why: why.to_string(),
        })
    };
    if cn.trim().is_empty() {
        return bad("it is empty");
    }
    if cn.chars().count() > 64 {
        return bad("X.509 limits a common name to 64 characters");
    }
    if cn.chars().any(char::is_control) {
        return bad("it contains control characters");
    }
    Ok(())
}

/// Parses an OpenSSL-style subject (`/C=FR/O=Example/CN=Name`, `\/` escapes a slash) into
/// (OID, value) pairs.
pub fn parse_subject(subject: &str) -> Result<Vec<(String, String)>> {
    let bad = |why: String| PkiError::InvalidSubject {
        subject: subject.to_string(),
        why,
    };
    let rest = subject
        .strip_prefix('/')
        .ok_or_else(|| bad("it must start with '/'".into()))?;
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => return Err(bad("it ends with a lone '\\'".into())),
            },
            '/' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    let mut out: Vec<(String, String)> = Vec::new();
    for part in parts {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
        let k = k.trim();
        let (short, oid) = SUBJECT_ATTRS
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(k))
            .ok_or_else(|| bad(format!("unknown attribute {k:?}")))?;
        if v.is_empty() {
            return Err(bad(format!("{short} is empty")));
        }
        if out.iter().any(|(o, _)| o == oid) {
            return Err(bad(format!("{short} is given twice")));
        }
        if *short == "C" && (v.len() != 2 || !v.chars().all(|c| c.is_ascii_uppercase())) {
            return Err(bad(format!(
                "C must be a two-letter country code, not {v:?}"
            )));
        }
        if *short == "CN" {
            validate_cn(v)?;
        }
        out.push((oid.to_string(), v.to_string()));
    }
    Ok(out)
}

/// The subject the spec asks for: `None` when it names none (neither cn nor subject).
fn wanted_subject(spec: &CaSpec) -> Result<Option<Vec<(String, String)>>> {
    let mut attrs = match &spec.subject {
        Some(s) => parse_subject(s)?,
        None => Vec::new(),
    };
    if let Some(cn) = &spec.cn {
        validate_cn(cn)?;
        match attrs.iter().find(|(o, _)| o == CN_OID) {
            Some((_, v)) if v != cn => {
                return Err(PkiError::InvalidArgument(format!(
                    "--cn {cn:?} contradicts CN={v:?} in --subject: give only one"
                )))
            }
            Some(_) => {}
            None => attrs.push((CN_OID.to_string(), cn.clone())),
        }
    }
    Ok(if attrs.is_empty() { None } else { Some(attrs) })
}

fn build_dn(attrs: &[(String, String)]) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    for (oid, v) in attrs {
        let ty = match short_name(oid).as_str() {
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "CN" => DnType::CommonName,
            other => return Err(PkiError::Internal(format!("unexpected attribute {other}"))),
        };
        let value = if matches!(ty, DnType::CountryName) {
            DnValue::PrintableString(PrintableString::try_from(v.as_str()).map_err(|_| {
                PkiError::InvalidArgument(format!("country {v:?} is not a printable string"))
            })?)
        } else {
            DnValue::Utf8String(v.clone())
        };
        dn.push(ty, value);
    }
    Ok(dn)
}

/// Decodes a certificate file: PEM (first CERTIFICATE block) or DER. Returns the DER.
pub(crate) fn decode_cert(bytes: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let der = if bytes.first() == Some(&0x30) {
        bytes.to_vec()
    } else {
        let (_, pem) = x509_parser::pem::parse_x509_pem(bytes)
            .map_err(|_| "not a PEM or DER certificate".to_string())?;
        if pem.label != "CERTIFICATE" {
            return Err(format!(
                "the PEM block is {:?}, not a CERTIFICATE",
                pem.label
            ));
        }
        pem.contents
    };
    x509_parser::parse_x509_certificate(&der)
        .map_err(|e| format!("not a readable X.509 certificate ({e})"))?;
    Ok(der)
}

/// PEM text of a DER object (64 columns, LF).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    // Standard base64, 64 columns (RFC 7468).
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            if n > 1 { chunk[1] } else { 0 },
            if n > 2 { chunk[2] } else { 0 },
        ];
        let v = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        for i in 0..4 {
            if i <= n {
                b64.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Parses and checks a CA certificate (DER).
pub(crate) fn inspect_ca(der: &[u8], path: &Path) -> Result<CaCert> {
    let (_, x509) = x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::BadCaFile {
        path: path.to_path_buf(),
        why: format!("not a readable X.509 certificate ({e})"),
    })?;
    let not_a_ca = |why: &str| PkiError::NotACa {
        path: path.to_path_buf(),
        why: why.to_string(),
    };
    match x509.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {}
        Ok(_) => return Err(not_a_ca("it has no basicConstraints CA:TRUE")),
        Err(e) => {
            return Err(not_a_ca(&format!(
                "its basicConstraints are unreadable: {e}"
            )))
        }
    }
    let mut crl_sign = true;
    match x509.key_usage() {
        Ok(Some(ku)) => {
            if !ku.value.key_cert_sign() {
                return Err(not_a_ca("its key usage lacks keyCertSign"));
            }
            crl_sign = ku.value.crl_sign();
        }
        Ok(None) => {}
        Err(e) => return Err(not_a_ca(&format!("its key usage is unreadable: {e}"))),
    }
    let subject_attrs = name_attrs(x509.subject());
    let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())
        .map_err(|e| PkiError::BadCaFile {
            path: path.to_path_buf(),
            why: format!("its expiry date is out of range ({e})"),
        })?;
    Ok(CaCert {
        der: der.to_vec(),
        pem: pem_encode("CERTIFICATE", der),
        subject: render_subject(&subject_attrs),
        subject_attrs,
        key_type: KeyType::describe_spki(x509.public_key()),
        key_type_enum: KeyType::of_spki(x509.public_key()),
        serial: serial_hex(x509.raw_serial()),
        not_after,
        sha256: sha256_hex(der),
        crl_sign,
    })
}

/// Loads `ca.crt` from the PKI directory (no key needed).
pub(crate) fn load_ca_cert(pki: &PkiDir) -> Result<CaCert> {
    let path = pki.ca_cert();
    let bytes = match read_opt(&path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(PkiError::NoCa {
                dir: pki.root().to_path_buf(),
            })
        }
        Err(PkiError::Io { source, .. }) => {
            return Err(PkiError::BadCaFile {
                path,
                why: source.to_string(),
            })
        }
        Err(e) => return Err(e),
    };
    let der = decode_cert(&bytes).map_err(|why| PkiError::BadCaFile {
        path: path.clone(),
        why,
    })?;
    inspect_ca(&der, &path)
}

fn check_key(key_pem: &[u8], key_path: &Path, cert: &CaCert, cert_path: &Path) -> Result<KeyPair> {
    let text = std::str::from_utf8(key_pem).map_err(|_| PkiError::BadCaFile {
        path: key_path.to_path_buf(),
        why: "not a PEM private key (binary data)".into(),
    })?;
    let key = parse_private_key_pem(text).map_err(|why| PkiError::BadCaFile {
        path: key_path.to_path_buf(),
        why,
    })?;
    let (_, x509) =
        x509_parser::parse_x509_certificate(&cert.der).map_err(|e| PkiError::BadCaFile {
            path: cert_path.to_path_buf(),
            why: e.to_string(),
        })?;
    if !key_matches_spki(&key, x509.public_key()) {
        return Err(PkiError::CaKeyMismatch {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
        });
    }
    Ok(key)
}

/// The parameters of a CA certificate castellan makes: CA with path length 0, keyCertSign,
/// cRLSign and digitalSignature, valid from `margin_s` seconds ago (clock skew) for `days`.
pub(crate) fn ca_params(
    dn: DistinguishedName,
    days: u32,
    now: OffsetDateTime,
    margin_s: u32,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = super::not_before(now, margin_s);
    params.not_after = now + Duration::days(i64::from(days));
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    Ok(params)
}

/// A new self-signed CA certificate (DER) for `key`, subject `dn`, valid for `days`.
pub(crate) fn self_signed_ca(
    dn: DistinguishedName,
    key: &KeyPair,
    days: u32,
    now: OffsetDateTime,
    margin_s: u32,
) -> Result<Vec<u8>> {
    Ok(ca_params(dn, days, now, margin_s)?
        .self_signed(key)?
        .der()
        .to_vec())
}

/// Loads a CA certificate (the first of the file) and its key from these files, checking that
/// they go together (a rollover's next CA, a retired CA).
pub(crate) fn load_ca_files(cert_path: &Path, key_path: &Path) -> Result<Ca> {
    let missing = |p: &Path| PkiError::BadCaFile {
        path: p.to_path_buf(),
        why: "it is missing".into(),
    };
    let bytes = read_opt(cert_path)?.ok_or_else(|| missing(cert_path))?;
    let der = decode_cert(&bytes).map_err(|why| PkiError::BadCaFile {
        path: cert_path.to_path_buf(),
        why,
    })?;
    let cert = inspect_ca(&der, cert_path)?;
    let key_bytes = read_opt(key_path)?.ok_or_else(|| missing(key_path))?;
    let key = check_key(&key_bytes, key_path, &cert, cert_path)?;
    Ok(Ca {
        cert,
        key,
        cert_path: cert_path.to_path_buf(),
    })
}

/// Loads the CA with its key, checking that the key matches the certificate.
pub(crate) fn load_ca(pki: &PkiDir) -> Result<Ca> {
    let cert = load_ca_cert(pki)?;
    let key_path = pki.ca_key();
    let key_bytes = match read_opt(&key_path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(PkiError::ExternalCa {
                dir: pki.root().to_path_buf(),
            })
        }
        Err(PkiError::Io { source, .. }) => {
            return Err(PkiError::BadCaFile {
                path: key_path,
                why: source.to_string(),
            })
        }
        Err(e) => return Err(e),
    };
    let key = check_key(&key_bytes, &key_path, &cert, &pki.ca_cert())?;
    Ok(Ca {
        cert,
        key,
        cert_path: pki.ca_cert(),
    })
}

/// Why an existing CA does not fit the spec, if it does not.
fn mismatch(cur: &CaCert, want: &Option<Vec<(String, String)>>, spec: &CaSpec) -> Option<String> {
    if let Some(want) = want {
        if spec.subject.is_some() {
            if &cur.subject_attrs != want {
                return Some(format!(
                    "its subject is {}, not {}",
                    cur.subject,
                    render_subject(want)
                ));
            }
        } else {
            let cur_cn = cur.subject_attrs.iter().find(|(o, _)| o == CN_OID);
            let want_cn = want.iter().find(|(o, _)| o == CN_OID);
            if cur_cn != want_cn {
                return Some(format!(
                    "its CN is {:?}, not {:?}",
                    cur_cn.map(|(_, v)| v.as_str()).unwrap_or(""),
                    want_cn.map(|(_, v)| v.as_str()).unwrap_or("")
                ));
            }
        }
    }
    if let Some(kt) = spec.key_type {
        if cur.key_type_enum != Some(kt) {
            return Some(format!("its key is {}, not {kt}", cur.key_type));
        }
    }
    None
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| PkiError::BadCaFile {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

pub(crate) fn check_days(days: u32, what: &str) -> Result<()> {
    if days == 0 || days > MAX_DAYS {
        return Err(PkiError::InvalidArgument(format!(
            "{what} must be between 1 and {MAX_DAYS} days, not {days}"
        )));
    }
    Ok(())
}

fn outcome(
    pki: &PkiDir,
    cert: &CaCert,
    changed: bool,
    reason: Option<String>,
    now: OffsetDateTime,
) -> CaOutcome {
    let external = !pki.ca_key().exists();
    let days_left = days_until(cert.not_after, now);
    let mut warnings = Vec::new();
    if days_left < 90 {
        warnings.push(format!(
            "the CA expires in {days_left} days ({}): plan a new CA and re-issue every certificate",
            rfc3339(cert.not_after)
        ));
    }
    if !cert.crl_sign {
        warnings.push("the CA has no cRLSign key usage: certificates cannot be revoked".into());
    }
    CaOutcome {
        changed,
        reason,
        cert_path: pki.ca_cert(),
        key_path: if external { None } else { Some(pki.ca_key()) },
        subject: cert.subject.clone(),
        key_type: cert.key_type.clone(),
        serial: cert.serial.clone(),
        not_after: rfc3339(cert.not_after),
        days_left,
        sha256: cert.sha256.clone(),
        external,
        warnings,
    }
}

struct Import {
    cert: CaCert,
    cert_path: PathBuf,
    key: Option<(Vec<u8>, PathBuf)>,
}

fn read_import(spec: &CaSpec) -> Result<Option<Import>> {
    let (cert_path, key_path) = match (&spec.import_cert, &spec.import_key) {
        (None, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(PkiError::InvalidArgument(
                "--import-key needs --import-cert (the CA certificate that goes with it)".into(),
            ))
        }
        (Some(c), k) => (c, k),
    };
    let bytes = read_input(cert_path)?;
    let der = decode_cert(&bytes).map_err(|why| PkiError::BadCaFile {
        path: cert_path.clone(),
        why,
    })?;
    let cert = inspect_ca(&der, cert_path)?;
    let key = match key_path {
        None => None,
        Some(kp) => {
            let kb = read_input(kp)?;
            check_key(&kb, kp, &cert, cert_path)?;
            Some((kb, kp.clone()))
        }
    };
    Ok(Some(Import {
        cert,
        cert_path: cert_path.clone(),
        key,
    }))
}

/// What `ensure_ca` has to do, decided without writing anything.
enum CaAction {
    /// The CA is there and fits the request.
    Keep(CaCert),
    /// An external CA (certificate only) gets the key imported now.
    AddKey(CaCert, Vec<u8>),
    /// There is no CA: import one.
    Import(Import),
    /// There is no CA: create one with this subject and key type.
    Create(Vec<(String, String)>, KeyType),
}

impl CaAction {
    fn reason(&self, days: u32) -> Option<String> {
        match self {
            CaAction::Keep(_) => None,
            CaAction::AddKey(..) => Some("CA key imported".into()),
            CaAction::Import(imp) if imp.key.is_some() => {
                Some(format!("CA imported from {}", imp.cert_path.display()))
            }
            CaAction::Import(imp) => Some(format!(
                "external CA certificate imported from {} (no key: castellan cannot issue with it)",
                imp.cert_path.display()
            )),
            CaAction::Create(_, key_type) => Some(format!("CA created ({key_type}, {days} days)")),
        }
    }
}

/// The request checked and read (subject, imported files), before the directory is touched.
struct CaRequest {
    want: Option<Vec<(String, String)>>,
    import: Option<Import>,
}

fn ca_request(spec: &CaSpec) -> Result<CaRequest> {
    check_days(spec.days, "--days")?;
    super::validate_not_before_margin(spec.not_before_margin_s)?;
    Ok(CaRequest {
        want: wanted_subject(spec)?,
        import: read_import(spec)?,
    })
}

/// Reads the directory (locked by the caller, or missing) and decides. Every invalid request and
/// every mismatch is an error here, before anything is written.
fn assess_ca(pki: &PkiDir, spec: &CaSpec, req: CaRequest) -> Result<CaAction> {
    let CaRequest { want, import } = req;
    let dir = pki.root();
    let has_cert = std::fs::symlink_metadata(pki.ca_cert()).is_ok();
    let has_key = std::fs::symlink_metadata(pki.ca_key()).is_ok();
    if has_key && !has_cert {
        return Err(PkiError::BadCaFile {
            path: pki.ca_key(),
            why: "there is a CA key but no ca.crt beside it: restore ca.crt, or move ca.key away"
                .into(),
        });
    }

    if has_cert {
        let cur = load_ca_cert(pki)?;
        if let Some(imp) = &import {
            if imp.cert.der != cur.der {
                return Err(PkiError::CaMismatch {
                    dir: dir.to_path_buf(),
                    why: format!(
                        "its certificate (sha256 {}) is not the one in {} (sha256 {})",
                        cur.sha256,
                        imp.cert_path.display(),
                        imp.cert.sha256
                    ),
                });
            }
        }
        if let Some(why) = mismatch(&cur, &want, spec) {
            return Err(PkiError::CaMismatch {
                dir: dir.to_path_buf(),
                why,
            });
        }
        if has_key {
            load_ca(pki)?;
            return Ok(CaAction::Keep(cur));
        }
        // An external CA: add its key when one is imported now.
        if let Some(Import {
            key: Some((bytes, _)),
            ..
        }) = import
        {
            return Ok(CaAction::AddKey(cur, bytes));
        }
        return Ok(CaAction::Keep(cur));
    }

    match import {
        Some(imp) => {
            if let Some(why) = mismatch(&imp.cert, &want, spec) {
                return Err(PkiError::InvalidArgument(format!(
                    "the certificate in {} does not match the request: {why}",
                    imp.cert_path.display()
                )));
            }
            Ok(CaAction::Import(imp))
        }
        None => {
            let attrs = want.ok_or_else(|| {
                PkiError::InvalidArgument(
                    "a new CA needs a name: give --cn NAME (or --subject \"/O=.../CN=NAME\")"
                        .into(),
                )
            })?;
            if !attrs.iter().any(|(o, _)| o == CN_OID) {
                return Err(PkiError::InvalidArgument(
                    "a new CA needs a common name: add CN=... to --subject or give --cn".into(),
                ));
            }
            Ok(CaAction::Create(attrs, spec.key_type.unwrap_or_default()))
        }
    }
}

fn check_dir(dir: &Path) -> Result<bool> {
    match std::fs::metadata(dir) {
        Ok(md) if !md.is_dir() => Err(PkiError::InvalidArgument(format!(
            "{} is not a directory: give --dir a directory (it is created if missing)",
            dir.display()
        ))),
        Ok(_) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// What [`ensure_ca`] would do, found without writing anything (check mode).
#[derive(Clone, Debug, Serialize)]
pub struct CaPlan {
    /// Why `ensure_ca` would change something (the reason it would report); `None`: nothing.
    pub reason: Option<String>,
    /// The CA as it is now, when there is one.
    pub current: Option<CaOutcome>,
}

/// Says what [`ensure_ca`] would do with the same arguments, and fails where it would fail, but
/// writes nothing: not a byte, not a directory, not an mtime.
pub fn plan_ca(dir: &Path, spec: &CaSpec) -> Result<CaPlan> {
    let pki = PkiDir::new(dir);
    let req = ca_request(spec)?;
    let now = now()?;
    let _lock = if check_dir(dir)? {
        Some(lock(dir)?)
    } else {
        None
    };
    let action = assess_ca(&pki, spec, req)?;
    let reason = action.reason(spec.days);
    let current = match &action {
        CaAction::Keep(cur) | CaAction::AddKey(cur, _) => {
            Some(outcome(&pki, cur, false, None, now))
        }
        CaAction::Import(_) | CaAction::Create(..) => None,
    };
    Ok(CaPlan { reason, current })
}

/// Makes sure the PKI directory has the CA the spec describes: creates it (or imports it) when
/// there is none, checks it when there is one. An existing CA that differs from the spec is an
/// error, never replaced.
pub fn ensure_ca(dir: &Path, spec: &CaSpec) -> Result<CaOutcome> {
    let pki = PkiDir::new(dir);
    // Check the request and read the imported files before creating the directory.
    let req = ca_request(spec)?;
    let now = now()?;

    let mut txn = Txn::new();
    if !check_dir(dir)? {
        txn.create_dir_all(dir)?;
    }
    let _lock = lock(dir)?;
    let mut index = Index::load(&pki)?;
    let action = assess_ca(&pki, spec, req)?;
    let reason = action.reason(spec.days);

    let cert = match action {
        CaAction::Keep(cur) => return Ok(outcome(&pki, &cur, false, None, now)),
        CaAction::AddKey(cur, bytes) => {
            txn.write(&pki.ca_key(), &bytes, PRIVATE_MODE)?;
            index.ca = Some(cur.record(false));
            index.version = 1;
            index.save(&pki, &mut txn)?;
            txn.commit();
            return Ok(outcome(&pki, &cur, true, reason, now));
        }
        CaAction::Import(imp) => {
            if let Some((bytes, _)) = &imp.key {
                txn.write(&pki.ca_key(), bytes, PRIVATE_MODE)?;
            }
            txn.write(&pki.ca_cert(), imp.cert.pem.as_bytes(), PUBLIC_MODE)?;
            imp.cert
        }
        CaAction::Create(attrs, key_type) => {
            let key = key_type.generate()?;
            let der = self_signed_ca(
                build_dn(&attrs)?,
                &key,
                spec.days,
                now,
                spec.not_before_margin_s,
            )?;
            let ca_cert = inspect_ca(&der, &pki.ca_cert())?;
            txn.write(
                &pki.ca_key(),
                private_key_pem(&key).as_bytes(),
                PRIVATE_MODE,
            )?;
            txn.write(&pki.ca_cert(), ca_cert.pem.as_bytes(), PUBLIC_MODE)?;
            ca_cert
        }
    };
    index.version = 1;
    index.ca = Some(cert.record(!pki.ca_key().exists()));
    index.save(&pki, &mut txn)?;
    txn.commit();
    Ok(outcome(&pki, &cert, true, reason, now))
}

/// For the leaf code: the parsed CA certificate of a leaf check.
pub(crate) fn parse_der(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_parse() {
        let s = parse_subject("/C=FR/O=Example Corp/OU=DB\\/Ops/CN=Root").unwrap();
        assert_eq!(
            render_subject(&s),
            "/C=FR/O=Example Corp/OU=DB\\/Ops/CN=Root"
        );
        assert_eq!(s[2].1, "DB/Ops");
        for bad in ["C=FR", "/C=France", "/X=1", "/CN=", "/CN=a/CN=b", "/O"] {
            assert!(parse_subject(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pem_encoding_matches_rcgen() {
        let key = KeyType::EcdsaP256.generate().unwrap();
        let cert = CertificateParams::new(vec!["a.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert_eq!(pem_encode("CERTIFICATE", cert.der()), cert.pem());
    }

    #[test]
    fn cn_limits() {
        assert!(validate_cn("app_user").is_ok());
        assert!(validate_cn("").is_err());
        assert!(validate_cn(&"x".repeat(65)).is_err());
    }
}
