//! Unified diffs for `--diff`; key material never appears.
use crate::modules::Diff;

pub const REDACTED: &str = "<redacted>";

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
}
