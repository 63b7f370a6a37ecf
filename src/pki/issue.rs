//! Server and client certificates, and the decision to (re-)issue one.
//!
//! A certificate is issued again only when it is missing or unreadable, when its key is missing
//! or does not match, when the request differs (CN, SANs, key type, issuing CA, EKU), or when it
//! expires within `renew_before_days`. A client certificate that is kept gets the files of its
//! bundle that are missing or out of date (`bundle.rs`: `client.pk8`, `client.pem.pk8`,
//! `client.pfx`, `root.crt`) without being issued again. Otherwise nothing is written: same
//! bytes, same mtime.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::string::Ia5String;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::bundle::{self, Sources, Stale, DERIVED};
use super::ca::{check_days, common_name, decode_cert, load_ca, parse_der, validate_cn, Ca};
use super::crl::republish_crl;
use super::index::{EntryStatus, Index, IndexEntry};
use super::key::{key_matches_spki, parse_private_key_pem, pem_label, private_key_pem, KeyType};
use super::pfx::PfxPassword;
use super::store::{lock, read_opt, validate_name, PkiDir, Txn, PRIVATE_MODE, PUBLIC_MODE};
use super::trust::server_chain_pem;
use super::{
    days_until, now, random_serial, rfc3339, serial_hex, sha256_hex, CertKind, PkiError, Result,
};

/// Default lifetime of server and client certificates, in days.
pub const DEFAULT_LEAF_DAYS: u32 = 825;
/// Default renewal window: re-issue when a certificate expires within this many days.
pub const DEFAULT_RENEW_BEFORE_DAYS: u32 = 30;

/// A subject alternative name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum San {
    /// A DNS name, lower case, without a trailing dot.
    Dns(String),
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// Anything else found in an existing certificate (never produced by `parse`).
    Other(String),
}

impl San {
    /// Parses `db1.example.com`, `10.0.0.5`, `::1`, optionally prefixed `DNS:` or `IP:`.
    pub fn parse(s: &str) -> Result<San> {
        let raw = s.trim();
        let bad = |why: &str| PkiError::InvalidSan {
            san: s.to_string(),
            why: why.to_string(),
        };
        let strip = |p: &str| {
            (raw.len() >= p.len() && raw[..p.len()].eq_ignore_ascii_case(p))
                .then(|| &raw[p.len()..])
        };
        if let Some(body) = strip("IP:") {
            return parse_ip(body)
                .map(San::Ip)
                .ok_or_else(|| bad("not an IP address"));
        }
        if let Some(body) = strip("DNS:") {
            return parse_dns(body).map(San::Dns).map_err(|why| bad(&why));
        }
        if let Some(ip) = parse_ip(raw) {
            return Ok(San::Ip(ip));
        }
        parse_dns(raw).map(San::Dns).map_err(|why| bad(&why))
    }

    pub(crate) fn to_rcgen(&self) -> Result<SanType> {
        match self {
            San::Dns(d) => Ia5String::try_from(d.as_str())
                .map(SanType::DnsName)
                .map_err(|e| PkiError::InvalidSan {
                    san: d.clone(),
                    why: e.to_string(),
                }),
            San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            San::Other(o) => Err(PkiError::InvalidSan {
                san: o.clone(),
                why: "only DNS names and IP addresses are supported".into(),
            }),
        }
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Other(o) => f.write_str(o),
        }
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn parse_dns(s: &str) -> std::result::Result<String, String> {
    let name = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err("a DNS name has at most 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for (i, label) in labels.iter().enumerate() {
        if i == 0 && *label == "*" {
            if labels.len() < 3 {
                return Err("a wildcard needs at least two labels after it (*.example.com)".into());
            }
            continue;
        }
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row?)".into());
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} is not allowed in a DNS name (letters, digits, '-' and '.')"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("it looks like an IP address but is not a valid one".into());
    }
    Ok(name)
}

