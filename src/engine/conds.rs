//! A task's conditions: `when` (and `until`) evaluated, and the verdict of `changed_when` and
//! `failed_when` on a run's result.
use serde_json::{json, Value};
use tera::Context;

use super::results::ItemRun;
use super::Runner;
use crate::playbook::{Cond, Task};
use crate::report::Status;

impl Runner<'_> {
    /// Do all the conditions hold? The first that cannot be evaluated is the error.
    pub(super) fn eval_all(&self, conds: &[Cond], ctx: &Context) -> Result<bool, String> {
        for c in conds {
            let ok = self.templar.eval_cond(&c.expr, ctx).map_err(|e| {
                format!("{}: the conditional check '{}' failed: {e}", c.loc, c.expr)
            })?;
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `changed_when` and `failed_when` on a run (they see its result under the `register`
    /// name, already in `ctx`). A condition that cannot be evaluated is the error.
    pub(super) fn judge(
        &self,
        task: &Task,
        run: &mut ItemRun,
        ctx: &Context,
    ) -> Result<(), String> {
        if run.status == Status::Skipped {
            return Ok(());
        }
        if !task.changed_when.is_empty() {
            let c = self.eval_all(&task.changed_when, ctx)?;
            if run.status != Status::Failed {
                run.status = if c { Status::Changed } else { Status::Ok };
            }
            run.result.insert("changed".into(), json!(c));
        }
        if !task.failed_when.is_empty() {
            let f = self.eval_all(&task.failed_when, ctx)?;
            run.result.insert("failed_when_result".into(), json!(f));
            run.result.insert("failed".into(), json!(f));
            if f {
                run.status = Status::Failed;
                if run.msg.is_none() {
                    run.msg = Some("failed_when condition was true".into());
                }
            } else if run.status == Status::Failed {
                let changed = run
                    .result
                    .get("changed")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                run.status = if changed { Status::Changed } else { Status::Ok };
                run.msg = None;
            }
        }
        Ok(())
    }
}
