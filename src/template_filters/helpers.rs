//! The functions the Jinja2 lowering calls for what tera's operators do differently
//! (jinja-contract item 6): `+`, `//`, `%`, `<`/`>`, subscripts, slices, `~`, dict literals, and
//! `default` on an expression.
use serde_json::{Map, Value};
use tera::Result;

use super::args::{err, Bound};
use super::dicts::getitem;
use super::lists::add;
use super::pystr;
use super::pyval::{self, float_value, int_value};
use super::strings::percent_format;
use super::undefined;

fn defined2(b: &Bound) -> Result<(Value, Value)> {
    let (x, y) = (b.val(0), b.val(1));
    undefined::refuse(&x)?;
    undefined::refuse(&y)?;
    Ok((x, y))
}

fn type_err(op: &str, a: &Value, b: &Value) -> String {
    format!(
        "unsupported operand type(s) for {op}: '{}' and '{}'",
        pyval::type_name(a),
        pyval::type_name(b)
    )
}

/// `a + b`.
pub fn jx_add(b: &Bound) -> Result<Value> {
    let (x, y) = defined2(b)?;
    add(&x, &y).map_err(tera::Error::msg)
}

fn ints(x: &Value, y: &Value) -> Option<(i64, i64)> {
    if x.is_f64() || y.is_f64() {
        return None;
    }
    Some((pyval::as_i64(x)?, pyval::as_i64(y)?))
}

/// `a // b`: Python floor division.
pub fn jx_floordiv(b: &Bound) -> Result<Value> {
    let (x, y) = defined2(b)?;
    if let Some((i, j)) = ints(&x, &y) {
        if j == 0 {
            return Err(tera::Error::msg("integer division or modulo by zero"));
        }
        let q = i / j;
        return Ok(int_value(if i % j != 0 && ((i < 0) != (j < 0)) {
            q - 1
        } else {
            q
        }));
    }
    match (pyval::as_f64(&x), pyval::as_f64(&y)) {
        (Some(_), Some(0.0)) => Err(tera::Error::msg("float floor division by zero")),
        (Some(p), Some(q)) => Ok(float_value((p / q).floor())),
        _ => Err(tera::Error::msg(type_err("//", &x, &y))),
    }
}

/// `a % b`: printf-style formatting on a string, else Python's modulo (sign of the divisor).
pub fn jx_mod(b: &Bound) -> Result<Value> {
    let (x, y) = defined2(b)?;
    if let Value::String(fmt) = &x {
        return percent_format(fmt, &y)
            .map(Value::String)
            .map_err(tera::Error::msg);
    }
    if let Some((i, j)) = ints(&x, &y) {
        if j == 0 {
            return Err(tera::Error::msg("integer division or modulo by zero"));
        }
        let r = i % j;
        return Ok(int_value(if r != 0 && (r < 0) != (j < 0) {
            r + j
        } else {
            r
        }));
    }
    match (pyval::as_f64(&x), pyval::as_f64(&y)) {
        (Some(_), Some(0.0)) => Err(tera::Error::msg("float modulo")),
        (Some(p), Some(q)) => {
            let r = p % q;
            Ok(float_value(if r != 0.0 && (r < 0.0) != (q < 0.0) {
                r + q
            } else {
                r
            }))
        }
        _ => Err(tera::Error::msg(type_err("%", &x, &y))),
    }
}

/// `a < b` and friends with Python's ordering (`op` one of `< <= > >= == !=`).
pub fn jx_cmp(b: &Bound) -> Result<Value> {
    let (x, y) = defined2(b)?;
    let op = b.str(2)?;
    use std::cmp::Ordering::*;
    let r = match op.as_str() {
        "==" => pyval::eq(&x, &y),
        "!=" => !pyval::eq(&x, &y),
        _ => {
            let o = pyval::cmp(&x, &y)
                .map_err(|e| tera::Error::msg(e.replace("'<'", &format!("'{op}'"))))?;
            match op.as_str() {
                "<" => o == Less,
                "<=" => o != Greater,
                ">" => o == Greater,
                ">=" => o != Less,
                other => return Err(err(b.name, format!("unknown operator '{other}'"))),
            }
        }
    };
    Ok(Value::Bool(r))
}

/// `obj[key]`: negative indexes count from the end; a missing key is the undefined sentinel, and
/// so is any item of an undefined object (Ansible's undefined chains: `x.y[k] is defined` is
/// false when `x` has no `y`; using the result elsewhere is still an error).
pub fn jx_getitem(b: &Bound) -> Result<Value> {
    let obj = b.val(0);
    if undefined::is_undefined(&obj) {
        return Ok(obj);
    }
    let key = b.val(1);
    undefined::refuse(&key)?;
    Ok(getitem(&obj, &key))
}

