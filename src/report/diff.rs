//! Unified diffs for `--diff`; key material never appears.
//!
//! What is never shown, only `<redacted>`: content with key material on either side (see
//! [`super::secret`]), and any file that is private before or after the change (its mode gives
//! no read permission to group or others, like a key's 0600 or a `.pgpass`): the owner keeps it
//! to themselves, so the report does too. Content that is not UTF-8 is never shown either: the
//! diff gives its size and a SHA-256 prefix ("binary content").
use sha2::Digest as _;

use super::secret;
use crate::diff::Diff;

pub use super::secret::REDACTED;

/// A file with this mode is private: no read permission for group or others.
pub fn is_private_mode(mode: u32) -> bool {
    mode & 0o044 == 0
}

/// One side of a binary change, for the diff.
fn binary_summary(data: &[u8]) -> String {
    if data.is_empty() {
        return String::new();
    }
    let sum = hex::encode(sha2::Sha256::digest(data));
    format!(
        "binary content: {} bytes, sha256 {}\n",
        data.len(),
        &sum[..16]
    )
}

/// The diff of a content change from `before` to `after` (empty `before`: a new file).
/// `private`: the file's mode before or after is private ([`is_private_mode`]).
pub fn content(path: &str, before: &[u8], after: &[u8], private: bool) -> Diff {
    let secret = private || secret::is_secret(before) || secret::is_secret(after);
    let (b, a) = match (std::str::from_utf8(before), std::str::from_utf8(after)) {
        _ if secret => (String::new(), String::new()),
        (Ok(b), Ok(a)) => (b.to_string(), a.to_string()),
        _ => (binary_summary(before), binary_summary(after)),
    };
    Diff {
        path: path.to_string(),
        before: b,
        after: a,
        secret,
    }
}

/// Render a diff; `hide` (no_log) or key material gives `<redacted>`.
pub fn render(d: &Diff, hide: bool) -> String {
    if hide || d.secret {
        return format!("--- before: {0}\n+++ after: {0}\n{REDACTED}\n", d.path);
    }
    let text = similar::TextDiff::from_lines(&d.before, &d.after);
    let mut out = String::new();
    out.push_str(&format!("--- before: {}\n+++ after: {}\n", d.path, d.path));
    for hunk in text.unified_diff().context_radius(3).iter_hunks() {
        out.push_str(&hunk.to_string());
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines() {
        let d = Diff {
            path: "/etc/x".into(),
            before: "a\nb\n".into(),
            after: "a\nc\n".into(),
            secret: false,
        };
        let s = render(&d, false);
        assert!(s.contains("-b\n") && s.contains("+c\n"), "{s}");
    }

    #[test]
    fn never_shows_keys() {
        let d = Diff {
            path: "/k".into(),
            before: String::new(),
            after: "-----BEGIN PRIVATE KEY-----\nabc\n".into(),
            secret: true,
        };
        let s = render(&d, false);
        assert!(!s.contains("abc") && s.contains(REDACTED));
    }

    #[test]
    fn binary_content_is_summarised_never_shown() {
        let blob: Vec<u8> = (0..300u32).map(|i| (i * 7 + 0x80) as u8).collect();
        let d = content("/b", b"old\n", &blob, false);
        assert!(!d.secret);
        let s = render(&d, false);
        // A text side of a binary change is summarised too: one kind of line per diff.
        assert!(s.contains("-binary content: 4 bytes, sha256 "), "{s}");
        assert!(s.contains("+binary content: 300 bytes, sha256 "), "{s}");
        assert!(s.is_ascii(), "{s}");
        // A new binary file: only the added side.
        let s = render(&content("/b", b"", &blob, false), false);
        assert!(
            s.contains("+binary content: 300 bytes") && !s.contains("\n-"),
            "{s}"
        );
    }

    #[test]
    fn key_material_or_a_private_file_is_redacted() {
        let key = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----\n";
        for (before, after, private) in [
            (&b""[..], &key[..], false),
            (&key[..], &b"plain\n"[..], false),
            (&b"a=1\n"[..], &b"a=2\n"[..], true),
        ] {
            let d = content("/k", before, after, private);
            assert!(d.secret);
            let s = render(&d, false);
            assert!(
                s.contains(REDACTED) && !s.contains("MHcC") && !s.contains("a=2"),
                "{s}"
            );
        }
        assert!(is_private_mode(0o600) && is_private_mode(0o400) && is_private_mode(0o700));
        assert!(is_private_mode(0o620) && is_private_mode(0o000));
        assert!(!is_private_mode(0o640) && !is_private_mode(0o604) && !is_private_mode(0o644));
    }

    #[test]
    fn text_is_diffed_as_before() {
        let d = content("/t", b"a\nb\n", b"a\nc\n", false);
        assert!(!d.secret);
        let s = render(&d, false);
        assert!(s.contains("-b\n") && s.contains("+c\n"), "{s}");
    }
}
