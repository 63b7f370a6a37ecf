//! A YAML emitter that writes what PyYAML's `yaml.dump` writes for Ansible's `to_yaml`
//! (`default_flow_style=None`: collections of scalars in flow style, indent 2) and
//! `to_nice_yaml` (block style, indent 4): PyYAML's plain/quoted choice for strings (YAML 1.1
//! words like `yes`, `null`, `1.0` quoted), its indentless sequences under a key and its
//! `-   key:` items. Not reproduced: PyYAML folding plain strings longer than 80 columns, and
//! its single-quoted form of multi-line strings (written double-quoted here).
use serde_json::Value;

use super::pystr;

fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF", "~", "null", "Null", "NULL", "<<", "=",
    ];
    if s.is_empty() || WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits_us = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit() || c == '_');
    // ints (YAML 1.1): 0b.., 0x.., octal 0[0-7_]+, decimal, sexagesimal
    if let Some(b) = t.strip_prefix("0b") {
        if !b.is_empty() && b.chars().all(|c| "01_".contains(c)) {
            return true;
        }
    }
    if let Some(h) = t.strip_prefix("0x") {
        if !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit() || c == '_') {
            return true;
        }
    }
    if t == "0"
        || (t.starts_with('0')
            && t.len() > 1
            && t.chars().all(|c| ('0'..='7').contains(&c) || c == '_'))
    {
        return true;
    }
    if t.starts_with(|c: char| ('1'..='9').contains(&c)) && digits_us(t) {
        return true;
    }
    if t.starts_with(|c: char| ('1'..='9').contains(&c)) && t.contains(':') {
        let mut parts = t.split(':');
        if parts.next().is_some_and(digits_us)
            && parts.all(|p| !p.is_empty() && p.len() <= 2 && p.chars().all(|c| c.is_ascii_digit()))
        {
            return true;
        }
    }
    // floats
    if [".inf", ".Inf", ".INF"].contains(&t) || [".nan", ".NaN", ".NAN"].contains(&s) {
        return true;
    }
    let (mant, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let exp_ok = exp.is_none_or(|e| {
        e.len() > 1 && e.starts_with(['-', '+']) && e[1..].chars().all(|c| c.is_ascii_digit())
    });
    if let Some((i, f)) = mant.split_once('.') {
        let frac_ok = f.chars().all(|c| c.is_ascii_digit() || c == '_');
        if exp_ok
            && frac_ok
            && ((!i.is_empty() && i.starts_with(|c: char| c.is_ascii_digit()) && digits_us(i))
                || (i.is_empty() && !f.is_empty() && !f.starts_with('_')))
        {
            return true;
        }
    }
    // timestamps: 2001-12-14 and friends
    let b = s.as_bytes();
    if b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' {
        return true;
    }
    false
}

/// Whether PyYAML writes `s` plain (in block or flow context).
fn plain_ok(s: &str, flow: bool) -> bool {
    if s.is_empty() || resolves_to_other_type(s) {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_ws = chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        let prev_ws = i > 0 && chars[i - 1].is_whitespace();
        if c == '\n' || c == '\r' || c == '\t' || !printable(c) {
            return false;
        }
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                return false;
            }
            if (c == '?' || c == ':') && (flow || next_ws) {
                return false;
            }
            if c == '-' && next_ws {
                return false;
            }
        } else {
            if ",?[]{}".contains(c) && flow {
                return false;
            }
            if c == ':' && (flow || next_ws) {
                return false;
            }
            if c == '#' && prev_ws {
                return false;
            }
        }
    }
    true
}

fn printable(c: char) -> bool {
    let u = c as u32;
    u == 0x85
        || (0x20..=0x7e).contains(&u)
        || (0xa0..=0xd7ff).contains(&u)
        || (0xe000..=0xfffd).contains(&u) && u != 0xfeff
        || (0x10000..=0x10ffff).contains(&u)
}

fn string(s: &str, flow: bool) -> String {
    if plain_ok(s, flow) {
        return s.to_string();
    }
    let special = s
        .chars()
        .any(|c| !printable(c) || c == '\n' || c == '\r' || c == '\t');
    if !special {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if !printable(c) => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            ".inf".into()
        } else {
            "-.inf".into()
        };
    }
    let r = pystr::float(f);
    // PyYAML: repr, with `.0` added to a mantissa without a dot before an exponent.
    match r.split_once('e') {
        Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
        _ => r,
    }
}

fn scalar(v: &Value, flow: bool) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => float(n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, flow),
        Value::Array(_) | Value::Object(_) => flow_collection(v),
    }
}

fn flow_collection(v: &Value) -> String {
    match v {
        Value::Array(a) => format!(
            "[{}]",
            a.iter()
                .map(|x| scalar(x, true))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{}: {}", string(k, true), scalar(x, true)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => scalar(other, true),
    }
}

fn is_leaf_collection(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().all(|x| !x.is_array() && !x.is_object()),
        Value::Object(m) => m.values().all(|x| !x.is_array() && !x.is_object()),
        _ => false,
    }
}

fn is_empty_collection(v: &Value) -> bool {
    matches!(v, Value::Array(a) if a.is_empty()) || matches!(v, Value::Object(m) if m.is_empty())
}

struct Emitter {
    indent: usize,
    flow_leaves: bool,
    out: String,
}

impl Emitter {
    fn inline(&self, v: &Value) -> bool {
        !(v.is_array() || v.is_object())
            || is_empty_collection(v)
            || (self.flow_leaves && is_leaf_collection(v))
    }

