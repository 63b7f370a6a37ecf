//! Text helpers shared by every pure line editor (lineinfile, blockinfile, ini_file, and the
//! postgresql.conf and pg_hba.conf editors): newline convention, line endings, line splitting
//! that keeps them, compiling user-supplied (Python-flavoured) regular expressions, and splitting
//! a host script's output into `@@name` sections.

use regex::Regex;

/// The newline convention of `text`: `"\r\n"` when its first line ends with CRLF, else `"\n"`.
///
/// Files without any newline (including empty and new files) use `"\n"`, unless they end with
/// a CR: a CRLF file that lost its last LF (terminated by [`terminate_last`], that line becomes
/// CRLF, and the next edit would see a CRLF file).
pub fn newline_of(text: &str) -> &'static str {
    match text.find('\n') {
        Some(i) if text[..i].ends_with('\r') => "\r\n",
        None if text.ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// Ends `line` (which has no `"\n"`) with `nl`; a line already ending with a CR only gets the
/// LF (`"a\r"` becomes `"a\r\n"`, not `"a\r\r\n"`).
pub fn terminate(line: &mut String, nl: &str) {
    if line.ends_with('\r') {
        line.push('\n');
    } else {
        line.push_str(nl);
    }
}

/// Splits `text` into lines, each keeping its `"\n"` / `"\r\n"` ending (the last may have none).
///
/// Like Python's `readlines()`: `""` gives no lines, `"a\nb"` gives `["a\n", "b"]`.
pub fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// `line` without its trailing `"\n"` or `"\r\n"`.
pub fn strip_eol(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}

/// The line ending `raw` ends with: `"\r\n"`, `"\n"`, or `""` for a last line without one.
pub fn eol_of(raw: &str) -> &'static str {
    if raw.ends_with("\r\n") {
        "\r\n"
    } else if raw.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// Whether `line` ends with a newline.
pub fn has_eol(line: &str) -> bool {
    line.ends_with('\n')
}

/// Makes sure the last line of `lines` (if any) ends with `nl`, so that a line can be appended.
pub fn terminate_last(lines: &mut [String], nl: &str) {
    if let Some(last) = lines.last_mut() {
        if !has_eol(last) {
            terminate(last, nl);
        }
    }
}

/// Compiles a user regular expression written for Python's `re` module.
///
/// The `regex` crate accepts nearly all of Python's syntax (including `(?P<name>...)`); the only
/// translation done is `\Z` (Python's end of text) to `\z`. Look-around and back-references in
/// the *pattern* are not supported and produce an error naming the parameter and the pattern.
pub fn compile_regex(param: &str, pattern: &str) -> Result<Regex, String> {
    let mut translated = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => translated.push_str("\\z"),
                Some(other) => {
                    translated.push('\\');
                    translated.push(other);
                }
                None => translated.push('\\'),
            }
        } else {
            translated.push(c);
        }
    }
    Regex::new(&translated)
        .map_err(|e| format!("invalid regular expression in {param} '{pattern}': {e}"))
}

/// Split a script's output into `@@name` sections (text up to the next marker, trimmed of the
/// final newline).
pub fn sections(out: &str) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    let mut cur: Option<(String, Vec<&str>)> = None;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            if let Some((n, body)) = cur.take() {
                map.insert(n, body.join("\n"));
            }
            cur = Some((name.trim().to_string(), Vec::new()));
        } else if let Some((_, body)) = cur.as_mut() {
            body.push(line);
        }
    }
    if let Some((n, body)) = cur {
        map.insert(n, body.join("\n"));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_detection() {
        assert_eq!(newline_of(""), "\n");
        assert_eq!(newline_of("abc"), "\n");
        assert_eq!(newline_of("a\nb\r\n"), "\n");
        assert_eq!(newline_of("a\r\nb\n"), "\r\n");
        assert_eq!(newline_of("\r\n"), "\r\n");
    }

    #[test]
    fn splitting_keeps_endings() {
        assert!(split_lines("").is_empty());
        assert_eq!(split_lines("a"), vec!["a"]);
        assert_eq!(split_lines("a\nb"), vec!["a\n", "b"]);
        assert_eq!(split_lines("a\r\n\nb\n"), vec!["a\r\n", "\n", "b\n"]);
    }

    #[test]
    fn eol_helpers() {
        assert_eq!(strip_eol("a\r\n"), "a");
        assert_eq!(strip_eol("a\n"), "a");
        assert_eq!(strip_eol("a"), "a");
        assert_eq!(strip_eol("a\r"), "a");
        assert_eq!(eol_of("a\r\n"), "\r\n");
        assert_eq!(eol_of("a\n"), "\n");
        assert_eq!(eol_of("a\r"), "");
        assert_eq!(eol_of(""), "");
        assert!(has_eol("a\n"));
        assert!(!has_eol("a"));
        let mut lines = vec!["a\n".to_string(), "b".to_string()];
        terminate_last(&mut lines, "\r\n");
        assert_eq!(lines, vec!["a\n", "b\r\n"]);
        let mut empty: Vec<String> = Vec::new();
        terminate_last(&mut empty, "\n");
        assert!(empty.is_empty());
    }

    #[test]
    fn python_regex_translation() {
        let re = compile_regex("regexp", r"foo\Z").unwrap();
        assert!(re.is_match("a foo"));
        assert!(!re.is_match("foo bar"));
        let re = compile_regex("regexp", r"\\Z").unwrap();
        assert!(re.is_match(r"a\Z"));
        let re = compile_regex("regexp", r"^(?P<key>\w+)=").unwrap();
        assert!(re.is_match("a=b"));
    }

    #[test]
    fn invalid_regex_names_the_pattern() {
        let err = compile_regex("insertafter", "(unclosed").unwrap_err();
        assert!(err.contains("insertafter"), "{err}");
        assert!(err.contains("'(unclosed'"), "{err}");
        let err = compile_regex("regexp", "(?=lookahead)").unwrap_err();
        assert!(err.contains("(?=lookahead)"), "{err}");
    }
}
