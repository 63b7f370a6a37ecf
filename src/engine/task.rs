//! Running one task on the hosts of a batch: conditions, loops, retries, the module's plan,
//! applying its ops (unless in check mode), registering and notifying.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use tera::Context;

use super::{PlayCtx, Runner};
use crate::connection::{ConnError, Connection, Op};
use crate::modules::args::normalize;
use crate::modules::{Module, ModuleCtx, Plan};
use crate::playbook::keywords::OMIT;
use crate::playbook::{Action, Cond, Task};
use crate::report::{diff, secret, HostResult, Status};

/// Which expensive magic variables a task reads.
pub struct Needs {
    pub groups: bool,
    pub hostvars: bool,
    pub play_hosts: bool,
}

fn task_text(task: &Task) -> Arc<String> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<String>>>> = OnceLock::new();
    let key = task as *const Task as usize;
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(c) = cache.lock() {
        if let Some(t) = c.get(&key) {
            return Arc::clone(t);
        }
    }
    let mut text = format!(
        "{:?}{:?}{:?}{:?}{:?}",
        task.action, task.when, task.loop_, task.vars, task.scope.vars
    );
    if let Action::Module { module, args } = &task.action {
        if module.name() == "template" {
            // The template file may read `groups` or `hostvars` too.
            if let Some(src) = args.str("src") {
                let mut dirs: Vec<std::path::PathBuf> =
                    task.scope.role.iter().map(|r| r.path.clone()).collect();
                dirs.push(task.scope.dir.clone());
                for d in dirs {
                    for p in [d.join("templates").join(src), d.join(src)] {
                        if let Ok(t) = std::fs::read_to_string(&p) {
                            text.push_str(&t);
                        }
                    }
                }
            }
        }
    }
    let text = Arc::new(text);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, Arc::clone(&text));
    }
    text
}

/// Does the task's text mention a variable name?
pub fn mentions(task: &Task, name: &str) -> bool {
    task_text(task).contains(name)
}

pub fn needs(task: &Task, vars: &Map<String, Value>) -> Needs {
    let text = task_text(task);
    let var_mentions = |n: &str| {
        vars.values().any(
            |v| matches!(v, Value::String(s) if s.contains(n) && crate::template::is_template(s)),
        )
    };
    Needs {
        groups: text.contains("groups") || var_mentions("groups"),
        hostvars: text.contains("hostvars") || var_mentions("hostvars"),
        play_hosts: text.contains("ansible_play_") || var_mentions("ansible_play_"),
    }
}

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
}

