//! Running one task on the hosts of a batch: conditions, loops, retries, the module's plan,
//! applying its ops (unless in check mode), registering and notifying.
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use tera::Context;

use super::{PlayCtx, Runner};
use crate::connection::{Backup, ConnError, Connection, Op};
use crate::modules::args::normalize;
use crate::modules::plan::Outcome as Found;
use crate::modules::{
    ActionCtx, CheckMode, HostReader, Module, ModuleCtx, ModuleError, Plan, Step,
};
use crate::playbook::keywords::OMIT;
use crate::playbook::{Action, Cond, Task};
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

/// One module run (one loop item).
struct ItemRun {
    status: Status,
    result: Map<String, Value>,
    msg: Option<String>,
    diff: Option<String>,
    facts: Map<String, Value>,
    attempts: u32,
    applied: bool,
    backups: Vec<Backup>,
}

impl ItemRun {
    fn new(status: Status, result: Map<String, Value>, msg: Option<String>) -> Self {
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

    fn failed(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        let mut result = Map::new();
        result.insert("failed".into(), json!(true));
        result.insert("msg".into(), json!(msg));
        ItemRun::new(Status::Failed, result, Some(msg))
    }

    /// The module failed: its message and the result keys it registers with the failure.
    fn failed_with(msg: String, mut result: Map<String, Value>) -> Self {
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
    fn failing(self, msg: String) -> Self {
        ItemRun {
            attempts: self.attempts,
            applied: self.applied,
            backups: self.backups,
            ..ItemRun::failed(msg)
        }
    }

    fn of_error(e: ModuleError) -> Self {
        match e {
            ModuleError::Unreachable(m) => ItemRun::unreachable(m),
            ModuleError::InvalidArgs(m) => ItemRun::failed_with(m, Map::new()),
            ModuleError::Failed { msg, result } => ItemRun::failed_with(msg, result),
        }
    }

    fn unreachable(msg: String) -> Self {
        ItemRun {
            status: Status::Unreachable,
            ..ItemRun::failed(msg)
        }
    }
}

fn eval_all(r: &Runner<'_>, conds: &[Cond], ctx: &Context) -> Result<bool, String> {
    for c in conds {
        let ok = r
            .templar
            .eval_cond(&c.expr, ctx)
            .map_err(|e| format!("{}: the conditional check '{}' failed: {e}", c.loc, c.expr))?;
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn drop_omitted(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| v.as_str() != Some(OMIT))
                .map(|(k, v)| (k, drop_omitted(v)))
                .collect(),
        ),
        other => other,
    }
}

fn label_of(item: &Value) -> String {
    match item {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The label printed for a loop item: nothing of the item for a `no_log` task, and never key
/// material (a default label is the item itself; a custom one may quote it).
fn shown_label(task: &Task, item: &Value, label: String) -> String {
    let from_item = task.loop_label.is_none() && secret::value_is_secret(item);
    if task.no_log || from_item || secret::is_secret_text(&label) {
        diff::REDACTED.to_string()
    } else {
        label
    }
}

/// A message as reported: `no_log` hides it, key material in it is redacted.
fn shown_msg(task: &Task, msg: Option<String>) -> Option<String> {
    msg.map(|m| {
        if task.no_log || secret::is_secret_text(&m) {
            diff::REDACTED.to_string()
        } else {
            m
        }
    })
}

impl Runner<'_> {
    /// Run a module task on `hosts` (concurrently, up to `forks`) and apply the outcomes.
    pub(super) async fn run_module_task(
        &mut self,
        pc: &PlayCtx<'_>,
        task: &Task,
        hosts: &[String],
        handler: bool,
    ) {
        if hosts.is_empty() {
            return;
        }
        self.reporter.task_start(
            &task.display_name(),
            task.module_name(),
            handler,
            hosts.len(),
        );
        let targets: Vec<String> = if task.run_once {
            hosts.iter().take(1).cloned().collect()
        } else {
            hosts.to_vec()
        };
        let forks = self.opts.forks.max(1);
        let this = &*self;
        let outcomes: Vec<Outcome> = stream::iter(targets.iter())
            .map(|h| this.run_on_host(pc, task, h, hosts))
            .buffer_unordered(forks)
            .collect()
            .await;
        let mut outcomes = outcomes;
        if task.run_once {
            if let Some(first) = outcomes.first() {
                // Results of a run_once task apply to every host of the batch.
                let copies: Vec<Outcome> = hosts
                    .iter()
                    .skip(1)
                    .map(|h| Outcome {
                        host: h.clone(),
                        result: HostResult {
                            host: h.clone(),
                            ..first.result.clone()
                        },
                        register: first.register.clone(),
                        facts: first.facts.clone(),
                        changed: first.changed,
                        applied: first.applied,
                        // The backups are on the host that ran the task.
                        backups: Vec::new(),
                    })
                    .collect();
                outcomes.extend(copies);
            }
        }
        for o in outcomes {
            let host = o.host.clone();
            self.apply_outcome(task, o, handler);
            self.remember(pc, &host);
        }
    }

    fn apply_outcome(&mut self, task: &Task, o: Outcome, handler: bool) {
        let interrupted = self.interrupted();
        let status = o.result.status;
        self.stats.record(&o.host, status, o.result.ignored);
        let Some(hs) = self.hosts.get_mut(&o.host) else {
            return;
        };
        for (k, v) in o.facts {
            hs.facts.insert(k, v);
        }
        hs.backups.extend(o.backups);
        if let (Some(name), Some(v)) = (&task.register, o.register) {
            hs.facts.insert(name.clone(), v);
        }
        match status {
            Status::Failed if !o.result.ignored => hs.failed = true,
            Status::Unreachable => hs.unreachable = true,
            _ => {}
        }
        if o.changed && status != Status::Failed && status != Status::Unreachable {
            for n in &task.notify {
                hs.notify(n);
            }
        }
        // Cut short (host gone, run interrupted): what may have changed still owes its
        // handlers, and a handler that did not finish is still owed.
        let cut = status == Status::Unreachable || (status == Status::Failed && interrupted);
        if cut && handler {
            if let Some(n) = task
                .name
                .clone()
                .or_else(|| super::play::handler_names(task).into_iter().next())
            {
                hs.notify(&n);
            }
        } else if cut && o.applied {
            for n in &task.notify {
                hs.notify(n);
            }
        }
    }

    async fn run_on_host(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        host: &str,
        active: &[String],
    ) -> Outcome {
        let out = self.run_on_host_inner(pc, task, host, active).await;
        if !(task.run_once && host != active.first().map_or("", String::as_str)) {
            self.reporter.host_result(&out.result);
        }
        out
    }

    async fn run_on_host_inner(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        host: &str,
        active: &[String],
    ) -> Outcome {
        let Action::Module { module, args } = &task.action else {
            return self.finish(
                task,
                host,
                ItemRun::failed("internal: not a module task"),
                None,
            );
        };
        let vars = match self.task_vars(pc, task, host, active) {
            Ok(v) => v,
            Err(e) => return self.finish(task, host, ItemRun::failed(e), None),
        };
        let delegated = task.delegate_to.is_some();
        let conn: Arc<dyn Connection> = if delegated || module.runs_on_control_node() {
            self.pool.local()
        } else {
            match self.pool.get(host, &vars).await {
                Ok(c) => c,
                Err(e) => {
                    let run = match e {
                        ConnError::Unreachable(m) => ItemRun::unreachable(m),
                        ConnError::Failed(m) => ItemRun::failed(m),
                    };
                    return self.finish(task, host, run, None);
                }
            }
        };
        let become_on = task
            .become_
            .or(pc.play.become_)
            .or_else(|| {
                vars.get("ansible_become")
                    .map(crate::template_filters::truthy)
            })
            .unwrap_or(false);
        let check = task
            .check_mode
            .or(pc.play.check_mode)
            .unwrap_or(self.opts.check);
        let show_diff = task.diff.unwrap_or(self.opts.diff);

        let Some(items) = task.loop_.as_ref() else {
            let ctx = match Context::from_value(Value::Object(vars.clone())) {
                Ok(c) => c,
                Err(e) => return self.finish(task, host, ItemRun::failed(e.to_string()), None),
            };
            match eval_all(self, &task.when, &ctx) {
                Ok(true) => {}
                Ok(false) => return self.skipped(task, host),
                Err(e) => return self.finish(task, host, ItemRun::failed(e), None),
            }
            let run = self
                .run_item(
                    pc, task, *module, args, &conn, become_on, check, show_diff, &vars, ctx,
                )
                .await;
            return self.finish(task, host, run, delegated.then(|| "localhost".to_string()));
        };
        // A loop: the list is rendered once, `when` is evaluated per item.
        let ctx = match Context::from_value(Value::Object(vars.clone())) {
            Ok(c) => c,
            Err(e) => return self.finish(task, host, ItemRun::failed(e.to_string()), None),
        };
        let list = match self.templar.render_value(items, &ctx) {
            Ok(Value::Array(a)) => a,
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return self.finish(
                    task,
                    host,
                    ItemRun::failed(format!(
                    "Invalid data passed to 'loop', it requires a list, got this instead: {other}"
                )),
                    None,
                )
            }
            Err(e) => return self.finish(task, host, ItemRun::failed(format!("loop: {e}")), None),
        };
        let mut runs = Vec::new();
        let mut labels = Vec::new();
        for (i, item) in list.iter().enumerate() {
            if i > 0 && self.interrupted() {
                runs.push(ItemRun::failed(
                    "interrupted: the remaining items were not run",
                ));
                labels.push("(interrupted)".to_string());
                break;
            }
            let mut ivars = vars.clone();
            ivars.insert(task.loop_var.clone(), item.clone());
            if let Some(iv) = &task.index_var {
                ivars.insert(iv.clone(), json!(i));
            }
            ivars.insert("ansible_loop_var".into(), json!(task.loop_var));
            ivars.insert(
                "ansible_loop".into(),
                json!({"index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == list.len(), "length": list.len()}),
            );
            let ictx = match Context::from_value(Value::Object(ivars.clone())) {
                Ok(c) => c,
                Err(e) => {
                    runs.push(ItemRun::failed(e.to_string()));
                    labels.push(shown_label(task, item, label_of(item)));
                    continue;
                }
            };
            let label = match &task.loop_label {
                Some(l) => self
                    .templar
                    .render_str(l, &ictx)
                    .unwrap_or_else(|_| label_of(item)),
                None => label_of(item),
            };
            labels.push(shown_label(task, item, label));
            let run = match eval_all(self, &task.when, &ictx) {
                Ok(true) => {
                    self.run_item(pc, task, *module, args, &conn, become_on, check, show_diff, &ivars, ictx)
                        .await
                }
                Ok(false) => ItemRun::new(
                    Status::Skipped,
                    json!({"skipped": true, "changed": false, "skip_reason": "Conditional result was False"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    None,
                ),
                Err(e) => ItemRun::failed(e),
            };
            let mut run = run;
            run.result.insert(task.loop_var.clone(), item.clone());
            let stop = run.status == Status::Unreachable;
            runs.push(run);
            if stop {
                break;
            }
        }
        let mut out = self.finish_loop(task, host, runs, labels);
        if delegated {
            out.result.delegated = Some("localhost".into());
        }
        out
    }

    fn skipped(&self, task: &Task, host: &str) -> Outcome {
        let mut r = HostResult::new(host, Status::Skipped);
        r.detail = json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False"});
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

    #[allow(clippy::too_many_arguments)]
    async fn run_item(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        module: &'static dyn Module,
        raw_args: &crate::modules::Args,
        conn: &Arc<dyn Connection>,
        become_on: bool,
        check: bool,
        show_diff: bool,
        vars: &Map<String, Value>,
        mut ctx: Context,
    ) -> ItemRun {
        // Render the arguments; expression arguments (assert's `that`) stay as written.
        let expr_args = module.expression_args();
        let mut rendered = Map::new();
        for (k, v) in &raw_args.map {
            if expr_args.contains(&k.as_str()) {
                rendered.insert(k.clone(), v.clone());
                continue;
            }
            match self.templar.render_value(v, &ctx) {
                Ok(r) => {
                    rendered.insert(k.clone(), r);
                }
                Err(e) => return ItemRun::failed(format!("{}: argument `{k}`: {e}", task.loc)),
            }
        }
        let rendered = match drop_omitted(Value::Object(rendered)) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let args = match normalize(module.name(), module.args(), &rendered, false) {
            Ok(a) => a,
            Err(e) => return ItemRun::failed(e.msg),
        };
        if let Err(e) = module.validate(&args) {
            return ItemRun::failed(e);
        }
        let become_user: Option<String> = if become_on {
            Some(
                task.become_user
                    .as_ref()
                    .map(|u| {
                        self.templar
                            .render_str(u, &ctx)
                            .unwrap_or_else(|_| u.clone())
                    })
                    .or_else(|| pc.play.become_user.clone())
                    .or_else(|| {
                        vars.get("ansible_become_user")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "root".into()),
            )
        } else {
            None
        };
        let mut search_dirs: Vec<std::path::PathBuf> = Vec::new();
        if let Some(r) = &task.scope.role {
            search_dirs.push(r.path.clone());
        }
        search_dirs.push(pc.playbook_dir.to_path_buf());
        let attempts_max = if task.until.is_empty() {
            1
        } else {
            task.retries + 1
        };
        let mut attempt = 0;
        let mut applied = false;
        let mut made: Vec<Backup> = Vec::new();
        loop {
            attempt += 1;
            let host = vars
                .get("inventory_hostname")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mctx = ModuleCtx {
                host: HostReader::new(conn.as_ref(), become_user.as_deref()),
                become_user: become_user.as_deref(),
                templar: self.templar,
                vars: &ctx,
                search_dirs: &search_dirs,
                inventory_hostname: host,
            };
            let mut run = match module.plan(&mctx, &args).await {
                Ok(plan) => {
                    if !check && plan.changes() && !task.notify.is_empty() {
                        // Owed from before the first change: a run cut short in the middle of
                        // it still runs the handlers next time.
                        self.owe_ahead(pc, task, host);
                    }
                    let how = Apply {
                        conn: conn.as_ref(),
                        become_user: become_user.as_deref(),
                        check,
                        show_diff,
                        host,
                    };
                    self.apply_plan(task, &how, plan).await
                }
                Err(e) => ItemRun::of_error(e),
            };
            run.attempts = attempt;
            applied |= run.applied;
            run.applied = applied;
            // Backups of every attempt: each one is a state a rollback may need.
            made.append(&mut run.backups);
            run.backups = made.clone();
            if run.status == Status::Unreachable {
                return run;
            }
            // changed_when / failed_when see the result under the register name.
            if !task.changed_when.is_empty()
                || !task.failed_when.is_empty()
                || !task.until.is_empty()
            {
                let reg = Value::Object(run.result.clone());
                if let Some(name) = &task.register {
                    ctx.insert(name.as_str(), &reg);
                }
                if !task.changed_when.is_empty() && run.status != Status::Skipped {
                    match eval_all(self, &task.changed_when, &ctx) {
                        Ok(c) => {
                            if run.status != Status::Failed {
                                run.status = if c { Status::Changed } else { Status::Ok };
                            }
                            run.result.insert("changed".into(), json!(c));
                        }
                        Err(e) => return run.failing(e),
                    }
                }
                if !task.failed_when.is_empty() && run.status != Status::Skipped {
                    match eval_all(self, &task.failed_when, &ctx) {
                        Ok(f) => {
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
                        Err(e) => return run.failing(e),
                    }
                }
                if !task.until.is_empty() {
                    let reg = Value::Object(run.result.clone());
                    if let Some(name) = &task.register {
                        ctx.insert(name.as_str(), &reg);
                    }
                    let done = eval_all(self, &task.until, &ctx).unwrap_or(false);
                    run.result.insert("attempts".into(), json!(attempt));
                    if !done {
                        if attempt < attempts_max {
                            if self
                                .interrupt
                                .sleep(Duration::from_secs_f64(task.delay))
                                .await
                            {
                                continue;
                            }
                            run.status = Status::Failed;
                            run.msg = Some("interrupted while waiting to retry".into());
                            run.result.insert("failed".into(), json!(true));
                            return run;
                        }
                        run.status = Status::Failed;
                        run.msg = Some(format!("retries exhausted after {attempt} attempts: until condition never held"));
                        run.result.insert("failed".into(), json!(true));
                    }
                }
            }
            return run;
        }
    }

    /// Apply a module's plan (unless in check mode) and build the item's result. Check mode runs
    /// nothing: it reports what the steps would do (`changed`, or `skipped` when every step is an
    /// action that says so, like Ansible's `command`).
    async fn apply_plan(&self, task: &Task, how: &Apply<'_>, plan: Plan) -> ItemRun {
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
            Found::Skipped(reason) => return Self::skip(result, reason, facts),
            Found::Change { steps, diff } => (steps, diff),
        };
        let diff_text = if how.show_diff {
            d.as_ref().map(|d| diff::render(d, task.no_log))
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
        if how.check {
            let skip = steps.iter().try_fold(None, |reason, s| match s {
                Step::Action(a) => match a.in_check_mode() {
                    CheckMode::Skip(r) => Some(reason.or(Some(r))),
                    CheckMode::WouldChange => None,
                },
                Step::Op(_) => None,
            });
            if let Some(Some(reason)) = skip {
                return Self::skip(result, reason, facts);
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
            return ItemRun {
                diff: diff_text,
                facts,
                ..ItemRun::new(Status::Changed, result, None)
            };
        }
        let mut changed = steps.iter().any(|s| matches!(s, Step::Op(_)));
        let mut failure: Option<String> = None;
        let mut backups: Vec<Backup> = Vec::new();
        for step in &steps {
            let outcome = match step {
                Step::Op(op) => match how.conn.apply(op, how.become_user).await {
                    Ok(out) => {
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
                    Err(e) => Err(e.into()),
                },
                Step::Action(a) => {
                    let known = self.backups_of(how.host, &backups);
                    let actx = ActionCtx {
                        conn: how.conn,
                        become_user: how.become_user,
                        backups: &known,
                        inventory_hostname: how.host,
                    };
                    a.run(&actx).await.map(|out| {
                        changed |= out.changed;
                        result.extend(out.result);
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

    /// A skipped item (`creates` exists, an action check mode does not run).
    fn skip(mut result: Map<String, Value>, reason: String, facts: Map<String, Value>) -> ItemRun {
        result.insert("skipped".into(), json!(true));
        result.insert("changed".into(), json!(false));
        result.insert("msg".into(), json!(reason));
        ItemRun {
            facts,
            ..ItemRun::new(Status::Skipped, result, Some(reason))
        }
    }

    /// The backups known for `host`: those of earlier tasks (and runs), then `more`.
    fn backups_of(&self, host: &str, more: &[Backup]) -> Vec<Backup> {
        let mut all = self
            .hosts
            .get(host)
            .map(|s| s.backups.clone())
            .unwrap_or_default();
        all.extend(more.iter().cloned());
        all
    }

    /// Before a task with `notify` changes `host`: record its handlers as owed already.
    fn owe_ahead(&self, pc: &PlayCtx<'_>, task: &Task, host: &str) {
        let Some(s) = self.hosts.get(host) else {
            return;
        };
        let mut handlers = s.owed_handlers();
        for n in &task.notify {
            if !handlers.contains(n) {
                handlers.push(n.clone());
            }
        }
        let owed = super::pending::Owed {
            handlers,
            backups: s.backups.clone(),
        };
        self.keep(pc, host, owed);
    }

    /// The result as reported (JSON `result`, `-v`, `debug`): censored for `no_log`, and every
    /// string holding key material redacted (loop items in `results[].item`, a key in `stdout`).
    /// The registered variable itself keeps the values for later tasks.
    fn censor(task: &Task, v: &Value) -> Value {
        if task.no_log {
            json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": v.get("changed").cloned().unwrap_or(json!(false))})
        } else {
            secret::scrub(v)
        }
    }

    fn finish(&self, task: &Task, host: &str, run: ItemRun, delegated: Option<String>) -> Outcome {
        let mut r = HostResult::new(host, run.status);
        r.msg = shown_msg(task, run.msg.clone());
        r.diff = run.diff.clone();
        r.attempts = run.attempts;
        r.ignored = run.status == Status::Failed && task.ignore_errors;
        r.delegated = delegated;
        r.show = matches!(&task.action, Action::Module { module, .. } if module.shows_result())
            && run.status == Status::Ok;
        let register = Value::Object(run.result.clone());
        r.detail = Self::censor(task, &register);
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

    fn finish_loop(
        &self,
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
            r.items.push((
                label,
                run.status,
                if task.no_log {
                    None
                } else {
                    shown_msg(task, run.msg.clone())
                },
                run.diff.clone(),
            ));
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
        r.detail = Self::censor(task, &register);
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
}

/// How a plan is applied on one host.
struct Apply<'a> {
    conn: &'a dyn Connection,
    become_user: Option<&'a str>,
    check: bool,
    show_diff: bool,
    host: &'a str,
}
