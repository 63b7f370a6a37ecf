//! Playbooks, plays, tasks and roles: YAML turned into typed values, validated whole before
//! anything runs (errors carry `file:line:column`).
pub mod keywords;
pub mod kv;
pub mod load;
pub mod numbers;
pub mod preflight;
pub mod role;
pub mod task;
pub mod varcheck;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::Location;
use crate::modules::{Args, Module};
use crate::vars::VarLocs;

pub use load::load_playbook;

/// A list of plays from one file (and the files it imports).
#[derive(Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub plays: Vec<Play>,
}

/// One `serial:` step: a host count or a percentage of the play's hosts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Serial {
    Count(usize),
    Percent(f64),
}

#[derive(Debug)]
pub struct Play {
    pub loc: Location,
    pub name: String,
    pub hosts: String,
    pub vars: Map<String, Value>,
    /// Variables from `vars_files`, in order (later files win).
    pub vars_files: Map<String, Value>,
    /// Where each of `vars` and `vars_files` was written (a vars file's value wins).
    pub var_locs: VarLocs,
    pub serial: Vec<Serial>,
    pub max_fail_percentage: Option<f64>,
    pub any_errors_fatal: bool,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub check_mode: Option<bool>,
    pub dir: PathBuf,
    /// Roles from `roles:`; their defaults and vars are visible to the whole play, as in Ansible.
    pub roles: Vec<Arc<Role>>,
    pub pre_tasks: Vec<Task>,
    /// Role tasks followed by the play's `tasks`.
    pub tasks: Vec<Task>,
    pub post_tasks: Vec<Task>,
    /// Role handlers followed by the play's handlers.
    pub handlers: Vec<Task>,
}

/// A condition (`when`, `changed_when`, `failed_when`, `until`) and where it was written.
#[derive(Debug, Clone)]
pub struct Cond {
    pub expr: String,
    pub loc: Location,
}

/// A role as loaded: its directory and variables.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub path: PathBuf,
    pub defaults: Map<String, Value>,
    pub vars: Map<String, Value>,
    /// Where each of `defaults` and of `vars` was written.
    pub defaults_locs: VarLocs,
    pub vars_locs: VarLocs,
    /// Parameters given where the role is used (`roles: [{role: x, port: 1}]`).
    pub params: Map<String, Value>,
}

/// What a task inherits from where it is written: its role, the variables of enclosing blocks
/// and the parameters of enclosing includes, and the directory relative paths resolve against.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub role: Option<Arc<Role>>,
    /// `vars:` of the enclosing blocks, outermost first (block vars).
    pub vars: Vec<Arc<Map<String, Value>>>,
    /// `vars:` of the enclosing `include_tasks`/`import_tasks`/`include_role`/`import_role`,
    /// outermost first (include params: they win over set_fact and role params).
    pub params: Vec<Arc<Map<String, Value>>>,
    pub dir: PathBuf,
}

#[derive(Debug)]
pub enum Action {
    Module {
        module: &'static dyn Module,
        /// The arguments as written (strings may be templates), canonical names.
        args: Args,
    },
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
    /// `include_tasks` / `import_tasks` / `include_role` / `import_role`: a list of tasks
    /// loaded before the run, run in place (with the task's `loop` and `when`).
    Include {
        tasks: Vec<Task>,
    },
    FlushHandlers,
    /// `meta: noop` and other metas without effect here.
    Noop,
    /// `meta: end_host`: stop this host for the rest of the play.
    EndHost,
    /// `meta: end_play`.
    EndPlay,
}

#[derive(Debug)]
pub struct Task {
    pub loc: Location,
    pub name: Option<String>,
    pub action: Action,
    /// Effective conditions: those of enclosing blocks/includes, then the task's own.
    pub when: Vec<Cond>,
    pub loop_: Option<Value>,
    pub loop_var: String,
    pub index_var: Option<String>,
    pub loop_label: Option<String>,
    pub register: Option<String>,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    /// Effective tags (own plus inherited).
    pub tags: Vec<String>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub run_once: bool,
    pub delegate_to: Option<String>,
    pub changed_when: Vec<Cond>,
    pub failed_when: Vec<Cond>,
    pub ignore_errors: bool,
    pub no_log: bool,
    pub check_mode: Option<bool>,
    pub diff: Option<bool>,
    pub until: Vec<Cond>,
    pub retries: u32,
    pub delay: f64,
    pub vars: Arc<Map<String, Value>>,
    pub scope: Scope,
    /// The variables the task's own templates read, found when it was loaded.
    pub reads: varcheck::Reads,
}

impl Task {
    /// The name shown in output: `role : name`, or the module name.
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.action) {
            (Some(n), _) => n.clone(),
            (None, Action::Module { module, .. }) => module.name().to_string(),
            (None, Action::Block { .. }) => "block".into(),
            (None, Action::Include { .. }) => "include".into(),
            (None, _) => "meta".into(),
        };
        match &self.scope.role {
            Some(r) => format!("{} : {base}", r.name),
            None => base,
        }
    }

    pub fn module_name(&self) -> &'static str {
        match &self.action {
            Action::Module { module, .. } => module.name(),
            Action::Block { .. } => "block",
            Action::Include { .. } => "include_tasks",
            _ => "meta",
        }
    }
}
