//! Ansible's YAML inventory: groups with `hosts`, `vars` and nested `children`, `group_vars/` and
//! `host_vars/` beside each source, several sources, host patterns, and the JSON of
//! `ansible-inventory --list`/`--host`. Behaviour follows ansible-core (checked against 2.19):
//! see `tests/inventory_ansible_parity.rs` for the recorded outputs.
mod hostrange;
mod list;
mod load;
mod pattern;
mod precedence;
mod vagrant_source;
mod vagrant_ssh_config;
mod vars_dirs;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::vars::VarLocs;
use load::Builder;
use vars_dirs::SourceVars;

pub(crate) const ALL: &str = "all";
pub(crate) const UNGROUPED: &str = "ungrouped";
/// Names Ansible treats as the control node (`C.LOCALHOST`).
pub const LOCALHOST_NAMES: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// One inventory host with its variables merged in Ansible's precedence order.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    /// Inventory variables merged: group vars (all < parents < children, then group_vars/ files),
    /// then host vars (inline < host_vars/ files). Magic variables are not included.
    pub vars: Map<String, Value>,
    /// The `group_names` magic variable: every group the host is in, directly or through a child
    /// group, sorted, without `all` (Ansible keeps `ungrouped` for hosts in no other group).
    pub groups: Vec<String>,
    /// `inventory_dir`: the directory of `inventory_file`.
    pub inventory_dir: PathBuf,
    /// `inventory_file`: the first source file that named this host (absolute).
    pub inventory_file: PathBuf,
    /// Where each of `vars` was written (the one that won), for errors about a value.
    pub var_locs: VarLocs,
}

/// A group as the sources define it.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub name: String,
    /// Inline vars (`vars:` in the inventory), without `ansible_group_priority`.
    pub vars: Map<String, Value>,
    pub var_locs: VarLocs,
    pub priority: i64,
    pub children: Vec<String>,
    pub parents: Vec<String>,
    /// Hosts listed directly in this group, in the order they were added.
    pub hosts: Vec<String>,
    /// Longest distance from `all`.
    pub depth: usize,
}

/// A host as the sources define it, before merging.
#[derive(Debug, Clone)]
pub(crate) struct RawHost {
    pub name: String,
    pub vars: Map<String, Value>,
    pub var_locs: VarLocs,
    pub file: PathBuf,
    /// Groups that list the host directly.
    pub groups: Vec<String>,
}

/// A loaded inventory: hosts in definition order, groups in definition order
/// (`all` and `ungrouped` first).
#[derive(Debug, Clone)]
pub struct Inventory {
    hosts: Vec<Host>,
    index: HashMap<String, usize>,
    groups: IndexMap<String, Group>,
    /// Each group's hosts with those of its descendants (Ansible's `Group.get_hosts()`).
    group_hosts: IndexMap<String, Vec<String>>,
    localhost: Host,
}

