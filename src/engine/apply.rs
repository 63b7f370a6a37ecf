//! Applying a module's plan on a host. Check mode runs nothing: it reports what the steps would
//! do (`changed`, or `skipped` when every step is an action that says so, like Ansible's
//! `command`). Otherwise the steps run in order (file ops through the connection, deferred
//! actions with the host's backups), up to the first failure.
use serde_json::{json, Map, Value};

use super::host_task::HostTask;
use super::results::ItemRun;
use super::Runner;
use crate::connection::{Backup, Op};
use crate::modules::plan::Outcome as Found;
use crate::modules::{ActionCtx, CheckMode, ModuleError, Plan, Step};
use crate::report::{diff, Status};

impl Runner<'_> {
    /// Apply a plan (unless in check mode) and build the run's result.
    pub(super) async fn apply_plan(
        &self,
        ht: &HostTask<'_>,
        become_user: Option<&str>,
        plan: Plan,
    ) -> ItemRun {
        let Plan {
            outcome,
            mut result,
            facts,
        } = plan;
        let (steps, d) = match outcome {
            Found::Matched => {
                result.insert("changed".into(), json!(false));
                result.insert("failed".into(), json!(false));
                return ItemRun {
                    facts,
                    ..ItemRun::new(Status::Ok, result, None)
                };
            }
            Found::Skipped(reason) => return ItemRun::skipped(result, reason, facts),
            Found::Change { steps, diff } => (steps, diff),
        };
        let diff_text = if ht.show_diff {
            d.as_ref().map(|d| diff::render(d, ht.task.no_log))
        } else {
            None
        };
        let actions: Vec<String> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Action(a) => Some(a.describe()),
                Step::Op(_) => None,
            })
            .collect();
        if !actions.is_empty() {
            result.insert("actions".into(), json!(actions));
        }
        if ht.check {
            let mut run = would_do(&steps, &actions, result, facts);
            if run.status == Status::Changed {
                run.diff = diff_text;
            }
            return run;
        }
        let mut changed = steps.iter().any(|s| matches!(s, Step::Op(_)));
        let mut failure: Option<String> = None;
        let mut backups: Vec<Backup> = Vec::new();
        for step in &steps {
            let outcome = match step {
                Step::Op(op) => {
                    self.apply_op(ht, become_user, op, &mut result, &mut backups)
                        .await
                }
                Step::Action(a) => {
                    let known = self.backups_of(ht.host, &backups);
                    let actx = ActionCtx {
                        conn: ht.conn.as_ref(),
                        become_user,
                        backups: &known,
                        inventory_hostname: ht.host,
                    };
                    a.run(&actx).await.map(|out| {
                        changed |= out.changed;
                        result.extend(out.result);
                        backups.extend(out.backups);
                    })
                }
            };
            match outcome {
                Ok(()) => {}
                Err(ModuleError::Unreachable(m)) => {
                    return ItemRun {
                        applied: true,
                        backups,
                        ..ItemRun::unreachable(m)
                    }
                }
                Err(ModuleError::InvalidArgs(m)) => {
                    failure = Some(m);
                    break;
                }
                Err(ModuleError::Failed { msg, result: r }) => {
                    result.extend(r);
                    failure = Some(msg);
                    break;
                }
            }
        }
        if let Some(m) = &failure {
            result.insert("msg".into(), json!(m));
        }
        let status = match (&failure, changed) {
            (Some(_), _) => Status::Failed,
            (None, true) => Status::Changed,
            (None, false) => Status::Ok,
        };
        result.insert("changed".into(), json!(changed));
        result.insert("failed".into(), json!(failure.is_some()));
        ItemRun {
            diff: diff_text,
            facts,
            applied: true,
            backups,
            ..ItemRun::new(status, result, failure)
        }
    }

    /// One file op through the connection; the backup a write made is recorded.
    async fn apply_op(
        &self,
        ht: &HostTask<'_>,
        become_user: Option<&str>,
        op: &Op,
        result: &mut Map<String, Value>,
        backups: &mut Vec<Backup>,
    ) -> Result<(), ModuleError> {
        let out = ht.conn.apply(op, become_user).await?;
        if let (Op::Write { path, .. }, Some(b)) = (op, out.backup_file) {
            result.insert("backup_file".into(), json!(b));
            backups.push(Backup {
                path: path.clone(),
                backup: b,
            });
        }
        match out.exec {
            Some(x) if x.rc != 0 => Err(ModuleError::failed_with(
                "non-zero return code",
                Map::from_iter([("rc".to_string(), json!(x.rc))]),
            )),
            _ => Ok(()),
        }
    }
}

/// What the steps would do, in check mode: skipped when an action says it would not run
/// there (and no step would change anything else), ok when every step is an action that would
/// change nothing the task counts, changed otherwise.
fn would_do(
    steps: &[Step],
    actions: &[String],
    mut result: Map<String, Value>,
    facts: Map<String, Value>,
) -> ItemRun {
    let skip = steps.iter().try_fold(None, |reason, s| match s {
        Step::Action(a) => match a.in_check_mode() {
            CheckMode::Skip(r) => Some(reason.or(Some(r))),
            CheckMode::WouldChange | CheckMode::Unchanged => None,
        },
        Step::Op(_) => None,
    });
    if let Some(Some(reason)) = skip {
        return ItemRun::skipped(result, reason, facts);
    }
    let unchanged = steps
        .iter()
        .all(|s| matches!(s, Step::Action(a) if a.in_check_mode() == CheckMode::Unchanged));
    if unchanged {
        result.insert("changed".into(), json!(false));
        result.insert("failed".into(), json!(false));
        result.insert("check_mode".into(), json!(true));
        return ItemRun {
            facts,
            ..ItemRun::new(Status::Ok, result, None)
        };
    }
    if !actions.is_empty() && !result.contains_key("msg") {
        result.insert(
            "msg".into(),
            json!(format!("check mode: would {}", actions.join("; "))),
        );
    }
    result.insert("changed".into(), json!(true));
    result.insert("failed".into(), json!(false));
    result.insert("check_mode".into(), json!(true));
    ItemRun {
        facts,
        ..ItemRun::new(Status::Changed, result, None)
    }
}
