//! Variable precedence and lazy templating of variables that refer to other variables.
//!
//! Lowest to highest, as Ansible orders them: role defaults < inventory (group vars, parents
//! before children, then host vars) < play vars < play vars_files < role vars < block and
//! include vars < task vars < set_fact/registered < role params < extra vars.
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::Location;
use crate::template::{context, is_template, Templar};
use crate::yaml::Node;

/// Where each variable of a layer was written (the position of its value), for errors found
/// after the layers were merged.
pub type VarLocs = std::collections::HashMap<String, Location>;

/// The positions of the values of a mapping node (a `vars:` section, a vars file).
pub fn locs_of(node: &Node) -> VarLocs {
    node.as_map()
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.key_string(), v.loc.clone()))
        .collect()
}

/// Every layer that may hold variables for one task on one host.
#[derive(Default)]
pub struct Layers<'a> {
    pub role_defaults: Option<&'a Map<String, Value>>,
    pub inventory: Option<&'a Map<String, Value>>,
    pub play_vars: Option<&'a Map<String, Value>>,
    pub vars_files: Option<&'a Map<String, Value>>,
    pub role_vars: Option<&'a Map<String, Value>>,
    pub scope_vars: &'a [Arc<Map<String, Value>>],
    pub task_vars: Option<&'a Map<String, Value>>,
    pub facts: Option<&'a Map<String, Value>>,
    pub role_params: Option<&'a Map<String, Value>>,
    pub extra: Option<&'a Map<String, Value>>,
}

fn put(into: &mut Map<String, Value>, from: Option<&Map<String, Value>>) {
    if let Some(m) = from {
        for (k, v) in m {
            into.insert(k.clone(), v.clone());
        }
    }
}

impl Layers<'_> {
    /// Merge the layers (later wins; dictionaries are replaced, not merged, as in Ansible).
    pub fn merge(&self) -> Map<String, Value> {
        let mut m = Map::new();
        put(&mut m, self.role_defaults);
        put(&mut m, self.inventory);
        put(&mut m, self.play_vars);
        put(&mut m, self.vars_files);
        put(&mut m, self.role_vars);
        for s in self.scope_vars {
            put(&mut m, Some(s));
        }
        put(&mut m, self.task_vars);
        put(&mut m, self.facts);
        put(&mut m, self.role_params);
        put(&mut m, self.extra);
        m
    }
}

/// Does a value hold a template anywhere inside?
pub fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(a) => a.iter().any(has_template),
        Value::Object(o) => o.values().any(has_template),
        _ => false,
    }
}

/// Render variables whose values are templates (`pki_dir: "{{ inventory_dir }}/pki"`), in
/// passes, so chains of references resolve. A variable that cannot be rendered keeps its
/// error, reported if a task reads it.
pub fn resolve(vars: &mut Map<String, Value>, templar: &Templar) -> Map<String, Value> {
    let mut errors = Map::new();
    for _ in 0..6 {
        let pending: Vec<String> = vars
            .iter()
            .filter(|(k, v)| !errors.contains_key(*k) && has_template(v))
            .map(|(k, _)| k.clone())
            .collect();
        if pending.is_empty() {
            break;
        }
        let ctx = context(vars);
        let mut progressed = false;
        for k in pending {
            let Some(v) = vars.get(&k) else { continue };
            match templar.render_value(v, &ctx) {
                Ok(new) => {
                    if &new != v {
                        progressed = true;
                    }
                    vars.insert(k, new);
                }
                Err(e) => {
                    errors.insert(k, Value::String(e));
                }
            }
        }
        if !progressed {
            break;
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn precedence_order() {
        let d = json!({"a": "default", "b": "default"})
            .as_object()
            .unwrap()
            .clone();
        let inv = json!({"a": "inventory", "c": "inventory"})
            .as_object()
            .unwrap()
            .clone();
        let extra = json!({"c": "extra"}).as_object().unwrap().clone();
        let m = Layers {
            role_defaults: Some(&d),
            inventory: Some(&inv),
            extra: Some(&extra),
            ..Layers::default()
        }
        .merge();
        assert_eq!(m["a"], "inventory");
        assert_eq!(m["b"], "default");
        assert_eq!(m["c"], "extra");
    }

    #[test]
    fn chained_references_resolve() {
        let t = Templar::new();
        let mut m = json!({"a": "{{ b }}/x", "b": "{{ c }}", "c": "root", "n": "{{ [1, 2] }}"})
            .as_object()
            .unwrap()
            .clone();
        let errs = resolve(&mut m, &t);
        assert!(errs.is_empty());
        assert_eq!(m["a"], "root/x");
        assert_eq!(m["n"], json!([1, 2]));
    }
}
