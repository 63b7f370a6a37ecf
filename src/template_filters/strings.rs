//! String filters as Jinja2 3.1 and ansible-core 2.19 define them.
use serde_json::Value;
use tera::Result;

use super::args::{err, want_str, Bound};
use super::pystr;
use super::pyval;

fn s(v: &Value) -> String {
    pystr::str(v)
}
fn out(s: String) -> Result<Value> {
    Ok(Value::String(s))
}

pub fn lower(v: &Value, _: &Bound) -> Result<Value> {
    out(s(v).to_lowercase())
}
pub fn upper(v: &Value, _: &Bound) -> Result<Value> {
    out(s(v).to_uppercase())
}
pub fn string(v: &Value, _: &Bound) -> Result<Value> {
    out(s(v))
}

/// Python's `str.capitalize()`: first character upper, the rest lower.
pub fn capitalize(v: &Value, _: &Bound) -> Result<Value> {
    let t = s(v);
    let mut c = t.chars();
    out(match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.as_str().to_lowercase().chars())
            .collect(),
        None => String::new(),
    })
}

/// Jinja2's `title`: each word (split on spaces, `-`, brackets) capitalized.
pub fn title(v: &Value, _: &Bound) -> Result<Value> {
    let t = s(v);
    let mut r = String::with_capacity(t.len());
    let mut start = true;
    for c in t.chars() {
        if start {
            r.extend(c.to_uppercase());
        } else {
            r.extend(c.to_lowercase());
        }
        start = c.is_whitespace() || "-([{<".contains(c);
    }
    out(r)
}

pub fn center(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    let w = b.int_or(0, 80)? as usize;
    let n = t.chars().count();
    if w <= n {
        return out(t);
    }
    // Python's str.center puts the odd space on the right unless the width is odd.
    let pad = w - n;
    let left = pad / 2 + (pad & w & 1);
    out(format!(
        "{}{}{}",
        " ".repeat(left),
        t,
        " ".repeat(pad - left)
    ))
}

pub fn trim(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    out(match b.get(0) {
        Some(Value::String(chars)) => t.trim_matches(|c| chars.contains(c)).to_string(),
        _ => t.trim().to_string(),
    })
}

pub fn replace(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    let (old, new) = (b.str(0)?, b.str(1)?);
    out(match b.opt_int(2)? {
        Some(n) if n >= 0 => t.replacen(&old, &new, n as usize),
        _ => t.replace(&old, &new),
    })
}

/// Jinja2's `truncate(length=255, killwords=False, end='...', leeway=5)`.
pub fn truncate(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    let length = b.int_or(0, 255)? as usize;
    let killwords = b.flag(1, false);
    let end = b.str_or(2, "...")?;
    let leeway = b.int_or(3, 5)? as usize;
    if length < end.chars().count() {
        return Err(err(
            b.name,
            format!("expected length >= {}, got {length}", end.chars().count()),
        ));
    }
    let chars: Vec<char> = t.chars().collect();
    if chars.len() <= length + leeway {
        return out(t);
    }
    let keep = length.saturating_sub(end.chars().count());
    let head: String = chars[..keep.min(chars.len())].iter().collect();
    if killwords {
        return out(head + &end);
    }
    let cut = match head.rfind(' ') {
        Some(i) => &head[..i],
        None => head.as_str(),
    };
    out(format!("{cut}{end}"))
}

pub fn wordcount(v: &Value, _: &Bound) -> Result<Value> {
    let t = s(v);
    let n = t
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .count();
    Ok(pyval::int_value(n as i64))
}

/// Jinja2's `indent(width=4, first=False, blank=False)`; width may be a string.
pub fn indent(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    let pad = match b.get(0) {
        Some(Value::String(p)) => p.clone(),
        _ => " ".repeat(b.int_or(0, 4)?.max(0) as usize),
    };
    let first = b.flag(1, false);
    let blank = b.flag(2, false);
    let mut lines: Vec<String> = Vec::new();
    let body: Vec<&str> = t.split('\n').collect();
    for (i, line) in body.iter().enumerate() {
        let indent_it = (i > 0 || first) && (blank || !line.is_empty());
        lines.push(if indent_it {
            format!("{pad}{line}")
        } else {
            (*line).to_string()
        });
    }
    out(lines.join("\n"))
}

