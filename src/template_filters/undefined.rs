//! Jinja2's Undefined, which tera lacks: a lookup that finds nothing yields a sentinel object
//! (`{"__jx_undefined__": "<what was missing>"}`) that only `default`, `mandatory` and the
//! `defined`/`undefined` tests accept; every other filter or function refuses it.
use serde_json::Value;

const KEY: &str = "__jx_undefined__";

/// The sentinel for a missing value; `desc` says what was missing (`x`, or `'dict object' has
/// no attribute 'y'`).
pub fn undefined(desc: impl Into<String>) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(KEY.to_string(), Value::String(desc.into()));
    Value::Object(m)
}

pub fn is_undefined(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.contains_key(KEY))
}

/// What the sentinel says was missing (None for a defined value).
pub fn description(v: &Value) -> Option<&str> {
    match v {
        Value::Object(m) if m.len() == 1 => m.get(KEY).and_then(Value::as_str),
        _ => None,
    }
}

/// The first undefined value anywhere inside `v` (list items, dict values), as its description:
/// Ansible refuses to finalize a result that still holds one.
pub fn find(v: &Value) -> Option<&str> {
    if let Some(d) = description(v) {
        return Some(d);
    }
    match v {
        Value::Array(a) => a.iter().find_map(find),
        Value::Object(m) => m.values().find_map(find),
        _ => None,
    }
}

/// Jinja2's message for using an undefined value: `'x' is undefined`, or the description itself
/// when it is already a sentence (`'dict object' has no attribute 'y'`).
pub fn message(desc: &str) -> String {
    if desc.contains(' ') {
        desc.to_string()
    } else {
        format!("'{desc}' is undefined")
    }
}

/// An error when `v` is the sentinel.
pub fn refuse(v: &Value) -> tera::Result<()> {
    match description(v) {
        Some(d) => Err(tera::Error::msg(message(d))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_round_trip() {
        let u = undefined("x");
        assert!(is_undefined(&u));
        assert_eq!(description(&u), Some("x"));
        assert!(!is_undefined(&serde_json::json!({"a": 1})));
        assert_eq!(find(&serde_json::json!([1, {"k": u.clone()}])), Some("x"));
        assert_eq!(find(&serde_json::json!([1, {"k": 2}])), None);
        assert_eq!(refuse(&u).unwrap_err().to_string(), "'x' is undefined");
        assert_eq!(
            message("'dict object' has no attribute 'y'"),
            "'dict object' has no attribute 'y'"
        );
    }
}
