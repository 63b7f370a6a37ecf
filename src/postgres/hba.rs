//! A lossless parser and pure editor of `pg_hba.conf`.
//!
//! The file is a list of records, each keeping its exact bytes: [`HbaFile::render`] of an
//! untouched file gives the input back byte for byte. A record is one line, or several when a
//! line ends with a backslash (continuation, PostgreSQL 15+): the lines are joined without the
//! backslash, as the server does. Tokens follow PostgreSQL's `next_token`: fields are separated
//! by blanks, a field is a comma-separated list of tokens, `"..."` quotes (`""` inside is a
//! quote), `#` outside quotes starts a comment. `include`, `include_if_exists` and `include_dir`
//! (PostgreSQL 16+) are directives.
//!
//! The editor never re-sorts: first match wins, so rules are inserted at a stated
//! [`Position`] and everything else keeps its order, comments included.

use std::collections::HashSet;
use std::net::IpAddr;

use regex::Regex;

use crate::text::{eol_of, newline_of, terminate};

/// One token of a field: its text (quotes removed) and whether it started with a quote
/// (a quoted `"all"` is a name, not the keyword).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token {
    pub text: String,
    pub quoted: bool,
}

/// The address of a `host*` rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IP network: the network address (host bits cleared) and prefix length.
    Net { ip: IpAddr, prefix: u8 },
    /// `all`, `samehost`, `samenet`.
    Keyword(String),
    /// A host name (lower-cased), or a `.domain` suffix.
    Host(String),
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `local`, `host`, `hostssl`, `hostnossl`, `hostgssenc`, `hostnogssenc`.
    pub conn_type: String,
    pub database: Vec<Token>,
    pub user: Vec<Token>,
    pub address: Option<Address>,
    pub method: String,
    /// `name=value` options in order.
    pub options: Vec<(String, String)>,
    /// The trailing comment (from `#`), if any.
    pub comment: Option<String>,
}

/// What identifies a rule: the connections it matches (type, database, user, address).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleKey {
    pub conn_type: String,
    pub database: Vec<(String, bool)>,
    pub user: Vec<(String, bool)>,
    pub address: Option<Address>,
}

const DB_KEYWORDS: [&str; 5] = ["all", "sameuser", "samerole", "samegroup", "replication"];

fn token_key(tokens: &[Token]) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = tokens
        .iter()
        .map(|t| {
            // Quoting only matters for what would otherwise be special.
            let special = DB_KEYWORDS.contains(&t.text.as_str())
                || t.text.starts_with('+')
                || t.text.starts_with('@');
            (t.text.clone(), t.quoted && special)
        })
        .collect();
    v.sort();
    v
}

impl Rule {
    pub fn key(&self) -> RuleKey {
        RuleKey {
            conn_type: self.conn_type.clone(),
            database: token_key(&self.database),
            user: token_key(&self.user),
            address: self.address.clone(),
        }
    }

    /// The value of option `name`, if set.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Same method and options (in any order).
    fn same_auth(&self, other: &Rule) -> bool {
        let mut a = self.options.clone();
        let mut b = other.options.clone();
        a.sort();
        b.sort();
        self.method == other.method && a == b
    }
}

/// What a record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    Blank,
    Comment,
    Rule(Rule),
    /// `include`, `include_if_exists`, `include_dir` and the path.
    Include {
        directive: String,
        path: String,
    },
    /// A record PostgreSQL would reject; kept as it is, never edited.
    Invalid(String),
}

/// A record: its exact bytes (all its physical lines, line endings included) and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub raw: String,
    pub kind: RecordKind,
}

impl Record {
    pub fn rule(&self) -> Option<&Rule> {
        match &self.kind {
            RecordKind::Rule(r) => Some(r),
            _ => None,
        }
    }

    /// The record's text without line endings, physical lines joined with `\n`.
    pub fn text(&self) -> String {
        self.raw
            .split_inclusive('\n')
            .map(|l| l.trim_end_matches(['\n', '\r']))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A parsed `pg_hba.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HbaFile {
    pub records: Vec<Record>,
    /// The newline convention (`"\n"` or `"\r\n"`) used for lines we add.
    pub newline: &'static str,
}

pub const CONN_TYPES: [&str; 6] = [
    "local",
    "host",
    "hostssl",
    "hostnossl",
    "hostgssenc",
    "hostnogssenc",
];

pub const METHODS: [&str; 13] = [
    "trust",
    "reject",
    "scram-sha-256",
    "md5",
    "password",
    "gss",
    "sspi",
    "ident",
    "peer",
    "pam",
    "ldap",
    "radius",
    "cert",
];

const INCLUDES: [&str; 3] = ["include", "include_if_exists", "include_dir"];

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r')
}

/// Splits a logical line into fields of tokens, as PostgreSQL's `next_field_expand`.
/// Returns the fields and the byte offset of the comment (`#`), if any.
pub fn tokenize(line: &str) -> (Vec<Vec<Token>>, Option<usize>) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut fields = Vec::new();
    let mut comment = None;
    while i < b.len() {
        let mut field = Vec::new();
        loop {
            while i < b.len() && (is_blank(b[i]) || b[i] == b',') {
                i += 1;
            }
            let mut buf: Vec<u8> = Vec::new();
            let (mut in_quote, mut was_quote, mut saw_quote) = (false, false, false);
            let mut initial_quote = false;
            let mut trailing_comma = false;
            while i < b.len() && (!is_blank(b[i]) || in_quote) {
                let c = b[i];
                if c == b'#' && !in_quote {
                    comment = Some(i);
                    i = b.len();
                    break;
                }
                if c == b',' && !in_quote {
                    trailing_comma = true;
                    break;
                }
                if c != b'"' || was_quote {
                    buf.push(c);
                }
                if in_quote && c == b'"' {
                    was_quote = !was_quote;
                } else {
                    was_quote = false;
                }
                if c == b'"' {
                    in_quote = !in_quote;
                    saw_quote = true;
                    if buf.is_empty() {
                        initial_quote = true;
                    }
                }
                i += 1;
            }
            if !saw_quote && buf.is_empty() {
                break;
            }
            field.push(Token {
                text: String::from_utf8_lossy(&buf).into_owned(),
                quoted: initial_quote,
            });
            if !trailing_comma {
                break;
            }
        }
        if !field.is_empty() {
            fields.push(field);
        }
    }
    (fields, comment)
}

fn prefix_of_mask(mask: IpAddr) -> Option<u8> {
    let bits: u128 = match mask {
        IpAddr::V4(m) => u128::from(u32::from(m)) << 96,
        IpAddr::V6(m) => u128::from(m),
    };
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    let max = if mask.is_ipv4() { 32 } else { 128 };
    u8::try_from(ones.min(max)).ok()
}

fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

/// Parses the address field (and the mask field after it when the address is a bare IP).
/// Returns the address and how many fields it took.
fn parse_address(fields: &[Vec<Token>]) -> Result<(Address, usize), String> {
    let [tok] = fields.first().map(Vec::as_slice).unwrap_or(&[]) else {
        return Err(if fields.is_empty() {
            "end-of-line before IP address specification".into()
        } else {
            "multiple values specified for host address".into()
        });
    };
    let text = tok.text.as_str();
    if !tok.quoted && ["all", "samehost", "samenet"].contains(&text) {
        return Ok((Address::Keyword(text.to_string()), 1));
    }
    if let Some((ip, len)) = text.split_once('/') {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("invalid IP address \"{text}\""))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = len
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("invalid CIDR mask in address \"{text}\""))?;
        return Ok((
            Address::Net {
                ip: network(ip, prefix),
                prefix,
            },
            1,
        ));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        let [mask] = fields.get(1).map(Vec::as_slice).unwrap_or(&[]) else {
            return Err("end-of-line before netmask specification".into());
        };
        let m: IpAddr = mask
            .text
            .parse()
            .map_err(|_| format!("invalid IP mask \"{}\"", mask.text))?;
        if m.is_ipv4() != ip.is_ipv4() {
            return Err("IP address and mask do not match".into());
        }
        let prefix =
            prefix_of_mask(m).ok_or_else(|| format!("invalid IP mask \"{}\"", mask.text))?;
        return Ok((
            Address::Net {
                ip: network(ip, prefix),
                prefix,
            },
            2,
        ));
    }
    Ok((Address::Host(text.to_ascii_lowercase()), 1))
}

