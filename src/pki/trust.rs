//! What a PKI trusts besides its signing CA, during and after a CA rollover (`rollover.rs`): the
//! CA certificates `ca.crt` holds (the signing CA first, then, during the overlap, the other CA
//! clients and servers must trust meanwhile), the next CA (`ca-next.crt`/`.key`, made by phase
//! 1), the retired CAs (`retired/ID/ca.crt`/`.key`, kept to sign their CRL), the link
//! certificate (`ca-link.crt`) and the chain a server certificate is sent with.
//!
//! Old and new CA have the same subject and different keys (a key rollover, as RFC 4210 does
//! it): every certificate and every configuration that names the CA keeps working, and
//! verifiers pick the CA whose key identifier matches (authority key identifier). The link
//! certificate is the new CA's key certified by the old CA ("NewWithOld"): a server sends it
//! after its new certificate, so a client that still trusts only the old CA builds
//! server -> link -> old CA. The link is self-issued (its subject is its issuer's name), so the
//! old CA's path length 0 does not count it (RFC 5280 6.1.4; OpenSSL, Java and .NET follow
//! this; rustls/webpki does not, so a webpki client needs the new CA in its bundle).
use std::path::Path;

use rcgen::string::{Ia5String, PrintableString};
use rcgen::{DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyIdMethod, KeyPair};
use time::{Duration, OffsetDateTime};
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::extensions::ParsedExtension;
use x509_parser::x509::X509Name;

use super::ca::{ca_params, inspect_ca, load_ca_files, parse_der, pem_encode, Ca, CaCert};
use super::store::{read_opt, PkiDir};
use super::{PkiError, Result};

/// Every CA certificate in `ca.crt`, the signing CA first. Empty when there is no `ca.crt`.
pub(crate) fn bundle(pki: &PkiDir) -> Result<Vec<CaCert>> {
    let path = pki.ca_cert();
    let Some(bytes) = read_opt(&path)? else {
        return Ok(Vec::new());
    };
    if bytes.first() == Some(&0x30) {
        return Ok(vec![inspect_ca(&bytes, &path)?]);
    }
    let mut out = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&bytes) {
        let pem = pem.map_err(|e| PkiError::BadCaFile {
            path: path.clone(),
            why: format!("not a PEM file ({e})"),
        })?;
        if pem.label == "CERTIFICATE" {
            out.push(inspect_ca(&pem.contents, &path)?);
        }
    }
    Ok(out)
}

/// The PEM text of a CA bundle: the certificates in order.
pub(crate) fn bundle_pem(certs: &[&CaCert]) -> String {
    certs.iter().map(|c| c.pem.as_str()).collect()
}

/// Why another CA is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Made by phase 1 of a rollover, trusted, not signing yet (`ca-next.*`).
    Next,
    /// Replaced by a rollover (`retired/ID/`), kept to sign its CRL.
    Retired,
}

/// A CA of the PKI that is not the signing one, with its key.
pub(crate) struct OtherCa {
    pub ca: Ca,
    pub role: Role,
}

/// The next CA (when a rollover made one) and the retired CAs, oldest directory name first.
pub(crate) fn others(pki: &PkiDir) -> Result<Vec<OtherCa>> {
    let mut out = Vec::new();
    if std::fs::symlink_metadata(pki.ca_next_cert()).is_ok() {
        out.push(OtherCa {
            ca: load_ca_files(&pki.ca_next_cert(), &pki.ca_next_key())?,
            role: Role::Next,
        });
    }
    let dir = pki.retired_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(PkiError::io("read", &dir, e)),
    };
    let mut dirs: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        out.push(OtherCa {
            ca: load_ca_files(&d.join("ca.crt"), &d.join("ca.key"))?,
            role: Role::Retired,
        });
    }
    Ok(out)
}

/// The subject key identifier of a certificate, if it has one.
pub(crate) fn subject_key_id(der: &[u8]) -> Option<Vec<u8>> {
    parse_der(der)?
        .iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
            _ => None,
        })
}

