//! `assert`: fail the host unless every expression in `that` holds.
use async_trait::async_trait;
use serde_json::Value;

use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, Plan};

pub struct Assert;

const ARGS: &[Arg] = &[
    Arg::new("that", Kind::List).required(),
    Arg::new("fail_msg", Kind::Raw).aliases(&["msg"]),
    Arg::new("success_msg", Kind::Raw),
    Arg::new("quiet", Kind::Bool),
];

#[async_trait]
impl Module for Assert {
    fn name(&self) -> &'static str {
        "assert"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn expression_args(&self) -> &'static [&'static str] {
        &["that"]
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, String> {
        for cond in args.list("that") {
            let expr = match &cond {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            let ok = ctx.templar.eval_cond(&expr, ctx.vars)?;
            if !ok {
                let msg = args
                    .get("fail_msg")
                    .cloned()
                    .unwrap_or_else(|| "Assertion failed".into());
                let mut plan = Plan::fail(match &msg {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                plan.result.insert("assertion".into(), expr.into());
                plan.result.insert("evaluated_to".into(), false.into());
                return Ok(plan);
            }
        }
        let msg = args
            .get("success_msg")
            .cloned()
            .unwrap_or_else(|| "All assertions passed".into());
        Ok(Plan::ok().with("msg", msg))
    }
}
