//! A lossless parser and pure editor of `postgresql.conf` (and `postgresql.auto.conf`, and the
//! files of a `conf.d` include directory).
//!
//! Every line keeps its exact bytes ([`ConfFile::render`] of an untouched file gives the input
//! back byte for byte, CRLF, tabs and invalid lines included); edits replace whole lines or only
//! the value span of a line. The lexer follows PostgreSQL's own (`guc-file.l`): a line is blank,
//! a `#` comment, or `name [=] value [# comment]`, where `name` is an identifier or a qualified
//! `ext.name`, and `value` is a single-quoted string (`''` and backslash escapes inside), an
//! unquoted string (`[A-Za-z_]` then letters, digits and `-._:/`), an integer (with unit letters,
//! `0x` hex) or a real. `include`, `include_if_exists` and `include_dir` are directives.
//! Parameter names are case-insensitive; when a parameter appears twice, the last one wins.

use std::ops::Range;

use crate::text::{eol_of, newline_of, terminate};

/// One parsed `name [=] value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The name as written.
    pub name: String,
    /// The value with quotes and escapes removed.
    pub value: String,
    /// Byte range of the value token (quotes included) in the line.
    pub value_span: Range<usize>,
    /// Whether the value was single-quoted.
    pub quoted: bool,
    /// Whether the line has an `=` between name and value.
    pub equals: bool,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// Empty or whitespace only.
    Blank,
    /// A `#` comment; `commented` is the setting it comments out (`#port = 5432`), if any.
    Comment { commented: Option<Setting> },
    /// An active parameter.
    Setting(Setting),
    /// `include`, `include_if_exists` or `include_dir` (the name says which).
    Include(Setting),
    /// A line PostgreSQL would reject (syntax error): kept as it is, never edited.
    Invalid(String),
}

/// A line: its exact bytes (line ending included) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfLine {
    pub raw: String,
    pub kind: LineKind,
}

/// A parsed configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfFile {
    pub lines: Vec<ConfLine>,
    /// The newline convention (`"\n"` or `"\r\n"`) used for lines we add.
    pub newline: &'static str,
}

/// What [`ConfFile::set`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOutcome {
    /// The value in effect before (the last active line), unquoted.
    pub before: Option<String>,
    /// Whether the file changed.
    pub changed: bool,
    /// How many earlier duplicates were commented out.
    pub duplicates_commented: usize,
    /// `"unchanged"`, `"replaced"`, `"inserted after the commented-out default"`, `"appended"`.
    pub action: &'static str,
}

const INCLUDES: [&str; 3] = ["include", "include_if_exists", "include_dir"];

/// The note appended to an earlier duplicate that [`ConfFile::set`] comments out.
pub const DUPLICATE_NOTE: &str = "# castellan: earlier duplicate, the last setting wins";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Id,
    QualifiedId,
    Str,
    Unquoted,
    Integer,
    Real,
    Equals,
    Comment,
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_letter_or_digit(b: u8) -> bool {
    is_letter(b) || b.is_ascii_digit()
}

fn id_len(s: &[u8]) -> usize {
    match s.first() {
        Some(&b) if is_letter(b) => {
            1 + s[1..]
                .iter()
                .take_while(|&&b| is_letter_or_digit(b))
                .count()
        }
        _ => 0,
    }
}

fn qualified_id_len(s: &[u8]) -> usize {
    let a = id_len(s);
    if a == 0 || s.get(a) != Some(&b'.') {
        return 0;
    }
    let b = id_len(&s[a + 1..]);
    if b == 0 {
        0
    } else {
        a + 1 + b
    }
}

fn unquoted_len(s: &[u8]) -> usize {
    match s.first() {
        Some(&b) if is_letter(b) => {
            1 + s[1..]
                .iter()
                .take_while(|&&b| is_letter_or_digit(b) || b"-._:/".contains(&b))
                .count()
        }
        _ => 0,
    }
}

fn sign_len(s: &[u8]) -> usize {
    usize::from(matches!(s.first(), Some(b'-' | b'+')))
}