/// What certificate to ensure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSpec {
    pub kind: CertKind,
    /// File-system name: `server/NAME/`, `client/NAME/`.
    pub name: String,
    /// Subject CN: the host name for servers, the database user for clients.
    pub cn: String,
    /// SANs (`db1.example.com`, `10.0.0.5`, `DNS:...`, `IP:...`). A server without SANs gets
    /// its CN as the only SAN.
    pub sans: Vec<String>,
    pub key_type: KeyType,
    pub days: u32,
    pub renew_before_days: u32,
    /// The password of `client.pfx` (client certificates only; empty by default).
    pub pfx_password: PfxPassword,
    /// Re-issue even when nothing else asks for it, once per process ([`forced_once`]): a
    /// scheduled rotation's `rotate_force`.
    pub force: bool,
    /// Seconds notBefore is set back from the time of issue (clock skew between hosts).
    pub not_before_margin_s: u32,
}

impl CertSpec {
    /// A server certificate with the defaults (ecdsa-p256, 825 days, renew 30 days before).
    pub fn server(name: impl Into<String>, cn: impl Into<String>, sans: Vec<String>) -> Self {
        CertSpec {
            kind: CertKind::Server,
            name: name.into(),
            cn: cn.into(),
            sans,
            key_type: KeyType::default(),
            days: DEFAULT_LEAF_DAYS,
            renew_before_days: DEFAULT_RENEW_BEFORE_DAYS,
            pfx_password: PfxPassword::default(),
            force: false,
            not_before_margin_s: super::DEFAULT_NOT_BEFORE_MARGIN_S,
        }
    }

    /// A client certificate for database user `cn`, with the defaults.
    pub fn client(name: impl Into<String>, cn: impl Into<String>) -> Self {
        CertSpec {
            kind: CertKind::Client,
            sans: Vec::new(),
            ..CertSpec::server(name, cn, Vec::new())
        }
    }
}

/// What `ensure_cert` found or did. Contains no key material and no password.
#[derive(Clone, Debug, Serialize)]
pub struct CertOutcome {
    pub changed: bool,
    /// True when a new certificate was signed; false when it was kept (even if files of its
    /// client bundle were written: see `reason`).
    pub issued: bool,
    /// Why the certificate was (re-)issued, or why a file was rewritten; `None` when unchanged.
    pub reason: Option<String>,
    pub kind: CertKind,
    pub name: String,
    pub cn: String,
    pub sans: Vec<String>,
    pub key_type: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// `client.pk8` (PKCS#8 DER) for client certificates.
    pub pk8_path: Option<PathBuf>,
    /// `client.pem.pk8` (PKCS#8 PEM) for client certificates.
    pub pem_pk8_path: Option<PathBuf>,
    /// `client.pfx` (PKCS#12: certificate, key, CA) for client certificates.
    pub pfx_path: Option<PathBuf>,
    /// `root.crt` (a copy of the CA certificate) for client certificates.
    pub root_path: Option<PathBuf>,
    pub ca_path: PathBuf,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub sha256: String,
    pub serial: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: i64,
    /// Serials of the earlier certificates of this name that this call revoked with reason
    /// `superseded` (it issued a new certificate with a new key).
    pub revoked_superseded: Vec<String>,
    pub warnings: Vec<String>,
}

/// The certificate and key in place, when they are kept.
struct Current {
    key: KeyPair,
    der: Vec<u8>,
}

/// The decision for an existing certificate.
enum Decision {
    Keep(Current),
    /// Keep the certificate, write these files of the client bundle.
    Repair(Current, Vec<Stale>),
    /// Keep the server certificate, write `server.crt` again with this chain (a CA rollover
    /// added or removed the link certificate), for this reason.
    Rechain(Current, String, String),
    Issue(String),
}

/// The certificates (PKI directory, kind, name) a forced renewal re-issued in this process.
static FORCED: std::sync::Mutex<BTreeSet<(PathBuf, CertKind, String)>> =
    std::sync::Mutex::new(BTreeSet::new());