/// An rcgen name equal to `name`, attribute by attribute and string type by string type, so
/// that a certificate made with it has the very same subject bytes.
pub(crate) fn same_name(name: &X509Name<'_>, path: &Path) -> Result<DistinguishedName> {
    let bad = |why: String| PkiError::BadCaFile {
        path: path.to_path_buf(),
        why,
    };
    let mut dn = DistinguishedName::new();
    for rdn in name.iter() {
        let attrs: Vec<_> = rdn.iter().collect();
        let [attr] = attrs.as_slice() else {
            return Err(bad(
                "its subject has a multi-valued name component, which castellan cannot copy".into(),
            ));
        };
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .ok_or_else(|| bad("its subject has an unreadable attribute type".into()))?
            .collect();
        let data = attr.attr_value().data;
        let text = || {
            std::str::from_utf8(data)
                .map(str::to_string)
                .map_err(|_| bad("its subject has a string that is not UTF-8".into()))
        };
        let value = match attr.attr_value().header.tag() {
            Tag::Utf8String => DnValue::Utf8String(text()?),
            Tag::PrintableString => DnValue::PrintableString(
                PrintableString::try_from(text()?).map_err(|e| bad(format!("its subject: {e}")))?,
            ),
            Tag::Ia5String => DnValue::Ia5String(
                Ia5String::try_from(text()?).map_err(|e| bad(format!("its subject: {e}")))?,
            ),
            other => {
                return Err(bad(format!(
                    "its subject has a {other:?} attribute, which castellan cannot copy"
                )))
            }
        };
        dn.push(DnType::from_oid(&oid), value);
    }
    Ok(dn)
}

/// A new CA certificate (DER) for `key` with the same subject as `old`, valid for `days` from
/// `margin_s` seconds ago: the next CA of a rollover.
pub(crate) fn successor(
    old: &CaCert,
    key: &KeyPair,
    (days, margin_s): (u32, u32),
    now: OffsetDateTime,
    path: &Path,
) -> Result<Vec<u8>> {
    let x509 = parse_der(&old.der)
        .ok_or_else(|| PkiError::Internal("cannot re-read the CA certificate".into()))?;
    let dn = same_name(x509.subject(), path)?;
    super::ca::self_signed_ca(dn, key, days, now, margin_s)
}

/// The link certificate (DER): `new`'s subject and key, certified by `old`, as a CA, with the
/// subject key identifier of `new` (so that certificates `new` signs chain through it), valid
/// while both are. `None` when `old` expires within a day (a link would be of no use).
pub(crate) fn link(
    old: &Ca,
    new: &CaCert,
    now: OffsetDateTime,
    margin_s: u32,
) -> Result<Option<Vec<u8>>> {
    let not_after = old.cert.not_after.min(new.not_after);
    if not_after - now < Duration::days(1) {
        return Ok(None);
    }
    let x509 = parse_der(&new.der)
        .ok_or_else(|| PkiError::Internal("cannot re-read the new CA certificate".into()))?;
    let dn = same_name(x509.subject(), &old.cert_path)?;
    let mut params = ca_params(dn, 1, now, margin_s)?;
    params.not_after = not_after;
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    if let Some(id) = subject_key_id(&new.der) {
        params.key_identifier_method = KeyIdMethod::PreSpecified(id);
    }
    params.use_authority_key_identifier_extension = true;
    let public = rcgen::SubjectPublicKeyInfo::from_der(x509.public_key().raw)
        .map_err(|e| PkiError::Internal(format!("the new CA's public key: {e}")))?;
    let issuer: Issuer<'_, &KeyPair> = old.issuer()?;
    Ok(Some(params.signed_by(&public, &issuer)?.der().to_vec()))
}

/// The link certificate to send after a certificate of `signing`, if one applies: `ca-link.crt`
/// certifies `signing`'s key, the CA that signed it is still in `ca.crt`, and it is valid now.
pub(crate) fn link_for(pki: &PkiDir, signing: &CaCert) -> Result<Option<Vec<u8>>> {
    let Some(bytes) = read_opt(&pki.ca_link())? else {
        return Ok(None);
    };
    let Ok(der) = super::ca::decode_cert(&bytes) else {
        return Ok(None);
    };
    let Some(link) = parse_der(&der) else {
        return Ok(None);
    };
    let Some(signing_x509) = parse_der(&signing.der) else {
        return Ok(None);
    };
    if link.public_key().raw != signing_x509.public_key().raw || !link.validity().is_valid() {
        return Ok(None);
    }
    let trusted = bundle(pki)?.iter().skip(1).any(|c| {
        parse_der(&c.der).is_some_and(|x| link.verify_signature(Some(x.public_key())).is_ok())
    });
    Ok(trusted.then_some(der))
}

/// The PEM a server certificate is written with: the certificate, then the link certificate
/// when one applies ([`link_for`]).
pub(crate) fn server_chain_pem(pki: &PkiDir, signing: &CaCert, leaf_der: &[u8]) -> Result<String> {
    let mut pem = pem_encode("CERTIFICATE", leaf_der);
    if let Some(link) = link_for(pki, signing)? {
        pem.push_str(&pem_encode("CERTIFICATE", &link));
    }
    Ok(pem)
}
