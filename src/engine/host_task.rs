//! One module task on one host: its variables, connection, `become`, check and diff modes,
//! decided once ([`HostTask`]), then its one run or its loop.
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;
use tera::Context;

use super::results::{finish, skipped_by_when, ItemRun, Outcome};
use super::{PlayCtx, Runner};
use crate::connection::{ConnError, Connection};
use crate::modules::{Args, Module};
use crate::playbook::{Action, Task};

/// What the runs of a module task on one host (its loop items, its retries) share.
pub(super) struct HostTask<'a> {
    pub pc: &'a PlayCtx<'a>,
    pub task: &'a Task,
    pub module: &'static dyn Module,
    /// The arguments as written (rendered per run).
    pub args: &'a Args,
    pub host: &'a str,
    pub conn: Arc<dyn Connection>,
    /// `become` is on (the user is rendered per run: it may read the loop item).
    pub become_on: bool,
    pub check: bool,
    pub show_diff: bool,
    /// Where relative `src` paths are looked up: the task's role, then the playbook directory.
    pub search_dirs: Vec<PathBuf>,
}

impl Runner<'_> {
    /// Run a module task on `host`.
    pub(super) async fn run_on_host(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        host: &str,
        active: &[String],
    ) -> Outcome {
        let Action::Module { module, args } = &task.action else {
            return finish(task, host, ItemRun::failed("internal: not a module task"));
        };
        let vars = match self.task_vars(pc, task, host, active) {
            Ok(v) => v,
            Err(e) => return finish(task, host, ItemRun::failed(e)),
        };
        let delegated = task.delegate_to.is_some();
        let conn: Arc<dyn Connection> = if delegated || module.runs_on_control_node() {
            self.pool.local()
        } else {
            match self.pool.get(host, &vars).await {
                Ok(c) => c,
                Err(ConnError::Unreachable(m)) => {
                    return finish(task, host, ItemRun::unreachable(m))
                }
                Err(ConnError::Failed(m)) => return finish(task, host, ItemRun::failed(m)),
            }
        };
        if !delegated && !module.runs_on_control_node() {
            self.read_ahead(pc, task, host, active, &conn).await;
        }
        if module.waits() {
            // Something else acts meanwhile: what was read ahead may be stale.
            self.pool.epoch().bump();
        }
        let become_on = become_on(pc, task, &vars);
        let mut search_dirs: Vec<PathBuf> =
            task.scope.role.iter().map(|r| r.path.clone()).collect();
        search_dirs.push(pc.playbook_dir.to_path_buf());
        let ht = HostTask {
            pc,
            task,
            module: *module,
            args,
            host,
            conn,
            become_on,
            check: self.check_mode(pc, task),
            show_diff: task.diff.unwrap_or(self.opts.diff),
            search_dirs,
        };
        let ctx = match Context::from_value(Value::Object(vars.clone())) {
            Ok(c) => c,
            Err(e) => return finish(task, host, ItemRun::failed(e.to_string())),
        };
        let mut out = match &task.loop_ {
            None => match self.eval_all(&task.when, &ctx) {
                Ok(true) => finish(task, host, self.run_item(&ht, ctx).await),
                Ok(false) => return skipped_by_when(task, host),
                Err(e) => return finish(task, host, ItemRun::failed(e)),
            },
            // A loop: the list is rendered once, `when` is evaluated per item.
            Some(items) => match self.run_loop(&ht, items, &vars, &ctx).await {
                Ok(out) => out,
                Err(e) => return finish(task, host, ItemRun::failed(e)),
            },
        };
        if module.waits() {
            self.pool.epoch().bump();
        }
        if delegated {
            out.result.delegated = Some("localhost".into());
        }
        out
    }

    /// Is the task run in check mode? Its own `check_mode`, the play's, or `--check`.
    pub(super) fn check_mode(&self, pc: &PlayCtx<'_>, task: &Task) -> bool {
        task.check_mode
            .or(pc.play.check_mode)
            .unwrap_or(self.opts.check)
    }
}

/// `become` is on for `task`: its own, the play's, or `ansible_become`.
pub(super) fn become_on(
    pc: &PlayCtx<'_>,
    task: &Task,
    vars: &serde_json::Map<String, Value>,
) -> bool {
    task.become_
        .or(pc.play.become_)
        .or_else(|| {
            vars.get("ansible_become")
                .map(crate::template_filters::truthy)
        })
        .unwrap_or(false)
}
