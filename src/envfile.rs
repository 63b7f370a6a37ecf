//! KEY=VALUE files (shell variable assignments): a lossless parser and a pure editor, for the
//! files a POSIX shell could `.`-source or a service reads as its environment: installer
//! `.conf` files, `/etc/environment`, docker compose `.env` files, `/etc/default/*`, CAP's
//! `/etc/cryptosense-analyzer/config`.
//!
//! Every entry keeps its exact bytes ([`Document::render`] of an untouched file gives the input
//! back byte for byte, CRLF, a BOM, a missing final newline and lines we do not understand
//! included); an edit replaces only the value of one assignment, or adds or removes whole
//! entries, and must leave every other entry reading the same (a quote left open on an earlier
//! line could otherwise close in the new text and swallow the lines between): such an edit
//! is refused. An entry is:
//! - a blank line, or a `#` comment (`# KEY=old` is a comment: left alone);
//! - an assignment `[blanks][export ]KEY[blanks]=[blanks]VALUE[blanks][# comment]`, where `KEY`
//!   is `[A-Za-z_][A-Za-z0-9_]*` and `VALUE` is a shell word: bare (`a/b`), `"double"` (with
//!   the shell's backslash escapes `\"` `\\` `\$` `` \` `` and `\<newline>`), `'single'`, or a
//!   mix of them (`"a"'b'c`). A quoted value may span several lines; the entry is then all of
//!   them. Blanks around `=` are not shell syntax but compose and many installers accept them:
//!   each line keeps its own;
//! - anything else (an unclosed quote, `export NAME`, `[section]`): kept as it is, never edited.
//!
//! What a value *is* follows the shell: [`Assignment::value`] is the text `sh` assigns, or
//! `None` when the shell would expand something (`$`, `` ` ``, `~`, a bare `\`) or the line
//! holds several words (`KEY=a b`). The last assignment of a key is the one in effect, as when
//! the shell reads the file: [`Document::set`] changes that one only.
//!
//! Writing: bare values hold only ASCII letters, digits and `_./:,@%+=-`; double quotes escape
//! `"`, `$` and `` ` `` always and a backslash only where the shell would read it as an escape
//! (before one of those, another backslash, or the closing quote), so that `C:\CAST\ssl` stays
//! as written; single quotes cannot hold a `'`. No value holds a line break, a CR or a NUL.
//! `tests/env_file_corpus.rs` checks with `sh` (dash) and bash that they read what we write.

use std::ops::Range;

use crate::text::{newline_of, strip_eol, terminate};

/// How a value is written: bare, in double quotes, or in single quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Bare,
    Double,
    Single,
}

/// The quoting a task asks for: `auto` (the file's way) or one style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuoteChoice {
    /// An existing assignment keeps its style (when the value can be written in it); a new
    /// one takes the file's dominant style; otherwise bare when the value allows it, else
    /// double quotes.
    #[default]
    Auto,
    /// This style, or an error when the value cannot be written in it.
    Always(Quote),
}

impl QuoteChoice {
    /// The module argument's words: `auto`, `none`, `double`, `single`.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "auto" => QuoteChoice::Auto,
            "none" => QuoteChoice::Always(Quote::Bare),
            "double" => QuoteChoice::Always(Quote::Double),
            "single" => QuoteChoice::Always(Quote::Single),
            _ => return None,
        })
    }
}

/// One `KEY=VALUE` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub key: String,
    /// The value as the shell assigns it; `None` when it expands something or is several words.
    pub value: Option<String>,
    /// The style of the value; `None` for a mix (`"a"b`) or several words.
    pub quote: Option<Quote>,
    /// Written with `export `.
    pub export: bool,
    /// The blanks before and after `=`.
    pub spacing: (String, String),
    /// Byte range of the value (quotes included) in the entry's `raw`.
    pub span: Range<usize>,
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Blank,
    Comment,
    Assignment(Assignment),
    /// A line that is none of the above: kept, never edited.
    Other,
}

/// One entry: its exact bytes (line endings included) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub raw: String,
    pub kind: EntryKind,
}

impl Entry {
    /// The assignment this entry is, if it is one.
    pub fn assignment(&self) -> Option<&Assignment> {
        match &self.kind {
            EntryKind::Assignment(a) => Some(a),
            _ => None,
        }
    }
}

/// A parsed KEY=VALUE file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// The file started with a UTF-8 byte order mark (kept).
    bom: bool,
    pub entries: Vec<Entry>,
    /// The newline of lines we add (`"\n"` or `"\r\n"`, from the file's first line).
    newline: &'static str,
}

/// Whether `key` is a variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_key(key: &str) -> bool {
    key_len(key) == key.len() && !key.is_empty()
}

/// The error for a key that is not a variable name.
pub fn key_error(key: &str) -> String {
    format!("`{key}` is not a variable name (letters, digits and `_`, not starting with a digit)")
}

/// Whether `value` can be written bare: only ASCII letters, digits and `_./:,@%+=-` (or empty).
pub fn is_bare_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"_./:,@%+=-".contains(&c))
}

