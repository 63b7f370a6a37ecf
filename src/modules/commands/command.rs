//! `command`: run a program without a shell (`cmd` split like a shell would, or `argv`).
use async_trait::async_trait;

use crate::connection::ExecRequest;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Command;

const ARGS: &[Arg] = &[
    Arg::new("cmd", Kind::Str).aliases(&["_raw_params"]),
    Arg::new("argv", Kind::List),
    Arg::new("creates", Kind::Str),
    Arg::new("removes", Kind::Str),
    Arg::new("chdir", Kind::Str),
    Arg::new("stdin", Kind::Str),
    Arg::new("stdin_add_newline", Kind::Bool),
    Arg::new("strip_empty_ends", Kind::Bool),
    Arg::new("expand_argument_vars", Kind::Bool),
];

#[async_trait]
impl Module for Command {
    fn name(&self) -> &'static str {
        "command"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        match (args.has("cmd"), args.has("argv")) {
            (true, true) => Err("parameters are mutually exclusive: cmd|argv".into()),
            (false, false) => {
                Err("no command given: use `cmd` (or the free form) or `argv`".into())
            }
            _ => Ok(()),
        }
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let argv: Vec<String> = if let Some(cmd) = args.str("cmd") {
            shlex::split(cmd).ok_or_else(|| format!("cannot split command line: {cmd}"))?
        } else {
            args.list("argv")
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect()
        };
        if argv.is_empty() {
            return Err(ModuleError::InvalidArgs("no command given".into()));
        }
        super::plan_exec(
            ctx,
            args,
            ExecRequest {
                argv,
                ..ExecRequest::default()
            },
        )
        .await
    }
}
