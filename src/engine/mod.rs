//! The engine: plays, serial batches, the linear strategy, blocks, handlers, failure budget,
//! check and diff. It emits events to a [`Reporter`]; it never prints.
pub mod connections;
pub mod host;
pub mod interrupt;
pub mod pending;
mod play;
pub mod tags;
mod task;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::inventory::Inventory;
use crate::playbook::keywords::OMIT;
use crate::playbook::{Play, Playbook, Task};
use crate::report::{Reporter, Stats};
use crate::template::Templar;
use crate::vars::{resolve, Layers};

pub use host::HostState;
pub use interrupt::Interrupt;

/// Everything the command line decides about a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub extra_vars: Map<String, Value>,
    pub limit: Option<String>,
    pub verbosity: u8,
    pub accept_new_host_keys: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            check: false,
            diff: false,
            forks: 20,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            extra_vars: Map::new(),
            limit: None,
            verbosity: 0,
            accept_new_host_keys: false,
        }
    }
}

pub struct Runner<'a> {
    pub inv: &'a Inventory,
    pub opts: &'a RunOptions,
    pub templar: &'a Templar,
    pub reporter: &'a dyn Reporter,
    pub pool: Arc<connections::Pool>,
    pub hosts: HashMap<String, HostState>,
    pub stats: Stats,
    /// SIGINT/SIGTERM: once set, nothing new starts (see [`interrupt`]).
    pub interrupt: Arc<Interrupt>,
    groups: Arc<Value>,
    started: Instant,
}

/// Per play (and batch) state shared by the tasks of a play.
pub struct PlayCtx<'p> {
    pub play: &'p Play,
    pub playbook_dir: &'p Path,
    pub all_hosts: Vec<String>,
    pub batch: Vec<String>,
    pub aborted: bool,
    /// What each host still owes (handlers, backups), written the moment it changes.
    pub book: &'p pending::Book,
}

impl<'a> Runner<'a> {
    pub fn new(
        inv: &'a Inventory,
        opts: &'a RunOptions,
        templar: &'a Templar,
        reporter: &'a dyn Reporter,
    ) -> Self {
        Runner {
            inv,
            opts,
            templar,
            reporter,
            pool: Arc::new(connections::Pool::new(opts.accept_new_host_keys)),
            hosts: HashMap::new(),
            stats: Stats::default(),
            interrupt: Interrupt::new(),
            groups: Arc::new(inv.groups_var()),
            started: Instant::now(),
        }
    }

    /// Run playbooks in order; returns the stats (the exit code follows from them).
    pub async fn run(&mut self, books: &[Playbook]) -> Stats {
        self.run_books(books).await;
        self.close_and_report().await
    }

