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
/// passes, so chains of references resolve. A pass renders only the variables that read no
/// variable still written as a template: rendering `url: "{{ crt | urlencode }}"` while `crt` is
/// still `"{{ ssl_dir }}/root.crt"` would put that template's text, percent-encoded, into the
/// value, which no later pass can mend (`DATABASE_URL` of role cap held
/// `%7B%7B%20cap_config_dir...` when `cap_ssl_dir` kept its default). When no variable is ready
/// (a cycle) or the ready ones stop changing, every pending variable is tried (the old way), so
/// that what cannot be rendered reports its error. The errors of the last pass are returned,
/// reported if a task reads the variable.
pub fn resolve(vars: &mut Map<String, Value>, templar: &Templar) -> Map<String, Value> {
    let mut errors = Map::new();
    let mut all = false;
    for _ in 0..32 {
        let pending: Vec<String> = vars
            .iter()
            .filter(|(_, v)| has_template(v))
            .map(|(k, _)| k.clone())
            .collect();
        if pending.is_empty() {
            break;
        }
        let batch: Vec<String> = if all {
            pending.clone()
        } else {
            let waiting: std::collections::HashSet<&str> =
                pending.iter().map(String::as_str).collect();
            let ready: Vec<String> = pending
                .iter()
                .filter(|k| {
                    let mut names = Vec::new();
                    if let Some(v) = vars.get(k.as_str()) {
                        read_names(templar, v, &mut names);
                    }
                    !names
                        .iter()
                        .any(|n| n != *k && waiting.contains(n.as_str()))
                })
                .cloned()
                .collect();
            if ready.is_empty() {
                pending.clone()
            } else {
                ready
            }
        };
        let whole = batch.len() == pending.len();
        let ctx = context(vars);
        let mut progressed = false;
        errors = Map::new();
        for k in batch {
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
            if whole {
                break;
            }
            all = true;
        }
    }
    errors
}

/// The root variable names the template strings inside `v` read (none for a template that does
/// not parse: rendering it reports the error).
fn read_names(templar: &Templar, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if is_template(s) => {
            if let Ok(n) = templar.names(s) {
                out.extend(n.all);
            }
        }
        Value::Array(a) => a.iter().for_each(|i| read_names(templar, i, out)),
        Value::Object(o) => o.values().for_each(|i| read_names(templar, i, out)),
        _ => {}
    }
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

    /// A filter over a variable that is itself a chain (role cap's DATABASE_URL: `cap_root_crt
    /// | urlencode`, `cap_root_crt: "{{ cap_ssl_dir }}/root.crt"`, `cap_ssl_dir: "{{
    /// cap_config_dir }}/ssl"`): rendered once the chain is, never from a template's text.
    #[test]
    fn a_filtered_chain_renders_from_resolved_values() {
        let t = Templar::new();
        let mut m = json!({
            "url": "pg://h/db?sslrootcert={{ crt | urlencode }}",
            "crt": "{{ ssl_dir }}/root.crt",
            "ssl_dir": "{{ conf_dir }}/ssl",
            "conf_dir": "/etc/cap",
            "config": {"DATABASE_URL": "{{ url }}"},
        })
        .as_object()
        .unwrap()
        .clone();
        let errs = resolve(&mut m, &t);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(m["url"], "pg://h/db?sslrootcert=/etc/cap/ssl/root.crt");
        assert_eq!(m["config"]["DATABASE_URL"], m["url"]);
    }

    /// What cannot be rendered still reports its error, also a variable that reads it; a cycle
    /// ends.
    #[test]
    fn an_undefined_link_or_a_cycle_reports_errors() {
        let t = Templar::new();
        let mut m = json!({"a": "{{ nowhere }}", "b": "{{ a }}/x", "c": "{{ d }}", "d": "{{ c }}"})
            .as_object()
            .unwrap()
            .clone();
        let errs = resolve(&mut m, &t);
        assert!(errs.contains_key("a"), "{errs:?}");
        assert!(errs.contains_key("b"), "{errs:?}");
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
