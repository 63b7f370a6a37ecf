//! Testers (`x is t(args)`): Jinja2 3.1's and ansible-core 2.19's, including `defined` and
//! `undefined` that also see the undefined sentinel, the registered-result tests and `version`.
use serde_json::Value;
use tera::Result;

use super::args::{err, Bound};
use super::logic::ansible_bool;
use super::pystr;
use super::pyval::{self, eq};
use super::regex;
use super::undefined;
use super::version;

/// The tested value: None when tera found no such variable.
pub type Tested<'a> = Option<&'a Value>;

fn val<'a>(b: &Bound, v: Tested<'a>) -> Result<&'a Value> {
    match v {
        None => Err(err(b.name, "the tested value is undefined")),
        Some(x) => {
            if let Some(d) = undefined::description(x) {
                return Err(tera::Error::msg(undefined::message(d)));
            }
            Ok(x)
        }
    }
}

pub fn defined(v: Tested, _: &Bound) -> Result<bool> {
    Ok(v.is_some_and(|x| !undefined::is_undefined(x)))
}
pub fn undefined_(v: Tested, b: &Bound) -> Result<bool> {
    defined(v, b).map(|d| !d)
}

fn result_map<'a>(b: &Bound, v: Tested<'a>) -> Result<&'a serde_json::Map<String, Value>> {
    val(b, v)?.as_object().ok_or_else(|| {
        err(
            b.name,
            format!("The '{}' test expects a dictionary", b.name),
        )
    })
}

fn flag_of(m: &serde_json::Map<String, Value>, k: &str, default: bool) -> bool {
    m.get(k).map_or(default, pyval::truthy)
}

pub fn failed(v: Tested, b: &Bound) -> Result<bool> {
    Ok(flag_of(result_map(b, v)?, "failed", false))
}
pub fn succeeded(v: Tested, b: &Bound) -> Result<bool> {
    Ok(!flag_of(result_map(b, v)?, "failed", false))
}
pub fn changed(v: Tested, b: &Bound) -> Result<bool> {
    let m = result_map(b, v)?;
    if let Some(c) = m.get("changed") {
        return Ok(pyval::truthy(c));
    }
    Ok(m.get("results")
        .and_then(Value::as_array)
        .is_some_and(|rs| {
            rs.iter()
                .any(|r| r.get("changed").is_some_and(pyval::truthy))
        }))
}
pub fn skipped(v: Tested, b: &Bound) -> Result<bool> {
    Ok(flag_of(result_map(b, v)?, "skipped", false))
}
pub fn finished(v: Tested, b: &Bound) -> Result<bool> {
    Ok(result_map(b, v)?
        .get("finished")
        .is_none_or(|f| pyval::eq(f, &Value::from(1))))
}
pub fn started(v: Tested, b: &Bound) -> Result<bool> {
    Ok(result_map(b, v)?
        .get("started")
        .is_some_and(|f| pyval::eq(f, &Value::from(1))))
}
pub fn unreachable(v: Tested, b: &Bound) -> Result<bool> {
    Ok(flag_of(result_map(b, v)?, "unreachable", false))
}
pub fn reachable(v: Tested, b: &Bound) -> Result<bool> {
    unreachable(v, b).map(|u| !u)
}

pub fn string(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)?.is_string())
}
pub fn number(v: Tested, b: &Bound) -> Result<bool> {
    Ok(matches!(val(b, v)?, Value::Number(_) | Value::Bool(_)))
}
pub fn integer(v: Tested, b: &Bound) -> Result<bool> {
    Ok(matches!(val(b, v)?, Value::Number(n) if !n.is_f64()))
}
pub fn float(v: Tested, b: &Bound) -> Result<bool> {
    Ok(matches!(val(b, v)?, Value::Number(n) if n.is_f64()))
}
pub fn boolean(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)?.is_boolean())
}
pub fn true_(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)? == &Value::Bool(true))
}
pub fn false_(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)? == &Value::Bool(false))
}
pub fn none(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)?.is_null())
}
pub fn mapping(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)?.is_object())
}
pub fn sequence(v: Tested, b: &Bound) -> Result<bool> {
    Ok(matches!(
        val(b, v)?,
        Value::Array(_) | Value::Object(_) | Value::String(_)
    ))
}
pub fn iterable(v: Tested, b: &Bound) -> Result<bool> {
    sequence(v, b)
}
pub fn callable(v: Tested, b: &Bound) -> Result<bool> {
    val(b, v).map(|_| false)
}
pub fn escaped(v: Tested, b: &Bound) -> Result<bool> {
    val(b, v).map(|_| false)
}