    /// Run the plays, without closing connections or printing the recap.
    pub async fn run_books(&mut self, books: &[Playbook]) {
        'books: for book in books {
            for p in &book.plays {
                if self.interrupted() || !self.run_play(p, &book.dir).await {
                    break 'books;
                }
            }
        }
    }

    /// Close every connection and print the recap (text) or the report (JSON).
    pub async fn close_and_report(&mut self) -> Stats {
        self.pool.close_all().await;
        self.reporter
            .finish(&self.stats, self.opts.check, self.started.elapsed());
        self.stats.clone()
    }

    /// A signal asked the run to stop: start nothing new.
    pub fn interrupted(&self) -> bool {
        self.interrupt.is_set()
    }

    /// The variables of one task on one host, with magic variables, templates resolved.
    /// Fails when a variable the task reads could not be rendered.
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
        let role = task.scope.role.as_deref();
        // Roles listed under `roles:` are public: their defaults and vars reach the whole
        // play; the task's own role comes last so it wins.
        let mut defaults = Map::new();
        let mut role_vars = Map::new();
        for r in &pc.play.roles {
            defaults.extend(r.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
            role_vars.extend(r.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(r) = role {
            defaults.extend(r.defaults.iter().map(|(k, v)| (k.clone(), v.clone())));
            role_vars.extend(r.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut vars = Layers {
            role_defaults: Some(&defaults),
            inventory: Some(&hs.inv.vars),
            play_vars: Some(&pc.play.vars),
            vars_files: Some(&pc.play.vars_files),
            role_vars: Some(&role_vars),
            scope_vars: &task.scope.vars,
            task_vars: Some(&task.vars),
            facts: Some(&hs.facts),
            role_params: role.map(|r| &r.params),
            extra: None,
        }
        .merge();
        for layer in &hs.include_vars {
            for (k, v) in layer.iter() {
                vars.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &self.opts.extra_vars {
            vars.insert(k.clone(), v.clone());
        }
        let short = host.split('.').next().unwrap_or(host);
        vars.insert("inventory_hostname".into(), json!(host));
        vars.insert("inventory_hostname_short".into(), json!(short));
        let group_names: Vec<&String> =
            hs.inv.groups.iter().filter(|g| *g != "ungrouped").collect();
        vars.insert("group_names".into(), json!(group_names));
        vars.insert("inventory_dir".into(), json!(hs.inv.inventory_dir));
        vars.insert("inventory_file".into(), json!(hs.inv.inventory_file));
        vars.insert("playbook_dir".into(), json!(pc.playbook_dir));
        if let Some(r) = role {
            vars.insert("role_path".into(), json!(r.path));
            vars.insert("role_name".into(), json!(r.name));
        }
        let check = task
            .check_mode
            .or(pc.play.check_mode)
            .unwrap_or(self.opts.check);
        vars.insert("ansible_check_mode".into(), json!(check));
        vars.insert("ansible_diff_mode".into(), json!(self.opts.diff));
        vars.insert("ansible_play_name".into(), json!(pc.play.name));
        vars.insert(
            "ansible_run_tags".into(),
            json!(if self.opts.tags.is_empty() {
                vec!["all".to_string()]
            } else {
                self.opts.tags.clone()
            }),
        );
        vars.insert("ansible_skip_tags".into(), json!(self.opts.skip_tags));
        vars.insert("ansible_limit".into(), json!(self.opts.limit));
        vars.insert("ansible_verbosity".into(), json!(self.opts.verbosity));
        vars.insert(
            "ansible_version".into(),
            json!({"full": env!("CARGO_PKG_VERSION"), "string": env!("CARGO_PKG_VERSION")}),
        );
        vars.insert("omit".into(), json!(OMIT));
        vars.insert(
            "castellan_backups".into(),
            serde_json::to_value(&hs.backups).unwrap_or(Value::Null),
        );
        // Host lists cost O(hosts) per host: only tasks that read them get them, directly or
        // through a variable.
        let var_mentions = |n: &str| {
            vars.values().any(
                |v| matches!(v, Value::String(s) if s.contains(n) && crate::template::is_template(s)),
            )
        };
        let reads = &task.reads;
        let play_hosts = reads.any_with_prefix("ansible_play_") || var_mentions("ansible_play_");
        let groups = reads.contains("groups") || var_mentions("groups");
        let hostvars = reads.contains("hostvars") || var_mentions("hostvars");
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

    /// `hostvars`: every known host's inventory variables and facts.
    fn hostvars(&self) -> Value {
        let mut m = Map::new();
        for h in self.inv.hosts() {
            let mut v = h.vars.clone();
            if let Some(hs) = self.hosts.get(&h.name) {
                for (k, val) in &hs.facts {
                    v.insert(k.clone(), val.clone());
                }
            }
            v.insert("inventory_hostname".into(), json!(h.name));
            v.insert("group_names".into(), json!(h.groups));
            m.insert(h.name.clone(), Value::Object(v));
        }
        Value::Object(m)
    }

    fn ensure_host(&mut self, name: &str) {
        if !self.hosts.contains_key(name) {
            let inv = self
                .inv
                .host(name)
                .cloned()
                .unwrap_or_else(|| self.inv.implicit_localhost());
            self.hosts
                .insert(name.to_string(), HostState::new(name, inv));
        }
    }
}