/// Checks that `value` (of `key`) can be written in `quote`. The messages never hold the value:
/// it may be a secret.
pub fn check_value(key: &str, value: &str, quote: QuoteChoice) -> Result<(), String> {
    if value.contains(['\n', '\r']) {
        return Err(format!(
            "the value of `{key}` holds a line break: a KEY=VALUE line holds one line"
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value of `{key}` holds a NUL character"));
    }
    match quote {
        QuoteChoice::Always(Quote::Bare) if !is_bare_safe(value) => Err(format!(
            "the value of `{key}` needs quotes (it holds other characters than letters, digits and `_./:,@%+=-`): use quote: auto or double"
        )),
        QuoteChoice::Always(Quote::Single) if value.contains('\'') => Err(format!(
            "the value of `{key}` holds a `'`, which single quotes cannot hold: use quote: auto or double"
        )),
        _ => Ok(()),
    }
}

/// Whether `value` can be written in `quote` (it has no line break: see [`check_value`]).
fn writable(value: &str, quote: Quote) -> bool {
    match quote {
        Quote::Bare => is_bare_safe(value),
        Quote::Double => true,
        Quote::Single => !value.contains('\''),
    }
}

/// The style of a value with no other guide: bare when it can be, else double quotes.
fn default_quote(value: &str) -> Quote {
    if is_bare_safe(value) {
        Quote::Bare
    } else {
        Quote::Double
    }
}

/// `value` written in `quote`, which must be able to hold it ([`check_value`]).
pub fn render_value(value: &str, quote: Quote) -> String {
    match quote {
        Quote::Bare => value.to_string(),
        Quote::Single => format!("'{value}'"),
        Quote::Double => {
            let mut out = String::with_capacity(value.len() + 2);
            out.push('"');
            let mut chars = value.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' | '$' | '`' => {
                        out.push('\\');
                        out.push(c);
                    }
                    // Inside double quotes a backslash escapes only `$ ` " \` and the newline
                    // (POSIX 2.2.3): elsewhere it stands for itself, as in `C:\CAST`.
                    '\\' => {
                        if matches!(chars.peek(), None | Some('"' | '$' | '`' | '\\')) {
                            out.push('\\');
                        }
                        out.push('\\');
                    }
                    _ => out.push(c),
                }
            }
            out.push('"');
            out
        }
    }
}

/// Length of the variable name at the start of `s` (0 when there is none).
fn key_len(s: &str) -> usize {
    let b = s.as_bytes();
    if !b
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
    {
        return 0;
    }
    b.iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count()
}

fn skip_blanks(b: &[u8], i: &mut usize) {
    while matches!(b.get(*i), Some(b' ' | b'\t')) {
        *i += 1;
    }
}

/// Whether `i` is at the end of its line: the end of the text, `\n`, or a CR ending the line.
fn at_line_end(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        None | Some(b'\n') => true,
        Some(b'\r') => matches!(b.get(i + 1), None | Some(b'\n')),
        _ => false,
    }
}

/// Where the line holding `i` ends (after its `\n`, or the end of the text).
fn line_end(s: &str, i: usize) -> usize {
    s[i..].find('\n').map_or(s.len(), |k| i + k + 1)
}

/// The length of the character at `i`.
fn char_len(s: &str, i: usize) -> usize {
    s[i..].chars().next().map_or(1, char::len_utf8)
}

/// One shell word of a value.
struct Word {
    end: usize,
    value: Option<String>,
    quote: Option<Quote>,
}

/// Bare characters the shell does not take literally in an assignment.
fn expands_bare(c: u8) -> bool {
    matches!(
        c,
        b'$' | b'`' | b'~' | b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')'
    )
}

