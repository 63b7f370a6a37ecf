//! Module argument specifications, normalization and "did you mean" errors.
use serde_json::{Map, Value};

use crate::boolean;
use crate::template::is_template;
use crate::template_filters::truthy;

/// The type of an argument. YAML 1.1 habits are accepted: `yes`/`no` for booleans, `0644`,
/// `"0644"` and `"u=rw,g=r"` for modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    Float,
    /// A file mode: octal number or string, or symbolic.
    Mode,
    /// A list; a string becomes a one-element list (or is split on commas for `ListCsv`).
    List,
    ListCsv,
    Dict,
    /// Anything (a string, a number, a list...).
    Raw,
}

/// One argument of a module.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub name: &'static str,
    pub kind: Kind,
    pub aliases: &'static [&'static str],
    pub required: bool,
    pub choices: &'static [&'static str],
    /// Inclusive bounds of an `Int` or `Float` argument.
    pub range: Option<(i64, i64)>,
}

/// The bounds of a TCP port argument.
pub const PORT_RANGE: (i64, i64) = (1, 65_535);

impl Arg {
    pub const fn new(name: &'static str, kind: Kind) -> Self {
        Arg {
            name,
            kind,
            aliases: &[],
            required: false,
            choices: &[],
            range: None,
        }
    }
    /// Inclusive bounds for a number (a port, a timeout): checked at load time for a literal,
    /// after rendering for a template.
    pub const fn range(mut self, min: i64, max: i64) -> Self {
        self.range = Some((min, max));
        self
    }
    pub const fn aliases(mut self, a: &'static [&'static str]) -> Self {
        self.aliases = a;
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn choices(mut self, c: &'static [&'static str]) -> Self {
        self.choices = c;
        self
    }
}

/// The common file attribute arguments (`owner`, `group`, `mode`).
pub const FILE_ATTRS: [Arg; 3] = [
    Arg::new("owner", Kind::Str),
    Arg::new("group", Kind::Str),
    Arg::new("mode", Kind::Mode),
];

/// The closest name in `valid` to `name`, if any is close.
pub fn did_you_mean<'a>(name: &str, valid: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    valid
        .into_iter()
        .map(|v| (strsim::jaro_winkler(name, v), v))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, v)| v)
}

/// Normalized arguments: canonical names, typed values.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub map: Map<String, Value>,
}

/// An argument problem: which argument (if one), and what is wrong.
#[derive(Debug, Clone)]
pub struct ArgError {
    pub arg: Option<String>,
    pub msg: String,
}

fn err(arg: &str, msg: String) -> ArgError {
    ArgError {
        arg: Some(arg.to_string()),
        msg,
    }
}

