//! `win_environment`: a machine-level environment variable on a Windows host (Ansible's
//! `ansible.windows.win_environment` with `level: machine`): `name`, `value`, `state`
//! (`present`, default, or `absent`), `level` (`machine` only: the CAST guides ask for a
//! *system* variable, `CASTCONNECTIONEXTRAPARAMETERS`). The plan reads the current value in one
//! query ([`crate::os::win_env`]); a different value is set with
//! `[Environment]::SetEnvironmentVariable(NAME, VALUE, 'Machine')`. Values are never shown
//! (no diff, the result holds the name only): they may hold connection secrets. On a host that
//! is not Windows the task fails before reading anything.
use async_trait::async_trait;
use serde_json::{json, Map};

use crate::connection::ExecRequest;
use crate::modules::services::run::{Cmd, ServiceRun};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};
use crate::os::win_env;

pub struct WinEnvironment;

const ARGS: &[Arg] = &[
    Arg::new("name", Kind::Str).required(),
    Arg::new("value", Kind::Str),
    Arg::new("state", Kind::Str).choices(&["present", "absent"]),
    Arg::new("level", Kind::Str).choices(&["machine"]),
];

#[async_trait]
impl Module for WinEnvironment {
    fn name(&self) -> &'static str {
        "win_environment"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if let Some(n) = args.str("name") {
            win_env::check_name(n)?;
        }
        if args.str("state").unwrap_or("present") == "present" && !args.has("value") {
            return Err("state is present but all of the following are missing: value".into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        if !crate::modules::services::win_plan::is_windows(ctx) {
            return Err(ModuleError::failed(format!(
                "win_environment needs a Windows host (ansible_shell_type: powershell or cmd); \
                 {} is not one: use env_file on POSIX hosts",
                ctx.inventory_hostname
            )));
        }
        let name = args.req("name")?;
        let want = match args.str("state").unwrap_or("present") {
            "absent" => None,
            _ => Some(args.req("value")?),
        };
        let q = ExecRequest {
            shell: Some(win_env::query_script(&name).map_err(ModuleError::failed)?),
            become_user: ctx.become_user.map(str::to_string),
            ..ExecRequest::default()
        };
        let out = ctx.host.query(&q).await?;
        if out.rc != 0 {
            return Err(ModuleError::failed(format!(
                "cannot read environment variable {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let current =
            win_env::parse(&String::from_utf8_lossy(&out.stdout)).map_err(ModuleError::failed)?;
        let mut result = Map::new();
        result.insert("name".into(), json!(name));
        result.insert("level".into(), json!("machine"));
        if current == want {
            return Ok(Plan::ok().with_result(result));
        }
        let label = match &want {
            Some(_) => format!("set machine environment variable {name}"),
            None => format!("remove machine environment variable {name}"),
        };
        let cmd = Cmd::Script {
            shell: win_env::set_script(&name, want.as_deref()).map_err(ModuleError::failed)?,
            label,
            fail: format!("Unable to set environment variable {name}"),
        };
        Ok(Plan::action(ServiceRun { cmds: vec![cmd] }).with_result(result))
    }
}
