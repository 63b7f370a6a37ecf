//! Host patterns (`hosts:` of a play, `--limit`), evaluated as Ansible's `InventoryManager`:
//! terms separated by `,` (or `:`), each a host name, a group name, an fnmatch glob (`db*`,
//! `db?`, `[ab]*`), or a regex `~...` (matched from the start of the name), optionally with a
//! subscript (`web[0]`, `web[1:3]`, `web[2:]`, `web[-1]`). Terms starting with `&` intersect and
//! `!` exclude; plain terms are unioned first, in order, then intersections, then exclusions.
//! The result keeps the order in which terms matched hosts, without duplicates.
use regex::Regex;

use super::{Inventory, LOCALHOST_NAMES};
use crate::error::{Error, Result};

impl Inventory {
    /// The hosts a pattern selects, in Ansible's order, without duplicates. A pattern matching
    /// nothing gives an empty list (the caller warns "No hosts matched"). `localhost` (or
    /// `127.0.0.1`, `::1`) not in the inventory selects the implicit localhost, named `localhost`.
    pub fn select(&self, pattern: &str) -> Result<Vec<String>> {
        let terms = order_terms(split_pattern(pattern));
        let mut hosts: Vec<String> = Vec::new();
        for t in &terms {
            if self.host(t).is_some() {
                hosts.push(t.clone());
                continue;
            }
            let matched = self.match_term(t)?;
            if t.starts_with('!') {
                let matched: std::collections::HashSet<String> = matched.into_iter().collect();
                hosts.retain(|h| !matched.contains(h));
            } else if t.starts_with('&') {
                let matched: std::collections::HashSet<String> = matched.into_iter().collect();
                hosts.retain(|h| matched.contains(h));
            } else {
                let present: std::collections::HashSet<&String> = hosts.iter().collect();
                let new: Vec<String> = matched
                    .into_iter()
                    .filter(|h| !present.contains(h))
                    .collect();
                hosts.extend(new);
            }
        }
        let mut seen = std::collections::HashSet::new();
        hosts.retain(|h| seen.insert(h.clone()));
        Ok(hosts)
    }

    /// `select(pattern)` restricted to the hosts `limit` selects (`--limit`), keeping the
    /// pattern's order.
    pub fn select_limited(&self, pattern: &str, limit: Option<&str>) -> Result<Vec<String>> {
        let hosts = self.select(pattern)?;
        match limit {
            None => Ok(hosts),
            Some(l) => {
                let allowed: std::collections::HashSet<String> =
                    self.select(l)?.into_iter().collect();
                Ok(hosts.into_iter().filter(|h| allowed.contains(h)).collect())
            }
        }
    }

    /// Ansible's `_match_one_pattern`: one term, without its `&`/`!` prefix.
    fn match_term(&self, term: &str) -> Result<Vec<String>> {
        let term = term.strip_prefix(['&', '!']).unwrap_or(term);
        let (expr, subscript) = split_subscript(term);
        let hosts = self.enumerate(expr)?;
        apply_subscript(hosts, subscript).ok_or_else(|| {
            Error::invalid_noloc(format!("no hosts matched the subscripted pattern '{term}'"))
        })
    }

    /// Ansible's `_enumerate_matches`: hosts of the groups the expression names, plus hosts it
    /// names when no group matched or when it is a glob or a regex.
    fn enumerate(&self, expr: &str) -> Result<Vec<String>> {
        if expr.is_empty() {
            return Ok(Vec::new());
        }
        let re = compile(expr)?;
        let mut results: Vec<String> = Vec::new();
        let mut group_matched = false;
        for (g, hosts) in &self.group_hosts {
            if re.is_match(g) {
                group_matched = true;
                results.extend(hosts.iter().cloned());
            }
        }
        let special = expr.starts_with('~') || expr.contains(['.', '?', '*', '[']);
        if !group_matched || special {
            results.extend(
                self.hosts
                    .iter()
                    .filter(|h| re.is_match(&h.name))
                    .map(|h| h.name.clone()),
            );
        }
        if results.is_empty() && LOCALHOST_NAMES.contains(&expr) {
            results.push(self.localhost.name.clone());
        }
        Ok(results)
    }
}

