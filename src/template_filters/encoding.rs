//! Encodings: base64, JSON and YAML in Ansible's forms (to_json with `ensure_ascii`,
//! to_nice_json indent 4 sorted, to_nice_yaml indent 4), Jinja2's tojson, hashes, to_uuid,
//! urlencode, urlsplit, pprint.
use std::path::Path;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha1::Digest as _;
use tera::Result;

use super::args::{err, want_str, Bound};
use super::pystr;
use super::yaml_out;

fn text(v: &Value) -> String {
    pystr::str(v)
}

pub fn b64encode(v: &Value, b: &Bound) -> Result<Value> {
    let engine = if b.flag(1, false) {
        &base64::engine::general_purpose::URL_SAFE
    } else {
        &base64::engine::general_purpose::STANDARD
    };
    Ok(Value::String(engine.encode(text(v))))
}

pub fn b64decode(v: &Value, b: &Bound) -> Result<Value> {
    let engine = if b.flag(1, false) {
        &base64::engine::general_purpose::URL_SAFE
    } else {
        &base64::engine::general_purpose::STANDARD
    };
    let bytes = engine.decode(text(v).trim()).map_err(|e| err(b.name, e))?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), sorted(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn json_str(s: &str, ascii: bool, html: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\'' if html => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 || (ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Python's `json.dumps`: `indent` None -> `", "`/`": "` separators on one line.
pub fn dumps(v: &Value, indent: Option<usize>, ascii: bool, html: bool) -> String {
    fn go(
        v: &Value,
        indent: Option<usize>,
        level: usize,
        ascii: bool,
        html: bool,
        out: &mut String,
    ) {
        let nl = |out: &mut String, l: usize| {
            if let Some(i) = indent {
                out.push('\n');
                out.push_str(&" ".repeat(i * l));
            }
        };
        let sep = if indent.is_some() { "," } else { ", " };
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                out.push_str(&if f.is_nan() {
                    "NaN".into()
                } else if f.is_infinite() {
                    if f > 0.0 {
                        "Infinity".into()
                    } else {
                        "-Infinity".into()
                    }
                } else {
                    pystr::float(f)
                })
            }
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => out.push_str(&json_str(s, ascii, html)),
            Value::Array(a) if a.is_empty() => out.push_str("[]"),
            Value::Object(m) if m.is_empty() => out.push_str("{}"),
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    nl(out, level + 1);
                    go(x, indent, level + 1, ascii, html, out);
                }
                nl(out, level);
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    nl(out, level + 1);
                    out.push_str(&json_str(k, ascii, html));
                    out.push_str(": ");
                    go(x, indent, level + 1, ascii, html, out);
                }
                nl(out, level);
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    go(v, indent, 0, ascii, html, &mut out);
    out
}

/// Ansible's `to_json(**kwargs)`: json.dumps (ASCII-escaped unless `ensure_ascii=False`).
pub fn to_json(v: &Value, b: &Bound) -> Result<Value> {
    let ascii = b.kw_flag("ensure_ascii", true);
    let v = if b.kw_flag("sort_keys", false) {
        sorted(v)
    } else {
        v.clone()
    };
    let indent =
        b.kw.get("indent")
            .and_then(Value::as_u64)
            .map(|i| i as usize);
    Ok(Value::String(dumps(&v, indent, ascii, false)))
}

/// Ansible's `to_nice_json(indent=4, sort_keys=True)`.
pub fn to_nice_json(v: &Value, b: &Bound) -> Result<Value> {
    let indent = b.int_or(0, 4)?.max(0) as usize;
    let v = if b.flag(1, true) {
        sorted(v)
    } else {
        v.clone()
    };
    Ok(Value::String(dumps(
        &v,
        Some(indent),
        b.kw_flag("ensure_ascii", true),
        false,
    )))
}

/// Jinja2's `tojson(indent=None)`: sorted keys, HTML-safe escapes.
pub fn tojson(v: &Value, b: &Bound) -> Result<Value> {
    let indent = b.opt_int(0)?.map(|i| i.max(0) as usize);
    Ok(Value::String(dumps(&sorted(v), indent, true, true)))
}

/// castellan's tera-era `json_encode`-like: kept as `to_json`'s twin.
pub fn to_yaml(v: &Value, b: &Bound) -> Result<Value> {
    let flow = b.get(0).is_none_or(Value::is_null) || b.flag(0, false);
    let indent = b.kw.get("indent").and_then(Value::as_u64).unwrap_or(2) as usize;
    Ok(Value::String(yaml_out::dump(v, indent, flow)))
}

pub fn to_nice_yaml(v: &Value, b: &Bound) -> Result<Value> {
    let indent = b.int_or(0, 4)?.max(1) as usize;
    Ok(Value::String(yaml_out::dump(v, indent, b.flag(1, false))))
}

pub fn from_json(v: &Value, b: &Bound) -> Result<Value> {
    serde_json::from_str(want_str(b.name, v)?).map_err(|e| err(b.name, e))
}

fn yaml_docs(b: &Bound, v: &Value) -> Result<Vec<Value>> {
    let s = match v {
        Value::String(s) => s,
        other => return Ok(vec![other.clone()]),
    };
    let docs = crate::yaml::parse_str(s, Path::new("<from_yaml>")).map_err(|e| err(b.name, e))?;
    Ok(docs.iter().map(crate::yaml::Node::to_json).collect())
}

pub fn from_yaml(v: &Value, b: &Bound) -> Result<Value> {
    Ok(yaml_docs(b, v)?.into_iter().next().unwrap_or(Value::Null))
}

pub fn from_yaml_all(v: &Value, b: &Bound) -> Result<Value> {
    Ok(Value::Array(yaml_docs(b, v)?))
}

fn digest(b: &Bound, kind: &str, data: &[u8]) -> Result<String> {
    Ok(match kind {
        "md5" => hex::encode(<md5::Md5 as md5::Digest>::digest(data)),
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => return Err(err(b.name, format!("hash type '{other}' is not supported by castellan (md5, sha1, sha224, sha256, sha384, sha512)"))),
    })
}

/// `hash(hashtype='sha1')`.
pub fn hash(v: &Value, b: &Bound) -> Result<Value> {
    Ok(Value::String(digest(
        b,
        &b.str_or(0, "sha1")?,
        text(v).as_bytes(),
    )?))
}
pub fn md5(v: &Value, b: &Bound) -> Result<Value> {
    Ok(Value::String(digest(b, "md5", text(v).as_bytes())?))
}
pub fn sha1(v: &Value, b: &Bound) -> Result<Value> {
    Ok(Value::String(digest(b, "sha1", text(v).as_bytes())?))
}

/// `to_uuid(namespace=361E6D51-FAEC-444A-9079-341386DA8E2E)`: a version-5 UUID.
pub fn to_uuid(v: &Value, b: &Bound) -> Result<Value> {
    let ns = b.str_or(0, "361e6d51-faec-444a-9079-341386da8e2e")?;
    let ns_bytes = hex::decode(ns.replace('-', "")).map_err(|e| err(b.name, e))?;
    let mut h = sha1::Sha1::new();
    h.update(&ns_bytes);
    h.update(text(v).as_bytes());
    let mut d: Vec<u8> = h.finalize()[..16].to_vec();
    d[6] = (d[6] & 0x0f) | 0x50;
    d[8] = (d[8] & 0x3f) | 0x80;
    let x = hex::encode(d);
    Ok(Value::String(format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )))
}

