//! The checks a server certificate made outside castellan passes before it is pushed
//! (`pg_tls_ca_mode: external`, module `pki_check`): the key is the certificate's, the chain
//! verifies against the CA, the names clients use are in its SANs, it is valid now, and its key
//! usages fit a TLS server. The first check that fails is the answer, with its reason; nothing
//! in a message is key material.

use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::ca::{common_name, name_attrs, render_subject};
use super::issue::{cert_sans, list_sans, time_of, San};
use super::key::{key_matches_spki, parse_private_key_pem, KeyType};
use super::{days_until, rfc3339, sha256_hex};

/// What to check: the files' bytes (PEM) and the names clients connect to.
#[derive(Clone, Debug)]
pub struct ServerCheck<'a> {
    /// The server certificate, then any intermediate CA certificates (a chain file).
    pub cert_pem: &'a [u8],
    pub key_pem: &'a [u8],
    /// One or more CA certificates (what clients get as `sslrootcert`).
    pub ca_pem: &'a [u8],
    /// The names clients use (`sslmode=verify-full`): DNS names or IP addresses.
    pub names: &'a [String],
    pub now: OffsetDateTime,
}

/// Why a certificate is not pushed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    #[error("the {what} is unreadable: {why}")]
    Unreadable { what: &'static str, why: String },
    #[error("the private key does not match the certificate (it belongs to another certificate): give the key this certificate was issued for")]
    KeyMismatch,
    #[error("the certificate chain does not verify against the CA: {why}")]
    Chain { why: String },
    #[error("{name} is not in the certificate's subjectAltName ({sans}): clients using sslmode=verify-full with {name} would reject it; have it re-issued with {name} as a SAN")]
    NameMissing { name: String, sans: String },
    #[error("the certificate expired on {not_after}")]
    Expired { not_after: String },
    #[error("the certificate is not valid before {not_before}")]
    NotYetValid { not_before: String },
    #[error("the certificate does not fit a TLS server: {why}")]
    Usage { why: String },
}

/// What a certificate that passed is (public facts only) and the warnings it earned.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub subject: String,
    pub cn: String,
    pub sans: Vec<String>,
    pub key_type: String,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub sha256: String,
    pub not_after: String,
    pub days_left: i64,
    pub warnings: Vec<String>,
}

fn unreadable(what: &'static str, why: impl Into<String>) -> CheckFailure {
    CheckFailure::Unreadable {
        what,
        why: why.into(),
    }
}

/// Every CERTIFICATE block of a PEM file, as DER (in order).
fn pem_certs(bytes: &[u8], what: &'static str) -> Result<Vec<Vec<u8>>, CheckFailure> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(bytes) {
        let block = block.map_err(|e| unreadable(what, format!("bad PEM ({e})")))?;
        if block.label == "CERTIFICATE" {
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(unreadable(what, "no CERTIFICATE block in it"));
    }
    Ok(out)
}

fn parse<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>, CheckFailure> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| unreadable(what, format!("not an X.509 certificate ({e})")))
}

fn is_ca(c: &X509Certificate<'_>) -> bool {
    matches!(c.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// Whether `pattern` (a SAN dNSName, maybe `*.example.com`) covers the DNS name `name`.
fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => name
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => pattern == name,
    }
}

/// Checks the names against the SANs; a certificate without DNS/IP SANs whose CN is the name
/// passes with a warning.
fn check_names(
    x509: &X509Certificate<'_>,
    names: &[String],
    warnings: &mut Vec<String>,
) -> Result<(), CheckFailure> {
    let sans = cert_sans(x509);
    let host_sans = sans
        .iter()
        .filter(|s| matches!(s, San::Dns(_) | San::Ip(_)))
        .count();
    let cn = common_name(x509.subject()).unwrap_or_default();
    for name in names {
        let ip: Option<IpAddr> = name.trim_matches(['[', ']']).parse().ok();
        let found = sans.iter().any(|s| match (s, ip) {
            (San::Ip(a), Some(b)) => *a == b,
            (San::Dns(p), None) => dns_matches(p, name),
            _ => false,
        });
        if found {
            continue;
        }
        if host_sans == 0 && ip.is_none() && dns_matches(&cn, name) {
            warnings.push(format!(
                "{name} is only the certificate's CN (it has no subjectAltName): libpq accepts that, \
                 but rustls-based clients (castellan's pg_verify among them) need {name} as a SAN"
            ));
            continue;
        }
        let have = if sans.is_empty() {
            format!("it has none; CN={cn}")
        } else {
            list_sans(&sans)
        };
        return Err(CheckFailure::NameMissing {
            name: name.clone(),
            sans: have,
        });
    }
    Ok(())
}

