//! `client.pfx`: a PKCS#12 file holding a client certificate, its private key and the CA
//! certificate, for .NET programs (CAST Imaging's .NET components, Npgsql, `X509Certificate2`).
//!
//! Written by the pure-Rust `p12-keystore` crate with the algorithms OpenSSL 3 uses by default:
//! the key bag and the certificate bags are encrypted with PBES2 (AES-256-CBC, key from
//! PBKDF2-HMAC-SHA256, 10,000 iterations, random salt and IV), and the whole file carries an
//! HMAC-SHA256 MAC (10,000 iterations). Windows reads this from Windows 10 1709 and Windows
//! Server 2019 on, .NET on Linux and macOS with its own reader; older Windows (Server 2016) reads
//! only the legacy 3DES/SHA-1 form, which castellan does not write.
//!
//! Salt and IV are random, so two files with the same content differ: [`check`] tells whether an
//! existing file already opens with the password and holds the current certificate and key, so
//! that it is only rewritten when something changed.
use std::fmt;

use p12_keystore::error::Error as P12Error;
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12ImportPolicy,
    PrivateKey, PrivateKeyChain,
};
use sha1::{Digest, Sha1};

use super::{PkiError, Result};

/// PBKDF2 iterations for the encryption key and for the MAC key.
pub const ITERATIONS: u32 = 10_000;

/// The longest password accepted, in characters.
const MAX_PASSWORD_CHARS: usize = 1024;

/// The password of `client.pfx`. Empty by default: the key in the file is then protected by
/// nothing but the file's mode (0600), and anyone who gets the file gets the key.
///
/// It never appears in `Debug` output, an outcome, an error or a log line.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PfxPassword(String);

impl PfxPassword {
    /// Checks a password: PKCS#12 stores it as a BMPString, so it may not hold NUL or a
    /// character outside the Basic Multilingual Plane (an emoji, say). The error never quotes it.
    pub fn new(password: impl Into<String>) -> Result<PfxPassword> {
        let p = password.into();
        let bad = |why: &str| {
            Err(PkiError::InvalidArgument(format!(
                "the PKCS#12 (client.pfx) password {why}: choose another one"
            )))
        };
        if p.chars().count() > MAX_PASSWORD_CHARS {
            return bad(&format!("is longer than {MAX_PASSWORD_CHARS} characters"));
        }
        if p.contains('\0') {
            return bad("contains a NUL character");
        }
        if p.chars().any(|c| u32::from(c) > 0xFFFF) {
            return bad("contains a character outside the Basic Multilingual Plane (PKCS#12 stores passwords as UCS-2)");
        }
        Ok(PfxPassword(p))
    }

    /// True for the empty password (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PfxPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PfxPassword(<redacted>)")
    }
}

/// What goes into a `client.pfx`: DER encodings only.
pub(crate) struct PfxContent<'a> {
    /// The name the key is filed under (its `friendlyName`).
    pub alias: &'a str,
    /// The private key, PKCS#8 DER.
    pub key_pk8: &'a [u8],
    pub cert_der: &'a [u8],
    pub ca_der: &'a [u8],
}

/// What an existing `client.pfx` is, next to what it should hold.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// It opens with the password and holds this certificate, this key and the CA certificate.
    Holds,
    /// Its MAC does not verify with the password (the password changed, or the file was made
    /// with another one).
    WrongPassword,
    /// It opens but holds another certificate, key or CA.
    Differs,
    /// It is not a PKCS#12 file castellan can read.
    Unreadable,
}

fn internal(e: P12Error) -> PkiError {
    PkiError::Internal(format!("writing the PKCS#12 file: {e}"))
}

