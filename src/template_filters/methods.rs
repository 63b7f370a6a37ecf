//! Python method calls on values (`x.get('k')`, `s.split(',')`, `', '.join(xs)`,
//! `'{}-{}'.format(a, b)`...): `__jx_method(obj=x, name="m", a0=.., k=..)`. Values are
//! immutable here: `append`, `update` and friends are refused, not silently dropped.
use serde_json::{Map, Value};
use tera::Result;

use super::args::Bound;
use super::pystr;
use super::pyval;
use super::strings::py_split;
use super::undefined;

fn e(msg: impl Into<String>) -> tera::Error {
    tera::Error::msg(msg.into())
}

fn arg_str(args: &[Value], i: usize, what: &str) -> Result<Option<String>> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(e(format!(
            "{what} arg must be None or str, not {}",
            pyval::type_name(other)
        ))),
    }
}

fn int_arg(args: &[Value], i: usize, default: i64) -> Result<i64> {
    match args.get(i) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => pyval::as_i64(v).ok_or_else(|| {
            e(format!(
                "'{}' object cannot be interpreted as an integer",
                pyval::type_name(v)
            ))
        }),
    }
}

fn strip(s: &str, chars: Option<String>, left: bool, right: bool) -> String {
    let f = |c: char| match &chars {
        Some(cs) => cs.contains(c),
        None => c.is_whitespace(),
    };
    let mut t = s;
    if left {
        t = t.trim_start_matches(f);
    }
    if right {
        t = t.trim_end_matches(f);
    }
    t.to_string()
}

