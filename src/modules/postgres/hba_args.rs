//! The arguments of `pg_hba` as JSON, decoded into the editor's [`RuleSpec`] and [`Position`]:
//! the editor (`crate::postgres::hba`) knows neither JSON module arguments nor their aliases.
use regex::Regex;
use serde_json::Value;

use crate::postgres::hba::{quote_token, Position, RuleSpec};

/// From a module argument: `before_first_host`, `top`, `bottom`, `{before: RE}`,
/// `{after: RE}` (or the strings `before:RE`, `after:RE`).
pub fn position(v: Option<&Value>) -> Result<Position, String> {
    let re = |s: &str| Regex::new(s).map_err(|e| format!("position: bad regular expression: {e}"));
    let (key, pat) = match v {
        None | Some(Value::Null) => return Ok(Position::BeforeFirstHost),
        Some(Value::String(s)) => match s.trim() {
            "before_first_host" => return Ok(Position::BeforeFirstHost),
            "top" => return Ok(Position::Top),
            "bottom" => return Ok(Position::Bottom),
            other => match other.split_once(':') {
                Some((k, p)) => (k.trim().to_string(), p.trim().to_string()),
                None => (other.to_string(), String::new()),
            },
        },
        Some(Value::Object(m)) if m.len() == 1 => {
            let (k, p) = m.iter().next().ok_or("position: empty mapping")?;
            let p = p
                .as_str()
                .ok_or("position: the regular expression must be a string")?;
            (k.clone(), p.to_string())
        }
        Some(other) => return Err(format!("position: unsupported value {other}")),
    };
    match key.as_str() {
        "before" => Ok(Position::Before(re(&pat)?)),
        "after" => Ok(Position::After(re(&pat)?)),
        _ => Err(format!(
            "position must be before_first_host, top, bottom, {{before: REGEX}} or {{after: REGEX}}, got `{key}`"
        )),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A field given as a list (each element quoted when needed) or as text written as in the file.
fn field_arg(v: Option<&Value>, name: &str, default: Option<&str>) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => default
            .map(str::to_string)
            .ok_or_else(|| format!("rule: `{name}` is required")),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| {
                scalar(i)
                    .map(|s| quote_token(&s))
                    .ok_or_else(|| format!("rule: `{name}` items must be strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        Some(other) => scalar(other)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("rule: `{name}` must be a string or a list of strings")),
    }
}

/// From a mapping: `type` (or `contype`), `database` (`databases`, `db`), `user` (`users`),
/// `address` (`source`, `src`), `netmask`, `method`, `options` (a mapping, a list of
/// `name=value`, or a space-separated string).
pub fn rule_spec(v: &Value) -> Result<RuleSpec, String> {
    let m = v.as_object().ok_or("each rule must be a mapping")?;
    const KEYS: [&str; 12] = [
        "type",
        "contype",
        "database",
        "databases",
        "db",
        "user",
        "users",
        "address",
        "source",
        "src",
        "netmask",
        "method",
    ];
    for k in m.keys() {
        if !KEYS.contains(&k.as_str()) && k != "options" {
            return Err(format!(
                "rule: unknown key `{k}` (valid: type, database, user, address, netmask, method, options)"
            ));
        }
    }
    let get = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| m.get(*n))
            .filter(|v| !v.is_null())
    };
    let conn_type = get(&["type", "contype"])
        .and_then(scalar)
        .ok_or("rule: `type` is required (local, host, hostssl, hostnossl, ...)")?;
    let method = get(&["method"])
        .and_then(scalar)
        .ok_or("rule: `method` is required")?;
    let mut options = Vec::new();
    match m.get("options") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (k, v) in o {
                let v = scalar(v).ok_or_else(|| format!("rule: option `{k}` must be a scalar"))?;
                options.push((k.clone(), v));
            }
        }
        Some(other) => {
            let items: Vec<String> = match other {
                Value::Array(a) => a.iter().filter_map(scalar).collect(),
                v => scalar(v)
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            };
            for it in items {
                let (k, v) = it
                    .split_once('=')
                    .ok_or_else(|| format!("rule: option `{it}` is not name=value"))?;
                options.push((k.to_string(), v.to_string()));
            }
        }
    }
    Ok(RuleSpec {
        conn_type,
        database: field_arg(
            get(&["database", "databases", "db"]),
            "database",
            Some("all"),
        )?,
        user: field_arg(get(&["user", "users"]), "user", Some("all"))?,
        address: get(&["address", "source", "src"]).and_then(scalar),
        netmask: get(&["netmask"]).and_then(scalar),
        method,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_spec_keys_aliases_and_options() {
        assert!(rule_spec(&json!({"type": "local", "method": "peer", "colour": 1})).is_err());
        assert!(
            rule_spec(&json!({"type": "local", "method": "peer", "options": "novalue"})).is_err()
        );
        assert!(rule_spec(&json!({"method": "peer"})).is_err());
        assert!(rule_spec(&json!("local all all peer")).is_err());
        let s = rule_spec(
            &json!({"contype": "host", "databases": ["app", "my db"], "users": "u1,u2",
                            "source": "10.0.0.1", "netmask": "255.255.255.255", "method": "md5",
                            "options": ["a=b", "c=d e"]}),
        )
        .unwrap();
        // The same rule as `postgres::hba`'s test of RuleSpec::line builds by hand.
        assert_eq!(
            s.line(),
            "host    app,\"my db\"     u1,u2           10.0.0.1 255.255.255.255 md5 a=b \"c=d e\""
        );
        assert_eq!(s.netmask.as_deref(), Some("255.255.255.255"));
        let d = rule_spec(&json!({"type": "local", "method": "peer"})).unwrap();
        assert_eq!((d.database.as_str(), d.user.as_str()), ("all", "all"));
        assert_eq!(
            d.line(),
            "local   all             all                                     peer"
        );
        let m = rule_spec(&json!({"type": "hostssl", "address": "10.0.0.0/8",
            "method": "cert", "options": {"clientcert": "verify-full"}}))
        .unwrap();
        assert_eq!(m.options, vec![("clientcert".into(), "verify-full".into())]);
    }

    #[test]
    fn positions() {
        assert!(matches!(position(None), Ok(Position::BeforeFirstHost)));
        assert!(matches!(position(Some(&json!("top"))), Ok(Position::Top)));
        assert!(matches!(
            position(Some(&json!("bottom"))),
            Ok(Position::Bottom)
        ));
        match position(Some(&json!({"after": "^local"}))) {
            Ok(Position::After(r)) => assert_eq!(r.as_str(), "^local"),
            other => panic!("{other:?}"),
        }
        match position(Some(&json!("before: ^# tail"))) {
            Ok(Position::Before(r)) => assert_eq!(r.as_str(), "^# tail"),
            other => panic!("{other:?}"),
        }
        assert!(position(Some(&json!("middle"))).is_err());
        assert!(position(Some(&json!({"before": "("}))).is_err());
    }
}