fn one_token<'a>(field: Option<&'a Vec<Token>>, what: &str) -> Result<&'a Token, String> {
    match field.map(Vec::as_slice) {
        Some([t]) => Ok(t),
        Some(_) => Err(format!("multiple values specified for {what}")),
        None => Err(format!("end-of-line before {what}")),
    }
}

/// Classifies a logical line (continuations already joined).
fn classify(line: &str) -> RecordKind {
    let (fields, comment) = tokenize(line);
    if fields.is_empty() {
        return if comment.is_some() {
            RecordKind::Comment
        } else {
            RecordKind::Blank
        };
    }
    match parse_rule(&fields, comment.map(|c| line[c..].to_string())) {
        Ok(k) => k,
        Err(e) => RecordKind::Invalid(e),
    }
}

fn parse_rule(fields: &[Vec<Token>], comment: Option<String>) -> Result<RecordKind, String> {
    let t = one_token(fields.first(), "connection type")?;
    if INCLUDES.contains(&t.text.as_str()) && !t.quoted {
        let p = one_token(fields.get(1), "the included file")?;
        return Ok(RecordKind::Include {
            directive: t.text.clone(),
            path: p.text.clone(),
        });
    }
    if !CONN_TYPES.contains(&t.text.as_str()) {
        return Err(format!("invalid connection type \"{}\"", t.text));
    }
    let database = fields
        .get(1)
        .cloned()
        .ok_or("end-of-line before database specification")?;
    let user = fields
        .get(2)
        .cloned()
        .ok_or("end-of-line before role specification")?;
    let mut next = 3;
    let address = if t.text == "local" {
        None
    } else {
        let (a, n) = parse_address(&fields[3..])?;
        next += n;
        Some(a)
    };
    let method = one_token(fields.get(next), "authentication method")?;
    if !METHODS.contains(&method.text.as_str()) {
        return Err(format!("invalid authentication method \"{}\"", method.text));
    }
    let mut options = Vec::new();
    for tok in fields[next + 1..].iter().flatten() {
        let (n, v) = tok.text.split_once('=').ok_or_else(|| {
            format!(
                "authentication option not in name=value format: {}",
                tok.text
            )
        })?;
        options.push((n.to_string(), v.to_string()));
    }
    Ok(RecordKind::Rule(Rule {
        conn_type: t.text.clone(),
        database,
        user,
        address,
        method: method.text.clone(),
        options,
        comment,
    }))
}

fn strip_crlf(line: &str) -> &str {
    line.trim_end_matches(['\n', '\r'])
}

/// Parses one record from its raw text (one or more physical lines).
pub fn parse_record(raw: &str) -> Record {
    // As the server reads it: a whole line (with its newline) ending with a backslash continues
    // on the next one (also at the end of the file); a last line without newline is taken as is.
    let mut logical = String::new();
    for l in raw.split_inclusive('\n') {
        if !l.ends_with('\n') {
            logical.push_str(l);
            break;
        }
        let s = strip_crlf(l);
        logical.push_str(s.strip_suffix('\\').unwrap_or(s));
    }
    Record {
        raw: raw.to_string(),
        kind: classify(&logical),
    }
}

impl HbaFile {
    /// Parses a whole file. Never fails: records PostgreSQL would reject are kept as
    /// [`RecordKind::Invalid`].
    pub fn parse(text: &str) -> HbaFile {
        let mut records = Vec::new();
        let mut cur = String::new();
        for line in text.split_inclusive('\n') {
            cur.push_str(line);
            let continued = line.ends_with('\n') && strip_crlf(line).ends_with('\\');
            if !continued {
                records.push(parse_record(&cur));
                cur.clear();
            }
        }
        if !cur.is_empty() {
            records.push(parse_record(&cur));
        }
        HbaFile {
            records,
            newline: newline_of(text),
        }
    }

    /// The file's text: byte-identical to the input when nothing was edited.
    pub fn render(&self) -> String {
        self.records.iter().map(|r| r.raw.as_str()).collect()
    }

    /// The rules in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.records.iter().filter_map(Record::rule)
    }

    /// The invalid records: (index, error).
    pub fn errors(&self) -> Vec<(usize, String)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match &r.kind {
                RecordKind::Invalid(e) => Some((i, e.clone())),
                _ => None,
            })
            .collect()
    }

    fn set_raw(&mut self, i: usize, raw: String) {
        self.records[i] = parse_record(&raw);
    }

    /// Comments out record `i` (every physical line gets a `#`).
    fn comment_out(&mut self, i: usize) {
        let raw: String = self.records[i]
            .raw
            .split_inclusive('\n')
            .map(|l| format!("#{l}"))
            .collect();
        self.set_raw(i, raw);
    }

    fn insert(&mut self, at: usize, line: &str) {
        if at > 0 {
            let prev = &self.records[at - 1].raw;
            let mut raw = prev.clone();
            if eol_of(&raw).is_empty() {
                // A last line ending with a backslash but no newline is not a continuation:
                // keep it so (a space stops the backslash from joining the next line).
                if raw.ends_with('\\') {
                    raw.push(' ');
                }
                terminate(&mut raw, self.newline);
            }
            // A trailing backslash on the record's last line (only possible at the end of the
            // file) would swallow the new line: end the continuation with an empty line.
            let body = &raw[..raw.len() - eol_of(&raw).len()];
            let last_line = &raw[body.rfind('\n').map_or(0, |i| i + 1)..];
            if strip_crlf(last_line).ends_with('\\') {
                raw.push_str(self.newline);
            }
            if raw != *prev {
                self.set_raw(at - 1, raw);
            }
        }
        let raw = format!("{line}{}", self.newline);
        self.records.insert(at, parse_record(&raw));
    }
}

