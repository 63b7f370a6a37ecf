//! What a module task did: one run's result ([`ItemRun`], a task or one loop item), a host's
//! [`Outcome`], and the result as reported: censored for `no_log`, key material redacted. The
//! registered variable keeps the values for later tasks.
use serde_json::{json, Map, Value};

use crate::connection::Backup;
use crate::modules::ModuleError;
use crate::playbook::{Action, Task};
use crate::report::{diff, secret, HostResult, Status};

/// What a task did on one host, for the engine to apply.
pub struct Outcome {
    pub host: String,
    pub result: HostResult,
    pub register: Option<Value>,
    pub facts: Map<String, Value>,
    pub changed: bool,
    /// Changes were being applied to the host (not check mode): when the task was cut short
    /// (unreachable, interrupted), they may have happened.
    pub applied: bool,
    /// Backups the task's writes made on the host, oldest first.
    pub backups: Vec<Backup>,
}

/// One module run (a task, or one loop item).
pub(super) struct ItemRun {
    pub status: Status,
    pub result: Map<String, Value>,
    pub msg: Option<String>,
    pub diff: Option<String>,
    pub facts: Map<String, Value>,
    pub attempts: u32,
    pub applied: bool,
    pub backups: Vec<Backup>,
}

impl ItemRun {
    pub fn new(status: Status, result: Map<String, Value>, msg: Option<String>) -> Self {
        ItemRun {
            status,
            result,
            msg,
            diff: None,
            facts: Map::new(),
            attempts: 0,
            applied: false,
            backups: Vec::new(),
        }
    }

    pub fn failed(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        let mut result = Map::new();
        result.insert("failed".into(), json!(true));
        result.insert("msg".into(), json!(msg));
        ItemRun::new(Status::Failed, result, Some(msg))
    }

    /// The module failed: its message and the result keys it registers with the failure.
    pub fn failed_with(msg: String, mut result: Map<String, Value>) -> Self {
        result.insert("failed".into(), json!(true));
        result.insert("msg".into(), json!(msg));
        result.entry("changed").or_insert(json!(false));
        ItemRun {
            result,
            ..ItemRun::failed(msg)
        }
    }

    /// This run, failed after all (a `changed_when`/`failed_when` that cannot be evaluated):
    /// what it applied and the backups it made stay known.
    pub fn failing(self, msg: String) -> Self {
        ItemRun {
            attempts: self.attempts,
            applied: self.applied,
            backups: self.backups,
            ..ItemRun::failed(msg)
        }
    }

    pub fn of_error(e: ModuleError) -> Self {
        match e {
            ModuleError::Unreachable(m) => ItemRun::unreachable(m),
            ModuleError::InvalidArgs(m) => ItemRun::failed_with(m, Map::new()),
            ModuleError::Failed { msg, result } => ItemRun::failed_with(msg, result),
        }
    }

    pub fn unreachable(msg: String) -> Self {
        ItemRun {
            status: Status::Unreachable,
            ..ItemRun::failed(msg)
        }
    }

    /// A skipped run (`creates` exists, an action check mode does not run).
    pub fn skipped(
        mut result: Map<String, Value>,
        reason: String,
        facts: Map<String, Value>,
    ) -> Self {
        result.insert("skipped".into(), json!(true));
        result.insert("changed".into(), json!(false));
        result.insert("msg".into(), json!(reason));
        ItemRun {
            facts,
            ..ItemRun::new(Status::Skipped, result, Some(reason))
        }
    }

    /// A loop item whose `when` is false.
    pub fn condition_false() -> Self {
        ItemRun::new(Status::Skipped, condition_false(), None)
    }
}

/// The result of a task or item skipped by its `when`.
fn condition_false() -> Map<String, Value> {
    Map::from_iter([
        ("changed".to_string(), json!(false)),
        ("skipped".to_string(), json!(true)),
        (
            "skip_reason".to_string(),
            json!("Conditional result was False"),
        ),
    ])
}