/// Python's `str.format` with `{}`, `{0}`, `{name}`, `{{`/`}}` and `{x.attr}`/`{x[0]}` paths;
/// format specs other than empty are refused.
pub fn str_format(fmt: &str, args: &[Value], kw: &Map<String, Value>) -> Result<String> {
    let mut out = String::new();
    let mut auto = 0usize;
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut field = String::new();
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    field.push(c);
                }
                let (field, spec) = field
                    .split_once(':')
                    .map_or((field.as_str(), ""), |(f, s)| (f, s));
                let (field, conv) = field.split_once('!').map_or((field, ""), |(f, c)| (f, c));
                let split_at = field.find(['.', '[']).unwrap_or(field.len());
                let (head, tail) = field.split_at(split_at);
                let mut v = if head.is_empty() {
                    auto += 1;
                    args.get(auto - 1).cloned().ok_or_else(|| {
                        e("Replacement index out of range for positional args tuple")
                    })?
                } else if let Ok(i) = head.parse::<usize>() {
                    args.get(i).cloned().ok_or_else(|| {
                        e(format!(
                            "Replacement index {i} out of range for positional args tuple"
                        ))
                    })?
                } else {
                    kw.get(head)
                        .cloned()
                        .ok_or_else(|| e(format!("KeyError: '{head}'")))?
                };
                for part in tail.split(['.', '[']).filter(|p| !p.is_empty()) {
                    let p = part.trim_end_matches(']');
                    v = pyval::path(&v, p)
                        .cloned()
                        .ok_or_else(|| e(format!("no attribute or key '{p}'")))?;
                }
                let text = if conv == "r" {
                    pystr::repr(&v)
                } else {
                    pystr::str(&v)
                };
                let text = match spec {
                    "" => text,
                    s => {
                        let (align, width) = match s.chars().next() {
                            Some(a @ ('<' | '>' | '^')) => (a, &s[1..]),
                            _ => (if v.is_number() { '>' } else { '<' }, s),
                        };
                        let w: usize = width
                            .parse()
                            .map_err(|_| e(format!("format spec '{s}' is not supported")))?;
                        let n = text.chars().count();
                        if n >= w {
                            text
                        } else {
                            let pad = w - n;
                            match align {
                                '<' => format!("{text}{}", " ".repeat(pad)),
                                '>' => format!("{}{text}", " ".repeat(pad)),
                                _ => format!(
                                    "{}{text}{}",
                                    " ".repeat(pad / 2),
                                    " ".repeat(pad - pad / 2)
                                ),
                            }
                        }
                    }
                };
                out.push_str(&text);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn str_method(s: &str, name: &str, args: &[Value], kw: &Map<String, Value>) -> Result<Value> {
    let st = |x: String| Ok(Value::String(x));
    let bl = |x: bool| Ok(Value::Bool(x));
    let strs = |v: Vec<String>| Ok(Value::Array(v.into_iter().map(Value::String).collect()));
    match name {
        "split" => {
            let sep = arg_str(args, 0, "sep")?
                .or(kw.get("sep").and_then(Value::as_str).map(str::to_string));
            if sep.as_deref() == Some("") {
                return Err(e("empty separator"));
            }
            strs(py_split(
                s,
                sep.as_deref(),
                int_arg(
                    args,
                    1,
                    kw.get("maxsplit").and_then(Value::as_i64).unwrap_or(-1),
                )?,
            ))
        }
        "rsplit" => {
            let sep = arg_str(args, 0, "sep")?;
            let max = int_arg(args, 1, -1)?;
            if max < 0 {
                return strs(py_split(s, sep.as_deref(), -1));
            }
            // Split the reversed text and reverse back.
            let rev: String = s.chars().rev().collect();
            let rsep = sep.as_ref().map(|x| x.chars().rev().collect::<String>());
            let mut parts: Vec<String> = py_split(&rev, rsep.as_deref(), max)
                .into_iter()
                .map(|p| p.chars().rev().collect())
                .collect();
            parts.reverse();
            strs(parts)
        }
        "splitlines" => strs(s.lines().map(str::to_string).collect()),
        "strip" => st(strip(s, arg_str(args, 0, "strip")?, true, true)),
        "lstrip" => st(strip(s, arg_str(args, 0, "strip")?, true, false)),
        "rstrip" => st(strip(s, arg_str(args, 0, "strip")?, false, true)),
        "lower" => st(s.to_lowercase()),
        "upper" => st(s.to_uppercase()),
        "title" | "capitalize" => {
            let mut first = true;
            st(s.chars()
                .map(|c| {
                    let r = if first {
                        c.to_uppercase().to_string()
                    } else {
                        c.to_lowercase().to_string()
                    };
                    first = name == "title" && !c.is_alphanumeric();
                    r
                })
                .collect())
        }
        "startswith" | "endswith" => {
            let cands: Vec<String> = match args.first() {
                Some(Value::String(p)) => vec![p.clone()],
                Some(Value::Array(ps)) => ps.iter().map(pystr::str).collect(),
                _ => return Err(e(format!("{name} first arg must be str or a tuple of str"))),
            };
            bl(cands.iter().any(|p| {
                if name == "startswith" {
                    s.starts_with(p.as_str())
                } else {
                    s.ends_with(p.as_str())
                }
            }))
        }
        "replace" => {
            let (old, new) = (
                pystr::str(args.first().unwrap_or(&Value::Null)),
                pystr::str(args.get(1).unwrap_or(&Value::Null)),
            );
            let n = int_arg(args, 2, -1)?;
            st(if n < 0 {
                s.replace(&old, &new)
            } else {
                s.replacen(&old, &new, n as usize)
            })
        }
        "join" => {
            let items = pyval::iter(args.first().unwrap_or(&Value::Null)).map_err(e)?;
            let mut parts = Vec::new();
            for x in items {
                match x {
                    Value::String(t) => parts.push(t),
                    other => {
                        return Err(e(format!(
                            "sequence item: expected str instance, {} found",
                            pyval::type_name(&other)
                        )))
                    }
                }
            }
            st(parts.join(s))
        }
        "format" => st(str_format(s, args, kw)?),
        "count" => {
            let sub = pystr::str(args.first().unwrap_or(&Value::Null));
            Ok(pyval::int_value(if sub.is_empty() {
                s.chars().count() as i64 + 1
            } else {
                s.matches(sub.as_str()).count() as i64
            }))
        }
        "find" | "index" => {
            let sub = pystr::str(args.first().unwrap_or(&Value::Null));
            match s.find(sub.as_str()) {
                Some(i) => Ok(pyval::int_value(s[..i].chars().count() as i64)),
                None if name == "find" => Ok(pyval::int_value(-1)),
                None => Err(e("substring not found")),
            }
        }
        "isdigit" => bl(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        "isalpha" => bl(!s.is_empty() && s.chars().all(char::is_alphabetic)),
        "isalnum" => bl(!s.is_empty() && s.chars().all(char::is_alphanumeric)),
        "isspace" => bl(!s.is_empty() && s.chars().all(char::is_whitespace)),
        "islower" => bl(s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_uppercase)),
        "isupper" => bl(s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_lowercase)),
        "zfill" => {
            let w = int_arg(args, 0, 0)?.max(0) as usize;
            let n = s.chars().count();
            if n >= w {
                return st(s.to_string());
            }
            let (sign, rest) = match s.strip_prefix(['-', '+']) {
                Some(r) => (&s[..1], r),
                None => ("", s),
            };
            st(format!("{sign}{}{rest}", "0".repeat(w - n)))
        }
        "ljust" | "rjust" => {
            let w = int_arg(args, 0, 0)?.max(0) as usize;
            let fill = arg_str(args, 1, "fillchar")?.unwrap_or_else(|| " ".into());
            let n = s.chars().count();
            let pad = fill.repeat(w.saturating_sub(n));
            st(if name == "ljust" {
                format!("{s}{pad}")
            } else {
                format!("{pad}{s}")
            })
        }
        "partition" | "rpartition" => {
            let sep = pystr::str(args.first().unwrap_or(&Value::Null));
            let at = if name == "partition" {
                s.find(sep.as_str())
            } else {
                s.rfind(sep.as_str())
            };
            strs(match at {
                Some(i) => vec![
                    s[..i].to_string(),
                    sep.clone(),
                    s[i + sep.len()..].to_string(),
                ],
                None if name == "partition" => vec![s.to_string(), String::new(), String::new()],
                None => vec![String::new(), String::new(), s.to_string()],
            })
        }
        other => Err(e(format!("'str' object has no attribute '{other}'"))),
    }
}

