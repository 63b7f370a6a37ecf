//! Binding a call's arguments to its Python signature: positional ones arrive as `a0`, `a1`...
//! (the lowering's names, jinja-contract item 1) or as tera's positional test arguments, keyword
//! ones by name or by an old alias. Errors read like Python's (`missing required argument`,
//! `unexpected keyword argument`, `takes at most N arguments`).
use std::collections::HashMap;

use serde_json::{Map, Value};
use tera::{Error, Result};

use super::pystr;
use super::pyval;
use super::signatures::Sig;
use super::undefined;

#[derive(Debug)]
pub struct Bound {
    pub name: &'static str,
    pub params: &'static [&'static str],
    slots: Vec<Option<Value>>,
    /// Extra positional arguments (`*args`), in order.
    pub extra: Vec<Value>,
    /// Extra keyword arguments (`**kwargs`).
    pub kw: Map<String, Value>,
}

fn positional_index(key: &str) -> Option<usize> {
    key.strip_prefix('a')
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok())
}

pub fn err(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::msg(format!("{name}: {msg}"))
}

impl Bound {
    /// Bind tera's named arguments (`a0=`, `sep=`...) to `sig`.
    pub fn named(sig: &'static Sig, args: &HashMap<String, Value>) -> Result<Bound> {
        let mut pos: Vec<(usize, Value)> = Vec::new();
        let mut named: Vec<(&str, Value)> = Vec::new();
        for (k, v) in args {
            match positional_index(k) {
                Some(i) if !sig.params.contains(&k.as_str()) => pos.push((i, v.clone())),
                _ => named.push((k.as_str(), v.clone())),
            }
        }
        pos.sort_by_key(|(i, _)| *i);
        named.sort_by(|x, y| x.0.cmp(y.0));
        Self::bind(sig, pos, named)
    }

    /// Bind positional arguments (tera's tests).
    pub fn positional(sig: &'static Sig, args: &[Value]) -> Result<Bound> {
        Self::bind(sig, args.iter().cloned().enumerate().collect(), Vec::new())
    }

    fn bind(
        sig: &'static Sig,
        pos: Vec<(usize, Value)>,
        named: Vec<(&str, Value)>,
    ) -> Result<Bound> {
        let mut b = Bound {
            name: sig.name,
            params: sig.params,
            slots: vec![None; sig.params.len()],
            extra: Vec::new(),
            kw: Map::new(),
        };
        for (n, (i, v)) in pos.into_iter().enumerate() {
            if n != i {
                return Err(err(
                    sig.name,
                    format!("positional argument {n} is missing (got a{i})"),
                ));
            }
            if i < sig.params.len() && !sig.kwonly {
                b.slots[i] = Some(v);
            } else if sig.varargs {
                b.extra.push(v);
            } else {
                return Err(err(
                    sig.name,
                    format!(
                        "takes at most {} argument(s), {} given",
                        sig.params.len(),
                        i + 1
                    ),
                ));
            }
        }
        for (k, v) in named {
            let target = sig
                .aliases
                .iter()
                .find(|(alias, _)| *alias == k)
                .map_or(k, |(_, p)| *p);
            match sig.params.iter().position(|p| *p == target) {
                Some(i) if b.slots[i].is_some() => {
                    return Err(err(
                        sig.name,
                        format!("got multiple values for argument '{target}'"),
                    ))
                }
                Some(i) => b.slots[i] = Some(v),
                None if sig.kwargs => {
                    b.kw.insert(k.to_string(), v);
                }
                None => {
                    return Err(err(
                        sig.name,
                        format!("got an unexpected keyword argument '{k}'"),
                    ))
                }
            }
        }
        if let Some(missing) = (0..sig.required).find(|i| b.slots[*i].is_none()) {
            return Err(err(
                sig.name,
                format!("missing required argument '{}'", sig.params[missing]),
            ));
        }
        Ok(b)
    }

    /// Refuse undefined arguments (`'x' is undefined`).
    pub fn defined(self) -> Result<Bound> {
        for v in self
            .slots
            .iter()
            .flatten()
            .chain(&self.extra)
            .chain(self.kw.values())
        {
            undefined::refuse(v)?;
        }
        Ok(self)
    }

