//! Recognising secret material, so that reports never print it: PEM private keys of every
//! label, DER keys (PKCS#8, encrypted PKCS#8, PKCS#1, SEC1, DSA), PKCS#12 bundles, OpenSSH and
//! PuTTY keys, Ansible vault payloads, and base64 text that decodes to a DER key.
//!
//! Besides what it looks like, content is secret when it holds a value castellan knows to be
//! secret: every value vault decryption revealed, the vault passwords, the secrets the `secret`
//! module generated ([`crate::vault::revealed`]). Those are masked wherever they occur: [`mask`]
//! replaces each occurrence in a text with `<redacted>` (the text reporter's every line, the JSON
//! document's every string, error messages, `castellan inventory`), [`scrub`] does it in a
//! result, and a diff of content holding one is not shown at all.
//!
//! A false positive costs a `<redacted>` where a diff or a value could have been shown; a false
//! negative prints a key. The tests below keep both in check with keys of every kind.
use std::borrow::Cow;

use base64::Engine as _;
use serde_json::Value;

use crate::vault::revealed;

/// What is shown in place of a secret, in diffs, results and JSON.
pub const REDACTED: &str = "<redacted>";

/// Texts that mark what follows as secret. `PRIVATE KEY` covers every PEM label of a private
/// key (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `RSA`/`EC`/`DSA`/`OPENSSH PRIVATE KEY`, `PGP
/// PRIVATE KEY BLOCK`, `SSH2 ENCRYPTED PRIVATE KEY`).
const MARKERS: &[&[u8]] = &[
    b"PRIVATE KEY",
    b"PuTTY-User-Key-File-",
    b"$ANSIBLE_VAULT;",
    // The binary form of an OpenSSH private key (the base64 body of its PEM).
    b"openssh-key-v1\0",
];

/// Is this content (text or binary) key material or another secret, or does it hold a known
/// secret value?
pub fn is_secret(content: &[u8]) -> bool {
    is_key_material(content) || revealed::found_in(content)
}

/// Does this content look like key material (a private key, a bundle, vault data)?
pub fn is_key_material(content: &[u8]) -> bool {
    MARKERS
        .iter()
        .any(|m| content.windows(m.len()).any(|w| w == *m))
        || is_der_secret(content)
        || has_base64_secret(content)
}

/// A string that must not be printed as it is.
pub fn is_secret_text(s: &str) -> bool {
    is_secret(s.as_bytes())
}

/// `text` with every occurrence of a known secret value replaced by `<redacted>`.
pub fn mask(text: &str) -> Cow<'_, str> {
    revealed::mask(text, REDACTED)
}

/// A text as it may be shown: `<redacted>` when it is key material, else with every known
/// secret value in it masked.
pub fn shown(text: &str) -> Cow<'_, str> {
    if is_key_material(text.as_bytes()) {
        Cow::Borrowed(REDACTED)
    } else {
        mask(text)
    }
}

/// Parts of a setting's name (upper-cased, `-` and `.` read as `_`) that say its value is a
/// secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "CREDENTIAL",
    "APIKEY",
    "API_KEY",
    "PRIVATE_KEY",
    "PRIVATEKEY",
    "ACCESS_KEY",
    "SESSION_KEY",
    "SIGNING_KEY",
    "ENCRYPTION_KEY",
    "MASTER_KEY",
];

/// Whole words of a name that say the same (`DB_PASS`, `SMTP_PWD`; not `PASSTHROUGH`).
const SECRET_NAME_WORDS: &[&str] = &["PASS", "PWD", "PW"];

/// A setting (`NAME=value` in an environment file, an option) whose value must not be shown:
/// its name says it is a password, a token, a secret or a private key (`SECRET_KEY`,
/// `DB_PASSWORD`, `S3_TRACE_AWS_SECRET_ACCESS_KEY`; not a path setting like `CSS_SSL_KEY`, nor
/// the shell's `PWD`), or its value holds one: key material ([`is_secret_text`]), a URL with a
/// password (`postgres://user:pw@host/db`, `rediss://:pw@host`), a `password=` parameter.
pub fn is_secret_setting(name: &str, value: &str) -> bool {
    let upper: String = name
        .chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    let by_name = SECRET_NAME_PARTS.iter().any(|p| upper.contains(p))
        || (upper != "PWD"
            && upper
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|w| SECRET_NAME_WORDS.contains(&w)));
    by_name || url_has_password(value) || has_password_parameter(value) || is_secret_text(value)
}

