//! Key types, key generation, and the private key formats we write.
//!
//! Keys are written as PKCS#8 v1: PEM (`-----BEGIN PRIVATE KEY-----`) for PostgreSQL, libpq and
//! OpenSSL 3.0, and DER (`client.pk8`) for JDBC. Ed25519 is not offered: rcgen produces PKCS#8 v2
//! Ed25519 keys, which OpenSSL 3.0 (Debian 12) and therefore libpq cannot read.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, RsaKeySize};
use serde::{Deserialize, Serialize};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{PkiError, Result};

/// A private key algorithm and size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KeyType {
    /// ECDSA on NIST P-256 with SHA-256: the default (small, fast, read everywhere).
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// RSA 2048 bits, SHA-256 signatures.
    Rsa2048,
    /// RSA 3072 bits, SHA-256 signatures.
    Rsa3072,
    /// RSA 4096 bits, SHA-256 signatures (EDB PEM's guides use it).
    Rsa4096,
}

impl KeyType {
    /// Every supported key type, default first.
    pub const ALL: [KeyType; 5] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name used on the command line, in playbooks and in index.json.
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// The valid names, for error messages and help.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// Parses a key type name (case-insensitive, `_` accepted for `-`).
    pub fn parse(s: &str) -> Result<KeyType> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|k| k.name() == norm)
            .ok_or_else(|| PkiError::UnknownKeyType {
                given: s.to_string(),
            })
    }

    /// True for the RSA types.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// Generates a new key pair of this type.
    pub fn generate(self) -> Result<KeyPair> {
        let kp = match self {
            KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyType::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
            }
            KeyType::Rsa3072 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072)
            }
            KeyType::Rsa4096 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_4096)
            }
        };
        kp.map_err(|e| PkiError::Internal(format!("generating a {} key: {e}", self.name())))
    }

    /// The key type of a certificate's public key, when it is one we know.
    pub fn of_spki(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyType> {
        let parsed = spki.parsed().ok()?;
        match parsed {
            PublicKey::RSA(rsa) => match rsa.key_size() {
                2048 => Some(KeyType::Rsa2048),
                3072 => Some(KeyType::Rsa3072),
                4096 => Some(KeyType::Rsa4096),
                _ => None,
            },
            PublicKey::EC(point) => match point.key_size() {
                256 => Some(KeyType::EcdsaP256),
                384 => Some(KeyType::EcdsaP384),
                _ => None,
            },
            _ => None,
        }
    }

    /// A description of a public key for messages ("rsa-4096", or "RSA 1024 bits" if unknown).
    pub fn describe_spki(spki: &SubjectPublicKeyInfo<'_>) -> String {
        if let Some(k) = Self::of_spki(spki) {
            return k.name().to_string();
        }
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("RSA {} bits", rsa.key_size()),
            Ok(PublicKey::EC(p)) => format!("EC {} bits", p.key_size()),
            _ => format!("key algorithm {}", spki.algorithm.algorithm.to_id_string()),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self> {
        KeyType::parse(s)
    }
}

impl TryFrom<String> for KeyType {
    type Error = PkiError;
    fn try_from(s: String) -> Result<Self> {
        KeyType::parse(&s)
    }
}

impl From<KeyType> for String {
    fn from(k: KeyType) -> String {
        k.name().to_string()
    }
}

/// The private key as PKCS#8 v1 PEM (`BEGIN PRIVATE KEY`), readable by OpenSSL 3.0 and libpq.
pub fn private_key_pem(key: &KeyPair) -> String {
    key.serialize_pem()
}

/// The private key as PKCS#8 v1 DER: the `client.pk8` that JDBC reads.
pub fn private_key_pk8(key: &KeyPair) -> Vec<u8> {
    key.serialize_der()
}

/// Parses a private key in PEM: PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1
/// (`RSA PRIVATE KEY`). The error text never contains key material.
pub fn parse_private_key_pem(text: &str) -> std::result::Result<KeyPair, String> {
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("the key is protected by a passphrase: decrypt it first (`openssl pkey -in KEY -out PLAIN.key`)".into());
    }
    if !text.contains("-----BEGIN") {
        return Err("not a PEM private key (no -----BEGIN line)".into());
    }
    KeyPair::from_pem(text).map_err(|_| {
        "not a readable private key (expected an unencrypted PKCS#8, SEC1 or PKCS#1 PEM key)"
            .to_string()
    })
}

/// The label of the first PEM block of a key file (`PRIVATE KEY`, `EC PRIVATE KEY`...).
pub(crate) fn pem_label(text: &str) -> Option<&str> {
    let start = text.find("-----BEGIN ")? + "-----BEGIN ".len();
    let rest = &text[start..];
    let end = rest.find("-----")?;
    Some(&rest[..end])
}

/// True when `key` is the private key of the public key in `spki`.
pub fn key_matches_spki(key: &KeyPair, spki: &SubjectPublicKeyInfo<'_>) -> bool {
    key.public_key_raw() == spki.subject_public_key.data.as_ref()
}

/// True when the DER `der` is a PKCS#8 *v1* PrivateKeyInfo (version INTEGER 0).
pub fn is_pkcs8_v1(der: &[u8]) -> bool {
    // SEQUENCE, definite length (short or long form), then INTEGER 0.
    if der.first() != Some(&0x30) || der.len() < 2 {
        return false;
    }
    let len_byte = der[1];
    let header = if len_byte & 0x80 == 0 {
        2
    } else {
        2 + (len_byte & 0x7f) as usize
    };
    der.get(header..header + 3) == Some(&[0x02, 0x01, 0x00][..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names() {
        assert_eq!(KeyType::parse("ecdsa-p256").unwrap(), KeyType::EcdsaP256);
        assert_eq!(KeyType::parse("RSA_4096").unwrap(), KeyType::Rsa4096);
        let err = KeyType::parse("ed25519").unwrap_err();
        assert!(err.to_string().contains("ecdsa-p384"));
        assert_eq!(KeyType::default(), KeyType::EcdsaP256);
        for k in KeyType::ALL {
            assert_eq!(KeyType::parse(k.name()).unwrap(), k);
        }
    }

    #[test]
    fn generated_keys_are_pkcs8_v1_and_round_trip() {
        for k in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
            let kp = k.generate().unwrap();
            let der = private_key_pk8(&kp);
            assert!(is_pkcs8_v1(&der), "{k} is not PKCS#8 v1");
            let pem = private_key_pem(&kp);
            assert_eq!(pem_label(&pem), Some("PRIVATE KEY"));
            let back = parse_private_key_pem(&pem).unwrap();
            assert_eq!(back.public_key_raw(), kp.public_key_raw());
        }
    }

    #[test]
    fn garbage_keys_are_rejected_without_echoing() {
        let err = parse_private_key_pem("hello secret").unwrap_err();
        assert!(!err.contains("secret"));
        assert!(parse_private_key_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        )
        .is_err());
    }
}
