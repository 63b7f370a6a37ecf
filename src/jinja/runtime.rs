//! The tera functions the lowering emits. `__jx_none`, `__jx_iter`, `__jx_pairs` and
//! `__jx_pow` belong to the lowering itself. The others are minimal stand-ins for the library
//! of issue 16's contract (items 3, 6, 7: `src/template_filters/`), registered BEFORE it so
//! that its full versions replace these when present.
use std::collections::HashMap;

use serde_json::{Map, Value};
use tera::{Result, Tera};

const UNDEF: &str = "__jx_undefined__";

type Args = HashMap<String, Value>;

fn undefined(desc: String) -> Value {
    let mut m = Map::new();
    m.insert(UNDEF.into(), Value::String(desc));
    Value::Object(m)
}

fn is_undefined(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(UNDEF))
}

fn arg<'a>(a: &'a Args, k: &str) -> Result<&'a Value> {
    a.get(k)
        .ok_or_else(|| tera::Error::msg(format!("internal: argument `{k}` missing")))
}

pub fn register(tera: &mut Tera) {
    tera.register_function("__jx_none", |_: &Args| Ok(Value::Null));
    tera.register_function("__jx_iter", iter);
    tera.register_function("__jx_pairs", pairs);
    tera.register_function("__jx_pow", pow);
    tera.register_function("__jx_undef", |a: &Args| {
        let what = a.get("a0").map_or_else(|| "a value".to_string(), py_str);
        Ok(undefined(format!("'{what}' is undefined")))
    });
    tera.register_tester("defined", |v: Option<&Value>, _: &[Value]| {
        Ok(v.is_some_and(|v| !is_undefined(v)))
    });
    tera.register_tester("undefined", |v: Option<&Value>, _: &[Value]| {
        Ok(v.is_none_or(is_undefined))
    });
    // Stand-ins (see the module comment).
    tera.register_filter("__jx_str", |v: &Value, _: &Args| {
        if is_undefined(v) {
            return Err(tera::Error::msg(py_str(&v[UNDEF])));
        }
        // Ansible's finalize: None prints as nothing.
        Ok(Value::String(if v.is_null() {
            String::new()
        } else {
            py_str(v)
        }))
    });
    tera.register_function("__jx_add", add);
    tera.register_function("__jx_concat", |a: &Args| {
        Ok(Value::String(format!(
            "{}{}",
            py_str(arg(a, "a0")?),
            py_str(arg(a, "a1")?)
        )))
    });
    tera.register_function("__jx_cmp", cmp);
    tera.register_function("__jx_floordiv", |a: &Args| {
        num2(a, |x, y| (x / y).floor(), |x, y| x.div_euclid(y))
    });
    tera.register_function("__jx_mod", |a: &Args| {
        num2(a, |x, y| x.rem_euclid(y), |x, y| x.rem_euclid(y))
    });
    tera.register_function("__jx_getitem", getitem);
    tera.register_function("__jx_slice", slice);
    tera.register_function("__jx_dict", dict);
    tera.register_function("__jx_default", default);
    tera.register_function("__jx_method", method);
}

fn iter(a: &Args) -> Result<Value> {
    Ok(match arg(a, "a0")? {
        Value::Object(m) => Value::Array(m.keys().map(|k| Value::String(k.clone())).collect()),
        Value::String(s) => Value::Array(s.chars().map(|c| Value::String(c.to_string())).collect()),
        Value::Null => return Err(tera::Error::msg("cannot loop over None")),
        other => other.clone(),
    })
}

fn pairs(a: &Args) -> Result<Value> {
    Ok(match arg(a, "a0")? {
        Value::Object(m) => Value::Array(
            m.iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()]))
                .collect(),
        ),
        other => other.clone(),
    })
}

fn pow(a: &Args) -> Result<Value> {
    num2(
        a,
        f64::powf,
        |x, y| if y >= 0 { x.pow(y as u32) } else { 0 },
    )
}

