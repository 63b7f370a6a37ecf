//! The tera functions that belong to the lowering itself (the library of
//! `src/template_filters/` provides every other `__jx_*` helper the lowering emits):
//! `__jx_none` (None), `__jx_iter`/`__jx_pairs` (Python iteration of a dict or string in a
//! `for`), `__jx_pow` (`**`) and `__jx_undef` (the undefined value of a name `default` guards).
use std::collections::HashMap;

use serde_json::Value;
use tera::{Result, Tera};

use crate::template_filters::{pystr, undefined};

type Args = HashMap<String, Value>;

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
        let what = a
            .get("a0")
            .map_or_else(|| "a value".to_string(), pystr::str);
        Ok(undefined::undefined(what))
    });
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

/// Python's `**`: an int for int operands and a non-negative exponent, else a float.
fn pow(a: &Args) -> Result<Value> {
    let (x, y) = (arg(a, "a0")?, arg(a, "a1")?);
    if let (Some(b), Some(e)) = (x.as_i64(), y.as_i64()) {
        if let Some(r) = u32::try_from(e).ok().and_then(|e| b.checked_pow(e)) {
            return Ok(Value::from(r));
        }
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(b), Some(e)) => Ok(Value::from(b.powf(e))),
        _ => Err(tera::Error::msg(format!(
            "unsupported operand type(s) for ** or pow(): {} and {}",
            pystr::repr(x),
            pystr::repr(y)
        ))),
    }
}