fn int_of(b: &Bound, v: &Value) -> Result<i64> {
    pyval::as_i64(v).ok_or_else(|| {
        err(
            b.name,
            format!("expects an integer, got {}", pyval::type_name(v)),
        )
    })
}
pub fn odd(v: Tested, b: &Bound) -> Result<bool> {
    Ok(int_of(b, val(b, v)?)?.rem_euclid(2) == 1)
}
pub fn even(v: Tested, b: &Bound) -> Result<bool> {
    Ok(int_of(b, val(b, v)?)?.rem_euclid(2) == 0)
}
pub fn divisibleby(v: Tested, b: &Bound) -> Result<bool> {
    let n = int_of(b, &b.val(0))?;
    if n == 0 {
        return Err(err(b.name, "integer division or modulo by zero"));
    }
    Ok(int_of(b, val(b, v)?)?.rem_euclid(n) == 0)
}

pub fn lower(v: Tested, b: &Bound) -> Result<bool> {
    let s = pystr::str(val(b, v)?);
    Ok(s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_uppercase))
}
pub fn upper(v: Tested, b: &Bound) -> Result<bool> {
    let s = pystr::str(val(b, v)?);
    Ok(s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_lowercase))
}

fn compare(b: &Bound, v: Tested, want: &[std::cmp::Ordering]) -> Result<bool> {
    let o = pyval::cmp(val(b, v)?, &b.val(0)).map_err(|e| err(b.name, e))?;
    Ok(want.contains(&o))
}
pub fn eq_(v: Tested, b: &Bound) -> Result<bool> {
    Ok(eq(val(b, v)?, &b.val(0)))
}
pub fn ne(v: Tested, b: &Bound) -> Result<bool> {
    Ok(!eq(val(b, v)?, &b.val(0)))
}
pub fn lt(v: Tested, b: &Bound) -> Result<bool> {
    compare(b, v, &[std::cmp::Ordering::Less])
}
pub fn le(v: Tested, b: &Bound) -> Result<bool> {
    compare(b, v, &[std::cmp::Ordering::Less, std::cmp::Ordering::Equal])
}
pub fn gt(v: Tested, b: &Bound) -> Result<bool> {
    compare(b, v, &[std::cmp::Ordering::Greater])
}
pub fn ge(v: Tested, b: &Bound) -> Result<bool> {
    compare(
        b,
        v,
        &[std::cmp::Ordering::Greater, std::cmp::Ordering::Equal],
    )
}
/// `sameas`: Python identity; for JSON data that is equality of the same type.
pub fn sameas(v: Tested, b: &Bound) -> Result<bool> {
    let (x, y) = (val(b, v)?, b.val(0));
    Ok(pyval::type_name(x) == pyval::type_name(&y) && eq(x, &y))
}

pub fn in_(v: Tested, b: &Bound) -> Result<bool> {
    pyval::contains(&b.val(0), val(b, v)?).map_err(|e| err(b.name, e))
}
pub fn contains(v: Tested, b: &Bound) -> Result<bool> {
    pyval::contains(val(b, v)?, &b.val(0)).map_err(|e| err(b.name, e))
}
fn all_in(b: &Bound, xs: &Value, ys: &Value) -> Result<bool> {
    let xs = pyval::iter(xs).map_err(|e| err(b.name, e))?;
    let ys = pyval::iter(ys).map_err(|e| err(b.name, e))?;
    Ok(xs.iter().all(|x| ys.iter().any(|y| eq(x, y))))
}
pub fn subset(v: Tested, b: &Bound) -> Result<bool> {
    all_in(b, val(b, v)?, &b.val(0))
}
pub fn superset(v: Tested, b: &Bound) -> Result<bool> {
    all_in(b, &b.val(0), val(b, v)?)
}

