//! POSIX shell quoting: the one function every command line sent to a host goes through.
//!
//! # Contract
//!
//! For every byte string `s` without a NUL byte, the output of [`quote`] is exactly one shell word
//! that a POSIX shell (dash, bash, busybox ash, zsh in sh mode) expands to `s`, byte for byte, in any
//! context where a word is expected (command name, argument, redirection target, `case` subject):
//! no parameter expansion, command substitution, arithmetic, field splitting, pathname expansion,
//! tilde expansion, brace expansion, history expansion, comment or assignment is triggered.
//!
//! # How
//!
//! * A non-empty string made only of the bytes `A-Z a-z 0-9 _ @ % + : , . / -` is left bare. None of
//!   them is special to any of those shells anywhere in a word. (`=` is deliberately not in the set:
//!   a bare `NAME=value` in command position would be an assignment, not a word.) Reserved words
//!   (`if`, `then`, `done`, `time`, ...) are quoted too: bare in command position they are keywords.
//! * Everything else is wrapped in single quotes, where POSIX makes every byte literal except `'`
//!   itself, which is written as `'\''` (close the quote, an escaped quote, reopen). That covers
//!   spaces, `$`, backticks, `\`, `"`, `!`, `*`, `~`, `#`, newlines, control bytes and bytes >= 0x80
//!   (whether or not they are valid UTF-8: the shell never decodes them inside single quotes).
//! * The empty string becomes `''`.
//! * NUL cannot be represented: C strings end there, so no shell word, argument or environment
//!   value can carry it. [`quote`] returns [`QuoteError`] rather than silently truncating.
//!
//! The property tests below run the quoted form through `/bin/sh` (and `bash` when present) and
//! compare the bytes that come back.

use thiserror::Error;

/// The argument contains a NUL byte, which no POSIX shell word can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("cannot shell-quote an argument containing a NUL byte (at byte {offset})")]
pub struct QuoteError {
    /// Byte offset of the first NUL in the argument.
    pub offset: usize,
}

/// Bytes that may stand bare in a shell word.
fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'_' | b'@' | b'%' | b'+' | b':' | b',' | b'.' | b'/' | b'-'
        )
}

/// Words that are keywords when bare in command position (POSIX reserved words plus those of
/// bash, ksh and zsh that consist of safe bytes only).
const RESERVED: &[&[u8]] = &[
    b"if",
    b"then",
    b"else",
    b"elif",
    b"fi",
    b"do",
    b"done",
    b"case",
    b"esac",
    b"while",
    b"until",
    b"for",
    b"in",
    b"function",
    b"select",
    b"time",
    b"coproc",
    b"repeat",
    b"foreach",
    b"end",
    b"nocorrect",
];