impl Inventory {
    /// Load one or more `-i` sources (files, or directories read recursively in lexical order:
    /// `*.yml`, `*.yaml`, `*.json`, skipping dotfiles, `group_vars/`, `host_vars/`). Later sources
    /// override earlier ones for the same host or group variable.
    ///
    /// A source that does not exist is a usage error (exit 5): it is a command-line argument.
    ///
    /// `vagrant:DIR` (or `vagrant:FILE`, a saved `vagrant ssh-config`) stands for a Vagrant
    /// environment's machines: see [`vagrant_source`].
    pub fn load(sources: &[PathBuf]) -> Result<Inventory> {
        if sources.is_empty() {
            return Err(Error::Usage(
                "no inventory given: pass -i INVENTORY (a YAML file or a directory)".into(),
            ));
        }
        let mut expanded = Vec::with_capacity(sources.len());
        for s in sources {
            match vagrant_source::resolve(s)? {
                Some(files) => expanded.extend(files),
                None => expanded.push(s.clone()),
            }
        }
        let sources: Vec<PathBuf> = expanded.iter().map(|s| absolute(s)).collect();
        let mut b = Builder::new();
        for s in &sources {
            if !s.exists() {
                return Err(Error::Usage(format!(
                    "inventory source {} does not exist",
                    s.display()
                )));
            }
            b.load_source(s)?;
        }
        b.reconcile()?;

        let group_names: Vec<&str> = b.groups.keys().map(String::as_str).collect();
        let mut host_names: Vec<&str> = b.hosts.keys().map(String::as_str).collect();
        host_names.push("localhost");
        let source_vars = sources
            .iter()
            .map(|s| {
                SourceVars::load(
                    &vars_dirs::base_dir(s),
                    group_names.iter().copied(),
                    host_names.iter().copied(),
                )
            })
            .collect::<Result<Vec<_>>>()?;

        let all = &b.groups[ALL];
        let mut hosts = Vec::with_capacity(b.hosts.len());
        for raw in b.hosts.values() {
            let closure = b.host_groups(&raw.name);
            let mut member: Vec<&Group> = closure
                .iter()
                .filter(|g| g.as_str() != ALL)
                .filter_map(|g| b.groups.get(g))
                .collect();
            precedence::sort_groups(&mut member);
            let (vars, var_locs) = precedence::merge(all, &member, raw, &source_vars);
            let mut names: Vec<String> = member.iter().map(|g| g.name.clone()).collect();
            names.sort();
            hosts.push(Host {
                name: raw.name.clone(),
                vars,
                groups: names,
                inventory_dir: raw.file.parent().map(Path::to_path_buf).unwrap_or_default(),
                inventory_file: raw.file.clone(),
                var_locs,
            });
        }
        let index = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.clone(), i))
            .collect::<HashMap<_, _>>();

        let localhost = match hosts
            .iter()
            .find(|h| LOCALHOST_NAMES.contains(&h.name.as_str()))
        {
            Some(h) => h.clone(),
            None => {
                let mut inline = Map::new();
                inline.insert("ansible_connection".into(), Value::from("local"));
                let first = &sources[0];
                let raw = RawHost {
                    name: "localhost".into(),
                    vars: inline,
                    var_locs: VarLocs::new(),
                    file: first.clone(),
                    groups: Vec::new(),
                };
                let (vars, var_locs) = precedence::merge(all, &[], &raw, &source_vars);
                Host {
                    name: "localhost".into(),
                    vars,
                    groups: Vec::new(),
                    inventory_dir: vars_dirs::base_dir(first),
                    inventory_file: first.clone(),
                    var_locs,
                }
            }
        };

        let group_hosts = b
            .groups
            .keys()
            .map(|g| (g.clone(), descendant_hosts(&b.groups, g)))
            .collect();
        Ok(Inventory {
            hosts,
            index,
            groups: b.groups,
            group_hosts,
            localhost,
        })
    }

    /// A host defined in the inventory (the implicit localhost is not: see
    /// [`Inventory::implicit_localhost`]).
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.index.get(name).map(|i| &self.hosts[*i])
    }

    /// Every inventory host, in the order the sources first define them.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    /// Group names in definition order, `all` and `ungrouped` first.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// The hosts of a group and of its descendants, in Ansible's order; `None` for an unknown group.
    pub fn group_hosts(&self, group: &str) -> Option<&[String]> {
        self.group_hosts.get(group).map(Vec::as_slice)
    }

    /// The `groups` magic variable: every group (empty ones too) with its hosts.
    pub fn groups_var(&self) -> Value {
        Value::Object(
            self.group_hosts
                .iter()
                .map(|(g, hosts)| (g.clone(), Value::from(hosts.clone())))
                .collect(),
        )
    }

    /// Ansible's localhost when a play or pattern names it: the inventory's own `localhost`
    /// (or `127.0.0.1`, `::1`) when it defines one, else an implicit host `localhost` with
    /// `ansible_connection: local`, in no group, that still gets `all`'s variables
    /// (inline and `group_vars/all`) and `host_vars/localhost`.
    pub fn implicit_localhost(&self) -> Host {
        self.localhost.clone()
    }
}

/// Ansible's `Group.get_hosts()`: hosts of the group, then of its descendants in breadth-first
/// order, without duplicates. (Ansible walks each level through a Python set, so its order between
/// groups of the same level below the first is not deterministic; here it is definition order.)
fn descendant_hosts(groups: &IndexMap<String, Group>, name: &str) -> Vec<String> {
    let mut order: Vec<&str> = vec![name];
    let mut level: Vec<&str> = vec![name];
    while !level.is_empty() {
        let mut next = Vec::new();
        for g in &level {
            for c in &groups[*g].children {
                if !order.contains(&c.as_str()) {
                    order.push(c);
                    next.push(c.as_str());
                }
            }
        }
        level = next;
    }
    let mut seen = std::collections::HashSet::new();
    let mut hosts = Vec::new();
    for g in order {
        for h in &groups[g].hosts {
            if seen.insert(h.as_str()) {
                hosts.push(h.clone());
            }
        }
    }
    hosts
}

/// An absolute path with `.` and `..` resolved lexically (Ansible's `unfrackpath(follow=False)`).
fn absolute(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
