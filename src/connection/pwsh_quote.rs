//! PowerShell quoting: the one audited function every value put into a PowerShell script goes
//! through ([`quote`]), and the one for a Windows program's command line ([`argv_to_cmdline`]).
//!
//! # Contract of [`quote`]
//!
//! For every string `s` without a NUL character, `quote(s)` is one PowerShell expression (a
//! verbatim, single-quoted string literal) whose value is exactly `s`, in Windows PowerShell 5.1
//! and PowerShell 7: no variable expansion (`$`), no subexpression (`$(...)`), no escape
//! (backtick), no wildcard (the scripts pass paths with `-LiteralPath` or to .NET methods).
//!
//! # How
//!
//! The text is wrapped in `'...'`. Inside a verbatim string PowerShell treats as a quote not only
//! the ASCII apostrophe but also the typographic single quotes U+2018, U+2019, U+201A and U+201B;
//! each of the five is written twice (a doubled quote is one literal quote of the same kind).
//! Everything else, `$`, backticks, `"`, newlines, non-ASCII text, stands as it is. NUL is refused
//! ([`QuoteError`]): a script travels as text and a Windows path or name cannot hold one.
//!
//! # Contract of [`argv_to_cmdline`]
//!
//! A Windows program gets one command-line string, which the C runtime (`CommandLineToArgvW`
//! rules) splits back into arguments. For every list of arguments without NUL, the output splits
//! back into exactly that list: an argument without space, tab, newline or `"` (and not empty)
//! stands bare; any other is wrapped in `"`, with `2n+1` backslashes before an inner `"` and `2n`
//! at the end for `n` literal backslashes there.
//!
//! The property tests parse the output back with a reference parser of both grammars.
pub use super::quote::QuoteError;

/// The characters PowerShell reads as a single quote inside a verbatim string.
pub const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

fn check_nul(s: &str) -> Result<(), QuoteError> {
    match s.bytes().position(|b| b == 0) {
        Some(offset) => Err(QuoteError { offset }),
        None => Ok(()),
    }
}

/// `s` as a PowerShell verbatim string literal (see the module documentation).
pub fn quote(s: &str) -> Result<String, QuoteError> {
    check_nul(s)?;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    Ok(out)
}

/// A PowerShell array expression `@('a','b')` of quoted strings.
pub fn quote_list(items: &[&str]) -> Result<String, QuoteError> {
    let mut out = String::from("@(");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(s)?);
    }
    out.push(')');
    Ok(out)
}

/// A path in Windows form: `/` becomes `\` (roles join `C:\CAST\ssl` and `/server.crt`).
pub fn win_path(p: &str) -> String {
    p.replace('/', "\\")
}

/// One argument for a Windows command line (see the module documentation).
fn push_arg(out: &mut String, arg: &str) {
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\u{b}', '"']) {
        out.push_str(arg);
        return;
    }
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', 2 * backslashes + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', 2 * backslashes));
    out.push('"');
}

