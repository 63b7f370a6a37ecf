//! Sequence filters (Jinja2 3.1 builtins and ansible-core's mathstuff).
use std::cmp::Ordering;

use serde_json::Value;
use tera::Result;

use super::args::{err, Bound};
use super::pystr;
use super::pyval::{self, cmp, eq, iter};
use super::undefined;

fn items(b: &Bound, v: &Value) -> Result<Vec<Value>> {
    iter(v).map_err(|e| err(b.name, e))
}

fn list(v: Vec<Value>) -> Result<Value> {
    Ok(Value::Array(v))
}

/// Jinja2's attribute getter: dotted path, integer parts as indexes.
fn attr<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    pyval::path(v, path)
}

/// The sort key of Jinja2's `sort`/`unique`/`min`/`max`: lowercased strings unless
/// case-sensitive.
fn key(v: &Value, case_sensitive: bool) -> Value {
    match v {
        Value::String(s) if !case_sensitive => Value::String(s.to_lowercase()),
        other => other.clone(),
    }
}

fn keyed(v: &Value, attribute: Option<&str>, cs: bool) -> Value {
    let base = match attribute {
        Some(a) => attr(v, a).cloned().unwrap_or(Value::Null),
        None => v.clone(),
    };
    key(&base, cs)
}

fn sort_by_key(b: &Bound, xs: &mut [Value], f: impl Fn(&Value) -> Value) -> Result<()> {
    let mut failure = None;
    xs.sort_by(|x, y| {
        cmp(&f(x), &f(y)).unwrap_or_else(|e| {
            failure.get_or_insert(e);
            Ordering::Equal
        })
    });
    failure.map_or(Ok(()), |e| Err(err(b.name, e)))
}

/// Jinja2 answers Undefined for the first/last/min/max of an empty sequence.
fn empty(what: &str) -> Value {
    undefined::undefined(what)
}

pub fn first(v: &Value, b: &Bound) -> Result<Value> {
    Ok(items(b, v)?
        .into_iter()
        .next()
        .unwrap_or_else(|| empty("No first item, sequence was empty.")))
}
pub fn last(v: &Value, b: &Bound) -> Result<Value> {
    Ok(items(b, v)?
        .pop()
        .unwrap_or_else(|| empty("No last item, sequence was empty.")))
}
pub fn length(v: &Value, b: &Bound) -> Result<Value> {
    pyval::len(v)
        .map(|n| pyval::int_value(n as i64))
        .map_err(|e| err(b.name, e))
}
pub fn to_list(v: &Value, b: &Bound) -> Result<Value> {
    list(items(b, v)?)
}
pub fn reverse(v: &Value, b: &Bound) -> Result<Value> {
    if let Value::String(s) = v {
        return Ok(Value::String(s.chars().rev().collect()));
    }
    let mut xs = items(b, v)?;
    xs.reverse();
    list(xs)
}

/// Jinja2's `join(d='', attribute=None)`: items as `str()`.
pub fn join(v: &Value, b: &Bound) -> Result<Value> {
    let sep = b.str_or(0, "")?;
    let attribute = b.get(1).and_then(Value::as_str);
    let xs = items(b, v)?;
    let mut parts: Vec<String> = Vec::with_capacity(xs.len());
    for x in &xs {
        // str() of an undefined item is an error, as in Jinja2.
        undefined::refuse(x)?;
        parts.push(match attribute {
            Some(a) => attr(x, a).map(pystr::str).unwrap_or_default(),
            None => pystr::str(x),
        });
    }
    Ok(Value::String(parts.join(&sep)))
}

