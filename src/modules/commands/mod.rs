//! Modules that run commands.
pub mod command;
pub mod shell;

use serde_json::json;

use crate::connection::{ExecRequest, Op, Want};
use crate::modules::{Args, ModuleCtx, Plan};

/// `creates`/`removes`/check mode, shared by `command` and `shell`: either a skip or the op.
pub async fn plan_exec(
    ctx: &ModuleCtx<'_>,
    args: &Args,
    mut req: ExecRequest,
) -> Result<Plan, String> {
    let chdir = args.string("chdir");
    let abs = |p: &str| match (&chdir, p.starts_with('/')) {
        (Some(d), false) => format!("{d}/{p}"),
        _ => p.to_string(),
    };
    if let Some(c) = args.str("creates") {
        let st = ctx
            .conn
            .stat(&abs(c), Want::default(), ctx.become_user)
            .await
            .map_err(|e| e.to_string())?;
        if st.exists() {
            return Ok(Plan::ok()
                .with("msg", format!("Did not run command since '{c}' exists"))
                .with("rc", 0)
                .with("stdout", format!("skipped, since {c} exists"))
                .with(
                    "stdout_lines",
                    json!([format!("skipped, since {c} exists")]),
                ));
        }
    }
    if let Some(r) = args.str("removes") {
        let st = ctx
            .conn
            .stat(&abs(r), Want::default(), ctx.become_user)
            .await
            .map_err(|e| e.to_string())?;
        if !st.exists() {
            return Ok(Plan::ok()
                .with(
                    "msg",
                    format!("Did not run command since '{r}' does not exist"),
                )
                .with("rc", 0)
                .with("stdout", format!("skipped, since {r} does not exist"))
                .with(
                    "stdout_lines",
                    json!([format!("skipped, since {r} does not exist")]),
                ));
        }
    }
    if let Some(input) = args.string("stdin") {
        let mut data = input.into_bytes();
        if args.bool("stdin_add_newline", true) {
            data.push(b'\n');
        }
        req.stdin = Some(data);
    }
    req.chdir = chdir;
    req.become_user = ctx.become_user.map(str::to_string);
    let mut plan = Plan::ok();
    plan.result.insert(
        "cmd".into(),
        json!(if req.shell.is_some() {
            json!(req.display())
        } else {
            json!(req.argv)
        }),
    );
    if ctx.check_mode && !args.has("creates") && !args.has("removes") {
        plan.skipped = Some("Command would have run if not in check mode".into());
        return Ok(plan);
    }
    plan.ops.push(Op::Exec(req));
    Ok(plan)
}