/// The command line a Windows program splits back into exactly `args`.
pub fn argv_to_cmdline(args: &[&str]) -> Result<String, QuoteError> {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        check_nul(a)?;
        if i > 0 {
            out.push(' ');
        }
        push_arg(&mut out, a);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference reader of a PowerShell verbatim string at the start of `s`: its value and the
    /// rest of the text after it. None when `s` does not start with a whole literal.
    pub fn read_verbatim(s: &str) -> Option<(String, &str)> {
        let mut it = s.char_indices().peekable();
        let (_, first) = it.next()?;
        if !SINGLE_QUOTES.contains(&first) {
            return None;
        }
        let mut val = String::new();
        while let Some((i, c)) = it.next() {
            if SINGLE_QUOTES.contains(&c) {
                match it.peek() {
                    Some(&(_, d)) if SINGLE_QUOTES.contains(&d) => {
                        val.push(d);
                        it.next();
                    }
                    _ => return Some((val, &s[i + c.len_utf8()..])),
                }
            } else {
                val.push(c);
            }
        }
        None
    }

    /// Reference splitter of a Windows command line (the C runtime's rules, as
    /// `CommandLineToArgvW` for arguments after the program name).
    pub fn split_cmdline(s: &str) -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        let mut args = Vec::new();
        let mut i = 0;
        loop {
            while i < chars.len() && matches!(chars[i], ' ' | '\t' | '\n' | '\u{b}') {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let mut cur = String::new();
            let mut quoted = false;
            while i < chars.len() {
                let c = chars[i];
                if c == '\\' {
                    let mut n = 0;
                    while i < chars.len() && chars[i] == '\\' {
                        n += 1;
                        i += 1;
                    }
                    if i < chars.len() && chars[i] == '"' {
                        cur.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            cur.push('"');
                            i += 1;
                        }
                    } else {
                        cur.extend(std::iter::repeat_n('\\', n));
                    }
                    continue;
                }
                if c == '"' {
                    if quoted && i + 1 < chars.len() && chars[i + 1] == '"' {
                        cur.push('"');
                        i += 2;
                        continue;
                    }
                    quoted = !quoted;
                    i += 1;
                    continue;
                }
                if !quoted && matches!(c, ' ' | '\t' | '\n' | '\u{b}') {
                    break;
                }
                cur.push(c);
                i += 1;
            }
            args.push(cur);
        }
        args
    }

    /// Strings full of quoting hazards: quotes of every kind, `$`, backticks, spaces, newlines,
    /// backslashes, non-ASCII.
    pub fn hazardous() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("'".to_string()),
                Just("\u{2018}".to_string()),
                Just("\u{2019}".to_string()),
                Just("\u{201A}".to_string()),
                Just("\u{201B}".to_string()),
                Just("\"".to_string()),
                Just("$".to_string()),
                Just("$(whoami)".to_string()),
                Just("`".to_string()),
                Just("`n".to_string()),
                Just(" ".to_string()),
                Just("\t".to_string()),
                Just("\n".to_string()),
                Just("\r\n".to_string()),
                Just("\\".to_string()),
                Just("C:\\Program Files\\CAST\\".to_string()),
                Just("é日本".to_string()),
                Just("%PATH%".to_string()),
                Just("*?[a]".to_string()),
                Just(";&|<>^".to_string()),
                "[a-z0-9]{0,4}",
                any::<char>()
                    .prop_filter("no NUL", |c| *c != '\0')
                    .prop_map(String::from),
            ],
            0..12,
        )
        .prop_map(|v| v.concat())
    }

    #[test]
    fn quote_examples() {
        assert_eq!(quote("").unwrap(), "''");
        assert_eq!(quote("C:\\CAST\\ssl").unwrap(), "'C:\\CAST\\ssl'");
        assert_eq!(quote("it's $x `n").unwrap(), "'it''s $x `n'");
        assert_eq!(quote("a\u{2019}b").unwrap(), "'a\u{2019}\u{2019}b'");
        assert_eq!(quote("a\0b").unwrap_err().offset, 1);
        assert_eq!(quote_list(&["a", "b'c"]).unwrap(), "@('a','b''c')");
        assert_eq!(
            win_path("C:\\CAST\\ssl/server.crt"),
            "C:\\CAST\\ssl\\server.crt"
        );
    }

    #[test]
    fn cmdline_examples() {
        let c = |a: &[&str]| argv_to_cmdline(a).unwrap();
        assert_eq!(c(&["icacls", "C:\\a b\\"]), "icacls \"C:\\a b\\\\\"");
        assert_eq!(c(&["x", ""]), "x \"\"");
        assert_eq!(c(&["say \"hi\""]), "\"say \\\"hi\\\"\"");
        assert_eq!(c(&["a\\b"]), "a\\b");
        assert!(argv_to_cmdline(&["a", "b\0"]).is_err());
    }

    proptest! {
        #[test]
        fn quote_reads_back_whole(s in hazardous(), tail in "[ ;)a-z]{0,3}") {
            let q = quote(&s).unwrap();
            let text = format!("{q}{tail}");
            let (val, rest) = read_verbatim(&text).expect("a whole literal");
            prop_assert_eq!(val, s);
            prop_assert_eq!(rest, tail.as_str());
        }

        #[test]
        fn cmdline_splits_back(args in prop::collection::vec(hazardous(), 1..5)) {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let line = argv_to_cmdline(&refs).unwrap();
            prop_assert_eq!(split_cmdline(&line), args);
        }
    }
}