    /// A node whose first line continues the current line (`col` = its column).
    fn node(&mut self, v: &Value, col: usize) {
        if self.inline(v) {
            self.out.push_str(&scalar(v, false));
            self.out.push('\n');
            return;
        }
        match v {
            Value::Object(m) => {
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(&" ".repeat(col));
                    }
                    self.out.push_str(&string(k, false));
                    self.out.push(':');
                    if self.inline(x) {
                        self.out.push(' ');
                        self.node(x, col);
                    } else {
                        self.out.push('\n');
                        // Sequences under a key are not indented (PyYAML's indentless).
                        let c = if x.is_array() { col } else { col + self.indent };
                        self.out.push_str(&" ".repeat(c));
                        self.node(x, c);
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(&" ".repeat(col));
                    }
                    self.out.push('-');
                    if self.inline(x) {
                        self.out.push(' ');
                        self.node(x, col + 2);
                    } else {
                        let pad = self.indent.max(2) - 1;
                        self.out.push_str(&" ".repeat(pad));
                        self.node(x, col + 1 + pad);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Mapping keys sorted, as PyYAML's `sort_keys=True` (its default) writes them.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `yaml.dump(v, indent=indent, default_flow_style=flow_leaves ? None : False)`.
pub fn dump(v: &Value, indent: usize, flow_leaves: bool) -> String {
    let v = &sorted(v);
    let mut e = Emitter {
        indent: indent.max(2),
        flow_leaves,
        out: String::new(),
    };
    e.node(v, 0);
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nice_yaml_like_pyyaml() {
        // ansible-core 2.19: {{ {...} | to_nice_yaml }}
        let v = json!({"a": [1, 2.5, null, true], "b": "\u{e9} x",
            "c": {"d": "yes", "e": "1.0", "f": ""}, "g": [{"h": 1, "i": [1]}],
            "j": "it's: x", "l": "#x", "m": "null", "n": "-", "o": "@x", "p": " lead",
            "q": "*x", "r": "a: b", "s": "a #b", "t": "08", "u": "1e3", "v": "x: ", "w": "~",
            "y": "[x]"});
        assert_eq!(
            dump(&v, 4, false),
            "a:\n- 1\n- 2.5\n- null\n- true\nb: \u{e9} x\nc:\n    d: 'yes'\n    e: '1.0'\n    f: ''\ng:\n-   h: 1\n    i:\n    - 1\nj: 'it''s: x'\nl: '#x'\nm: 'null'\nn: '-'\no: '@x'\np: ' lead'\nq: '*x'\nr: 'a: b'\ns: 'a #b'\nt: 08\nu: 1e3\nv: 'x: '\nw: '~'\ny: '[x]'\n"
        );
        assert_eq!(
            dump(&json!({"k": [[1, 2], [3]]}), 4, false),
            "k:\n-   - 1\n    - 2\n-   - 3\n"
        );
        assert_eq!(dump(&json!(""), 4, false), "''\n");
        assert_eq!(dump(&json!([]), 4, false), "[]\n");
    }

    #[test]
    fn keys_sorted_and_nesting_like_pyyaml() {
        // ansible-core 2.19: {{ {...} | to_nice_yaml }} / to_yaml
        let v = json!({"postgresql_hba_entries": [{"type": "local", "database": "all", "user": "postgres", "auth_method": "peer"}, {"type": "host", "address": "127.0.0.1/32", "options": []}], "port": 5432, "ssl": true, "ratio": 0.5, "empty": {}, "path": "/var/lib/pgsql/15/data", "ver": "15", "x": "a:b", "tilde": "~/x", "q": "it's", "star": "*", "pct": "50%", "url": "http://x/y?z=1#a", "dash": "-x", "neg": "-1", "date": "2024-01-01", "ip": "10.0.0.1", "nul": null});
        assert_eq!(dump(&v, 4, false), "dash: -x\ndate: '2024-01-01'\nempty: {}\nip: 10.0.0.1\nneg: '-1'\nnul: null\npath: /var/lib/pgsql/15/data\npct: 50%\nport: 5432\npostgresql_hba_entries:\n-   auth_method: peer\n    database: all\n    type: local\n    user: postgres\n-   address: 127.0.0.1/32\n    options: []\n    type: host\nq: it's\nratio: 0.5\nssl: true\nstar: '*'\ntilde: ~/x\nurl: http://x/y?z=1#a\nver: '15'\nx: a:b\n");
        let v = json!([[], {}, [[1]], {"a": {"b": {"c": [1, {"d": 2}]}}}]);
        assert_eq!(dump(&v, 4, false), "- []\n- {}\n-   -   - 1\n-   a:\n        b:\n            c:\n            - 1\n            -   d: 2\n");
        let v = json!({"a": [{"b": [1, 2], "c": "x"}], "k y": 1, "1": 2});
        assert_eq!(
            dump(&v, 2, true),
            "'1': 2\na:\n- b: [1, 2]\n  c: x\nk y: 1\n"
        );
        let v = json!({"list": ["a b", "c:d", "e, f", "[g]", "{h}", "i#j", "k #l"]});
        assert_eq!(
            dump(&v, 2, true),
            "list: [a b, 'c:d', 'e, f', '[g]', '{h}', i#j, 'k #l']\n"
        );
    }

    #[test]
    fn to_yaml_flow_leaves() {
        let v = json!({"a": [1, 2.5, null, true], "b": "\u{e9} x", "c": {"d": "yes"}, "g": [{"h": 1, "i": [1]}]});
        assert_eq!(
            dump(&v, 2, true),
            "a: [1, 2.5, null, true]\nb: \u{e9} x\nc: {d: 'yes'}\ng:\n- h: 1\n  i: [1]\n"
        );
        assert_eq!(dump(&json!([1, "a"]), 2, true), "[1, a]\n");
        assert_eq!(dump(&json!("abc"), 2, true), "abc\n");
    }
}
