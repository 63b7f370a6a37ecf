//! `service`: `name`, `state` (`started`, `stopped`, `restarted`, `reloaded`), `enabled`,
//! `sleep`, `arguments` (`args`), `use`. `use: auto` takes the `ansible_service_mgr` variable
//! when the inventory sets it, else systemd when the host runs it (`/run/systemd/system` is a
//! directory) and SysV init scripts otherwise; `use: systemd|sysvinit|service` names one
//! (`service` is the generic SysV path). On systemd, `sleep` and `arguments` are not used
//! (Ansible ignores them there too). On a Windows host (`ansible_shell_type: powershell|cmd`)
//! it is Ansible's `win_service` ([`win_plan`]).
use async_trait::async_trait;

use super::systemd_plan::{self, SystemdReq};
use super::sysv_plan::{self, SysvReq};
use super::win_plan;
use super::{SvcState, STATES};
use crate::connection::{FileKind, Want};
use crate::modules::{Arg, Args, Kind, Module, ModuleCtx, ModuleError, Plan};

pub struct Service;

const ARGS: &[Arg] = &[
    Arg::new("name", Kind::Str).required(),
    Arg::new("state", Kind::Str).choices(STATES),
    Arg::new("enabled", Kind::Bool),
    Arg::new("sleep", Kind::Int).range(0, 3600),
    Arg::new("arguments", Kind::Str).aliases(&["args"]),
    Arg::new("use", Kind::Str).choices(&["auto", "systemd", "sysvinit", "service"]),
];

#[async_trait]
impl Module for Service {
    fn name(&self) -> &'static str {
        "service"
    }

    fn args(&self) -> Option<&'static [Arg]> {
        Some(ARGS)
    }

    fn validate(&self, args: &Args) -> Result<(), String> {
        if !args.has("state") && !args.has("enabled") {
            return Err("one of the following is required: state, enabled".into());
        }
        Ok(())
    }

    async fn plan(&self, ctx: &ModuleCtx<'_>, args: &Args) -> Result<Plan, ModuleError> {
        let name = args.req("name")?;
        let state = SvcState::of(args);
        let enabled = args.has("enabled").then(|| args.bool("enabled", false));
        if win_plan::is_windows(ctx) {
            return win_plan::plan(ctx, &name, state, enabled).await;
        }
        let systemd = match args.str("use").unwrap_or("auto") {
            "systemd" => true,
            "sysvinit" | "service" => false,
            _ => match ctx.vars.get("ansible_service_mgr").and_then(|v| v.as_str()) {
                Some(m) => m == "systemd",
                None => {
                    let st = ctx
                        .host
                        .stat("/run/systemd/system", Want::default())
                        .await?;
                    st.kind == FileKind::Directory
                }
            },
        };
        if systemd {
            let req = SystemdReq {
                name: Some(name),
                state,
                enabled,
                ..SystemdReq::default()
            };
            return systemd_plan::plan(ctx, &req).await;
        }
        let arguments = match args.str("arguments") {
            Some(a) => shlex::split(a)
                .ok_or_else(|| ModuleError::InvalidArgs(format!("cannot split arguments: {a}")))?,
            None => Vec::new(),
        };
        let req = SysvReq {
            name,
            state,
            enabled,
            sleep: args.int("sleep").map(|s| s.max(0) as u64),
            arguments,
        };
        sysv_plan::plan(ctx, &req).await
    }
}