/// Python's slice indices for a sequence of `len` items.
pub fn slice_indices(len: usize, start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<usize> {
    let n = len as i64;
    let clamp = |i: i64, lo: i64, hi: i64| i.clamp(lo, hi);
    let norm = |i: i64| if i < 0 { i + n } else { i };
    let mut out = Vec::new();
    if step > 0 {
        let s = clamp(start.map_or(0, norm), 0, n);
        let e = clamp(stop.map_or(n, norm), 0, n);
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        let s = clamp(start.map_or(n - 1, norm), -1, n - 1);
        let e = clamp(stop.map_or(-1, norm), -1, n - 1);
        let e = if stop.is_some_and(|x| x < -n) { -1 } else { e };
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    out
}

/// `obj[start:stop:step]`.
pub fn jx_slice(b: &Bound) -> Result<Value> {
    let obj = b.val(0);
    undefined::refuse(&obj)?;
    let step = b.opt_int(3)?.unwrap_or(1);
    if step == 0 {
        return Err(tera::Error::msg("slice step cannot be zero"));
    }
    let (start, stop) = (b.opt_int(1)?, b.opt_int(2)?);
    match &obj {
        Value::Array(a) => Ok(Value::Array(
            slice_indices(a.len(), start, stop, step)
                .into_iter()
                .map(|i| a[i].clone())
                .collect(),
        )),
        Value::String(s) => {
            let cs: Vec<char> = s.chars().collect();
            Ok(Value::String(
                slice_indices(cs.len(), start, stop, step)
                    .into_iter()
                    .map(|i| cs[i])
                    .collect(),
            ))
        }
        other => Err(tera::Error::msg(format!(
            "'{}' object is not subscriptable",
            pyval::type_name(other)
        ))),
    }
}

/// `a ~ b`: Python `str()` of each, concatenated.
pub fn jx_concat(b: &Bound) -> Result<Value> {
    let (x, y) = defined2(b)?;
    Ok(Value::String(format!(
        "{}{}",
        pystr::str(&x),
        pystr::str(&y)
    )))
}

/// A dict literal: `__jx_dict(k0=.., v0=.., k1=.., v1=..)`, in index order.
pub fn jx_dict(b: &Bound) -> Result<Value> {
    let mut idx: Vec<usize> =
        b.kw.keys()
            .filter_map(|k| k.strip_prefix('k').and_then(|n| n.parse().ok()))
            .collect();
    idx.sort_unstable();
    let mut m = Map::new();
    for i in idx {
        let k = b.kw.get(&format!("k{i}")).cloned().unwrap_or(Value::Null);
        let v = b.kw.get(&format!("v{i}")).cloned().unwrap_or(Value::Null);
        undefined::refuse(&k)?;
        m.insert(pystr::str(&k), v);
    }
    Ok(Value::Object(m))
}

/// `dict(a=1, b=2)`.
pub fn dict(b: &Bound) -> Result<Value> {
    Ok(Value::Object(b.kw.clone()))
}

/// A list or tuple literal holding values tera cannot write: `__jx_list(a0, a1, ...)`.
pub fn jx_list(b: &Bound) -> Result<Value> {
    Ok(Value::Array(b.extra.clone()))
}

/// `range(stop)` / `range(start, stop[, step])`.
pub fn range(b: &Bound) -> Result<Value> {
    let kw_int = |k: &str, d: i64| -> Result<i64> {
        match b.kw.get(k) {
            None => Ok(d),
            Some(v) => {
                pyval::as_i64(v).ok_or_else(|| err(b.name, format!("`{k}` must be an integer")))
            }
        }
    };
    let (start, stop, step) = match (b.opt_int(0)?, b.opt_int(1)?, b.opt_int(2)?) {
        // tera's own form: range(end=5, start=0, step_by=1)
        (None, None, None) if b.kw.contains_key("end") => (
            kw_int("start", 0)?,
            kw_int("end", 0)?,
            kw_int("step_by", 1)?,
        ),
        (Some(stop), None, _) => (0, stop, 1),
        (Some(start), Some(stop), step) => (start, stop, step.unwrap_or(1)),
        _ => return Err(err(b.name, "expects 1 to 3 integers")),
    };
    if step == 0 {
        return Err(err(b.name, "range() arg 3 must not be zero"));
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(int_value(i));
        if out.len() > 100_000 {
            return Err(err(b.name, "range too big (more than 100000 items)"));
        }
        i += step;
    }
    Ok(Value::Array(out))
}

/// The function form `__jx_default(a0=value, a1=default, a2=boolean)`.
pub fn jx_default(b: &Bound) -> Result<Value> {
    let value = b.val(0);
    let default = b.get(1).cloned().unwrap_or(Value::String(String::new()));
    if undefined::is_undefined(&value) || (b.flag(2, false) && !pyval::truthy(&value)) {
        return Ok(default);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_slices() {
        // Python: list(range(5))[1:], [::-1], [-2:], [1:4:2], [:-1], [10:]
        assert_eq!(slice_indices(5, Some(1), None, 1), [1, 2, 3, 4]);
        assert_eq!(slice_indices(5, None, None, -1), [4, 3, 2, 1, 0]);
        assert_eq!(slice_indices(5, Some(-2), None, 1), [3, 4]);
        assert_eq!(slice_indices(5, Some(1), Some(4), 2), [1, 3]);
        assert_eq!(slice_indices(5, None, Some(-1), 1), [0, 1, 2, 3]);
        assert!(slice_indices(5, Some(10), None, 1).is_empty());
    }
}
