//! Task modules: one file per module, grouped by kind (JetPorch's layout).
//!
//! A module never changes a host itself. The engine calls [`Module::plan`], which reads the
//! host's state through the connection and returns a [`Plan`]: the [`Op`]s that would bring the
//! host to the wanted state, the diff, and the result keys to register. The engine decides
//! whether to apply the ops (not in check mode), reports, and notifies handlers.
pub mod args;
pub mod commands;
pub mod control;
pub mod edit;
pub mod files;
pub mod pki;
pub mod postgres;
pub mod registry;

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::{Connection, Op};
use crate::template::Templar;

pub use args::{Arg, Args, Kind};

/// What a module sees of the world.
pub struct ModuleCtx<'a> {
    pub conn: &'a dyn Connection,
    pub become_user: Option<&'a str>,
    pub check_mode: bool,
    pub templar: &'a Templar,
    /// The task's variables (for `template`).
    pub vars: &'a tera::Context,
    /// Where relative `src` paths are looked up, best first (role `files/`, playbook dir, ...).
    pub search_dirs: &'a [PathBuf],
    pub inventory_hostname: &'a str,
}

/// A text change to show with `--diff`.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub path: String,
    pub before: String,
    pub after: String,
    /// Key material: shown as `<redacted>`.
    pub secret: bool,
}

/// A module's answer: what to change, what to report.
#[derive(Debug, Default)]
pub struct Plan {
    pub ops: Vec<Op>,
    /// Result keys registered for the task besides `changed`/`failed` (`dest`, `stat`, ...).
    pub result: Map<String, Value>,
    pub diff: Option<Diff>,
    /// The module decided the task fails (`fail`, `assert`, a missing file...).
    pub failed: Option<String>,
    /// The module skipped itself (command in check mode, `creates` exists...).
    pub skipped: Option<String>,
    /// Facts to set on the host (`set_fact`).
    pub facts: Map<String, Value>,
    /// The module changed something itself, outside `ops` (control-node work such as the PKI
    /// modules), or would have in check mode. The task is `changed` when this is set or when
    /// `ops` is not empty.
    pub changed: bool,
}

impl Plan {
    pub fn ok() -> Self {
        Plan::default()
    }

    pub fn fail(msg: impl Into<String>) -> Self {
        Plan {
            failed: Some(msg.into()),
            ..Plan::default()
        }
    }

    pub fn with(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.result.insert(key.to_string(), v.into());
        self
    }
}

#[async_trait]
pub trait Module: Send + Sync {
    fn name(&self) -> &'static str;
    /// The arguments the module takes. `None`: any key (like `set_fact`).
    fn args(&self) -> Option<&'static [Arg]>;
    /// The argument a free-form string (`command: ls -l`) maps to, if the module takes one.
    fn free_form(&self) -> Option<&'static str> {
        None
    }
    /// Checks across arguments (required-one-of, mutually exclusive), on normalized arguments.
    /// Called at load time when no argument is templated, and again at run time.
    fn validate(&self, _args: &Args) -> Result<(), String> {
        Ok(())
    }
    /// True when [`Module::validate`] skips arguments that are still templates (`{{ x }}`): the
    /// loader then calls it at load time even when some arguments are templated, so that the
    /// literal ones (a key type, a kind) are checked before any host is contacted.
    fn validates_templated_args(&self) -> bool {
        false
    }
    /// True for modules that work on the control node whatever the host's connection
    /// (`pki_cert`...): the engine gives them the local connection and does not connect to the
    /// host for them.
    fn runs_on_control_node(&self) -> bool {
        false
    }
    /// Host facts the module always sets (`pg_facts`): known to the load-time check of
    /// undefined variables, like `set_fact` keys.
    fn sets_facts(&self) -> &'static [&'static str] {
        &[]
    }
    /// Arguments holding bare expressions (`assert.that`, `debug.var`): checked like `when:`.
    fn expression_args(&self) -> &'static [&'static str] {
        &[]
    }
    /// Load-time check of files the module will read on the control node (the `template`
    /// module compiles its template). Returns the variables the files read.
    fn check_files(
        &self,
        _args: &Args,
        _search_dirs: &[PathBuf],
        _templar: &Templar,
    ) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
    /// Read the host's state and say what to change.
    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, String>;
}

impl std::fmt::Debug for dyn Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "module {}", self.name())
    }
}
