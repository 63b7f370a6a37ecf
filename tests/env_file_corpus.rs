//! The KEY=VALUE editor (`src/envfile.rs`, under the `env_file` module) on realistic files
//! (`tests/fixtures/env_file/`: a CAST Imaging installer `.conf` with comments and mixed
//! quoting, `/etc/environment`, a compose `.env` with `export`, a CRLF file without a final
//! newline, CAP's config, a file with blanks around `=`), and against real shells: what `sh`
//! (dash) and bash read from a file is what the parser says, and what the editor writes.
use std::path::{Path, PathBuf};
use std::process::Command;

use castellan::envfile::{check_value, Document, Entry, Quote, QuoteChoice};

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/env_file")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The shells of this machine that read the files: POSIX `sh` (dash on Debian) and bash.
const SHELLS: &[&str] = &["sh", "bash"];

/// What `shell` assigns to each of `keys` after `. file`.
fn shell_reads(shell: &str, file: &Path, keys: &[String]) -> Vec<String> {
    let script = format!(
        ". \"$1\" || exit 9\nprintf '%s\\0' {}\n",
        keys.iter()
            .map(|k| format!("\"${{{k}}}\""))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = Command::new(shell)
        .arg("-c")
        .arg(&script)
        .arg(shell)
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("run {shell}: {e}"));
    assert!(
        out.status.success(),
        "{shell} could not read {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 from the shell");
    let mut values: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(values.pop().as_deref(), Some(""), "{shell}: {text:?}");
    assert_eq!(values.len(), keys.len(), "{shell}: {text:?}");
    values
}