/// Where [`apply`] inserts a rule that is not in the file yet.
#[derive(Debug, Clone)]
pub enum Position {
    /// Before the first `host*` rule (or include): first match wins, so a new `hostssl` rule
    /// must come before any TCP rule that would match the same connections first. The default.
    BeforeFirstHost,
    /// Before the first rule.
    Top,
    /// After the last line.
    Bottom,
    /// Before the first line (rule or comment) matching the regular expression.
    Before(Regex),
    /// After the last line (rule or comment) matching the regular expression.
    After(Regex),
}

/// A rule the user wants (decoded from module arguments by `modules::postgres::hba_args`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub conn_type: String,
    /// The database field as written (`all`, `db1,db2`, `"my db"`).
    pub database: String,
    pub user: String,
    pub address: Option<String>,
    pub netmask: Option<String>,
    pub method: String,
    pub options: Vec<(String, String)>,
}

/// Quotes a database or user name for pg_hba.conf when it needs it.
pub fn quote_token(s: &str) -> String {
    let needs = s.is_empty()
        || s.bytes()
            .any(|b| is_blank(b) || matches!(b, b',' | b'#' | b'"' | b'\\'));
    if needs {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl RuleSpec {
    /// The rule line, in columns like PostgreSQL's sample file.
    pub fn line(&self) -> String {
        fn col(s: &mut String, v: &str, w: usize) {
            s.push_str(v);
            let n = if v.len() < w { w - v.len() } else { 1 };
            s.push_str(&" ".repeat(n));
        }
        let mut s = String::new();
        col(&mut s, &self.conn_type, 8);
        col(&mut s, &self.database, 16);
        col(&mut s, &self.user, 16);
        let addr = match (&self.address, &self.netmask) {
            (Some(a), Some(m)) => format!("{a} {m}"),
            (Some(a), None) => a.clone(),
            _ => String::new(),
        };
        col(&mut s, &addr, 24);
        s.push_str(&self.method);
        for (k, v) in &self.options {
            s.push(' ');
            s.push_str(&quote_token(&format!("{k}={v}")));
        }
        s
    }
}

/// A server major version from `server_version_num` (150004 -> 15, 90624 -> 9) or a major.
pub fn major_version(v: i64) -> i64 {
    if v >= 1000 {
        v / 10000
    } else {
        v
    }
}

/// Checks a wanted rule and normalizes `clientcert` to the server's major version:
/// on 12/13 `1` becomes `verify-ca` and `0`/`no-verify` are dropped; on 14+ they are refused
/// (the server would not start); `clientcert` is refused on non-`hostssl` rules, and the `cert`
/// method accepts only `clientcert=verify-full`.
pub fn normalize(spec: &RuleSpec, server_version: Option<i64>) -> Result<RuleSpec, String> {
    let mut out = spec.clone();
    let line = spec.line();
    // A rule is one line: a line break (or a NUL, where the server stops reading) in a field
    // would write a second line of its own, a rule nobody asked for.
    if line.contains(['\n', '\r', '\0']) {
        return Err(format!(
            "a pg_hba.conf rule is one line: a field holds a line break or a NUL character: {line:?}"
        ));
    }
    let t = spec.conn_type.as_str();
    if !CONN_TYPES.contains(&t) {
        return Err(format!(
            "invalid connection type `{t}` in `{line}`: expected one of {}",
            CONN_TYPES.join(", ")
        ));
    }
    if !METHODS.contains(&spec.method.as_str()) {
        return Err(format!(
            "invalid authentication method `{}` in `{line}`: expected one of {}",
            spec.method,
            METHODS.join(", ")
        ));
    }
    if t == "local" && spec.address.is_some() {
        return Err(format!("`local` rules take no address: `{line}`"));
    }
    if t != "local" && spec.address.is_none() {
        return Err(format!("a `{t}` rule needs an `address`: `{line}`"));
    }
    if spec.method == "cert" && t != "hostssl" {
        return Err(format!(
            "the `cert` method is only supported on hostssl rules: `{line}`"
        ));
    }
    let major = server_version.map(major_version);
    if let Some(pos) = out.options.iter().position(|(k, _)| k == "clientcert") {
        if t != "hostssl" {
            return Err(format!(
                "clientcert can only be configured for hostssl rows: `{line}`"
            ));
        }
        let v = out.options[pos].1.clone();
        let old = matches!(v.as_str(), "1" | "0" | "no-verify");
        let Some(major) = major else {
            if old {
                return Err(format!(
                    "clientcert={v} depends on the server version: pass `server_version` \
                     (pg_facts' server_version_num); on 14+ use verify-ca or verify-full"
                ));
            }
            if !matches!(v.as_str(), "verify-ca" | "verify-full") {
                return Err(format!(
                    "invalid value for clientcert: \"{v}\" (verify-ca or verify-full)"
                ));
            }
            return check_cert(out, &line);
        };
        match v.as_str() {
            _ if old && major >= 14 => {
                return Err(format!(
                    "clientcert={v} was removed in PostgreSQL 14 (the server would refuse \
                     pg_hba.conf and not start): use clientcert=verify-ca or verify-full in `{line}`"
                ))
            }
            "1" if major >= 12 => out.options[pos].1 = "verify-ca".into(),
            "1" => {}
            "0" | "no-verify" => {
                if spec.method == "cert" {
                    return Err(format!(
                        "clientcert cannot be set to \"{v}\" with the cert method: `{line}`"
                    ));
                }
                out.options.remove(pos);
            }
            "verify-ca" if major < 12 => out.options[pos].1 = "1".into(),
            "verify-ca" => {}
            "verify-full" if major < 12 => {
                return Err(format!(
                    "clientcert=verify-full needs PostgreSQL 12 or later (server is {major}): `{line}`"
                ))
            }
            "verify-full" => {}
            other => {
                return Err(format!(
                    "invalid value for clientcert: \"{other}\" (verify-ca or verify-full) in `{line}`"
                ))
            }
        }
    }
    check_cert(out, &line)
}

fn check_cert(out: RuleSpec, line: &str) -> Result<RuleSpec, String> {
    if out.method == "cert" {
        if let Some((_, v)) = out.options.iter().find(|(k, _)| k == "clientcert") {
            if v != "verify-full" {
                return Err(format!(
                    "clientcert only accepts \"verify-full\" with the cert method (got \"{v}\"): `{line}`"
                ));
            }
        }
    }
    Ok(out)
}

/// `present` or `absent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Want {
    #[default]
    Present,
    Absent,
}

/// An edit of pg_hba.conf.
#[derive(Debug, Clone)]
pub struct HbaEdit {
    pub rules: Vec<RuleSpec>,
    pub state: Want,
    pub position: Position,
    /// Comment out `host`/`hostnossl` rules (not `reject` ones), loopback included, so only TLS
    /// remains for TCP connections; `local` (Unix socket) lines stay for administration.
    pub block_plain: bool,
    /// Server major version (or `server_version_num`), for `clientcert`.
    pub server_version: Option<i64>,
}

/// What [`apply`] did: the lines concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HbaReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub moved: Vec<String>,
    pub removed: Vec<String>,
    /// Plain-text rules commented out by `block_plain`.
    pub blocked: Vec<String>,
    /// Problems in lines we did not write (they may stop the server).
    pub warnings: Vec<String>,
}