pub fn all(v: Tested, b: &Bound) -> Result<bool> {
    Ok(pyval::iter(val(b, v)?)
        .map_err(|e| err(b.name, e))?
        .iter()
        .all(pyval::truthy))
}
pub fn any(v: Tested, b: &Bound) -> Result<bool> {
    Ok(pyval::iter(val(b, v)?)
        .map_err(|e| err(b.name, e))?
        .iter()
        .any(pyval::truthy))
}

/// Ansible's `truthy(convert_bool=False)`.
pub fn truthy(v: Tested, b: &Bound) -> Result<bool> {
    let x = val(b, v)?;
    if b.flag(0, false) && (x.is_string() || x.is_boolean() || x.is_number()) {
        return Ok(ansible_bool(x));
    }
    Ok(pyval::truthy(x))
}
pub fn falsy(v: Tested, b: &Bound) -> Result<bool> {
    truthy(v, b).map(|t| !t)
}
pub fn nan(v: Tested, b: &Bound) -> Result<bool> {
    Ok(val(b, v)?.as_f64().is_some_and(f64::is_nan))
}

fn re_test(v: Tested, b: &Bound, anchored: bool) -> Result<bool> {
    let x = val(b, v)?;
    regex::test(
        x,
        &b.str_or(0, "")?,
        b.flag(1, false),
        b.flag(2, false),
        anchored,
    )
    .map_err(|e| err(b.name, e))
}
pub fn match_(v: Tested, b: &Bound) -> Result<bool> {
    re_test(v, b, true)
}
pub fn search(v: Tested, b: &Bound) -> Result<bool> {
    re_test(v, b, false)
}
pub fn regex_(v: Tested, b: &Bound) -> Result<bool> {
    let anchored = match b.str_or(3, "search")?.as_str() {
        "search" => false,
        "match" => true,
        other => return Err(err(b.name, format!("unsupported match_type '{other}'"))),
    };
    re_test(v, b, anchored)
}

/// `version(version, operator='eq', strict=False, version_type=None)`.
pub fn version(v: Tested, b: &Bound) -> Result<bool> {
    let x = pystr::str(val(b, v)?);
    let strict = b.flag(2, false);
    let vt = b.get(3).and_then(Value::as_str);
    if b.get(2).is_some_and(|s| !s.is_null()) && vt.is_some() {
        return Err(err(
            b.name,
            "Cannot specify both 'strict' and 'version_type'",
        ));
    }
    version::compare(&x, &b.str(0)?, &b.str_or(1, "eq")?, strict, vt).map_err(|e| err(b.name, e))
}

fn path_of(b: &Bound, v: Tested) -> Result<String> {
    Ok(pystr::str(val(b, v)?))
}
/// Path tests look at the control node, as Ansible's do.
pub fn is_abs(v: Tested, b: &Bound) -> Result<bool> {
    Ok(path_of(b, v)?.starts_with('/'))
}
pub fn exists(v: Tested, b: &Bound) -> Result<bool> {
    Ok(std::path::Path::new(&path_of(b, v)?).exists())
}
pub fn is_file(v: Tested, b: &Bound) -> Result<bool> {
    Ok(std::path::Path::new(&path_of(b, v)?).is_file())
}
pub fn is_dir(v: Tested, b: &Bound) -> Result<bool> {
    Ok(std::path::Path::new(&path_of(b, v)?).is_dir())
}
pub fn is_link(v: Tested, b: &Bound) -> Result<bool> {
    Ok(std::path::Path::new(&path_of(b, v)?).is_symlink())
}