fn write_temp(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The entries that are not assignments of `keys`, as text (a last line that got its
/// missing newline counts as itself).
fn others(entries: &[Entry], keys: &[&str]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| {
            !e.assignment()
                .is_some_and(|a| keys.contains(&a.key.as_str()))
        })
        .map(|e| e.raw.trim_end_matches(['\r', '\n']).to_string())
        .collect()
}

/// KEY -> value, in order.
type Settings = &'static [(&'static str, &'static str)];

/// (file, expected result, settings, a shell can source it).
const CASES: &[(&str, &str, Settings, bool)] = &[
    (
        "cast-installer.conf",
        "cast-installer.expected",
        &[
            ("CSS_SSL_ENABLED", "true"),
            ("CSS_SSL_MODE", "verify-full"),
            ("CSS_SSL_ROOT_CERT", "/etc/ssl/certs/cast/root.crt"),
            ("CSS_SSL_CERT", "/etc/ssl/certs/cast/client.crt"),
            ("CSS_SSL_KEY", "/etc/ssl/certs/cast/client.key"),
            ("CSS_SSL_KEY_PEM", "/etc/ssl/certs/cast/client.pem.pk8"),
            ("CSS_INI_FILE_PATH", "/etc/ssl/certs/cast/cast.ini"),
        ],
        true,
    ),
    (
        "environment",
        "environment.expected",
        &[("CASTCONNECTIONEXTRAPARAMETERS", "/etc/cast/cast.ini")],
        true,
    ),
    (
        "compose.env",
        "compose.expected",
        &[
            ("CASTCONNECTIONEXTRAPARAMETERS", "/etc/cast/cast.ini"),
            ("CAST_SSL_DIR", "/etc/ssl/certs/cast"),
            ("IMAGING_VERSION", "3.4.1-funcrel"),
        ],
        true,
    ),
    (
        "crlf.conf",
        "crlf.expected",
        &[
            ("CSS_SSL_ENABLED", "true"),
            ("CSS_SSL_ROOT_CERT", r"C:\CAST\ssl\root.crt"),
            ("CSS_SSL_KEY", r"C:\CAST\ssl\client.key"),
        ],
        false,
    ),
    (
        "cap-config",
        "cap-config.expected",
        &[
            (
                "DATABASE_URL",
                "postgres://cap:p%40ss%20w@db1/cap?sslmode=verify-ca&sslcert=/etc/cap/client.crt&sslkey=/etc/cap/client.key&sslrootcert=/etc/cap/root.crt",
            ),
            (
                "SECRET_KEY",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
            ("S3_ENDPOINT", "https://s3.example.com"),
        ],
        true,
    ),
    (
        "spaced.conf",
        "spaced.expected",
        &[("CSS_SSL_ENABLED", "true"), ("CSS_SSL_MODE", "verify-full")],
        false,
    ),
];

#[test]
fn realistic_files_get_exactly_their_settings_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    for (file, expected, settings, shell) in CASES {
        let before = fixture(file);
        let want = fixture(expected);
        let mut doc = Document::parse(&before);
        assert_eq!(doc.render(), before, "{file}: parse/render is lossless");
        let changes: Vec<(String, Option<String>)> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect();
        let changed = doc.apply(&changes, QuoteChoice::Auto).unwrap();
        let after = doc.render();
        assert_eq!(after, want, "{file}");
        // The keys reported are those whose value was not already the one asked for.
        let old = Document::parse(&before);
        let differ: Vec<String> = settings
            .iter()
            .filter(|(k, v)| old.get(k).and_then(|a| a.value.as_deref()) != Some(*v))
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(changed, differ, "{file}");
        // Every other entry is byte-identical, in its order.
        let keys: Vec<&str> = settings.iter().map(|(k, _)| *k).collect();
        let reread = Document::parse(&after);
        assert_eq!(
            others(&old.entries, &keys),
            others(&reread.entries, &keys),
            "{file}"
        );
        for (k, v) in *settings {
            assert_eq!(
                reread.get(k).unwrap().value.as_deref(),
                Some(*v),
                "{file}: {k}"
            );
        }
        // A second run changes nothing.
        let mut again = reread.clone();
        assert!(again.apply(&changes, QuoteChoice::Auto).unwrap().is_empty());
        assert_eq!(again.render(), after, "{file}: second run");
        // The shells read the values we wrote (and the other keys as the parser reads them).
        if *shell {
            let path = write_temp(&tmp, file, &after);
            let all: Vec<(String, String)> = reread
                .entries
                .iter()
                .filter_map(Entry::assignment)
                .filter_map(|a| Some((a.key.clone(), a.value.clone()?)))
                .collect();
            let names: Vec<String> = all.iter().map(|(k, _)| k.clone()).collect();
            for sh in SHELLS {
                let got = shell_reads(sh, &path, &names);
                for ((k, v), g) in all.iter().zip(&got) {
                    assert_eq!(g, v, "{sh} reads {k} of {file} differently");
                }
            }
        }
    }
}

#[test]
fn absent_removes_exactly_the_keys() {
    let before = fixture("cast-installer.conf");
    let mut doc = Document::parse(&before);
    let changes = vec![
        ("CSS_PASSWORD".to_string(), None),
        ("CSS_SSL_MODE".to_string(), None),
    ];
    assert_eq!(
        doc.apply(&changes, QuoteChoice::Auto).unwrap(),
        ["CSS_PASSWORD"]
    );
    let after = doc.render();
    let removed: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    assert_eq!(removed, ["CSS_PASSWORD='CastAIP'   # change me"]);
    // The commented-out `# CSS_SSL_MODE=require` stays.
    assert!(after.contains("# CSS_SSL_MODE=require\n"));
}

/// A small deterministic generator (no randomness between runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next() as usize % from.len()]
    }
}

/// Characters that matter to a shell, and some that do not.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "_",
    ".",
    "/",
    ":",
    ",",
    "@",
    "%",
    "+",
    "=",
    "-",
    " ",
    "\t",
    "\"",
    "'",
    "\\",
    "$",
    "`",
    "~",
    "#",
    "!",
    "*",
    "?",
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    ";",
    "&",
    "|",
    "<",
    ">",
    "^",
    "\u{e9}",
    "\u{20ac}",
    "$HOME",
    "\\n",
    "${X}",
    "$(id)",
    "C:\\CAST\\",
    "''",
    "\"\"",
];

