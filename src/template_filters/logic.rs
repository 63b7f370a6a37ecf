//! Value filters: Ansible's `bool`, `ternary`, `type_debug`, `mandatory`, and Jinja2's
//! `default` for the cases tera's own cannot take (jinja-contract item 2).
use serde_json::Value;
use tera::Result;

use super::args::{err, Bound};
use super::pystr;
use super::pyval;
use super::undefined;

/// ansible-core 2.19's `bool` filter: true for True, 1, 1.0 and the strings
/// y/yes/on/1/true/t (any case, trimmed); anything else is false.
pub fn ansible_bool(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => {
            matches!(
                s.trim().to_lowercase().as_str(),
                "y" | "yes" | "on" | "1" | "true" | "t"
            )
        }
        _ => false,
    }
}

pub fn bool(v: &Value, _: &Bound) -> Result<Value> {
    Ok(Value::Bool(ansible_bool(v)))
}

/// `ternary(true_val, false_val, none_val=None)`: Python truthiness of the operand.
pub fn ternary(v: &Value, b: &Bound) -> Result<Value> {
    if v.is_null() {
        if let Some(n) = b.get(2).filter(|n| !n.is_null()) {
            return Ok(n.clone());
        }
    }
    Ok(if pyval::truthy(v) { b.val(0) } else { b.val(1) })
}

pub fn type_debug(v: &Value, _: &Bound) -> Result<Value> {
    Ok(Value::String(pyval::type_name(v).to_string()))
}

/// `mandatory(msg=None)`: the value, or an error when undefined.
pub fn mandatory(v: &Value, b: &Bound) -> Result<Value> {
    if let Some(desc) = undefined::description(v) {
        return Err(match b.get(0).filter(|m| !m.is_null()) {
            Some(m) => tera::Error::msg(pystr::str(m)),
            None => tera::Error::msg(format!(
                "Mandatory variable {} not defined.",
                pystr::repr_str(desc)
            )),
        });
    }
    Ok(v.clone())
}

/// `__jx_default(a0=value, a1=default, a2=boolean)`: the default when the value is undefined
/// (or falsy, with the boolean flag).
pub fn jx_default(v: &Value, b: &Bound) -> Result<Value> {
    // Filter form: operand is the value, a0.. the arguments; function-like form: a0 = value.
    let (value, default, boolean) = (
        v,
        b.get(0).cloned().unwrap_or(Value::String(String::new())),
        b.flag(1, false),
    );
    if undefined::is_undefined(value) || (boolean && !pyval::truthy(value)) {
        return Ok(default);
    }
    Ok(value.clone())
}

/// The output filter `__jx_str` (contract item 7): Python `str()`; undefined is an error.
pub fn jx_str(v: &Value, b: &Bound) -> Result<Value> {
    // Ansible's finalize refuses a result that holds an undefined value, even nested.
    if let Some(d) = undefined::find(v) {
        return Err(err(b.name, undefined::message(d)));
    }
    // Ansible's finalize: a None printed in text is nothing (inside a list it stays `None`).
    if v.is_null() {
        return Ok(Value::String(String::new()));
    }
    Ok(Value::String(pystr::str(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bool_like_ansible_2_19() {
        for t in [
            json!("yes"),
            json!(" On "),
            json!("T"),
            json!(1),
            json!(1.0),
            json!(true),
        ] {
            assert!(ansible_bool(&t), "{t}");
        }
        // 2.19 coerces these to False (with a deprecation warning).
        for f in [json!("foo"), json!(2), json!(null), json!("no"), json!([1])] {
            assert!(!ansible_bool(&f), "{f}");
        }
    }
}
