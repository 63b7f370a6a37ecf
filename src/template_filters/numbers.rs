//! Number filters: int, float, round, abs, pow, root, log, human_readable, to_octal.
use serde_json::Value;
use tera::Result;

use super::args::{err, Bound};
use super::pyval::{self, float_value, int_value};

/// Python's `int(text, base)`: sign, underscores between digits, `0x`/`0o`/`0b` prefixes when
/// the base allows them.
pub fn parse_int(s: &str, base: u32) -> Option<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase();
    let (base, digits) = match (base, lower.get(..2)) {
        (16 | 0, Some("0x")) => (16, &lower[2..]),
        (8 | 0, Some("0o")) => (8, &lower[2..]),
        (2 | 0, Some("0b")) => (2, &lower[2..]),
        (0, _) => (10, lower.as_str()),
        (b, _) => (b, lower.as_str()),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let n = i64::from_str_radix(&digits.replace('_', ""), base).ok()?;
    Some(if neg { -n } else { n })
}

/// Jinja2's `int(default=0, base=10)`.
pub fn int(v: &Value, b: &Bound) -> Result<Value> {
    let default = b.get(0).cloned().unwrap_or(int_value(0));
    let base = b.int_or(1, 10)?;
    Ok(match v {
        Value::Number(n) => match n.as_i64() {
            Some(i) => int_value(i),
            None => n.as_f64().map_or(default, |f| int_value(f.trunc() as i64)),
        },
        Value::Bool(x) => int_value(i64::from(*x)),
        Value::String(s) => parse_int(s, base as u32)
            .map(int_value)
            .or_else(|| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| int_value(f.trunc() as i64))
            })
            .unwrap_or(default),
        _ => default,
    })
}

/// Jinja2's `float(default=0.0)`.
pub fn float(v: &Value, b: &Bound) -> Result<Value> {
    let default = b.get(0).cloned().unwrap_or(float_value(0.0));
    Ok(match v {
        Value::String(s) => s.trim().parse::<f64>().ok().map_or(default, float_value),
        other => pyval::as_f64(other).map_or(default, float_value),
    })
}

/// Python's `round(x, n)`: half to even on the decimal expansion of the binary value.
fn py_round(x: f64, n: i64) -> f64 {
    let text = format!("{:.*}", n.clamp(0, 30) as usize, x);
    if n >= 0 {
        return text.parse().unwrap_or(x);
    }
    let p = 10f64.powi((-n) as i32);
    (x / p).round_ties_even() * p
}

/// Jinja2's `round(precision=0, method='common')`: always a float.
pub fn round(v: &Value, b: &Bound) -> Result<Value> {
    let x = pyval::as_f64(v).ok_or_else(|| err(b.name, "expects a number"))?;
    let p = b.int_or(0, 0)?;
    let m = 10f64.powi(p as i32);
    let r = match b.str_or(1, "common")?.as_str() {
        "common" => py_round(x, p),
        "ceil" => (x * m).ceil() / m,
        "floor" => (x * m).floor() / m,
        _ => return Err(err(b.name, "method must be common, ceil or floor")),
    };
    Ok(float_value(r))
}

pub fn abs(v: &Value, b: &Bound) -> Result<Value> {
    match v {
        Value::Number(n) if n.is_f64() => Ok(float_value(n.as_f64().unwrap_or(0.0).abs())),
        other => pyval::as_i64(other)
            .map(|i| int_value(i.abs()))
            .ok_or_else(|| {
                err(
                    b.name,
                    format!("bad operand type for abs(): '{}'", pyval::type_name(other)),
                )
            }),
    }
}

fn num(b: &Bound, v: &Value) -> Result<f64> {
    pyval::as_f64(v).ok_or_else(|| {
        err(
            b.name,
            format!("expects a number, got {}", pyval::type_name(v)),
        )
    })
}

pub fn pow(v: &Value, b: &Bound) -> Result<Value> {
    Ok(float_value(num(b, v)?.powf(num(b, &b.val(0))?)))
}

