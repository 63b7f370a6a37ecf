//! Checks that need the inventory and the playbooks together, run before any host is contacted
//! (a bad value on one host used to surface only when that host was first used, after the
//! others had changed):
//!
//! * every targeted host's connection variables (connection type, host, port, user, key file,
//!   timeout, ssh arguments) and become settings, as the play will see them before its first
//!   task: inventory (with `group_vars/`, `host_vars/`), play `vars` and `vars_files`, the play's
//!   roles, extra vars. Templated values are rendered; one that needs run-time values (a
//!   registered result) is left to the run;
//! * variables that refer to themselves, directly or through others.
//!
//! Errors point at where the bad value was written.
use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{Play, Playbook};
use crate::connection::is_local;
use crate::connection::ssh::{bool_var, check_user_name, SshParams};
use crate::error::{Error, Result};
use crate::inventory::{Host, Inventory};
use crate::template::{is_template, Templar};
use crate::vars::{has_template, resolve, VarLocs};

/// What the checks read.
pub struct Preflight<'a> {
    pub inventory: &'a Inventory,
    pub playbooks: &'a [Playbook],
    pub extra: &'a Map<String, Value>,
    pub extra_locs: &'a VarLocs,
    pub limit: Option<&'a str>,
    pub templar: &'a Templar,
}

/// The connection types castellan runs (Ansible's `smart` and `paramiko` mean ssh here).
const CONNECTIONS: [&str; 4] = ["ssh", "smart", "paramiko", "local"];

/// The variables that decide how a host is reached and how tasks become another user.
const CONNECTION_VARS: [&str; 19] = [
    "ansible_connection",
    "ansible_shell_type",
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
    "ansible_ssh_common_args",
    "ansible_ssh_extra_args",
    "castellan_known_hosts",
    "castellan_accept_new_host_keys",
    "ansible_ssh_timeout",
    "ansible_timeout",
    "ansible_become",
    "ansible_become_user",
    "ansible_become_method",
];

/// The root names each template string reads, computed once per distinct string (hosts share
/// most of their values through groups).
#[derive(Default)]
struct Reads(HashMap<String, Vec<String>>);

impl Reads {
    /// The root names a value's templates read (a template with a syntax error reads nothing
    /// here: using it fails where it is used).
    fn of(&mut self, v: &Value, templar: &Templar, out: &mut Vec<String>) {
        match v {
            Value::String(s) if is_template(s) => {
                let names = self
                    .0
                    .entry(s.clone())
                    .or_insert_with(|| templar.check(s).unwrap_or_default());
                out.extend(names.iter().cloned());
            }
            Value::Array(items) => items.iter().for_each(|i| self.of(i, templar, out)),
            Value::Object(m) => m.values().for_each(|i| self.of(i, templar, out)),
            _ => {}
        }
    }
}

/// Run every check; the first problem is the error.
pub fn check(p: &Preflight) -> Result<()> {
    let implicit = p.inventory.implicit_localhost();
    let mut reads = Reads::default();
    for book in p.playbooks {
        for play in &book.plays {
            // A bad pattern was reported already, with the play's location.
            let hosts = p
                .inventory
                .select_limited(&play.hosts, p.limit)
                .unwrap_or_default();
            for name in hosts {
                let host = p.inventory.host(&name).unwrap_or(&implicit);
                let (vars, locs) = static_vars(p, play, &book.dir, host);
                let edges = references(&vars, p.templar, &mut reads);
                check_cycles(&vars, &edges, &locs)?;
                check_connection(&name, &vars, &edges, &locs, p.templar)?;
            }
        }
    }
    Ok(())
}

/// For each variable whose value has templates: the variables it reads.
fn references<'v>(
    vars: &'v Map<String, Value>,
    templar: &Templar,
    reads: &mut Reads,
) -> HashMap<&'v str, Vec<String>> {
    let mut edges = HashMap::new();
    for (k, v) in vars {
        if !has_template(v) {
            continue;
        }
        let mut names = Vec::new();
        reads.of(v, templar, &mut names);
        names.retain(|n| vars.contains_key(n));
        edges.insert(k.as_str(), names);
    }
    edges
}

/// The variables a host has when the play starts, in the engine's precedence order (role
/// defaults < inventory < play vars < vars_files < role vars < extra vars), with magic
/// variables, and where each was written.
fn static_vars(
    p: &Preflight,
    play: &Play,
    playbook_dir: &Path,
    host: &Host,
) -> (Map<String, Value>, VarLocs) {
    let mut vars = Map::new();
    let mut locs = VarLocs::new();
    let mut layer = |m: &Map<String, Value>, l: &VarLocs| {
        for (k, v) in m {
            vars.insert(k.clone(), v.clone());
            match l.get(k) {
                Some(loc) => locs.insert(k.clone(), loc.clone()),
                None => locs.remove(k),
            };
        }
    };
    for r in &play.roles {
        layer(&r.defaults, &r.defaults_locs);
    }
    layer(&host.vars, &host.var_locs);
    layer(&play.vars, &play.var_locs);
    layer(&play.vars_files, &play.var_locs);
    for r in &play.roles {
        layer(&r.vars, &r.vars_locs);
    }
    layer(p.extra, p.extra_locs);
    let short = host.name.split('.').next().unwrap_or(&host.name);
    let group_names: Vec<&String> = host.groups.iter().filter(|g| *g != "ungrouped").collect();
    for (k, v) in [
        ("inventory_hostname", json!(host.name)),
        ("inventory_hostname_short", json!(short)),
        ("group_names", json!(group_names)),
        ("inventory_dir", json!(host.inventory_dir)),
        ("inventory_file", json!(host.inventory_file)),
        ("playbook_dir", json!(playbook_dir)),
    ] {
        vars.insert(k.to_string(), v);
        locs.remove(k);
    }
    (vars, locs)
}

