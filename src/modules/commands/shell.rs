//! `shell`: run a command line through `/bin/sh -c` (pipes, redirections, variables).
use async_trait::async_trait;

use crate::connection::ExecRequest;
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Shell;

const ARGS: &[Arg] = &[
    Arg::new("cmd", Kind::Str)
        .aliases(&["_raw_params"])
        .required(),
    Arg::new("creates", Kind::Str),
    Arg::new("removes", Kind::Str),
    Arg::new("chdir", Kind::Str),
    Arg::new("stdin", Kind::Str),
    Arg::new("stdin_add_newline", Kind::Bool),
    Arg::new("executable", Kind::Str),
];

#[async_trait]
impl Module for Shell {
    fn name(&self) -> &'static str {
        "shell"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn free_form(&self) -> Option<&'static str> {
        Some("cmd")
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let cmd = args.req("cmd")?;
        // The text goes over stdin to the shell (`executable` or /bin/sh), never on its
        // command line.
        let req = ExecRequest {
            shell: Some(cmd),
            executable: args.string("executable"),
            ..ExecRequest::default()
        };
        super::plan_exec(ctx, args, req).await
    }
}