/// Python's `urllib.parse.quote(s, safe)`.
pub fn url_quote(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || b"_.-~".contains(&byte) || safe.contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Jinja2's `urlencode`: a string is quoted for a URL path (`/` kept); a mapping or a list of
/// pairs becomes a query string (`k=v&...`, spaces as `+`).
pub fn urlencode(v: &Value, b: &Bound) -> Result<Value> {
    let qs = |x: &Value| url_quote(&text(x), b"").replace("%20", "+");
    Ok(Value::String(match v {
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| format!("{}={}", qs(&Value::String(k.clone())), qs(x)))
            .collect::<Vec<_>>()
            .join("&"),
        Value::Array(pairs) => pairs
            .iter()
            .map(|p| match p {
                Value::Array(kv) if kv.len() == 2 => Ok(format!("{}={}", qs(&kv[0]), qs(&kv[1]))),
                _ => Err(err(
                    b.name,
                    "expects a string, a mapping or a list of pairs",
                )),
            })
            .collect::<Result<Vec<_>>>()?
            .join("&"),
        Value::Null => return Err(err(b.name, "expects a string, a number or a mapping")),
        other => url_quote(&text(other), b"/"),
    }))
}

/// Ansible's `urldecode`: Python's `unquote_plus`.
pub fn urldecode(v: &Value, _: &Bound) -> Result<Value> {
    let t = text(v).replace('+', " ");
    let bytes = t.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(Value::String(String::from_utf8_lossy(&out).into_owned()))
}