/// Quote `arg` as one POSIX shell word that expands to exactly `arg` (see the module docs).
pub fn quote(arg: &[u8]) -> Result<Vec<u8>, QuoteError> {
    if let Some(offset) = arg.iter().position(|&b| b == 0) {
        return Err(QuoteError { offset });
    }
    if !arg.is_empty() && arg.iter().copied().all(is_safe) && !RESERVED.contains(&arg) {
        return Ok(arg.to_vec());
    }
    let quotes = arg.iter().filter(|&&b| b == b'\'').count();
    let mut out = Vec::with_capacity(arg.len() + 2 + 3 * quotes);
    out.push(b'\'');
    for &b in arg {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    Ok(out)
}

/// [`quote`] for UTF-8 text; the result is UTF-8 too (only ASCII quote characters are added).
pub fn quote_str(arg: &str) -> Result<String, QuoteError> {
    let quoted = quote(arg.as_bytes())?;
    // `quote` copies the input bytes unchanged and only inserts ASCII, so this cannot fail.
    Ok(String::from_utf8(quoted).expect("quoting UTF-8 yields UTF-8"))
}

/// Quote every argument and join them with single spaces: a command line that a POSIX shell splits
/// back into exactly `args`.
pub fn join(args: &[&str]) -> Result<String, QuoteError> {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&quote_str(arg)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    use std::path::Path;
    use std::process::Command;

    /// Run `script` with `shell -c` and return its stdout (asserting success).
    fn run(shell: &str, script: Vec<u8>) -> Vec<u8> {
        let out = Command::new(shell)
            .arg("-c")
            .arg(OsString::from_vec(script))
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("run shell");
        assert!(
            out.status.success(),
            "{shell} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn shells() -> Vec<&'static str> {
        ["/bin/sh", "/bin/bash", "/bin/dash"]
            .into_iter()
            .filter(|s| Path::new(s).exists())
            .collect()
    }

    /// `printf '%s' <quoted>` prints the original bytes, and `set -- <quoted>` makes one word.
    fn round_trips(arg: &[u8]) {
        let q = quote(arg).expect("no NUL");
        for shell in shells() {
            let mut script = b"printf '%s' ".to_vec();
            script.extend_from_slice(&q);
            assert_eq!(
                run(shell, script),
                arg,
                "{shell}, quoted {:?}",
                String::from_utf8_lossy(&q)
            );

            let mut script = b"set -- ".to_vec();
            script.extend_from_slice(&q);
            script.extend_from_slice(b"; printf '%s' \"$#\"");
            assert_eq!(
                run(shell, script),
                b"1",
                "{shell}: not one word: {:?}",
                String::from_utf8_lossy(&q)
            );
        }
    }

    /// Bytes 1..=255, biased towards the ones shells treat specially.
    fn shell_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => prop::sample::select(b" \t\n'\"\\$`!*?[]{}()<>|&;~#=%^".to_vec()),
            1 => prop::sample::select(b"aZ09_-./:@,+".to_vec()),
            2 => 1u8..=255,
        ]
    }

    /// Mostly bytes that may stay bare, with one arbitrary non-NUL byte somewhere: exercises the
    /// bare/quoted decision, which uniformly random strings almost never reach.
    fn nearly_safe() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(prop::sample::select(b"aZ09_-./:@,+%".to_vec()), 0..8),
            shell_byte(),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut v, b, at)| {
                let i = at.index(v.len() + 1);
                v.insert(i, b);
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_round_trip(arg in prop::collection::vec(shell_byte(), 0..40)) {
            round_trips(&arg);
        }

        #[test]
        fn nearly_safe_round_trip(arg in nearly_safe()) {
            round_trips(&arg);
        }

        #[test]
        fn join_splits_back(args in prop::collection::vec("[^\u{0}]{0,12}", 0..6)) {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let line = join(&refs).unwrap();
            let mut script = b"for a in ".to_vec();
            script.extend_from_slice(line.as_bytes());
            script.extend_from_slice(b"; do printf '%s\\0' \"$a\"; done");
            let mut expected = Vec::new();
            for a in &args {
                expected.extend_from_slice(a.as_bytes());
                expected.push(0);
            }
            prop_assert_eq!(run("/bin/sh", script), expected);
        }

        #[test]
        fn nul_is_an_error(mut prefix in prop::collection::vec(1u8..=255, 0..10), suffix in prop::collection::vec(any::<u8>(), 0..10)) {
            let offset = prefix.len();
            prefix.push(0);
            prefix.extend_from_slice(&suffix);
            prop_assert_eq!(quote(&prefix), Err(QuoteError { offset }));
        }
    }

    #[test]
    fn examples() {
        assert_eq!(quote_str("").unwrap(), "''");
        assert_eq!(quote_str("abc").unwrap(), "abc");
        assert_eq!(
            quote_str("/etc/postgresql/15/main/pg_hba.conf").unwrap(),
            "/etc/postgresql/15/main/pg_hba.conf"
        );
        assert_eq!(quote_str("-rf").unwrap(), "-rf");
        assert_eq!(quote_str("a b").unwrap(), "'a b'");
        assert_eq!(quote_str("it's").unwrap(), r"'it'\''s'");
        assert_eq!(quote_str("'").unwrap(), r"''\'''");
        assert_eq!(quote_str("$HOME").unwrap(), "'$HOME'");
        assert_eq!(quote_str("`id`").unwrap(), "'`id`'");
        assert_eq!(quote_str("a=b").unwrap(), "'a=b'");
        assert_eq!(quote_str("~").unwrap(), "'~'");
        assert_eq!(quote_str("#x").unwrap(), "'#x'");
        assert_eq!(quote_str("if").unwrap(), "'if'");
        assert_eq!(quote_str("iff").unwrap(), "iff");
        assert_eq!(quote_str("é").unwrap(), "'é'");
        assert_eq!(quote(b"\xff\xfe").unwrap(), b"'\xff\xfe'");
        assert_eq!(quote(b"a\0b"), Err(QuoteError { offset: 1 }));
        assert_eq!(
            join(&["printf", "%s\n", "it's $x"]).unwrap(),
            r"printf '%s
' 'it'\''s $x'"
        );
        assert_eq!(join(&[]).unwrap(), "");
        assert!(join(&["ok", "bad\0"]).is_err());
    }

    #[test]
    fn tricky_strings_round_trip() {
        for s in [
            &b""[..],
            b"'",
            b"''",
            b"\\",
            b"\\'",
            b"'\\''",
            b"\n",
            b"a\nb\n",
            b"$(id)",
            b"${x:-y}",
            b"$((1+1))",
            b"`id`",
            b"*",
            b"~root",
            b"{a,b}",
            b"!!",
            b"a=b",
            b"-n",
            b"-e \\n",
            b"\xff\xfe\x80",
            b"\xc3\x28",
            b"\x01\x7f\x1b[31m",
            "naïve ☃".as_bytes(),
        ] {
            round_trips(s);
        }
    }

    /// Every single byte, alone and next to a safe byte, in one shell run per shell.
    #[test]
    fn every_byte() {
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for b in 1u8..=255 {
            cases.extend([vec![b], vec![b'a', b], vec![b, b'a'], vec![b, b]]);
        }
        let mut script = Vec::new();
        let mut expected = Vec::new();
        for c in &cases {
            script.extend_from_slice(b"printf '%s\\0' ");
            script.extend_from_slice(&quote(c).unwrap());
            script.push(b'\n');
            expected.extend_from_slice(c);
            expected.push(0);
        }
        for shell in shells() {
            let got = run(shell, script.clone());
            let got: Vec<&[u8]> = got.split(|&b| b == 0).collect();
            let want: Vec<&[u8]> = expected.split(|&b| b == 0).collect();
            assert_eq!(got.len(), want.len(), "{shell}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, w, "{shell}: {:?} came back as {:?}", w, g);
            }
        }
    }

    /// The quoted word also survives a command-name position (no assignment, no keyword).
    #[test]
    fn command_position() {
        for word in ["a=b", "if", "then", "done", "!", "{", "[[", "case", "while"] {
            let line = format!(
                "{} 2>/dev/null; printf '%s' \"$?\"",
                quote_str(word).unwrap()
            );
            assert_eq!(
                run("/bin/sh", line.into_bytes()),
                b"127",
                "{word} ran as something other than a command"
            );
        }
    }
}
