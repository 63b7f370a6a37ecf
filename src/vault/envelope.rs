//! The text form of vault data, as `ansible-vault` writes it:
//!
//! ```text
//! $ANSIBLE_VAULT;1.1;AES256            (or $ANSIBLE_VAULT;1.2;AES256;LABEL with a vault id)
//! 3338...                              hex, 80 characters a line, of:
//!                                      hex(salt) \n hex(hmac) \n hex(ciphertext)
//! ```
use std::fmt::Write as _;

/// How every piece of vault data starts.
pub const HEADER: &str = "$ANSIBLE_VAULT";

/// Vault data taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `1.1` or `1.2`.
    pub version: String,
    /// The vault id of a 1.2 envelope (`prod` in `--vault-id prod@file`).
    pub label: Option<String>,
    pub salt: Vec<u8>,
    pub mac: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Does this text (or file content) hold vault data?
pub fn is_vault(data: &[u8]) -> bool {
    let start = data
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(data.len());
    data[start..].starts_with(HEADER.as_bytes())
}

fn unhex(s: &str, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("its {what} is not hexadecimal ({e})"))
}

/// Take vault text apart. The message of an error says what is wrong, never the content.
pub fn parse(text: &str) -> Result<Envelope, String> {
    let mut lines = text.trim_start().lines();
    let header = lines.next().unwrap_or_default().trim();
    let fields: Vec<&str> = header.split(';').map(str::trim).collect();
    if fields.first() != Some(&HEADER) || fields.len() < 3 {
        return Err(format!(
            "its first line must be `{HEADER};1.1;AES256` or `{HEADER};1.2;AES256;LABEL`"
        ));
    }
    let version = fields[1];
    if !matches!(version, "1.1" | "1.2") {
        return Err(format!(
            "vault format version `{version}` is not supported (1.1 and 1.2 are)"
        ));
    }
    if fields[2] != "AES256" {
        return Err(format!(
            "cipher `{}` is not supported (AES256 is)",
            fields[2]
        ));
    }
    let label = fields
        .get(3)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_string());
    let body: String = lines.map(str::trim).collect();
    if body.is_empty() {
        return Err("it holds a header but no data".into());
    }
    let inner = unhex(&body, "data")?;
    let inner = String::from_utf8(inner)
        .map_err(|_| "its data does not hold the salt, HMAC and ciphertext lines".to_string())?;
    let mut parts = inner.splitn(3, '\n');
    let (Some(salt), Some(mac), Some(ct)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("its data does not hold the salt, HMAC and ciphertext lines".into());
    };
    let (salt, mac, ciphertext) = (
        unhex(salt, "salt")?,
        unhex(mac, "HMAC")?,
        unhex(ct, "ciphertext")?,
    );
    if salt.is_empty() || ciphertext.is_empty() {
        return Err("its salt or ciphertext is empty".into());
    }
    Ok(Envelope {
        version: version.to_string(),
        label,
        salt,
        mac,
        ciphertext,
    })
}

/// The text `ansible-vault` writes for these pieces: 1.1, or 1.2 with a label other than
/// `default`; 80 characters a line, ending with a newline.
pub fn format(label: Option<&str>, salt: &[u8], mac: &[u8], ciphertext: &[u8]) -> String {
    let inner = format!(
        "{}\n{}\n{}",
        hex::encode(salt),
        hex::encode(mac),
        hex::encode(ciphertext)
    );
    let body = hex::encode(inner.as_bytes());
    let mut out = match label.filter(|l| !l.is_empty() && *l != "default") {
        Some(l) => format!("{HEADER};1.2;AES256;{l}\n"),
        None => format!("{HEADER};1.1;AES256\n"),
    };
    for chunk in body.as_bytes().chunks(80) {
        // Hex digits are ASCII.
        let _ = writeln!(out, "{}", String::from_utf8_lossy(chunk));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_agree() {
        let t = format(None, b"salt", &[1, 2, 3], &[9; 50]);
        assert!(t.starts_with("$ANSIBLE_VAULT;1.1;AES256\n") && t.ends_with('\n'));
        assert!(t.lines().skip(1).all(|l| l.len() <= 80));
        let e = parse(&t).unwrap();
        assert_eq!(e.version, "1.1");
        assert_eq!(e.label, None);
        assert_eq!(
            (e.salt, e.mac, e.ciphertext),
            (b"salt".to_vec(), vec![1, 2, 3], vec![9; 50])
        );
        let t = format(Some("prod"), b"s", b"m", b"c");
        assert!(t.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
        assert_eq!(parse(&t).unwrap().label.as_deref(), Some("prod"));
        assert!(format(Some("default"), b"s", b"m", b"c").starts_with("$ANSIBLE_VAULT;1.1;"));
        // Indented lines (a `!vault |` block keeps none, a pasted one may).
        let indented: String = t.lines().map(|l| format!("   {l}\n")).collect();
        assert_eq!(parse(&indented).unwrap().ciphertext, b"c");
    }

    #[test]
    fn a_broken_envelope_says_what_is_wrong() {
        let good = format(None, b"salt", b"mac", b"ct");
        let body: String = good.lines().skip(1).collect();
        for (text, want) in [
            ("$ANSIBLE_VAULT;1.1\nabcd\n", "first line"),
            ("$ANSIBLE_VAULT;2.0;AES256\nabcd\n", "version `2.0`"),
            ("$ANSIBLE_VAULT;1.1;AES128\nabcd\n", "cipher `AES128`"),
            ("$ANSIBLE_VAULT;1.1;AES256\n", "no data"),
            ("$ANSIBLE_VAULT;1.1;AES256\nzz\n", "not hexadecimal"),
            (
                "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
                "salt, HMAC and ciphertext",
            ),
            (
                &format!("$ANSIBLE_VAULT;1.1;AES256\n{}\n", &body[..body.len() - 2]),
                "ciphertext",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        assert!(is_vault(b"  \n$ANSIBLE_VAULT;1.1;AES256\n"));
        assert!(!is_vault(b"a: $ANSIBLE_VAULT;1.1;AES256\n"));
    }
}