/// Map raw arguments to canonical names and check them against the spec. Templated values are
/// left alone when `lenient` (load time: checked again after rendering).
pub fn normalize(
    module: &str,
    spec: Option<&[Arg]>,
    raw: &Map<String, Value>,
    lenient: bool,
) -> Result<Args, ArgError> {
    let Some(spec) = spec else {
        return Ok(Args { map: raw.clone() });
    };
    let mut out = Map::new();
    for (key, value) in raw {
        let Some(arg) = spec
            .iter()
            .find(|a| a.name == key || a.aliases.contains(&key.as_str()))
        else {
            let names = spec
                .iter()
                .flat_map(|a| std::iter::once(a.name).chain(a.aliases.iter().copied()));
            let hint = did_you_mean(key, names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let valid: Vec<&str> = spec.iter().map(|a| a.name).collect();
            return Err(err(
                key,
                format!(
                    "unsupported argument `{key}` for module `{module}`{hint}; valid arguments: {}",
                    valid.join(", ")
                ),
            ));
        };
        if out.contains_key(arg.name) {
            return Err(err(
                key,
                format!("argument `{}` given twice (through an alias)", arg.name),
            ));
        }
        let templated = value.as_str().is_some_and(is_template);
        let v = if templated && lenient {
            value.clone()
        } else {
            coerce(arg, value).map_err(|m| err(key, m))?
        };
        out.insert(arg.name.to_string(), v);
    }
    for arg in spec.iter().filter(|a| a.required) {
        if !out.contains_key(arg.name) {
            return Err(ArgError {
                arg: None,
                msg: format!(
                    "missing required argument `{}` for module `{module}`",
                    arg.name
                ),
            });
        }
    }
    Ok(Args { map: out })
}

fn coerce(arg: &Arg, v: &Value) -> Result<Value, String> {
    let name = arg.name;
    if v.is_null() {
        return Ok(Value::Null);
    }
    let out = match arg.kind {
        Kind::Str => match v {
            Value::String(_) => v.clone(),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(if *b { "True" } else { "False" }.into()),
            _ => return Err(format!("argument `{name}` must be a string, got {v}")),
        },
        Kind::Bool => match v {
            Value::Bool(_) => v.clone(),
            Value::String(s) if s.is_empty() => Value::Bool(false),
            Value::String(s) => match boolean::parse(s) {
                Some(b) => Value::Bool(b),
                None => {
                    return Err(format!(
                        "argument `{name}` must be a boolean (yes/no), got `{s}`"
                    ))
                }
            },
            Value::Number(_) => Value::Bool(truthy(v)),
            _ => {
                return Err(format!(
                    "argument `{name}` must be a boolean (yes/no), got {v}"
                ))
            }
        },
        Kind::Int => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("argument `{name}` must be an integer, got `{s}`"))?,
            _ => return Err(format!("argument `{name}` must be an integer, got {v}")),
        },
        Kind::Float => match v {
            Value::Number(_) => v.clone(),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("argument `{name}` must be a number, got `{s}`"))?,
            _ => return Err(format!("argument `{name}` must be a number, got {v}")),
        },
        Kind::Mode => match v {
            // YAML 1.1 already turned an unquoted 0644 into 420: that is the mode.
            Value::Number(n) => match n.as_u64() {
                Some(m) if m <= 0o7777 => Value::String(format!("{m:04o}")),
                _ => return Err(format!("argument `{name}`: `{n}` is not a file mode")),
            },
            Value::String(s) => {
                crate::modules::files::mode::ModeSpec::parse(s)
                    .map_err(|e| format!("argument `{name}`: {e}"))?;
                v.clone()
            }
            _ => {
                return Err(format!(
                    "argument `{name}` must be a mode like '0644' or 'u=rw,g=r', got {v}"
                ))
            }
        },
        Kind::List => match v {
            Value::Array(_) => v.clone(),
            other => Value::Array(vec![other.clone()]),
        },
        Kind::ListCsv => match v {
            Value::Array(_) => v.clone(),
            Value::String(s) => Value::Array(
                s.split(',')
                    .map(|p| Value::String(p.trim().to_string()))
                    .filter(|p| p.as_str() != Some(""))
                    .collect(),
            ),
            other => Value::Array(vec![other.clone()]),
        },
        Kind::Dict => match v {
            Value::Object(_) => v.clone(),
            _ => return Err(format!("argument `{name}` must be a mapping, got {v}")),
        },
        Kind::Raw => v.clone(),
    };
    if let (Some((min, max)), Some(n)) = (arg.range, out.as_f64()) {
        if !(n.is_finite() && n >= min as f64 && n <= max as f64) {
            return Err(format!(
                "argument `{name}` must be from {min} to {max}, got {out}"
            ));
        }
    }
    if !arg.choices.is_empty() {
        if let Some(s) = out.as_str() {
            if !arg.choices.contains(&s) {
                let hint = did_you_mean(s, arg.choices.iter().copied())
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "argument `{name}` must be one of {}, got `{s}`{hint}",
                    arg.choices.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

impl Args {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }
    /// A string argument rendered from any scalar.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.get(name).map_or(default, truthy)
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Value::as_i64)
    }
    pub fn float(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Value::as_f64)
    }
    pub fn list(&self, name: &str) -> Vec<Value> {
        match self.get(name) {
            Some(Value::Array(a)) => a.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        }
    }
    /// A required string (validated by the spec, so a missing one is a module bug).
    pub fn req(&self, name: &str) -> Result<String, String> {
        self.string(name)
            .ok_or_else(|| format!("missing required argument `{name}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: &[Arg] = &[
        Arg::new("dest", Kind::Str).aliases(&["path"]).required(),
        Arg::new("backup", Kind::Bool),
        Arg::new("mode", Kind::Mode),
        Arg::new("state", Kind::Str).choices(&["present", "absent"]),
    ];

    fn raw(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn unknown_argument_suggests_the_closest() {
        let e = normalize("copy", Some(SPEC), &raw(json!({"dset": "/x"})), false).unwrap_err();
        assert!(e.msg.contains("did you mean `dest`"), "{}", e.msg);
        assert!(e.msg.contains("valid arguments: dest, backup, mode, state"));
    }

    #[test]
    fn yaml11_habits() {
        let a = normalize(
            "copy",
            Some(SPEC),
            &raw(json!({"path": "/x", "backup": "yes", "mode": 420})),
            false,
        )
        .unwrap();
        assert_eq!(a.str("dest"), Some("/x"));
        assert!(a.bool("backup", false));
        assert_eq!(a.str("mode"), Some("0644"));
    }

    #[test]
    fn choices_and_required() {
        let e = normalize(
            "x",
            Some(SPEC),
            &raw(json!({"dest": "/x", "state": "presnt"})),
            false,
        )
        .unwrap_err();
        assert!(e.msg.contains("did you mean `present`"));
        let e = normalize("x", Some(SPEC), &raw(json!({})), false).unwrap_err();
        assert!(e.msg.contains("missing required argument `dest`"));
    }

    #[test]
    fn numbers_stay_within_their_range() {
        const PORTS: &[Arg] = &[
            Arg::new("port", Kind::Int).range(PORT_RANGE.0, PORT_RANGE.1),
            Arg::new("t", Kind::Float).range(0, 60),
        ];
        for (k, v) in [
            ("port", json!(5432)),
            ("port", json!("65535")),
            ("t", json!(0.5)),
        ] {
            assert!(normalize("x", Some(PORTS), &raw(json!({k: v})), false).is_ok());
        }
        for (k, v) in [
            ("port", json!(0)),
            ("port", json!(70000)),
            ("port", json!("-1")),
            ("t", json!(60.5)),
            ("t", json!("inf")),
        ] {
            let e = normalize("x", Some(PORTS), &raw(json!({k: v.clone()})), false).unwrap_err();
            assert!(e.msg.contains("must be"), "{k}={v}: {}", e.msg);
        }
    }

    #[test]
    fn templated_values_wait_for_run_time() {
        let a = normalize(
            "x",
            Some(SPEC),
            &raw(json!({"dest": "/x", "backup": "{{ b }}"})),
            true,
        )
        .unwrap();
        assert_eq!(a.str("backup"), Some("{{ b }}"));
    }
}