/// Scans the shell word starting at `i` (it may cross lines inside quotes or after `\`);
/// `None` when a quote is never closed.
fn scan_word(s: &str, mut i: usize) -> Option<Word> {
    let b = s.as_bytes();
    let mut value = Some(String::new());
    let push = |value: &mut Option<String>, t: &str| {
        if let Some(v) = value {
            v.push_str(t);
        }
    };
    let (mut doubles, mut singles, mut bare) = (0, 0, false);
    while i < b.len() && !matches!(b[i], b' ' | b'\t') && !at_line_end(b, i) {
        match b[i] {
            b'"' => {
                doubles += 1;
                let mut j = i + 1;
                loop {
                    match b.get(j)? {
                        b'"' => break,
                        b'\\' if j + 1 < b.len() => match b[j + 1] {
                            b'$' | b'`' | b'"' | b'\\' => {
                                push(&mut value, &s[j + 1..j + 2]);
                                j += 2;
                            }
                            b'\n' => j += 2,
                            _ => {
                                push(&mut value, "\\");
                                j += 1;
                            }
                        },
                        b'$' | b'`' => {
                            value = None;
                            j += 1;
                        }
                        _ => {
                            let n = char_len(s, j);
                            push(&mut value, &s[j..j + n]);
                            j += n;
                        }
                    }
                }
                i = j + 1;
            }
            b'\'' => {
                singles += 1;
                let close = s[i + 1..].find('\'')? + i + 1;
                push(&mut value, &s[i + 1..close]);
                i = close + 1;
            }
            b'\\' => {
                // `\x` is `x` to a shell, a backslash to compose: not a value we can compare.
                // `\<newline>` continues the line; before a CRLF, sh reads an escaped CR.
                bare = true;
                value = None;
                i += 1;
                // A `\` ending the text's last line continues nothing: that newline stays
                // the entry's own.
                let cr_eol = b.get(i) == Some(&b'\r') && at_line_end(b, i);
                let last_eol = b.get(i) == Some(&b'\n') && i + 1 == b.len();
                if i < b.len() && !cr_eol && !last_eol {
                    i += char_len(s, i);
                }
            }
            c => {
                bare = true;
                if expands_bare(c) {
                    value = None;
                }
                let n = char_len(s, i);
                push(&mut value, &s[i..i + n]);
                i += n;
            }
        }
    }
    let quote = match (doubles, singles, bare) {
        (0, 0, _) => Some(Quote::Bare),
        (1, 0, false) => Some(Quote::Double),
        (0, 1, false) => Some(Quote::Single),
        _ => None,
    };
    Some(Word {
        end: i,
        value,
        quote,
    })
}

/// Parses the assignment starting at `start` (a line that is neither blank nor a comment):
/// the assignment (its span relative to `start`) and where its entry ends.
fn parse_assignment(s: &str, start: usize) -> Option<(Assignment, usize)> {
    let b = s.as_bytes();
    let mut i = start;
    skip_blanks(b, &mut i);
    let mut export = false;
    if s[i..].starts_with("export") && matches!(b.get(i + 6), Some(b' ' | b'\t')) {
        let mut j = i + 6;
        skip_blanks(b, &mut j);
        if key_len(&s[j..]) > 0 {
            export = true;
            i = j;
        }
    }
    let klen = key_len(&s[i..]);
    if klen == 0 {
        return None;
    }
    let key = s[i..i + klen].to_string();
    i += klen;
    let before_eq = i;
    skip_blanks(b, &mut i);
    if b.get(i) != Some(&b'=') {
        return None;
    }
    let before = s[before_eq..i].to_string();
    i += 1;
    let mut v = i;
    skip_blanks(b, &mut v);
    // `KEY= # note` and `KEY=  ` are empty values; `KEY=#x` is the value `#x`.
    if v > i && (at_line_end(b, v) || b[v] == b'#') {
        v = i;
    }
    let after = s[i..v].to_string();
    let first = scan_word(s, v)?;
    let (mut end, mut value, mut quote) = (first.end, first.value, first.quote);
    loop {
        let mut k = end;
        skip_blanks(b, &mut k);
        if at_line_end(b, k) || (k > end && b[k] == b'#') {
            break;
        }
        // More words (`KEY=a b`): a command to the shell, one value to compose.
        let next = scan_word(s, k)?;
        end = next.end;
        value = None;
        quote = None;
    }
    let assignment = Assignment {
        key,
        value,
        quote,
        export,
        spacing: (before, after),
        span: v - start..end - start,
    };
    Some((assignment, line_end(s, end)))
}

impl Document {
    /// Parses `text`; never fails (what is not understood is kept as [`EntryKind::Other`]).
    pub fn parse(text: &str) -> Document {
        let (bom, s) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut entries = Vec::new();
        let mut pos = 0;
        while pos < s.len() {
            let le = line_end(s, pos);
            let content = strip_eol(&s[pos..le]).trim_start_matches([' ', '\t']);
            let (kind, end) = if content.is_empty() {
                (EntryKind::Blank, le)
            } else if content.starts_with('#') {
                (EntryKind::Comment, le)
            } else {
                match parse_assignment(s, pos) {
                    Some((a, end)) => (EntryKind::Assignment(a), end),
                    None => (EntryKind::Other, le),
                }
            };
            entries.push(Entry {
                raw: s[pos..end].to_string(),
                kind,
            });
            pos = end;
        }
        Document {
            bom,
            entries,
            newline: newline_of(s),
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.bom {
            out.push('\u{feff}');
        }
        for e in &self.entries {
            out.push_str(&e.raw);
        }
        out
    }

    fn last_index(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .rposition(|e| e.assignment().is_some_and(|a| a.key == key))
    }

    /// The assignment of `key` in effect: the last one.
    pub fn get(&self, key: &str) -> Option<&Assignment> {
        self.last_index(key)
            .and_then(|i| self.entries[i].assignment())
    }

    fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.entries.iter().filter_map(Entry::assignment)
    }

