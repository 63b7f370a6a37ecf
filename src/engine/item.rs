//! One module run (a task, or one loop item): its arguments rendered and checked, its `become`
//! user, then the module's plan (read only) applied by the engine (apply.rs), as often as
//! `until` asks (retry.rs).
use serde_json::{Map, Value};
use tera::Context;

use super::host_task::HostTask;
use super::results::ItemRun;
use super::{PlayCtx, Runner};
use crate::modules::args::normalize;
use crate::modules::{Args, HostReader, Module, ModuleCtx};
use crate::playbook::keywords::OMIT;
use crate::playbook::Task;

/// What one run calls the module with.
pub(super) struct Call {
    pub args: Args,
    pub become_user: Option<String>,
}

impl Runner<'_> {
    pub(super) async fn run_item(&self, ht: &HostTask<'_>, ctx: Context) -> ItemRun {
        let args = match self.render_args(ht, &ctx) {
            Ok(a) => a,
            Err(e) => return ItemRun::failed(e),
        };
        let call = Call {
            args,
            become_user: self.become_user(ht, &ctx),
        };
        self.with_retries(ht, &call, ctx).await
    }

    /// The arguments rendered (expression arguments, like assert's `that`, stay as written),
    /// `omit` dropped, normalized and validated.
    fn render_args(&self, ht: &HostTask<'_>, ctx: &Context) -> Result<Args, String> {
        self.render_args_of(ht.task, ht.module, ht.args, ctx)
    }

    /// [`Self::render_args`] of any module task (reading ahead renders later tasks' too).
    pub(super) fn render_args_of(
        &self,
        task: &Task,
        module: &dyn Module,
        args: &Args,
        ctx: &Context,
    ) -> Result<Args, String> {
        let expr_args = module.expression_args();
        let mut rendered = Map::new();
        for (k, v) in &args.map {
            let v = if expr_args.contains(&k.as_str()) {
                v.clone()
            } else {
                self.templar
                    .render_value(v, ctx)
                    .map_err(|e| format!("{}: argument `{k}`: {e}", task.loc))?
            };
            rendered.insert(k.clone(), drop_omitted(v));
        }
        rendered.retain(|_, v| v.as_str() != Some(OMIT));
        let args = normalize(module.name(), module.args(), &rendered, false).map_err(|e| e.msg)?;
        module.validate(&args)?;
        Ok(args)
    }

    /// The user to become, when `become` is on: the task's (rendered: it may read the item),
    /// the play's, `ansible_become_user`, or root.
    fn become_user(&self, ht: &HostTask<'_>, ctx: &Context) -> Option<String> {
        self.become_user_of(ht.pc, ht.task, ht.become_on, ctx)
    }

    /// [`Self::become_user`] of any task.
    pub(super) fn become_user_of(
        &self,
        pc: &PlayCtx<'_>,
        task: &Task,
        become_on: bool,
        ctx: &Context,
    ) -> Option<String> {
        if !become_on {
            return None;
        }
        let user = task
            .become_user
            .as_ref()
            .map(|u| {
                self.templar
                    .render_str(u, ctx)
                    .unwrap_or_else(|_| u.clone())
            })
            .or_else(|| pc.play.become_user.clone())
            .or_else(|| {
                ctx.get("ansible_become_user")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "root".into());
        Some(user)
    }

    /// One attempt: the module's plan, then the engine applies it.
    pub(super) async fn attempt(&self, ht: &HostTask<'_>, call: &Call, ctx: &Context) -> ItemRun {
        let become_user = call.become_user.as_deref();
        let mctx = ModuleCtx {
            host: HostReader::new(ht.conn.as_ref(), become_user),
            become_user,
            templar: self.templar,
            vars: ctx,
            search_dirs: &ht.search_dirs,
            inventory_hostname: ht.host,
        };
        match ht.module.plan(&mctx, &call.args).await {
            Ok(plan) => {
                if !ht.check && plan.changes() && !ht.task.notify.is_empty() {
                    // Owed from before the first change: a run cut short in the middle of it
                    // still runs the handlers next time.
                    self.owe_ahead(ht.pc, ht.task, ht.host);
                }
                self.apply_plan(ht, become_user, plan).await
            }
            Err(e) => ItemRun::of_error(e),
        }
    }
}

/// Drop the `omit` placeholders inside a mapping argument.
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