/// An error about variable `var` of host `host`, at the place the value was written.
fn at(locs: &VarLocs, var: &str, msg: String) -> Error {
    match locs.get(var) {
        Some(loc) => Error::invalid(loc, msg),
        None => Error::invalid_noloc(format!("{msg} (set by -e {var}=...)")),
    }
}

/// A variable whose value reads itself, directly or through other variables, can never be
/// rendered: refuse it at the first variable of the loop.
fn check_cycles(
    vars: &Map<String, Value>,
    edges: &HashMap<&str, Vec<String>>,
    locs: &VarLocs,
) -> Result<()> {
    // Depth-first search; 1 = on the current path, 2 = done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    fn visit<'a>(
        n: &'a str,
        edges: &'a HashMap<&str, Vec<String>>,
        state: &mut HashMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(_) => {
                let start = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(n, 1);
        path.push(n);
        for next in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(next, edges, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    for k in vars.keys() {
        if !edges.contains_key(k.as_str()) {
            continue;
        }
        let mut path = Vec::new();
        if let Some(cycle) = visit(k, edges, &mut state, &mut path) {
            let first = &cycle[0];
            let how = if cycle.len() == 2 {
                "directly".to_string()
            } else {
                format!("through {}", cycle.join(" -> "))
            };
            return Err(at(
                locs,
                first,
                format!("variable `{first}` refers to itself {how}: it can never be rendered"),
            ));
        }
    }
    Ok(())
}

/// The host's connection and become variables, as far as they are known before the run.
fn check_connection(
    name: &str,
    all: &Map<String, Value>,
    edges: &HashMap<&str, Vec<String>>,
    locs: &VarLocs,
    templar: &Templar,
) -> Result<()> {
    // Only the connection variables and what their templates read need rendering.
    let mut wanted: Vec<&str> = CONNECTION_VARS
        .into_iter()
        .filter(|k| all.contains_key(*k))
        .collect();
    let mut i = 0;
    while i < wanted.len() {
        for n in edges.get(wanted[i]).into_iter().flatten() {
            if !wanted.contains(&n.as_str()) {
                wanted.push(n);
            }
        }
        i += 1;
    }
    let mut vars: Map<String, Value> = wanted
        .iter()
        .filter_map(|k| all.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if wanted.iter().any(|k| edges.contains_key(k)) {
        let errors = resolve(&mut vars, templar);
        // A value that still needs run-time data is checked when the host is first used.
        vars.retain(|k, v| !errors.contains_key(k) && !has_template(v));
    }
    let host_err = |var: &str, msg: String| at(locs, var, format!("host `{name}`: {msg}"));

    if let Some(c) = vars.get("ansible_connection") {
        match c.as_str() {
            Some(s) if CONNECTIONS.contains(&s) => {}
            _ => {
                let shown = c.as_str().map_or_else(|| c.to_string(), str::to_string);
                let hint = crate::modules::args::did_you_mean(&shown, CONNECTIONS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(host_err(
                    "ansible_connection",
                    format!(
                        "ansible_connection: connection type `{shown}` is not supported{hint}; \
                         use ssh or local"
                    ),
                ));
            }
        }
    }
    if !is_local(name, &vars) {
        crate::connection::powershell::Flavour::from_vars(&vars)
            .map_err(|m| host_err("ansible_shell_type", m))?;
        let params =
            SshParams::from_vars_checked(name, &vars).map_err(|e| host_err(&e.var, e.msg))?;
        if let Some(key) = &params.private_key {
            if !key.is_file() {
                let var = ["ansible_ssh_private_key_file", "ansible_private_key_file"]
                    .into_iter()
                    .find(|k| vars.get(*k).is_some_and(|v| !v.is_null()))
                    .unwrap_or("ansible_ssh_private_key_file");
                return Err(host_err(
                    var,
                    format!("{var}: the key file {} does not exist", key.display()),
                ));
            }
        }
    }
    if let Some(v) = vars.get("ansible_become") {
        if bool_var(v).is_none() {
            return Err(host_err(
                "ansible_become",
                format!("ansible_become: expected a boolean (yes/no), got {v}"),
            ));
        }
    }
    if let Some(v) = vars.get("ansible_become_user") {
        let ok = match v.as_str() {
            Some(u) => check_user_name(u),
            None => Err(format!("expected a user name, got {v}")),
        };
        ok.map_err(|m| host_err("ansible_become_user", format!("ansible_become_user: {m}")))?;
    }
    if let Some(v) = vars.get("ansible_become_method") {
        if v.as_str() != Some("sudo") {
            return Err(host_err(
                "ansible_become_method",
                format!(
                    "ansible_become_method: only `sudo` is supported (castellan uses sudo, or \
                     runuser as root), got {v}"
                ),
            ));
        }
    }
    Ok(())
}