impl HbaReport {
    pub fn changed(&self) -> bool {
        !(self.added.is_empty()
            && self.updated.is_empty()
            && self.moved.is_empty()
            && self.removed.is_empty()
            && self.blocked.is_empty())
    }
}

/// Index of the first line of the comment block directly above record `i` (no blank line in
/// between), so that an insertion does not separate a rule from its comment.
fn attached_comments_start(f: &HbaFile, i: usize) -> usize {
    let mut s = i;
    while s > 0 && f.records[s - 1].kind == RecordKind::Comment {
        s -= 1;
    }
    s
}

fn is_foreign(r: &Record, ours: &HashSet<RuleKey>) -> bool {
    match &r.kind {
        RecordKind::Rule(rule) => !ours.contains(&rule.key()),
        RecordKind::Include { .. } | RecordKind::Invalid(_) => true,
        _ => false,
    }
}

/// The anchor of a position: `Before(i)` (insert before record i), `After(i)`, or `End`.
enum Anchor {
    Before(usize),
    After(usize),
    End,
}

fn anchor(f: &HbaFile, pos: &Position, ours: &HashSet<RuleKey>) -> Option<Anchor> {
    let recs = &f.records;
    let matches = |re: &Regex, r: &Record| {
        r.kind != RecordKind::Blank
            && !matches!(&r.kind, RecordKind::Rule(rule) if ours.contains(&rule.key()))
            && re.is_match(&r.text())
    };
    Some(match pos {
        Position::BeforeFirstHost => recs
            .iter()
            .position(|r| {
                is_foreign(r, ours)
                    && match &r.kind {
                        RecordKind::Rule(rule) => rule.conn_type != "local",
                        _ => true,
                    }
            })
            .map_or(Anchor::End, Anchor::Before),
        Position::Top => recs
            .iter()
            .position(|r| is_foreign(r, ours))
            .map_or(Anchor::End, Anchor::Before),
        Position::Bottom => Anchor::End,
        Position::Before(re) => Anchor::Before(recs.iter().position(|r| matches(re, r))?),
        Position::After(re) => Anchor::After(recs.iter().rposition(|r| matches(re, r))?),
    })
}

/// Whether a rule of ours at record `i` is where `pos` wants it.
fn well_placed(f: &HbaFile, i: usize, pos: &Position, ours: &HashSet<RuleKey>) -> bool {
    match pos {
        Position::Bottom => !f.records[i + 1..].iter().any(|r| is_foreign(r, ours)),
        _ => match anchor(f, pos, ours) {
            None | Some(Anchor::End) => true,
            Some(Anchor::Before(a)) => i < a,
            Some(Anchor::After(a)) => i > a,
        },
    }
}

/// Where to insert a new rule of ours.
fn insertion_index(f: &HbaFile, pos: &Position, ours: &HashSet<RuleKey>) -> Result<usize, String> {
    let at = match anchor(f, pos, ours) {
        None => {
            let re = match pos {
                Position::Before(r) | Position::After(r) => r.as_str(),
                _ => "",
            };
            return Err(format!("position: no line of pg_hba.conf matches `{re}`"));
        }
        Some(Anchor::End) => f.records.len(),
        Some(Anchor::Before(a)) => match pos {
            Position::Before(_) => a,
            _ => attached_comments_start(f, a),
        },
        Some(Anchor::After(a)) => {
            // After the anchor and the rules of ours already placed after it (keeps their order).
            let mut i = a + 1;
            while i < f.records.len()
                && matches!(&f.records[i].kind, RecordKind::Rule(r) if ours.contains(&r.key()))
            {
                i += 1;
            }
            i
        }
    };
    Ok(at)
}

fn warn_existing(f: &HbaFile, major: Option<i64>, report: &mut HbaReport) {
    for r in &f.records {
        let Some(rule) = r.rule() else { continue };
        let Some(cc) = rule.option("clientcert") else {
            continue;
        };
        let line = r.text();
        if rule.conn_type != "hostssl" {
            report.warnings.push(format!(
                "clientcert on a non-hostssl rule (the server rejects it): `{line}`"
            ));
        } else if major.is_some_and(|m| m >= 14) && matches!(cc, "1" | "0" | "no-verify") {
            report.warnings.push(format!(
                "clientcert={cc} is invalid on PostgreSQL 14+ (the server rejects the file): `{line}`"
            ));
        }
    }
}

/// `block_plain`: comments out the `host`/`hostnossl` rules (not `reject` ones) that are not
/// among the wanted rules of a `present` edit.
fn block_plain(
    file: &mut HbaFile,
    edit: &HbaEdit,
    ours: &HashSet<RuleKey>,
    report: &mut HbaReport,
) {
    for i in 0..file.records.len() {
        let Some(rule) = file.records[i].rule() else {
            continue;
        };
        let plain = matches!(rule.conn_type.as_str(), "host" | "hostnossl");
        let ours_present = edit.state == Want::Present && ours.contains(&rule.key());
        if plain && rule.method != "reject" && !ours_present {
            report.blocked.push(file.records[i].text());
            file.comment_out(i);
        }
    }
}