impl ItemRun {
    fn failed(msg: impl Into<String>) -> Self {
        let msg = msg.into();
        let mut result = Map::new();
        result.insert("failed".into(), json!(true));
        result.insert("msg".into(), json!(msg));
        ItemRun {
            status: Status::Failed,
            result,
            msg: Some(msg),
            diff: None,
            facts: Map::new(),
            attempts: 0,
            applied: false,
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
        if let Some(v) = &o.register {
            hs.record_backups(v);
        }
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
                Ok(false) => ItemRun {
                    status: Status::Skipped,
                    result: json!({"skipped": true, "changed": false, "skip_reason": "Conditional result was False"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    msg: None,
                    diff: None,
                    facts: Map::new(),
                    attempts: 0,
                    applied: false,
                },
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
        loop {
            attempt += 1;
            let mctx = ModuleCtx {
                conn: conn.as_ref(),
                become_user: become_user.as_deref(),
                check_mode: check,
                templar: self.templar,
                vars: &ctx,
                search_dirs: &search_dirs,
                inventory_hostname: vars
                    .get("inventory_hostname")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            };
            let plan = match module.plan(&mctx, &args).await {
                Ok(p) => p,
                Err(e) => Plan::fail(e),
            };
            if !check && !plan.ops.is_empty() && !task.notify.is_empty() {
                // Owed from before the first change: a run cut short in the middle of it
                // still runs the handlers next time.
                self.owe_ahead(pc, task, mctx.inventory_hostname);
            }
            let mut run = self
                .apply_plan(task, conn, become_user.as_deref(), check, show_diff, plan)
                .await;
            run.attempts = attempt;
            applied |= run.applied;
            run.applied = applied;
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
                        Err(e) => return ItemRun::failed(e),
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
                        Err(e) => return ItemRun::failed(e),
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

    /// Apply a module's plan (unless in check mode) and build the item's result.
    async fn apply_plan(
        &self,
        task: &Task,
        conn: &Arc<dyn Connection>,
        become_user: Option<&str>,
        check: bool,
        show_diff: bool,
        plan: Plan,
    ) -> ItemRun {
        let Plan {
            ops,
            mut result,
            diff: d,
            failed,
            skipped,
            facts,
            changed: changed_itself,
        } = plan;
        let diff_text = if show_diff {
            d.as_ref().map(|d| diff::render(d, task.no_log))
        } else {
            None
        };
        if let Some(msg) = failed {
            result.insert("failed".into(), json!(true));
            result.insert("msg".into(), json!(msg));
            result.insert("changed".into(), json!(false));
            return ItemRun {
                status: Status::Failed,
                result,
                msg: Some(msg),
                diff: None,
                facts: Map::new(),
                attempts: 0,
                applied: false,
            };
        }
        if let Some(reason) = skipped {
            result.insert("skipped".into(), json!(true));
            result.insert("changed".into(), json!(false));
            result.insert("msg".into(), json!(reason));
            return ItemRun {
                status: Status::Skipped,
                result,
                msg: Some(reason),
                diff: None,
                facts,
                attempts: 0,
                applied: false,
            };
        }
        let changed = changed_itself || !ops.is_empty();
        let mut status = if changed { Status::Changed } else { Status::Ok };
        let mut msg = None;
        if !ops.is_empty() && !check {
            for op in &ops {
                match conn.apply(op, become_user).await {
                    Ok(out) => {
                        if let Some(b) = out.backup_file {
                            result.insert("backup_file".into(), json!(b));
                        }
                        if let Some(x) = out.exec {
                            let stdout = String::from_utf8_lossy(&x.stdout)
                                .trim_end_matches('\n')
                                .to_string();
                            let stderr = String::from_utf8_lossy(&x.stderr)
                                .trim_end_matches('\n')
                                .to_string();
                            result.insert("rc".into(), json!(x.rc));
                            result.insert(
                                "stdout_lines".into(),
                                json!(stdout.lines().collect::<Vec<_>>()),
                            );
                            result.insert(
                                "stderr_lines".into(),
                                json!(stderr.lines().collect::<Vec<_>>()),
                            );
                            result.insert("stdout".into(), json!(stdout));
                            result.insert("stderr".into(), json!(stderr));
                            if x.rc != 0 {
                                status = Status::Failed;
                                let m = if matches!(op, Op::Exec(_)) && stderr.starts_with("[Errno")
                                {
                                    stderr.clone()
                                } else {
                                    "non-zero return code".to_string()
                                };
                                msg = Some(m.clone());
                                result.insert("msg".into(), json!(m));
                                break;
                            }
                        }
                    }
                    Err(ConnError::Unreachable(m)) => {
                        return ItemRun {
                            applied: true,
                            ..ItemRun::unreachable(m)
                        }
                    }
                    Err(ConnError::Failed(m)) => {
                        status = Status::Failed;
                        msg = Some(m.clone());
                        result.insert("msg".into(), json!(m));
                        break;
                    }
                }
            }
        }
        result.insert("changed".into(), json!(changed));
        result.insert("failed".into(), json!(status == Status::Failed));
        if check && changed {
            result.insert("check_mode".into(), json!(true));
        }
        ItemRun {
            status,
            result,
            msg,
            diff: diff_text,
            facts,
            attempts: 0,
            applied: !ops.is_empty() && !check,
        }
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
        r.show = task.module_name() == "debug" && run.status == Status::Ok;
        let register = Value::Object(run.result.clone());
        r.detail = Self::censor(task, &register);
        Outcome {
            host: host.to_string(),
            changed: run.status == Status::Changed,
            register: Some(register),
            facts: run.facts,
            result: r,
            applied: run.applied,
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
        for (run, label) in runs.into_iter().zip(labels) {
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
        }
    }
}
