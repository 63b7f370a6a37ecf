//! `assert`: fail the host unless every expression in `that` holds.
use async_trait::async_trait;
use serde_json::Value;

use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

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

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
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
                let mut result = serde_json::Map::new();
                result.insert("assertion".into(), expr.into());
                result.insert("evaluated_to".into(), false.into());
                let msg = match &msg {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Err(ModuleError::failed_with(msg, result));
            }
        }
        let msg = args
            .get("success_msg")
            .cloned()
            .unwrap_or_else(|| "All assertions passed".into());
        Ok(Plan::ok().with("msg", msg))
    }
}
