//! The numeric knobs of plays and tasks, checked when the playbook is loaded: a number must be
//! finite and within documented bounds, so nothing overflows or panics once hosts are changing
//! (`delay: .inf` used to panic in the retry sleep, after the command had run).
//!
//! | knob | accepted |
//! |---|---|
//! | `delay`, `loop_control.pause` | 0 to [`MAX_DELAY_S`] seconds |
//! | `retries` | 0 to [`MAX_RETRIES`] |
//! | `max_fail_percentage` | 0 to 100 |
//! | `serial` | a count >= 1, or a percentage above 0 and up to 100 |
use crate::error::Result;
use crate::template::is_template;
use crate::yaml::{Node, NodeValue};

/// Longest `delay` between two attempts, and longest loop `pause`: one hour.
pub const MAX_DELAY_S: f64 = 3600.0;
/// Most `retries` of an `until` loop.
pub const MAX_RETRIES: u32 = 10_000;

/// A literal number: an integer, a float or a string holding one (`"5"`), never a template.
fn number(n: &Node, what: &str) -> Result<f64> {
    let v = match &n.value {
        NodeValue::Int(i) => Some(*i as f64),
        NodeValue::Float(f) => Some(*f),
        NodeValue::Str(s) if is_template(s) => {
            return Err(n.error(format!(
                "`{what}` must be a literal number here (templates are not supported for it)"
            )))
        }
        NodeValue::Str(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    v.ok_or_else(|| n.error(format!("`{what}` must be a number, not {}", describe(n))))
}

fn describe(n: &Node) -> String {
    match &n.value {
        NodeValue::Str(s) if s.chars().count() <= 40 => format!("`{s}`"),
        NodeValue::Int(i) => i.to_string(),
        NodeValue::Float(f) => shown(*f),
        _ => n.kind().to_string(),
    }
}

/// A number of seconds from 0 to `max`.
pub fn seconds(n: &Node, what: &str, max: f64) -> Result<f64> {
    let v = number(n, what)?;
    if !v.is_finite() || !(0.0..=max).contains(&v) {
        return Err(n.error(format!(
            "`{what}` must be a number of seconds from 0 to {max}, not {}",
            shown(v)
        )));
    }
    Ok(v)
}

/// A whole number from 0 to `max`.
pub fn count(n: &Node, what: &str, max: u32) -> Result<u32> {
    let v = number(n, what)?;
    if !v.is_finite() || v.fract() != 0.0 || !(0.0..=f64::from(max)).contains(&v) {
        return Err(n.error(format!(
            "`{what}` must be a whole number from 0 to {max}, not {}",
            shown(v)
        )));
    }
    Ok(v as u32)
}

/// A percentage from 0 to 100 (`30`, `30.5` or `"30%"`).
pub fn percent(n: &Node, what: &str) -> Result<f64> {
    let v = match &n.value {
        NodeValue::Str(s) if !is_template(s) => s.trim().trim_end_matches('%').trim().parse().ok(),
        NodeValue::Int(_) | NodeValue::Float(_) => number(n, what).ok(),
        _ => None,
    };
    match v {
        Some(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(n.error(format!(
            "`{what}` must be a number from 0 to 100, not {}",
            describe(n)
        ))),
    }
}

/// A number as an error message shows it (`.inf`, `1e300`).
fn shown(v: f64) -> String {
    if v.is_nan() {
        ".nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { ".inf" } else { "-.inf" }.into()
    } else if v.abs() >= 1e15 {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn node(text: &str) -> Node {
        crate::yaml::parse_single(&format!("v: {text}\n"), Path::new("t.yml"))
            .unwrap()
            .get("v")
            .unwrap()
            .clone()
    }

    #[test]
    fn delays_are_finite_and_bounded() {
        assert_eq!(seconds(&node("5"), "delay", MAX_DELAY_S).unwrap(), 5.0);
        assert_eq!(seconds(&node("0.5"), "delay", MAX_DELAY_S).unwrap(), 0.5);
        assert_eq!(seconds(&node("'2'"), "delay", MAX_DELAY_S).unwrap(), 2.0);
        for bad in [
            ".inf", ".nan", "-.inf", "1.0e+300", "3601", "-1", "soon", "'inf'", "[1]",
        ] {
            let e = seconds(&node(bad), "delay", MAX_DELAY_S).unwrap_err();
            assert!(
                e.to_string().starts_with("t.yml:1:4: `delay` must be"),
                "{bad}: {e}"
            );
        }
        let e = seconds(&node("'{{ d }}'"), "delay", MAX_DELAY_S).unwrap_err();
        assert!(e.to_string().contains("templates are not supported"), "{e}");
    }

    #[test]
    fn counts_are_whole_and_bounded() {
        assert_eq!(count(&node("3"), "retries", MAX_RETRIES).unwrap(), 3);
        assert_eq!(
            count(&node("10000"), "retries", MAX_RETRIES).unwrap(),
            10_000
        );
        for bad in [
            "10001",
            "10000000000",
            "-3",
            "2.5",
            ".inf",
            "99999999999999999999999",
        ] {
            assert!(count(&node(bad), "retries", MAX_RETRIES).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(&node("30"), "p").unwrap(), 30.0);
        assert_eq!(percent(&node("'30%'"), "p").unwrap(), 30.0);
        for bad in [".nan", "250", "-1", "'nan%'", "'x'"] {
            assert!(percent(&node(bad), "p").is_err(), "{bad}");
        }
    }
}