/// A message as reported: `no_log` hides it, key material in it is redacted, a known secret
/// value in it (a vault value) masked.
pub(super) fn shown_msg(task: &Task, msg: Option<String>) -> Option<String> {
    msg.map(|m| {
        if task.no_log {
            diff::REDACTED.to_string()
        } else {
            secret::shown(&m).into_owned()
        }
    })
}

/// The result as reported (JSON `result`, `-v`, `debug`): censored for `no_log`, every string
/// holding key material redacted (loop items in `results[].item`, a key in `stdout`), every
/// known secret value masked (a vault value in a `debug` message or a registered result).
fn censor(task: &Task, v: &Value) -> Value {
    if task.no_log {
        json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": v.get("changed").cloned().unwrap_or(json!(false))})
    } else {
        secret::scrub(v)
    }
}

/// The outcome of a task skipped on `host` by its `when`.
pub(super) fn skipped_by_when(task: &Task, host: &str) -> Outcome {
    let mut r = HostResult::new(host, Status::Skipped);
    r.detail = Value::Object(condition_false());
    Outcome {
        host: host.to_string(),
        register: task.register.as_ref().map(|_| r.detail.clone()),
        result: r,
        facts: Map::new(),
        changed: false,
        applied: false,
        backups: Vec::new(),
    }
}

/// The outcome of a task without a loop.
pub(super) fn finish(task: &Task, host: &str, run: ItemRun) -> Outcome {
    let mut r = HostResult::new(host, run.status);
    r.msg = shown_msg(task, run.msg.clone());
    r.diff = run.diff.clone();
    r.attempts = run.attempts;
    r.ignored = run.status == Status::Failed && task.ignore_errors;
    r.show = matches!(&task.action, Action::Module { module, .. } if module.shows_result())
        && run.status == Status::Ok;
    let register = Value::Object(run.result);
    r.detail = censor(task, &register);
    Outcome {
        host: host.to_string(),
        changed: run.status == Status::Changed,
        register: Some(register),
        facts: run.facts,
        result: r,
        applied: run.applied,
        backups: run.backups,
    }
}

/// The outcome of a loop: the worst status of its items, their results under `results`.
pub(super) fn finish_loop(
    task: &Task,
    host: &str,
    runs: Vec<ItemRun>,
    labels: Vec<String>,
) -> Outcome {
    let any = |s: Status| runs.iter().any(|r| r.status == s);
    let status = if any(Status::Unreachable) {
        Status::Unreachable
    } else if any(Status::Failed) {
        Status::Failed
    } else if any(Status::Changed) {
        Status::Changed
    } else if !runs.is_empty() && runs.iter().all(|r| r.status == Status::Skipped) {
        Status::Skipped
    } else {
        Status::Ok
    };
    let applied = runs.iter().any(|r| r.applied);
    let mut r = HostResult::new(host, status);
    r.ignored = status == Status::Failed && task.ignore_errors;
    let mut facts = Map::new();
    let mut results = Vec::new();
    let mut backups = Vec::new();
    for (run, label) in runs.into_iter().zip(labels) {
        backups.extend(run.backups);
        let msg = if task.no_log {
            None
        } else {
            shown_msg(task, run.msg)
        };
        r.items.push((label, run.status, msg, run.diff));
        facts.extend(run.facts);
        results.push(Value::Object(run.result));
    }
    if status == Status::Failed {
        r.msg = Some("One or more items failed".into());
    }
    let register = json!({
        "results": results,
        "changed": status == Status::Changed,
        "failed": status == Status::Failed,
        "skipped": status == Status::Skipped,
        "msg": if status == Status::Failed { "One or more items failed" } else { "All items completed" },
    });
    r.detail = censor(task, &register);
    Outcome {
        host: host.to_string(),
        changed: status == Status::Changed,
        register: Some(register),
        facts,
        result: r,
        applied,
        backups,
    }
}