fn digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

fn integer_len(s: &[u8]) -> usize {
    let sg = sign_len(s);
    let rest = &s[sg..];
    let units = |from: usize| {
        from + rest[from..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count()
    };
    let dec = match digits(rest) {
        0 => 0,
        n => units(n),
    };
    let hex = if rest.starts_with(b"0x") {
        match rest[2..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count()
        {
            0 => 0,
            n => units(2 + n),
        }
    } else {
        0
    };
    match dec.max(hex) {
        0 => 0,
        n => sg + n,
    }
}

fn real_len(s: &[u8]) -> usize {
    let sg = sign_len(s);
    let mut i = sg + digits(&s[sg..]);
    if s.get(i) != Some(&b'.') {
        return 0;
    }
    i += 1;
    i += digits(&s[i..]);
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let j = i + 1 + sign_len(&s[i + 1..]);
        let d = digits(&s[j..]);
        if d > 0 {
            i = j + d;
        }
    }
    i
}

/// Length of a single-quoted string at the start of `s` (which starts with `'`), if closed.
fn string_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => {
                if i + 1 >= s.len() || s[i + 1] == b'\n' {
                    return None;
                }
                i += 2;
            }
            b'\'' => {
                if s.get(i + 1) == Some(&b'\'') {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Splits one line (without its `\n`) into tokens, as PostgreSQL's lexer would.
fn lex(body: &str) -> Result<Vec<(Tok, Range<usize>)>, String> {
    let s = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if matches!(c, b' ' | b'\t' | b'\r') {
            i += 1;
            continue;
        }
        if c == b'#' {
            out.push((Tok::Comment, i..s.len()));
            break;
        }
        if c == b'=' {
            out.push((Tok::Equals, i..i + 1));
            i += 1;
            continue;
        }
        let rest = &s[i..];
        let str_len = if c == b'\'' { string_len(rest) } else { None };
        // Longest match wins; on a tie, the rule listed first in guc-file.l.
        let candidates = [
            (Tok::Id, id_len(rest)),
            (Tok::QualifiedId, qualified_id_len(rest)),
            (Tok::Str, str_len.unwrap_or(0)),
            (Tok::Unquoted, unquoted_len(rest)),
            (Tok::Integer, integer_len(rest)),
            (Tok::Real, real_len(rest)),
        ];
        let mut best = (Tok::Id, 0);
        for cand in candidates {
            if cand.1 > best.1 {
                best = cand;
            }
        }
        if best.1 == 0 {
            let ch = body[i..].chars().next().unwrap_or('?');
            return Err(if c == b'\'' {
                "unterminated quoted string".to_string()
            } else {
                format!("syntax error at `{ch}`")
            });
        }
        out.push((best.0, i..i + best.1));
        i += best.1;
    }
    Ok(out)
}

/// The value of a quoted string token (with its quotes): `''` and backslash escapes resolved,
/// as PostgreSQL's `DeescapeQuotedString`.
pub fn unquote(token: &str) -> String {
    let inner = token
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(token);
    let b = inner.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if i + 1 < b.len() => {
                i += 1;
                match b[i] {
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'0'..=b'7' => {
                        let mut v: u32 = 0;
                        let mut k = 0;
                        while k < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                            v = v * 8 + u32::from(b[i] - b'0');
                            i += 1;
                            k += 1;
                        }
                        out.push((v & 0xff) as u8);
                        continue;
                    }
                    other => out.push(other),
                }
                i += 1;
            }
            b'\'' if b.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_simple_identifier(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn is_simple_number(v: &str) -> bool {
    let b = v.as_bytes();
    let body = &b[sign_len(b)..];
    if body.is_empty() {
        return false;
    }
    // An integer, optionally with a unit (`128MB`, `10s`, `5min`).
    let d = digits(body);
    if d > 0 && body[d..].iter().all(u8::is_ascii_alphabetic) {
        return true;
    }
    // A plain decimal (`0.5`, `1.25`): the lexer's REAL without the odd forms.
    let int = digits(body);
    if body.get(int) == Some(&b'.') {
        let frac = digits(&body[int + 1..]);
        return int + frac > 0 && int + 1 + frac == body.len();
    }
    false
}

/// The value as it should be written: bare when a simple identifier (`on`, `off`, `true`,
/// `md5`...) or a number (`5432`, `128MB`, `0.5`), else single-quoted with `'` and `\` doubled
/// (as PostgreSQL writes `postgresql.auto.conf`).
pub fn quote_value(value: &str) -> String {
    if is_simple_identifier(value) || is_simple_number(value) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Whether `name` is a valid parameter name (an identifier, or `ext.name`).
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let n = id_len(b).max(qualified_id_len(b));
    n > 0 && n == b.len()
}

const BOOL_TRUE: [&str; 3] = ["on", "true", "yes"];
const BOOL_FALSE: [&str; 3] = ["off", "false", "no"];

/// Whether two values mean the same: equal text, or the same boolean word in any case
/// (`on` = `ON` = `true`).
pub fn same_value(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let words = |v: &str| {
        let l = v.to_ascii_lowercase();
        if BOOL_TRUE.contains(&l.as_str()) {
            Some(true)
        } else if BOOL_FALSE.contains(&l.as_str()) {
            Some(false)
        } else {
            None
        }
    };
    matches!((words(a), words(b)), (Some(x), Some(y)) if x == y)
}

fn strip_eol(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

/// Parses the text of one line (its `\n` excluded).
fn parse_body(body: &str) -> LineKind {
    let toks = match lex(body) {
        Ok(t) => t,
        Err(e) => return LineKind::Invalid(e),
    };
    let mut it = toks.iter().filter(|(t, _)| *t != Tok::Comment);
    let has_comment = toks.iter().any(|(t, _)| *t == Tok::Comment);
    let Some((t, name)) = it.next() else {
        if has_comment {
            let commented = toks
                .last()
                .map(|(_, r)| &body[r.start + 1..])
                .and_then(|inner| match parse_body(inner) {
                    LineKind::Setting(s) if s.equals => {
                        let off = body.len() - inner.len();
                        Some(Setting {
                            value_span: s.value_span.start + off..s.value_span.end + off,
                            ..s
                        })
                    }
                    _ => None,
                });
            return LineKind::Comment { commented };
        }
        return LineKind::Blank;
    };
    if !matches!(t, Tok::Id | Tok::QualifiedId) {
        return LineKind::Invalid("a line must start with a parameter name".into());
    }
    let mut next = it.next();
    let equals = matches!(next, Some((Tok::Equals, _)));
    if equals {
        next = it.next();
    }
    let Some((vt, vr)) = next else {
        return LineKind::Invalid(format!("missing value for `{}`", &body[name.clone()]));
    };
    if !matches!(
        vt,
        Tok::Id | Tok::Str | Tok::Integer | Tok::Real | Tok::Unquoted
    ) {
        return LineKind::Invalid(format!("invalid value for `{}`", &body[name.clone()]));
    }
    if let Some((_, r)) = it.next() {
        return LineKind::Invalid(format!("unexpected `{}` after the value", &body[r.clone()]));
    }
    let raw_value = &body[vr.clone()];
    let quoted = *vt == Tok::Str;
    let setting = Setting {
        name: body[name.clone()].to_string(),
        value: if quoted {
            unquote(raw_value)
        } else {
            raw_value.to_string()
        },
        value_span: vr.clone(),
        quoted,
        equals,
    };
    if INCLUDES
        .iter()
        .any(|d| d.eq_ignore_ascii_case(&setting.name))
    {
        LineKind::Include(setting)
    } else {
        LineKind::Setting(setting)
    }
}

/// Parses one line (with or without its line ending).
pub fn parse_line(raw: &str) -> ConfLine {
    ConfLine {
        raw: raw.to_string(),
        kind: parse_body(strip_eol(raw)),
    }
}

impl ConfFile {
    /// Parses a whole file. Never fails: lines PostgreSQL would reject are kept as
    /// [`LineKind::Invalid`].
    pub fn parse(text: &str) -> ConfFile {
        ConfFile {
            lines: text.split_inclusive('\n').map(parse_line).collect(),
            newline: newline_of(text),
        }
    }

    /// The file's text: byte-identical to the input when nothing was edited.
    pub fn render(&self) -> String {
        self.lines.iter().map(|l| l.raw.as_str()).collect()
    }

    /// Indexes of the active lines setting `name` (case-insensitive), in file order.
    pub fn active(&self, name: &str) -> Vec<usize> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(&l.kind, LineKind::Setting(s) if s.name.eq_ignore_ascii_case(name)))
            .map(|(i, _)| i)
            .collect()
    }

    /// The value in effect in this file for `name` (the last active line), unquoted.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.settings()
            .filter(|s| s.name.eq_ignore_ascii_case(name))
            .last()
            .map(|s| s.value.as_str())
    }

    /// Every active setting, in file order (duplicates included).
    pub fn settings(&self) -> impl Iterator<Item = &Setting> {
        self.lines.iter().filter_map(|l| match &l.kind {
            LineKind::Setting(s) => Some(s),
            _ => None,
        })
    }

    /// The include directives, in file order.
    pub fn includes(&self) -> impl Iterator<Item = &Setting> {
        self.lines.iter().filter_map(|l| match &l.kind {
            LineKind::Include(s) => Some(s),
            _ => None,
        })
    }

    /// The invalid lines: (1-based line number, error).
    pub fn errors(&self) -> Vec<(usize, String)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match &l.kind {
                LineKind::Invalid(e) => Some((i + 1, e.clone())),
                _ => None,
            })
            .collect()
    }

    fn replace(&mut self, i: usize, raw: String) {
        self.lines[i] = parse_line(&raw);
    }

    fn eol_of(&self, i: usize) -> &'static str {
        eol_of(&self.lines[i].raw)
    }

    /// Comments out line `i`, appending `note` (if any) after the line's text.
    fn comment_out(&mut self, i: usize, note: Option<&str>) {
        let eol = self.eol_of(i);
        let body = &self.lines[i].raw[..self.lines[i].raw.len() - eol.len()];
        let mut raw = format!("#{body}");
        if let Some(n) = note {
            raw.push('\t');
            raw.push_str(n);
        }
        raw.push_str(eol);
        self.replace(i, raw);
    }

    /// Makes sure the last line ends with a newline (before adding a line after it).
    fn terminate(&mut self, i: usize) {
        if self.eol_of(i).is_empty() {
            let mut raw = self.lines[i].raw.clone();
            terminate(&mut raw, self.newline);
            self.replace(i, raw);
        }
    }

    /// Sets `name` to `value`: the last active line for it gets the new value in place (its
    /// spacing and trailing comment kept), and earlier active duplicates are commented out with
    /// [`DUPLICATE_NOTE`]. With no active line, the new line goes right after the last
    /// commented-out `#name = ...` line (and the indented comment lines that continue it), or
    /// at the end of the file.
    pub fn set(&mut self, name: &str, value: &str) -> Result<SetOutcome, String> {
        if !is_valid_name(name) {
            return Err(format!("invalid parameter name `{name}`"));
        }
        if INCLUDES.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "`{name}` is a directive, not a parameter: it cannot be set with pg_conf"
            ));
        }
        if value.contains('\n') {
            return Err(format!(
                "the value of `{name}` contains a newline, which postgresql.conf cannot hold"
            ));
        }
        let active = self.active(name);
        let before = self.get(name).map(str::to_string);
        let mut out = SetOutcome {
            before: before.clone(),
            changed: false,
            duplicates_commented: 0,
            action: "unchanged",
        };
        if let Some((&last, earlier)) = active.split_last() {
            for &i in earlier {
                self.comment_out(i, Some(DUPLICATE_NOTE));
                out.duplicates_commented += 1;
                out.changed = true;
            }
            let LineKind::Setting(s) = &self.lines[last].kind else {
                return Err("internal error: active line is not a setting".into());
            };
            if !same_value(&s.value, value) {
                let raw = &self.lines[last].raw;
                let head = &raw[..s.value_span.start];
                // `ssl'off'` (no `=`, no blank) is valid; `sslon` would not be.
                let glue = if head.ends_with(|c: char| c.is_whitespace() || c == '=') {
                    ""
                } else {
                    " "
                };
                let new = format!(
                    "{head}{glue}{}{}",
                    quote_value(value),
                    &raw[s.value_span.end..]
                );
                self.replace(last, new);
                out.changed = true;
                out.action = "replaced";
            }
            return Ok(out);
        }
        let line = format!("{name} = {}{}", quote_value(value), self.newline);
        let commented = self.lines.iter().rposition(|l| {
            matches!(&l.kind, LineKind::Comment { commented: Some(s) } if s.name.eq_ignore_ascii_case(name))
        });
        match commented {
            Some(i) => {
                // Skip the indented comment lines that continue the default's comment.
                let mut at = i;
                while self.lines.get(at + 1).is_some_and(|l| {
                    matches!(l.kind, LineKind::Comment { commented: None })
                        && l.raw.starts_with([' ', '\t'])
                }) {
                    at += 1;
                }
                self.terminate(at);
                self.lines.insert(at + 1, parse_line(&line));
                out.action = "inserted after the commented-out default";
            }
            None => {
                if let Some(last) = self.lines.len().checked_sub(1) {
                    self.terminate(last);
                }
                self.lines.push(parse_line(&line));
                out.action = "appended";
            }
        }
        out.changed = true;
        Ok(out)
    }

    /// Comments out every active line for `name`. Returns the value that was in effect, if any.
    pub fn unset(&mut self, name: &str) -> Option<String> {
        let before = self.get(name).map(str::to_string);
        for i in self.active(name) {
            self.comment_out(i, None);
        }
        before
    }
}

