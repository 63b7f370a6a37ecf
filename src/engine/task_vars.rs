//! The variables of one task on one host: the layers of [`crate::vars`] (play, roles, blocks,
//! the task, facts, includes, extra vars), the magic variables, and templates resolved.
use serde_json::{json, Map, Value};
use tera::Context;

use super::host::HostState;
use super::{PlayCtx, Runner};
use crate::playbook::keywords::OMIT;
use crate::playbook::Task;
use crate::vars::{resolve, Layers, Level};

impl Runner<'_> {
    /// The variables of `task` on `host`, with magic variables, templates resolved. Fails when
    /// a variable the task reads could not be rendered.
    pub fn task_vars(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        host: &str,
        active: &[String],
    ) -> Result<Map<String, Value>, String> {
        let hs = self
            .hosts
            .get(host)
            .ok_or_else(|| format!("internal: no state for host {host}"))?;
        let mut vars = layers(pc, task, hs, &self.opts.extra_vars).merge();
        self.magic(pc, task, hs, &mut vars);
        self.host_lists(pc, task, active, &mut vars);
        let errors = resolve(&mut vars, self.templar);
        // A variable that cannot be rendered fails only the tasks that read it.
        for (k, e) in errors {
            if task.reads.contains(&k) {
                return Err(format!(
                    "variable `{k}` could not be rendered: {}",
                    e.as_str().unwrap_or_default()
                ));
            }
        }
        Ok(vars)
    }

    /// [`Runner::task_vars`] as a template context.
    pub(super) fn task_ctx(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        host: &str,
        active: &[String],
    ) -> Result<Context, String> {
        let vars = self.task_vars(pc, task, host, active)?;
        Context::from_value(Value::Object(vars)).map_err(|e| e.to_string())
    }

    /// The magic variables every task sees (they win over every layer).
    fn magic(&self, pc: &PlayCtx<'_>, task: &Task, hs: &HostState, vars: &mut Map<String, Value>) {
        let host = hs.name.as_str();
        let short = host.split('.').next().unwrap_or(host);
        let group_names: Vec<&String> =
            hs.inv.groups.iter().filter(|g| *g != "ungrouped").collect();
        let opts = self.opts;
        let run_tags = if opts.tags.is_empty() {
            vec!["all".to_string()]
        } else {
            opts.tags.clone()
        };
        let version = env!("CARGO_PKG_VERSION");
        let mut magic = vec![
            ("inventory_hostname", json!(host)),
            ("inventory_hostname_short", json!(short)),
            ("group_names", json!(group_names)),
            ("inventory_dir", json!(hs.inv.inventory_dir)),
            ("inventory_file", json!(hs.inv.inventory_file)),
            ("playbook_dir", json!(pc.playbook_dir)),
            ("ansible_check_mode", json!(self.check_mode(pc, task))),
            ("ansible_diff_mode", json!(opts.diff)),
            ("ansible_play_name", json!(pc.play.name)),
            ("ansible_run_tags", json!(run_tags)),
            ("ansible_skip_tags", json!(opts.skip_tags)),
            ("ansible_limit", json!(opts.limit)),
            ("ansible_verbosity", json!(opts.verbosity)),
            (
                "ansible_version",
                json!({"full": version, "string": version}),
            ),
            ("omit", json!(OMIT)),
            (
                "castellan_backups",
                serde_json::to_value(&hs.backups).unwrap_or(Value::Null),
            ),
        ];
        if let Some(r) = &task.scope.role {
            magic.push(("role_path", json!(r.path)));
            magic.push(("role_name", json!(r.name)));
        }
        for (k, v) in magic {
            vars.insert(k.to_string(), v);
        }
    }

    /// `groups`, `hostvars` and the play's host lists cost O(hosts) per host: only a task that
    /// reads them, directly or through a variable, gets them.
    fn host_lists(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        active: &[String],
        vars: &mut Map<String, Value>,
    ) {
        let through_var = |n: &str| {
            vars.values().any(
                |v| matches!(v, Value::String(s) if s.contains(n) && crate::template::is_template(s)),
            )
        };
        let reads = &task.reads;
        let play_hosts = reads.any_with_prefix("ansible_play_") || through_var("ansible_play_");
        let groups = reads.contains("groups") || through_var("groups");
        let hostvars = reads.contains("hostvars") || through_var("hostvars");
        if play_hosts {
            vars.insert("ansible_play_hosts".into(), json!(active));
            vars.insert("ansible_play_batch".into(), json!(pc.batch));
            vars.insert("ansible_play_hosts_all".into(), json!(pc.all_hosts));
        }
        if groups {
            vars.insert("groups".into(), (*self.groups).clone());
        }
        if hostvars {
            vars.insert("hostvars".into(), self.hostvars());
        }
    }

    /// `hostvars`: every known host's inventory variables and facts, their templates rendered
    /// with that host's own variables, as Ansible does: `hostvars['db1'].pg_bin_dir` written as
    /// `/usr/lib/postgresql/{{ pg_version }}/bin` is db1's directory whichever host reads it (a
    /// host without `pg_version` included). A variable that cannot be rendered on its own host is
    /// left out (undefined for the reader) rather than rendered with the reader's variables.
    fn hostvars(&self) -> Value {
        let mut m = Map::new();
        for h in self.inv.hosts() {
            let mut v = h.vars.clone();
            if let Some(hs) = self.hosts.get(&h.name) {
                for (k, val) in &hs.facts {
                    v.insert(k.clone(), val.clone());
                }
            }
            let short = h.name.split('.').next().unwrap_or(&h.name);
            v.insert("inventory_hostname".into(), json!(h.name));
            v.insert("inventory_hostname_short".into(), json!(short));
            v.insert("group_names".into(), json!(h.groups));
            v.insert("inventory_dir".into(), json!(h.inventory_dir));
            v.insert("inventory_file".into(), json!(h.inventory_file));
            for k in resolve(&mut v, self.templar).keys() {
                v.remove(k);
            }
            m.insert(h.name.clone(), Value::Object(v));
        }
        Value::Object(m)
    }
}

/// Every layer of variables `task` sees on the host of `hs`.
fn layers<'a>(
    pc: &'a PlayCtx<'_>,
    task: &'a Task,
    hs: &'a HostState,
    extra: &'a Map<String, Value>,
) -> Layers<'a> {
    let mut l = Layers::default();
    // Roles listed under `roles:` are public: their defaults and vars reach the whole play;
    // the task's own role comes last so it wins.
    for r in pc.play.roles.iter().chain(&task.scope.role) {
        l.add(Level::RoleDefaults, &r.defaults);
        l.add(Level::RoleVars, &r.vars);
    }
    if let Some(r) = &task.scope.role {
        l.add(Level::RoleParams, &r.params);
    }
    l.add(Level::Inventory, &hs.inv.vars)
        .add(Level::PlayVars, &pc.play.vars)
        .add(Level::VarsFiles, &pc.play.vars_files)
        .add(Level::TaskVars, &task.vars)
        .add(Level::Facts, &hs.facts)
        .add(Level::Extra, extra);
    for b in &task.scope.vars {
        l.add(Level::BlockVars, b);
    }
    for p in task.scope.params.iter().chain(&hs.include_items) {
        l.add(Level::IncludeParams, p);
    }
    l
}
