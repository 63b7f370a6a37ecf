//! The values vault decryption revealed in this process (and the vault passwords themselves,
//! and secrets castellan generated): what no report, diff, JSON document, log line or error
//! message may show. `report::secret` reads this set: content that holds one of these values is
//! secret (a diff of it is `<redacted>`), and every text castellan prints has each occurrence
//! replaced.
//!
//! Each value is kept with the forms a template or a reporter may give it: its lines (a
//! multi-line value, a key), its JSON string body (`"` and `\` escaped), its percent-encoding
//! (a password in a URL) and its base64. Values shorter than [`MIN_LEN`] characters are not
//! kept: they cannot be secret and would mask ordinary words everywhere.
use std::borrow::Cow;
use std::sync::RwLock;

use base64::Engine as _;

/// The shortest value that is masked.
pub const MIN_LEN: usize = 4;

struct Known {
    /// Every form of every value, longest first (so the longest form wins where they overlap).
    forms: Vec<String>,
    matcher: Option<regex::bytes::Regex>,
}

static KNOWN: RwLock<Known> = RwLock::new(Known {
    forms: Vec::new(),
    matcher: None,
});

/// Percent-encoding of everything but RFC 3986's unreserved characters.
fn percent_encoded(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The forms of a value that output may hold.
fn forms_of(v: &str) -> Vec<String> {
    if v.trim().chars().count() < MIN_LEN {
        return Vec::new();
    }
    let mut out = vec![v.to_string()];
    if v.contains('\n') {
        out.extend(
            v.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    let json = serde_json::to_string(v).unwrap_or_default();
    if let Some(body) = json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
        out.push(body.to_string());
    }
    out.push(percent_encoded(v));
    out.push(base64::engine::general_purpose::STANDARD.encode(v));
    out.retain(|f| f.chars().count() >= MIN_LEN);
    out
}

/// Remember a secret value: from now on it is masked wherever castellan prints.
pub fn register(value: &str) {
    let forms = forms_of(value);
    if forms.is_empty() {
        return;
    }
    let mut k = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    let before = k.forms.len();
    for f in forms {
        if !k.forms.contains(&f) {
            k.forms.push(f);
        }
    }
    if k.forms.len() == before {
        return;
    }
    k.forms
        .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    let pattern = k
        .forms
        .iter()
        .map(|f| regex::escape(f))
        .collect::<Vec<_>>()
        .join("|");
    // Literal alternatives: the only failure is a size limit, raised generously; if it is
    // still hit, every output is masked whole rather than a value shown.
    k.matcher = regex::bytes::RegexBuilder::new(&pattern)
        .size_limit(1 << 28)
        .build()
        .ok()
        .or_else(|| regex::bytes::Regex::new("(?s).+").ok());
}

/// No secret value is known (nothing was decrypted).
pub fn is_empty() -> bool {
    KNOWN
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .matcher
        .is_none()
}

/// Does `data` hold a known secret value (in one of its forms)?
pub fn found_in(data: &[u8]) -> bool {
    let k = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    k.matcher.as_ref().is_some_and(|m| m.is_match(data))
}

/// `text` with every occurrence of a known secret value replaced by `with`.
pub fn mask<'a>(text: &'a str, with: &str) -> Cow<'a, str> {
    let k = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let Some(m) = k.matcher.as_ref() else {
        return Cow::Borrowed(text);
    };
    match m.replace_all(text.as_bytes(), with.as_bytes()) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        // Whole values were replaced by a text: what is left is still UTF-8.
        Cow::Owned(b) => Cow::Owned(String::from_utf8_lossy(&b).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_value_is_masked() {
        register("rv-test p@ss/\"word\"");
        let m = |t: &str| mask(t, "<X>").into_owned();
        assert_eq!(m("pw=rv-test p@ss/\"word\"!"), "pw=<X>!");
        assert_eq!(m(r#"{"pw": "rv-test p@ss/\"word\""}"#), r#"{"pw": "<X>"}"#);
        assert_eq!(
            m("postgres://u:rv-test%20p%40ss%2F%22word%22@h/db"),
            "postgres://u:<X>@h/db"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode("rv-test p@ss/\"word\"");
        assert_eq!(m(&format!("k: {b64}")), "k: <X>");
        assert!(found_in(b"..rv-test p@ss/\"word\".."));
        assert!(!found_in(b"rv-test p@ss"));
        assert!(!is_empty());
    }

    #[test]
    fn lines_of_a_multi_line_value_and_short_values() {
        register("rv-line-one-5e1\n  rv-line-two-9c0\n");
        assert_eq!(mask("x rv-line-two-9c0 y", "<X>"), "x <X> y");
        register("abc");
        assert_eq!(mask("abc abcd", "<X>"), "abc abcd", "too short to mask");
        assert!(matches!(mask("nothing here", "<X>"), Cow::Borrowed(_)));
    }
}
