//! Filters Ansible users reach for, registered on every template (tera syntax: named arguments).
use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use tera::{Result, Tera};

pub fn register(tera: &mut Tera) {
    tera.register_filter("bool", to_bool);
    tera.register_filter("to_json", to_json);
    tera.register_filter("to_nice_json", to_nice_json);
    tera.register_filter("to_yaml", to_yaml);
    tera.register_filter("to_nice_yaml", to_yaml);
    tera.register_filter("from_json", from_json);
    tera.register_filter("basename", basename);
    tera.register_filter("dirname", dirname);
    tera.register_filter("regex_replace", regex_replace);
    tera.register_filter("regex_search", regex_search);
    tera.register_filter("b64encode", b64encode);
    tera.register_filter("b64decode", b64decode);
    tera.register_filter("quote", quote);
    tera.register_filter("mandatory", mandatory);
    tera.register_filter("dict2items", dict2items);
    tera.register_filter("combine", combine);
    tera.register_filter("to_octal", to_octal);
    tera.register_filter("urlencode", urlencode);
}

fn arg<'a>(args: &'a HashMap<String, Value>, name: &str, filter: &str) -> Result<&'a Value> {
    args.get(name)
        .ok_or_else(|| tera::Error::msg(format!("filter `{filter}` needs the argument `{name}=`")))
}

fn as_str<'a>(v: &'a Value, filter: &str) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| tera::Error::msg(format!("filter `{filter}` expects a string, got {v}")))
}

/// Ansible's `bool`: yes/no/on/off/true/false/1/0, case-insensitive.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => crate::boolean::parse(s.trim()) == Some(true),
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn to_bool(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    Ok(Value::Bool(truthy(v)))
}

fn to_json(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    serde_json::to_string(v)
        .map(Value::String)
        .map_err(tera::Error::msg)
}

fn to_nice_json(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    serde_json::to_string_pretty(v)
        .map(Value::String)
        .map_err(tera::Error::msg)
}

fn to_yaml(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    serde_yaml::to_string(v)
        .map(Value::String)
        .map_err(tera::Error::msg)
}

fn from_json(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    serde_json::from_str(as_str(v, "from_json")?).map_err(tera::Error::msg)
}

fn basename(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let s = as_str(v, "basename")?;
    Ok(Value::String(
        Path::new(s)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ))
}

fn dirname(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let s = as_str(v, "dirname")?;
    Ok(Value::String(
        Path::new(s)
            .parent()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ))
}

fn regex_replace(v: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let s = as_str(v, "regex_replace")?;
    let pat = as_str(arg(args, "regex", "regex_replace")?, "regex_replace")?;
    let rep = match args.get("replace") {
        Some(r) => as_str(r, "regex_replace")?,
        None => "",
    };
    let re = regex::Regex::new(pat).map_err(tera::Error::msg)?;
    // Python's \1 backreferences become ${1}.
    let rep = python_backrefs(rep);
    Ok(Value::String(re.replace_all(s, rep.as_str()).into_owned()))
}

fn python_backrefs(rep: &str) -> String {
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                chars.next();
                out.push_str(&format!("${{{d}}}"));
                continue;
            }
        }
        if c == '$' {
            out.push_str("$$");
            continue;
        }
        out.push(c);
    }
    out
}

fn regex_search(v: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let s = as_str(v, "regex_search")?;
    let pat = as_str(arg(args, "regex", "regex_search")?, "regex_search")?;
    let re = regex::Regex::new(pat).map_err(tera::Error::msg)?;
    Ok(re
        .find(s)
        .map_or(Value::Null, |m| Value::String(m.as_str().to_string())))
}

fn b64encode(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(as_str(v, "b64encode")?),
    ))
}

fn b64decode(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(as_str(v, "b64decode")?)
        .map_err(tera::Error::msg)?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

fn quote(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(Value::String(format!("'{}'", s.replace('\'', r"'\''"))))
}

/// Percent-encode as Python's `urllib.parse.quote` does: every byte of the UTF-8 text but
/// letters, digits, `_.-~` and the `safe` ones becomes `%XX`.
fn url_quote(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Jinja's (and so Ansible's) `urlencode`: a string is quoted for a URL path (`/` kept); a
/// mapping becomes a query string (`k=v&...`, nothing kept, spaces as `+`).
fn urlencode(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let scalar = |x: &Value| match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let qs = |x: &str| url_quote(x, b"").replace("%20", "+");
    Ok(Value::String(match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| format!("{}={}", qs(k), qs(&scalar(x))))
            .collect::<Vec<_>>()
            .join("&"),
        Value::Array(_) | Value::Null => {
            return Err(tera::Error::msg(
                "filter `urlencode` expects a string, a number or a mapping",
            ))
        }
        other => url_quote(&scalar(other), b"/"),
    }))
}

fn mandatory(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    if v.is_null() {
        return Err(tera::Error::msg("mandatory variable is not defined"));
    }
    Ok(v.clone())
}

fn dict2items(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let obj = v
        .as_object()
        .ok_or_else(|| tera::Error::msg("dict2items expects a mapping"))?;
    Ok(Value::Array(
        obj.iter()
            .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
            .collect(),
    ))
}

fn combine(v: &Value, args: &HashMap<String, Value>) -> Result<Value> {
    let mut base = v
        .as_object()
        .cloned()
        .ok_or_else(|| tera::Error::msg("combine expects a mapping"))?;
    if let Some(Value::Object(other)) = args.get("with") {
        for (k, val) in other {
            base.insert(k.clone(), val.clone());
        }
    }
    Ok(Value::Object(base))
}

fn to_octal(v: &Value, _: &HashMap<String, Value>) -> Result<Value> {
    let n = v
        .as_u64()
        .ok_or_else(|| tera::Error::msg("to_octal expects a number"))?;
    Ok(Value::String(format!("{n:04o}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backrefs_translate() {
        assert_eq!(python_backrefs(r"a\1b$"), "a${1}b$$");
    }

    #[test]
    fn urlencode_like_jinja() {
        let enc = |v: Value| urlencode(&v, &HashMap::new()).unwrap();
        // Python: quote("p@ss w/rd:%é'&?#=+", safe="/")
        assert_eq!(
            enc(Value::String("p@ss w/rd:%\u{e9}'&?#=+_.-~".into())),
            "p%40ss%20w/rd%3A%25%C3%A9%27%26%3F%23%3D%2B_.-~"
        );
        assert_eq!(enc(serde_json::json!(5432)), "5432");
        assert_eq!(
            enc(serde_json::json!({"a b": "c/d&e", "n": 1})),
            "a+b=c%2Fd%26e&n=1"
        );
        assert!(urlencode(&serde_json::json!([1]), &HashMap::new()).is_err());
    }

    #[test]
    fn truthiness_like_ansible_bool() {
        for s in ["yes", "On", "TRUE", "1"] {
            assert!(truthy(&Value::String(s.into())));
        }
        for s in ["no", "off", "false", "0", ""] {
            assert!(!truthy(&Value::String(s.into())));
        }
    }
}