    /// The most common value of `of` among the assignments, when one is more common than
    /// every other; `None` on a tie or in a file without assignments.
    fn dominant<T: PartialEq + Clone>(&self, of: impl Fn(&Assignment) -> Option<T>) -> Option<T> {
        let mut counts: Vec<(T, usize)> = Vec::new();
        for t in self.assignments().filter_map(of) {
            match counts.iter_mut().find(|(x, _)| *x == t) {
                Some((_, n)) => *n += 1,
                None => counts.push((t, 1)),
            }
        }
        let max = counts.iter().map(|(_, n)| *n).max()?;
        let mut best = counts.into_iter().filter(|(_, n)| *n == max);
        let first = best.next()?;
        best.next().is_none().then_some(first.0)
    }

    /// Sets `key` to `value`: the last assignment of `key` gets the new value (its prefix,
    /// spacing and trailing comment kept), or a new line is added after the file's last
    /// assignment (before trailing comments and blank lines; at the end of a file without
    /// assignments). Returns whether the file changed.
    ///
    /// The file must read back the same with the change: a quote opened earlier and never
    /// closed would swallow a new line holding a quote; that edit is refused.
    pub fn set(&mut self, key: &str, value: &str, quote: QuoteChoice) -> Result<bool, String> {
        let saved = self.entries.clone();
        let changed = self.set_unchecked(key, value, quote)?;
        if changed {
            if let Err(e) = self.check_rereads() {
                self.entries = saved;
                return Err(e);
            }
        }
        Ok(changed)
    }

    /// The whole file parses back into the same entries.
    fn check_rereads(&self) -> Result<(), String> {
        let again = Document::parse(&self.render());
        let first = self
            .entries
            .iter()
            .zip(&again.entries)
            .position(|(a, b)| a != b)
            .or((self.entries.len() != again.entries.len())
                .then_some(self.entries.len().min(again.entries.len())));
        match first {
            None => Ok(()),
            Some(i) => {
                let line = 1 + self.entries[..i]
                    .iter()
                    .map(|e| e.raw.matches('\n').count())
                    .sum::<usize>();
                Err(format!(
                    "line {line} would read differently after this edit (it opens a quote, or ends with a `\\` continuation, that is never closed): the file is left as it is"
                ))
            }
        }
    }

    fn set_unchecked(
        &mut self,
        key: &str,
        value: &str,
        quote: QuoteChoice,
    ) -> Result<bool, String> {
        if !is_valid_key(key) {
            return Err(key_error(key));
        }
        check_value(key, value, quote)?;
        if let Some(idx) = self.last_index(key) {
            let entry = &self.entries[idx];
            let Some(a) = entry.assignment() else {
                return Ok(false);
            };
            let style = match quote {
                QuoteChoice::Always(q) => q,
                QuoteChoice::Auto => a
                    .quote
                    .filter(|q| writable(value, *q))
                    .unwrap_or_else(|| default_quote(value)),
            };
            let same_style = quote == QuoteChoice::Auto || a.quote == Some(style);
            if a.value.as_deref() == Some(value) && same_style {
                return Ok(false);
            }
            let raw = format!(
                "{}{}{}",
                &entry.raw[..a.span.start],
                render_value(value, style),
                &entry.raw[a.span.end..]
            );
            if raw == entry.raw {
                return Ok(false);
            }
            self.entries[idx] = reread(raw, key, value)?;
            return Ok(true);
        }
        let style = match quote {
            QuoteChoice::Always(q) => q,
            QuoteChoice::Auto => self
                .dominant(|a| a.quote)
                .filter(|q| writable(value, *q))
                .unwrap_or_else(|| default_quote(value)),
        };
        let (before, after) = self
            .dominant(|a| Some(a.spacing.clone()))
            .unwrap_or_default();
        let export = self.dominant(|a| Some(a.export)).unwrap_or(false);
        let raw = format!(
            "{}{key}{before}={after}{}{}",
            if export { "export " } else { "" },
            render_value(value, style),
            self.newline
        );
        let entry = reread(raw, key, value)?;
        let at = self
            .entries
            .iter()
            .rposition(|e| e.assignment().is_some())
            .map_or(self.entries.len(), |i| i + 1);
        if let Some(prev) = at.checked_sub(1).and_then(|i| self.entries.get_mut(i)) {
            if !prev.raw.ends_with('\n') {
                terminate(&mut prev.raw, self.newline);
            }
        }
        self.entries.insert(at, entry);
        Ok(true)
    }

    /// Removes every assignment of `key`; returns whether there was one. As for
    /// [`Document::set`], the file must read back the same: an earlier line whose quotes the
    /// removed text balanced would swallow the lines after it; that edit is refused.
    pub fn remove(&mut self, key: &str) -> Result<bool, String> {
        if !is_valid_key(key) {
            return Err(key_error(key));
        }
        let saved = self.entries.clone();
        self.entries
            .retain(|e| e.assignment().is_none_or(|a| a.key != key));
        if self.entries.len() == saved.len() {
            return Ok(false);
        }
        if let Err(e) = self.check_rereads() {
            self.entries = saved;
            return Err(e);
        }
        Ok(true)
    }