/// Applies `edit` to `file`. Errors (an invalid rule, a clientcert the server would refuse, a
/// position regex that matches nothing) leave the file unchanged in meaning: the caller drops it.
pub fn apply(file: &mut HbaFile, edit: &HbaEdit) -> Result<HbaReport, String> {
    let mut report = HbaReport::default();
    let mut wanted = Vec::new();
    for spec in &edit.rules {
        let spec = normalize(spec, edit.server_version)?;
        let line = spec.line();
        let rec = parse_record(&line);
        let RecordKind::Rule(rule) = rec.kind else {
            let why = match rec.kind {
                RecordKind::Invalid(e) => e,
                _ => "not a rule".into(),
            };
            return Err(format!("invalid rule `{line}`: {why}"));
        };
        // Two rules for the same connections: the first would win in the server and the
        // second rewrite it on every run. The same rule twice is only one rule (and for
        // `absent` only the connections matter).
        match wanted.iter().find(|(_, w): &&(String, Rule)| w.key() == rule.key()) {
            Some((_, w)) if w.same_auth(&rule) || edit.state == Want::Absent => continue,
            Some((other, _)) => {
                return Err(format!(
                    "`{other}` and `{line}` are for the same connections (type, database, user, address) with different authentication: keep one"
                ))
            }
            None => wanted.push((line, rule)),
        }
    }
    let ours: HashSet<RuleKey> = wanted.iter().map(|(_, r)| r.key()).collect();
    // A regex position is found in the file as it will be: the blocked rules, commented out,
    // may match it (`^#`), and blocking after the insertion would move the anchor.
    let block_first = matches!(edit.position, Position::Before(_) | Position::After(_));
    if edit.block_plain && block_first {
        block_plain(file, edit, &ours, &mut report);
    }

    match edit.state {
        Want::Absent => {
            let mut i = 0;
            while i < file.records.len() {
                match file.records[i].rule() {
                    Some(r) if ours.contains(&r.key()) => {
                        report.removed.push(file.records[i].text());
                        file.records.remove(i);
                    }
                    _ => i += 1,
                }
            }
        }
        Want::Present => {
            for (line, rule) in &wanted {
                let key = rule.key();
                let same = |r: &Record| r.rule().is_some_and(|x| x.key() == key);
                let existing = file.records.iter().position(same);
                // Other lines for the same connections are dead (first match wins) or, above
                // ours, would shadow it: the wanted rule replaces them all.
                if let Some(first) = existing {
                    let mut i = file.records.len();
                    while i > first + 1 {
                        i -= 1;
                        if same(&file.records[i]) {
                            report.removed.push(file.records[i].text());
                            file.records.remove(i);
                        }
                    }
                }
                let new_line = |old: Option<&Rule>| match old.and_then(|o| o.comment.as_deref()) {
                    Some(c) => format!("{line}  {c}"),
                    None => line.clone(),
                };
                match existing {
                    Some(i) if well_placed(file, i, &edit.position, &ours) => {
                        let old = file.records[i].rule().cloned();
                        if !old.as_ref().is_some_and(|o| o.same_auth(rule)) {
                            let eol = eol_of(&file.records[i].raw);
                            let text = new_line(old.as_ref());
                            file.set_raw(i, format!("{text}{eol}"));
                            report.updated.push(text);
                        }
                    }
                    Some(i) => {
                        let old = file.records.remove(i);
                        let text = new_line(old.rule());
                        let at = insertion_index(file, &edit.position, &ours)?;
                        file.insert(at, &text);
                        report.moved.push(text);
                    }
                    None => {
                        let at = insertion_index(file, &edit.position, &ours)?;
                        file.insert(at, line);
                        report.added.push(line.clone());
                    }
                }
            }
        }
    }
    // After the rules: a new hostssl rule takes the place of the first plain one it blocks.
    if edit.block_plain && !block_first {
        block_plain(file, edit, &ours, &mut report);
    }

    warn_existing(file, edit.server_version, &mut report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rule for `all` databases and users.
    fn spec(
        conn_type: &str,
        address: Option<&str>,
        method: &str,
        options: &[(&str, &str)],
    ) -> RuleSpec {
        RuleSpec {
            conn_type: conn_type.into(),
            database: "all".into(),
            user: "all".into(),
            address: address.map(str::to_string),
            netmask: None,
            method: method.into(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn ssl_rule(addr: &str) -> RuleSpec {
        spec(
            "hostssl",
            Some(addr),
            "scram-sha-256",
            &[("clientcert", "verify-full")],
        )
    }

    fn edit(rules: Vec<RuleSpec>) -> HbaEdit {
        HbaEdit {
            rules,
            state: Want::Present,
            position: Position::BeforeFirstHost,
            block_plain: false,
            server_version: Some(15),
        }
    }

    fn run(text: &str, e: &HbaEdit) -> (String, HbaReport) {
        let mut f = HbaFile::parse(text);
        let r = apply(&mut f, e).unwrap();
        (f.render(), r)
    }

    #[test]
    fn a_crlf_file_that_lost_its_last_lf_stays_crlf() {
        let mut e = edit(vec![ssl_rule("10.0.0.0/8")]);
        e.position = Position::Bottom;
        let (t, _) = run("local all all peer\r", &e);
        let line = ssl_rule("10.0.0.0/8").line();
        assert_eq!(t, format!("local all all peer\r\n{line}\r\n"));
    }

    const DEBIAN: &str = "\
# Database administrative login by Unix domain socket
local   all             postgres                                peer

# TYPE  DATABASE        USER            ADDRESS                 METHOD

# \"local\" is for Unix domain socket connections only
local   all             all                                     peer
# IPv4 local connections:
host    all             all             127.0.0.1/32            scram-sha-256
# IPv6 local connections:
host    all             all             ::1/128                 scram-sha-256
# Allow replication connections from localhost, by a user with the
# replication privilege.
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
host    all             all             0.0.0.0/0               md5
";

    /// Found by the pg_hba fuzz target: a line break in a rule's field (an option value, a
    /// user...) was written as is, so `{map: "x\nhost all all 0.0.0.0/0 trust"}` added a
    /// trust rule of its own to pg_hba.conf. Such a rule is refused and the file not changed.
    #[test]
    fn line_breaks_in_a_rule_are_refused() {
        let injected = "x\nhost all all 0.0.0.0/0 trust";
        let mut with_option = ssl_rule("10.0.0.0/8");
        with_option.options.push(("map".into(), injected.into()));
        let mut with_user = ssl_rule("10.0.0.0/8");
        with_user.user = injected.into();
        let mut with_cr = ssl_rule("10.0.0.0/8");
        with_cr.method = "cert\r".into();
        let mut with_nul = ssl_rule("10.0.0.0/8");
        with_nul.database = "a\0b".into();
        for rule in [with_option, with_user, with_cr, with_nul] {
            let mut f = HbaFile::parse(DEBIAN);
            let err = apply(&mut f, &edit(vec![rule.clone()])).unwrap_err();
            assert!(err.contains("line break"), "{err}");
            assert_eq!(f.render(), DEBIAN);
        }
    }

    /// Found by the pg_hba fuzz target: two wanted rules for the same connections with
    /// different methods rewrote each other on every run (the file never settled). Such an
    /// edit is refused; the same rule given twice is fine.
    #[test]
    fn contradictory_rules_are_refused() {
        let a = ssl_rule("10.0.0.0/8");
        let mut b = a.clone();
        b.method = "reject".into();
        b.options.clear();
        let mut f = HbaFile::parse(DEBIAN);
        let err = apply(&mut f, &edit(vec![a.clone(), b])).unwrap_err();
        assert!(err.contains("same connections"), "{err}");
        assert_eq!(f.render(), DEBIAN);
        let (once, _) = run(DEBIAN, &edit(vec![a.clone(), a.clone()]));
        let (twice, r) = run(&once, &edit(vec![a.clone(), a]));
        assert_eq!(once, twice);
        assert!(!r.changed());
    }

    /// Found by the pg_hba fuzz target: with `block_plain` and a regex position matching `#`,
    /// the plain rules commented out after the insertion became new matches of the anchor, so
    /// the next run moved the rule again (and so on). Blocking now comes first for regex
    /// positions: the anchor is found in the file as it will be.
    #[test]
    fn block_plain_with_a_regex_position_settles() {
        let re = Regex::new("^#").unwrap();
        let mut e = edit(vec![ssl_rule("10.0.0.0/8")]);
        e.block_plain = true;
        e.position = Position::After(re);
        let (once, r) = run(DEBIAN, &e);
        assert_eq!(r.added.len(), 1);
        let (twice, r2) = run(&once, &e);
        assert!(!r2.changed(), "{r2:?}");
        assert_eq!(once, twice);
    }

    /// Found by the pg_hba fuzz target: with the wanted rule's connections on two lines
    /// already, each run moved or rewrote the first of them and left the other: the two swapped
    /// on every run, and the one left above could shadow ours with another method. The wanted
    /// rule now replaces all of them.
    #[test]
    fn duplicates_of_a_wanted_rule_are_merged_into_it() {
        let text = "host all all 0.0.0.0/0 md5\nlocal all all peer\nhost all all 0.0.0.0/0 trust\nlocal db all peer\n";
        let mut want = spec("host", Some("0.0.0.0/0"), "scram-sha-256", &[]);
        want.database = "all".into();
        let mut e = edit(vec![want]);
        e.position = Position::Bottom;
        let (once, r) = run(text, &e);
        assert_eq!(r.removed.len(), 1, "{r:?}");
        let f = HbaFile::parse(&once);
        let hosts: Vec<&Rule> = f.rules().filter(|r| r.conn_type == "host").collect();
        assert_eq!(hosts.len(), 1, "{once}");
        assert_eq!(hosts[0].method, "scram-sha-256");
        let (twice, r2) = run(&once, &e);
        assert!(!r2.changed(), "{r2:?}");
        assert_eq!(once, twice);
    }

    /// Found by the pg_hba fuzz target: a record that ends a continuation with an empty line
    /// (`...peer \\` then an empty line) was taken for an open continuation when a rule was
    /// added after it, and got one more line ending.
    #[test]
    fn a_closed_continuation_gets_no_extra_line() {
        let text = "local all all peer \\\n\n";
        let mut e = edit(vec![ssl_rule("10.0.0.0/8")]);
        e.position = Position::Bottom;
        let (once, _) = run(text, &e);
        assert!(
            once.starts_with("local all all peer \\\n\nhostssl"),
            "{once:?}"
        );
        let (twice, r) = run(&once, &e);
        assert!(!r.changed());
        assert_eq!(once, twice);
    }

    #[test]
    fn tokenizer_follows_postgres() {
        let (f, c) = tokenize("host  \"my db\",b\tall 10.0.0.0/8 md5 # hi");
        assert_eq!(f.len(), 5);
        assert_eq!(
            f[1],
            vec![
                Token {
                    text: "my db".into(),
                    quoted: true
                },
                Token {
                    text: "b".into(),
                    quoted: false
                }
            ]
        );
        assert_eq!(c, Some(35));
        let (f, _) = tokenize("a \"x\"\"y\" b, c d");
        assert_eq!(f[1][0].text, "x\"y");
        assert_eq!(f[2].len(), 2, "`b, c` is one field");
        let (f, _) = tokenize("a b ,c");
        assert_eq!(f.len(), 3, "`b ,c` is two fields");
        let (f, c) = tokenize("host all#x");
        assert_eq!(f[1][0].text, "all");
        assert_eq!(c, Some(8));
        let (f, _) = tokenize("\"\"");
        assert_eq!(f[0][0].text, "");
    }

    #[test]
    fn parses_records() {
        let f = HbaFile::parse(DEBIAN);
        let rules: Vec<_> = f.rules().collect();
        assert_eq!(rules.len(), 8);
        assert_eq!(
            rules[2].address,
            Some(Address::Net {
                ip: "127.0.0.1".parse().unwrap(),
                prefix: 32
            })
        );
        assert!(f.errors().is_empty());
        let f = HbaFile::parse(
            "host all all 10.1.2.3 255.255.0.0 md5\nhostssl all all db.example.com cert clientcert=verify-full # c\n\
             include_dir 'x'\ninclude_if_exists extra.conf\nbogus all all md5\nhost all all 10.0.0.1/33 md5\n\
             host all all samenet ldap ldapserver=x \"ldapprefix=cn=\" \n",
        );
        let r: Vec<_> = f.records.iter().map(|r| &r.kind).collect();
        assert!(
            matches!(r[0], RecordKind::Rule(x) if x.address == Some(Address::Net{ip: "10.1.0.0".parse().unwrap(), prefix: 16}))
        );
        assert!(
            matches!(r[1], RecordKind::Rule(x) if x.address == Some(Address::Host("db.example.com".into()))
            && x.option("clientcert") == Some("verify-full") && x.comment.as_deref() == Some("# c"))
        );
        assert!(matches!(r[2], RecordKind::Include{directive, ..} if directive == "include_dir"));
        assert!(matches!(r[3], RecordKind::Include{path, ..} if path == "extra.conf"));
        assert!(matches!(r[4], RecordKind::Invalid(_)));
        assert!(matches!(r[5], RecordKind::Invalid(_)));
        assert!(matches!(r[6], RecordKind::Rule(x) if x.option("ldapprefix") == Some("cn=")));
    }

    #[test]
    fn continuation_lines() {
        let text = "host all \\\r\n  all 10.0.0.0/8 \\\n md5\n# c \\\nhost all all ::1/128 md5\nlocal all all trust \\";
        let f = HbaFile::parse(text);
        assert_eq!(f.render(), text);
        assert_eq!(f.records.len(), 3);
        assert!(
            matches!(&f.records[0].kind, RecordKind::Rule(r) if r.method == "md5" && r.user[0].text == "all")
        );
        // A comment line ending with a backslash swallows the next line (as the server does).
        assert_eq!(f.records[1].kind, RecordKind::Comment);
        // A backslash on a last line without newline is a token (the record is invalid)...
        assert!(matches!(&f.records[2].kind, RecordKind::Invalid(_)));
        // ... with a newline, it is a continuation into nothing.
        let f = HbaFile::parse("local all all trust \\\n");
        assert!(matches!(&f.records[0].kind, RecordKind::Rule(_)));
        let mut e = edit(vec![ssl_rule("10.0.0.0/8")]);
        e.position = Position::Bottom;
        let (t, _) = run("local all all trust \\\n", &e);
        let f = HbaFile::parse(&t);
        assert_eq!(f.rules().count(), 2, "{t:?}");
        // Without the newline it stays a (invalid) token, not a continuation of the new line.
        let (t, _) = run("host all all 0.0.0.0/0 md5 \\", &e);
        let f = HbaFile::parse(&t);
        assert!(
            matches!(&f.records[0].kind, RecordKind::Invalid(_)),
            "{t:?}"
        );
        assert_eq!(f.rules().count(), 1, "{t:?}");
    }

    #[test]
    fn inserts_before_the_first_host_rule_above_its_comment() {
        let e = edit(vec![ssl_rule("0.0.0.0/0"), ssl_rule("::/0")]);
        let (t, r) = run(DEBIAN, &e);
        assert_eq!(r.added.len(), 2);
        let expected = DEBIAN.replace(
            "# IPv4 local connections:\n",
            "hostssl all             all             0.0.0.0/0               scram-sha-256 clientcert=verify-full\n\
             hostssl all             all             ::/0                    scram-sha-256 clientcert=verify-full\n\
             # IPv4 local connections:\n",
        );
        assert_eq!(t, expected);
        // Idempotent.
        let (t2, r2) = run(&t, &e);
        assert_eq!(t2, t);
        assert!(!r2.changed(), "{r2:?}");
    }

    #[test]
    fn positions() {
        let text = "# head\n\nlocal all all peer\nhost all all 127.0.0.1/32 md5\n# tail\n";
        let mut e = edit(vec![ssl_rule("10.0.0.0/8")]);
        let line = ssl_rule("10.0.0.0/8").line();
        e.position = Position::Top;
        let (t, _) = run(text, &e);
        assert_eq!(
            t,
            format!(
                "# head\n\n{line}\nlocal all all peer\nhost all all 127.0.0.1/32 md5\n# tail\n"
            )
        );
        e.position = Position::Bottom;
        let (t, _) = run(text, &e);
        assert_eq!(t, format!("{text}{line}\n"));
        e.position = Position::After(Regex::new("^local").unwrap());
        let (t, _) = run(text, &e);
        assert_eq!(
            t,
            format!(
                "# head\n\nlocal all all peer\n{line}\nhost all all 127.0.0.1/32 md5\n# tail\n"
            )
        );
        e.position = Position::Before(Regex::new("^# tail").unwrap());
        let (t, _) = run(text, &e);
        assert_eq!(
            t,
            format!(
                "# head\n\nlocal all all peer\nhost all all 127.0.0.1/32 md5\n{line}\n# tail\n"
            )
        );
        e.position = Position::Before(Regex::new("nomatch").unwrap());
        assert!(apply(&mut HbaFile::parse(text), &e)
            .unwrap_err()
            .contains("matches"));
        // No host rule at all: appended; no newline at the end: one is added.
        let (t, _) = run("local all all peer", &edit(vec![ssl_rule("10.0.0.0/8")]));
        assert_eq!(t, format!("local all all peer\n{line}\n"));
    }

    #[test]
    fn after_keeps_batch_order() {
        let text = "local all all peer\nhost all all 127.0.0.1/32 md5\n";
        let mut e = edit(vec![ssl_rule("10.0.0.0/8"), ssl_rule("fd00::/8")]);
        e.position = Position::After(Regex::new("^local").unwrap());
        let (t, _) = run(text, &e);
        let lines: Vec<_> = t.lines().collect();
        assert!(
            lines[1].contains("10.0.0.0/8") && lines[2].contains("fd00::/8"),
            "{t}"
        );
        let (t2, r) = run(&t, &e);
        assert_eq!(t2, t);
        assert!(!r.changed());
    }

    #[test]
    fn existing_rule_updated_in_place_or_moved() {
        // Same identity, other method: updated in place, trailing comment kept.
        let text = "local all all peer\nhostssl all all 10.0.0.0/8 md5 # keep\nhost all all 0.0.0.0/0 md5\n";
        let e = edit(vec![ssl_rule("10.0.0.0/8")]);
        let (t, r) = run(text, &e);
        assert_eq!(r.updated.len(), 1);
        assert!(
            t.lines()
                .nth(1)
                .unwrap()
                .ends_with("clientcert=verify-full  # keep"),
            "{t}"
        );
        // Identity ignores netmask spelling and host bits.
        let text2 = "hostssl all all 10.0.0.0 255.0.0.0 scram-sha-256 clientcert=verify-full\nhost all all 0.0.0.0/0 md5\n";
        let (t, r) = run(text2, &e);
        assert!(!r.changed());
        assert_eq!(t, text2);
        // After a host rule that would match first: moved before it.
        let text3 = "host all all 0.0.0.0/0 md5\nhostssl all all 10.0.0.0/8 scram-sha-256 clientcert=verify-full\n";
        let (t, r) = run(text3, &e);
        assert_eq!(r.moved.len(), 1);
        assert!(t.starts_with("hostssl"), "{t}");
        assert_eq!(t.lines().count(), 2);
    }

    #[test]
    fn absent_removes_all_matching() {
        let text =
            "local all all peer\nhostssl all all 10.0.0.0/8 md5\nhostssl all all 10.0.0.0/8 cert\n";
        let mut e = edit(vec![ssl_rule("10.0.0.0/8")]);
        e.state = Want::Absent;
        let (t, r) = run(text, &e);
        assert_eq!(t, "local all all peer\n");
        assert_eq!(r.removed.len(), 2);
        let (_, r) = run(&t, &e);
        assert!(!r.changed());
    }

    #[test]
    fn block_plain_comments_out_every_plain_tcp_rule() {
        let text = "local all all peer\nhost all all 127.0.0.1/32 md5\nhost all all ::1/128 md5\n\
                    host all all 0.0.0.0/0 md5\nhostnossl all all 10.0.0.0/8 md5\nhost all bad 0.0.0.0/0 reject\n\
                    hostssl all all 0.0.0.0/0 md5\nhost all all samenet md5\nhost all all localhost md5\n";
        let mut e = edit(vec![]);
        e.block_plain = true;
        let (t, r) = run(text, &e);
        assert_eq!(
            t,
            "local all all peer\n#host all all 127.0.0.1/32 md5\n#host all all ::1/128 md5\n\
             #host all all 0.0.0.0/0 md5\n#hostnossl all all 10.0.0.0/8 md5\nhost all bad 0.0.0.0/0 reject\n\
             hostssl all all 0.0.0.0/0 md5\n#host all all samenet md5\n#host all all localhost md5\n"
        );
        assert_eq!(r.blocked.len(), 6);
        let (_, r) = run(&t, &e);
        assert!(!r.changed());
        // Continuation records are commented line by line.
        let (t, _) = run("host all \\\nall 0.0.0.0/0 md5\n", &e);
        assert_eq!(t, "#host all \\\n#all 0.0.0.0/0 md5\n");
    }

    #[test]
    fn clientcert_by_version() {
        let mk = |t: &str, method: &str, cc: &str| {
            spec(t, Some("10.0.0.0/8"), method, &[("clientcert", cc)])
        };
        let cc = |s: &RuleSpec| {
            s.options
                .iter()
                .find(|(k, _)| k == "clientcert")
                .map(|(_, v)| v.clone())
        };
        // 12/13: 1 -> verify-ca, 0/no-verify -> dropped.
        assert_eq!(
            cc(&normalize(&mk("hostssl", "md5", "1"), Some(13)).unwrap()).as_deref(),
            Some("verify-ca")
        );
        assert_eq!(
            cc(&normalize(&mk("hostssl", "md5", "1"), Some(120005)).unwrap()).as_deref(),
            Some("verify-ca")
        );
        assert_eq!(
            cc(&normalize(&mk("hostssl", "md5", "0"), Some(13)).unwrap()),
            None
        );
        assert_eq!(
            cc(&normalize(&mk("hostssl", "md5", "no-verify"), Some(12)).unwrap()),
            None
        );
        // 14+: refused with a clear error.
        for v in ["1", "0", "no-verify"] {
            let e = normalize(&mk("hostssl", "md5", v), Some(150004)).unwrap_err();
            assert!(e.contains("removed in PostgreSQL 14"), "{e}");
            assert!(normalize(&mk("hostssl", "md5", v), None)
                .unwrap_err()
                .contains("server_version"));
        }
        assert!(normalize(&mk("hostssl", "md5", "verify-full"), Some(15)).is_ok());
        assert!(normalize(&mk("hostssl", "md5", "verify-ca"), None).is_ok());
        assert!(normalize(&mk("hostssl", "md5", "bogus"), Some(15)).is_err());
        // Only on hostssl.
        let e = normalize(&mk("host", "md5", "verify-full"), Some(15)).unwrap_err();
        assert!(e.contains("hostssl"), "{e}");
        // cert: only verify-full.
        let e = normalize(&mk("hostssl", "cert", "verify-ca"), Some(15)).unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
        assert!(normalize(&mk("hostssl", "cert", "1"), Some(13)).is_err());
        assert!(normalize(&mk("hostssl", "cert", "0"), Some(13)).is_err());
        assert!(normalize(&mk("hostssl", "cert", "verify-full"), Some(15)).is_ok());
        let e = normalize(&spec("host", Some("::/0"), "cert", &[]), Some(15)).unwrap_err();
        assert!(e.contains("hostssl"), "{e}");
        // Old servers.
        assert_eq!(
            cc(&normalize(&mk("hostssl", "md5", "verify-ca"), Some(11)).unwrap()).as_deref(),
            Some("1")
        );
        assert!(normalize(&mk("hostssl", "md5", "verify-full"), Some(11)).is_err());
        // An edit with a refused rule fails whole.
        let mut e = edit(vec![mk("hostssl", "md5", "1")]);
        assert!(apply(&mut HbaFile::parse(DEBIAN), &e).is_err());
        e.server_version = Some(13);
        let (t, _) = run(DEBIAN, &e);
        assert!(t.contains("clientcert=verify-ca"));
    }

    #[test]
    fn rule_spec_validation() {
        assert!(normalize(&spec("local", Some("x"), "peer", &[]), None).is_err());
        assert!(normalize(&spec("host", None, "md5", &[]), None).is_err());
        assert!(normalize(&spec("hots", None, "md5", &[]), None).is_err());
        assert!(normalize(&spec("local", None, "magic", &[]), None).is_err());
        let s = RuleSpec {
            conn_type: "host".into(),
            database: "app,\"my db\"".into(),
            user: "u1,u2".into(),
            address: Some("10.0.0.1".into()),
            netmask: Some("255.255.255.255".into()),
            method: "md5".into(),
            options: vec![("a".into(), "b".into()), ("c".into(), "d e".into())],
        };
        assert_eq!(
            s.line(),
            "host    app,\"my db\"     u1,u2           10.0.0.1 255.255.255.255 md5 a=b \"c=d e\""
        );
        let rec = parse_record(&s.line());
        let RecordKind::Rule(r) = rec.kind else {
            panic!("{:?}", rec.kind)
        };
        assert_eq!(r.database[1].text, "my db");
        assert_eq!(
            r.options,
            vec![("a".into(), "b".into()), ("c".into(), "d e".into())]
        );
        assert_eq!(
            spec("local", None, "peer", &[]).line(),
            "local   all             all                                     peer"
        );
    }

    #[test]
    fn warns_about_existing_lines() {
        let (_, r) = run("hostssl all all 0.0.0.0/0 md5 clientcert=1\nhost all all ::/0 md5 clientcert=verify-ca\n", &edit(vec![]));
        assert_eq!(r.warnings.len(), 2, "{r:?}");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "[ \t]*",
                "[ \t]*#[^\n]*",
                "(local|host|hostssl|hostnossl|include)[ \t]+[a-z,\" ]{1,10}[ \t]+(all|[a-z]{1,5})[ \t]+([0-9./:a-f]{1,18})?[ \t]+(md5|cert|peer|trust)( [a-z]{1,5}=[a-z0-9\"-]{0,8})*[ \t]*(#[^\n]{0,8})?[ \t]*\\\\?",
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
                prop_assert_eq!(HbaFile::parse(&text).render(), text);
            }

            #[test]
            fn insert_is_idempotent(text in file(), before in any::<bool>()) {
                let r = RuleSpec {
                    conn_type: "hostssl".into(), database: "all".into(), user: "all".into(),
                    address: Some("10.9.0.0/16".into()), netmask: None,
                    method: "scram-sha-256".into(),
                    options: vec![("clientcert".into(), "verify-full".into())],
                };
                let e = HbaEdit {
                    rules: vec![r],
                    state: Want::Present,
                    position: if before { Position::BeforeFirstHost } else { Position::Bottom },
                    block_plain: true,
                    server_version: Some(15),
                };
                let mut f = HbaFile::parse(&text);
                apply(&mut f, &e).unwrap();
                let once = f.render();
                let mut g = HbaFile::parse(&once);
                let rep = apply(&mut g, &e).unwrap();
                prop_assert!(!rep.changed(), "{:?}\n{}", rep, once);
                prop_assert_eq!(g.render(), once.clone());
                prop_assert_eq!(HbaFile::parse(&once).rules().filter(|r| r.conn_type == "hostssl" && r.address == Some(Address::Net{ip: "10.9.0.0".parse().unwrap(), prefix: 16})).count(), 1);
            }
        }
    }
}
