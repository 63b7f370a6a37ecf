//! Python's view of JSON values: truthiness, equality (`1 == 1.0 == True`), ordering, type
//! names, and iteration (a string yields its characters, a mapping its keys).
use std::cmp::Ordering;

use serde_json::{Number, Value};

/// Python's `bool(x)` (not Ansible's `bool` filter: `'no'` is truthy here).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's type name: `str`, `int`, `float`, `bool`, `list`, `dict`, `NoneType`.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// A number (bools count as 0/1 as in Python).
pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

pub fn as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

/// A JSON number from an f64, integral results kept as floats (Python keeps the type).
pub fn float_value(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

pub fn int_value(i: i64) -> Value {
    Value::Number(i.into())
}

/// Python's `==`.
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)))
        }
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => match (as_i64(a), as_i64(b)) {
                (Some(i), Some(j)) => i == j,
                _ => x == y,
            },
            _ => a == b,
        },
    }
}

/// Python's ordering for `<`, `sort`, `min`, `max`: numbers with numbers, strings with
/// strings (by code point), lists item by item; anything else is a TypeError.
pub fn cmp(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = cmp(p, q)?;
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ => match (as_f64(a), as_f64(b)) {
            (Some(x), Some(y)) => match (as_i64(a), as_i64(b)) {
                (Some(i), Some(j)) => Ok(i.cmp(&j)),
                _ => x
                    .partial_cmp(&y)
                    .ok_or_else(|| "cannot compare nan".to_string()),
            },
            _ => Err(format!(
                "'<' not supported between instances of '{}' and '{}'",
                type_name(a),
                type_name(b)
            )),
        },
    }
}

/// Python's iteration: list items, mapping keys, string characters.
pub fn iter(v: &Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Object(m) => Ok(m.keys().map(|k| Value::String(k.clone())).collect()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        other => Err(format!("'{}' object is not iterable", type_name(other))),
    }
}

/// Python's `len()`.
pub fn len(v: &Value) -> Result<usize, String> {
    match v {
        Value::Array(a) => Ok(a.len()),
        Value::Object(m) => Ok(m.len()),
        Value::String(s) => Ok(s.chars().count()),
        other => Err(format!(
            "object of type '{}' has no len()",
            type_name(other)
        )),
    }
}

/// Python's `x in container`.
pub fn contains(container: &Value, item: &Value) -> Result<bool, String> {
    match container {
        Value::Array(a) => Ok(a.iter().any(|x| eq(x, item))),
        Value::Object(m) => Ok(item.as_str().is_some_and(|k| m.contains_key(k))),
        Value::String(s) => match item {
            Value::String(i) => Ok(s.contains(i.as_str())),
            other => Err(format!(
                "'in <string>' requires string as left operand, not {}",
                type_name(other)
            )),
        },
        other => Err(format!(
            "argument of type '{}' is not iterable",
            type_name(other)
        )),
    }
}

/// Jinja2's attribute-or-item lookup with a dotted path (`attribute='a.b'`, `0` as index).
pub fn path<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    let mut cur = v;
    for part in dotted.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_equality_and_order() {
        assert!(eq(&json!(1), &json!(1.0)));
        assert!(eq(&json!(true), &json!(1)));
        assert!(!eq(&json!("1"), &json!(1)));
        assert_eq!(cmp(&json!([1, 2]), &json!([1, 3])), Ok(Ordering::Less));
        assert_eq!(cmp(&json!("B"), &json!("a")), Ok(Ordering::Less));
        assert!(cmp(&json!("a"), &json!(1)).is_err());
        assert_eq!(type_name(&json!(1.0)), "float");
    }
}
