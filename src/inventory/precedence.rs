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
use super::{Group, RawHost, ALL};
use crate::vars::VarLocs;

/// Sort groups the way Ansible's `sort_groups` does.
pub(super) fn sort_groups(groups: &mut [&Group]) {
    groups.sort_by(|a, b| (a.depth, a.priority, &a.name).cmp(&(b.depth, b.priority, &b.name)));
}

/// The host's variables and where each winning value was written.
pub(super) fn merge(
    all: &Group,
    host_groups: &[&Group],
    host: &RawHost,
    sources: &[SourceVars],
) -> (Map<String, Value>, VarLocs) {
    let mut layers: Vec<(&Map<String, Value>, &VarLocs)> = vec![(&all.vars, &all.var_locs)];
    for g in host_groups {
        layers.push((&g.vars, &g.var_locs));
    }
    for s in sources {
        if let Some(v) = s.groups.get(ALL) {
            layers.push((&v.0, &v.1));
        }
    }
    for s in sources {
        for g in host_groups {
            if let Some(v) = s.groups.get(&g.name) {
                layers.push((&v.0, &v.1));
            }
        }
    }
    layers.push((&host.vars, &host.var_locs));
    for s in sources {
        if let Some(v) = s.hosts.get(&host.name) {
            layers.push((&v.0, &v.1));
        }
    }
    let mut vars = Map::new();
    let mut locs = VarLocs::new();
    for (m, l) in layers {
        for (k, v) in m {
            vars.insert(k.clone(), v.clone());
            match l.get(k) {
                Some(loc) => locs.insert(k.clone(), loc.clone()),
                None => locs.remove(k),
            };
        }
    }
    (vars, locs)
}
