//! Mapping filters: dict2items/items2dict, combine, dictsort, items, extract, xmlattr.
use serde_json::{Map, Value};
use tera::Result;

use super::args::{err, Bound};
use super::pystr;
use super::pyval;
use super::undefined;

fn mapping<'a>(b: &Bound, v: &'a Value) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| {
        err(
            b.name,
            format!("expected a mapping, got {}", pyval::type_name(v)),
        )
    })
}

/// Python's `str()` of a key (JSON keys are strings already; numbers arrive as text).
fn key_of(v: &Value) -> String {
    pystr::str(v)
}

pub fn dict2items(v: &Value, b: &Bound) -> Result<Value> {
    let kn = b.str_or(0, "key")?;
    let vn = b.str_or(1, "value")?;
    Ok(Value::Array(
        mapping(b, v)?
            .iter()
            .map(|(k, x)| {
                let mut m = Map::new();
                m.insert(kn.clone(), Value::String(k.clone()));
                m.insert(vn.clone(), x.clone());
                Value::Object(m)
            })
            .collect(),
    ))
}

pub fn items2dict(v: &Value, b: &Bound) -> Result<Value> {
    let kn = b.str_or(0, "key")?;
    let vn = b.str_or(1, "value")?;
    let xs = v
        .as_array()
        .ok_or_else(|| err(b.name, "expected a list of mappings"))?;
    let mut m = Map::new();
    for x in xs {
        let (Some(k), Some(val)) = (x.get(&kn), x.get(&vn)) else {
            return Err(err(
                b.name,
                format!(
                    "each element needs the keys '{kn}' and '{vn}', got {}",
                    pystr::str(x)
                ),
            ));
        };
        m.insert(key_of(k), val.clone());
    }
    Ok(Value::Object(m))
}

