//! Jinja2's higher-order filters: `map` (attribute= or a filter name with its arguments),
//! `select`/`reject` (a test name with its arguments), `selectattr`/`rejectattr`; and
//! `__jx_test(obj=E, name="t", a0=..)`, a test applied to any expression (tera's `is` takes
//! only a variable).
use serde_json::Value;
use tera::Result;

use super::args::{err, Bound};
use super::pyval;
use super::undefined;

fn seq(b: &Bound, v: &Value) -> Result<Vec<Value>> {
    pyval::iter(v).map_err(|e| err(b.name, e))
}

fn short(name: &str) -> &str {
    for p in [
        "ansible.builtin.",
        "ansible.utils.",
        "community.general.",
        "ansible.netcommon.",
    ] {
        if let Some(s) = name.strip_prefix(p) {
            return s;
        }
    }
    name
}

/// `map(attribute='a.b', default=None)` or `map('filter', *args, **kwargs)`.
pub fn map(v: &Value, b: &Bound) -> Result<Value> {
    let items = seq(b, v)?;
    if let Some(a) = b.kw.get("attribute") {
        let a = pyval_path_key(a);
        let default = b.kw.get("default");
        return Ok(Value::Array(
            items
                .iter()
                .map(|x| {
                    pyval::path(x, &a)
                        .cloned()
                        .or_else(|| default.cloned())
                        .unwrap_or_else(|| {
                            undefined::undefined(format!("'dict object' has no attribute '{a}'"))
                        })
                })
                .collect(),
        ));
    }
    let Some((name, rest)) = b.extra.split_first() else {
        return Err(err(b.name, "map requires a filter name or attribute="));
    };
    let name = name
        .as_str()
        .ok_or_else(|| err(b.name, "the filter name must be a string"))?;
    let mut out = Vec::with_capacity(items.len());
    for x in &items {
        out.push(super::call_filter(short(name), x, rest, &b.kw)?);
    }
    Ok(Value::Array(out))
}

fn pyval_path_key(a: &Value) -> String {
    match a {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn select_impl(v: &Value, b: &Bound, attr: bool, keep: bool) -> Result<Value> {
    let items = seq(b, v)?;
    let (attribute, rest) = if attr {
        match b.extra.split_first() {
            Some((a, r)) => (Some(pyval_path_key(a)), r),
            None => return Err(err(b.name, "missing the attribute name")),
        }
    } else {
        (None, &b.extra[..])
    };
    let mut out = Vec::new();
    for x in items {
        let probe: Option<Value> = match &attribute {
            Some(a) => pyval::path(&x, a).cloned(),
            None => Some(x.clone()),
        };
        let tests_definition = rest
            .first()
            .and_then(Value::as_str)
            .is_some_and(|t| matches!(short(t), "defined" | "undefined"));
        if probe.is_none() && !rest.is_empty() && !tests_definition {
            // ansible-core 2.19: testing a missing attribute makes the whole result undefined
            // (an error where it is used, the default under `| default(...)`).
            return Ok(undefined::undefined(format!(
                "object of type '{}' has no attribute '{}'",
                pyval::type_name(&x),
                attribute.as_deref().unwrap_or_default()
            )));
        }
        let ok = match rest.split_first() {
            None => probe.as_ref().is_some_and(pyval::truthy),
            Some((t, targs)) => {
                let t = t
                    .as_str()
                    .ok_or_else(|| err(b.name, "the test name must be a string"))?;
                super::call_test(short(t), probe.as_ref(), targs)?
            }
        };
        if ok == keep {
            out.push(x);
        }
    }
    Ok(Value::Array(out))
}

pub fn select(v: &Value, b: &Bound) -> Result<Value> {
    select_impl(v, b, false, true)
}
pub fn reject(v: &Value, b: &Bound) -> Result<Value> {
    select_impl(v, b, false, false)
}
pub fn selectattr(v: &Value, b: &Bound) -> Result<Value> {
    select_impl(v, b, true, true)
}
pub fn rejectattr(v: &Value, b: &Bound) -> Result<Value> {
    select_impl(v, b, true, false)
}

/// `__jx_test(obj=value, name="test", a0=.., a1=..)`: `value is test(a0, a1)`.
pub fn jx_test(b: &Bound) -> Result<Value> {
    let name = b.str(1)?;
    super::call_test(short(&name), b.get(0), &b.extra).map(Value::Bool)
}