/// True when a forced renewal of `kind`/`name` in `dir` is still to do in this process: the
/// first task that forces it re-issues it, the later ones of the same run (a run_once repeated
/// per batch, a second role naming it) keep what the first issued. `mark` records it done.
pub(crate) fn forced_once(dir: &Path, kind: CertKind, name: &str, mark: bool) -> bool {
    let key = (dir.to_path_buf(), kind, name.to_string());
    let mut set = FORCED.lock().unwrap_or_else(|e| e.into_inner());
    if set.contains(&key) {
        return false;
    }
    if mark {
        set.insert(key);
    }
    true
}

struct Request {
    sans: Vec<San>,
}

fn validate(spec: &CertSpec) -> Result<Request> {
    validate_name(&spec.name)?;
    validate_cn(&spec.cn)?;
    check_days(spec.days, "--days")?;
    super::validate_not_before_margin(spec.not_before_margin_s)?;
    if spec.renew_before_days >= spec.days {
        return Err(PkiError::InvalidArgument(format!(
            "--renew-before ({} days) must be shorter than --days ({}): otherwise every run would re-issue the certificate",
            spec.renew_before_days, spec.days
        )));
    }
    let mut sans: Vec<San> = Vec::new();
    for s in &spec.sans {
        let san = San::parse(s)?;
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    if sans.is_empty() && spec.kind == CertKind::Server {
        match San::parse(&spec.cn) {
            Ok(san) => sans.push(san),
            Err(_) => {
                return Err(PkiError::InvalidArgument(format!(
                    "server certificate {:?} needs at least one --san (DNS name or IP address): libpq verify-full and rustls check the host name against the SANs, and its CN {:?} is not a host name",
                    spec.name, spec.cn
                )))
            }
        }
    }
    Ok(Request { sans })
}

/// The SANs of a certificate, in its order.
pub(crate) fn cert_sans(x509: &X509Certificate<'_>) -> Vec<San> {
    let mut out = Vec::new();
    if let Ok(Some(ext)) = x509.subject_alternative_name() {
        for gn in &ext.value.general_names {
            out.push(match gn {
                GeneralName::DNSName(d) => San::Dns(d.trim_end_matches('.').to_ascii_lowercase()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => San::Ip(IpAddr::from([b[0], b[1], b[2], b[3]])),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        San::Ip(IpAddr::from(a))
                    }
                    _ => San::Other(format!("IP:{}", hex::encode(b))),
                },
                other => San::Other(other.to_string()),
            });
        }
    }
    out
}

/// `[DNS:a, IP:b]`, for messages.
pub(crate) fn list_sans(sans: &[San]) -> String {
    let v: Vec<String> = sans.iter().map(San::to_string).collect();
    format!("[{}]", v.join(", "))
}

/// A certificate time as an `OffsetDateTime`.
pub(crate) fn time_of(t: &x509_parser::time::ASN1Time) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(t.timestamp())
        .map_err(|e| PkiError::Internal(format!("certificate date out of range: {e}")))
}

