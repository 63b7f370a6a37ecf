//! `debug`: print a message or a variable.
use async_trait::async_trait;

use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Debug;

const ARGS: &[Arg] = &[
    Arg::new("msg", Kind::Raw),
    Arg::new("var", Kind::Str),
    Arg::new("verbosity", Kind::Int),
];

#[async_trait]
impl Module for Debug {
    fn name(&self) -> &'static str {
        "debug"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn expression_args(&self) -> &'static [&'static str] {
        &["var"]
    }

    fn shows_result(&self) -> bool {
        true
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if args.has("msg") && args.has("var") {
            return Err("parameters are mutually exclusive: msg|var".into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        if let Some(var) = args.str("var") {
            let v = ctx
                .templar
                .render_string_value(&format!("{{{{ {var} }}}}"), ctx.vars)
                .unwrap_or_else(|_| "VARIABLE IS NOT DEFINED!".into());
            return Ok(Plan::ok().with(var, v));
        }
        let msg = args
            .get("msg")
            .cloned()
            .unwrap_or_else(|| "Hello world!".into());
        Ok(Plan::ok().with("msg", msg))
    }
}