/// Builds the PKCS#12 file (random salts and IV).
pub(crate) fn build(c: &PfxContent<'_>, password: &PfxPassword) -> Result<Vec<u8>> {
    let key = PrivateKey::from_der(c.key_pk8).map_err(internal)?;
    let certs = [c.cert_der, c.ca_der]
        .into_iter()
        .map(Certificate::from_der)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(internal)?;
    // The localKeyID ties the key to its certificate: the certificate's SHA-1, as OpenSSL does.
    let key_id = Sha1::digest(c.cert_der).to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        c.alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(key_id, key, certs)),
    );
    store
        .writer(password.expose())
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(internal)
}

/// Does `pfx` open with `password` and hold exactly `c`'s certificate and key, and the CA?
pub(crate) fn check(pfx: &[u8], c: &PfxContent<'_>, password: &PfxPassword) -> Check {
    let store = match KeyStore::from_pkcs12(pfx, password.expose(), Pkcs12ImportPolicy::Strict) {
        Ok(s) => s,
        Err(P12Error::MacError(_)) => return Check::WrongPassword,
        Err(_) => return Check::Unreadable,
    };
    let chains: Vec<&PrivateKeyChain> = store
        .entries()
        .filter_map(|(_, e)| match e {
            KeyStoreEntry::PrivateKeyChain(chain) => Some(chain),
            _ => None,
        })
        .collect();
    let [chain] = chains.as_slice() else {
        return Check::Differs;
    };
    let certs: Vec<&[u8]> = chain.certs().iter().map(Certificate::as_der).collect();
    if chain.key().as_der() == c.key_pk8 && certs == [c.cert_der, c.ca_der] {
        Check::Holds
    } else {
        Check::Differs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    struct Material {
        key: Vec<u8>,
        cert: Vec<u8>,
        ca: Vec<u8>,
    }

    fn material() -> Material {
        let ca_key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "Test CA");
        let ca = p.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut lp = CertificateParams::default();
        lp.distinguished_name.push(DnType::CommonName, "app");
        let issuer = Issuer::from_ca_cert_der(ca.der(), &ca_key).unwrap();
        let leaf = lp.signed_by(&key, &issuer).unwrap();
        Material {
            key: key.serialize_der(),
            cert: leaf.der().to_vec(),
            ca: ca.der().to_vec(),
        }
    }

    fn content(m: &Material) -> PfxContent<'_> {
        PfxContent {
            alias: "app",
            key_pk8: &m.key,
            cert_der: &m.cert,
            ca_der: &m.ca,
        }
    }

    #[test]
    fn a_built_file_holds_its_content_and_only_with_its_password() {
        let m = material();
        for pw in ["", "s3cret pässword"] {
            let pw = PfxPassword::new(pw).unwrap();
            let pfx = build(&content(&m), &pw).unwrap();
            assert_eq!(check(&pfx, &content(&m), &pw), Check::Holds);
            let other = PfxPassword::new("other").unwrap();
            assert_eq!(check(&pfx, &content(&m), &other), Check::WrongPassword);
            // Random salts and IV: the same content twice gives two different files.
            assert_ne!(build(&content(&m), &pw).unwrap(), pfx);
        }
        let pw = PfxPassword::default();
        let pfx = build(&content(&m), &pw).unwrap();
        let n = material();
        let mixed = PfxContent {
            cert_der: &n.cert,
            ..content(&m)
        };
        assert_eq!(check(&pfx, &mixed, &pw), Check::Differs);
        assert_eq!(check(b"not a pfx", &content(&m), &pw), Check::Unreadable);
    }

    #[test]
    fn passwords_are_checked_and_never_shown() {
        let secret = "hunter2-\u{1F600}";
        let err = PfxPassword::new(secret).unwrap_err();
        assert!(err.is_invalid_input());
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = PfxPassword::new("a\0b").unwrap_err().to_string();
        assert!(err.contains("NUL"), "{err}");
        assert!(PfxPassword::new("x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
        let ok = PfxPassword::new("hunter2").unwrap();
        assert!(!format!("{ok:?}").contains("hunter2"));
        assert!(PfxPassword::default().is_empty() && !ok.is_empty());
    }
}