fn list_method(a: &[Value], name: &str, args: &[Value]) -> Result<Value> {
    let item = args.first().cloned().unwrap_or(Value::Null);
    match name {
        "index" => a
            .iter()
            .position(|x| pyval::eq(x, &item))
            .map(|i| pyval::int_value(i as i64))
            .ok_or_else(|| e(format!("{} is not in list", pystr::repr(&item)))),
        "count" => Ok(pyval::int_value(a.iter().filter(|x| pyval::eq(x, &item)).count() as i64)),
        "copy" => Ok(Value::Array(a.to_vec())),
        "append" | "extend" | "insert" | "pop" | "remove" | "sort" | "reverse" | "clear" => Err(e(format!(
            "list.{name}() changes the list in place; castellan's values are immutable: use a filter (e.g. `+`, `sort`, `reverse`) instead"
        ))),
        other => Err(e(format!("'list' object has no attribute '{other}'"))),
    }
}

fn dict_method(m: &Map<String, Value>, name: &str, args: &[Value]) -> Result<Value> {
    let pairs = || {
        m.iter()
            .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()]))
            .collect()
    };
    match name {
        // Python's dict.get: None when missing and no default.
        "get" => {
            let k = args.first().map(pystr::str).unwrap_or_default();
            Ok(m.get(&k).cloned().unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)))
        }
        "keys" => Ok(Value::Array(m.keys().map(|k| Value::String(k.clone())).collect())),
        "values" => Ok(Value::Array(m.values().cloned().collect())),
        "items" => Ok(Value::Array(pairs())),
        "copy" => Ok(Value::Object(m.clone())),
        "update" | "pop" | "popitem" | "setdefault" | "clear" => Err(e(format!(
            "dict.{name}() changes the mapping in place; castellan's values are immutable: use `combine` instead"
        ))),
        other => Err(e(format!("'dict' object has no attribute '{other}'"))),
    }
}

/// `__jx_method(obj=x, name="m", a0=.., k=..)`.
pub fn jx_method(b: &Bound) -> Result<Value> {
    let obj = b.val(0);
    undefined::refuse(&obj)?;
    let name = b.str(1)?;
    let args = &b.extra;
    for a in args.iter().chain(b.kw.values()) {
        undefined::refuse(a)?;
    }
    match &obj {
        Value::String(s) => str_method(s, &name, args, &b.kw),
        Value::Array(a) => list_method(a, &name, args),
        Value::Object(m) => dict_method(m, &name, args),
        other => Err(e(format!(
            "'{}' object has no attribute '{name}'",
            pyval::type_name(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn str_format_like_python() {
        // Python: '{}-{}'.format('a', 1), '{0}:{name}'.format('x', name='n'), '{:>4}|'.format(7)
        let kw: Map<String, Value> = json!({"name": "n"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            str_format("{}-{}", &[json!("a"), json!(1)], &Map::new()).unwrap(),
            "a-1"
        );
        assert_eq!(str_format("{0}:{name}", &[json!("x")], &kw).unwrap(), "x:n");
        assert_eq!(
            str_format("{:>4}|{{x}}", &[json!(7)], &Map::new()).unwrap(),
            "   7|{x}"
        );
    }

    #[test]
    fn methods_like_python() {
        let m = |o: Value, n: &str, a: &[Value]| -> Value {
            match &o {
                Value::String(s) => str_method(s, n, a, &Map::new()),
                Value::Array(x) => list_method(x, n, a),
                Value::Object(x) => dict_method(x, n, a),
                _ => Err(e("?")),
            }
            .unwrap()
        };
        assert_eq!(m(json!({"a": 1}), "get", &[json!("b")]), json!(null));
        assert_eq!(m(json!({"a": 1}), "get", &[json!("b"), json!(2)]), json!(2));
        assert_eq!(
            m(json!("abc"), "startswith", &[json!(["x", "a"])]),
            json!(true)
        );
        assert_eq!(m(json!(", "), "join", &[json!(["a", "b"])]), json!("a, b"));
        assert_eq!(
            m(json!("a.b.c"), "rsplit", &[json!("."), json!(1)]),
            json!(["a.b", "c"])
        );
        assert_eq!(m(json!(" a "), "strip", &[]), json!("a"));
    }
}
