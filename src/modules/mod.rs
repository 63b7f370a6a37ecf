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