/// The `pg_settings.context` of a PostgreSQL 15 parameter (case-insensitive), if known.
pub fn context_of(name: &str) -> Option<&'static str> {
    super::guc_contexts::PG15
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, c)| *c)
}

/// Whether changing `name` needs a restart (`postmaster` context) rather than a reload.
pub fn needs_restart(name: &str) -> bool {
    context_of(name) == Some("postmaster")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, name: &str, value: &str) -> (String, SetOutcome) {
        let mut f = ConfFile::parse(text);
        let o = f.set(name, value).unwrap();
        (f.render(), o)
    }

    /// Found by the pg_conf fuzz target: `ssl'off'` (no `=`, no blank: PostgreSQL reads it as
    /// ssl = off) became `sslon`, one word the server rejects. A blank now separates them.
    #[test]
    fn a_value_glued_to_its_name_stays_separate() {
        for (text, want) in [
            ("ssl'off'\n", "ssl on\n"),
            ("ssl'off' # c\n", "ssl on # c\n"),
            ("port=5432\n", "port=5433\n"),
            ("ssl 'off'\n", "ssl on\n"),
        ] {
            let value = if want.contains("port") { "5433" } else { "on" };
            let name = if want.contains("port") { "port" } else { "ssl" };
            let (out, o) = set(text, name, value);
            assert_eq!(out, want, "{text:?}");
            assert!(o.changed);
            let f = ConfFile::parse(&out);
            assert!(f.errors().is_empty(), "{out:?}: {:?}", f.errors());
            assert_eq!(f.get(name), Some(value));
        }
    }

    #[test]
    fn classifies_lines() {
        let f = ConfFile::parse(
            "\n# comment\n#port = 5432\t\t# (change requires restart)\nport = 5433 # mine\n\
             shared_buffers 128MB\nlisten_addresses='*'\ninclude_dir 'conf.d'\nbad line here\n\
             pg_stat_statements.max = 10000\n",
        );
        let k: Vec<_> = f.lines.iter().map(|l| &l.kind).collect();
        assert_eq!(k[0], &LineKind::Blank);
        assert_eq!(k[1], &LineKind::Comment { commented: None });
        assert!(
            matches!(k[2], LineKind::Comment { commented: Some(s) } if s.name == "port" && s.value == "5432")
        );
        assert!(matches!(k[3], LineKind::Setting(s) if s.value == "5433" && s.equals));
        assert!(matches!(k[4], LineKind::Setting(s) if s.value == "128MB" && !s.equals));
        assert!(matches!(k[5], LineKind::Setting(s) if s.value == "*" && s.quoted));
        assert!(matches!(k[6], LineKind::Include(s) if s.value == "conf.d"));
        assert!(matches!(k[7], LineKind::Invalid(_)));
        assert!(matches!(k[8], LineKind::Setting(s) if s.name == "pg_stat_statements.max"));
        assert_eq!(f.errors().len(), 1);
        assert_eq!(f.includes().count(), 1);
    }

    #[test]
    fn lexer_follows_postgres() {
        // Unquoted strings may hold -._:/ ; a qualified id is not a value.
        assert!(matches!(parse_body("a = TLSv1.2"), LineKind::Setting(s) if s.value == "TLSv1.2"));
        assert!(matches!(
            parse_body("a = /var/run/pg"),
            LineKind::Invalid(_)
        ));
        assert!(matches!(parse_body("a = x.y"), LineKind::Invalid(_)));
        assert!(matches!(parse_body("a = 0x1F"), LineKind::Setting(s) if s.value == "0x1F"));
        assert!(matches!(parse_body("a = -1.5e3"), LineKind::Setting(s) if s.value == "-1.5e3"));
        assert!(matches!(parse_body("a = 1e5"), LineKind::Invalid(_)));
        assert!(matches!(
            parse_body("a = 'unterminated"),
            LineKind::Invalid(_)
        ));
        assert!(matches!(parse_body("a = 'x' 'y'"), LineKind::Invalid(_)));
        assert!(matches!(parse_body("a ="), LineKind::Invalid(_)));
        assert!(matches!(parse_body("= 1"), LineKind::Invalid(_)));
        assert!(matches!(parse_body("a=1#c"), LineKind::Setting(s) if s.value == "1"));
        assert!(matches!(parse_body("a = 1\r"), LineKind::Setting(s) if s.value == "1"));
        assert!(matches!(parse_body("a = 'it''s' # c"), LineKind::Setting(s) if s.value == "it's"));
        assert!(
            matches!(parse_body(r"a = 'C:\\data\'x\n'"), LineKind::Setting(s) if s.value == "C:\\data'x\n")
        );
        assert!(matches!(parse_body("a = '\\101'"), LineKind::Setting(s) if s.value == "A"));
        assert!(matches!(parse_body("é = ünïcode"), LineKind::Setting(s) if s.value == "ünïcode"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_value("on"), "on");
        assert_eq!(quote_value("off"), "off");
        assert_eq!(quote_value("true"), "true");
        assert_eq!(quote_value("5432"), "5432");
        assert_eq!(quote_value("128MB"), "128MB");
        assert_eq!(quote_value("0.5"), "0.5");
        assert_eq!(quote_value("-1"), "-1");
        assert_eq!(quote_value("*"), "'*'");
        assert_eq!(quote_value(""), "''");
        assert_eq!(quote_value("TLSv1.2"), "'TLSv1.2'");
        assert_eq!(quote_value("/etc/ssl/server.crt"), "'/etc/ssl/server.crt'");
        assert_eq!(quote_value("it's"), "'it''s'");
        assert_eq!(quote_value(r"C:\pg"), r"'C:\\pg'");
        assert_eq!(quote_value("1e5"), "'1e5'");
        assert_eq!(quote_value("localhost,10.0.0.1"), "'localhost,10.0.0.1'");
        for v in ["it's", r"a\b", "x y", "", "on", "héllo", "'", "\\'"] {
            let line = format!("a = {}", quote_value(v));
            assert!(
                matches!(parse_body(&line), LineKind::Setting(s) if s.value == v),
                "{line}"
            );
        }
    }

    #[test]
    fn set_replaces_in_place_keeping_the_comment() {
        let (t, o) = set("a = 1\nport   =  5432\t# my port\nb = 2\n", "PORT", "5433");
        assert_eq!(t, "a = 1\nport   =  5433\t# my port\nb = 2\n");
        assert_eq!(o.action, "replaced");
        assert_eq!(o.before.as_deref(), Some("5432"));
        let (t, _) = set(
            "ssl_cert_file='old.crt'  # x\n",
            "ssl_cert_file",
            "/a b.crt",
        );
        assert_eq!(t, "ssl_cert_file='/a b.crt'  # x\n");
        let (t, _) = set("port 5432\n", "port", "5433");
        assert_eq!(t, "port 5433\n");
    }

    #[test]
    fn set_is_idempotent_and_semantic() {
        let (t, o) = set("ssl = 'on'\nport = 5432\n", "ssl", "on");
        assert!(!o.changed);
        assert_eq!(t, "ssl = 'on'\nport = 5432\n");
        let (_, o) = set("ssl = ON\n", "ssl", "true");
        assert!(!o.changed);
        let (_, o) = set("a = 'x'\n", "a", "x");
        assert!(!o.changed);
        let (_, o) = set("a = 'x'\n", "a", "X");
        assert!(o.changed);
    }

    #[test]
    fn set_after_the_commented_default_or_appends() {
        let text = "# - SSL -\n\n#ssl = off\t\t\t\t# comment\n#ssl_ca_file = ''\nother = 1\n";
        let (t, o) = set(text, "ssl", "on");
        assert_eq!(
            t,
            "# - SSL -\n\n#ssl = off\t\t\t\t# comment\nssl = on\n#ssl_ca_file = ''\nother = 1\n"
        );
        assert_eq!(o.action, "inserted after the commented-out default");
        assert_eq!(o.before, None);
        // After the indented comment lines that go with the default.
        let text =
            "#listen_addresses = 'localhost'\t# what\n\t\t\t\t\t# more\n  # and more\n# - next -\n";
        let (t, _) = set(text, "listen_addresses", "*");
        assert_eq!(
            t,
            "#listen_addresses = 'localhost'\t# what\n\t\t\t\t\t# more\n  # and more\nlisten_addresses = '*'\n# - next -\n"
        );
        // The last commented-out line is used.
        let (t, _) = set("#port = 1\n#port = 2\nx = 1\n", "port", "3");
        assert_eq!(t, "#port = 1\n#port = 2\nport = 3\nx = 1\n");
        // A prose comment mentioning the name is not a commented-out setting.
        let (t, o) = set("# port is the TCP port\nx = 1", "port", "3");
        assert_eq!(t, "# port is the TCP port\nx = 1\nport = 3\n");
        assert_eq!(o.action, "appended");
        let (t, _) = set("", "port", "3");
        assert_eq!(t, "port = 3\n");
        let (t, _) = set("#port = 1", "port", "3");
        assert_eq!(t, "#port = 1\nport = 3\n");
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let (t, _) = set("a = 1\r\n#port = 1\r\n", "port", "2");
        assert_eq!(t, "a = 1\r\n#port = 1\r\nport = 2\r\n");
        let (t, _) = set("port = 1\r\n", "port", "2");
        assert_eq!(t, "port = 2\r\n");
        // A CRLF file that lost its last LF: the same convention as the file editors
        // (crate::text::newline_of), not a bare LF after a CR.
        let (t, _) = set("a = 1\r", "port", "2");
        assert_eq!(t, "a = 1\r\nport = 2\r\n");
    }

    #[test]
    fn earlier_duplicates_are_commented_out() {
        let (t, o) = set("port = 1\nx = 1\nPort = 2 # b\nport = 3\n", "port", "4");
        assert_eq!(
            t,
            format!(
                "#port = 1\t{DUPLICATE_NOTE}\nx = 1\n#Port = 2 # b\t{DUPLICATE_NOTE}\nport = 4\n"
            )
        );
        assert_eq!(o.duplicates_commented, 2);
        assert_eq!(o.before.as_deref(), Some("3"));
        // Same value already last: the duplicates still go (a change).
        let (t, o) = set("port = 1\nport = 4\n", "port", "4");
        assert!(o.changed);
        assert_eq!(o.action, "unchanged");
        assert_eq!(t, format!("#port = 1\t{DUPLICATE_NOTE}\nport = 4\n"));
        let mut f = ConfFile::parse(&t);
        assert!(!f.set("port", "4").unwrap().changed);
    }

    #[test]
    fn unset_comments_out() {
        let mut f = ConfFile::parse("port = 1\nx = 2\nport = 3");
        assert_eq!(f.unset("PORT").as_deref(), Some("3"));
        assert_eq!(f.render(), "#port = 1\nx = 2\n#port = 3");
        assert_eq!(f.unset("port"), None);
        assert_eq!(f.get("port"), None);
    }

    #[test]
    fn refuses_bad_names_and_values() {
        let mut f = ConfFile::parse("");
        assert!(f.set("bad name", "1").is_err());
        assert!(f.set("include", "x").is_err());
        assert!(f.set("a", "x\ny").is_err());
        assert!(f.set("a.b", "x").is_ok());
        assert!(f.set("a.b.c", "x").is_err());
    }

    #[test]
    fn contexts() {
        assert_eq!(context_of("ssl_cert_file"), Some("sighup"));
        assert_eq!(context_of("SSL"), Some("sighup"));
        assert_eq!(context_of("listen_addresses"), Some("postmaster"));
        assert!(needs_restart("port"));
        assert!(!needs_restart("ssl_min_protocol_version"));
        assert_eq!(context_of("timezone"), Some("user"));
        assert_eq!(context_of("nope"), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "[ \t]*",
                "[ \t]*#[^\n]*",
                "[ \t]*[a-z_]{1,12}[ \t]*=?[ \t]*[a-zA-Z0-9_.:/-]{0,12}[ \t]*(#[^\n]{0,10})?",
                "[a-z_.]{1,12} *= *'([^'\\\\\n]|''|\\\\[^\n]){0,12}'[ \t]*(#[^\n]{0,10})?",
                "#[a-z_]{1,10} = [0-9]{1,4}[ \t]*(#.{0,5})?",
                "[^\n]{0,30}",
            ]
        }

        fn file() -> impl Strategy<Value = String> {
            (
                proptest::collection::vec((line(), prop_oneof!["\n", "\r\n"]), 0..12),
                any::<bool>(),
            )
                .prop_map(|(lines, last_eol)| {
                    let n = lines.len();
                    lines
                        .iter()
                        .enumerate()
                        .map(|(i, (l, e))| {
                            if i + 1 == n && !last_eol {
                                l.clone()
                            } else {
                                format!("{l}{e}")
                            }
                        })
                        .collect::<String>()
                })
        }

        proptest! {
            #[test]
            fn round_trip(text in file()) {
                prop_assert_eq!(ConfFile::parse(&text).render(), text);
            }

            #[test]
            fn set_then_get(text in file(), value in "[^\n]{0,12}") {
                let mut f = ConfFile::parse(&text);
                f.set("castellan_test", &value).unwrap();
                let again = ConfFile::parse(&f.render());
                prop_assert_eq!(again.get("castellan_test"), Some(value.as_str()));
                prop_assert_eq!(again.active("castellan_test").len(), 1);
                // Idempotent.
                let mut g = again.clone();
                prop_assert!(!g.set("castellan_test", &value).unwrap().changed);
            }

            #[test]
            fn quoted_values_read_back(value in "[^\n]{0,20}") {
                let line = format!("x = {}", quote_value(&value));
                let parsed = parse_body(&line);
                prop_assert!(matches!(parsed, LineKind::Setting(ref s) if s.value == value), "{}", line);
            }
        }
    }
}