/// Jinja2's `sort(reverse=False, case_sensitive=False, attribute=None)`; the attribute may
/// list several, comma-separated.
pub fn sort(v: &Value, b: &Bound) -> Result<Value> {
    let mut xs = items(b, v)?;
    let rev = b.flag(0, false);
    let cs = b.flag(1, false);
    let attrs: Vec<String> = match b.get(2) {
        Some(Value::String(a)) => a.split(',').map(|s| s.trim().to_string()).collect(),
        Some(Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    };
    sort_by_key(b, &mut xs, |x| {
        if attrs.is_empty() {
            key(x, cs)
        } else {
            Value::Array(attrs.iter().map(|a| keyed(x, Some(a), cs)).collect())
        }
    })?;
    if rev {
        xs.reverse();
    }
    list(xs)
}

/// `unique(case_sensitive=False, attribute=None)`: first occurrence kept.
pub fn unique(v: &Value, b: &Bound) -> Result<Value> {
    let cs = b.flag(0, false);
    let attribute = b.get(1).and_then(Value::as_str);
    let mut seen: Vec<Value> = Vec::new();
    let mut outv = Vec::new();
    for x in items(b, v)? {
        let k = keyed(&x, attribute, cs);
        if !seen.iter().any(|s| eq(s, &k)) {
            seen.push(k);
            outv.push(x);
        }
    }
    list(outv)
}

fn extreme(v: &Value, b: &Bound, want: Ordering) -> Result<Value> {
    let cs = b.flag(0, false);
    let attribute = b.get(1).and_then(Value::as_str);
    let mut best: Option<(Value, Value)> = None;
    for x in items(b, v)? {
        let k = keyed(&x, attribute, cs);
        let better = match &best {
            None => true,
            Some((bk, _)) => cmp(&k, bk).map_err(|e| err(b.name, e))? == want,
        };
        if better {
            best = Some((k, x));
        }
    }
    Ok(best.map_or_else(
        || empty("No aggregated item, sequence was empty."),
        |(_, x)| x,
    ))
}
pub fn min(v: &Value, b: &Bound) -> Result<Value> {
    extreme(v, b, Ordering::Less)
}
pub fn max(v: &Value, b: &Bound) -> Result<Value> {
    extreme(v, b, Ordering::Greater)
}

/// `sum(attribute=None, start=0)`.
pub fn sum(v: &Value, b: &Bound) -> Result<Value> {
    let attribute = b.get(0).and_then(Value::as_str);
    let mut acc = b.get(1).cloned().unwrap_or(pyval::int_value(0));
    for x in items(b, v)? {
        let x = match attribute {
            Some(a) => attr(&x, a).cloned().unwrap_or(Value::Null),
            None => x,
        };
        acc = add(&acc, &x).map_err(|e| err(b.name, e))?;
    }
    Ok(acc)
}

/// Python's `+`: numbers add, strings and lists concatenate.
pub fn add(a: &Value, b: &Value) -> std::result::Result<Value, String> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(Value::String(format!("{x}{y}"))),
        (Value::Array(x), Value::Array(y)) => {
            Ok(Value::Array(x.iter().chain(y).cloned().collect()))
        }
        _ => match (pyval::as_i64(a), pyval::as_i64(b), a.is_f64() || b.is_f64()) {
            (Some(x), Some(y), false) => x
                .checked_add(y)
                .map(pyval::int_value)
                .ok_or_else(|| "integer overflow".to_string()),
            _ => match (pyval::as_f64(a), pyval::as_f64(b)) {
                (Some(x), Some(y)) => Ok(pyval::float_value(x + y)),
                _ => Err(format!(
                    "unsupported operand type(s) for +: '{}' and '{}'",
                    pyval::type_name(a),
                    pyval::type_name(b)
                )),
            },
        },
    }
}

/// `batch(linecount, fill_with=None)`.
pub fn batch(v: &Value, b: &Bound) -> Result<Value> {
    let n = b.int_or(0, 1)?.max(1) as usize;
    let fill = b.get(1).filter(|f| !f.is_null());
    let mut outv = Vec::new();
    for chunk in items(b, v)?.chunks(n) {
        let mut c = chunk.to_vec();
        if let Some(f) = fill {
            c.resize(n, f.clone());
        }
        outv.push(Value::Array(c));
    }
    list(outv)
}

/// Jinja2's `slice(slices, fill_with=None)`: `slices` columns.
pub fn slice(v: &Value, b: &Bound) -> Result<Value> {
    let xs = items(b, v)?;
    let slices = b.int_or(0, 1)?.max(1) as usize;
    let fill = b.get(1).filter(|f| !f.is_null());
    let per = xs.len() / slices;
    let extra = xs.len() % slices;
    let mut offset = 0;
    let mut outv = Vec::new();
    for i in 0..slices {
        let start = offset + i * per;
        if i < extra {
            offset += 1;
        }
        let end = offset + (i + 1) * per;
        let mut tmp = xs[start.min(xs.len())..end.min(xs.len())].to_vec();
        if let (Some(f), true) = (fill, i >= extra) {
            tmp.push(f.clone());
        }
        outv.push(Value::Array(tmp));
    }
    list(outv)
}

