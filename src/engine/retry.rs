//! Retries: a run is judged (`changed_when`, `failed_when`) after each attempt, and a task with
//! `until` runs again, `delay` seconds apart, until the condition holds or `retries` run out.
use std::time::Duration;

use serde_json::{json, Value};
use tera::Context;

use super::host_task::HostTask;
use super::item::Call;
use super::results::ItemRun;
use super::Runner;
use crate::connection::Backup;
use crate::playbook::Task;
use crate::report::Status;

impl Runner<'_> {
    pub(super) async fn with_retries(
        &self,
        ht: &HostTask<'_>,
        call: &Call,
        mut ctx: Context,
    ) -> ItemRun {
        let task = ht.task;
        let attempts_max = if task.until.is_empty() {
            1
        } else {
            task.retries + 1
        };
        let mut attempt = 0;
        let mut applied = false;
        // Backups of every attempt: each one is a state a rollback may need.
        let mut made: Vec<Backup> = Vec::new();
        loop {
            attempt += 1;
            let mut run = self.attempt(ht, call, &ctx).await;
            run.attempts = attempt;
            applied |= run.applied;
            run.applied = applied;
            made.append(&mut run.backups);
            run.backups = made.clone();
            if run.status == Status::Unreachable {
                return run;
            }
            if task.changed_when.is_empty() && task.failed_when.is_empty() && task.until.is_empty()
            {
                return run;
            }
            // The conditions see the result under the register name.
            registered(task, &run, &mut ctx);
            if let Err(e) = self.judge(task, &mut run, &ctx) {
                return run.failing(e);
            }
            if task.until.is_empty() {
                return run;
            }
            registered(task, &run, &mut ctx);
            let done = self.eval_all(&task.until, &ctx).unwrap_or(false);
            run.result.insert("attempts".into(), json!(attempt));
            if done {
                return run;
            }
            if attempt >= attempts_max {
                return give_up(
                    run,
                    format!(
                        "retries exhausted after {attempt} attempts: until condition never held"
                    ),
                );
            }
            if !self
                .interrupt
                .sleep(Duration::from_secs_f64(task.delay))
                .await
            {
                return give_up(run, "interrupted while waiting to retry".into());
            }
            // A retry waits for something else to change the host: nothing read ahead holds.
            self.pool.epoch().bump();
        }
    }
}

/// Put the run's result in `ctx` under the task's `register` name.
fn registered(task: &Task, run: &ItemRun, ctx: &mut Context) {
    if let Some(name) = &task.register {
        ctx.insert(name.as_str(), &Value::Object(run.result.clone()));
    }
}

/// The run failed: `until` never held.
fn give_up(mut run: ItemRun, msg: String) -> ItemRun {
    run.status = Status::Failed;
    run.msg = Some(msg);
    run.result.insert("failed".into(), json!(true));
    run
}