fn merge(base: &mut Map<String, Value>, other: &Map<String, Value>, recursive: bool, lm: &str) {
    for (k, v) in other {
        match (base.get_mut(k), v) {
            (Some(Value::Object(bm)), Value::Object(om)) if recursive => {
                merge(bm, om, recursive, lm)
            }
            (Some(Value::Array(bl)), Value::Array(ol)) if lm != "replace" => {
                let merged: Vec<Value> = match lm {
                    "keep" => bl.clone(),
                    "append" => bl.iter().chain(ol).cloned().collect(),
                    "prepend" => ol.iter().chain(bl.iter()).cloned().collect(),
                    "append_rp" => bl
                        .iter()
                        .filter(|x| !ol.iter().any(|y| pyval::eq(x, y)))
                        .chain(ol)
                        .cloned()
                        .collect(),
                    _ => ol
                        .iter()
                        .chain(bl.iter().filter(|x| !ol.iter().any(|y| pyval::eq(x, y))))
                        .cloned()
                        .collect(),
                };
                *bl = merged;
            }
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Ansible's `combine(*dicts, recursive=False, list_merge='replace')`; a list argument stands
/// for its dicts; castellan's old `with=` keyword is one more dict.
pub fn combine(v: &Value, b: &Bound) -> Result<Value> {
    let recursive = b.kw_flag("recursive", false);
    let lm =
        b.kw.get("list_merge")
            .and_then(Value::as_str)
            .unwrap_or("replace")
            .to_string();
    if ![
        "replace",
        "keep",
        "append",
        "prepend",
        "append_rp",
        "prepend_rp",
    ]
    .contains(&lm.as_str())
    {
        return Err(err(
            b.name,
            format!("'{lm}' is not a valid list_merge value"),
        ));
    }
    if let Some(bad) =
        b.kw.keys()
            .find(|k| !["recursive", "list_merge", "with"].contains(&k.as_str()))
    {
        return Err(err(
            b.name,
            format!("got an unexpected keyword argument '{bad}'"),
        ));
    }
    let mut dicts: Vec<&Value> = Vec::new();
    for x in std::iter::once(v)
        .chain(b.extra.iter())
        .chain(b.kw.get("with"))
    {
        match x {
            Value::Array(xs) => dicts.extend(xs.iter()),
            other => dicts.push(other),
        }
    }
    let mut acc = Map::new();
    for d in dicts {
        let m = d.as_object().ok_or_else(|| {
            err(
                b.name,
                format!("expects dicts, got {}", pyval::type_name(d)),
            )
        })?;
        merge(&mut acc, m, recursive, &lm);
    }
    Ok(Value::Object(acc))
}

/// `items()`: [[key, value]...].
pub fn items(v: &Value, b: &Bound) -> Result<Value> {
    if v.is_null() {
        return Ok(Value::Array(Vec::new()));
    }
    Ok(Value::Array(
        mapping(b, v)?
            .iter()
            .map(|(k, x)| Value::Array(vec![Value::String(k.clone()), x.clone()]))
            .collect(),
    ))
}

/// Jinja2's `dictsort(case_sensitive=False, by='key', reverse=False)`.
pub fn dictsort(v: &Value, b: &Bound) -> Result<Value> {
    let cs = b.flag(0, false);
    let by = b.str_or(1, "key")?;
    let idx = match by.as_str() {
        "key" => 0,
        "value" => 1,
        _ => {
            return Err(err(
                b.name,
                "You can only sort by either \"key\" or \"value\"",
            ))
        }
    };
    let mut pairs: Vec<Value> = mapping(b, v)?
        .iter()
        .map(|(k, x)| Value::Array(vec![Value::String(k.clone()), x.clone()]))
        .collect();
    let key = |p: &Value| match &p[idx] {
        Value::String(s) if !cs => Value::String(s.to_lowercase()),
        other => other.clone(),
    };
    let mut failure = None;
    pairs.sort_by(|x, y| {
        pyval::cmp(&key(x), &key(y)).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            std::cmp::Ordering::Equal
        })
    });
    if let Some(e) = failure {
        return Err(err(b.name, e));
    }
    if b.flag(2, false) {
        pairs.reverse();
    }
    Ok(Value::Array(pairs))
}

/// Python's `container[key]`, the undefined sentinel when missing.
pub fn getitem(container: &Value, key: &Value) -> Value {
    match (container, key) {
        (Value::Object(m), k) => m.get(&key_of(k)).cloned().unwrap_or_else(|| {
            undefined::undefined(format!("'dict object' has no attribute {}", pystr::repr(k)))
        }),
        (Value::Array(a), k) => match pyval::as_i64(k) {
            Some(i) => {
                let n = a.len() as i64;
                let j = if i < 0 { i + n } else { i };
                if (0..n).contains(&j) {
                    a[j as usize].clone()
                } else {
                    undefined::undefined(format!("'list object' has no element {i}"))
                }
            }
            None => {
                undefined::undefined(format!("'list object' has no attribute {}", pystr::repr(k)))
            }
        },
        (Value::String(s), k) => match pyval::as_i64(k) {
            Some(i) => {
                let cs: Vec<char> = s.chars().collect();
                let n = cs.len() as i64;
                let j = if i < 0 { i + n } else { i };
                if (0..n).contains(&j) {
                    Value::String(cs[j as usize].to_string())
                } else {
                    undefined::undefined(format!("'str object' has no element {i}"))
                }
            }
            None => {
                undefined::undefined(format!("'str object' has no attribute {}", pystr::repr(k)))
            }
        },
        (other, k) => undefined::undefined(format!(
            "'{}' object has no attribute {}",
            pyval::type_name(other),
            pystr::repr(k)
        )),
    }
}

/// Ansible's `extract(container, morekeys=None)`.
pub fn extract(v: &Value, b: &Bound) -> Result<Value> {
    let container = b.val(0);
    let mut cur = getitem(&container, v);
    let more = match b.get(1) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ks)) => ks.clone(),
        Some(k) => vec![k.clone()],
    };
    for k in more {
        if undefined::is_undefined(&cur) {
            break;
        }
        cur = getitem(&cur, &k);
    }
    Ok(cur)
}

/// Jinja2's `attr(name)`.
pub fn attr(v: &Value, b: &Bound) -> Result<Value> {
    Ok(getitem(v, &Value::String(b.str(0)?)))
}

/// Jinja2's `xmlattr(autospace=True)`: ` k="v"` pairs, None/undefined values left out.
pub fn xmlattr(v: &Value, b: &Bound) -> Result<Value> {
    let mut parts = Vec::new();
    for (k, x) in mapping(b, v)? {
        if x.is_null() || undefined::is_undefined(x) {
            continue;
        }
        if k.chars().any(|c| c.is_whitespace() || "/>=".contains(c)) {
            return Err(err(
                b.name,
                format!(
                    "Invalid character in attribute name: {}",
                    pystr::repr_str(k)
                ),
            ));
        }
        let val = pystr::str(x)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        parts.push(format!("{k}=\"{val}\""));
    }
    let mut s = parts.join(" ");
    if b.flag(0, true) && !s.is_empty() {
        s.insert(0, ' ');
    }
    Ok(Value::String(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn getitem_like_python() {
        assert_eq!(getitem(&json!([1, 2, 3]), &json!(-1)), json!(3));
        assert!(undefined::is_undefined(&getitem(
            &json!({"a": 1}),
            &json!("b")
        )));
        assert_eq!(getitem(&json!("abc"), &json!(1)), json!("b"));
    }
}