/// Ansible's `flatten(levels=None, skip_nulls=True)`.
pub fn flatten(v: &Value, b: &Bound) -> Result<Value> {
    fn go(xs: &[Value], levels: Option<i64>, skip: bool, out: &mut Vec<Value>) {
        for x in xs {
            match x {
                Value::Null | Value::String(_)
                    if skip && (x.is_null() || matches!(x.as_str(), Some("None" | "null"))) => {}
                Value::Array(inner) if levels != Some(0) => {
                    go(inner, levels.map(|l| l - 1), skip, out)
                }
                other => out.push(other.clone()),
            }
        }
    }
    let xs = items(b, v)?;
    let mut outv = Vec::new();
    go(&xs, b.opt_int(0)?, b.flag(1, true), &mut outv);
    list(outv)
}

fn uniq(xs: Vec<Value>) -> Vec<Value> {
    let mut outv: Vec<Value> = Vec::new();
    for x in xs {
        if !outv.iter().any(|y| eq(y, &x)) {
            outv.push(x);
        }
    }
    outv
}

/// Ansible builds `difference`/`intersect`/`symmetric_difference` from Python sets: small
/// non-negative integers come out ascending; other orders are Python's hash order, so the
/// first-seen order is as good.
fn set_order(mut xs: Vec<Value>) -> Vec<Value> {
    if xs.iter().all(|x| x.as_u64().is_some()) {
        xs.sort_by_key(|x| x.as_u64());
    }
    xs
}

fn two(v: &Value, b: &Bound) -> Result<(Vec<Value>, Vec<Value>)> {
    Ok((items(b, v)?, items(b, &b.val(0))?))
}
pub fn union(v: &Value, b: &Bound) -> Result<Value> {
    let (x, y) = two(v, b)?;
    list(uniq(x.into_iter().chain(y).collect()))
}
pub fn intersect(v: &Value, b: &Bound) -> Result<Value> {
    let (x, y) = two(v, b)?;
    list(set_order(uniq(
        x.into_iter()
            .filter(|i| y.iter().any(|j| eq(i, j)))
            .collect(),
    )))
}
pub fn difference(v: &Value, b: &Bound) -> Result<Value> {
    let (x, y) = two(v, b)?;
    list(set_order(uniq(
        x.into_iter()
            .filter(|i| !y.iter().any(|j| eq(i, j)))
            .collect(),
    )))
}
pub fn symmetric_difference(v: &Value, b: &Bound) -> Result<Value> {
    let (x, y) = two(v, b)?;
    let left: Vec<Value> = x
        .iter()
        .filter(|i| !y.iter().any(|j| eq(i, j)))
        .cloned()
        .collect();
    let right: Vec<Value> = y
        .iter()
        .filter(|i| !x.iter().any(|j| eq(i, j)))
        .cloned()
        .collect();
    list(set_order(uniq(left.into_iter().chain(right).collect())))
}

fn seqs(v: &Value, b: &Bound) -> Result<Vec<Vec<Value>>> {
    std::iter::once(v)
        .chain(b.extra.iter())
        .map(|x| items(b, x))
        .collect()
}

pub fn zip(v: &Value, b: &Bound) -> Result<Value> {
    let all = seqs(v, b)?;
    let n = all.iter().map(Vec::len).min().unwrap_or(0);
    list(
        (0..n)
            .map(|i| Value::Array(all.iter().map(|s| s[i].clone()).collect()))
            .collect(),
    )
}
pub fn zip_longest(v: &Value, b: &Bound) -> Result<Value> {
    let all = seqs(v, b)?;
    let fill = b.val(0);
    let n = all.iter().map(Vec::len).max().unwrap_or(0);
    list(
        (0..n)
            .map(|i| {
                Value::Array(
                    all.iter()
                        .map(|s| s.get(i).cloned().unwrap_or(fill.clone()))
                        .collect(),
                )
            })
            .collect(),
    )
}

