//! The JSON of `castellan inventory --list` and `--host NAME`, in `ansible-inventory`'s shape:
//! `{"_meta": {"hostvars": {...}, "profile": "inventory_legacy"}, "all": {"children": [...]},
//! GROUP: {"children": [...], "hosts": [...]}}`. Every object's keys are sorted (Ansible dumps with
//! `sort_keys=True`); a group with neither hosts nor children is left out (but still named in its
//! parent's `children`); hosts without variables are left out of `hostvars`.
use serde_json::{Map, Value};

use super::{Inventory, ALL, LOCALHOST_NAMES};

/// Names `ansible-inventory` removes from host variables (`C.INTERNAL_STATIC_VARS`).
const INTERNAL_VARS: [&str; 33] = [
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_play_batch",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_role_names",
    "ansible_playbook_python",
    "ansible_role_name",
    "ansible_role_names",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_name",
    "role_names",
    "role_path",
    "role_uuid",
];

impl Inventory {
    /// `ansible-inventory --list`.
    pub fn list_json(&self) -> Value {
        let mut out = Map::new();
        let mut seen = std::collections::HashSet::new();
        self.format_group(ALL, &mut out, &mut seen);
        let mut hostvars = Map::new();
        for h in self.group_hosts.get(ALL).into_iter().flatten() {
            if let Some(host) = self.host(h) {
                let vars = public_vars(&host.vars);
                if !vars.is_empty() {
                    hostvars.insert(h.clone(), Value::Object(vars));
                }
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        meta.insert("profile".into(), Value::from("inventory_legacy"));
        out.insert("_meta".into(), Value::Object(meta));
        sort_keys(Value::Object(out))
    }

    /// `ansible-inventory --host NAME`: the host's merged variables; for `localhost` (or
    /// `127.0.0.1`, `::1`) not in the inventory, the implicit localhost's.
    pub fn host_json(&self, name: &str) -> Option<Value> {
        let host = match self.host(name) {
            Some(h) => h.clone(),
            None if LOCALHOST_NAMES.contains(&name) => self.implicit_localhost(),
            None => return None,
        };
        Some(sort_keys(Value::Object(public_vars(&host.vars))))
    }

    fn format_group(
        &self,
        name: &str,
        out: &mut Map<String, Value>,
        seen: &mut std::collections::HashSet<String>,
    ) {
        let group = &self.groups[name];
        let mut entry = Map::new();
        if name != ALL && !group.hosts.is_empty() {
            entry.insert("hosts".into(), Value::from(group.hosts.clone()));
        }
        if !group.children.is_empty() {
            entry.insert("children".into(), Value::from(group.children.clone()));
        }
        // Ansible inserts the group before recursing, so a child's entry cannot replace it.
        let empty = entry.is_empty();
        if !empty {
            out.insert(name.to_string(), Value::Object(entry));
        }
        for child in &group.children {
            if seen.insert(child.clone()) {
                self.format_group(child, out, seen);
            }
        }
    }
}

fn public_vars(vars: &Map<String, Value>) -> Map<String, Value> {
    vars.iter()
        .filter(|(k, _)| !INTERNAL_VARS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Sort every object's keys, recursively, as `json.dumps(sort_keys=True)` does.
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}
