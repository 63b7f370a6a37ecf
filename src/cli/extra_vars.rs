//! `-e` extra variables: `key=value key2=value2`, `@file.yml`, or inline YAML/JSON.
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::vars::{locs_of, VarLocs};
use crate::yaml;

pub fn parse(items: &[String]) -> Result<Map<String, Value>> {
    parse_located(items).map(|(m, _)| m)
}

/// The extra variables, and where those read from a file (`-e @vars.yml`) or an inline mapping
/// were written; `key=value` ones have no position.
pub fn parse_located(items: &[String]) -> Result<(Map<String, Value>, VarLocs)> {
    let mut out = Map::new();
    let mut locs = VarLocs::new();
    for item in items {
        let item = item.trim();
        if let Some(file) = item.strip_prefix('@') {
            let node = yaml::load_file_single(Path::new(file))?;
            match node.to_json() {
                Value::Object(m) => {
                    for k in m.keys() {
                        locs.remove(k);
                    }
                    out.extend(m);
                    locs.extend(locs_of(&node));
                }
                Value::Null => {}
                _ => return Err(node.error("extra vars file must hold a mapping")),
            }
        } else if item.starts_with('{') {
            let node = yaml::parse_single(item, Path::new("<-e>"))?;
            match node.to_json() {
                Value::Object(m) => {
                    for k in m.keys() {
                        locs.remove(k);
                    }
                    out.extend(m);
                    locs.extend(locs_of(&node));
                }
                _ => return Err(Error::Usage(format!("-e {item}: expected a mapping"))),
            }
        } else {
            let parts = shlex::split(item)
                .ok_or_else(|| Error::Usage(format!("-e {item}: unbalanced quotes")))?;
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    return Err(Error::Usage(format!(
                        "-e {p}: expected key=value, @file.yml or a YAML/JSON mapping"
                    )));
                };
                // Like Ansible, key=value extra vars are strings.
                out.insert(k.to_string(), Value::String(v.to_string()));
                locs.remove(k);
            }
        }
    }
    Ok((out, locs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let m = parse(&["a=1 b='x y'".into(), "{c: [1, 2], d: yes}".into()]).unwrap();
        assert_eq!(m["a"], "1");
        assert_eq!(m["b"], "x y");
        assert_eq!(m["c"], serde_json::json!([1, 2]));
        assert_eq!(m["d"], true);
        assert!(parse(&["novalue".into()]).is_err());
    }
}
