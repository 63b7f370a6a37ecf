//! Task modules: one file per module, grouped by kind (JetPorch's layout).
//!
//! The protocol: a module never changes anything, on a host or on the control node. The engine
//! calls [`Module::plan`], which reads the host's state through a [`HostReader`] (stat, read-only
//! queries: it has no way to apply) and returns a [`Plan`]: [`Outcome::Matched`],
//! [`Outcome::Skipped`], or [`Outcome::Change`] with its [`Step`]s (file [`Op`]s and deferred
//! [`Action`]s: issuing a certificate, reloading a server, a login check, a command) and the diff,
//! plus the result keys to register. A failure is `Err(ModuleError)`, one channel with typed kinds.
//! The engine alone knows check mode: it runs the steps (or, in check mode, reports what they
//! would do), reports, and notifies handlers.
pub mod action;
pub mod args;
pub mod commands;
pub mod control;
pub mod edit;
pub mod error;
pub mod files;
pub mod packages;
pub mod pki;
pub mod plan;
pub mod postgres;
pub mod reader;
pub mod registry;
pub mod services;
pub mod wait;
pub mod windows;

use std::path::PathBuf;

use async_trait::async_trait;

#[cfg(doc)]
use crate::connection::Op;
use crate::template::{Names, Templar};

pub use crate::diff::Diff;
pub use action::{Action, ActionCtx, ActionOutput, CheckMode};
pub use args::{Arg, Args, Kind};
pub use error::ModuleError;
pub use plan::{Outcome, Plan, Step};
pub use reader::HostReader;

/// What a module sees of the world: it reads, it never acts (there is no check mode to see).
pub struct ModuleCtx<'a> {
    pub host: HostReader<'a>,
    pub become_user: Option<&'a str>,
    pub templar: &'a Templar,
    /// The task's variables (for `template`).
    pub vars: &'a tera::Context,
    /// Where relative `src` paths are looked up, best first (role `files/`, playbook dir, ...).
    pub search_dirs: &'a [PathBuf],
    pub inventory_hostname: &'a str,
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
    /// Host facts these arguments set (`set_fact`: every key): known to the load-time check of
    /// undefined variables, like [`Module::sets_facts`].
    fn facts_from_args(&self, _args: &Args) -> Vec<String> {
        Vec::new()
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
    ) -> Result<Names, String> {
        Ok(Names::default())
    }
    /// Show the registered result with the status line (`debug`: the value is the point).
    fn shows_result(&self) -> bool {
        false
    }
    /// The paths [`Module::plan`] will stat on the host, with what it will ask, told from the
    /// arguments alone (pure): the engine reads them ahead, with the other tasks' of the play,
    /// in one round trip (`connection::prefetch`). A path listed and not asked costs a wasted
    /// read; one asked and not listed costs its own round trip. Modules that poll (`wait_for`)
    /// list nothing.
    fn reads(&self, _args: &Args) -> Vec<(String, crate::connection::Want)> {
        Vec::new()
    }
    /// The module waits for something else to act (`wait_for`): what was read ahead before it
    /// may be stale after it.
    fn waits(&self) -> bool {
        false
    }
    /// Read the state (host, control node) and say what to change. Never changes anything.
    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError>;
}

impl std::fmt::Debug for dyn Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "module {}", self.name())
    }
}