/// `scheme://user:password@host...`: the authority holds `@` and its user part a `:`.
fn url_has_password(value: &str) -> bool {
    value.match_indices("://").any(|(i, _)| {
        let rest = &value[i + 3..];
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        authority
            .rfind('@')
            .is_some_and(|at| authority[..at].contains(':'))
    })
}

/// A connection string or URL query with a password (`password=...`, `passwd=...`).
fn has_password_parameter(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    ["password=", "passwd="].iter().any(|p| lower.contains(p))
}

/// A copy of `v` where every string that is key material is `<redacted>` and every known secret
/// value inside a string is masked (keys of objects are kept: they are names, not values).
pub fn scrub(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(shown(s).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), scrub(x))).collect()),
        other => other.clone(),
    }
}

/// A copy of `v` with every known secret value masked in every string, keys included: the last
/// pass over a document before it is printed.
pub fn mask_value(v: &Value) -> Value {
    if revealed::is_empty() {
        return v.clone();
    }
    match v {
        Value::String(s) => Value::String(mask(s).into_owned()),
        Value::Array(a) => Value::Array(a.iter().map(mask_value).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (mask(k).into_owned(), mask_value(x)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Does any value in `v` hold secret material?
pub fn value_is_secret(v: &Value) -> bool {
    match v {
        Value::String(s) => is_secret_text(s),
        Value::Array(a) => a.iter().any(value_is_secret),
        Value::Object(m) => m.values().any(value_is_secret),
        _ => false,
    }
}

/// One DER element: tag, content, and the bytes after it.
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
    rest: &'a [u8],
}

/// Read one DER element (definite lengths only, at most 4 length bytes).
fn tlv(b: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &x in &b[..n] {
            len = (len << 8) | usize::from(x);
        }
        b = &b[n..];
        len
    };
    if b.len() < len {
        return None;
    }
    Some(Tlv {
        tag,
        body: &b[..len],
        rest: &b[len..],
    })
}

/// The elements of a constructed value, or `None` when they do not parse exactly.
fn children(mut b: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut v = Vec::new();
    while !b.is_empty() {
        let t = tlv(b)?;
        b = t.rest;
        v.push(t);
    }
    Some(v)
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;

/// An AlgorithmIdentifier: a SEQUENCE starting with an OID.
fn is_algorithm(t: &Tlv<'_>) -> bool {
    t.tag == SEQUENCE && tlv(t.body).is_some_and(|o| o.tag == OID)
}

fn small_int(t: &Tlv<'_>, allowed: &[u8]) -> bool {
    t.tag == INTEGER && t.body.len() == 1 && allowed.contains(&t.body[0])
}

/// DER (or BER, for PKCS#12) that parses as a private key or a key bundle.
pub fn is_der_secret(b: &[u8]) -> bool {
    // PKCS#12 written with indefinite lengths (BER): SEQUENCE, then INTEGER 3.
    if b.starts_with(&[SEQUENCE, 0x80, INTEGER, 0x01, 0x03]) {
        return true;
    }
    let Some(outer) = tlv(b) else { return false };
    if outer.tag != SEQUENCE || !outer.rest.iter().all(|&x| x == 0 || x == b'\n') {
        return false;
    }
    let Some(c) = children(outer.body) else {
        return false;
    };
    match c.as_slice() {
        // PKCS#8 PrivateKeyInfo / OneAsymmetricKey: version 0|1, algorithm, OCTET STRING key.
        [v, alg, key, ..]
            if small_int(v, &[0, 1]) && is_algorithm(alg) && key.tag == OCTET_STRING =>
        {
            true
        }
        // EncryptedPrivateKeyInfo: algorithm, OCTET STRING.
        [alg, data] if is_algorithm(alg) && data.tag == OCTET_STRING => true,
        // SEC1 ECPrivateKey: version 1, OCTET STRING scalar, optional [0] parameters, [1] key.
        [v, key, rest @ ..]
            if small_int(v, &[1])
                && key.tag == OCTET_STRING
                && rest.iter().all(|t| t.tag == 0xa0 || t.tag == 0xa1) =>
        {
            true
        }
        // PKCS#12 PFX: version 3, ContentInfo (a SEQUENCE starting with an OID), optional MacData.
        [v, content, ..]
            if small_int(v, &[3])
                && content.tag == SEQUENCE
                && tlv(content.body).is_some_and(|o| o.tag == OID) =>
        {
            true
        }
        // PKCS#1 RSAPrivateKey (version, n, e, d, p, q, dp, dq, qinv) and OpenSSL's DSA key
        // (version, p, q, g, y, x): a small version, then only INTEGERs.
        [v, ints @ ..]
            if small_int(v, &[0, 1])
                && ints.len() >= 5
                && ints.iter().all(|t| t.tag == INTEGER) =>
        {
            true
        }
        _ => false,
    }
}

fn is_std_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

fn is_url_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')
}

/// Which bytes belong to a base64 alphabet.
type CharClass = fn(u8) -> bool;

/// Runs of at least 64 characters of one base64 alphabet (line breaks inside are skipped).
fn runs(content: &[u8], is_char: CharClass) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut run = Vec::new();
    for &b in content.iter().chain(std::iter::once(&b' ')) {
        if is_char(b) {
            run.push(b);
        } else if !matches!(b, b'\n' | b'\r') {
            if run.len() >= 64 {
                out.push(std::mem::take(&mut run));
            }
            run.clear();
        }
    }
    out
}

fn lenient(alphabet: &base64::alphabet::Alphabet) -> base64::engine::GeneralPurpose {
    base64::engine::GeneralPurpose::new(
        alphabet,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// Base64 text (a run of at least 64 characters, line breaks allowed) that decodes to a DER
/// key: a key pasted without its PEM armour, or `{{ key | b64encode }}`.
fn has_base64_secret(content: &[u8]) -> bool {
    let passes: [(CharClass, &base64::alphabet::Alphabet); 2] = [
        (is_std_b64, &base64::alphabet::STANDARD),
        (is_url_b64, &base64::alphabet::URL_SAFE),
    ];
    passes.iter().any(|(is_char, alphabet)| {
        let engine = lenient(alphabet);
        runs(content, *is_char).iter().any(|run| {
            let body: Vec<u8> = run.iter().copied().filter(|&b| b != b'=').collect();
            engine
                .decode(&body)
                .is_ok_and(|d| is_der_secret(&d) || d.starts_with(b"openssh-key-v1\0"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys made for these tests only with OpenSSL 3.0 and ssh-keygen (tests/fixtures/secrets).
    fn fixture(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/secrets")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    const DER_KEYS: &[&str] = &[
        "rsa-pkcs1.der",
        "rsa-pkcs8.der",
        "ec-sec1.der",
        "ec-pkcs8.der",
        "ed25519-pkcs8.der",
        "dsa.der",
        "encrypted-pkcs8.der",
        "bundle.p12",
    ];

    const PEM_KEYS: &[&str] = &[
        "rsa-pkcs1.pem",
        "rsa-pkcs8.pem",
        "ec-sec1.pem",
        "encrypted-pkcs8.pem",
        "openssh.key",
    ];

    const PUBLIC: &[&str] = &["cert.der", "cert.pem", "rsa-public.der", "rsa-public.pem"];

    #[test]
    fn der_keys_of_every_kind_are_secret() {
        for name in DER_KEYS {
            let der = fixture(name);
            assert!(is_der_secret(&der), "{name}");
            assert!(is_secret(&der), "{name}");
        }
    }

    #[test]
    fn pem_keys_of_every_label_are_secret() {
        for name in PEM_KEYS {
            assert!(is_secret(&fixture(name)), "{name}");
        }
        for label in [
            "PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "DSA PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
        ] {
            let t = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
            assert!(is_secret_text(&t), "{label}");
        }
        assert!(is_secret_text(
            "PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\n"
        ));
        assert!(is_secret_text(
            "$ANSIBLE_VAULT;1.1;AES256\n6162636465666768\n"
        ));
    }

    #[test]
    fn base64_of_a_der_key_is_secret() {
        for name in DER_KEYS {
            let der = fixture(name);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            assert!(is_secret_text(&b64), "{name} in base64");
            assert!(
                is_secret_text(&format!("key: \"{b64}\" # pasted")),
                "{name} in base64 inside a line"
            );
            let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der);
            assert!(is_secret_text(&url), "{name} in url-safe base64");
        }
        // The PEM body without its armour lines.
        let pem = String::from_utf8(fixture("ec-sec1.pem")).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(is_secret_text(&body));
    }

    #[test]
    fn public_material_and_ordinary_content_are_not_secret() {
        for name in PUBLIC {
            assert!(!is_secret(&fixture(name)), "{name}");
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(fixture("cert.der"));
        assert!(!is_secret_text(&b64));
        for t in [
            "",
            "listen_addresses = '*'\nssl = on\n",
            "ssl_key_file = 'server.key'\n",
            "private_key_path: /etc/ssl/private/server.key\n",
            &"A".repeat(300),
        ] {
            assert!(!is_secret_text(t), "{t}");
        }
        // Random bytes are binary, not a key.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect();
        assert!(!is_secret(&noise));
        assert!(!is_der_secret(&[0x30, 0x03, 0x02, 0x01, 0x00]));
    }

    #[test]
    fn known_secret_values_are_masked_where_they_occur() {
        revealed::register("sv-test-vault-value-31d7");
        assert!(is_secret_text("a=sv-test-vault-value-31d7\n"));
        assert!(!is_key_material(b"a=sv-test-vault-value-31d7\n"));
        let v = serde_json::json!({
            "msg": "url postgres://u:sv-test-vault-value-31d7@h/db",
            "sv-test-vault-value-31d7": ["sv-test-vault-value-31d7", 1],
        });
        let s = scrub(&v);
        assert_eq!(s["msg"], "url postgres://u:<redacted>@h/db");
        assert_eq!(
            s["sv-test-vault-value-31d7"][0], REDACTED,
            "values, not keys"
        );
        let m = mask_value(&v);
        assert_eq!(m["<redacted>"][0], REDACTED, "keys too");
        assert_eq!(shown("plain"), "plain");
        assert_eq!(shown("-----BEGIN PRIVATE KEY-----\nabc"), REDACTED);
        assert_eq!(
            mask("x sv-test-vault-value-31d7 y sv-test-vault-value-31d7"),
            "x <redacted> y <redacted>"
        );
    }

    #[test]
    fn settings_named_or_valued_as_secrets() {
        for (name, value) in [
            ("SECRET_KEY", "0123abcd"),
            ("S3_TRACE_AWS_SECRET_ACCESS_KEY", "x"),
            ("S3_TRACE_AWS_ACCESS_KEY_ID", "AKIA"),
            ("DB_PASSWORD", "x"),
            ("db-pass", "x"),
            ("SMTP_PWD", "x"),
            ("GITHUB_TOKEN", "x"),
            ("api.key", "x"),
            (
                "DATABASE_URL",
                "postgres://cap:s3cr%40t@db1/cap?sslmode=verify-ca",
            ),
            ("REDIS_URL", "rediss://:pw@redis:6379/0"),
            ("JDBC", "jdbc:postgresql://db1/x?user=a&password=b"),
            ("DSN", "host=db1 user=a password=b"),
            ("CLIENT_KEY", "-----BEGIN PRIVATE KEY-----\nMIGH\n"),
        ] {
            assert!(is_secret_setting(name, value), "{name}={value}");
        }
        for (name, value) in [
            ("CSS_SSL_KEY", "/etc/ssl/certs/client.key"),
            ("CSS_SSL_KEY_PEM", "/etc/ssl/certs/client.pem.pk8"),
            ("CASTCONNECTIONEXTRAPARAMETERS", "/etc/cast/cast.ini"),
            ("PWD", "/home/x"),
            ("PASSTHROUGH", "yes"),
            ("KEYCLOAK_URL", "https://kc.example.com:8443/auth"),
            (
                "DATABASE_URL",
                "postgres://cap@db1/cap?sslmode=verify-ca&sslkey=/etc/cap/client.key",
            ),
            ("S3_ENDPOINT", "https://s3.example.com"),
            ("CSS_SSL_ENABLED", "true"),
        ] {
            assert!(!is_secret_setting(name, value), "{name}={value}");
        }
    }

    #[test]
    fn scrub_replaces_secret_strings_only() {
        let pem = String::from_utf8(fixture("ec-pkcs8.pem")).unwrap();
        let v = serde_json::json!({
            "results": [{"item": pem, "dest": "/k", "changed": true}, {"item": "plain"}],
            "stdout": "ok",
        });
        assert!(value_is_secret(&v));
        let s = scrub(&v);
        assert_eq!(s["results"][0]["item"], REDACTED);
        assert_eq!(s["results"][0]["dest"], "/k");
        assert_eq!(s["results"][0]["changed"], true);
        assert_eq!(s["results"][1]["item"], "plain");
        assert!(!value_is_secret(&s));
    }
}
