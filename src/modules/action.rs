//! Deferred actions: the effects of a plan that are not file ops (issuing a certificate,
//! reloading a server, a login check, running a command). A module's plan returns them as data
//! ([`super::Step::Action`]); the engine runs them only outside check mode, after recording
//! their description, and in check mode reports what they would do ([`CheckMode`]).
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::ModuleError;
use crate::connection::{Backup, Connection};

/// How check mode, which never runs an action, reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckMode {
    /// The task is `changed`: the action would change something.
    WouldChange,
    /// The task is `skipped` with this reason (Ansible's `command` without `creates`/`removes`,
    /// a login check whose files were not pushed).
    Skip(String),
    /// The task is `ok`: the action would run but change nothing the task counts as a change
    /// (apt's cache refresh beside packages already as wanted, `systemctl daemon-reload`).
    Unchanged,
}

/// What an action may use when the engine runs it.
pub struct ActionCtx<'a> {
    pub conn: &'a dyn Connection,
    pub become_user: Option<&'a str>,
    /// Backups the engine knows for this host, oldest first: those this run's writes made
    /// (every applied `Op::Write` whose connection kept one) after those an earlier run left
    /// with a handler it still owed (engine/pending.rs). What a rollback restores.
    pub backups: &'a [Backup],
    pub inventory_hostname: &'a str,
}

/// What an action did.
#[derive(Debug, Default)]
pub struct ActionOutput {
    /// It changed something (a command ran, a certificate was issued, a server reloaded).
    pub changed: bool,
    /// Result keys to register, over those of the plan.
    pub result: Map<String, Value>,
    /// Backups the action's own writes kept on the host (what a later rollback restores, like
    /// those of the plan's `Op::Write`s).
    pub backups: Vec<Backup>,
}

#[async_trait]
pub trait Action: Send + Sync {
    /// What the action does, in a few words, for the report (never a secret: no key material,
    /// no password; a command line is censored by the engine for `no_log`).
    fn describe(&self) -> String;
    /// How check mode reports the action.
    fn in_check_mode(&self) -> CheckMode {
        CheckMode::WouldChange
    }
    /// Do it. A failure is `Err` ([`ModuleError::Failed`] with the result keys to register).
    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError>;
}

impl std::fmt::Debug for dyn Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "action({})", self.describe())
    }
}