    /// Applies `changes` in order (`Some(value)`: set, `None`: remove); returns the keys that
    /// changed, each once, in order.
    pub fn apply(
        &mut self,
        changes: &[(String, Option<String>)],
        quote: QuoteChoice,
    ) -> Result<Vec<String>, String> {
        let mut changed: Vec<String> = Vec::new();
        for (key, value) in changes {
            let did = match value {
                Some(v) => self.set(key, v, quote)?,
                None => self.remove(key)?,
            };
            if did && !changed.contains(key) {
                changed.push(key.clone());
            }
        }
        Ok(changed)
    }
}

/// The entry `raw` (one new or rewritten assignment), checked to read back as `key=value`:
/// what we write is what the next run (and a shell) reads.
fn reread(raw: String, key: &str, value: &str) -> Result<Entry, String> {
    let mut doc = Document::parse(&raw);
    let ok = doc.entries.len() == 1
        && doc.entries[0]
            .assignment()
            .is_some_and(|a| a.key == key && a.value.as_deref() == Some(value));
    match doc.entries.pop() {
        Some(entry) if ok => Ok(entry),
        _ => Err(format!(
            "internal error: the line written for `{key}` would not read back as its value"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(line: &str) -> Assignment {
        let d = Document::parse(line);
        assert_eq!(d.entries.len(), 1, "{line:?}: {d:?}");
        d.entries[0]
            .assignment()
            .cloned()
            .unwrap_or_else(|| panic!("{line:?} is not an assignment: {d:?}"))
    }

    fn kind(line: &str) -> EntryKind {
        let d = Document::parse(line);
        assert_eq!(d.entries.len(), 1, "{line:?}: {d:?}");
        d.entries[0].kind.clone()
    }

    fn set(text: &str, key: &str, value: &str, quote: QuoteChoice) -> (String, bool) {
        let mut d = Document::parse(text);
        let changed = d.set(key, value, quote).expect("set succeeds");
        (d.render(), changed)
    }

    fn auto(text: &str, key: &str, value: &str) -> String {
        set(text, key, value, QuoteChoice::Auto).0
    }

    #[test]
    fn lines_are_read_as_a_shell_reads_them() {
        for (line, key, value, quote) in [
            ("A=1", "A", Some("1"), Some(Quote::Bare)),
            ("A=", "A", Some(""), Some(Quote::Bare)),
            ("export A=b/c", "A", Some("b/c"), Some(Quote::Bare)),
            ("  A=x # note", "A", Some("x"), Some(Quote::Bare)),
            ("A=x#y", "A", Some("x#y"), Some(Quote::Bare)),
            ("A=#x", "A", Some("#x"), Some(Quote::Bare)),
            ("A= # note", "A", Some(""), Some(Quote::Bare)),
            ("A=\"a b\"", "A", Some("a b"), Some(Quote::Double)),
            (
                r#"A="q\"s\\b\$d\`e""#,
                "A",
                Some("q\"s\\b$d`e"),
                Some(Quote::Double),
            ),
            (
                r#"A="C:\CAST\ssl""#,
                "A",
                Some(r"C:\CAST\ssl"),
                Some(Quote::Double),
            ),
            ("A=\"x\" # note", "A", Some("x"), Some(Quote::Double)),
            ("A='it''s'", "A", Some("its"), None),
            ("A='$HOME \\n'", "A", Some("$HOME \\n"), Some(Quote::Single)),
            ("A=\"a\"'b'c", "A", Some("abc"), None),
            ("A=\"$HOME\"", "A", None, Some(Quote::Double)),
            ("A=$HOME", "A", None, Some(Quote::Bare)),
            ("A=~/x", "A", None, Some(Quote::Bare)),
            ("A=a\\ b", "A", None, Some(Quote::Bare)),
            ("A=a b", "A", None, None),
            ("A = 1", "A", Some("1"), Some(Quote::Bare)),
            ("export=1", "export", Some("1"), Some(Quote::Bare)),
            ("A=caf\u{e9}", "A", Some("caf\u{e9}"), Some(Quote::Bare)),
        ] {
            let a = one(line);
            assert_eq!(a.key, key, "{line}");
            assert_eq!(a.value.as_deref(), value, "{line}");
            assert_eq!(a.quote, quote, "{line}");
        }
        assert!(one("export A=1").export);
        assert_eq!(one("A = 1").spacing, (" ".to_string(), " ".to_string()));
        assert_eq!(one("A= # n").spacing, (String::new(), String::new()));
    }

    #[test]
    fn comments_blanks_and_other_lines() {
        assert_eq!(kind("# A=1\n"), EntryKind::Comment);
        assert_eq!(kind("   #A=1"), EntryKind::Comment);
        assert_eq!(kind(" \t\r\n"), EntryKind::Blank);
        for other in [
            "export A",
            "[section]",
            "1A=2",
            "A-B=1",
            "A",
            "A=\"unclosed",
            "A='unclosed",
            "A=x \"y",
        ] {
            assert_eq!(kind(other), EntryKind::Other, "{other}");
        }
    }

    #[test]
    fn a_quoted_value_may_span_lines() {
        let text = "A=\"one\ntwo\" # c\nB='x\ny'\nC=a\\\nb\nD=1\n";
        let d = Document::parse(text);
        assert_eq!(d.render(), text);
        let raws: Vec<&str> = d.entries.iter().map(|e| e.raw.as_str()).collect();
        assert_eq!(
            raws,
            ["A=\"one\ntwo\" # c\n", "B='x\ny'\n", "C=a\\\nb\n", "D=1\n"]
        );
        assert_eq!(d.get("A").unwrap().value.as_deref(), Some("one\ntwo"));
        assert_eq!(d.get("B").unwrap().value.as_deref(), Some("x\ny"));
        assert_eq!(d.get("C").unwrap().value, None);
        // Setting one replaces all its lines: nothing is left to dangle.
        let out = auto(text, "A", "v");
        assert_eq!(out, "A=\"v\" # c\nB='x\ny'\nC=a\\\nb\nD=1\n");
        assert_eq!(
            auto(text, "C", "v"),
            "A=\"one\ntwo\" # c\nB='x\ny'\nC=v\nD=1\n"
        );
        // An unclosed quote is a line of its own, kept.
        let text = "A=\"open\nB=1\n";
        let mut d = Document::parse(text);
        assert_eq!(d.entries[0].kind, EntryKind::Other);
        assert_eq!(d.get("B").unwrap().value.as_deref(), Some("1"));
        // Our quotes come in pairs: the quote left open stays open.
        assert!(d.set("B", "x\"y", QuoteChoice::Auto).unwrap());
        assert_eq!(d.render(), "A=\"open\nB=\"x\\\"y\"\n");
        // A last line continued by `\`: a line added after it would become part of it.
        let text = "# c\nA=a\\\n";
        let mut d = Document::parse(text);
        let err = d.set("B", "1", QuoteChoice::Auto).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("never closed"),
            "{err}"
        );
        assert_eq!(d.render(), text);
        assert!(d.set("A", "1", QuoteChoice::Auto).unwrap());
        assert_eq!(d.render(), "# c\nA=1\n");
    }

    #[test]
    fn the_last_assignment_is_the_one_set() {
        let text = "A=1\n# A=0\nA=2 # this one\nB=x\n";
        assert_eq!(auto(text, "A", "3"), "A=1\n# A=0\nA=3 # this one\nB=x\n");
        let (same, changed) = set(text, "A", "2", QuoteChoice::Auto);
        assert!(!changed);
        assert_eq!(same, text);
        assert_eq!(
            Document::parse(text).get("A").unwrap().value.as_deref(),
            Some("2")
        );
    }

    #[test]
    fn each_line_keeps_its_prefix_spacing_and_quotes() {
        let text = "export A=\"old\"\nB = 'old'  # keep\n  C=old\n";
        assert_eq!(
            auto(text, "A", "new"),
            "export A=\"new\"\nB = 'old'  # keep\n  C=old\n"
        );
        assert_eq!(
            auto(text, "B", "new"),
            "export A=\"old\"\nB = 'new'  # keep\n  C=old\n"
        );
        assert_eq!(
            auto(text, "C", "new"),
            "export A=\"old\"\nB = 'old'  # keep\n  C=new\n"
        );
        // A style that cannot hold the value gives way to double quotes.
        assert_eq!(auto("C=old\n", "C", "a b"), "C=\"a b\"\n");
        assert_eq!(auto("B='old'\n", "B", "it's"), "B=\"it's\"\n");
        assert_eq!(auto("A=\"old\"\n", "A", "x$y"), "A=\"x\\$y\"\n");
    }

    #[test]
    fn new_keys_follow_the_file() {
        // Dominant quotes, spacing and `export`.
        let text = "# settings\nexport A=\"1\"\nexport B=\"2\"\nexport C=3\n\n# end\n";
        assert_eq!(
            auto(text, "D", "x"),
            "# settings\nexport A=\"1\"\nexport B=\"2\"\nexport C=3\nexport D=\"x\"\n\n# end\n"
        );
        assert_eq!(auto("A = 1\n", "B", "2"), "A = 1\nB = 2\n");
        // No dominant style: bare when the value allows it, else double quotes.
        assert_eq!(auto("A='1'\nB=\"2\"\n", "C", "x"), "A='1'\nB=\"2\"\nC=x\n");
        assert_eq!(auto("", "C", "a&b"), "C=\"a&b\"\n");
        // A file without assignments gets them at its end.
        assert_eq!(
            auto("# only a comment", "A", "1"),
            "# only a comment\nA=1\n"
        );
        // In the order given.
        let mut d = Document::parse("X=1\n# tail\n");
        let changed = d
            .apply(
                &[
                    ("B".into(), Some("2".into())),
                    ("A".into(), Some("1".into())),
                ],
                QuoteChoice::Auto,
            )
            .unwrap();
        assert_eq!(changed, ["B", "A"]);
        assert_eq!(d.render(), "X=1\nB=2\nA=1\n# tail\n");
    }

    #[test]
    fn line_endings_bom_and_the_final_newline() {
        assert_eq!(auto("A=1\r\nB=2\r\n", "C", "3"), "A=1\r\nB=2\r\nC=3\r\n");
        assert_eq!(auto("A=1\r\nB=2\r\n", "A", "9"), "A=9\r\nB=2\r\n");
        assert_eq!(auto("A=1", "A", "2"), "A=2");
        assert_eq!(auto("A=1", "B", "2"), "A=1\nB=2\n");
        assert_eq!(auto("A=1\r", "B", "2"), "A=1\r\nB=2\r\n");
        assert_eq!(auto("\u{feff}A=1\n", "A", "2"), "\u{feff}A=2\n");
        assert_eq!(auto("\u{feff}A=1\n", "B", "2"), "\u{feff}A=1\nB=2\n");
    }

    #[test]
    fn explicit_quote_styles() {
        let q = |s| QuoteChoice::parse(s).unwrap();
        assert_eq!(set("A=1\n", "A", "1", q("double")).0, "A=\"1\"\n");
        assert_eq!(set("A=\"1\"\n", "A", "1", q("none")).0, "A=1\n");
        assert_eq!(set("A=1\n", "A", "1", q("single")).0, "A='1'\n");
        let (same, changed) = set("A='1'\n", "A", "1", q("single"));
        assert!(!changed);
        assert_eq!(same, "A='1'\n");
        assert_eq!(QuoteChoice::parse("auto"), Some(QuoteChoice::Auto));
        assert_eq!(QuoteChoice::parse("bare"), None);
    }

    #[test]
    fn values_that_cannot_be_written_are_refused_without_showing_them() {
        let mut d = Document::parse("A=1\n");
        for (value, quote, words) in [
            ("s3cr\nEVIL=1", QuoteChoice::Auto, "line break"),
            ("s3cr\rx", QuoteChoice::Always(Quote::Double), "line break"),
            ("s3cr\0", QuoteChoice::Auto, "NUL"),
            ("s3cr et", QuoteChoice::Always(Quote::Bare), "needs quotes"),
            ("s3cr'et", QuoteChoice::Always(Quote::Single), "`'`"),
        ] {
            let err = d.set("A", value, quote).unwrap_err();
            assert!(err.contains(words) && err.contains("`A`"), "{err}");
            assert!(!err.contains("s3cr"), "the value is shown: {err}");
        }
        assert_eq!(d.render(), "A=1\n");
        assert!(d
            .set("1A", "x", QuoteChoice::Auto)
            .unwrap_err()
            .contains("`1A`"));
        assert!(d.remove("A-B").is_err());
    }

    #[test]
    fn double_quotes_escape_only_what_the_shell_reads_as_special() {
        for (value, written) in [
            (r"C:\CAST\ssl", r#""C:\CAST\ssl""#),
            (r"a\", r#""a\\""#),
            (r"a\\b", r#""a\\\b""#),
            ("a\"b", r#""a\"b""#),
            ("$x`y`", r#""\$x\`y\`""#),
            (r"\$", r#""\\\$""#),
        ] {
            assert_eq!(render_value(value, Quote::Double), written, "{value}");
            let line = format!("A={written}");
            assert_eq!(one(&line).value.as_deref(), Some(value), "{line}");
        }
    }

    /// Found by the env_file fuzz target: `A="x'` is not an assignment while a `"` below
    /// leaves it unclosed; removing the line holding that `"` made it one, swallowing the
    /// lines between (and bringing back a key just removed).
    #[test]
    fn a_removal_that_would_change_how_earlier_lines_read_is_refused() {
        // `X='a` closes at the `'` of A's value, then A's `"` stays open: X is no assignment.
        // Without A's line, X's quote closes at B's `\'` and X would hold B's line.
        let text = "X='a\nA=\"it's\"\nB=\\'\n";
        let mut d = Document::parse(text);
        assert_eq!(d.entries[0].kind, EntryKind::Other);
        assert_eq!(d.get("A").unwrap().value.as_deref(), Some("it's"));
        let err = d.remove("A").unwrap_err();
        assert!(
            err.contains("line 1") && err.contains("never closed"),
            "{err}"
        );
        assert_eq!(d.render(), text);
        assert!(d.remove("B").unwrap());
        assert_eq!(d.render(), "X='a\nA=\"it's\"\n");
    }

    #[test]
    fn absent_removes_every_assignment_and_nothing_else() {
        let text = "A=1\n# A=commented\nexport A=\"2\nspans\"\nB=2\nA=3";
        let mut d = Document::parse(text);
        assert!(d.remove("A").unwrap());
        assert_eq!(d.render(), "# A=commented\nB=2\n");
        assert!(!d.remove("A").unwrap());
        assert!(!d.remove("Z").unwrap());
    }

    // ---- properties ----

    fn file_strategy() -> impl Strategy<Value = String> {
        let line = prop::sample::select(vec![
            "A=1",
            "B=\"two words\"",
            "export C='single'",
            "A = spaced",
            "# A=commented",
            "",
            "  ",
            "D=\"$HOME/x\"",
            "E=a\\ b",
            "F=x # note",
            "G=\"multi",
            "line\"",
            "B=",
            "other line",
            "H='it''s'",
            "I=caf\u{e9}",
            "J=\"C:\\CAST\\ssl\"",
            "K=a\\",
        ]);
        (
            prop::collection::vec(line, 0..10),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(lines, crlf, trailing)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut text = lines.join(nl);
                if trailing && !lines.is_empty() {
                    text.push_str(nl);
                }
                text
            })
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "NEW",
        ])
        .prop_map(String::from)
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "",
                "1",
                "true",
                "a b",
                "it's",
                "x\"y",
                "$HOME",
                "a\\",
                "C:\\CAST",
                "#x",
                "caf\u{e9}",
                "`id`",
                "~/x",
                "a=b",
                "  ",
                "postgres://u:p@h/db?x=1&y=2",
            ])
            .prop_map(String::from),
            "[^\n\r\0]{0,12}",
        ]
    }

    fn quote_strategy() -> impl Strategy<Value = QuoteChoice> {
        prop::sample::select(vec![
            QuoteChoice::Auto,
            QuoteChoice::Always(Quote::Bare),
            QuoteChoice::Always(Quote::Double),
            QuoteChoice::Always(Quote::Single),
        ])
    }

    /// The raw entries of `before` are all in `after`, in order (new ones may be between);
    /// one entry that lost its missing final newline counts as kept.
    fn kept_in_order(before: &[Entry], after: &[Entry], except: Option<usize>) -> bool {
        let mut it = after.iter();
        before.iter().enumerate().all(|(i, e)| {
            Some(i) == except
                || it.any(|x| {
                    x.raw == e.raw || (!e.raw.ends_with('\n') && x.raw.starts_with(&e.raw))
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn prop_parse_render_is_lossless(text in "(?s).{0,200}") {
            prop_assert_eq!(Document::parse(&text).render(), text);
        }

        #[test]
        fn prop_parse_render_is_lossless_on_env_like_text(text in file_strategy()) {
            prop_assert_eq!(Document::parse(&text).render(), text);
        }

        #[test]
        fn prop_setting_the_current_value_is_a_no_op(text in file_strategy()) {
            let d = Document::parse(&text);
            for a in d.assignments() {
                let current = d.get(&a.key).unwrap().value.clone();
                // A value on several lines cannot be written (set refuses it): skip those.
                if let Some(v) = current.filter(|v| check_value(&a.key, v, QuoteChoice::Auto).is_ok()) {
                    let v = &v;
                    let mut e = d.clone();
                    prop_assert!(!e.set(&a.key, v, QuoteChoice::Auto).unwrap(), "{} = {:?}", a.key, v);
                    prop_assert_eq!(e.render(), text.clone());
                }
            }
        }

        #[test]
        fn prop_set_holds_the_value_keeps_the_rest_and_settles(
            text in file_strategy(),
            key in key_strategy(),
            value in value_strategy(),
            quote in quote_strategy(),
        ) {
            let before = Document::parse(&text);
            let mut d = before.clone();
            let changed = match d.set(&key, &value, quote) {
                Ok(changed) => changed,
                Err(e) => {
                    // Refused: a value that cannot be written, or a quote or `\` left open.
                    let open = e.contains("never closed");
                    prop_assert!(check_value(&key, &value, quote).is_err() || open, "{}", e);
                    prop_assert_eq!(d.render(), text);
                    return Ok(());
                }
            };
            let out = d.render();
            prop_assert_eq!(changed, out != text);
            let again = Document::parse(&out);
            prop_assert_eq!(again.get(&key).and_then(|a| a.value.clone()), Some(value.clone()));
            // Every other entry is byte-identical and in its place.
            let touched = before.last_index(&key);
            prop_assert!(kept_in_order(&before.entries, &again.entries, touched), "{:?} -> {:?}", text, out);
            prop_assert!(again.entries.len() <= before.entries.len() + 1);
            // The same edit again changes nothing.
            let mut e = again.clone();
            prop_assert!(!e.set(&key, &value, quote).unwrap());
            prop_assert_eq!(e.render(), out);
        }

        #[test]
        fn prop_remove_leaves_no_assignment_and_keeps_the_rest(text in file_strategy(), key in key_strategy()) {
            let before = Document::parse(&text);
            let mut d = before.clone();
            let changed = match d.remove(&key) {
                Ok(changed) => changed,
                Err(e) => {
                    prop_assert!(e.contains("never closed"), "{}", e);
                    prop_assert_eq!(d.render(), text);
                    return Ok(());
                }
            };
            let out = d.render();
            prop_assert_eq!(changed, out != text);
            let again = Document::parse(&out);
            prop_assert!(again.get(&key).is_none());
            let kept: Vec<&Entry> = before
                .entries
                .iter()
                .filter(|e| e.assignment().is_none_or(|a| a.key != key))
                .collect();
            let got: Vec<&Entry> = again.entries.iter().collect();
            prop_assert_eq!(kept, got);
        }
    }
}