fn decide(
    pki: &PkiDir,
    spec: &CertSpec,
    req: &Request,
    index: &Index,
    ca_x509: &X509Certificate<'_>,
    now: OffsetDateTime,
) -> Result<Decision> {
    let cert_path = pki.leaf_cert(spec.kind, &spec.name);
    let key_path = pki.leaf_key(spec.kind, &spec.name);
    let file = |p: &Path| {
        p.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let Some(cert_bytes) = read_opt(&cert_path)? else {
        return Ok(Decision::Issue(if key_path.exists() {
            format!("{} is missing", file(&cert_path))
        } else {
            "new certificate".into()
        }));
    };
    let der = match decode_cert(&cert_bytes) {
        Ok(d) => d,
        Err(why) => {
            return Ok(Decision::Issue(format!(
                "{} is unreadable ({why})",
                file(&cert_path)
            )))
        }
    };
    let Some(x509) = parse_der(&der) else {
        return Ok(Decision::Issue(format!(
            "{} is unreadable",
            file(&cert_path)
        )));
    };
    // A revoked certificate put back (from a backup, say) is never taken back as current.
    if let Some(e) = index.revoked_by_sha256(&sha256_hex(&der)) {
        return Ok(Decision::Issue(format!(
            "{} was revoked (serial {}, {})",
            file(&cert_path),
            e.serial,
            e.revocation_reason.as_deref().unwrap_or("unspecified")
        )));
    }
    let Some(key_bytes) = read_opt(&key_path)? else {
        return Ok(Decision::Issue(format!("{} is missing", file(&key_path))));
    };
    let key_text = String::from_utf8(key_bytes).unwrap_or_default();
    let key: KeyPair = match parse_private_key_pem(&key_text) {
        Ok(k) => k,
        Err(why) => {
            return Ok(Decision::Issue(format!(
                "{} is unreadable ({why})",
                file(&key_path)
            )))
        }
    };
    if !key_matches_spki(&key, x509.public_key()) {
        return Ok(Decision::Issue(format!(
            "{} does not match {}",
            file(&key_path),
            file(&cert_path)
        )));
    }
    if x509.issuer().as_raw() != ca_x509.subject().as_raw() {
        return Ok(Decision::Issue(format!(
            "it was issued by another CA ({}), not by this PKI's CA",
            x509.issuer()
        )));
    }
    if x509.verify_signature(Some(ca_x509.public_key())).is_err() {
        return Ok(Decision::Issue(format!(
            "it was issued by another CA of the same name ({}, another key: a new CA, or a CA rollover's)",
            x509.issuer()
        )));
    }
    let cn = common_name(x509.subject()).unwrap_or_default();
    if cn != spec.cn {
        return Ok(Decision::Issue(format!(
            "CN changed from {cn:?} to {:?}",
            spec.cn
        )));
    }
    let have = cert_sans(&x509);
    let have_set: BTreeSet<&San> = have.iter().collect();
    let want_set: BTreeSet<&San> = req.sans.iter().collect();
    if have_set != want_set {
        return Ok(Decision::Issue(format!(
            "SANs changed from {} to {}",
            list_sans(&have),
            list_sans(&req.sans)
        )));
    }
    if KeyType::of_spki(x509.public_key()) != Some(spec.key_type) {
        return Ok(Decision::Issue(format!(
            "key type changed from {} to {}",
            KeyType::describe_spki(x509.public_key()),
            spec.key_type
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
        let want = match spec.kind {
            CertKind::Server => "serverAuth",
            CertKind::Client => "clientAuth",
        };
        return Ok(Decision::Issue(format!(
            "its extended key usage lacks {want}"
        )));
    }
    let not_after = time_of(&x509.validity().not_after)?;
    let renew = Duration::days(i64::from(spec.renew_before_days));
    if not_after <= now {
        return Ok(Decision::Issue(format!(
            "it expired on {}",
            rfc3339(not_after)
        )));
    }
    if not_after - now <= renew {
        return Ok(Decision::Issue(format!(
            "it expires on {} (in {} days), within renew_before ({} days)",
            rfc3339(not_after),
            days_until(not_after, now),
            spec.renew_before_days
        )));
    }
    if spec.kind == CertKind::Client && pem_label(&key_text) != Some("PRIVATE KEY") {
        return Ok(Decision::Issue(format!(
            "{} is not a PKCS#8 key",
            file(&key_path)
        )));
    }
    if spec.force && forced_once(pki.root(), spec.kind, &spec.name, false) {
        return Ok(Decision::Issue(format!(
            "renewal forced (expires on {}, in {} days)",
            rfc3339(not_after),
            days_until(not_after, now)
        )));
    }
    Ok(Decision::Keep(Current { key, der }))
}

fn entry_for(
    spec: &CertSpec,
    x509: &X509Certificate<'_>,
    der: &[u8],
    ca: &Ca,
) -> Result<IndexEntry> {
    Ok(IndexEntry {
        kind: spec.kind,
        name: spec.name.clone(),
        serial: serial_hex(x509.raw_serial()),
        subject: super::ca::render_subject(&super::ca::name_attrs(x509.subject())),
        cn: common_name(x509.subject()).unwrap_or_default(),
        sans: cert_sans(x509).iter().map(San::to_string).collect(),
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
    spec: &CertSpec,
    ca: &Ca,
    der: &[u8],
    changed: bool,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<CertOutcome> {
    let x509 =
        parse_der(der).ok_or_else(|| PkiError::Internal("cannot re-read a certificate".into()))?;
    let e = entry_for(spec, &x509, der, ca)?;
    let not_after = time_of(&x509.validity().not_after)?;
    let mut warnings = Vec::new();
    if not_after > ca.cert.not_after {
        warnings.push(format!(
            "the certificate outlives its CA, which expires on {}: clients will reject it from then on",
            rfc3339(ca.cert.not_after)
        ));
    }
    Ok(CertOutcome {
        changed,
        issued: false,
        reason,
        kind: spec.kind,
        name: spec.name.clone(),
        cn: e.cn,
        sans: e.sans,
        key_type: e.key_type,
        cert_path: pki.leaf_cert(spec.kind, &spec.name),
        key_path: pki.leaf_key(spec.kind, &spec.name),
        pk8_path: pki.leaf_pk8(spec.kind, &spec.name),
        pem_pk8_path: pki.leaf_pem_pk8(spec.kind, &spec.name),
        pfx_path: pki.leaf_pfx(spec.kind, &spec.name),
        root_path: pki.leaf_root(spec.kind, &spec.name),
        ca_path: pki.ca_cert(),
        sha256: e.sha256,
        serial: e.serial,
        not_before: e.not_before,
        not_after: e.not_after,
        days_left: days_until(not_after, now),
        revoked_superseded: Vec::new(),
        warnings,
    })
}

/// Signs a new certificate for `spec` with a new key. Returns (key, DER, PEM).
fn sign(
    spec: &CertSpec,
    req: &Request,
    ca: &Ca,
    now: OffsetDateTime,
) -> Result<(KeyPair, Vec<u8>, String)> {
    let key = spec.key_type.generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.cn.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = req
        .sans
        .iter()
        .map(San::to_rcgen)
        .collect::<Result<Vec<_>>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.key_type.is_rsa() {
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
    let issuer = ca.issuer()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((key, cert.der().to_vec(), cert.pem()))
}

/// What the directory holds for `spec`, read under the directory lock (taken by the caller).
struct Assessment {
    ca: Ca,
    /// The bytes of `ca.crt` (copied to a client's `root.crt`).
    ca_file: Vec<u8>,
    index: Index,
    decision: Decision,
    now: OffsetDateTime,
}

/// What the bundle of client `spec` is made from.
fn sources<'a>(
    spec: &'a CertSpec,
    ca: &'a Ca,
    ca_file: &'a [u8],
    key: &'a KeyPair,
    der: &'a [u8],
) -> Sources<'a> {
    Sources {
        name: &spec.name,
        key,
        cert_der: der,
        ca_der: &ca.cert.der,
        ca_file,
        password: &spec.pfx_password,
    }
}

fn assess(pki: &PkiDir, spec: &CertSpec, req: &Request) -> Result<Assessment> {
    let ca = load_ca(pki)?;
    let index = Index::load(pki)?;
    if let Some(e) = index.current(spec.kind, &spec.name) {
        if e.status == EntryStatus::Revoked {
            return Err(PkiError::Revoked {
                kind: spec.kind,
                name: spec.name.clone(),
                serial: e.serial.clone(),
            });
        }
    }
    let now = now()?;
    let ca_x509 = parse_der(&ca.cert.der)
        .ok_or_else(|| PkiError::Internal("cannot re-read ca.crt".into()))?;
    let ca_file = read_opt(&pki.ca_cert())?.unwrap_or_default();
    let decision = match decide(pki, spec, req, &index, &ca_x509, now)? {
        Decision::Keep(cur) if spec.kind == CertKind::Client => {
            let stale = bundle::stale(pki, &sources(spec, &ca, &ca_file, &cur.key, &cur.der))?;
            if stale.is_empty() {
                Decision::Keep(cur)
            } else {
                Decision::Repair(cur, stale)
            }
        }
        Decision::Keep(cur) => {
            let want = server_chain_pem(pki, &ca.cert, &cur.der)?;
            let have = read_opt(&pki.leaf_cert(spec.kind, &spec.name))?.unwrap_or_default();
            if have == want.as_bytes() {
                Decision::Keep(cur)
            } else {
                let why = if want.len() > have.len() {
                    "server.crt gets the CA rollover's link certificate (clients that trust only the old CA still verify it)"
                } else {
                    "server.crt no longer needs the CA rollover's link certificate"
                };
                Decision::Rechain(cur, want, why.to_string())
            }
        }
        d => d,
    };
    Ok(Assessment {
        ca,
        ca_file,
        index,
        decision,
        now,
    })
}

/// What [`ensure_cert`] would do, found without writing anything (check mode).
#[derive(Clone, Debug, Serialize)]
pub struct CertPlan {
    /// Why `ensure_cert` would (re-)issue the certificate or rewrite a file (the reason it would
    /// report); `None` when it would change nothing.
    pub reason: Option<String>,
    /// The certificate as it is now, when `ensure_cert` would keep it.
    pub current: Option<CertOutcome>,
}

/// Says what [`ensure_cert`] would do with the same arguments, and fails where it would fail
/// (invalid request, revoked name, external CA...), but writes nothing. A directory without a CA
/// yet is not an error here: in check mode the CA task before it did not create it.
pub fn plan_cert(dir: &Path, spec: &CertSpec) -> Result<CertPlan> {
    let pki = PkiDir::new(dir);
    let req = validate(spec)?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Ok(CertPlan {
            reason: Some(format!(
                "new certificate (there is no CA in {} yet)",
                dir.display()
            )),
            current: None,
        });
    }
    let _lock = lock(dir)?;
    let a = assess(&pki, spec, &req)?;
    Ok(match a.decision {
        Decision::Keep(cur) => CertPlan {
            reason: None,
            current: Some(outcome(&pki, spec, &a.ca, &cur.der, false, None, a.now)?),
        },
        Decision::Repair(cur, stale) => CertPlan {
            current: Some(outcome(&pki, spec, &a.ca, &cur.der, false, None, a.now)?),
            reason: Some(bundle::reason(&stale)),
        },
        Decision::Rechain(cur, _, why) => CertPlan {
            current: Some(outcome(&pki, spec, &a.ca, &cur.der, false, None, a.now)?),
            reason: Some(why),
        },
        Decision::Issue(why) => CertPlan {
            reason: Some(why),
            current: None,
        },
    })
}

/// Makes sure `spec`'s certificate exists, matches the request and is not about to expire;
/// (re-)issues it otherwise. An invalid request or a revoked name is an error and changes nothing.
pub fn ensure_cert(dir: &Path, spec: &CertSpec) -> Result<CertOutcome> {
    let pki = PkiDir::new(dir);
    let req = validate(spec)?;
    if std::fs::symlink_metadata(pki.ca_cert()).is_err() {
        return Err(PkiError::NoCa {
            dir: dir.to_path_buf(),
        });
    }
    let _lock = lock(dir)?;
    let Assessment {
        ca,
        ca_file,
        mut index,
        decision,
        now,
    } = assess(&pki, spec, &req)?;
    let mut txn = Txn::new();
    let mut issued = false;
    let (der, changed, reason) = match decision {
        Decision::Keep(cur) => (cur.der, false, None),
        Decision::Repair(cur, stale) => {
            let files: Vec<_> = stale.iter().map(|s| s.file).collect();
            let src = sources(spec, &ca, &ca_file, &cur.key, &cur.der);
            bundle::write(&pki, &src, &files, &mut txn)?;
            (cur.der, true, Some(bundle::reason(&stale)))
        }
        Decision::Rechain(cur, pem, why) => {
            txn.write(
                &pki.leaf_cert(spec.kind, &spec.name),
                pem.as_bytes(),
                PUBLIC_MODE,
            )?;
            (cur.der, true, Some(why))
        }
        Decision::Issue(why) => {
            let (key, der, pem) = sign(spec, &req, &ca, now)?;
            let pem = match spec.kind {
                CertKind::Server => server_chain_pem(&pki, &ca.cert, &der)?,
                CertKind::Client => pem,
            };
            txn.create_dir_all(&pki.leaf_dir(spec.kind, &spec.name))?;
            let key_path = pki.leaf_key(spec.kind, &spec.name);
            txn.write(&key_path, private_key_pem(&key).as_bytes(), PRIVATE_MODE)?;
            txn.write(
                &pki.leaf_cert(spec.kind, &spec.name),
                pem.as_bytes(),
                PUBLIC_MODE,
            )?;
            if spec.force {
                forced_once(pki.root(), spec.kind, &spec.name, true);
            }
            if spec.kind == CertKind::Client {
                let src = sources(spec, &ca, &ca_file, &key, &der);
                bundle::write(&pki, &src, &DERIVED, &mut txn)?;
            }
            issued = true;
            (der, true, Some(why))
        }
    };
    // Keep index.json in step with the files (also repairs a lost or stale index). The
    // certificates this one replaces are revoked (superseded), and a published CRL says so.
    let mut revoked_superseded = Vec::new();
    let mut warnings = Vec::new();
    let sha = sha256_hex(&der);
    if index
        .current(spec.kind, &spec.name)
        .map(|e| e.sha256.as_str())
        != Some(sha.as_str())
    {
        let x509 = parse_der(&der)
            .ok_or_else(|| PkiError::Internal("cannot re-read the new certificate".into()))?;
        let entry = entry_for(spec, &x509, &der, &ca)?;
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
    o.issued = issued;
    o.revoked_superseded = revoked_superseded;
    o.warnings.extend(warnings);
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_parse_and_normalise() {
        assert_eq!(
            San::parse("DB1.Example.com.").unwrap(),
            San::Dns("db1.example.com".into())
        );
        assert_eq!(San::parse("10.0.0.5").unwrap().to_string(), "IP:10.0.0.5");
        assert_eq!(San::parse("IP:::1").unwrap().to_string(), "IP:::1");
        assert_eq!(San::parse("[fe80::1]").unwrap().to_string(), "IP:fe80::1");
        assert_eq!(
            San::parse("dns:localhost").unwrap(),
            San::Dns("localhost".into())
        );
        assert!(San::parse("*.db.example.com").is_ok());
        for bad in [
            "",
            "bad_name!",
            "999.1.1.1",
            "a..b",
            "-a.com",
            "IP:db1",
            "*.com",
            "a b",
        ] {
            assert!(San::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_path_safe() {
        assert!(validate_name("db1.example_com-2").is_ok());
        for bad in ["", "..", ".hidden", "a/b", "a b", "-x"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_forced_renewal_happens_once_per_process() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("pki");
        let ca = super::super::CaSpec {
            cn: Some("Force CA".into()),
            ..Default::default()
        };
        super::super::ensure_ca(&dir, &ca).unwrap();
        let mut spec = CertSpec::client("app", "app");
        let first = ensure_cert(&dir, &spec).unwrap();
        spec.force = true;
        let plan = plan_cert(&dir, &spec).unwrap();
        assert!(plan.reason.unwrap().starts_with("renewal forced"));
        let forced = ensure_cert(&dir, &spec).unwrap();
        assert!(forced.issued && forced.sha256 != first.sha256);
        // A second task of the same run forcing it keeps what the first issued.
        let again = ensure_cert(&dir, &spec).unwrap();
        assert!(!again.changed && again.sha256 == forced.sha256);
        assert!(plan_cert(&dir, &spec).unwrap().reason.is_none());
    }

    #[test]
    fn server_without_sans_uses_cn_or_fails() {
        let spec = CertSpec::server("db1", "db1.example.com", vec![]);
        assert_eq!(
            validate(&spec).unwrap().sans,
            vec![San::Dns("db1.example.com".into())]
        );
        let spec = CertSpec::server("db1", "My Server", vec![]);
        assert!(validate(&spec).is_err());
        let spec = CertSpec::client("app", "app user");
        assert!(validate(&spec).unwrap().sans.is_empty());
        let mut spec = CertSpec::client("app", "app");
        spec.days = 10;
        assert!(validate(&spec).is_err(), "renew_before 30 >= days 10");
    }
}
