//! Reading YAML (and JSON) inventory sources into groups and hosts, as Ansible's `yaml` inventory
//! plugin does, then `reconcile`: top-level groups become children of `all`, hosts in no group go to
//! `ungrouped`, group depths are computed.
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::hostrange;
use super::{Group, RawHost, ALL, UNGROUPED};
use crate::error::{Error, Location, Result};
use crate::yaml::{self, Node, NodeValue};

/// Keys a group may hold.
const GROUP_KEYS: [&str; 3] = ["hosts", "vars", "children"];
/// Extensions read when a source is a directory (Ansible's `yaml_extensions`).
const INVENTORY_EXTS: [&str; 3] = ["yml", "yaml", "json"];
/// Names skipped in an inventory directory, besides dotfiles (Ansible's `IGNORED_ALWAYS`).
const IGNORED_NAMES: [&str; 3] = ["group_vars", "host_vars", "vars_plugins"];

/// Groups and hosts as the sources define them, before variables are merged.
pub(super) struct Builder {
    pub groups: IndexMap<String, Group>,
    pub hosts: IndexMap<String, RawHost>,
    current: PathBuf,
}

impl Builder {
    pub fn new() -> Self {
        let mut b = Builder {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
            current: PathBuf::new(),
        };
        b.add_group(ALL);
        b.add_group(UNGROUPED);
        b.groups[ALL].children.push(UNGROUPED.into());
        b.groups[UNGROUPED].parents.push(ALL.into());
        b
    }