/// The key usages a TLS server needs: not a CA, digitalSignature when key usages are listed
/// (TLS 1.3 and ECDHE sign with the server's key), serverAuth when extended ones are.
fn check_usage(x509: &X509Certificate<'_>) -> Result<(), CheckFailure> {
    let usage = |why: String| CheckFailure::Usage { why };
    if is_ca(x509) {
        return Err(usage(
            "it is a CA certificate (basicConstraints CA:TRUE), not a server's".into(),
        ));
    }
    match x509.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => {
            return Err(usage(format!(
                "its key usage ({}) lacks digitalSignature, which TLS 1.3 and ECDHE need",
                ku.value
            )))
        }
        Err(e) => return Err(usage(format!("its key usage is unreadable ({e})"))),
        _ => {}
    }
    match x509.extended_key_usage() {
        Ok(Some(eku)) if !(eku.value.server_auth || eku.value.any) => {
            return Err(usage(
                "its extended key usage lacks serverAuth (TLS Web Server Authentication)".into(),
            ))
        }
        Err(e) => return Err(usage(format!("its extended key usage is unreadable ({e})"))),
        _ => {}
    }
    Ok(())
}

/// Walks from the leaf through the intermediates of the certificate file to a certificate of
/// the CA file, checking each signature, and that each issuer is a CA valid now.
fn check_chain(
    leaf: &X509Certificate<'_>,
    intermediates: &[X509Certificate<'_>],
    roots: &[X509Certificate<'_>],
    now: OffsetDateTime,
) -> Result<(), CheckFailure> {
    let chain = |why: String| CheckFailure::Chain { why };
    let valid_now = |c: &X509Certificate<'_>| -> Result<(), CheckFailure> {
        let nb = time_of(&c.validity().not_before).map_err(|e| chain(e.to_string()))?;
        let na = time_of(&c.validity().not_after).map_err(|e| chain(e.to_string()))?;
        if na <= now {
            return Err(chain(format!("{} expired on {}", c.subject(), rfc3339(na))));
        }
        if nb > now {
            return Err(chain(format!(
                "{} is not valid before {}",
                c.subject(),
                rfc3339(nb)
            )));
        }
        Ok(())
    };
    let signed_by = |child: &X509Certificate<'_>, parent: &X509Certificate<'_>| {
        child.issuer().as_raw() == parent.subject().as_raw()
            && child.verify_signature(Some(parent.public_key())).is_ok()
    };
    let mut cur = leaf.clone();
    for _ in 0..=intermediates.len() {
        if let Some(root) = roots.iter().find(|r| signed_by(&cur, r)) {
            if !is_ca(root) {
                return Err(chain(format!(
                    "{} in the CA file is not a CA certificate (no basicConstraints CA:TRUE)",
                    root.subject()
                )));
            }
            return valid_now(root);
        }
        match intermediates.iter().find(|i| signed_by(&cur, i)) {
            Some(next) => {
                if !is_ca(next) {
                    return Err(chain(format!(
                        "{} in the certificate file is not a CA certificate",
                        next.subject()
                    )));
                }
                valid_now(next)?;
                cur = next.clone();
            }
            None => break,
        }
    }
    let names: Vec<String> = roots.iter().map(|r| r.subject().to_string()).collect();
    Err(chain(format!(
        "{} was issued by {}, and no certificate of the CA file ({}) signed it",
        cur.subject(),
        cur.issuer(),
        names.join("; ")
    )))
}

/// Runs every check, in order: readable files, key matches, valid now, usage, chain, names.
pub fn check_server_files(c: &ServerCheck<'_>) -> Result<CheckReport, CheckFailure> {
    let certs = pem_certs(c.cert_pem, "certificate file")?;
    let ca_ders = pem_certs(c.ca_pem, "CA file")?;
    let leaf = parse(&certs[0], "certificate file")?;
    let intermediates = certs[1..]
        .iter()
        .map(|d| parse(d, "certificate file"))
        .collect::<Result<Vec<_>, _>>()?;
    let roots = ca_ders
        .iter()
        .map(|d| parse(d, "CA file"))
        .collect::<Result<Vec<_>, _>>()?;
    let key_text =
        std::str::from_utf8(c.key_pem).map_err(|_| unreadable("key file", "binary data"))?;
    let key = parse_private_key_pem(key_text).map_err(|why| unreadable("key file", why))?;
    if !key_matches_spki(&key, leaf.public_key()) {
        return Err(CheckFailure::KeyMismatch);
    }
    let nb = time_of(&leaf.validity().not_before)
        .map_err(|e| unreadable("certificate file", e.to_string()))?;
    let na = time_of(&leaf.validity().not_after)
        .map_err(|e| unreadable("certificate file", e.to_string()))?;
    if na <= c.now {
        return Err(CheckFailure::Expired {
            not_after: rfc3339(na),
        });
    }
    if nb > c.now {
        return Err(CheckFailure::NotYetValid {
            not_before: rfc3339(nb),
        });
    }
    check_usage(&leaf)?;
    check_chain(&leaf, &intermediates, &roots, c.now)?;
    let mut warnings = Vec::new();
    check_names(&leaf, c.names, &mut warnings)?;
    let days_left = days_until(na, c.now);
    if days_left < 30 {
        warnings.push(format!(
            "the certificate expires in {days_left} days ({})",
            rfc3339(na)
        ));
    }
    Ok(CheckReport {
        subject: render_subject(&name_attrs(leaf.subject())),
        cn: common_name(leaf.subject()).unwrap_or_default(),
        sans: cert_sans(&leaf).iter().map(San::to_string).collect(),
        key_type: KeyType::describe_spki(leaf.public_key()),
        sha256: sha256_hex(&certs[0]),
        not_after: rfc3339(na),
        days_left,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    use time::Duration;

    struct Made {
        cert: String,
        key: String,
    }

    fn ca(cn: &str) -> (Made, KeyPair, CertificateParams) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        let made = Made {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        (made, key, p)
    }

    fn server(
        issuer: (&KeyPair, &CertificateParams),
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> Made {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, "db1.example.com");
        p.subject_alt_names = vec![
            SanType::DnsName("db1.example.com".try_into().unwrap()),
            SanType::IpAddress("10.0.0.1".parse().unwrap()),
        ];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.is_ca = IsCa::ExplicitNoCa;
        tweak(&mut p);
        let iss = Issuer::from_params(issuer.1, issuer.0);
        let cert = p.signed_by(&key, &iss).unwrap();
        Made {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn run(cert: &str, key: &str, ca: &str, names: &[&str]) -> Result<CheckReport, CheckFailure> {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        check_server_files(&ServerCheck {
            cert_pem: cert.as_bytes(),
            key_pem: key.as_bytes(),
            ca_pem: ca.as_bytes(),
            names: &names,
            now: OffsetDateTime::now_utc(),
        })
    }

    #[test]
    fn a_good_pair_passes_by_dns_name_and_ip() {
        let (c, ck, cp) = ca("Ext CA");
        let s = server((&ck, &cp), |_| {});
        let r = run(&s.cert, &s.key, &c.cert, &["db1.example.com", "10.0.0.1"]).unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        assert_eq!(r.cn, "db1.example.com");
        assert_eq!(r.sans, vec!["DNS:db1.example.com", "IP:10.0.0.1"]);
        assert_eq!(r.sha256.len(), 64);
    }

    #[test]
    fn a_key_of_another_certificate_fails() {
        let (c, ck, cp) = ca("Ext CA");
        let s = server((&ck, &cp), |_| {});
        let other = server((&ck, &cp), |_| {});
        assert_eq!(
            run(&s.cert, &other.key, &c.cert, &["db1.example.com"]).unwrap_err(),
            CheckFailure::KeyMismatch
        );
        let msg = CheckFailure::KeyMismatch.to_string();
        assert!(msg.contains("does not match"), "{msg}");
    }

    #[test]
    fn another_ca_fails_the_chain() {
        let (_, ck, cp) = ca("Ext CA");
        let (other_ca, _, _) = ca("Other CA");
        let s = server((&ck, &cp), |_| {});
        let e = run(&s.cert, &s.key, &other_ca.cert, &["db1.example.com"]).unwrap_err();
        assert!(
            matches!(&e, CheckFailure::Chain { why } if why.contains("Ext CA") && why.contains("Other CA")),
            "{e}"
        );
    }

    #[test]
    fn an_intermediate_in_the_certificate_file_completes_the_chain() {
        let (root, rk, rp) = ca("Root CA");
        let ik = KeyPair::generate().unwrap();
        let mut ip = CertificateParams::default();
        ip.distinguished_name.push(DnType::CommonName, "Issuing CA");
        ip.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ip.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let inter = ip.signed_by(&ik, &Issuer::from_params(&rp, &rk)).unwrap();
        let s = server((&ik, &ip), |_| {});
        let chain = format!("{}{}", s.cert, inter.pem());
        run(&chain, &s.key, &root.cert, &["db1.example.com"]).unwrap();
        // Without the intermediate the chain is broken.
        let e = run(&s.cert, &s.key, &root.cert, &["db1.example.com"]).unwrap_err();
        assert!(matches!(e, CheckFailure::Chain { .. }), "{e}");
    }

    #[test]
    fn a_name_outside_the_sans_fails_with_the_sans_listed() {
        let (c, ck, cp) = ca("Ext CA");
        let s = server((&ck, &cp), |_| {});
        let e = run(&s.cert, &s.key, &c.cert, &["db2.example.com"]).unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, CheckFailure::NameMissing { .. })
                && msg.contains("db2.example.com")
                && msg.contains("DNS:db1.example.com"),
            "{msg}"
        );
        let e = run(&s.cert, &s.key, &c.cert, &["10.0.0.2"]).unwrap_err();
        assert!(matches!(e, CheckFailure::NameMissing { .. }), "{e}");
    }

    #[test]
    fn a_wildcard_covers_one_label() {
        assert!(dns_matches("*.example.com", "db1.example.com"));
        assert!(!dns_matches("*.example.com", "a.b.example.com"));
        assert!(!dns_matches("*.example.com", "example.com"));
        assert!(dns_matches("DB1.example.com.", "db1.example.com"));
    }

    #[test]
    fn a_cn_without_sans_passes_with_the_rustls_warning() {
        let (c, ck, cp) = ca("Ext CA");
        let s = server((&ck, &cp), |p| p.subject_alt_names.clear());
        let r = run(&s.cert, &s.key, &c.cert, &["db1.example.com"]).unwrap();
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("rustls"), "{:?}", r.warnings);
        let e = run(&s.cert, &s.key, &c.cert, &["db9.example.com"]).unwrap_err();
        assert!(
            e.to_string().contains("it has none; CN=db1.example.com"),
            "{e}"
        );
    }

    #[test]
    fn expired_and_not_yet_valid_fail() {
        let (c, ck, cp) = ca("Ext CA");
        let now = OffsetDateTime::now_utc();
        let s = server((&ck, &cp), |p| {
            p.not_before = now - Duration::days(20);
            p.not_after = now - Duration::days(1);
        });
        let e = run(&s.cert, &s.key, &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(matches!(e, CheckFailure::Expired { .. }), "{e}");
        let s = server((&ck, &cp), |p| {
            p.not_before = now + Duration::days(2);
            p.not_after = now + Duration::days(20);
        });
        let e = run(&s.cert, &s.key, &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(matches!(e, CheckFailure::NotYetValid { .. }), "{e}");
    }

    #[test]
    fn usages_that_do_not_fit_a_server_fail() {
        let (c, ck, cp) = ca("Ext CA");
        let s = server((&ck, &cp), |p| {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]
        });
        let e = run(&s.cert, &s.key, &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(e.to_string().contains("serverAuth"), "{e}");
        let s = server((&ck, &cp), |p| {
            p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]
        });
        let e = run(&s.cert, &s.key, &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(e.to_string().contains("digitalSignature"), "{e}");
        let s = server((&ck, &cp), |p| {
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)
        });
        let e = run(&s.cert, &s.key, &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(e.to_string().contains("CA:TRUE"), "{e}");
    }

    #[test]
    fn unreadable_files_fail_without_echoing_the_key() {
        let (c, ck, cp) = ca("Ext CA");
        let s = server((&ck, &cp), |_| {});
        let e = run(&s.cert, "secret-bytes", &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(
            matches!(
                &e,
                CheckFailure::Unreadable {
                    what: "key file",
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("secret-bytes"));
        let e = run("garbage", &s.key, &c.cert, &["db1.example.com"]).unwrap_err();
        assert!(
            matches!(
                e,
                CheckFailure::Unreadable {
                    what: "certificate file",
                    ..
                }
            ),
            "{e}"
        );
        let e = run(&s.cert, &s.key, "", &["db1.example.com"]).unwrap_err();
        assert!(
            matches!(
                e,
                CheckFailure::Unreadable {
                    what: "CA file",
                    ..
                }
            ),
            "{e}"
        );
    }
}
