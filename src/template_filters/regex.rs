//! Python `re` on Rust's regex: pattern translation (`\Z`, inline flags), replacement strings
//! (`\1`, `\g<1>`, `\g<name>`), and the regex_* filters. Lookarounds and backreferences inside
//! a pattern are not supported by the engine: they are reported as errors, never mis-matched.
use regex::{Regex, RegexBuilder};
use serde_json::Value;
use tera::Result;

use super::args::{err, want_str, Bound};
use super::pystr;

/// Compile a Python pattern with Ansible's `ignorecase`/`multiline` flags.
pub fn compile(pat: &str, ignorecase: bool, multiline: bool) -> std::result::Result<Regex, String> {
    let mut out = String::with_capacity(pat.len());
    let mut chars = pat.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str(r"\z"),
                Some(d) if d.is_ascii_digit() && d != '0' => {
                    return Err(format!("backreference \\{d} in a pattern is not supported"))
                }
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            }
            continue;
        }
        out.push(c);
    }
    if out.contains("(?=") || out.contains("(?!") || out.contains("(?<=") || out.contains("(?<!") {
        return Err("lookaround assertions are not supported".into());
    }
    RegexBuilder::new(&out)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| e.to_string())
}

/// Python's replacement template to the regex crate's: `\1`/`\g<1>`/`\g<name>` -> `${..}`,
/// `\n`/`\t`/`\\` unescaped, `$` escaped.
pub fn replacement(rep: &str) -> String {
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        if n.len() == 2 {
                            break;
                        }
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('r') => {
                    chars.next();
                    out.push('\r');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => pystr::str(other),
    }
}

fn re_of(b: &Bound, pat: &str, ic: bool, ml: bool) -> Result<Regex> {
    compile(pat, ic, ml).map_err(|e| err(b.name, e))
}

/// `regex_replace(pattern='', replacement='', ignorecase=False, multiline=False, count=0,
/// mandatory_count=0)`.
pub fn regex_replace(v: &Value, b: &Bound) -> Result<Value> {
    let s = text(v);
    let re = re_of(b, &b.str_or(0, "")?, b.flag(2, false), b.flag(3, false))?;
    let rep = replacement(&b.str_or(1, "")?);
    let count = b.int_or(4, 0)?.max(0) as usize;
    let mandatory = b.int_or(5, 0)?.max(0) as usize;
    let found = re.find_iter(&s).count();
    if mandatory > 0 && found < mandatory {
        return Err(err(
            b.name,
            format!(
                "'{}' should match {mandatory} times, but matches {found} times",
                re.as_str()
            ),
        ));
    }
    Ok(Value::String(
        re.replacen(&s, count, rep.as_str()).into_owned(),
    ))
}

/// `regex_search(regex, *groups, ignorecase=False, multiline=False)`: the match, the listed
/// groups (`'\\1'`, `'\\g<name>'`), or None.
pub fn regex_search(v: &Value, b: &Bound) -> Result<Value> {
    let s = text(v);
    let re = re_of(
        b,
        &b.str(0)?,
        b.kw_flag("ignorecase", false),
        b.kw_flag("multiline", false),
    )?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::Null);
    };
    if b.extra.is_empty() {
        return Ok(Value::String(
            caps.get(0).map_or("", |m| m.as_str()).to_string(),
        ));
    }
    let mut outv = Vec::new();
    for g in &b.extra {
        let g = want_str(b.name, g)?;
        let m = if let Some(n) = g.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
            match n.parse::<usize>() {
                Ok(i) => caps.get(i),
                Err(_) => caps.name(n),
            }
        } else if let Some(n) = g.strip_prefix('\\').and_then(|n| n.parse::<usize>().ok()) {
            caps.get(n)
        } else {
            return Err(err(
                b.name,
                format!("Unknown argument {}", pystr::repr_str(g)),
            ));
        };
        outv.push(m.map_or(Value::Null, |m| Value::String(m.as_str().to_string())));
    }
    Ok(Value::Array(outv))
}

/// `regex_findall(regex, multiline=False, ignorecase=False)`: Python's `re.findall`.
pub fn regex_findall(v: &Value, b: &Bound) -> Result<Value> {
    let s = text(v);
    let re = re_of(b, &b.str(0)?, b.flag(2, false), b.flag(1, false))?;
    let groups = re.captures_len() - 1;
    let g = |m: Option<regex::Match>| Value::String(m.map_or("", |m| m.as_str()).to_string());
    Ok(Value::Array(
        re.captures_iter(&s)
            .map(|c| match groups {
                0 => g(c.get(0)),
                1 => g(c.get(1)),
                n => Value::Array((1..=n).map(|i| g(c.get(i))).collect()),
            })
            .collect(),
    ))
}

/// Python's `re.escape` (3.7+), or POSIX basic escaping.
pub fn regex_escape(v: &Value, b: &Bound) -> Result<Value> {
    let s = text(v);
    let special: &str = match b.str_or(0, "python")?.as_str() {
        "python" => "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}",
        "posix_basic" => "[]$^.*\\",
        other => {
            return Err(err(
                b.name,
                format!("Regex type ({other}) not yet implemented"),
            ))
        }
    };
    let mut out = String::new();
    for c in s.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(Value::String(out))
}

/// The `match`/`search`/`regex` tests.
pub fn test(
    value: &Value,
    pat: &str,
    ic: bool,
    ml: bool,
    anchored: bool,
) -> std::result::Result<bool, String> {
    let s = match value {
        Value::String(s) => s.clone(),
        other => pystr::str(other),
    };
    let re = compile(pat, ic, ml)?;
    Ok(match re.find(&s) {
        None => false,
        Some(m) if !anchored => {
            let _ = m;
            true
        }
        Some(_) => compile(&format!("\\A(?:{pat})"), ic, ml)?.is_match(&s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_replacements() {
        assert_eq!(replacement(r"a\1b$"), "a${1}b$$");
        assert_eq!(replacement(r"\g<1>-\g<name>\n"), "${1}-${name}\n");
        let re = compile(r"(?P<v>\d+)\.(\d+)\Z", false, false).unwrap();
        assert_eq!(
            re.replace_all("ver 15.4", replacement(r"\g<v>_\2").as_str()),
            "ver 15_4"
        );
        assert!(compile(r"a(?=b)", false, false).is_err());
    }
}
