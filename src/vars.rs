//! Variable precedence and lazy templating of variables that refer to other variables.
//!
//! Lowest to highest, as Ansible orders them (see [`Level`]): role defaults < inventory (group
//! vars, parents before children, then host vars) < play vars < play vars_files < role vars <
//! block vars < task vars < set_fact/registered < role params < include params < extra vars.
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

/// Where a layer of variables comes from, lowest precedence first (the order of the variants is
/// the precedence), as Ansible's "Understanding variable precedence" orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `roles/NAME/defaults/main.yml`.
    RoleDefaults,
    /// Inventory group vars (parents before children), then host vars.
    Inventory,
    /// The play's `vars:`.
    PlayVars,
    /// The play's `vars_files:`.
    VarsFiles,
    /// `roles/NAME/vars/main.yml`.
    RoleVars,
    /// `vars:` of the enclosing blocks, outermost first.
    BlockVars,
    /// The task's own `vars:`.
    TaskVars,
    /// `set_fact` and registered results.
    Facts,
    /// Parameters of a `roles:` entry (`- {role: x, port: 1}`).
    RoleParams,
    /// Parameters of the enclosing includes, outermost first: the `vars:` of `include_tasks`,
    /// `import_tasks`, `include_role`, `import_role`, and the loop item of a looped include.
    IncludeParams,
    /// `-e` on the command line: always wins.
    Extra,
}

/// The layers of variables for one task on one host, added in any order.
#[derive(Default)]
pub struct Layers<'a>(Vec<(Level, &'a Map<String, Value>)>);

impl<'a> Layers<'a> {
    /// Add a layer; layers of one level keep the order they were added in (later wins).
    pub fn add(&mut self, level: Level, vars: &'a Map<String, Value>) -> &mut Self {
        self.0.push((level, vars));
        self
    }

    /// Merge the layers, higher levels over lower ones (dictionaries are replaced, not merged,
    /// as in Ansible).
    pub fn merge(&self) -> Map<String, Value> {
        let mut layers: Vec<&(Level, &Map<String, Value>)> = self.0.iter().collect();
        layers.sort_by_key(|(level, _)| *level);
        let mut m = Map::new();
        for (_, vars) in layers {
            for (k, v) in vars.iter() {
                m.insert(k.clone(), v.clone());
            }
        }
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
/// passes, so chains of references resolve. A variable that fails in one pass is tried again in
/// the next while others still change (it may have read one that was not rendered yet: `first`
/// of a list still written as a template); the errors of the last pass are returned, reported
/// if a task reads the variable.
/// The root names the templates inside `v` read (syntax errors read nothing here).
fn reads(v: &Value, templar: &Templar) -> Vec<String> {
    match v {
        Value::String(s) if is_template(s) => templar.names(s).map(|n| n.all).unwrap_or_default(),
        Value::Array(a) => a.iter().flat_map(|x| reads(x, templar)).collect(),
        Value::Object(o) => o.values().flat_map(|x| reads(x, templar)).collect(),
        _ => Vec::new(),
    }
}

pub fn resolve(vars: &mut Map<String, Value>, templar: &Templar) -> Map<String, Value> {
    let mut errors = Map::new();
    let mut force = false;
    for _ in 0..12 {
        let pending: Vec<String> = vars
            .iter()
            .filter(|(_, v)| has_template(v))
            .map(|(k, _)| k.clone())
            .collect();
        if pending.is_empty() {
            break;
        }
        let ctx = context(vars);
        let mut progressed = false;
        errors = Map::new();
        // A variable whose template reads another pending one waits for it: filters such as
        // `first` accept the raw template text too and would answer wrongly, not fail. When
        // every pending one waits (a cycle), all render and report their errors.
        let waiting: Vec<&String> = pending
            .iter()
            .filter(|k| {
                vars.get(*k).is_some_and(|v| {
                    reads(v, templar)
                        .iter()
                        .any(|n| n != *k && pending.contains(n))
                })
            })
            .collect();
        let deferred = !force && !waiting.is_empty() && waiting.len() < pending.len();
        let pending: Vec<String> = if deferred {
            pending
                .iter()
                .filter(|k| !waiting.contains(k))
                .cloned()
                .collect()
        } else {
            pending.clone()
        };
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
            if deferred {
                // Nothing moved: the waiting ones render now, to report what stops them.
                force = true;
                continue;
            }
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
        let map = |v: serde_json::Value| v.as_object().unwrap().clone();
        let d = map(json!({"a": "default", "b": "default"}));
        let inv = map(json!({"a": "inventory", "c": "inventory"}));
        let extra = map(json!({"c": "extra"}));
        let m = Layers::default()
            .add(Level::Extra, &extra)
            .add(Level::RoleDefaults, &d)
            .add(Level::Inventory, &inv)
            .merge();
        assert_eq!(m["a"], "inventory");
        assert_eq!(m["b"], "default");
        assert_eq!(m["c"], "extra");
    }

    #[test]
    fn every_level_beats_the_one_below_and_a_level_keeps_its_order() {
        let levels = [
            Level::RoleDefaults,
            Level::Inventory,
            Level::PlayVars,
            Level::VarsFiles,
            Level::RoleVars,
            Level::BlockVars,
            Level::TaskVars,
            Level::Facts,
            Level::RoleParams,
            Level::IncludeParams,
            Level::Extra,
        ];
        let maps: Vec<Map<String, Value>> = (0..levels.len())
            .map(|i| json!({"x": i}).as_object().unwrap().clone())
            .collect();
        for top in 1..levels.len() {
            // Added highest first: the order of adding does not matter across levels.
            let mut l = Layers::default();
            for i in (0..=top).rev() {
                l.add(levels[i], &maps[i]);
            }
            assert_eq!(l.merge()["x"], json!(top), "{:?}", levels[top]);
        }
        let (outer, inner) = (map_of("outer"), map_of("inner"));
        let m = Layers::default()
            .add(Level::IncludeParams, &outer)
            .add(Level::IncludeParams, &inner)
            .merge();
        assert_eq!(m["x"], "inner");
    }

    fn map_of(x: &str) -> Map<String, Value> {
        json!({ "x": x }).as_object().unwrap().clone()
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

    /// `first` fails on the string `"{{ groups[...] }}"` in the pass before `dbs` is a list: that
    /// error must not stick once `dbs` renders (`cast_control_panel_database: "{{
    /// cast_databases | first }}"`). An error that remains after the last pass is still reported.
    #[test]
    fn an_error_from_an_earlier_pass_is_retried_once_its_inputs_render() {
        let t = Templar::new();
        let mut m = json!({
            "dbs": "{{ groups }}",
            "first_db": "{{ dbs | first }}",
            "groups": ["db1", "db2"],
            "broken": "{{ dbs | first | nosuchfilter }}",
        })
        .as_object()
        .unwrap()
        .clone();
        let errs = resolve(&mut m, &t);
        assert_eq!(m["first_db"], "db1", "{errs:?}");
        assert!(!errs.contains_key("first_db"), "{errs:?}");
        assert!(errs.contains_key("broken"), "{errs:?}");
    }
}