fn num2(a: &Args, f: fn(f64, f64) -> f64, i: fn(i64, i64) -> i64) -> Result<Value> {
    let (x, y) = (arg(a, "a0")?, arg(a, "a1")?);
    if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
        if y == 0 {
            return Err(tera::Error::msg("division by zero"));
        }
        return Ok(Value::from(i(x, y)));
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(x), Some(y)) => Ok(Value::from(f(x, y))),
        _ => Err(tera::Error::msg(format!(
            "unsupported operand types: {} and {}",
            py_repr(x),
            py_repr(y)
        ))),
    }
}

fn add(a: &Args) -> Result<Value> {
    let (x, y) = (arg(a, "a0")?, arg(a, "a1")?);
    Ok(match (x, y) {
        (Value::String(p), Value::String(q)) => Value::String(format!("{p}{q}")),
        (Value::Array(p), Value::Array(q)) => Value::Array(p.iter().chain(q).cloned().collect()),
        _ => {
            if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
                Value::from(p + q)
            } else if let (Some(p), Some(q)) = (x.as_f64(), y.as_f64()) {
                Value::from(p + q)
            } else {
                return Err(tera::Error::msg(format!(
                    "unsupported operand types for +: {} and {}",
                    py_repr(x),
                    py_repr(y)
                )));
            }
        }
    })
}

fn cmp(a: &Args) -> Result<Value> {
    let (x, y) = (arg(a, "a0")?, arg(a, "a1")?);
    let ord = match (x, y) {
        (Value::String(p), Value::String(q)) => p.cmp(q),
        _ => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(std::cmp::Ordering::Equal),
            _ => {
                return Err(tera::Error::msg(format!(
                    "cannot compare {} and {}",
                    py_repr(x),
                    py_repr(y)
                )))
            }
        },
    };
    let op = arg(a, "op")?.as_str().unwrap_or("");
    Ok(Value::Bool(match op {
        "<" => ord.is_lt(),
        "<=" => ord.is_le(),
        ">" => ord.is_gt(),
        _ => ord.is_ge(),
    }))
}

fn getitem(a: &Args) -> Result<Value> {
    let (o, k) = (arg(a, "obj")?, arg(a, "key")?);
    if is_undefined(o) {
        return Ok(o.clone());
    }
    let found = match (o, k) {
        (Value::Object(m), Value::String(s)) => m.get(s).cloned(),
        (Value::Object(m), Value::Number(n)) => m.get(&n.to_string()).cloned(),
        (Value::Array(v), k) => k.as_i64().and_then(|i| {
            let i = if i < 0 { v.len() as i64 + i } else { i };
            usize::try_from(i).ok().and_then(|i| v.get(i).cloned())
        }),
        (Value::String(s), k) => k.as_i64().and_then(|i| {
            let c: Vec<char> = s.chars().collect();
            let i = if i < 0 { c.len() as i64 + i } else { i };
            usize::try_from(i)
                .ok()
                .and_then(|i| c.get(i).map(|c| Value::String(c.to_string())))
        }),
        _ => None,
    };
    Ok(found.unwrap_or_else(|| undefined(format!("{} has no item {}", py_repr(o), py_repr(k)))))
}

fn slice(a: &Args) -> Result<Value> {
    let o = arg(a, "obj")?;
    let items: Vec<Value> = match o {
        Value::Array(v) => v.clone(),
        Value::String(s) => s.chars().map(|c| Value::String(c.to_string())).collect(),
        _ => return Err(tera::Error::msg(format!("{} cannot be sliced", py_repr(o)))),
    };
    let n = items.len() as i64;
    let get = |k: &str| a.get(k).and_then(Value::as_i64);
    let step = get("step").unwrap_or(1);
    if step == 0 {
        return Err(tera::Error::msg("slice step cannot be zero"));
    }
    let clamp = |i: i64, lo: i64, hi: i64| {
        let i = if i < 0 { i + n } else { i };
        i.clamp(lo, hi)
    };
    let mut out = Vec::new();
    if step > 0 {
        let (s, e) = (
            clamp(get("start").unwrap_or(0), 0, n),
            clamp(get("stop").unwrap_or(n), 0, n),
        );
        let mut i = s;
        while i < e {
            out.push(items[i as usize].clone());
            i += step;
        }
    } else {
        let s = get("start").map_or(n - 1, |i| clamp(i, -1, n - 1));
        let e = get("stop").map_or(-1, |i| clamp(i, -1, n - 1));
        let mut i = s;
        while i > e {
            out.push(items[i as usize].clone());
            i += step;
        }
    }
    Ok(match o {
        Value::String(_) => Value::String(out.iter().filter_map(Value::as_str).collect()),
        _ => Value::Array(out),
    })
}