/// Ansible's `split_host_pattern`: split on `,` if there is one, else on `:` outside brackets,
/// unless the whole pattern is an address (`::1`, `host:22`).
pub(super) fn split_pattern(pattern: &str) -> Vec<String> {
    let parts: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(str::to_string).collect()
    } else if is_address(pattern) {
        vec![pattern.to_string()]
    } else {
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut in_bracket = false;
        for c in pattern.chars() {
            match c {
                '[' => {
                    in_bracket = true;
                    cur.push(c)
                }
                ']' => {
                    in_bracket = false;
                    cur.push(c)
                }
                ':' if !in_bracket => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        parts
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn is_address(p: &str) -> bool {
    let v6 = p.matches(':').count() >= 2
        && p.chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
    let host_port = p.split_once(':').is_some_and(|(h, port)| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
            && !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
    });
    v6 || host_port
}

/// Ansible's `order_patterns`: unions, then `&` intersections, then `!` exclusions; with no
/// union term the pattern starts from `all`.
fn order_terms(terms: Vec<String>) -> Vec<String> {
    let (mut plain, mut and, mut not) = (Vec::new(), Vec::new(), Vec::new());
    for t in terms {
        if t.starts_with('!') {
            not.push(t);
        } else if t.starts_with('&') {
            and.push(t);
        } else {
            plain.push(t);
        }
    }
    if plain.is_empty() {
        plain.push("all".into());
    }
    plain.into_iter().chain(and).chain(not).collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Subscript {
    Index(i64),
    Range(usize, Option<usize>),
}

/// `name[3]`, `name[-1]`, `name[1:3]`, `name[2:]` (and the old `name[1-3]`); not for regexes.
fn split_subscript(term: &str) -> (&str, Option<Subscript>) {
    if term.starts_with('~') {
        return (term, None);
    }
    let Some(body) = term.strip_suffix(']') else {
        return (term, None);
    };
    let Some(open) = body.rfind('[') else {
        return (term, None);
    };
    let (expr, inner) = (&body[..open], &body[open + 1..]);
    if expr.is_empty() {
        return (term, None);
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let single = inner.strip_prefix('-').unwrap_or(inner);
    if digits(single) {
        if let Ok(i) = inner.parse() {
            return (expr, Some(Subscript::Index(i)));
        }
    }
    if let Some(sep) = inner.find([':', '-']) {
        let (start, end) = (&inner[..sep], &inner[sep + 1..]);
        if digits(start) && (end.is_empty() || digits(end)) {
            if let Ok(s) = start.parse() {
                let e = if end.is_empty() {
                    None
                } else {
                    end.parse().ok()
                };
                return (expr, Some(Subscript::Range(s, e)));
            }
        }
    }
    (term, None)
}

/// Ansible's `_apply_subscript`; `None` when an index is out of range.
fn apply_subscript(hosts: Vec<String>, sub: Option<Subscript>) -> Option<Vec<String>> {
    let Some(sub) = sub else {
        return Some(hosts);
    };
    if hosts.is_empty() {
        return Some(hosts);
    }
    let len = hosts.len();
    let index = |i: i64| -> Option<Vec<String>> {
        let i = if i < 0 { len as i64 + i } else { i };
        usize::try_from(i)
            .ok()
            .and_then(|i| hosts.get(i))
            .map(|h| vec![h.clone()])
    };
    match sub {
        Subscript::Index(i) => index(i),
        // `[x:0]` is `[x]` in Ansible (a falsy end), `[x:]` runs to the last host.
        Subscript::Range(s, Some(0)) => index(s as i64),
        Subscript::Range(s, end) => {
            let end = end.map_or(len, |e| (e + 1).min(len));
            Some(
                hosts
                    .get(s.min(len)..end.max(s.min(len)))
                    .unwrap_or_default()
                    .to_vec(),
            )
        }
    }
}

/// A term as a regex: `~re` matched from the start of the name (Python's `re.match`), anything
/// else as an fnmatch glob over the whole name.
fn compile(expr: &str) -> Result<Regex> {
    let source = match expr.strip_prefix('~') {
        Some(re) => format!("^(?:{re})"),
        None => format!("^(?s:{})\\z", fnmatch_to_regex(expr)),
    };
    Regex::new(&source)
        .map_err(|e| Error::invalid_noloc(format!("invalid host pattern `{expr}`: {e}")))
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`; everything else literal.
fn fnmatch_to_regex(pat: &str) -> String {
    let chars: Vec<char> = pat.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => {
                if !out.ends_with(".*") {
                    out.push_str(".*");
                }
            }
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                } else {
                    let stuff = &chars[i..j];
                    i = j + 1;
                    out.push_str(&char_class(stuff));
                }
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out
}

fn char_class(stuff: &[char]) -> String {
    let (negate, body) = match stuff.first() {
        Some('!') => (true, &stuff[1..]),
        _ => (false, stuff),
    };
    let esc = |c: char| regex::escape(&c.to_string());
    let mut items = String::new();
    let mut k = 0;
    while k < body.len() {
        if k + 2 < body.len() && body[k + 1] == '-' {
            let (a, b) = (body[k], body[k + 2]);
            if a <= b {
                items.push_str(&format!("{}-{}", esc(a), esc(b)));
            }
            k += 3;
        } else {
            items.push_str(&esc(body[k]));
            k += 1;
        }
    }
    match (negate, items.is_empty()) {
        (false, true) => "[^\\s\\S]".into(), // matches nothing, as Python's empty set
        (true, true) => ".".into(),
        (false, false) => format!("[{items}]"),
        (true, false) => format!("[^{items}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_on_commas_or_colons() {
        assert_eq!(split_pattern("db1,db3"), ["db1", "db3"]);
        assert_eq!(split_pattern("all:!db2"), ["all", "!db2"]);
        assert_eq!(split_pattern("postgres:&primary"), ["postgres", "&primary"]);
        assert_eq!(split_pattern("web[1:3]:db"), ["web[1:3]", "db"]);
        assert_eq!(split_pattern(" a , b ,"), ["a", "b"]);
        assert_eq!(split_pattern("::1"), ["::1"]);
    }

    #[test]
    fn order_puts_unions_first() {
        let t = order_terms(split_pattern("!a:&b:c:d"));
        assert_eq!(t, ["c", "d", "&b", "!a"]);
        assert_eq!(order_terms(split_pattern("!a")), ["all", "!a"]);
    }

    #[test]
    fn subscripts() {
        assert_eq!(split_subscript("db[1]"), ("db", Some(Subscript::Index(1))));
        assert_eq!(
            split_subscript("db[-1]"),
            ("db", Some(Subscript::Index(-1)))
        );
        assert_eq!(
            split_subscript("db[1:3]"),
            ("db", Some(Subscript::Range(1, Some(3))))
        );
        assert_eq!(
            split_subscript("db[2:]"),
            ("db", Some(Subscript::Range(2, None)))
        );
        assert_eq!(split_subscript("db[ab]"), ("db[ab]", None));
        assert_eq!(split_subscript("~db[1]"), ("~db[1]", None));
        let hosts: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let sub = |s| apply_subscript(hosts.clone(), Some(s));
        assert_eq!(sub(Subscript::Index(-1)).unwrap(), ["c"]);
        assert_eq!(sub(Subscript::Range(1, None)).unwrap(), ["b", "c"]);
        assert_eq!(sub(Subscript::Range(0, Some(1))).unwrap(), ["a", "b"]);
        assert_eq!(sub(Subscript::Range(0, Some(9))).unwrap(), ["a", "b", "c"]);
        assert_eq!(sub(Subscript::Range(2, Some(0))).unwrap(), ["c"]);
        assert!(sub(Subscript::Index(3)).is_none());
    }

    #[test]
    fn fnmatch_like_python() {
        let m = |p: &str, s: &str| compile(p).unwrap().is_match(s);
        assert!(m("db*", "db1"));
        assert!(!m("db*", "xdb1"));
        assert!(m("db?", "db1"));
        assert!(!m("db?", "db10"));
        assert!(m("db[12]x", "db2x"));
        assert!(!m("db[!12]x", "db2x"));
        assert!(m("db[a-c]", "dbb"));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
        assert!(m("[", "["));
        assert!(m("~db[23]", "db3-extra"));
        assert!(!m("~db[23]", "xdb3"));
        assert!(compile("~(").is_err());
    }
}