/// `product(*others, repeat=1)`: the cartesian product, as lists.
pub fn product(v: &Value, b: &Bound) -> Result<Value> {
    let base = seqs(v, b)?;
    let repeat = b.int_or(0, 1)?.max(0) as usize;
    let mut pools = Vec::new();
    for _ in 0..repeat {
        pools.extend(base.iter().cloned());
    }
    let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
    for pool in pools {
        acc = acc
            .into_iter()
            .flat_map(|prefix| {
                pool.iter().map(move |x| {
                    let mut p = prefix.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    list(acc.into_iter().map(Value::Array).collect())
}

pub fn permutations(v: &Value, b: &Bound) -> Result<Value> {
    let xs = items(b, v)?;
    let r = b.opt_int(0)?.map_or(xs.len(), |r| r.max(0) as usize);
    fn go(
        xs: &[Value],
        used: &mut Vec<bool>,
        cur: &mut Vec<Value>,
        r: usize,
        out: &mut Vec<Value>,
    ) {
        if cur.len() == r {
            out.push(Value::Array(cur.clone()));
            return;
        }
        for i in 0..xs.len() {
            if !used[i] {
                used[i] = true;
                cur.push(xs[i].clone());
                go(xs, used, cur, r, out);
                cur.pop();
                used[i] = false;
            }
        }
    }
    let mut outv = Vec::new();
    if r <= xs.len() {
        go(
            &xs,
            &mut vec![false; xs.len()],
            &mut Vec::new(),
            r,
            &mut outv,
        );
    }
    list(outv)
}

pub fn combinations(v: &Value, b: &Bound) -> Result<Value> {
    let xs = items(b, v)?;
    let r = b.int_or(0, 0)?.max(0) as usize;
    fn go(xs: &[Value], start: usize, cur: &mut Vec<Value>, r: usize, out: &mut Vec<Value>) {
        if cur.len() == r {
            out.push(Value::Array(cur.clone()));
            return;
        }
        for i in start..xs.len() {
            cur.push(xs[i].clone());
            go(xs, i + 1, cur, r, out);
            cur.pop();
        }
    }
    let mut outv = Vec::new();
    go(&xs, 0, &mut Vec::new(), r, &mut outv);
    list(outv)
}

/// Ansible's `subelements(subelements, skip_missing=False)`.
pub fn subelements(v: &Value, b: &Bound) -> Result<Value> {
    let path = b.str(0)?;
    let skip = b.flag(1, false);
    let elems = match v {
        Value::Object(m) => m.values().cloned().collect(),
        other => items(b, other)?,
    };
    let mut outv = Vec::new();
    for e in elems {
        match attr(&e, &path) {
            Some(Value::Array(subs)) => {
                for s in subs {
                    outv.push(Value::Array(vec![e.clone(), s.clone()]));
                }
            }
            None if skip => {}
            _ => {
                return Err(err(
                    b.name,
                    format!(
                        "could not find '{path}' key in iterated item '{}'",
                        pystr::str(&e)
                    ),
                ))
            }
        }
    }
    list(outv)
}

/// Jinja2's `groupby(attribute, default=None, case_sensitive=False)`: [[grouper, [items]]].
pub fn groupby(v: &Value, b: &Bound) -> Result<Value> {
    let a = b.str(0)?;
    let default = b.get(1).cloned();
    let cs = b.flag(2, false);
    let mut xs = items(b, v)?;
    let grouper = |x: &Value| {
        attr(x, &a)
            .cloned()
            .or(default.clone())
            .unwrap_or(Value::Null)
    };
    sort_by_key(b, &mut xs, |x| key(&grouper(x), cs))?;
    let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
    for x in xs {
        let g = grouper(&x);
        match groups.last_mut() {
            Some((k, members)) if eq(&key(k, cs), &key(&g, cs)) => members.push(x),
            _ => groups.push((g, vec![x])),
        }
    }
    list(
        groups
            .into_iter()
            .map(|(k, m)| Value::Array(vec![k, Value::Array(m)]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_add() {
        assert_eq!(add(&json!(1), &json!(2)).unwrap(), json!(3));
        assert_eq!(add(&json!(1.5), &json!(2)).unwrap(), json!(3.5));
        assert_eq!(add(&json!("a"), &json!("b")).unwrap(), json!("ab"));
        assert_eq!(add(&json!([1]), &json!([2])).unwrap(), json!([1, 2]));
        assert!(add(&json!("a"), &json!(1)).is_err());
    }
}