fn dict(a: &Args) -> Result<Value> {
    let mut m = Map::new();
    let mut k = 0;
    while let Some(key) = a.get(&format!("k{k}")) {
        let v = a.get(&format!("v{k}")).cloned().unwrap_or(Value::Null);
        m.insert(py_str(key), v);
        k += 1;
    }
    Ok(Value::Object(m))
}

fn default(a: &Args) -> Result<Value> {
    let v = a.get("a0").cloned().unwrap_or(Value::Null);
    let d = a.get("a1").cloned().unwrap_or(Value::String(String::new()));
    let falsy = a.get("a2").and_then(Value::as_bool).unwrap_or(false);
    let empty = match &v {
        Value::Null => falsy,
        Value::Bool(b) => falsy && !b,
        Value::String(s) => falsy && s.is_empty(),
        Value::Array(x) => falsy && x.is_empty(),
        Value::Object(x) => falsy && x.is_empty(),
        Value::Number(n) => falsy && n.as_f64() == Some(0.0),
    };
    Ok(if is_undefined(&v) || empty { d } else { v })
}

fn method(a: &Args) -> Result<Value> {
    let o = arg(a, "obj")?;
    let name = arg(a, "name")?.as_str().unwrap_or("");
    let a0 = a.get("a0");
    let s = |v: Option<&Value>| v.map(py_str);
    Ok(match (o, name) {
        (Value::Object(m), "get") => {
            let k = s(a0).unwrap_or_default();
            m.get(&k)
                .cloned()
                .unwrap_or_else(|| a.get("a1").cloned().unwrap_or(Value::Null))
        }
        (Value::Object(m), "keys") => {
            Value::Array(m.keys().map(|k| Value::String(k.clone())).collect())
        }
        (Value::Object(m), "values") => Value::Array(m.values().cloned().collect()),
        (Value::Object(_), "items") => pairs(&HashMap::from([("a0".to_string(), o.clone())]))?,
        (Value::String(x), "split") => match s(a0) {
            Some(sep) => Value::Array(
                x.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            ),
            None => Value::Array(
                x.split_whitespace()
                    .map(|p| Value::String(p.into()))
                    .collect(),
            ),
        },
        (Value::String(x), "strip") => Value::String(x.trim().into()),
        (Value::String(x), "lower") => Value::String(x.to_lowercase()),
        (Value::String(x), "upper") => Value::String(x.to_uppercase()),
        (Value::String(x), "startswith") => {
            Value::Bool(x.starts_with(s(a0).unwrap_or_default().as_str()))
        }
        (Value::String(x), "endswith") => {
            Value::Bool(x.ends_with(s(a0).unwrap_or_default().as_str()))
        }
        (Value::String(x), "replace") => Value::String(x.replace(
            s(a0).unwrap_or_default().as_str(),
            s(a.get("a1")).unwrap_or_default().as_str(),
        )),
        (Value::String(x), "join") => match a0 {
            Some(Value::Array(items)) => {
                Value::String(items.iter().map(py_str).collect::<Vec<_>>().join(x))
            }
            _ => return Err(tera::Error::msg("join expects a list")),
        },
        _ => {
            return Err(tera::Error::msg(format!(
                "{} has no method `{name}`",
                py_repr(o)
            )));
        }
    })
}

/// Python's `str()` of a JSON value.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!(
                    "'{}'",
                    s.replace('\\', "\\\\")
                        .replace('\'', "\\'")
                        .replace('\n', "\\n")
                )
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