/// Jinja2's `striptags`: tags removed, whitespace collapsed.
pub fn striptags(v: &Value, _: &Bound) -> Result<Value> {
    let t = s(v);
    let mut r = String::new();
    let mut in_tag = false;
    for c in t.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                r.push(' ');
            }
            c if !in_tag => r.push(c),
            _ => {}
        }
    }
    out(r.split_whitespace().collect::<Vec<_>>().join(" "))
}

pub fn escape(v: &Value, _: &Bound) -> Result<Value> {
    let mut r = String::new();
    for c in s(v).chars() {
        match c {
            '&' => r.push_str("&amp;"),
            '<' => r.push_str("&lt;"),
            '>' => r.push_str("&gt;"),
            '"' => r.push_str("&#34;"),
            '\'' => r.push_str("&#39;"),
            c => r.push(c),
        }
    }
    out(r)
}

pub fn safe(v: &Value, _: &Bound) -> Result<Value> {
    Ok(v.clone())
}

/// Python's `shlex.quote`: safe words stay bare, anything else in single quotes.
pub fn shell_quote(t: &str) -> String {
    if t.is_empty() {
        return "''".into();
    }
    if t.chars()
        .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return t.to_string();
    }
    format!("'{}'", t.replace('\'', r#"'"'"'"#))
}

pub fn quote(v: &Value, _: &Bound) -> Result<Value> {
    let t = match v {
        Value::Null => String::new(),
        other => s(other),
    };
    out(shell_quote(&t))
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
pub fn py_split(t: &str, sep: Option<&str>, maxsplit: i64) -> Vec<String> {
    let max = if maxsplit < 0 {
        usize::MAX
    } else {
        maxsplit as usize
    };
    match sep {
        Some(sep) => {
            if max == usize::MAX {
                t.split(sep).map(str::to_string).collect()
            } else {
                t.splitn(max.saturating_add(1), sep)
                    .map(str::to_string)
                    .collect()
            }
        }
        None => {
            let mut parts = Vec::new();
            let mut rest = t.trim_start();
            while !rest.is_empty() {
                if parts.len() == max {
                    parts.push(rest.to_string());
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                parts.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            parts
        }
    }
}

pub fn split(v: &Value, b: &Bound) -> Result<Value> {
    let t = want_str(b.name, v)?;
    let sep = match b.get(0) {
        None | Some(Value::Null) => None,
        Some(_) => Some(b.str(0)?),
    };
    if sep.as_deref() == Some("") {
        return Err(err(b.name, "empty separator"));
    }
    let parts = py_split(t, sep.as_deref(), b.int_or(1, -1)?);
    Ok(Value::Array(parts.into_iter().map(Value::String).collect()))
}

/// Jinja2's `wordwrap(width=79, break_long_words=True, wrapstring='\n', break_on_hyphens)`
/// (Python's textwrap, simplified: words split on whitespace).
pub fn wordwrap(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    let width = b.int_or(0, 79)?.max(1) as usize;
    let breaklong = b.flag(1, true);
    let wrap = b.str_or(2, "\n")?;
    let mut paras = Vec::new();
    for para in t.split('\n') {
        let mut lines: Vec<String> = Vec::new();
        let mut cur = String::new();
        for word in para.split_whitespace() {
            let mut w = word.to_string();
            loop {
                let need = if cur.is_empty() {
                    w.chars().count()
                } else {
                    cur.chars().count() + 1 + w.chars().count()
                };
                if need <= width {
                    if !cur.is_empty() {
                        cur.push(' ');
                    }
                    cur.push_str(&w);
                    break;
                }
                let n = cur.chars().count();
                // textwrap fills the rest of the line with the start of a too-long word.
                if breaklong && w.chars().count() > width && n > 0 && n + 1 < width {
                    let room = width - n - 1;
                    cur.push(' ');
                    cur.extend(w.chars().take(room));
                    w = w.chars().skip(room).collect();
                    lines.push(std::mem::take(&mut cur));
                    continue;
                }
                if !cur.is_empty() {
                    lines.push(std::mem::take(&mut cur));
                    continue;
                }
                if breaklong && w.chars().count() > width {
                    let head: String = w.chars().take(width).collect();
                    lines.push(head);
                    w = w.chars().skip(width).collect();
                    continue;
                }
                cur = w.clone();
                break;
            }
        }
        if !cur.is_empty() {
            lines.push(cur);
        }
        paras.push(lines.join(&wrap));
    }
    out(paras.join(&wrap))
}

/// Ansible's `comment(style='plain')`: each line prefixed, a blank comment line around.
pub fn comment(v: &Value, b: &Bound) -> Result<Value> {
    let t = s(v);
    let style = b.str_or(0, "plain")?;
    let (beg, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(err(b.name, format!("unknown style '{other}'"))),
    };
    let decoration =
        b.kw.get("decoration")
            .and_then(Value::as_str)
            .unwrap_or(decoration);
    let prefix_count =
        b.kw.get("prefix_count")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
    let postfix_count =
        b.kw.get("postfix_count")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
    let bare = decoration.trim_end();
    let mut lines = Vec::new();
    if !beg.is_empty() {
        lines.push(beg.to_string());
    }
    lines.extend(std::iter::repeat_n(bare.to_string(), prefix_count));
    for l in t.split('\n') {
        lines.push(if l.is_empty() {
            bare.to_string()
        } else {
            format!("{decoration}{l}")
        });
    }
    lines.extend(std::iter::repeat_n(bare.to_string(), postfix_count));
    if !end.is_empty() {
        lines.push(end.to_string());
    }
    out(lines.join("\n"))
}

/// Python's printf-style `%` formatting with a tuple (list) or a single value / mapping.
pub fn percent_format(fmt: &str, args: &Value) -> std::result::Result<String, String> {
    let items: Vec<Value> = match args {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut it = items.iter();
    let mut r = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            r.push(c);
            continue;
        }
        // %[(key)][flags][width][.precision]type
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let mut k = String::new();
            for c in chars.by_ref() {
                if c == ')' {
                    break;
                }
                k.push(c);
            }
            key = Some(k);
        }
        let mut flags = String::new();
        while let Some(&f) = chars.peek().filter(|f| "-+ 0#".contains(**f)) {
            flags.push(f);
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(ty) = chars.next() else {
            return Err("incomplete format".into());
        };
        if ty == '%' {
            r.push('%');
            continue;
        }
        let arg = match &key {
            Some(k) => args
                .get(k)
                .cloned()
                .ok_or_else(|| format!("KeyError: {}", pystr::repr_str(k)))?,
            None => it
                .next()
                .cloned()
                .ok_or("not enough arguments for format string")?,
        };
        let body = match ty {
            's' => s(&arg),
            'r' => pystr::repr(&arg),
            'd' | 'i' | 'u' => {
                let f = pyval::as_f64(&arg).ok_or_else(|| {
                    format!(
                        "%{ty} format: a real number is required, not {}",
                        pyval::type_name(&arg)
                    )
                })?;
                let n = f.trunc() as i64;
                if flags.contains('+') && n >= 0 {
                    format!("+{n}")
                } else {
                    n.to_string()
                }
            }
            'f' | 'F' => {
                let f = pyval::as_f64(&arg).ok_or("must be real number")?;
                format!("{:.*}", prec.unwrap_or(6), f)
            }
            'e' | 'E' => {
                let f = pyval::as_f64(&arg).ok_or("must be real number")?;
                let r = format!("{:.*e}", prec.unwrap_or(6), f);
                let (m, e) = r.split_once('e').unwrap_or((&r, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                let r = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
                if ty == 'E' {
                    r.to_uppercase()
                } else {
                    r
                }
            }
            'x' => format!(
                "{:x}",
                pyval::as_i64(&arg).ok_or("%x format: an integer is required")?
            ),
            'X' => format!(
                "{:X}",
                pyval::as_i64(&arg).ok_or("%X format: an integer is required")?
            ),
            'o' => format!(
                "{:o}",
                pyval::as_i64(&arg).ok_or("%o format: an integer is required")?
            ),
            other => return Err(format!("unsupported format character '{other}'")),
        };
        let body = match (ty, prec) {
            ('s' | 'r', Some(p)) => body.chars().take(p).collect(),
            _ => body,
        };
        let w: usize = width.parse().unwrap_or(0);
        let n = body.chars().count();
        if n >= w {
            r.push_str(&body);
        } else if flags.contains('-') {
            r.push_str(&body);
            r.push_str(&" ".repeat(w - n));
        } else if flags.contains('0') && ty != 's' {
            let (sign, digits) = match body.strip_prefix('-') {
                Some(d) => ("-", d.to_string()),
                None => ("", body.clone()),
            };
            r.push_str(sign);
            r.push_str(&"0".repeat(w - n));
            r.push_str(&digits);
        } else {
            r.push_str(&" ".repeat(w - n));
            r.push_str(&body);
        }
    }
    if key_free_leftover(&items, args, it.len()) {
        return Err("not all arguments converted during string formatting".into());
    }
    Ok(r)
}

fn key_free_leftover(_items: &[Value], args: &Value, left: usize) -> bool {
    left > 0 && args.is_array()
}

/// Jinja2's `format(*args, **kwargs)`: printf-style.
pub fn format(v: &Value, b: &Bound) -> Result<Value> {
    let fmt = want_str(b.name, v)?;
    let args = if !b.kw.is_empty() {
        Value::Object(b.kw.clone())
    } else {
        Value::Array(b.extra.clone())
    };
    percent_format(fmt, &args)
        .map(Value::String)
        .map_err(|e| err(b.name, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shlex_quote_like_python() {
        // Python: [shlex.quote(s) for s in ('ab', 'a b', '', "it's", 'a=b,c:/d.e@f%g+h-_')]
        assert_eq!(shell_quote("ab"), "ab");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
        assert_eq!(shell_quote("a=b,c:/d.e@f%g+h-_"), "a=b,c:/d.e@f%g+h-_");
    }

    #[test]
    fn printf_like_python() {
        // Python: '%s-%d' % ('x', 3), '%05.1f' % 2.25, '%-4s|' % 'a', '%(a)s' % {'a': [1]}
        assert_eq!(percent_format("%s-%d", &json!(["x", 3])).unwrap(), "x-3");
        assert_eq!(percent_format("%05.1f", &json!(2.25)).unwrap(), "002.2");
        assert_eq!(percent_format("%-4s|", &json!("a")).unwrap(), "a   |");
        assert_eq!(percent_format("%(a)s", &json!({"a": [1]})).unwrap(), "[1]");
        assert_eq!(percent_format("%s", &json!([true])).unwrap(), "True");
        assert!(percent_format("%s", &json!([1, 2])).is_err());
        assert_eq!(percent_format("100%%", &json!([])).unwrap(), "100%");
        // Python: '%x %o %e' % (255, 8, 1.5), '%5s|%-5d|' % ('ab', 3)
        assert_eq!(
            percent_format("%x %o %e", &json!([255, 8, 1.5])).unwrap(),
            "ff 10 1.500000e+00"
        );
        assert_eq!(
            percent_format("%5s|%-5d|", &json!(["ab", 3])).unwrap(),
            "   ab|3    |"
        );
        assert!(percent_format("%d", &json!("3")).is_err());
    }

    #[test]
    fn python_split() {
        assert_eq!(py_split("  a b  c ", None, -1), ["a", "b", "c"]);
        assert_eq!(py_split("a b c", None, 1), ["a", "b c"]);
        assert_eq!(py_split("a,b,,c", Some(","), -1), ["a", "b", "", "c"]);
        assert_eq!(py_split("a,b,c", Some(","), 1), ["a", "b,c"]);
    }
}
