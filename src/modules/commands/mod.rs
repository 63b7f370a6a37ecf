//! Modules that run commands.
pub mod command;
pub mod shell;

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use crate::connection::{ExecOutput, ExecRequest, Want};
use crate::modules::{
    Action, ActionCtx, ActionOutput, Args, CheckMode, ModuleCtx, ModuleError, Plan,
};

/// Running the command: deferred to the engine, which never runs it in check mode.
struct RunCommand {
    req: ExecRequest,
    /// `creates`/`removes` decided that it runs: check mode says `changed` (Ansible), not
    /// `skipped`.
    decided: bool,
}

/// Ansible's result keys for a command's output.
fn exec_result(x: &ExecOutput) -> Map<String, Value> {
    let text = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_end_matches('\n')
            .to_string()
    };
    let (stdout, stderr) = (text(&x.stdout), text(&x.stderr));
    let mut r = Map::new();
    r.insert("rc".into(), json!(x.rc));
    r.insert(
        "stdout_lines".into(),
        json!(stdout.lines().collect::<Vec<_>>()),
    );
    r.insert(
        "stderr_lines".into(),
        json!(stderr.lines().collect::<Vec<_>>()),
    );
    r.insert("stdout".into(), json!(stdout));
    r.insert("stderr".into(), json!(stderr));
    r
}

#[async_trait]
impl Action for RunCommand {
    fn describe(&self) -> String {
        format!("run {}", self.req.display())
    }

    fn in_check_mode(&self) -> CheckMode {
        if self.decided {
            CheckMode::WouldChange
        } else {
            CheckMode::Skip("Command would have run if not in check mode".into())
        }
    }

    async fn run(&self, ctx: &ActionCtx<'_>) -> Result<ActionOutput, ModuleError> {
        let out = ctx.conn.exec(&self.req).await?;
        let result = exec_result(&out);
        if out.rc != 0 {
            // A program that could not be started reports it like Ansible ("[Errno 2] ...").
            let stderr = result["stderr"].as_str().unwrap_or_default();
            let msg = if stderr.starts_with("[Errno") {
                stderr.to_string()
            } else {
                "non-zero return code".to_string()
            };
            return Err(ModuleError::failed_with(msg, result));
        }
        Ok(ActionOutput {
            changed: true,
            result,
            ..ActionOutput::default()
        })
    }
}

/// `creates`/`removes`, shared by `command` and `shell`: either a skip or the command to run.
pub async fn plan_exec(
    ctx: &ModuleCtx<'_>,
    args: &Args,
    mut req: ExecRequest,
) -> Result<Plan, ModuleError> {
    let chdir = args.string("chdir");
    let abs = |p: &str| match (&chdir, p.starts_with('/')) {
        (Some(d), false) => format!("{d}/{p}"),
        _ => p.to_string(),
    };
    // Ansible's answer when `creates`/`removes` decides the command is not needed.
    let not_run = |path: &str, state: &str| {
        let stdout = format!("skipped, since {path} {state}");
        Plan::ok()
            .with("msg", format!("Did not run command since '{path}' {state}"))
            .with("rc", 0)
            .with("stdout", stdout.clone())
            .with("stdout_lines", json!([stdout]))
    };
    if let Some(c) = args.str("creates") {
        if ctx.host.stat(&abs(c), Want::default()).await?.exists() {
            return Ok(not_run(c, "exists"));
        }
    }
    if let Some(r) = args.str("removes") {
        if !ctx.host.stat(&abs(r), Want::default()).await?.exists() {
            return Ok(not_run(r, "does not exist"));
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
    let cmd = if req.shell.is_some() {
        json!(req.display())
    } else {
        json!(req.argv)
    };
    let decided = args.has("creates") || args.has("removes");
    Ok(Plan::action(RunCommand { req, decided }).with("cmd", cmd))
}