    /// One `-i` source: a file, or a directory read recursively in lexical order.
    pub fn load_source(&mut self, path: &Path) -> Result<()> {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::read(path, &e))?
                .map(|e| e.map(|e| e.path()).map_err(|err| Error::read(path, &err)))
                .collect::<Result<_>>()?;
            entries.sort();
            for entry in entries {
                let name = entry
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if name.starts_with('.') || IGNORED_NAMES.contains(&name.as_str()) {
                    continue;
                }
                if entry.is_dir() {
                    self.load_source(&entry)?;
                } else if entry
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| INVENTORY_EXTS.contains(&e))
                {
                    self.load_file(&entry)?;
                }
            }
            Ok(())
        } else {
            self.load_file(path)
        }
    }

    fn load_file(&mut self, path: &Path) -> Result<()> {
        self.current = path.to_path_buf();
        let doc = read_document(path).map_err(|e| ini_hint(path, e))?;
        let Some(doc) = doc else {
            return Ok(()); // an empty file is an empty inventory
        };
        let Some(entries) = doc.as_map() else {
            return Err(doc.error(format!(
                "an inventory must be a mapping of group names (`all:` ...), found {}; \
                 castellan reads Ansible's YAML inventory format (INI inventories are not supported)",
                doc.kind()
            )));
        };
        if doc.get("plugin").is_some() {
            return Err(doc.error(
                "this is an inventory plugin configuration (`plugin:`), not a YAML inventory; \
                 inventory plugins are not supported",
            ));
        }
        for (k, v) in entries {
            let name = group_name(k)?;
            self.parse_group(&name, v)?;
        }
        Ok(())
    }

    fn add_group(&mut self, name: &str) {
        if !self.groups.contains_key(name) {
            self.groups.insert(
                name.to_string(),
                Group {
                    name: name.to_string(),
                    vars: Map::new(),
                    var_locs: Default::default(),
                    priority: 1,
                    children: Vec::new(),
                    parents: Vec::new(),
                    hosts: Vec::new(),
                    depth: 0,
                },
            );
        }
    }

    fn parse_group(&mut self, name: &str, data: &Node) -> Result<()> {
        if !matches!(data.value, NodeValue::Map(_) | NodeValue::Null) {
            return Err(data.error(format!(
                "group `{name}` must be a mapping with `hosts`, `vars` or `children` (or empty), found {}",
                data.kind()
            )));
        }
        self.add_group(name);
        for (k, v) in data.as_map().unwrap_or_default() {
            let key = k.key_string();
            if !GROUP_KEYS.contains(&key.as_str()) {
                let hint = strsim_hint(&key);
                return Err(k.error(format!(
                    "unknown key `{key}` in group `{name}`: a group takes only `hosts`, `vars` and `children`{hint} \
                     (to define a child group, put it under `children:`)"
                )));
            }
            let entries = section_entries(name, &key, v)?;
            match key.as_str() {
                "vars" => {
                    for (vk, vv) in &entries {
                        self.set_group_var(name, vk, vv)?;
                    }
                }
                "children" => {
                    for (ck, cv) in &entries {
                        let child = group_name(ck)?;
                        if child == ALL {
                            return Err(ck.error(format!(
                                "group `all` cannot be a child of `{name}`: every group is already under `all`"
                            )));
                        }
                        self.parse_group(&child, cv)?;
                        self.add_child(name, &child, &ck.loc)?;
                    }
                }
                _ => {
                    for (hk, hv) in &entries {
                        self.parse_hosts(name, hk, hv)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn set_group_var(&mut self, group: &str, key: &Node, value: &Node) -> Result<()> {
        let name = key.key_string();
        let Some(g) = self.groups.get_mut(group) else {
            return Err(Error::Internal(format!("group {group} vanished")));
        };
        if name == "ansible_group_priority" {
            g.priority = priority(value)?;
        } else {
            g.var_locs.insert(name.clone(), value.loc.clone());
            g.vars.insert(name, value.to_json());
        }
        Ok(())
    }

    /// Ansible's `Group.add_child_group`: refuses a group that is its own ancestor.
    pub fn add_child(&mut self, parent: &str, child: &str, loc: &Location) -> Result<()> {
        if parent == child {
            return Err(Error::invalid(
                loc,
                format!("group `{child}` cannot be a child of itself"),
            ));
        }
        if self.groups[parent].children.iter().any(|c| c == child) {
            return Ok(());
        }
        if let Some(path) = self.ancestor_path(parent, child) {
            return Err(Error::invalid(
                loc,
                format!(
                    "adding group `{child}` as a child of `{parent}` creates a cycle: {} -> {child}",
                    path.join(" -> ")
                ),
            ));
        }
        self.groups[parent].children.push(child.to_string());
        if !self.groups[child].parents.iter().any(|p| p == parent) {
            self.groups[child].parents.push(parent.to_string());
        }
        Ok(())
    }

    /// If `ancestor` is an ancestor of `group`: the chain `ancestor -> ... -> group`.
    fn ancestor_path(&self, group: &str, ancestor: &str) -> Option<Vec<String>> {
        if group == ancestor {
            return Some(vec![group.to_string()]);
        }
        for p in &self.groups[group].parents {
            if let Some(mut path) = self.ancestor_path(p, ancestor) {
                path.push(group.to_string());
                return Some(path);
            }
        }
        None
    }

    fn parse_hosts(&mut self, group: &str, key: &Node, data: &Node) -> Result<()> {
        let pattern = match &key.value {
            NodeValue::Str(s) | NodeValue::Unsafe(s) => s.as_str(),
            _ => {
                return Err(key.error(format!(
                    "host name must be a string, found {} (quote numbers: \"{}\")",
                    key.kind(),
                    key.key_string()
                )))
            }
        };
        let vars = match &data.value {
            NodeValue::Null => &[][..],
            NodeValue::Map(m) => &m[..],
            _ => {
                return Err(data.error(format!(
                    "host `{pattern}` must be a mapping of variables (or empty), found {}",
                    data.kind()
                )))
            }
        };
        let (base, port) = hostrange::split_port(pattern);
        let names = hostrange::expand(base).map_err(|m| key.error(m))?;
        for name in names {
            if name.is_empty() {
                return Err(key.error("empty host name"));
            }
            self.add_host(&name, group, port.map(|p| (p, &key.loc)));
            if let Some(h) = self.hosts.get_mut(&name) {
                for (vk, vv) in vars {
                    h.vars.insert(vk.key_string(), vv.to_json());
                    h.var_locs.insert(vk.key_string(), vv.loc.clone());
                }
            }
        }
        Ok(())
    }

    /// Ansible's `InventoryData.add_host`: the first source that names a host is its
    /// `inventory_file`; a `:port` suffix sets `ansible_port` when the host is created.
    fn add_host(&mut self, name: &str, group: &str, port: Option<(i64, &Location)>) {
        let host = self.hosts.entry(name.to_string()).or_insert_with(|| {
            let mut vars = Map::new();
            let mut var_locs = crate::vars::VarLocs::new();
            if let Some((p, loc)) = port {
                vars.insert("ansible_port".into(), Value::from(p));
                var_locs.insert("ansible_port".into(), loc.clone());
            }
            RawHost {
                name: name.to_string(),
                vars,
                var_locs,
                file: self.current.clone(),
                groups: Vec::new(),
            }
        });
        // The host's own (short) list of groups says whether the group lists it already:
        // searching the group's list instead took quadratic time on large ranges.
        if !host.groups.iter().any(|g| g == group) {
            host.groups.push(group.to_string());
            if let Some(g) = self.groups.get_mut(group) {
                g.hosts.push(name.to_string());
            }
        }
    }

    /// Ansible's `reconcile_inventory`, run once after every source is read.
    pub fn reconcile(&mut self) -> Result<()> {
        let orphans: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.name != ALL && g.parents.is_empty())
            .map(|g| g.name.clone())
            .collect();
        for g in orphans {
            let loc = Location::file_start(&self.current);
            self.add_child(ALL, &g, &loc)?;
        }
        self.compute_depths();
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in names {
            let closure = self.host_groups(&name);
            let others = closure.iter().any(|g| g != ALL && g != UNGROUPED);
            if closure.iter().any(|g| g == UNGROUPED) {
                if others {
                    self.groups[UNGROUPED].hosts.retain(|h| h != &name);
                    self.hosts[&name].groups.retain(|g| g != UNGROUPED);
                }
            } else if !others {
                self.add_host(&name, UNGROUPED, None);
            }
        }
        Ok(())
    }

    /// Every group a host belongs to, directly or through children (Ansible's `host.get_groups()`).
    pub fn host_groups(&self, host: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut stack: Vec<String> = self
            .hosts
            .get(host)
            .map(|h| h.groups.clone())
            .unwrap_or_default();
        while let Some(g) = stack.pop() {
            if out.contains(&g) {
                continue;
            }
            if let Some(group) = self.groups.get(&g) {
                stack.extend(group.parents.iter().cloned());
            }
            out.push(g);
        }
        out
    }

    /// A group's depth is its longest distance from `all` (Ansible keeps the maximum).
    fn compute_depths(&mut self) {
        fn depth(
            groups: &IndexMap<String, Group>,
            memo: &mut IndexMap<String, usize>,
            name: &str,
        ) -> usize {
            if let Some(d) = memo.get(name) {
                return *d;
            }
            let d = groups[name]
                .parents
                .iter()
                .map(|p| depth(groups, memo, p) + 1)
                .max()
                .unwrap_or(0);
            memo.insert(name.to_string(), d);
            d
        }
        let mut memo = IndexMap::new();
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for n in &names {
            let d = depth(&self.groups, &mut memo, n);
            self.groups[n].depth = d;
        }
    }
}

/// The entries of a `hosts`/`vars`/`children` section; a string `x` stands for `{x: null}` and an
/// empty section for nothing, as in Ansible.
fn section_entries(group: &str, key: &str, v: &Node) -> Result<Vec<(Node, Node)>> {
    match &v.value {
        NodeValue::Null => Ok(Vec::new()),
        NodeValue::Map(m) => Ok(m.clone()),
        NodeValue::Str(_) | NodeValue::Unsafe(_) => Ok(vec![(
            v.clone(),
            Node {
                loc: v.loc.clone(),
                value: NodeValue::Null,
            },
        )]),
        _ => {
            let hint = if matches!(v.value, NodeValue::Seq(_)) {
                format!(" (write `{key}:` entries as `name:` keys, not `- name` list items)")
            } else {
                String::new()
            };
            Err(v.error(format!(
                "`{key}` of group `{group}` must be a mapping, found {}{hint}",
                v.kind()
            )))
        }
    }
}

/// An INI inventory fails as YAML; say so rather than leave only the YAML error.
fn ini_hint(path: &Path, e: Error) -> Error {
    let looks_ini = std::fs::read_to_string(path).is_ok_and(|t| {
        t.lines().map(str::trim).any(|l| {
            l.len() > 2
                && l.starts_with('[')
                && l.ends_with(']')
                && !l.contains([',', ' ', '\'', '"'])
        })
    });
    match e {
        Error::Invalid { loc, msg } if looks_ini => Error::Invalid {
            loc,
            msg: format!(
                "{msg}\nthis looks like an INI inventory, which castellan does not read: \
                 convert it to YAML with `ansible-inventory -i FILE --list -y`"
            ),
        },
        other => other,
    }
}

fn group_name(k: &Node) -> Result<String> {
    match &k.value {
        NodeValue::Str(s) | NodeValue::Unsafe(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(k.error(format!(
            "group name must be a non-empty string, found {}",
            k.kind()
        ))),
    }
}

fn priority(v: &Node) -> Result<i64> {
    let p = match &v.value {
        NodeValue::Int(i) => Some(*i),
        NodeValue::Bool(b) => Some(i64::from(*b)),
        NodeValue::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        NodeValue::Str(s) | NodeValue::Unsafe(s) => s.trim().parse().ok(),
        _ => None,
    };
    p.ok_or_else(|| {
        v.error(format!(
            "ansible_group_priority must be an integer, found {}",
            v.kind()
        ))
    })
}

fn strsim_hint(key: &str) -> String {
    GROUP_KEYS
        .iter()
        .map(|k| (k, strsim::levenshtein(k, key)))
        .filter(|(_, d)| *d <= 2)
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// Read a YAML or JSON data file as Ansible's loader does: text that is valid JSON is read as
/// JSON (so `1e3` is a number there), anything else as YAML 1.1. `None` for an empty document.
pub(super) fn read_document(path: &Path) -> Result<Option<Node>> {
    let text = yaml::read_text(path)?;
    if let Ok(json) = serde_json::from_str::<Value>(&text) {
        if json.is_null() {
            return Ok(None);
        }
        // Prefer the YAML reading, which has positions, when it gives the same value.
        match yaml::parse_str(&text, path) {
            Ok(mut docs) if docs.len() == 1 && docs[0].to_json() == json => {
                return Ok(docs.pop());
            }
            // serde_json keeps the last of duplicate keys silently: refuse them as in YAML.
            Err(e @ Error::Invalid { .. }) if e.to_string().contains(": duplicate key `") => {
                return Err(e);
            }
            _ => {}
        }
        return Ok(Some(json_node(&json, &Location::file_start(path))));
    }
    let mut docs = yaml::parse_str(&text, path)?;
    if docs.len() > 1 {
        return Err(docs[1].error("expected a single YAML document, found another one here"));
    }
    Ok(docs.pop().filter(|d| !d.is_null()))
}

fn json_node(v: &Value, loc: &Location) -> Node {
    let value = match v {
        Value::Null => NodeValue::Null,
        Value::Bool(b) => NodeValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => NodeValue::Int(i),
            None => NodeValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => NodeValue::Str(s.clone()),
        Value::Array(items) => NodeValue::Seq(items.iter().map(|i| json_node(i, loc)).collect()),
        Value::Object(m) => NodeValue::Map(
            m.iter()
                .map(|(k, v)| {
                    (
                        Node {
                            loc: loc.clone(),
                            value: NodeValue::Str(k.clone()),
                        },
                        json_node(v, loc),
                    )
                })
                .collect(),
        ),
    };
    Node {
        loc: loc.clone(),
        value,
    }
}