/// Ansible's `urlsplit(query='')`: scheme, netloc, path, query, fragment, username,
/// password, hostname, port.
pub fn urlsplit(v: &Value, b: &Bound) -> Result<Value> {
    let url = want_str(b.name, v)?;
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r))
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_lowercase(), format!("//{r}"))
        }
        _ => (String::new(), url.to_string()),
    };
    let (rest, fragment) = rest
        .split_once('#')
        .map_or((rest.as_str(), ""), |(a, f)| (a, f));
    let (rest, query) = rest.split_once('?').map_or((rest, ""), |(a, q)| (a, q));
    let (netloc, path) = match rest.strip_prefix("//") {
        Some(r) => match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        },
        None => ("", rest),
    };
    let (userinfo, hostport) = netloc
        .rsplit_once('@')
        .map_or((None, netloc), |(u, h)| (Some(u), h));
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((n, p)) => (Value::String(n.into()), Value::String(p.into())),
            None => (Value::String(u.into()), Value::Null),
        },
        None => (Value::Null, Value::Null),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !hostport.ends_with(']') => (h, Some(p)),
        _ => (hostport, None),
    };
    let port = match port.filter(|p| !p.is_empty()) {
        Some(p) => Value::Number(
            p.parse::<u16>()
                .map_err(|_| {
                    err(
                        b.name,
                        format!(
                            "Port could not be cast to integer value as {}",
                            pystr::repr_str(p)
                        ),
                    )
                })?
                .into(),
        ),
        None => Value::Null,
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_lowercase();
    let mut m = Map::new();
    m.insert("fragment".into(), Value::String(fragment.into()));
    m.insert(
        "hostname".into(),
        if host.is_empty() {
            Value::Null
        } else {
            Value::String(host)
        },
    );
    m.insert("netloc".into(), Value::String(netloc.into()));
    m.insert("password".into(), password);
    m.insert("path".into(), Value::String(path.into()));
    m.insert("port".into(), port);
    m.insert("query".into(), Value::String(query.into()));
    m.insert("scheme".into(), Value::String(scheme));
    m.insert("username".into(), username);
    match b.get(0).and_then(Value::as_str).filter(|q| !q.is_empty()) {
        Some(q) => m
            .get(q)
            .cloned()
            .ok_or_else(|| err(b.name, format!("unknown URL component: {q}"))),
        None => Ok(Value::Object(m)),
    }
}

/// Jinja2's `pprint`: Python's pretty repr (one line when it fits in 80 columns).
pub fn pprint(v: &Value, _: &Bound) -> Result<Value> {
    Ok(Value::String(pystr::repr(&sorted(v))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_like_python() {
        // ansible-core 2.19 to_json / to_nice_json / tojson
        let v = json!({"b": "\u{e9}", "a": [1, 2.5, null, true]});
        assert_eq!(
            dumps(&v, None, true, false),
            r#"{"b": "\u00e9", "a": [1, 2.5, null, true]}"#
        );
        let v = json!({"b": "\u{e9}", "a": [1, {"x": []}], "c": {}});
        assert_eq!(
            dumps(&sorted(&v), Some(4), true, false),
            "{\n    \"a\": [\n        1,\n        {\n            \"x\": []\n        }\n    ],\n    \"b\": \"\\u00e9\",\n    \"c\": {}\n}"
        );
        assert_eq!(
            dumps(&sorted(&json!({"b": "<\u{e9}>", "a": 1})), None, true, true),
            r#"{"a": 1, "b": "\u003c\u00e9\u003e"}"#
        );
    }

    #[test]
    fn url_quote_like_python() {
        // Python: quote("p@ss w/rd:%é'&?#=+_.-~", safe="/")
        assert_eq!(
            url_quote("p@ss w/rd:%\u{e9}'&?#=+_.-~", b"/"),
            "p%40ss%20w/rd%3A%25%C3%A9%27%26%3F%23%3D%2B_.-~"
        );
    }
}