pub fn root(v: &Value, b: &Bound) -> Result<Value> {
    let x = num(b, v)?;
    let base = b.get(0).map_or(Ok(2.0), |y| num(b, y))?;
    Ok(float_value(if base == 2.0 {
        x.sqrt()
    } else {
        x.powf(1.0 / base)
    }))
}

pub fn log(v: &Value, b: &Bound) -> Result<Value> {
    let x = num(b, v)?;
    Ok(float_value(match b.get(0) {
        None => x.ln(),
        Some(base) => {
            let base = num(b, base)?;
            if base == 10.0 {
                x.log10()
            } else {
                x.ln() / base.ln()
            }
        }
    }))
}

/// Ansible's `human_readable(isbits=False, unit=None)`: `1.00 KB`.
pub fn human_readable(v: &Value, b: &Bound) -> Result<Value> {
    let mut x = num(b, v)?;
    let bits = b.flag(0, false);
    let units = ["", "K", "M", "G", "T", "P", "E", "Z", "Y"];
    let want = b
        .get(1)
        .and_then(Value::as_str)
        .map(|u| u.chars().next().unwrap_or('B').to_ascii_uppercase());
    let mut i = 0;
    loop {
        let at_unit = match want {
            Some(u) => units[i].starts_with(u) || (u == 'B' && i == 0),
            None => x < 1024.0,
        };
        if at_unit || i + 1 == units.len() {
            break;
        }
        x /= 1024.0;
        i += 1;
    }
    let suffix = if bits { "b" } else { "B" };
    let u = if i == 0 {
        if bits {
            "bits".to_string()
        } else {
            "Bytes".to_string()
        }
    } else {
        format!("{}{suffix}", units[i])
    };
    Ok(Value::String(format!("{x:.2} {u}")))
}

/// Ansible's `human_to_bytes(default_unit=None, isbits=False)`: `'1.5G'` -> 1610612736.
pub fn human_to_bytes(v: &Value, b: &Bound) -> Result<Value> {
    let text = super::pystr::str(v);
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim());
    let bad = || err(b.name, format!("human_to_bytes() failed to convert {text}"));
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bits = b.flag(1, false);
    let unit = if unit.is_empty() {
        b.get(0).and_then(Value::as_str).unwrap_or("")
    } else {
        unit
    };
    if unit.is_empty() {
        return Ok(int_value(n.round_ties_even() as i64));
    }
    let class = if bits { 'b' } else { 'B' };
    let mut chars = unit.chars();
    let key = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .ok_or_else(bad)?;
    let rest: String = chars.collect();
    let power = match "BKMGTPEZY".find(key) {
        Some(p) => p as i32,
        None => return Err(bad()),
    };
    let ok = if key == 'B' {
        unit.len() == 1 && unit.starts_with(class)
    } else {
        rest.is_empty() || rest == class.to_string()
    };
    if !ok {
        return Err(err(b.name, format!("human_to_bytes() failed to convert {text}. Value is not a valid string (expect {key}{class} or {key})")));
    }
    Ok(int_value((n * 1024f64.powi(power)).round_ties_even() as i64))
}

/// castellan's `to_octal`: a mode as four octal digits.
pub fn to_octal(v: &Value, b: &Bound) -> Result<Value> {
    let n = v.as_u64().ok_or_else(|| err(b.name, "expects a number"))?;
    Ok(Value::String(format!("{n:04o}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_int_and_round() {
        assert_eq!(parse_int("0x1F", 16), Some(31));
        assert_eq!(parse_int("-12", 10), Some(-12));
        assert_eq!(parse_int("1_000", 10), Some(1000));
        assert_eq!(parse_int("zz", 10), None);
        // Python: round(2.5), round(1.23456, 2), round(0.125, 2), round(2.675, 2)
        assert_eq!(py_round(2.5, 0), 2.0);
        assert_eq!(py_round(1.23456, 2), 1.23);
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(2.675, 2), 2.67);
    }
}