#[test]
fn shells_read_every_value_as_the_editor_wrote_it() {
    let mut rng = Lcg(10);
    let mut values: Vec<String> = [
        "",
        "plain",
        "two words",
        "it's",
        "say \"hi\"",
        "$HOME",
        "`id`",
        "a\\",
        "a\\\\",
        "\\$",
        r"C:\CAST\ssl\client.key",
        "postgres://u:p%40ss@h/db?sslmode=verify-ca&sslcert=/x",
        "#not a comment",
        "~/x",
        "tab\there",
        "  padded  ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for _ in 0..300 {
        let n = rng.next() % 8;
        values.push((0..n).map(|_| rng.pick(PIECES)).collect());
    }
    let mut doc = Document::parse("# written by the test\n");
    let mut expected: Vec<(String, String)> = Vec::new();
    let styles = [
        ("auto", QuoteChoice::Auto),
        ("bare", QuoteChoice::Always(Quote::Bare)),
        ("double", QuoteChoice::Always(Quote::Double)),
        ("single", QuoteChoice::Always(Quote::Single)),
    ];
    for (i, v) in values.iter().enumerate() {
        for (name, style) in styles {
            let key = format!("V{i}_{name}");
            if check_value(&key, v, style).is_err() {
                continue;
            }
            assert!(doc.set(&key, v, style).unwrap(), "{key}");
            expected.push((key, v.clone()));
        }
    }
    assert!(expected.len() > 900, "{} values written", expected.len());
    let text = doc.render();
    let tmp = tempfile::tempdir().unwrap();
    let path = write_temp(&tmp, "values.env", &text);
    let keys: Vec<String> = expected.iter().map(|(k, _)| k.clone()).collect();
    for sh in SHELLS {
        let got = shell_reads(sh, &path, &keys);
        for ((k, v), g) in expected.iter().zip(&got) {
            assert_eq!(g, v, "{sh} reads {k} differently");
        }
    }
    // And the parser reads them back the same: setting them again changes nothing.
    let mut again = Document::parse(&text);
    for (k, v) in &expected {
        assert!(!again.set(k, v, QuoteChoice::Auto).unwrap(), "{k}");
    }
}

/// Words a person could have written after `KEY=`: bare runs, quoted runs and escapes.
const WORD_PIECES: &[&str] = &[
    "abc",
    "x/y",
    "\"a b\"",
    "\"q\\\"q\"",
    "\"b\\\\s\"",
    "\"C:\\CAST\"",
    "\"e\\x\"",
    "\"two\nlines\"",
    "'s q'",
    "'$HOME'",
    "'a\\b'",
    "''",
    "\"\"",
    "#h",
    "\u{e9}t\u{e9}",
    "a*b",
    "{x}",
    "\"tab\there\"",
    "\"$HOME\"",
    "$X",
    "a\\ b",
    "~",
];

#[test]
fn the_parser_reads_values_as_the_shells_do() {
    let mut rng = Lcg(77);
    let mut text = String::new();
    let mut lines = 0;
    for i in 0..400 {
        let n = 1 + rng.next() % 4;
        let word: String = (0..n).map(|_| rng.pick(WORD_PIECES)).collect();
        let prefix = if rng.next() % 3 == 0 { "export " } else { "" };
        let comment = if rng.next() % 4 == 0 { " # note" } else { "" };
        text.push_str(&format!("{prefix}W{i}={word}{comment}\n"));
        lines += 1;
    }
    let doc = Document::parse(&text);
    assert_eq!(doc.render(), text);
    let known: Vec<(String, String)> = doc
        .entries
        .iter()
        .filter_map(Entry::assignment)
        .filter_map(|a| Some((a.key.clone(), a.value.clone()?)))
        .collect();
    let assignments = doc.entries.iter().filter_map(Entry::assignment).count();
    assert_eq!(assignments, lines, "every line is an assignment");
    // `$X`, `~`, `a\ b` and `"$HOME"` make a value unknown: most values are still known.
    assert!(known.len() > lines / 2, "{} of {lines} known", known.len());
    let tmp = tempfile::tempdir().unwrap();
    let path = write_temp(&tmp, "words.env", &text);
    let keys: Vec<String> = known.iter().map(|(k, _)| k.clone()).collect();
    for sh in SHELLS {
        let got = shell_reads(sh, &path, &keys);
        for ((k, v), g) in known.iter().zip(&got) {
            assert_eq!(g, v, "{sh} reads {k} differently");
        }
    }
}