    /// The value of parameter `i`, if given.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.slots.get(i).and_then(Option::as_ref)
    }

    /// Parameter `i`, or null when omitted (Python's `None` default).
    pub fn val(&self, i: usize) -> Value {
        self.get(i).cloned().unwrap_or(Value::Null)
    }

    fn pname(&self, i: usize) -> &str {
        self.params.get(i).copied().unwrap_or("?")
    }

    pub fn str_or(&self, i: usize, default: &str) -> Result<String> {
        match self.get(i) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(pystr::str(other)),
        }
    }

    /// Parameter `i` as a string; required by the signature.
    pub fn str(&self, i: usize) -> Result<String> {
        match self.get(i) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Ok(pystr::str(other)),
            None => Err(err(
                self.name,
                format!("missing argument '{}'", self.pname(i)),
            )),
        }
    }

    /// Python truthiness of parameter `i`.
    pub fn flag(&self, i: usize, default: bool) -> bool {
        self.get(i).map_or(default, pyval::truthy)
    }

    pub fn int_or(&self, i: usize, default: i64) -> Result<i64> {
        match self.get(i) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => pyval::as_i64(v)
                .or_else(|| v.as_f64().map(|f| f as i64))
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    err(
                        self.name,
                        format!(
                            "'{}' must be an integer, got {}",
                            self.pname(i),
                            pystr::repr(v)
                        ),
                    )
                }),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.int_or(i, 0).map(Some),
        }
    }

    /// A keyword of `**kwargs`, with Python truthiness.
    pub fn kw_flag(&self, name: &str, default: bool) -> bool {
        self.kw.get(name).map_or(default, pyval::truthy)
    }
}

/// The operand of a filter, refused when undefined.
pub fn operand(name: &str, v: &Value) -> Result<()> {
    undefined::refuse(v).map_err(|e| err(name, e))
}

/// `v` as a string, or a TypeError naming the filter.
pub fn want_str<'a>(name: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str().ok_or_else(|| {
        err(
            name,
            format!(
                "expected a string, got {} {}",
                pyval::type_name(v),
                pystr::repr(v)
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn positional_keyword_and_alias() {
        let sig = super::super::signatures::filter("join").unwrap();
        let b = Bound::named(sig, &args(&[("a0", json!(","))])).unwrap();
        assert_eq!(b.str(0).unwrap(), ",");
        let b = Bound::named(sig, &args(&[("sep", json!("-"))])).unwrap();
        assert_eq!(b.str(0).unwrap(), "-");
        let b = Bound::named(sig, &args(&[("d", json!("+")), ("attribute", json!("x"))])).unwrap();
        assert_eq!(b.str(1).unwrap(), "x");
        let e = Bound::named(sig, &args(&[("a0", json!(",")), ("d", json!("-"))])).unwrap_err();
        assert!(e.to_string().contains("multiple values"), "{e}");
        let e = Bound::named(sig, &args(&[("bogus", json!(1))])).unwrap_err();
        assert!(
            e.to_string()
                .contains("unexpected keyword argument 'bogus'"),
            "{e}"
        );
        let e = Bound::named(sig, &args(&[("a2", json!(1))])).unwrap_err();
        assert!(
            e.to_string().contains("positional argument 0 is missing"),
            "{e}"
        );
        let three = [("a0", json!(1)), ("a1", json!(1)), ("a2", json!(1))];
        let e = Bound::named(sig, &args(&three)).unwrap_err();
        assert!(e.to_string().contains("at most 2"), "{e}");
        let sig = super::super::signatures::function("__jx_method").unwrap();
        let b = Bound::named(
            sig,
            &args(&[("obj", json!("x")), ("name", json!("m")), ("a0", json!(1))]),
        )
        .unwrap();
        assert_eq!(
            (b.str(1).unwrap(), b.extra.clone()),
            ("m".to_string(), vec![json!(1)])
        );
        let sig = super::super::signatures::filter("replace").unwrap();
        let e = Bound::named(sig, &args(&[("a0", json!("x"))])).unwrap_err();
        assert!(
            e.to_string().contains("missing required argument 'new'"),
            "{e}"
        );
    }
}
