//! The variables of one host, merged in Ansible's order (`VARIABLE_PRECEDENCE` defaults, then host
//! vars), with `hash_behaviour=replace`: a later value replaces an earlier one whole.
//!
//! 1. `all` inline vars
//! 2. inline vars of the host's other groups, sorted by (depth, `ansible_group_priority`, name)
//! 3. `group_vars/all` of each source, in `-i` order
//! 4. `group_vars/GROUP` of each source in `-i` order, within a source by the same group order
//! 5. the host's inline vars (later sources override earlier ones)
//! 6. `host_vars/HOST` of each source, in `-i` order
//!
//! So every `group_vars/` file beats every inline group var, as in Ansible's documented order
//! ("inventory group vars" < "inventory group_vars/all" < "inventory group_vars/*").
use serde_json::{Map, Value};

use super::vars_dirs::SourceVars;
use super::{Group, ALL};

/// Sort groups the way Ansible's `sort_groups` does.
pub(super) fn sort_groups(groups: &mut [&Group]) {
    groups.sort_by(|a, b| (a.depth, a.priority, &a.name).cmp(&(b.depth, b.priority, &b.name)));
}

pub(super) fn merge(
    all: &Group,
    host_groups: &[&Group],
    host_name: &str,
    host_inline: &Map<String, Value>,
    sources: &[SourceVars],
) -> Map<String, Value> {
    let mut vars = all.vars.clone();
    for g in host_groups {
        combine(&mut vars, &g.vars);
    }
    for s in sources {
        if let Some(v) = s.groups.get(ALL) {
            combine(&mut vars, v);
        }
    }
    for s in sources {
        for g in host_groups {
            if let Some(v) = s.groups.get(&g.name) {
                combine(&mut vars, v);
            }
        }
    }
    combine(&mut vars, host_inline);
    for s in sources {
        if let Some(v) = s.hosts.get(host_name) {
            combine(&mut vars, v);
        }
    }
    vars
}

fn combine(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}
